//! The real `tenantlink` binary against the emulator: connect (secret on stdin, verified
//! before it is stored), sync with a summary, status, `vault rewrap` after a key rotation,
//! and the stored secret as ciphertext our vault and pyca's Fernet decrypt. On SQLite
//! always and on PostgreSQL when a test database is configured.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use tenantlink_emulator::{Emulator, EmulatorConfig};
use tenantlink_store::testing::TestDb;
use tenantlink_vault::{ExposeSecret as _, FernetKey, KeyRing};

fn tenantlink(
    args: &[&str],
    env: &[(&str, String)],
    stdin: &[u8],
    cwd: &std::path::Path,
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenantlink"))
        .args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env_remove("CREDENTIAL_ENCRYPTION_KEY")
        .env_remove("CREDENTIAL_ENCRYPTION_KEY_PREVIOUS")
        .env_remove("TENANTLINK_CLOUD")
        .env_remove("TENANTLINK_CA_FILE")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tenantlink");
    let mut input = child.stdin.take().expect("stdin");
    match input.write_all(stdin) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => panic!("write stdin: {e}"),
    }
    drop(input);
    child.wait_with_output().expect("tenantlink exits")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn assert_hidden(outputs: &[&Output], secrets: &[&str]) {
    for out in outputs {
        for secret in secrets {
            for stream in [&out.stdout, &out.stderr] {
                assert!(!text(stream).contains(secret), "a secret was printed");
            }
        }
    }
}

fn python() -> PathBuf {
    std::env::var_os("TENANTLINK_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python"),
        PathBuf::from,
    )
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tenantlink-cli-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn connect_sync_rotate(db: TestDb) {
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let tenant = emulator.tenants()[0].clone();
    let dir = scratch();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, emulator.ca_pem()).unwrap();
    let old_key = FernetKey::generate()
        .unwrap()
        .to_base64()
        .expose_secret()
        .to_owned();
    let base = vec![
        ("DATABASE_URL", db.url.clone()),
        ("TENANTLINK_CLOUD", emulator.https_url().to_owned()),
        ("TENANTLINK_CA_FILE", ca.display().to_string()),
    ];
    let with_key = |key: &str, previous: Option<&str>| {
        let mut env = base.clone();
        env.push(("CREDENTIAL_ENCRYPTION_KEY", key.to_owned()));
        if let Some(p) = previous {
            env.push(("CREDENTIAL_ENCRYPTION_KEY_PREVIOUS", p.to_owned()));
        }
        env
    };
    let secret = tenant.connector_app.client_secret.clone();

    // A wrong secret is refused by Entra ID and nothing is stored.
    let refused = tenantlink(
        &[
            "connect",
            "--tenant-id",
            &tenant.tenant_id,
            "--client-id",
            &tenant.connector_app.client_id,
        ],
        &with_key(&old_key, None),
        b"not-the-secret\n",
        &dir,
    );
    assert!(!refused.status.success(), "a wrong secret connected");
    assert!(
        text(&refused.stderr).contains("not connected"),
        "{}",
        text(&refused.stderr)
    );
    assert!(db.db.all_connections().await.unwrap().is_empty());

    let connected = tenantlink(
        &[
            "connect",
            "--tenant-id",
            &tenant.tenant_id,
            "--client-id",
            &tenant.connector_app.client_id,
            "--organization",
            "acme",
        ],
        &with_key(&old_key, None),
        format!("{secret}\n").as_bytes(),
        &dir,
    );
    assert_ok(&connected, "connect");
    assert!(
        text(&connected.stdout).contains("User.Read.All"),
        "{}",
        text(&connected.stdout)
    );

    // Stored as ciphertext that our vault and pyca's Fernet both open.
    let stored = db.db.all_connections().await.unwrap().remove(0);
    let ciphertext = String::from_utf8(stored.secret_ciphertext.clone().unwrap()).unwrap();
    assert!(!ciphertext.contains(&secret));
    let old_ring = KeyRing::new(FernetKey::from_base64(&old_key).unwrap());
    let opened = old_ring.decrypt(&ciphertext).unwrap();
    assert_eq!(opened.plaintext.expose_secret(), secret.as_bytes());
    assert_eq!(
        stored.secret_key_id.as_deref(),
        Some(old_ring.primary_id().as_str())
    );
    let py = Command::new(python())
        .args([
            "-c",
            "import sys; from cryptography.fernet import Fernet; \
             sys.stdout.write(Fernet(sys.argv[1].encode()).decrypt(sys.argv[2].encode()).decode())",
            &old_key,
            &ciphertext,
        ])
        .output()
        .expect("run the pinned Python (cargo xtask pyenv makes it)");
    assert!(py.status.success(), "pyca: {}", text(&py.stderr));
    assert_eq!(text(&py.stdout), secret);

    let synced = tenantlink(
        &["sync", "--type", "full"],
        &with_key(&old_key, None),
        b"",
        &dir,
    );
    assert_ok(&synced, "sync");
    let summary = text(&synced.stdout);
    for word in [
        "resource", "users", "groups", "devices", "sign_ins", "complete",
    ] {
        assert!(summary.contains(word), "summary lacks {word}:\n{summary}");
    }
    let counts = db.db.counts(&stored.id).await.unwrap();
    assert!(counts.users > 0 && counts.group_members > 0 && counts.devices > 0);

    let status = tenantlink(&["status", "--json"], &with_key(&old_key, None), b"", &dir);
    assert_ok(&status, "status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status[0]["organization"], "acme");
    assert_eq!(status[0]["counts"]["users"], counts.users);

    // Rotate: a new primary key, the old one kept as previous; rewrap leaves nothing under it.
    let new_key = FernetKey::generate()
        .unwrap()
        .to_base64()
        .expose_secret()
        .to_owned();
    let rewrap = tenantlink(
        &["vault", "rewrap", "--batch", "1"],
        &with_key(&new_key, Some(&old_key)),
        b"",
        &dir,
    );
    assert_ok(&rewrap, "rewrap");
    let new_ring = KeyRing::new(FernetKey::from_base64(&new_key).unwrap());
    let per_key = db.db.secrets_per_key().await.unwrap();
    assert_eq!(per_key, vec![(new_ring.primary_id().to_string(), 1)]);
    assert!(
        text(&rewrap.stdout).contains("re-encrypted 1"),
        "{}",
        text(&rewrap.stdout)
    );
    let rewrapped = db.db.all_connections().await.unwrap().remove(0);
    let token = String::from_utf8(rewrapped.secret_ciphertext.unwrap()).unwrap();
    assert!(
        old_ring.decrypt(&token).is_err(),
        "still readable with the old key"
    );
    assert_eq!(
        new_ring.decrypt(&token).unwrap().plaintext.expose_secret(),
        secret.as_bytes()
    );

    // The new key alone syncs: the secret was really re-encrypted.
    let again = tenantlink(
        &["sync", "--type", "users"],
        &with_key(&new_key, None),
        b"",
        &dir,
    );
    assert_ok(&again, "sync after rewrap");

    assert_hidden(
        &[&refused, &connected, &synced, &rewrap, &again],
        &[&secret, &old_key, &new_key, &ciphertext, &token],
    );
    let _ = std::fs::remove_dir_all(&dir);
    emulator.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_sync_status_and_rewrap_on_sqlite() {
    connect_sync_rotate(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_sync_status_and_rewrap_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        connect_sync_rotate(db).await;
    }
}

#[test]
fn demo_runs_the_whole_job_offline() {
    let dir = scratch();
    let out = tenantlink(&["sync", "--demo"], &[], b"", &dir);
    assert_ok(&out, "sync --demo");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("full") && stdout.contains("incremental"),
        "{stdout}"
    );
    assert!(stdout.contains("complete"), "{stdout}");
    assert!(dir.join("tenantlink-demo.db").exists());
    let status = tenantlink(
        &["status"],
        &[("DATABASE_URL", "sqlite://tenantlink-demo.db".into())],
        b"",
        &dir,
    );
    assert_ok(&status, "status of the demo database");
    assert!(
        text(&status.stdout).contains("demo"),
        "{}",
        text(&status.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = scratch();
    let bad_type = tenantlink(&["sync", "--type", "everything"], &[], b"", &dir);
    assert_eq!(bad_type.status.code(), Some(2));
    assert!(
        text(&bad_type.stderr).contains("incremental"),
        "{}",
        text(&bad_type.stderr)
    );
    let bad_url = tenantlink(
        &["migrate"],
        &[("DATABASE_URL", "mysql://root:hunter2@x/y".into())],
        b"",
        &dir,
    );
    assert!(!bad_url.status.success());
    assert!(text(&bad_url.stderr).contains("DATABASE_URL"));
    assert!(!text(&bad_url.stderr).contains("hunter2"));
    let no_connections = tenantlink(
        &["sync"],
        &[(
            "CREDENTIAL_ENCRYPTION_KEY",
            FernetKey::generate()
                .unwrap()
                .to_base64()
                .expose_secret()
                .to_owned(),
        )],
        b"",
        &dir,
    );
    assert!(!no_connections.status.success());
    assert!(
        text(&no_connections.stderr).contains("tenantlink connect"),
        "{}",
        text(&no_connections.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
