//! Test harness: the emulator started in-process, a client-credentials `TokenCredential`
//! against its token endpoint (cached until shortly before expiry, counting its requests),
//! and a `GraphClient` pointed at it.

#![expect(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of the harness"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use serde_json::{Value, json};
use tenantlink_emulator::{Emulator, EmulatorConfig, TenantSize};
use tenantlink_graph::{GraphClient, GraphClientOptions, RetryPolicy};
use tokio::sync::Mutex;

/// Client credentials against the emulator's token endpoint.
pub struct TestCredential {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: String,
    /// Refresh when less than this is left.
    margin: Duration,
    cached: Mutex<Option<AccessToken>>,
    /// Token requests sent to the token endpoint.
    pub fetched: AtomicU64,
    /// `get_token` calls (served from the cache or not).
    pub calls: AtomicU64,
}

impl std::fmt::Debug for TestCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCredential")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl TestCredential {
    pub fn new(emulator: &Emulator, tenant: &str, client_id: &str, client_secret: &str) -> Self {
        let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).expect("CA");
        Self {
            http: reqwest::Client::builder()
                .add_root_certificate(ca)
                .build()
                .expect("client"),
            token_url: format!("{}/{tenant}/oauth2/v2.0/token", emulator.https_url()),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            margin: Duration::from_secs(1),
            cached: Mutex::new(None),
            fetched: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        }
    }

    pub fn fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The cached token, if any (to check it never leaks into messages).
    pub async fn current(&self) -> Option<String> {
        self.cached
            .lock()
            .await
            .as_ref()
            .map(|t| t.token.secret().to_owned())
    }
}

#[async_trait::async_trait]
impl TokenCredential for TestCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut cached = self.cached.lock().await;
        let margin = azure_core::time::Duration::milliseconds(self.margin.as_millis() as i64);
        if let Some(t) = cached.as_ref()
            && t.expires_on - margin > OffsetDateTime::now_utc()
        {
            return Ok(t.clone());
        }
        self.fetched.fetch_add(1, Ordering::Relaxed);
        let err = |m: String| {
            azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, m)
        };
        let res = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
                ("scope", scopes.join(" ").as_str()),
            ])
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        let status = res.status();
        let body: Value = res.json().await.map_err(|e| err(e.to_string()))?;
        if !status.is_success() {
            return Err(err(format!(
                "token endpoint answered {status}: {}",
                body["error"]
            )));
        }
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| err("no access_token".into()))?;
        let expires_in = body["expires_in"].as_i64().unwrap_or(3600);
        let t = AccessToken::new(
            token.to_owned(),
            OffsetDateTime::now_utc() + azure_core::time::Duration::seconds(expires_in),
        );
        *cached = Some(t.clone());
        Ok(t)
    }
}

/// An emulator, the connector app's credential and a client.
pub struct Harness {
    pub emulator: Emulator,
    pub control: reqwest::Client,
    pub credential: Arc<TestCredential>,
    pub client: GraphClient,
}

pub fn options(emulator: &Emulator) -> GraphClientOptions {
    GraphClientOptions {
        base_url: emulator.graph_url(),
        extra_root_certificates: vec![emulator.ca_pem()],
        retry: RetryPolicy {
            max_retries: 50,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            budget: Duration::from_secs(60),
        },
        ..GraphClientOptions::default()
    }
}

impl Harness {
    pub fn start() -> Self {
        Self::with(EmulatorConfig::default(), |_| {})
    }

    pub fn sized(size: TenantSize) -> Self {
        Self::with(
            EmulatorConfig {
                size,
                tenants: 1,
                ..EmulatorConfig::default()
            },
            |_| {},
        )
    }

    pub fn with(config: EmulatorConfig, tweak: impl FnOnce(&mut GraphClientOptions)) -> Self {
        let emulator = Emulator::start(config).expect("the emulator starts");
        let mut opts = options(&emulator);
        tweak(&mut opts);
        let tenant = emulator.tenants()[0].clone();
        let credential = Arc::new(TestCredential::new(
            &emulator,
            &tenant.tenant_id,
            &tenant.connector_app.client_id,
            &tenant.connector_app.client_secret,
        ));
        let client = GraphClient::new(credential.clone(), opts).expect("client");
        let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).expect("CA");
        let control = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .expect("client");
        Self {
            emulator,
            control,
            credential,
            client,
        }
    }

    /// A client of the first tenant's limited app (`User.Read.All` only).
    pub fn limited_client(&self) -> GraphClient {
        let tenant = &self.emulator.tenants()[0];
        let credential = Arc::new(TestCredential::new(
            &self.emulator,
            &tenant.tenant_id,
            &tenant.limited_app.client_id,
            &tenant.limited_app.client_secret,
        ));
        GraphClient::new(credential, options(&self.emulator)).expect("client")
    }

    pub fn tenant(&self) -> String {
        self.emulator.tenants()[0].tenant_id.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.https_url())
    }

    pub async fn state(&self) -> Value {
        let res = self
            .control
            .get(self.url(&format!("/_emulator/tenants/{}/state", self.tenant())))
            .send()
            .await
            .expect("state");
        assert!(res.status().is_success());
        res.json().await.expect("state JSON")
    }

    pub async fn faults(&self, faults: Value) {
        let res = self
            .control
            .put(self.url("/_emulator/faults"))
            .json(&faults)
            .send()
            .await
            .expect("faults");
        assert!(
            res.status().is_success(),
            "faults: {}",
            res.text().await.unwrap_or_default()
        );
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let path = path.replace("{t}", &self.tenant());
        let mut req = self.control.request(method, self.url(&path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("control");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(json!(null))
    }

    /// Active users in the ground truth.
    pub async fn active_users(&self) -> usize {
        let state = self.state().await;
        state["users"]
            .as_array()
            .expect("users")
            .iter()
            .filter(|u| u["_state"].as_str().is_none_or(|s| s == "active"))
            .count()
    }
}
