//! The engine against the emulator, on every test database: a full sync stores what the
//! tenant holds; an incremental one right after is incremental and quick.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tenantlink_emulator::{Emulator, EmulatorConfig};
use tenantlink_graph::{DeltaStart, GraphClient, GraphClientOptions};
use tenantlink_identity::{
    AppCredentialConfig, ClientAuth, Cloud, IdentityClient, IdentityClientOptions,
};
use tenantlink_store::testing::TestDb;
use tenantlink_store::{AuthKind, Cursor, Db, NewConnection};
use tenantlink_sync::{
    Completeness, Mode, ProgressEvent, Resource, SyncEngine, SyncOptions, SyncType,
};

fn graph_client(emulator: &Emulator) -> GraphClient {
    paged_client(emulator, None)
}

fn paged_client(emulator: &Emulator, page_size: Option<u32>) -> GraphClient {
    let tenant = &emulator.tenants()[0];
    let identity = IdentityClient::new(
        Cloud::Custom {
            base_url: emulator.https_url().to_owned(),
        },
        &IdentityClientOptions {
            root_certificates_pem: vec![emulator.ca_pem()],
            ..IdentityClientOptions::default()
        },
    )
    .expect("identity client");
    let credential = identity
        .app_credential(AppCredentialConfig {
            tenant_id: tenant.tenant_id.clone(),
            client_id: tenant.connector_app.client_id.clone(),
            auth: ClientAuth::Secret(tenant.connector_app.client_secret.clone().into()),
        })
        .expect("credential");
    GraphClient::new(
        Arc::new(credential),
        GraphClientOptions {
            base_url: emulator.graph_url(),
            extra_root_certificates: vec![emulator.ca_pem()],
            page_size,
            ..GraphClientOptions::default()
        },
    )
    .expect("graph client")
}

/// The tenant's ground truth from the emulator's control API.
async fn ground_truth(emulator: &Emulator) -> Value {
    let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).expect("CA");
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("client");
    let url = format!(
        "{}/_emulator/tenants/{}/state",
        emulator.https_url(),
        emulator.tenants()[0].tenant_id
    );
    http.get(url)
        .send()
        .await
        .expect("state")
        .json()
        .await
        .expect("state JSON")
}

fn active(state: &Value, set: &str) -> Vec<Value> {
    state[set]
        .as_array()
        .expect("a set")
        .iter()
        .filter(|o| o["_state"] == "active")
        .cloned()
        .collect()
}

async fn connect(db: &Db, emulator: &Emulator) -> tenantlink_store::Connection {
    let org = db
        .create_organization("Contoso")
        .await
        .expect("organization");
    db.create_connection(NewConnection {
        organization_id: org.id.clone(),
        tenant_id: emulator.tenants()[0].tenant_id.clone(),
        client_id: emulator.tenants()[0].connector_app.client_id.clone(),
        auth_kind: AuthKind::ClientSecret,
        secret: Some((b"ciphertext".to_vec(), "k1".into())),
        secret_expires_at: None,
        granted_permissions: vec![],
        missing_permissions: vec![],
    })
    .await
    .expect("connection")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_run_goes_on_from_its_checkpoint_and_a_live_one_is_not_doubled() {
    let emulator = Emulator::start(EmulatorConfig {
        tenants: 1,
        ..EmulatorConfig::default()
    })
    .expect("emulator");
    let users = active(&ground_truth(&emulator).await, "users").len() as i64;
    let client = paged_client(&emulator, Some(10));
    for test_db in TestDb::all().await {
        let db = test_db.db.clone();
        let connection = connect(&db, &emulator).await;
        // A users run that committed its first page (of 10 users) and died.
        let run = db.create_run(&connection.id, "users").await.expect("run");
        let mut pages = client.users_delta_pages(&DeltaStart::Initial {
            select: vec!["id".into(), "displayName".into()],
        });
        let first = pages.next().await.expect("a page").expect("first page");
        drop(pages);
        let at = chrono::Utc::now().naive_utc();
        let cursor = Cursor {
            connection_id: connection.id.clone(),
            resource: "users".into(),
            round: 1,
            full_round: true,
            run_id: Some(run.id.clone()),
            next_link: first.next_link.clone(),
            delta_link: None,
            time_cursor: None,
            round_started_at: Some(at),
            pages: 1,
            rows_written: 10,
            updated_at: at,
        };
        db.write_page(
            &tenantlink_sync::plan::users_page(first.changes),
            &cursor,
            at,
        )
        .await
        .expect("first page");

        let engine = SyncEngine::new(db.clone(), client.clone(), connection.id.clone());
        let options = SyncOptions {
            sync_type: SyncType::Users,
            stale_after: Duration::from_secs(1),
            ..SyncOptions::default()
        };
        // Still live: not started twice.
        let live = engine.run(&options, &|_: &ProgressEvent| {}).await;
        assert!(
            matches!(live, Err(tenantlink_sync::Error::AlreadyRunning { .. })),
            "{live:?}"
        );
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let report = engine
            .run(&options, &|_: &ProgressEvent| {})
            .await
            .expect("resumed run");
        assert!(report.resumed);
        assert_eq!(report.run_id, run.id);
        assert_eq!(report.resources[0].mode, Mode::Resumed, "{report:#?}");
        // Not started over: the users after the checkpoint, then everyone's signInActivity.
        assert_eq!(
            report.resources[0].rows as i64,
            (users - 10) + users,
            "{report:#?}"
        );
        assert_eq!(
            db.counts(&connection.id).await.expect("counts").users,
            users
        );
        let stored = db.runs(&connection.id, 5).await.expect("runs");
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].status, "complete");
    }
    emulator.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_then_incremental_sync_matches_the_tenant() {
    let emulator = Emulator::start(EmulatorConfig {
        tenants: 1,
        workers: 8,
        ..EmulatorConfig::default()
    })
    .expect("emulator");
    let state = ground_truth(&emulator).await;
    let users = active(&state, "users").len() as i64;
    let groups = active(&state, "groups");
    let members: i64 = groups
        .iter()
        .map(|g| g["members"].as_array().map_or(0, Vec::len) as i64)
        .sum();
    let devices = active(&state, "managedDevices").len() as i64;

    for test_db in TestDb::all().await {
        let db = test_db.db.clone();
        let org = db
            .create_organization("Contoso")
            .await
            .expect("organization");
        let connection = db
            .create_connection(NewConnection {
                organization_id: org.id.clone(),
                tenant_id: emulator.tenants()[0].tenant_id.clone(),
                client_id: emulator.tenants()[0].connector_app.client_id.clone(),
                auth_kind: AuthKind::ClientSecret,
                secret: Some((b"ciphertext".to_vec(), "k1".into())),
                secret_expires_at: None,
                granted_permissions: vec![],
                missing_permissions: vec![],
            })
            .await
            .expect("connection");
        let engine = SyncEngine::new(db.clone(), graph_client(&emulator), connection.id.clone());
        let pages = AtomicU64::new(0);
        let progress = |e: &ProgressEvent| {
            if matches!(e, ProgressEvent::Page { .. }) {
                pages.fetch_add(1, Ordering::Relaxed);
            }
        };
        let options = SyncOptions {
            sync_type: SyncType::Full,
            audit_lookback: Duration::from_secs(90 * 24 * 3600),
            ..SyncOptions::default()
        };
        let full = engine.run(&options, &progress).await.expect("full sync");
        assert_eq!(full.status, Completeness::Complete, "{full:#?}");
        assert_eq!(full.resources.len(), 6);
        assert!(
            full.resources.iter().all(|r| r.mode == Mode::Full),
            "{full:#?}"
        );
        assert!(pages.load(Ordering::Relaxed) >= 6);

        let counts = db.counts(&connection.id).await.expect("counts");
        assert_eq!(counts.users, users, "{:?}", test_db.backend());
        assert_eq!(counts.groups, groups.len() as i64);
        assert_eq!(counts.group_members, members);
        assert_eq!(counts.devices, devices);
        assert_eq!(
            counts.sign_ins,
            state["counts"]["signIns"].as_i64().expect("n")
        );
        assert_eq!(
            counts.directory_audits,
            state["counts"]["directoryAudits"].as_i64().expect("n")
        );
        assert_eq!(
            counts.alerts,
            state["counts"]["alerts"].as_i64().expect("n")
        );
        let stored = db.users(&connection.id).await.expect("users");
        assert!(
            stored.iter().any(|u| u.manager_id.is_some()),
            "managers stored"
        );
        assert!(
            stored.iter().any(|u| u.last_sign_in_at.is_some()),
            "signInActivity stored"
        );

        let started = Instant::now();
        let options = SyncOptions {
            sync_type: SyncType::Incremental,
            ..options
        };
        let incremental = engine
            .run(&options, &|_: &ProgressEvent| {})
            .await
            .expect("incremental");
        assert_eq!(
            incremental.status,
            Completeness::Complete,
            "{incremental:#?}"
        );
        for r in &incremental.resources {
            assert_eq!(r.mode, Mode::Incremental, "{r:#?}");
            assert_eq!(r.swept, 0);
        }
        let users_report = incremental
            .resources
            .iter()
            .find(|r| r.resource == Resource::Users)
            .expect("users");
        assert!(users_report.pages <= 2, "{users_report:#?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(db.counts(&connection.id).await.expect("counts"), counts);
    }
    emulator.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_delta_token_falls_back_to_a_full_round() {
    let emulator = Emulator::start(EmulatorConfig {
        tenants: 1,
        delta_token_lifetime: Duration::from_secs(1),
        ..EmulatorConfig::default()
    })
    .expect("emulator");
    let users = active(&ground_truth(&emulator).await, "users").len() as i64;
    for test_db in TestDb::all().await {
        let db = test_db.db.clone();
        let connection = connect(&db, &emulator).await;
        let engine = SyncEngine::new(db.clone(), graph_client(&emulator), connection.id.clone());
        let options = SyncOptions::of(SyncType::Users);
        let first = engine
            .run(&options, &|_: &ProgressEvent| {})
            .await
            .expect("first");
        assert_eq!(first.resources[0].mode, Mode::Full);
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let second = engine
            .run(&options, &|_: &ProgressEvent| {})
            .await
            .expect("second");
        let r = &second.resources[0];
        assert_eq!(r.status, Completeness::Complete, "{r:#?}");
        assert_eq!(r.mode, Mode::Full, "{r:#?}");
        assert!(r.fell_back_to_full.is_some(), "{r:#?}");
        let cursor = db
            .cursor(&connection.id, "users")
            .await
            .expect("cursor")
            .expect("a cursor");
        assert_eq!(cursor.round, 2);
        assert_eq!(
            db.counts(&connection.id).await.expect("counts").users,
            users
        );
    }
    emulator.stop();
}
