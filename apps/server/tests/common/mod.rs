//! End-to-end harness: the real `tenantlink serve` binary as a child process on a fresh
//! database (SQLite, or PostgreSQL when `TENANTLINK_TEST_DATABASE_URL` is set), an
//! in-process emulator it talks to over HTTPS, and an HTTP client that keeps every answer
//! so a test can scan them, and the server's logs, for secrets.

#![expect(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of the harness"
)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tenantlink_emulator::{Emulator, EmulatorConfig, TenantSize};

/// The admin key of test servers.
pub const ADMIN_KEY: &str = "9c41d7a0b3f2e8c6d5a4b1f0e9d8c7b6e2e1f0a9";

/// A seeded emulator with `tenants` small tenants.
pub fn emulator(seed: u64, tenants: usize) -> Emulator {
    Emulator::start(EmulatorConfig {
        seed,
        tenants,
        size: TenantSize::SMALL,
        ..EmulatorConfig::default()
    })
    .expect("the emulator starts")
}

/// A seeded emulator with one tenant of `size`.
pub fn emulator_of(seed: u64, size: TenantSize) -> Emulator {
    Emulator::start(EmulatorConfig {
        seed,
        tenants: 1,
        size,
        ..EmulatorConfig::default()
    })
    .expect("the emulator starts")
}

/// Sets the emulator's faults (`/_emulator/faults`), e.g. `{"latency_ms": 100}`.
pub async fn faults(emulator: &Emulator, faults: Value) {
    let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).expect("CA");
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("client");
    let res = client
        .patch(format!("{}/_emulator/faults", emulator.https_url()))
        .json(&faults)
        .send()
        .await
        .expect("faults");
    assert!(res.status().is_success(), "faults: {}", res.status());
}

/// A fresh Fernet key for a test server.
pub fn fernet_key() -> String {
    use tenantlink_vault::ExposeSecret as _;
    tenantlink_vault::FernetKey::generate()
        .expect("key")
        .to_base64()
        .expose_secret()
        .to_owned()
}

/// A running `tenantlink serve`.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Where its stderr (JSON logs) goes.
    pub log_path: PathBuf,
    /// The environment it was started with (for a second process on the same database).
    pub env: Vec<(String, String)>,
}

impl Server {
    /// Starts `tenantlink serve` on `database_url` against `emulator`, with `extra`
    /// environment variables, and waits until `/ready` answers 200.
    pub async fn start(
        database_url: &str,
        encryption_key: &str,
        emulator: &Emulator,
        extra: &[(&str, &str)],
    ) -> Self {
        let mut env: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url.into()),
            ("CREDENTIAL_ENCRYPTION_KEY".into(), encryption_key.into()),
            ("TENANTLINK_ADMIN_KEY".into(), ADMIN_KEY.into()),
            ("TENANTLINK_CLOUD".into(), emulator.https_url().into()),
            (
                "TENANTLINK_CA_FILE".into(),
                emulator.ca_path().display().to_string(),
            ),
            ("PORT".into(), "0".into()),
            ("TENANTLINK_RATE_LIMIT_PER_KEY".into(), "1000".into()),
            ("TENANTLINK_RATE_LIMIT_PER_ORG".into(), "2000".into()),
            ("RUST_LOG".into(), "info".into()),
        ];
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            env.push(((*k).into(), (*v).into()));
        }
        Self::spawn(env).await
    }

    /// Starts another process with the same environment (same database).
    pub async fn spawn(env: Vec<(String, String)>) -> Self {
        let log_path = std::env::temp_dir().join(format!(
            "tenantlink-e2e-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_tenantlink"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tenantlink serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let path = log_path.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&path).expect("log file");
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(file, "{line}");
                if sent {
                    continue;
                }
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) if v["fields"]["message"] == "tenantlink serving" => {
                        let _ = tx.send(v["fields"]["address"].as_str().map(str::to_owned));
                        sent = true;
                    }
                    Err(_) if line.starts_with("error:") => {
                        let _ = tx.send(None);
                        sent = true;
                    }
                    _ => {}
                }
            }
        });
        let address = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .expect("join");
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let address = match address {
            Ok(Some(a)) => a,
            other => panic!("tenantlink serve did not start ({other:?}):\n{log}"),
        };
        let server = Self {
            child,
            url: format!("http://{address}"),
            log_path,
            env,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/ready", server.url)).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "never ready:\n{}", server.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process dies at once, as on a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a graceful exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                self.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A client acting with `key` (the admin key or an organization's key).
    pub fn client(&self, key: &str, seen: &Seen) -> Api {
        Api {
            base: self.url.clone(),
            key: key.to_owned(),
            http: reqwest::Client::new(),
            seen: seen.clone(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every answer body a test received, to scan for secrets.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    /// All bodies, joined.
    pub fn all(&self) -> String {
        self.0.lock().expect("lock").join("\n")
    }
}

/// An answer: status, JSON body (Null when not JSON), raw body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub text: String,
}

/// An HTTP client for the API, with a bearer key.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub key: String,
    http: reqwest::Client,
    seen: Seen,
}

impl Api {
    /// Sends `method path` with an optional JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        // Headers are seen too (a secret scan covers them).
        let headers = format!("{:?}", res.headers());
        let text = res.text().await.expect("body");
        self.seen
            .0
            .lock()
            .expect("lock")
            .push(format!("{headers}\n{text}"));
        Answer {
            status,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(reqwest::Method::DELETE, path, None).await
    }
}

/// Creates an organization and an API key through the admin API; returns (org id, key).
pub async fn organization(admin: &Api, name: &str) -> (String, String) {
    let org = admin
        .post("/v1/organizations", serde_json::json!({ "name": name }))
        .await;
    assert_eq!(org.status, 201, "{}", org.text);
    let id = org.json["id"].as_str().expect("id").to_owned();
    let key = admin
        .post(
            &format!("/v1/organizations/{id}/api-keys"),
            serde_json::json!({ "name": "e2e" }),
        )
        .await;
    assert_eq!(key.status, 201, "{}", key.text);
    (id, key.json["key"].as_str().expect("key").to_owned())
}

/// Polls `GET /v1/sync-runs/{id}` until the run is finished; returns its last answer.
pub async fn wait_for_run(api: &Api, run_id: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let run = api.get(&format!("/v1/sync-runs/{run_id}")).await;
        assert_eq!(run.status, 200, "{}", run.text);
        let status = run.json["status"].as_str().unwrap_or_default().to_owned();
        if ["complete", "partial", "failed"].contains(&status.as_str()) {
            return run.json;
        }
        assert!(Instant::now() < deadline, "run {run_id} still {status}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Fails when any of `secrets` appears in `haystack` (`what` names where).
pub fn assert_no_secrets(haystack: &str, secrets: &[&str], what: &str) {
    for secret in secrets {
        assert!(
            secret.len() < 8 || !haystack.contains(secret),
            "a secret ({}…) appears in {what}",
            &secret[..4]
        );
    }
}
