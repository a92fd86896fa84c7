//! Shared test harness: the emulator on 127.0.0.1, an `IdentityClient` that trusts its CA,
//! a raw HTTPS client for the control API, and a self-signed test certificate.

#![expect(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of the harness"
)]

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};
use tenantlink_emulator::{Emulator, EmulatorConfig};
use tenantlink_identity::{
    AppCredential, AppCredentialConfig, ClientAuth, Cloud, IdentityClient, IdentityClientOptions,
    SecretString,
};

pub const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";
pub const REDIRECT: &str = "http://localhost/callback";

pub struct Harness {
    pub emulator: Emulator,
    pub identity: IdentityClient,
    pub http: reqwest::Client,
}

impl Harness {
    pub fn start() -> Self {
        let emulator = Emulator::start(EmulatorConfig::default()).expect("the emulator starts");
        let options = IdentityClientOptions {
            root_certificates_pem: vec![emulator.ca_pem()],
            ..IdentityClientOptions::default()
        };
        let identity = IdentityClient::new(
            Cloud::Custom {
                base_url: emulator.https_url().to_owned(),
            },
            &options,
        )
        .expect("identity client");
        let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).expect("CA");
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            emulator,
            identity,
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.https_url())
    }

    /// An app credential for a tenant with a secret.
    pub fn secret_credential(&self, tenant: &str, client_id: &str, secret: &str) -> AppCredential {
        self.identity
            .app_credential(AppCredentialConfig {
                tenant_id: tenant.to_owned(),
                client_id: client_id.to_owned(),
                auth: ClientAuth::Secret(SecretString::from(secret)),
            })
            .expect("credential")
    }

    /// The first tenant's connector app credential.
    pub fn connector(&self) -> AppCredential {
        let t = &self.emulator.tenants()[0];
        self.secret_credential(
            &t.tenant_id,
            &t.connector_app.client_id,
            &t.connector_app.client_secret,
        )
    }

    /// Sets emulator faults.
    pub async fn faults(&self, faults: Value) {
        let res = self
            .http
            .put(self.url("/_emulator/faults"))
            .json(&faults)
            .send()
            .await
            .expect("faults");
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    }

    /// GETs a URL without following redirects: status and Location.
    pub async fn follow(&self, url: &str) -> (u16, Option<String>) {
        let res = self.http.get(url).send().await.expect("GET");
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location)
    }

    /// Registers a certificate on an app; its `x5t#S256`.
    pub async fn register_certificate(&self, client_id: &str, pem: &str) -> String {
        let res = self
            .http
            .post(self.url(&format!("/_emulator/apps/{client_id}/certificates")))
            .json(&json!({ "pem": pem }))
            .send()
            .await
            .expect("register");
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        body["x5t#S256"].as_str().unwrap().to_owned()
    }
}

/// A self-signed RSA certificate: (private key PKCS#8 PEM, certificate PEM).
pub fn test_certificate(seed: u64) -> (SecretString, String) {
    use rand_core::SeedableRng as _;
    use rsa::pkcs8::EncodePrivateKey as _;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let private = rsa::PrivateKey::new(&mut rng, 2048).expect("RSA key");
    let der = private.to_pkcs8_der().expect("PKCS#8").as_bytes().to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let key_pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let key_pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
        .expect("rcgen reads the key");
    let cert = rcgen::CertificateParams::new(vec!["tenantlink-identity-test".into()])
        .expect("params")
        .self_signed(&key_pair)
        .expect("certificate");
    (SecretString::from(key_pem), cert.pem())
}

/// Shares a credential as the connectors take it.
pub fn as_dyn(c: AppCredential) -> Arc<dyn azure_core::credentials::TokenCredential> {
    Arc::new(c)
}
