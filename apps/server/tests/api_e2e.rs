//! The real `tenantlink serve` binary over HTTP against the emulator, on SQLite and on
//! PostgreSQL: the seed platform's four routes; organizations, keys and connections; syncs
//! run by the background workers; every data endpoint; delete with purge; a graceful stop.
//! Every answer and log line is then scanned for the secrets and keys involved.

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, Api, Seen, Server, assert_no_secrets, organization, wait_for_run};
use serde_json::{Value, json};
use tenantlink_store::testing::TestDb;

const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Pages through a listing with `limit`, returning every item.
async fn all_items(api: &Api, path: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut next = format!("{path}{sep}limit={limit}");
    loop {
        let page = api.get(&next).await;
        assert_eq!(page.status, 200, "{next}: {}", page.text);
        let batch = page.json["items"].as_array().expect("items").clone();
        assert!(batch.len() <= limit);
        items.extend(batch);
        match page.json["next_cursor"].as_str() {
            Some(cursor) => next = format!("{path}{sep}limit={limit}&cursor={cursor}"),
            None => return items,
        }
    }
}

async fn whole_api(db: TestDb) {
    let emulator = common::emulator(41, 1);
    let tenant = emulator.tenants()[0].clone();
    let secret = tenant.connector_app.client_secret.clone();
    let key = common::fernet_key();
    let mut server = Server::start(
        &db.url,
        &key,
        &emulator,
        &[
            ("TENANTLINK_WORKERS", "2"),
            ("TENANTLINK_SYNC_INTERVAL_SECS", "0"),
        ],
    )
    .await;
    let admin_seen = Seen::default();
    let seen = Seen::default();
    let admin = server.client(ADMIN_KEY, &admin_seen);
    let (org, api_key) = organization(&admin, "Contoso").await;
    let api = server.client(&api_key, &seen);

    // The seed platform's routes.
    let status = api.get("/v1/microsoft/status").await;
    assert_eq!(status.status, 200, "{}", status.text);
    assert_eq!(status.json["connected"], false, "{}", status.text);
    let wrong = api
        .post(
            "/v1/microsoft/setup",
            json!({"tenant_id": tenant.tenant_id, "client_id": tenant.connector_app.client_id, "client_secret": "not-the-secret"}),
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.text);
    assert_eq!(api.get("/v1/connections").await.json["items"], json!([]));
    let setup = api
        .post(
            "/v1/microsoft/setup",
            json!({"tenant_id": tenant.tenant_id, "client_id": tenant.connector_app.client_id, "client_secret": secret}),
        )
        .await;
    assert!(setup.status == 201 || setup.status == 200, "{}", setup.text);
    let connection = setup.json["id"].as_str().expect("connection id").to_owned();
    let status = api.get("/v1/microsoft/status").await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json["id"], connection.as_str(), "{}", status.text);
    let stored = db
        .db
        .connection(&org, &connection)
        .await
        .expect("stored connection")
        .secret_ciphertext
        .map(|c| String::from_utf8(c).expect("a Fernet token is ASCII"));
    assert!(
        stored.as_deref().is_some_and(|t| t.starts_with("gAAAAA")),
        "stored as a Fernet token"
    );

    let queued = api
        .post("/v1/microsoft/sync", json!({"type": "full"}))
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let run = wait_for_run(
        &api,
        queued.json["id"].as_str().expect("run id"),
        RUN_TIMEOUT,
    )
    .await;
    assert_eq!(run["status"], "complete", "{run}");
    let queued = api
        .post("/v1/microsoft/sync", json!({"type": "users_only"}))
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let run = wait_for_run(
        &api,
        queued.json["id"].as_str().expect("run id"),
        RUN_TIMEOUT,
    )
    .await;
    assert_eq!(run["status"], "complete", "{run}");
    assert_eq!(
        api.post("/v1/microsoft/sync", json!({"type": "everything"}))
            .await
            .status,
        400
    );

    // The same over the organization API.
    let queued = api
        .post(
            &format!("/v1/connections/{connection}/sync"),
            json!({"type": "incremental"}),
        )
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let run = wait_for_run(
        &api,
        queued.json["id"].as_str().expect("run id"),
        RUN_TIMEOUT,
    )
    .await;
    assert_eq!(run["status"], "complete", "{run}");
    let runs = api
        .get(&format!("/v1/connections/{connection}/sync-runs"))
        .await;
    assert_eq!(runs.status, 200, "{}", runs.text);
    assert_eq!(
        runs.json["items"].as_array().map(Vec::len),
        Some(3),
        "{}",
        runs.text
    );
    let listed = api.get("/v1/connections").await;
    assert_eq!(listed.json["items"].as_array().map(Vec::len), Some(1));
    let got = api.get(&format!("/v1/connections/{connection}")).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json["tenant_id"], tenant.tenant_id.as_str());

    // Every data endpoint, checked against what the store holds.
    let counts = db.db.counts(&connection).await.expect("counts");
    let base = format!("/v1/connections/{connection}");
    let users = all_items(&api, &format!("{base}/users"), 97).await;
    assert_eq!(users.len() as i64, counts.users);
    let mut ids: Vec<&str> = users.iter().filter_map(|u| u["id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), users.len(), "a user appeared twice across pages");
    let groups = all_items(&api, &format!("{base}/groups"), 100).await;
    assert_eq!(groups.len() as i64, counts.groups);
    let devices = all_items(&api, &format!("{base}/devices"), 500).await;
    assert_eq!(devices.len() as i64, counts.devices);
    let sign_ins = all_items(&api, &format!("{base}/sign-ins"), 1000).await;
    assert_eq!(sign_ins.len() as i64, counts.sign_ins);
    let audits = all_items(&api, &format!("{base}/directory-audits"), 1000).await;
    assert_eq!(audits.len() as i64, counts.directory_audits);
    let alerts = all_items(&api, &format!("{base}/alerts"), 1000).await;
    assert_eq!(alerts.len() as i64, counts.alerts);

    let user = users
        .iter()
        .find(|u| u["department"].is_string())
        .expect("a user with a department");
    let user_id = user["id"].as_str().expect("id");
    let one = api.get(&format!("{base}/users/{user_id}")).await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.json["id"], user_id);
    let department = user["department"].as_str().expect("department");
    let in_department = all_items(
        &api,
        &format!("{base}/users?department={}", urlencode(department)),
        100,
    )
    .await;
    assert!(in_department.iter().all(|u| u["department"] == department));
    assert!(!in_department.is_empty());
    let name = user["display_name"].as_str().expect("name");
    let prefix: String = name.chars().take(3).collect();
    let found = all_items(
        &api,
        &format!("{base}/users?search={}", urlencode(&prefix.to_uppercase())),
        100,
    )
    .await;
    assert!(
        found.iter().any(|u| u["id"] == user_id),
        "search {prefix:?}"
    );

    // Group membership, direct and transitive, both ways.
    let mut checked_nested = false;
    for group in &groups {
        let gid = group["id"].as_str().expect("id");
        let direct = all_items(
            &api,
            &format!("{base}/groups/{gid}/members?transitive=false"),
            200,
        )
        .await;
        let transitive = all_items(
            &api,
            &format!("{base}/groups/{gid}/members?transitive=true"),
            200,
        )
        .await;
        assert!(transitive.len() >= direct.len());
        if direct.iter().any(|m| m["member_type"] == "group") {
            assert!(
                transitive.len() > direct.len(),
                "a nested group adds members"
            );
            checked_nested = true;
            break;
        }
    }
    assert!(checked_nested, "the seeded tenant has nested groups");
    let gid = groups[0]["id"].as_str().expect("id");
    assert_eq!(api.get(&format!("{base}/groups/{gid}")).await.status, 200);
    let member_of = api
        .get(&format!("{base}/users/{user_id}/groups?transitive=true"))
        .await;
    assert_eq!(member_of.status, 200, "{}", member_of.text);

    // Bad input: clear 4xx answers.
    for path in [
        format!("{base}/users?limit=0"),
        format!("{base}/users?limit=100000"),
        format!("{base}/users?cursor=not-a-cursor"),
        format!("{base}/users?enabled=maybe"),
        format!("{base}/sign-ins?from=yesterday"),
    ] {
        let answer = api.get(&path).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.text);
        assert!(answer.json["error"]["code"].is_string(), "{}", answer.text);
    }
    assert_eq!(
        api.get(&format!(
            "{base}/users/00000000-0000-0000-0000-000000000000"
        ))
        .await
        .status,
        404
    );

    // The audit trail saw this organization's calls.
    let audit = api.get("/v1/audit?limit=200").await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    assert!(audit.json["items"].as_array().is_some_and(|e| e.len() > 10));
    assert!(
        audit.text.contains("sync.run"),
        "the workers' sync runs are in the trail: {}",
        audit.text
    );

    // Rotate (same secret: verified again), disconnect, then delete with purge.
    let rotated = api
        .put(
            &format!("{base}/secret"),
            json!({"client_secret": tenant.connector_app.client_secret}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let gone = api.delete("/v1/microsoft/disconnect").await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    let status = api.get(&base).await;
    assert_eq!(status.json["status"], "disconnected", "{}", status.text);
    assert!(
        db.db.counts(&connection).await.expect("counts").users > 0,
        "data kept"
    );
    let purged = api.delete(&format!("{base}?purge=true")).await;
    assert_eq!(purged.status, 204, "{}", purged.text);
    assert_eq!(api.get(&format!("{base}/users")).await.status, 404);
    assert_eq!(db.db.counts(&connection).await.expect("counts").users, 0);

    assert!(
        server.terminate(),
        "a graceful stop exits 0:\n{}",
        server.logs()
    );

    // The audit trail's hash chain holds; altering one event breaks it there.
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tenantlink"))
            .args(["audit", "verify"])
            .env("DATABASE_URL", &db.url)
            .output()
            .expect("tenantlink audit verify")
    };
    let intact = verify();
    let said = String::from_utf8_lossy(&intact.stdout).into_owned();
    assert!(intact.status.success() && said.contains("intact"), "{said}");
    let tamper = match db.db.backend() {
        tenantlink_store::Backend::Postgres => {
            "ALTER TABLE audit_events DISABLE TRIGGER USER; \
             UPDATE audit_events SET outcome = CASE outcome WHEN '200' THEN '201' ELSE '200' END \
             WHERE seq = 5"
        }
        tenantlink_store::Backend::Sqlite => {
            "DROP TRIGGER audit_events_no_update; \
             UPDATE audit_events SET outcome = CASE outcome WHEN '200' THEN '201' ELSE '200' END \
             WHERE seq = 5"
        }
    };
    db.db.execute_admin(tamper).await.expect("tamper");
    let broken = verify();
    let said = String::from_utf8_lossy(&broken.stdout).into_owned();
    assert_eq!(broken.status.code(), Some(1), "{said}");
    assert!(said.contains("seq 5"), "{said}");

    // No secret in any answer or log line.
    let logs = server.logs();
    assert!(logs.lines().count() > 20, "JSON logs were written");
    for line in logs.lines().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<Value>(line).expect("every log line is JSON");
    }
    let stored = stored.as_deref().unwrap_or("");
    let secrets = [
        secret.as_str(),
        api_key.as_str(),
        ADMIN_KEY,
        key.as_str(),
        stored,
    ];
    assert_no_secrets(&logs, &secrets, "the server's logs");
    assert_no_secrets(&seen.all(), &secrets, "the organization's answers");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_api_on_sqlite() {
    whole_api(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_api_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        whole_api(db).await;
    }
}
