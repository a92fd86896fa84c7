//! The audit trail on both backends (SQLite always; PostgreSQL when
//! TENANTLINK_TEST_DATABASE_URL is set): the chain stays intact under concurrent appends,
//! and an edited, deleted or truncated row is found at its seq.

use chrono::NaiveDateTime;
use tenantlink_store::testing::TestDb;
use tenantlink_store::*;

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

fn event(org: Option<&str>, action: &str, target: &str) -> NewAuditEvent {
    NewAuditEvent {
        at: now(),
        organization_id: org.map(str::to_owned),
        actor: org.map_or_else(|| "admin".to_owned(), |o| format!("key:{o}-key")),
        action: action.to_owned(),
        target: target.to_owned(),
        outcome: "200".to_owned(),
        request_id: Some(uuid_like(target)),
        detail: serde_json::json!({"note": "ünïcode \"quoted\""}),
    }
}

fn uuid_like(seed: &str) -> String {
    format!("req-{}", seed.len())
}

/// Drops the append-only triggers, as someone with direct database access could.
async fn drop_triggers(db: &TestDb) {
    let sql = match db.backend() {
        Backend::Postgres => "DROP TRIGGER audit_events_no_update ON audit_events",
        Backend::Sqlite => {
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete"
        }
    };
    db.db.execute_admin(sql).await.unwrap();
}

async fn append_n(db: &Db, n: usize) -> Vec<AuditEvent> {
    let events: Vec<_> = (0..n)
        .map(|i| event(Some("org-a"), "GET /v1/things/{id}", &format!("id={i}")))
        .collect();
    db.append_audit(&events).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_make_one_intact_chain() {
    for t in TestDb::all().await {
        let mut tasks = Vec::new();
        for task in 0..8 {
            let db = t.db.clone();
            tasks.push(tokio::spawn(async move {
                for round in 0..15 {
                    let batch: Vec<_> = (0..(round % 3 + 1))
                        .map(|i| {
                            event(
                                Some(&format!("org-{}", task % 2)),
                                "sync.run",
                                &format!("task={task} round={round} i={i}"),
                            )
                        })
                        .collect();
                    let stored = db.append_audit(&batch).await.unwrap();
                    assert_eq!(stored.len(), batch.len());
                    // A batch is contiguous: one transaction.
                    for pair in stored.windows(2) {
                        assert_eq!(pair[1].seq, pair[0].seq + 1);
                        assert_eq!(pair[1].prev_hash, pair[0].hash);
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let total = 8 * (5 * (1 + 2 + 3));
        for batch in [1, 7, 1000] {
            let v = t.db.verify_audit_chain(batch).await.unwrap();
            assert_eq!(v.first_broken, None, "{:?}", t.backend());
            assert_eq!(v.events_checked, total, "{:?}", t.backend());
        }
        assert!(t.db.append_audit(&[]).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn an_empty_chain_is_intact_and_the_first_event_starts_from_genesis() {
    for t in TestDb::all().await {
        let v = t.db.verify_audit_chain(10).await.unwrap();
        assert_eq!((v.events_checked, v.first_broken), (0, None));
        let stored = append_n(&t.db, 1).await;
        assert_eq!(stored[0].seq, 1);
        assert_eq!(stored[0].prev_hash, GENESIS_HASH);
        assert_eq!(stored[0].hash, event_hash(&stored[0]));
    }
}

#[tokio::test]
async fn the_triggers_refuse_updates_and_deletes() {
    for t in TestDb::all().await {
        append_n(&t.db, 3).await;
        for sql in [
            "UPDATE audit_events SET outcome = '500' WHERE seq = 2",
            "DELETE FROM audit_events WHERE seq = 2",
        ] {
            let err = t.db.execute_admin(sql).await.unwrap_err();
            assert!(err.to_string().contains("append-only"), "{err}");
        }
        assert!(t.db.verify_audit_chain(10).await.unwrap().is_intact());
    }
}

#[tokio::test]
async fn an_edited_field_is_found_at_its_seq() {
    for t in TestDb::all().await {
        append_n(&t.db, 20).await;
        drop_triggers(&t).await;
        t.db.execute_admin("UPDATE audit_events SET target = 'id=999' WHERE seq = 13")
            .await
            .unwrap();
        for batch in [1, 5, 100] {
            let v = t.db.verify_audit_chain(batch).await.unwrap();
            let (seq, reason) = v.first_broken.clone().expect("broken");
            assert_eq!(seq, 13, "{:?}", t.backend());
            assert!(reason.contains("hash"), "{reason}");
            assert_eq!(v.events_checked, 12);
        }
    }
}

#[tokio::test]
async fn a_rehashed_edit_breaks_the_next_link() {
    for t in TestDb::all().await {
        let stored = append_n(&t.db, 5).await;
        drop_triggers(&t).await;
        // Edit event 3 and give it a consistent hash: event 4 no longer points at it.
        let mut forged = stored[2].clone();
        forged.outcome = "204".into();
        let forged_hash = event_hash(&forged);
        t.db.execute_admin(&format!(
            "UPDATE audit_events SET outcome = '204', hash = '{forged_hash}' WHERE seq = 3"
        ))
        .await
        .unwrap();
        let v = t.db.verify_audit_chain(2).await.unwrap();
        assert_eq!(v.first_broken.map(|b| b.0), Some(4), "{:?}", t.backend());
    }
}

#[tokio::test]
async fn deleted_rows_are_found_in_the_middle_and_at_the_end() {
    for t in TestDb::all().await {
        append_n(&t.db, 10).await;
        drop_triggers(&t).await;
        t.db.execute_admin("DELETE FROM audit_events WHERE seq = 10")
            .await
            .unwrap();
        let v = t.db.verify_audit_chain(3).await.unwrap();
        assert_eq!(v.first_broken.map(|b| b.0), Some(10), "{:?}", t.backend());
        t.db.execute_admin("DELETE FROM audit_events WHERE seq = 6")
            .await
            .unwrap();
        let v = t.db.verify_audit_chain(3).await.unwrap();
        let (seq, reason) = v.first_broken.expect("broken");
        assert_eq!(seq, 6, "{:?}", t.backend());
        assert!(reason.contains("missing"), "{reason}");
        assert_eq!(v.events_checked, 5);
    }
}

#[tokio::test]
async fn an_organization_lists_only_its_own_events_newest_first() {
    for t in TestDb::all().await {
        let mut batch = Vec::new();
        for i in 0..6_u32 {
            batch.push(event(
                Some("org-a"),
                if i.is_multiple_of(2) {
                    "GET /v1/connections"
                } else {
                    "sync.run"
                },
                &format!("n={i}"),
            ));
            batch.push(event(
                Some("org-b"),
                "GET /v1/connections",
                &format!("n={i}"),
            ));
        }
        batch.push(event(None, "POST /v1/organizations", ""));
        t.db.append_audit(&batch).await.unwrap();
        let none = AuditFilter::default();

        let a = t.db.audit_events("org-a", &none, None, 100).await.unwrap();
        assert_eq!(a.len(), 6);
        assert!(
            a.iter()
                .all(|e| e.organization_id.as_deref() == Some("org-a"))
        );
        assert!(a.windows(2).all(|w| w[0].seq > w[1].seq));
        let b = t.db.audit_events("org-b", &none, None, 100).await.unwrap();
        assert_eq!(b.len(), 6);
        assert!(
            b.iter()
                .all(|e| e.organization_id.as_deref() == Some("org-b"))
        );
        assert!(
            t.db.audit_events("org-c", &none, None, 100)
                .await
                .unwrap()
                .is_empty()
        );

        // Pages by cursor.
        let first = t.db.audit_events("org-a", &none, None, 4).await.unwrap();
        let rest =
            t.db.audit_events("org-a", &none, Some(first[3].seq), 4)
                .await
                .unwrap();
        assert_eq!(first.len() + rest.len(), 6);
        assert!(rest[0].seq < first[3].seq);

        // By action prefix (case-sensitive on both backends) and time.
        let prefix = |p: &str| AuditFilter {
            action_prefix: Some(p.into()),
            ..AuditFilter::default()
        };
        let gets =
            t.db.audit_events("org-a", &prefix("GET "), None, 100)
                .await
                .unwrap();
        assert_eq!(gets.len(), 3);
        assert!(
            t.db.audit_events("org-a", &prefix("get "), None, 100)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            t.db.audit_events("org-a", &prefix("sync."), None, 100)
                .await
                .unwrap()
                .len(),
            3
        );
        let future = AuditFilter {
            from: Some(now() + chrono::Duration::hours(1)),
            ..AuditFilter::default()
        };
        assert!(
            t.db.audit_events("org-a", &future, None, 100)
                .await
                .unwrap()
                .is_empty()
        );
        let past = AuditFilter {
            to: Some(now() + chrono::Duration::hours(1)),
            from: Some(now() - chrono::Duration::hours(1)),
            ..AuditFilter::default()
        };
        assert_eq!(
            t.db.audit_events("org-a", &past, None, 100)
                .await
                .unwrap()
                .len(),
            6
        );
        // The stored detail is the JSON given.
        let detail: serde_json::Value = serde_json::from_str(&a[0].detail).unwrap();
        assert_eq!(detail["note"], "ünïcode \"quoted\"");
    }
}
