//! Shared test harness: an emulator on random 127.0.0.1 ports and an HTTPS client that
//! trusts its CA (and nothing else).

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of the harness"
)]

use serde_json::{Value, json};
use tenantlink_emulator::{Emulator, EmulatorConfig};

/// The workspace root.
pub fn workspace() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The pinned Python that has Microsoft's SDKs: `TENANTLINK_PYTHON`, or the venv
/// `cargo xtask pyenv` makes under the workspace's `target/`.
pub fn python() -> std::path::PathBuf {
    std::env::var_os("TENANTLINK_PYTHON").map_or_else(
        || workspace().join("target/pyenv/bin/python"),
        std::path::PathBuf::from,
    )
}

/// A running emulator and a client that trusts it.
pub struct Harness {
    pub emulator: Emulator,
    pub client: reqwest::Client,
}

impl Harness {
    /// Starts an emulator with the default test configuration (two small tenants).
    pub fn start() -> Self {
        Self::with(EmulatorConfig::default())
    }

    /// Starts an emulator with a given configuration.
    pub fn with(config: EmulatorConfig) -> Self {
        let emulator = Emulator::start(config).expect("the emulator starts");
        let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).expect("CA PEM");
        let client = reqwest::Client::builder()
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { emulator, client }
    }

    /// `https://127.0.0.1:port` + path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.https_url())
    }

    /// The first seeded tenant's id.
    pub fn tenant(&self) -> &str {
        &self.emulator.tenants()[0].tenant_id
    }

    /// Mints an access token through the control API (`body` as `POST .../tokens` takes it).
    pub async fn mint(&self, tenant: &str, body: Value) -> String {
        let res = self
            .client
            .post(self.url(&format!("/_emulator/tenants/{tenant}/tokens")))
            .json(&body)
            .send()
            .await
            .expect("mint a token");
        assert_eq!(res.status(), 200, "minting a token");
        res.json::<Value>().await.expect("token JSON")["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A Graph token of an app in the first tenant, with what the tenant granted it.
    pub async fn app_token(&self, client_id: &str) -> String {
        self.mint(self.tenant(), json!({ "client_id": client_id }))
            .await
    }

    /// POSTs a form to a tenant's token endpoint: the status and the JSON body.
    pub async fn token_endpoint(&self, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .form(form)
            .send()
            .await
            .expect("token request");
        let status = res.status().as_u16();
        (status, res.json().await.expect("token JSON"))
    }

    /// The ground truth of a tenant from the control API.
    pub async fn state(&self, tenant: &str) -> Value {
        let res = self
            .client
            .get(self.url(&format!("/_emulator/tenants/{tenant}/state")))
            .send()
            .await
            .expect("state");
        assert!(res.status().is_success());
        res.json().await.expect("state JSON")
    }
}
