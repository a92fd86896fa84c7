//! Two organizations with synced data, each trying every endpoint of the other with its own
//! key and the other's ids: no read, no write, 404 everywhere, and the other's data intact.

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, Api, Seen, Server, assert_no_secrets, organization, wait_for_run};
use serde_json::{Value, json};
use tenantlink_store::testing::TestDb;

struct Side {
    api: Api,
    connection: String,
    run: String,
    user: String,
    group: String,
}

async fn connect_and_sync(api: &Api, tenant: &tenantlink_emulator::TenantInfo) -> Side {
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
    assert_eq!(queued.status, 202, "{}", queued.text);
    let run = queued.json["id"].as_str().expect("run").to_owned();
    let done = wait_for_run(api, &run, Duration::from_secs(300)).await;
    assert_eq!(done["status"], "complete", "{done}");
    let users = api
        .get(&format!("/v1/connections/{connection}/users?limit=1"))
        .await;
    let groups = api
        .get(&format!("/v1/connections/{connection}/groups?limit=1"))
        .await;
    Side {
        api: api.clone(),
        user: users.json["items"][0]["id"]
            .as_str()
            .expect("user")
            .to_owned(),
        group: groups.json["items"][0]["id"]
            .as_str()
            .expect("group")
            .to_owned(),
        connection,
        run,
    }
}

/// Every organization endpoint that names a connection, run, user or group.
fn requests(a: &Side) -> Vec<(reqwest::Method, String, Option<Value>)> {
    use reqwest::Method as M;
    let c = &a.connection;
    let base = format!("/v1/connections/{c}");
    let (u, g) = (&a.user, &a.group);
    let list = vec![
        (M::GET, base.clone(), None),
        (M::GET, format!("{base}/sync-runs"), None),
        (M::GET, format!("/v1/sync-runs/{}", a.run), None),
        (M::GET, format!("{base}/users"), None),
        (M::GET, format!("{base}/users?search=a"), None),
        (M::GET, format!("{base}/users/{u}"), None),
        (
            M::GET,
            format!("{base}/users/{u}/groups?transitive=true"),
            None,
        ),
        (M::GET, format!("{base}/groups"), None),
        (M::GET, format!("{base}/groups/{g}"), None),
        (
            M::GET,
            format!("{base}/groups/{g}/members?transitive=true"),
            None,
        ),
        (M::GET, format!("{base}/devices"), None),
        (M::GET, format!("{base}/sign-ins"), None),
        (M::GET, format!("{base}/directory-audits"), None),
        (M::GET, format!("{base}/alerts"), None),
        (M::GET, format!("{base}/connect/microsoft"), None),
        (M::GET, format!("{base}/consent/microsoft"), None),
        (
            M::POST,
            format!("{base}/sync"),
            Some(json!({"type": "full"})),
        ),
        (
            M::PUT,
            format!("{base}/secret"),
            Some(json!({"client_secret": "a-new-secret-value"})),
        ),
        (M::DELETE, base.clone(), None),
        (M::DELETE, format!("{base}?purge=true"), None),
    ];
    list
}

async fn isolation(db: TestDb) {
    let emulator = common::emulator(77, 2);
    let tenants = emulator.tenants().to_vec();
    let key = common::fernet_key();
    // The platform's multi-tenant app is configured, so the delegated routes really run.
    let app = emulator.multi_tenant_app().clone();
    let server = Server::start(
        &db.url,
        &key,
        &emulator,
        &[
            ("TENANTLINK_WORKERS", "2"),
            ("MICROSOFT_CLIENT_ID", app.client_id.as_str()),
            ("MICROSOFT_CLIENT_SECRET", app.client_secret.as_str()),
        ],
    )
    .await;
    let seen = Seen::default();
    // The admin's answers hold the issued keys (shown once): not among those scanned.
    let issued = Seen::default();
    let admin = server.client(ADMIN_KEY, &issued);
    let (_, key_a) = organization(&admin, "A").await;
    let (_, key_b) = organization(&admin, "B").await;
    let a = connect_and_sync(&server.client(&key_a, &seen), &tenants[0]).await;
    let b = connect_and_sync(&server.client(&key_b, &seen), &tenants[1]).await;

    let before = db.db.counts(&a.connection).await.expect("counts");
    for (attacker, victim) in [(&b, &a), (&a, &b)] {
        for (method, path, body) in requests(victim) {
            let answer = attacker.api.call(method.clone(), &path, body).await;
            assert_eq!(
                answer.status, 404,
                "{method} {path} with the other organization's key: {}",
                answer.text
            );
            assert_eq!(answer.json["error"]["code"], "not_found", "{}", answer.text);
        }
    }
    // Nothing of A changed: same data, same runs, still connected, still readable by A.
    assert_eq!(db.db.counts(&a.connection).await.expect("counts"), before);
    let own = a
        .api
        .get(&format!("/v1/connections/{}", a.connection))
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert_ne!(own.json["status"], "disconnected");
    let runs = a
        .api
        .get(&format!("/v1/connections/{}/sync-runs", a.connection))
        .await;
    assert_eq!(
        runs.json["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        runs.text
    );
    // Listings show only one's own.
    for side in [&a, &b] {
        let listed = side.api.get("/v1/connections").await;
        let ids: Vec<&str> = listed.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|c| c["id"].as_str())
            .collect();
        assert_eq!(ids, vec![side.connection.as_str()]);
        let status = side.api.get("/v1/microsoft/status").await;
        assert_eq!(
            status.json["id"],
            side.connection.as_str(),
            "{}",
            status.text
        );
        let audit = side.api.get("/v1/audit?limit=500").await;
        assert_eq!(audit.status, 200, "{}", audit.text);
        let other = if std::ptr::eq(side, &a) { &b } else { &a };
        // A key is `tlk_<id>_<secret>`: the other's key id must not appear among one's events.
        let other_key_id = other.api.key.split('_').nth(1).expect("key id");
        assert!(
            !audit.text.contains(other_key_id),
            "the audit listing shows the other organization's events"
        );
    }
    // The platform app's secret (its delegated routes ran), both organizations' keys, the
    // admin key and the vault key: in no log line and no answer.
    let secrets = [
        app.client_secret.as_str(),
        key_a.as_str(),
        key_b.as_str(),
        ADMIN_KEY,
        key.as_str(),
    ];
    assert_no_secrets(&server.logs(), &secrets, "the server's logs");
    assert_no_secrets(&seen.all(), &secrets, "the answers");
}

#[tokio::test(flavor = "multi_thread")]
async fn organizations_cannot_see_or_touch_each_other_on_sqlite() {
    isolation(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn organizations_cannot_see_or_touch_each_other_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        isolation(db).await;
    }
}
