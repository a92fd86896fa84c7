//! Several `tenantlink serve` processes on one PostgreSQL share the sync jobs. One is
//! killed with SIGKILL in the middle of a sync: another takes the job over once its lease
//! has expired and finishes the run from its checkpoints; the job is never run by two
//! workers at once, and it completes once.

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Seen, Server, organization, wait_for_run};
use serde_json::json;
use tenantlink_emulator::TenantSize;
use tenantlink_store::testing::TestDb;

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_s_sync_is_finished_by_another_from_its_checkpoint() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipping: TENANTLINK_TEST_DATABASE_URL is not set");
        return;
    };
    let emulator = common::emulator_of(23, TenantSize::MEDIUM);
    let tenant = emulator.tenants()[0].clone();
    let key = common::fernet_key();
    let extra = [
        ("TENANTLINK_WORKERS", "1"),
        ("TENANTLINK_LEASE_SECS", "5"),
        ("TENANTLINK_SYNC_INTERVAL_SECS", "0"),
    ];
    let first = Server::start(&db.url, &key, &emulator, &extra).await;
    let second = Server::spawn(first.env.clone()).await;
    let mut servers = [first, second];

    let seen = Seen::default();
    let admin = servers[0].client(ADMIN_KEY, &seen);
    let (org, api_key) = organization(&admin, "Northwind").await;
    let api = servers[0].client(&api_key, &seen);
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
    // Slow Graph down so the run is still going when its worker dies.
    common::faults(&emulator, json!({"latency_ms": 120})).await;
    let queued = api
        .post(
            &format!("/v1/connections/{connection}/sync"),
            json!({"type": "full"}),
        )
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let run = queued.json["id"].as_str().expect("run").to_owned();

    // Wait until some pages are committed, then kill whichever process holds the lease.
    let deadline = Instant::now() + Duration::from_secs(120);
    let owner = loop {
        let job = db.db.job(&org, &run).await.expect("job");
        let pages: u64 = api.get(&format!("/v1/sync-runs/{run}")).await.json["progress"]
            .as_array()
            .map_or(0, |p| p.iter().filter_map(|r| r["pages"].as_u64()).sum());
        if let Some(owner) = job
            .lease_owner
            .clone()
            .filter(|_| job.status == "running" && pages >= 3)
        {
            break owner;
        }
        assert!(
            Instant::now() < deadline,
            "the run never got going: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let victim = servers
        .iter()
        .position(|s| owner.starts_with(&format!("{}-", s.pid())))
        .expect("the lease owner is one of the two processes");
    servers[victim].kill();
    let survivor = &servers[1 - victim];
    let api = survivor.client(&api_key, &seen);

    let done = wait_for_run(&api, &run, Duration::from_secs(300)).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(
        done["result"]["resumed"], true,
        "the survivor went on from the checkpoints: {done}"
    );
    let job = db.db.job(&org, &run).await.expect("job");
    // The survivor's worker claimed the job once the dead one's lease ran out.
    let claimed_by_survivor = survivor.logs().lines().any(|line| {
        serde_json::from_str::<serde_json::Value>(line).is_ok_and(|l| {
            let field = |name: &str| {
                l.get(name)
                    .or_else(|| l["fields"].get(name))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            field("message").as_deref() == Some("sync job claimed")
                && field("job").as_deref() == Some(run.as_str())
                && field("worker").is_some_and(|w| w.starts_with(&format!("{}-", survivor.pid())))
        })
    });
    assert!(
        claimed_by_survivor,
        "the survivor's worker logged claiming the job it took over"
    );
    assert_eq!(
        job.attempts, 2,
        "claimed by the dead worker, then once by the survivor"
    );
    // One run of the engine for this connection: taken over, not started again.
    let runs = api
        .get(&format!("/v1/connections/{connection}/sync-runs"))
        .await;
    assert_eq!(
        runs.json["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        runs.text
    );
    // And what it stored is the whole tenant: a second full sync finds nothing to add.
    common::faults(&emulator, json!({"latency_ms": 0})).await;
    let before = db.db.counts(&connection).await.expect("counts");
    let again = api
        .post(
            &format!("/v1/connections/{connection}/sync"),
            json!({"type": "full"}),
        )
        .await;
    let again = wait_for_run(
        &api,
        again.json["id"].as_str().expect("id"),
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(again["status"], "complete", "{again}");
    assert_eq!(db.db.counts(&connection).await.expect("counts"), before);
    assert!(before.users > 0 && before.group_members > 0);
}
