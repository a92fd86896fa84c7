//! Several writers at once on one database.
use tenantlink_store::testing::TestDb;
use tenantlink_store::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_page_writers_do_not_lock_each_other_out() {
    for t in TestDb::all().await {
        let db = t.db.clone();
        let org = db.create_organization("o").await.unwrap();
        let conn = db
            .create_connection(NewConnection {
                organization_id: org.id,
                tenant_id: "t".into(),
                client_id: "c".into(),
                auth_kind: AuthKind::ClientSecret,
                secret: None,
                secret_expires_at: None,
                granted_permissions: vec![],
                missing_permissions: vec![],
            })
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let mut tasks = Vec::new();
        for w in 0..6 {
            let db = db.clone();
            let cid = conn.id.clone();
            tasks.push(tokio::spawn(async move {
                for p in 0..20 {
                    let now = chrono::Utc::now().naive_utc();
                    let page = PageWrite {
                        users: (0..200)
                            .map(|i| UserRow {
                                id: format!("u{w}-{p}-{i}"),
                                ..UserRow::default()
                            })
                            .collect(),
                        ..PageWrite::default()
                    };
                    let cursor = Cursor {
                        connection_id: cid.clone(),
                        resource: format!("r{w}"),
                        round: 1,
                        full_round: true,
                        run_id: None,
                        next_link: None,
                        delta_link: None,
                        time_cursor: None,
                        round_started_at: None,
                        pages: p,
                        rows_written: 0,
                        updated_at: now,
                    };
                    db.write_page(&page, &cursor, now).await.unwrap();
                    db.counts(&cid).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(db.counts(&conn.id).await.unwrap().users, 6 * 20 * 200);
        eprintln!("{:?}: {:?}", t.backend(), started.elapsed());
    }
}
