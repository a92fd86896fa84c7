//! Schemathesis (pinned in python/requirements.txt) fuzzes the real server from its own
//! `/openapi.json`: no input may produce a 5xx or a status code the document does not
//! list. Read-only operations get the ids of a synced connection, so they reach real data;
//! the others get generated ids. Bounded in examples and in time.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Seen, Server, organization, wait_for_run};
use serde_json::json;
use tenantlink_store::testing::TestDb;

const LIMIT: Duration = Duration::from_secs(15 * 60);

fn schemathesis() -> Option<PathBuf> {
    let Some(python) = std::env::var_os("TENANTLINK_PYTHON") else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but TENANTLINK_PYTHON is not set (cargo xtask test sets it)"
        );
        eprintln!("skipping: TENANTLINK_PYTHON is not set; `cargo xtask test` sets it");
        return None;
    };
    let bin = PathBuf::from(python).with_file_name("schemathesis");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo xtask pyenv`",
        bin.display()
    );
    Some(bin)
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_undocumented_status() {
    let Some(bin) = schemathesis() else { return };
    let db = TestDb::sqlite().await;
    let emulator = common::emulator(5, 1);
    let tenant = emulator.tenants()[0].clone();
    let server = Server::start(
        &db.url,
        &common::fernet_key(),
        &emulator,
        &[
            ("TENANTLINK_WORKERS", "1"),
            ("TENANTLINK_RATE_LIMIT_PER_KEY", "100000"),
            ("TENANTLINK_RATE_LIMIT_PER_ORG", "100000"),
        ],
    )
    .await;
    let seen = Seen::default();
    let admin = server.client(ADMIN_KEY, &seen);
    let (org, key) = organization(&admin, "Fuzzed").await;
    let api = server.client(&key, &seen);
    let created = api
        .post(
            "/v1/connections",
            json!({
                "tenant_id": tenant.tenant_id,
                "client_id": tenant.connector_app.client_id,
                "client_secret": tenant.connector_app.client_secret,
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let connection = created.json["id"].as_str().expect("id").to_owned();
    let queued = api
        .post(
            &format!("/v1/connections/{connection}/sync"),
            json!({"type": "full"}),
        )
        .await;
    let run = queued.json["id"].as_str().expect("run").to_owned();
    wait_for_run(&api, &run, Duration::from_secs(300)).await;
    let base = format!("/v1/connections/{connection}");
    let user = api.get(&format!("{base}/users?limit=1")).await.json["items"][0]["id"].clone();
    let group = api.get(&format!("{base}/groups?limit=1")).await.json["items"][0]["id"].clone();

    let dir = std::env::temp_dir().join(format!("tenantlink-schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[[operations]]\ninclude-method = \"GET\"\n\
             parameters = {{ \"path.connection_id\" = \"{connection}\", \"path.user_id\" = {user}, \
             \"path.group_id\" = {group}, \"path.id\" = \"{run}\", \"path.organization_id\" = \"{org}\" }}\n"
        ),
    )
    .expect("config");
    // Organization endpoints with an organization's key, admin endpoints with the admin key.
    fuzz(&bin, &config, &server.url, &key, &[], &dir);
    fuzz(
        &bin,
        &config,
        &server.url,
        ADMIN_KEY,
        &["--include-path-regex", "^/v1/organizations"],
        &dir,
    );
    assert!(
        !server.logs().contains("\"status\":500"),
        "a 500 was logged"
    );
}

/// One bounded schemathesis run; fails the test with its report on any finding.
fn fuzz(
    bin: &std::path::Path,
    config: &std::path::Path,
    url: &str,
    key: &str,
    extra: &[&str],
    dir: &std::path::Path,
) {
    let started = Instant::now();
    let report = dir.join(format!("report-{}.txt", started.elapsed().as_nanos()));
    let out = std::fs::File::create(&report).expect("report file");
    let mut child = Command::new(bin)
        .arg("--config-file")
        .arg(config)
        .args(["run", &format!("{url}/openapi.json")])
        .args(["--checks", "not_a_server_error,status_code_conformance"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "25", "--request-timeout", "30"])
        .args(["--generation-deterministic", "--workers", "2"])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::from(out.try_clone().expect("clone")))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("schemathesis runs");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("schemathesis ran longer than {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    assert!(status.success(), "schemathesis found problems:\n{text}");
    // Its summary (phases, operations, test cases) in the test's output.
    let summary: Vec<&str> = text.lines().rev().take(22).collect();
    eprintln!(
        "{}",
        summary.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}
