//! Acceptance tests of the sync engine: a tenant in the emulator synced into every test
//! database (SQLite, and PostgreSQL when `TENANTLINK_TEST_DATABASE_URL` is set), compared
//! with the emulator's ground truth after full, incremental, faulty, interrupted, expired and
//! under-privileged runs.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tenantlink_emulator::rng::Rng;
use tenantlink_store::{Db, DbConfig};
use tenantlink_sync::{Completeness, Mode, ProgressEvent, Resource, SyncEngine, SyncType};

use common::{
    ALL, Harness, Truth, Which, assert_matches, databases, options, resource, run, snapshot,
    summary,
};

/// Scenario 1: a full sync equals the ground truth; an incremental run right after changes nothing
/// and is incremental.
async fn full_sync_equals_the_tenant_and_a_quiet_incremental_changes_nothing(which: Which) {
    let h = Harness::start(11);
    let truth = h.truth().await;
    assert!(
        !truth.nested_groups().is_empty(),
        "the seeded tenant has nested groups"
    );
    for (testdb, conn) in databases(which, &h.tenant(), &h.connector().app.client_id).await {
        let backend = testdb.backend();
        let engine = SyncEngine::new(testdb.db.clone(), h.connector().client(), conn.clone());
        let (report, seen) = run(&engine, &options(SyncType::Full)).await;
        assert_eq!(
            report.status,
            Completeness::Complete,
            "{backend:?} full run:\n{}",
            summary(&report)
        );
        assert!(!report.resumed, "{backend:?}: a first run resumes nothing");
        assert!(
            seen.pages > ALL.len() as u64,
            "{backend:?}: pages of {} make several pages: {}",
            common::PAGE_SIZE,
            seen.pages
        );
        for r in ALL {
            assert_eq!(
                resource(&report, r).status,
                Completeness::Complete,
                "{backend:?} {r:?}"
            );
        }
        assert_matches(
            &format!("{backend:?} after a full run"),
            &testdb.db,
            &conn,
            &truth,
            &[],
        )
        .await;

        let before = snapshot(&testdb.db, &conn).await;
        let (report, _) = run(&engine, &options(SyncType::Incremental)).await;
        assert_eq!(
            report.status,
            Completeness::Complete,
            "{backend:?} incremental run:\n{}",
            summary(&report)
        );
        for r in [
            Resource::Users,
            Resource::Groups,
            Resource::SignIns,
            Resource::DirectoryAudits,
        ] {
            assert_eq!(
                resource(&report, r).mode,
                Mode::Incremental,
                "{backend:?} {r:?} of the second run:\n{}",
                summary(&report)
            );
        }
        for r in [Resource::Users, Resource::Groups] {
            let rr = resource(&report, r);
            assert_eq!(
                (rr.removed, rr.swept),
                (0, 0),
                "{backend:?} {r:?}: nothing changed in the tenant, nothing is removed"
            );
        }
        let after = snapshot(&testdb.db, &conn).await;
        assert!(
            before == after,
            "{backend:?}: an incremental run with no change in the tenant changed the database"
        );
        assert_matches(
            &format!("{backend:?} after a quiet incremental"),
            &testdb.db,
            &conn,
            &h.truth().await,
            &[],
        )
        .await;
    }
}

/// Random (seeded) changes through the control API: user creates, updates, hard and soft
/// deletes and a restore; group create, update and hard delete; membership adds and
/// removes; device creates, updates and deletes; new sign-ins. Returns the users left
/// soft-deleted.
async fn change_the_tenant(h: &Harness, rng: &mut Rng, tag: &str) -> Vec<String> {
    let truth = h.truth().await;
    let domain = h.domain();
    let managers = truth.managers();
    let user_ids: Vec<String> = truth.users.keys().cloned().collect();
    // New managers are users that already manage someone: never deleted below, so no
    // manager link points at a deleted user.
    let manager_pool: Vec<String> = managers.iter().cloned().collect();
    assert!(!manager_pool.is_empty(), "the seeded tenant has managers");
    let mut untouched: Vec<String> = user_ids
        .iter()
        .filter(|u| !managers.contains(*u))
        .cloned()
        .collect();
    let mut take = |rng: &mut Rng| -> String {
        let i = rng.below(untouched.len());
        untouched.swap_remove(i)
    };

    // Creates, some with a manager.
    let mut created = Vec::new();
    for i in 0..5 {
        let manager = rng.pick(&manager_pool).clone();
        let mut body = json!({
            "displayName": format!("Accept {tag} {i}"),
            "userPrincipalName": format!("accept.{tag}.{i}@{domain}"),
            "mailNickname": format!("accept.{tag}.{i}"),
            "department": "Acceptance",
            "jobTitle": "Tester",
            "accountEnabled": i % 2 == 0,
        });
        if i % 2 == 1 {
            body["managerId"] = json!(manager);
        }
        let u = h
            .control(Method::POST, "/_emulator/tenants/{t}/users", Some(body))
            .await;
        created.push(u["id"].as_str().expect("new user id").to_owned());
    }
    // Updates: department, title, name, enabled, manager.
    for i in 0..6 {
        let id = take(rng);
        let manager = loop {
            let m = rng.pick(&manager_pool).clone();
            if m != id {
                break m;
            }
        };
        h.control(
            Method::PATCH,
            &format!("/_emulator/tenants/{{t}}/users/{id}"),
            Some(json!({
                "department": format!("Dept {tag} {i}"),
                "jobTitle": format!("Title {tag} {i}"),
                "displayName": format!("Renamed {tag} {i}"),
                "accountEnabled": i % 2 == 0,
                "managerId": manager,
            })),
        )
        .await;
    }
    // Hard deletes.
    for _ in 0..3 {
        let id = take(rng);
        h.control(
            Method::DELETE,
            &format!("/_emulator/tenants/{{t}}/users/{id}?permanent=true"),
            None,
        )
        .await;
    }
    // Soft deletes, one of them restored.
    let mut soft = Vec::new();
    for _ in 0..3 {
        let id = take(rng);
        h.control(
            Method::DELETE,
            &format!("/_emulator/tenants/{{t}}/users/{id}"),
            None,
        )
        .await;
        soft.push(id);
    }
    let restored = soft.remove(rng.below(soft.len()));
    h.control(
        Method::POST,
        &format!("/_emulator/tenants/{{t}}/users/{restored}/restore"),
        None,
    )
    .await;

    // Groups: one created with members, one renamed, one hard-deleted (not a nested one).
    let group_ids: Vec<String> = truth.groups.keys().cloned().collect();
    let live_users: Vec<String> = untouched.clone();
    let members: Vec<String> = (0..4)
        .map(|_| rng.pick(&live_users).clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let new_group = h
        .control(
            Method::POST,
            "/_emulator/tenants/{t}/groups",
            Some(json!({
                "displayName": format!("Accept group {tag}"),
                "mailNickname": format!("accept-group-{tag}"),
                "mailEnabled": false,
                "securityEnabled": true,
                "members": members,
            })),
        )
        .await;
    let new_group = new_group["id"].as_str().expect("new group id").to_owned();
    let renamed = rng.pick(&group_ids).clone();
    h.control(
        Method::PATCH,
        &format!("/_emulator/tenants/{{t}}/groups/{renamed}"),
        Some(json!({"displayName": format!("Renamed group {tag}"), "description": "changed"})),
    )
    .await;
    let nested = truth.nested_groups();
    let deletable: Vec<&String> = group_ids
        .iter()
        .filter(|g| **g != renamed && !nested.contains(g))
        .collect();
    if !deletable.is_empty() {
        let gone = (*rng.pick(&deletable)).clone();
        h.control(
            Method::DELETE,
            &format!("/_emulator/tenants/{{t}}/groups/{gone}?permanent=true"),
            None,
        )
        .await;
    }
    // Membership adds (users and one nesting) and removes.
    let after = h.truth().await;
    let groups_now: Vec<String> = after.groups.keys().cloned().collect();
    for _ in 0..6 {
        let g = rng.pick(&groups_now).clone();
        let u = rng.pick(&live_users).clone();
        // 400 when already a member: nothing changes, which is fine.
        let _ = h
            .try_control(
                Method::POST,
                &format!("/_emulator/tenants/{{t}}/groups/{g}/members"),
                Some(json!({"id": u})),
            )
            .await;
    }
    let _ = h
        .try_control(
            Method::POST,
            &format!(
                "/_emulator/tenants/{{t}}/groups/{}/members",
                rng.pick(&groups_now)
            ),
            Some(json!({"id": new_group})),
        )
        .await;
    let edges: Vec<(String, String)> = after.edges.keys().cloned().collect();
    for _ in 0..4 {
        let (g, m) = rng.pick(&edges).clone();
        let _ = h
            .try_control(
                Method::DELETE,
                &format!("/_emulator/tenants/{{t}}/groups/{g}/members/{m}"),
                None,
            )
            .await;
    }

    // Devices: two new, three changed, two deleted.
    let device_ids: Vec<String> = truth.devices.keys().cloned().collect();
    for i in 0..2 {
        h.control(
            Method::POST,
            "/_emulator/tenants/{t}/managedDevices",
            Some(json!({
                "deviceName": format!("ACCEPT-{tag}-{i}"),
                "userId": rng.pick(&live_users),
                "operatingSystem": "macOS",
                "complianceState": "noncompliant",
            })),
        )
        .await;
    }
    let mut devices = device_ids.clone();
    for i in 0..5 {
        let id = devices.swap_remove(rng.below(devices.len()));
        if i < 3 {
            h.control(
                Method::PATCH,
                &format!("/_emulator/tenants/{{t}}/managedDevices/{id}"),
                Some(json!({
                    "complianceState": if i % 2 == 0 { "inGracePeriod" } else { "noncompliant" },
                    "lastSyncDateTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "userId": rng.pick(&live_users),
                })),
            )
            .await;
        } else {
            h.control(
                Method::DELETE,
                &format!("/_emulator/tenants/{{t}}/managedDevices/{id}"),
                None,
            )
            .await;
        }
    }
    // New sign-ins.
    for _ in 0..5 {
        h.control(
            Method::POST,
            "/_emulator/tenants/{t}/signIns",
            Some(json!({"userId": rng.pick(&live_users)})),
        )
        .await;
    }
    soft
}

/// Scenario 2: after random changes in the tenant an incremental run brings the database to the
/// ground truth: soft-deleted users kept and marked, hard-deleted ones gone.
async fn incremental_after_random_changes_equals_the_tenant(which: Which) {
    let h = Harness::start(12);
    let mut rng = Rng::new(2024);
    let dbs = databases(which, &h.tenant(), &h.connector().app.client_id).await;
    for (testdb, conn) in &dbs {
        let engine = SyncEngine::new(testdb.db.clone(), h.connector().client(), conn.clone());
        let (report, _) = run(&engine, &options(SyncType::Full)).await;
        assert_eq!(
            report.status,
            Completeness::Complete,
            "{}",
            summary(&report)
        );
    }
    // The same changes for every backend: all databases synced the same tenant before them.
    let soft = change_the_tenant(&h, &mut rng, "a").await;
    let truth: Truth = h.truth().await;
    for (testdb, conn) in &dbs {
        let backend = testdb.backend();
        let engine = SyncEngine::new(testdb.db.clone(), h.connector().client(), conn.clone());
        // Deleted devices are only seen by a full device listing (no delta for devices).
        let sweep_devices = tenantlink_sync::SyncOptions {
            devices_full_every: std::time::Duration::ZERO,
            ..options(SyncType::Incremental)
        };
        let (report, _) = run(&engine, &sweep_devices).await;
        assert_eq!(
            report.status,
            Completeness::Complete,
            "{backend:?}:\n{}",
            summary(&report)
        );
        assert_eq!(resource(&report, Resource::Devices).mode, Mode::Full);
        for r in [Resource::Users, Resource::Groups] {
            assert_eq!(
                resource(&report, r).mode,
                Mode::Incremental,
                "{backend:?} {r:?}:\n{}",
                summary(&report)
            );
        }
        assert_matches(
            &format!("{backend:?} after changes and an incremental run"),
            &testdb.db,
            conn,
            &truth,
            &soft,
        )
        .await;
    }
}

/// Scenario 3: with about a tenth of Graph's answers throttled, failing or dropped, a run with a
/// patient retry policy still ends with the ground truth, and its report counts retries.
async fn faults_are_retried_and_the_result_equals_the_tenant(which: Which) {
    let h = Harness::start(13);
    let truth = h.truth().await;
    h.faults(json!({"rate_429": 0.03, "rate_500": 0.03, "rate_503": 0.02, "drop_rate": 0.02}))
        .await;
    for (testdb, conn) in databases(which, &h.tenant(), &h.connector().app.client_id).await {
        let backend = testdb.backend();
        // Faults are drawn at random per request. With pages of 20 the small tenant took
        // about 40 requests, and one run in 70 drew no fault at all (no retry to report);
        // with pages of 4, about 190 requests, one in 300 million does.
        let client = h.connector().client_paged(4);
        let engine = SyncEngine::new(testdb.db.clone(), client, conn.clone());
        let (report, _) = run(&engine, &options(SyncType::Full)).await;
        assert_eq!(
            report.status,
            Completeness::Complete,
            "{backend:?} with faults:\n{}",
            summary(&report)
        );
        let retries: u64 = report.resources.iter().map(|r| r.retries).sum();
        assert!(
            retries > 0,
            "{backend:?}: with a tenth of answers failing the report shows retries:\n{}",
            summary(&report)
        );
        assert_matches(
            &format!("{backend:?} with faults"),
            &testdb.db,
            &conn,
            &truth,
            &[],
        )
        .await;
    }
}

/// Scenario 4: a run killed after a few pages (its runtime, its tasks and its database pool gone, as
/// when the process dies) is resumed by the next run: it goes on from the stored links
/// instead of starting over, and nothing is lost or stored twice.
async fn a_killed_run_is_resumed_where_it_stopped(which: Which) {
    let h = Harness::start(14);
    let truth = h.truth().await;
    let mut rng = Rng::new(4);
    for (mut testdb, clean_conn) in
        databases(which, &h.tenant(), &h.connector().app.client_id).await
    {
        let backend = testdb.backend();
        // A clean run, for its page count.
        let engine = SyncEngine::new(
            testdb.db.clone(),
            h.connector().client(),
            clean_conn.clone(),
        );
        let (_, clean) = run(&engine, &options(SyncType::Full)).await;
        drop(engine);
        assert!(
            clean.pages >= 6,
            "{backend:?}: a clean run takes {} pages",
            clean.pages
        );

        let conn = common::connection(&testdb.db, &h.tenant(), &h.connector().app.client_id).await;
        let kill_after = 2 + rng.below((clean.pages / 2) as usize - 1) as u64;
        let setup = h.connector();
        let url = testdb.url.clone();
        let conn2 = conn.clone();
        let first_pages = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let pages = rt.block_on(async move {
                let db = Db::connect(&DbConfig::new(url)).await.expect("connect");
                let engine = SyncEngine::new(db, setup.client(), conn2);
                let pages = Arc::new(AtomicU64::new(0));
                let kill = Arc::new(tokio::sync::Notify::new());
                let progress = {
                    let (pages, kill) = (pages.clone(), kill.clone());
                    move |event: &ProgressEvent| {
                        if let ProgressEvent::Page { .. } = event
                            && pages.fetch_add(1, Ordering::SeqCst) + 1 == kill_after
                        {
                            kill.notify_one();
                        }
                    }
                };
                let opts = options(SyncType::Full);
                tokio::select! {
                    finished = engine.run(&opts, &progress) => {
                        panic!("the run ended before its kill after {kill_after} pages: {:?}", finished.map(|r| r.status));
                    }
                    () = kill.notified() => {}
                }
                pages.load(Ordering::SeqCst)
            });
            // Dropping the runtime ends every task of the run, as a dead process would.
            drop(rt);
            pages
        })
        .join()
        .expect("the killed run's thread");
        assert!(first_pages >= kill_after);
        // Reconnect: every pooled connection of before the kill is gone.
        let fresh = Db::connect(&DbConfig::new(testdb.url.clone()))
            .await
            .expect("reconnect");
        drop(std::mem::replace(&mut testdb.db, fresh));

        let engine = SyncEngine::new(testdb.db.clone(), h.connector().client(), conn.clone());
        // The brief's `stale_after: Duration::ZERO` is refused by the engine ("stale_after
        // must be at least a second"): take the smallest it allows and wait until the
        // interrupted run is that stale (a condition on its stored `updated_at`, not a
        // measurement).
        let stale_after = Duration::from_secs(1);
        let interrupted = testdb
            .db
            .runs(&conn, 1)
            .await
            .expect("runs")
            .into_iter()
            .next()
            .expect("the killed run is recorded");
        assert_eq!(
            interrupted.status, "running",
            "{backend:?}: the killed run is left running"
        );
        let stale_at = interrupted.updated_at
            + chrono::Duration::from_std(stale_after).expect("duration")
            + chrono::Duration::milliseconds(100);
        while chrono::Utc::now().naive_utc() <= stale_at {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let opts = tenantlink_sync::SyncOptions {
            stale_after,
            ..options(SyncType::Full)
        };
        let cursors_before = testdb.db.cursors(&conn).await.expect("cursors");
        let (report, second) = run(&engine, &opts).await;
        assert!(
            report.resumed,
            "{backend:?}: the interrupted run is resumed:\n{}",
            summary(&report)
        );
        assert_eq!(
            second.started_resumed,
            Some(true),
            "{backend:?}: RunStarted says resumed"
        );
        assert_eq!(
            report.status,
            Completeness::Complete,
            "{backend:?}:\n{}",
            summary(&report)
        );
        // Every resource the kill left mid-round goes on from its stored link (the kill
        // may also fall between rounds, when there is none).
        for cursor in cursors_before.iter().filter(|c| {
            c.next_link.is_some() && c.run_id.as_deref() == Some(interrupted.id.as_str())
        }) {
            let resumed = report
                .resources
                .iter()
                .find(|r| r.resource.as_str() == cursor.resource)
                .expect("the resource is reported");
            assert_eq!(
                resumed.mode,
                Mode::Resumed,
                "{backend:?}: {} goes on from its stored link (killed after {kill_after} pages, {first_pages} seen):\n{}",
                cursor.resource,
                summary(&report)
            );
        }
        assert!(
            second.pages < clean.pages,
            "{backend:?}: the resumed run fetched {} pages, a clean run {}: it started over",
            second.pages,
            clean.pages
        );
        assert!(
            first_pages + second.pages < 2 * clean.pages,
            "{backend:?}: killed after {first_pages} pages, resumed with {}, clean {}",
            second.pages,
            clean.pages
        );
        assert_matches(
            &format!("{backend:?} after kill and resume"),
            &testdb.db,
            &conn,
            &truth,
            &[],
        )
        .await;
        let clean_counts = testdb.db.counts(&clean_conn).await.expect("counts");
        let counts = testdb.db.counts(&conn).await.expect("counts");
        assert_eq!(
            counts, clean_counts,
            "{backend:?}: the resumed connection holds what a clean run holds"
        );
    }
}

/// Scenario 5: stored delta links that expired make users and groups fall back to a full round;
/// the result is the ground truth, deleted objects swept.
async fn expired_delta_tokens_fall_back_to_a_full_round(which: Which) {
    let h = Harness::start(15);
    let mut rng = Rng::new(5);
    let dbs = databases(which, &h.tenant(), &h.connector().app.client_id).await;
    for (testdb, conn) in &dbs {
        let engine = SyncEngine::new(testdb.db.clone(), h.connector().client(), conn.clone());
        let (report, _) = run(&engine, &options(SyncType::Full)).await;
        assert_eq!(
            report.status,
            Completeness::Complete,
            "{}",
            summary(&report)
        );
    }
    // Delta tokens live 0 s: a token from a second ago is expired.
    h.faults(json!({"delta_token_lifetime_secs": 0})).await;
    let synced_at = chrono::Utc::now().timestamp();
    while chrono::Utc::now().timestamp() <= synced_at + 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    change_the_tenant(&h, &mut rng, "e").await;
    let truth = h.truth().await;
    for (testdb, conn) in &dbs {
        let backend = testdb.backend();
        let engine = SyncEngine::new(testdb.db.clone(), h.connector().client(), conn.clone());
        // Deleted devices are only seen by a full device listing (no delta for devices).
        let sweep_devices = tenantlink_sync::SyncOptions {
            devices_full_every: std::time::Duration::ZERO,
            ..options(SyncType::Incremental)
        };
        let (report, _) = run(&engine, &sweep_devices).await;
        assert_eq!(
            report.status,
            Completeness::Complete,
            "{backend:?}:\n{}",
            summary(&report)
        );
        assert_eq!(resource(&report, Resource::Devices).mode, Mode::Full);
        for r in [Resource::Users, Resource::Groups] {
            assert!(
                resource(&report, r).fell_back_to_full.is_some(),
                "{backend:?} {r:?} reports its fall back to a full round:\n{}",
                summary(&report)
            );
        }
        // After a full round soft-deleted users are not required to be kept.
        assert_matches(
            &format!("{backend:?} after expired delta tokens"),
            &testdb.db,
            conn,
            &truth,
            &[],
        )
        .await;
    }
}

/// Scenario 6: a connection whose app may read users only: users complete, everything else partial
/// with the permission it lacks named.
async fn a_missing_permission_makes_those_resources_partial(which: Which) {
    let h = Harness::start(16);
    let truth = h.truth().await;
    let limited = h.limited();
    for (testdb, conn) in databases(which, &h.tenant(), &limited.app.client_id).await {
        let backend = testdb.backend();
        let engine = SyncEngine::new(testdb.db.clone(), limited.client(), conn.clone());
        let (report, _) = run(&engine, &options(SyncType::Full)).await;
        assert_eq!(
            report.status,
            Completeness::Partial,
            "{backend:?}:\n{}",
            summary(&report)
        );
        // Users themselves are readable with User.Read.All; their `signInActivity` needs
        // AuditLog.Read.All. The engine reports users Partial naming AuditLog.Read.All
        // (every row stored, sign-in activity missing): accepted as the honest report,
        // and nothing else is.
        let users = resource(&report, Resource::Users);
        assert!(
            users.status == Completeness::Complete
                || (users.status == Completeness::Partial
                    && users.missing_permission.as_deref() == Some("AuditLog.Read.All")),
            "{backend:?}: User.Read.All reads users:\n{}",
            summary(&report)
        );
        let needs: [(Resource, &[&str]); 5] = [
            (
                Resource::Groups,
                &[
                    "GroupMember.Read.All",
                    "Group.Read.All",
                    "Directory.Read.All",
                ],
            ),
            (
                Resource::Devices,
                &["DeviceManagementManagedDevices.Read.All"],
            ),
            (Resource::SignIns, &["AuditLog.Read.All"]),
            (Resource::DirectoryAudits, &["AuditLog.Read.All"]),
            (
                Resource::Alerts,
                &["SecurityAlert.Read.All", "SecurityAlert.ReadWrite.All"],
            ),
        ];
        for (r, permissions) in needs {
            let rr = resource(&report, r);
            assert_eq!(
                rr.status,
                Completeness::Partial,
                "{backend:?} {r:?}:\n{}",
                summary(&report)
            );
            let named = rr.missing_permission.as_deref().unwrap_or_default();
            assert!(
                permissions.iter().any(|p| named.contains(p)),
                "{backend:?} {r:?} names the permission it lacks (one of {permissions:?}), not {named:?}"
            );
        }
        let users = testdb.db.users(&conn).await.expect("users");
        let ids: BTreeSet<String> = users.iter().map(|u| u.id.clone()).collect();
        let expected: BTreeSet<String> = truth.users.keys().cloned().collect();
        assert_eq!(ids, expected, "{backend:?}: every user is stored");
    }
}

/// Each scenario once per backend: SQLite always, PostgreSQL when
/// `TENANTLINK_TEST_DATABASE_URL` is set (as `TestDb::all` decides), as separate tests so
/// one backend's failure does not hide the other's result.
macro_rules! on_every_backend {
    ($($scenario:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $scenario(Which::Sqlite).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            $scenario(Which::Postgres).await;
        }
    )*};
}

on_every_backend! {
    full_sync_equals_the_tenant_and_a_quiet_incremental_changes_nothing => full_then_quiet_incremental_sqlite, full_then_quiet_incremental_postgres;
    incremental_after_random_changes_equals_the_tenant => incremental_after_random_changes_sqlite, incremental_after_random_changes_postgres;
    faults_are_retried_and_the_result_equals_the_tenant => faults_are_retried_sqlite, faults_are_retried_postgres;
    a_killed_run_is_resumed_where_it_stopped => killed_run_is_resumed_sqlite, killed_run_is_resumed_postgres;
    expired_delta_tokens_fall_back_to_a_full_round => expired_delta_tokens_fall_back_sqlite, expired_delta_tokens_fall_back_postgres;
    a_missing_permission_makes_those_resources_partial => missing_permission_is_partial_sqlite, missing_permission_is_partial_postgres;
}
