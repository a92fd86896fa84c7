//! Sync jobs on both backends: enqueueing once per connection and type, claiming in order
//! with backoff, leases that expire and pass to another worker, and (PostgreSQL) many
//! concurrent claimers never sharing a job.

use std::collections::HashSet;
use std::time::Duration;

use chrono::NaiveDateTime;
use tenantlink_store::testing::TestDb;
use tenantlink_store::*;

/// Now, to the microsecond (what both backends keep).
fn t0() -> NaiveDateTime {
    use chrono::{DurationRound, TimeDelta};
    chrono::Utc::now()
        .naive_utc()
        .duration_trunc(TimeDelta::microseconds(1))
        .unwrap()
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

async fn connection(db: &Db, org: &str, tenant: &str) -> (Organization, Connection) {
    connection_of(db, org, tenant, AuthKind::ClientSecret).await
}

async fn connection_of(
    db: &Db,
    org: &str,
    tenant: &str,
    auth_kind: AuthKind,
) -> (Organization, Connection) {
    let org = match db.organization_by_name(org).await.unwrap() {
        Some(o) => o,
        None => db.create_organization(org).await.unwrap(),
    };
    let conn = db
        .create_connection(NewConnection {
            organization_id: org.id.clone(),
            tenant_id: tenant.into(),
            client_id: "app".into(),
            auth_kind,
            secret: Some((format!("ciphertext-{tenant}").into_bytes(), "key-a".into())),
            secret_expires_at: None,
            granted_permissions: vec![],
            missing_permissions: vec![],
        })
        .await
        .unwrap();
    (org, conn)
}

fn new_job<'a>(org: &'a Organization, conn: &'a Connection, sync_type: &'a str) -> NewJob<'a> {
    NewJob {
        organization_id: &org.id,
        connection_id: &conn.id,
        sync_type,
        trigger: "api",
        requested_by: Some("key-1"),
    }
}

#[tokio::test]
async fn enqueue_returns_the_active_job_of_a_connection_and_type() {
    for tdb in TestDb::all().await {
        let db = &tdb.db;
        let (org, conn) = connection(db, "Contoso", "t1").await;
        let (other, _) = connection(db, "Fabrikam", "t2").await;
        let now = t0();
        let (a, created) = db
            .enqueue_job(&new_job(&org, &conn, "full"), now)
            .await
            .unwrap();
        assert!(created);
        assert_eq!(a.status, "queued");
        assert_eq!(a.requested_by.as_deref(), Some("key-1"));
        let (b, created) = db
            .enqueue_job(&new_job(&org, &conn, "full"), now)
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(a.id, b.id);
        // Another type is another job.
        let (c, created) = db
            .enqueue_job(&new_job(&org, &conn, "users"), now + secs(1))
            .await
            .unwrap();
        assert!(created);
        assert_ne!(c.id, a.id);
        // Another organization cannot enqueue for this connection, nor see its jobs.
        let err = db
            .enqueue_job(&new_job(&other, &conn, "full"), now)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
        assert!(matches!(
            db.job(&other.id, &a.id).await.unwrap_err(),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            db.jobs(&other.id, &conn.id, 10).await.unwrap_err(),
            Error::NotFound { .. }
        ));
        // Once finished, a new one can be enqueued.
        let claimed = db
            .claim_job("w1", now + secs(30), now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, a.id);
        assert!(
            db.finish_job(&a.id, "w1", "complete", Some("{}"), None, now)
                .await
                .unwrap()
        );
        let (d, created) = db
            .enqueue_job(&new_job(&org, &conn, "full"), now + secs(2))
            .await
            .unwrap();
        assert!(created);
        assert_ne!(d.id, a.id);
        let listed = db.jobs(&org.id, &conn.id, 10).await.unwrap();
        assert_eq!(listed.len(), 3, "{:?}", tdb.backend());
        assert_eq!(listed[0].id, d.id, "newest first");
    }
}

#[tokio::test]
async fn claims_take_the_oldest_due_job_and_respect_backoff() {
    for tdb in TestDb::all().await {
        let db = &tdb.db;
        let (org, c1) = connection(db, "Contoso", "t1").await;
        // Certificate connections are synced on schedule too; delegated ones are not.
        let (_, c2) = connection_of(db, "Contoso", "t2", AuthKind::Certificate).await;
        connection_of(db, "Contoso", "t3", AuthKind::Delegated).await;
        let now = t0();
        let (first, _) = db
            .enqueue_job(&new_job(&org, &c1, "full"), now)
            .await
            .unwrap();
        let (second, _) = db
            .enqueue_job(&new_job(&org, &c2, "full"), now + secs(1))
            .await
            .unwrap();
        let at = now + secs(2);
        let job = db
            .claim_job("w1", at + secs(30), at)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, first.id);
        assert_eq!(job.status, "running");
        assert_eq!(job.attempts, 1);
        assert_eq!(job.lease_owner.as_deref(), Some("w1"));
        assert_eq!(job.started_at, Some(at));
        // Backoff: the first goes back to the queue for a minute; the second comes next.
        assert!(
            db.retry_job_later(&first.id, "w1", at + secs(60), Some("Graph down"), at)
                .await
                .unwrap()
        );
        let job = db
            .claim_job("w2", at + secs(30), at)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, second.id);
        assert!(
            db.claim_job("w3", at + secs(30), at)
                .await
                .unwrap()
                .is_none()
        );
        let later = at + secs(61);
        let job = db
            .claim_job("w3", later + secs(30), later)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, first.id);
        assert_eq!(job.attempts, 2);
        assert_eq!(job.error.as_deref(), Some("Graph down"));
        assert_eq!(job.started_at, Some(at), "first start kept");
        // A released job (shutdown) is claimable at once and the attempt is not counted.
        assert!(db.release_job(&first.id, "w3", later, later).await.unwrap());
        let job = db
            .claim_job("w4", later + secs(30), later)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((job.id.as_str(), job.attempts), (first.id.as_str(), 2));
    }
}

#[tokio::test]
async fn an_expired_lease_passes_the_job_to_another_worker() {
    for tdb in TestDb::all().await {
        let db = &tdb.db;
        let (org, conn) = connection(db, "Contoso", "t1").await;
        let now = t0();
        let (job, _) = db
            .enqueue_job(&new_job(&org, &conn, "full"), now)
            .await
            .unwrap();
        let lease = secs(30);
        db.claim_job("old", now + lease, now)
            .await
            .unwrap()
            .unwrap();
        assert!(db.set_job_run(&job.id, "old", "run-1", now).await.unwrap());
        assert!(
            db.renew_lease(&job.id, "old", now + secs(10) + lease, now + secs(10))
                .await
                .unwrap()
        );
        // Still leased: nobody else gets it.
        let at = now + secs(35);
        assert!(db.claim_job("new", at + lease, at).await.unwrap().is_none());
        // The old worker goes silent; its lease ends.
        let at = now + secs(41);
        let taken = db.claim_job("new", at + lease, at).await.unwrap().unwrap();
        assert_eq!(taken.id, job.id);
        assert_eq!(taken.lease_owner.as_deref(), Some("new"));
        assert_eq!(taken.run_id.as_deref(), Some("run-1"), "the run to resume");
        assert_eq!(taken.attempts, 2);
        // The old owner can no longer renew, report progress or finish.
        assert!(
            !db.renew_lease(&job.id, "old", at + lease, at)
                .await
                .unwrap()
        );
        assert!(!db.set_job_progress(&job.id, "old", "{}", at).await.unwrap());
        assert!(
            !db.finish_job(&job.id, "old", "complete", None, None, at)
                .await
                .unwrap()
        );
        assert!(!db.release_job(&job.id, "old", at, at).await.unwrap());
        assert!(
            db.set_job_progress(&job.id, "new", r#"{"users":{"pages":1}}"#, at)
                .await
                .unwrap()
        );
        assert!(
            db.finish_job(&job.id, "new", "partial", Some("{}"), Some("x"), at)
                .await
                .unwrap()
        );
        let done = db.job(&org.id, &job.id).await.unwrap();
        assert_eq!(done.status, "partial");
        assert_eq!(done.finished_at, Some(at));
        assert_eq!(done.lease_owner, None);
        assert_eq!(done.progress, r#"{"users":{"pages":1}}"#);
    }
}

#[tokio::test]
async fn due_connections_have_no_recent_or_active_job() {
    for tdb in TestDb::all().await {
        let db = &tdb.db;
        let (org, c1) = connection(db, "Contoso", "t1").await;
        // Certificate connections are synced on schedule too; delegated ones are not.
        let (_, c2) = connection_of(db, "Contoso", "t2", AuthKind::Certificate).await;
        connection_of(db, "Contoso", "t3", AuthKind::Delegated).await;
        let now = t0();
        let interval = Duration::from_secs(600);
        let due = db.connections_due(interval, now).await.unwrap();
        assert_eq!(due.len(), 2);
        assert!(due.contains(&(org.id.clone(), c1.id.clone())));
        let (job, _) = db
            .enqueue_job(&new_job(&org, &c1, "incremental"), now)
            .await
            .unwrap();
        let due = db.connections_due(interval, now).await.unwrap();
        assert_eq!(due, vec![(org.id.clone(), c2.id.clone())]);
        db.claim_job("w", now + secs(30), now)
            .await
            .unwrap()
            .unwrap();
        db.finish_job(&job.id, "w", "complete", None, None, now + secs(5))
            .await
            .unwrap();
        let due = db.connections_due(interval, now + secs(300)).await.unwrap();
        assert_eq!(due, vec![(org.id.clone(), c2.id.clone())]);
        let due = db.connections_due(interval, now + secs(700)).await.unwrap();
        assert_eq!(due.len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_share_a_job() {
    let Some(tdb) = TestDb::postgres().await else {
        return;
    };
    let db = tdb.db.clone();
    let org = db.create_organization("Contoso").await.unwrap();
    let now = t0();
    let mut ids = HashSet::new();
    // About 8 claimers × 50 jobs: one job per connection and type.
    let types = ["full", "incremental", "users", "groups", "devices", "audit"];
    for i in 0..67 {
        let (_, conn) = connection(&db, "Contoso", &format!("t{i}")).await;
        for t in types {
            let (job, created) = db
                .enqueue_job(
                    &NewJob {
                        organization_id: &org.id,
                        connection_id: &conn.id,
                        sync_type: t,
                        trigger: "schedule",
                        requested_by: None,
                    },
                    now,
                )
                .await
                .unwrap();
            assert!(created);
            ids.insert(job.id);
        }
    }
    assert_eq!(ids.len(), 402);
    let at = now + secs(1);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{w}");
            let mut got = Vec::new();
            while let Some(job) = db.claim_job(&owner, at + secs(60), at).await.unwrap() {
                assert_eq!(job.lease_owner.as_deref(), Some(owner.as_str()));
                got.push(job.id);
            }
            got
        }));
    }
    let mut seen = HashSet::new();
    let mut per_worker = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        per_worker.push(got.len());
        for id in got {
            assert!(seen.insert(id), "a job was claimed twice");
        }
    }
    assert_eq!(seen, ids, "every job claimed exactly once");
    assert!(
        per_worker.iter().filter(|n| **n > 0).count() > 1,
        "{per_worker:?}"
    );
}
