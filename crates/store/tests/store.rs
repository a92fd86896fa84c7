//! The store on both backends (SQLite always; PostgreSQL when TENANTLINK_TEST_DATABASE_URL
//! is set, as CI does), each test on its own fresh database.

use chrono::NaiveDateTime;
use tenantlink_store::testing::TestDb;
use tenantlink_store::*;

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

async fn connection(db: &Db, org: &str, tenant: &str) -> (Organization, Connection) {
    let org = match db.organization_by_name(org).await.unwrap() {
        Some(o) => o,
        None => db.create_organization(org).await.unwrap(),
    };
    let conn = db
        .create_connection(NewConnection {
            organization_id: org.id.clone(),
            tenant_id: tenant.into(),
            client_id: "app".into(),
            auth_kind: AuthKind::ClientSecret,
            secret: Some((format!("ciphertext-{tenant}").into_bytes(), "key-a".into())),
            secret_expires_at: None,
            granted_permissions: vec!["User.Read.All".into()],
            missing_permissions: vec!["AuditLog.Read.All".into()],
        })
        .await
        .unwrap();
    (org, conn)
}

fn cursor(conn: &Connection, resource: &str, round: i64) -> Cursor {
    Cursor {
        connection_id: conn.id.clone(),
        resource: resource.into(),
        round,
        full_round: true,
        run_id: None,
        next_link: Some("https://graph.example/v1.0/users/delta?$skiptoken=SECRET".into()),
        delta_link: None,
        time_cursor: None,
        round_started_at: Some(now()),
        pages: 1,
        rows_written: 0,
        updated_at: now(),
    }
}

fn user(id: &str, name: &str) -> UserRow {
    UserRow {
        id: id.into(),
        display_name: Some(name.into()),
        user_principal_name: Some(format!("{id}@contoso.test")),
        account_enabled: Some(true),
        created_at: Some(now()),
        ..UserRow::default()
    }
}

/// A page of these users alone.
fn users_page(users: Vec<UserRow>) -> PageWrite {
    PageWrite {
        users,
        ..PageWrite::default()
    }
}

fn group(id: &str) -> GroupRow {
    GroupRow {
        id: id.into(),
        display_name: Some(id.to_uppercase()),
        kind: "security".into(),
        group_types: String::new(),
        security_enabled: Some(true),
        mail_enabled: Some(false),
        ..GroupRow::default()
    }
}

fn edge(g: &str, m: &str, t: &str) -> MemberRow {
    MemberRow {
        group_id: g.into(),
        member_id: m.into(),
        member_type: t.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_upsert_delete_and_sweep_on_both_backends() {
    for t in TestDb::all().await {
        let db = &t.db;
        assert!(db.pending_migrations().await.unwrap().is_empty());
        assert!(
            db.migrate().await.unwrap().is_empty(),
            "migrations run twice"
        );
        let (_, conn) = connection(db, "org", "t1").await;
        let c1 = cursor(&conn, "users", 1);
        let mut page = PageWrite {
            users: vec![user("u1", "Ann"), user("u2", "Bob"), user("u3", "Cy")],
            groups: vec![group("g1"), group("g2")],
            members_added: vec![
                edge("g1", "u1", "user"),
                edge("g1", "g2", "group"),
                edge("g2", "u2", "user"),
                edge("g2", "g1", "group"),
            ],
            ..PageWrite::default()
        };
        let written = db.write_page(&page, &c1, now()).await.unwrap();
        assert_eq!(written, 9, "{:?}", t.backend());
        let stored = db.cursor(&conn.id, "users").await.unwrap().unwrap();
        assert_eq!((stored.round, &stored.next_link), (1, &c1.next_link));
        // The same page again, in a later round: nothing changes on PostgreSQL (unchanged
        // rows are not rewritten).
        let later = Cursor {
            full_round: false,
            ..c1.clone()
        };
        let again = db.write_page(&page, &later, now()).await.unwrap();
        if t.backend() == Backend::Postgres {
            assert_eq!(again, 0);
        }
        // Cycles are safe; nested membership resolves both ways.
        assert_eq!(
            db.transitive_members(&conn.id, "g1").await.unwrap(),
            vec!["g1", "g2", "u1", "u2"]
        );
        assert_eq!(
            db.transitive_groups(&conn.id, "u2").await.unwrap(),
            vec!["g1", "g2"]
        );
        // Update, soft delete, hard delete (edges go with it), edge removal.
        page = PageWrite {
            users: vec![user("u1", "Ann Updated")],
            users_soft_deleted: vec!["u2".into()],
            users_deleted: vec!["u3".into()],
            members_removed: vec![("g2".into(), "g1".into())],
            sign_in_activity: vec![SignInActivityRow {
                id: "u1".into(),
                last_sign_in_at: Some(now()),
                last_non_interactive_sign_in_at: None,
            }],
            ..PageWrite::default()
        };
        db.write_page(&page, &c1, now()).await.unwrap();
        let users = db.users(&conn.id).await.unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].display_name.as_deref(), Some("Ann Updated"));
        assert!(users[0].last_sign_in_at.is_some());
        assert!(users[1].deleted_at.is_some(), "u2 soft-deleted");
        // A later upsert of the user (restore) keeps its sign-in activity and clears deleted_at.
        db.write_page(&users_page(vec![user("u2", "Bob")]), &c1, now())
            .await
            .unwrap();
        assert!(db.user(&conn.id, "u2").await.unwrap().deleted_at.is_none());
        assert_eq!(
            db.transitive_members(&conn.id, "g1").await.unwrap(),
            vec!["g2", "u1", "u2"]
        );
        // A full round 2 that saw only u1 and g1 sweeps the rest.
        let c2 = cursor(&conn, "users", 2);
        let seen = users_page(vec![user("u1", "Ann Updated")]);
        db.write_page(&seen, &c2, now()).await.unwrap();
        assert_eq!(
            db.finish_full_round(&c2).await.unwrap(),
            2,
            "u2 and its edge"
        );
        assert_eq!(db.users(&conn.id).await.unwrap().len(), 1);
        let g2 = cursor(&conn, "groups", 2);
        db.write_page(
            &PageWrite {
                groups: vec![group("g1")],
                members_added: vec![edge("g1", "u1", "user")],
                ..PageWrite::default()
            },
            &g2,
            now(),
        )
        .await
        .unwrap();
        db.finish_full_round(&g2).await.unwrap();
        assert_eq!(db.groups(&conn.id).await.unwrap().len(), 1);
        assert_eq!(
            db.group_members(&conn.id).await.unwrap(),
            vec![edge("g1", "u1", "user")]
        );
    }
}

/// A page's rows go in chunks, and on PostgreSQL each chunk is first tried as a plain
/// `INSERT`: a chunk that meets a stored row halfway must still land whole, with the
/// chunks before it, and the statement's later chunks too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_new_and_stored_rows_lands_whole_chunk_after_chunk() {
    let members = |range: std::ops::Range<usize>| -> Vec<MemberRow> {
        range
            .map(|i| edge("g1", &format!("member-{i:05}"), "user"))
            .collect()
    };
    let sign_in = |id: &str| SignInRow {
        id: id.into(),
        created_at: now(),
        user_id: None,
        user_principal_name: None,
        app_display_name: None,
        ip_address: None,
        status_code: Some(0),
        raw: format!("{{\"id\":\"{id}\"}}"),
    };
    for t in TestDb::all().await {
        let db = &t.db;
        let (_, conn) = connection(db, "org", "t1").await;
        let first = PageWrite {
            groups: vec![group("g1")],
            members_added: members(0..3000),
            sign_ins: vec![sign_in("s1"), sign_in("s2")],
            ..PageWrite::default()
        };
        let c1 = cursor(&conn, "groups", 1);
        assert_eq!(db.write_page(&first, &c1, now()).await.unwrap(), 3003);
        // Round 2: 3,000 new edges (more than one chunk), then 1,000 stored ones (in the
        // chunk with the last new ones), and a stored sign-in before a new one.
        let mut added = members(3000..6000);
        added.extend(members(0..1000));
        let second = PageWrite {
            groups: vec![group("g1")],
            members_added: added,
            sign_ins: vec![sign_in("s2"), sign_in("s3")],
            ..PageWrite::default()
        };
        let c2 = cursor(&conn, "groups", 2);
        let written = db.write_page(&second, &c2, now()).await.unwrap();
        assert_eq!(written, 1 + 4000 + 1, "{:?}", t.backend());
        let edges = db.group_members(&conn.id).await.unwrap();
        assert_eq!(edges, members(0..6000), "{:?}", t.backend());
        let ids: Vec<String> = db
            .sign_ins(&conn.id)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["s1", "s2", "s3"]);
        // Round 2 saw every edge but 1,000..3,000 again (each stamped by its round).
        assert_eq!(db.finish_full_round(&c2).await.unwrap(), 2000);
        let mut kept = members(0..1000);
        kept.extend(members(3000..6000));
        assert_eq!(db.group_members(&conn.id).await.unwrap(), kept);
    }
}

/// Text that is awkward to carry: quotes, backslashes, JSON and SQL punctuation, control
/// characters, and characters outside ASCII and the Basic Multilingual Plane.
const AWKWARD: &str = "O'Brien \"Bob\" \\ back/slash {\"a\":[1,null]} $1 ?2 ; -- tab\there\nnew line \u{e9}\u{4e2d}\u{1f600}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_value_is_stored_as_given_on_insert_and_on_update() {
    // Microseconds: what both backends keep of a time.
    let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    let full = |n: &str| UserRow {
        id: format!("u-{n}"),
        display_name: Some(format!("{AWKWARD} {n}")),
        user_principal_name: Some(format!("{n}@contoso.test")),
        given_name: Some(String::new()),
        surname: Some("\u{1f600}".into()),
        mail: None,
        department: Some("R&D".into()),
        job_title: Some(n.into()),
        office_location: Some("  spaced  ".into()),
        mobile_phone: Some("+1 (555) 010-0000".into()),
        account_enabled: Some(false),
        user_type: Some("Guest".into()),
        created_at: Some(at("2026-11-25 09:30:00.123456")),
        manager_id: Some("NULL".into()),
        last_sign_in_at: None,
        last_non_interactive_sign_in_at: None,
        deleted_at: Some(at("1970-01-01 00:00:00")),
    };
    let bare = UserRow {
        id: "u-bare".into(),
        ..UserRow::default()
    };
    let device = |name: &str| DeviceRow {
        id: "d-1".into(),
        device_name: Some(name.into()),
        is_encrypted: Some(true),
        enrolled_at: Some(at("2024-02-29 23:59:59.999999")),
        ..DeviceRow::default()
    };
    let sign_in = SignInRow {
        id: "s-1".into(),
        created_at: at("2026-11-25 00:00:00.5"),
        user_id: Some("u-first".into()),
        user_principal_name: None,
        app_display_name: Some(AWKWARD.into()),
        ip_address: Some("2001:db8::1".into()),
        status_code: Some(-2_147_483_649),
        raw: format!("{{\"note\":{}}}", serde_json::to_string(AWKWARD).unwrap()),
    };
    let alert = |status: &str| AlertRow {
        id: "a-1".into(),
        created_at: at("2026-11-24 12:00:00"),
        updated_at: None,
        title: Some(AWKWARD.into()),
        severity: Some("high".into()),
        status: Some(status.into()),
        raw: "{}".into(),
    };
    for t in TestDb::all().await {
        let db = &t.db;
        let (_, conn) = connection(db, "org", "t1").await;
        let first = PageWrite {
            users: vec![full("first"), bare.clone()],
            devices: vec![device("laptop")],
            sign_ins: vec![sign_in.clone()],
            alerts: vec![alert("new")],
            ..PageWrite::default()
        };
        db.write_page(&first, &cursor(&conn, "users", 1), now())
            .await
            .unwrap();
        // The same ids again with other values: the upsert's update path.
        let mut changed = full("second");
        changed.id = "u-first".into();
        changed.account_enabled = Some(true);
        changed.created_at = None;
        let second = PageWrite {
            users: vec![changed.clone(), bare.clone()],
            devices: vec![device(AWKWARD)],
            alerts: vec![alert("resolved")],
            ..PageWrite::default()
        };
        db.write_page(&second, &cursor(&conn, "users", 2), now())
            .await
            .unwrap();
        let backend = t.backend();
        assert_eq!(
            db.user(&conn.id, "u-first").await.unwrap(),
            changed,
            "{backend:?}"
        );
        assert_eq!(
            db.user(&conn.id, "u-bare").await.unwrap(),
            bare,
            "{backend:?}"
        );
        assert_eq!(
            db.devices(&conn.id).await.unwrap(),
            [device(AWKWARD)],
            "{backend:?}"
        );
        assert_eq!(
            db.sign_ins(&conn.id).await.unwrap(),
            std::slice::from_ref(&sign_in),
            "{backend:?}"
        );
        assert_eq!(
            db.alerts(&conn.id).await.unwrap(),
            [alert("resolved")],
            "{backend:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_users_round_sweeps_the_edges_of_every_unseen_user_and_no_others() {
    for t in TestDb::all().await {
        let db = &t.db;
        // Two connections to the same tenant: the same object ids in both.
        let (_, a) = connection(db, "a", "same").await;
        let (_, b) = connection(db, "b", "same").await;
        // More unseen users than the sweep reads at a time.
        let ids: Vec<String> = (0..2_500).map(|i| format!("u{i:05}")).collect();
        for conn in [&a, &b] {
            let page = PageWrite {
                users: ids.iter().map(|id| user(id, id)).collect(),
                groups: vec![group("g1"), group("g2")],
                members_added: ids
                    .iter()
                    .map(|id| edge("g1", id, "user"))
                    .chain([edge("g2", "g1", "group"), edge("g2", "u00007", "user")])
                    .collect(),
                ..PageWrite::default()
            };
            db.write_page(&page, &cursor(conn, "users", 1), now())
                .await
                .unwrap();
        }
        // Connection a's round 2 sees u00007 alone.
        let c2 = cursor(&a, "users", 2);
        let seen = users_page(vec![user("u00007", "u00007")]);
        db.write_page(&seen, &c2, now()).await.unwrap();
        assert_eq!(
            db.finish_full_round(&c2).await.unwrap(),
            2 * 2_499,
            "{:?}: 2,499 users and their edges",
            t.backend()
        );
        assert_eq!(
            db.group_members(&a.id).await.unwrap(),
            vec![
                edge("g1", "u00007", "user"),
                edge("g2", "g1", "group"),
                edge("g2", "u00007", "user"),
            ]
        );
        // The other connection keeps everything.
        assert_eq!(db.users(&b.id).await.unwrap().len(), 2_500);
        assert_eq!(db.group_members(&b.id).await.unwrap().len(), 2_502);
        assert_eq!(
            db.transitive_groups(&b.id, "u02000").await.unwrap(),
            vec!["g1", "g2"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_commits_only_after_the_page_before_it() {
    for t in TestDb::all().await {
        let db = &t.db;
        let (_, conn) = connection(db, "org", "t1").await;
        let page_cursor = |pages: i64| Cursor {
            pages,
            next_link: Some(format!(
                "https://graph.example/v1.0/groups/delta?page={pages}"
            )),
            ..cursor(&conn, "groups", 1)
        };
        let page = |g: &str, members: std::ops::Range<usize>| PageWrite {
            groups: vec![group(g)],
            members_added: members.map(|i| edge(g, &format!("u{i}"), "user")).collect(),
            ..PageWrite::default()
        };
        let after = |previous: Option<Cursor>| PageOrder {
            previous,
            started: None,
        };
        db.write_page_after(&page("g1", 0..10), &page_cursor(1), now(), after(None))
            .await
            .unwrap();
        // Page 3 while page 2 never came: nothing of it is written.
        let refused = db
            .write_page_after(
                &page("g3", 0..10),
                &page_cursor(3),
                now(),
                after(Some(page_cursor(2))),
            )
            .await
            .unwrap();
        assert_eq!(refused, None);
        // So is a page whose previous page has the stored page count but is another page
        // (a new round counts its pages from 0 again).
        let other = Cursor {
            round: 2,
            ..page_cursor(1)
        };
        let refused = db
            .write_page_after(
                &page("g3", 0..10),
                &page_cursor(2),
                now(),
                after(Some(other)),
            )
            .await
            .unwrap();
        assert_eq!(refused, None);
        assert_eq!(db.group_members(&conn.id).await.unwrap().len(), 10);
        assert_eq!(
            db.cursor(&conn.id, "groups").await.unwrap().unwrap().pages,
            1
        );
        // Pages 2 and 3 started together: 2 takes its turn, then 3 runs beside it; both
        // land, in order, even with a group whose members go on over both. As the engine
        // sends it, page 3 carries only the group's further members: its row belongs to
        // page 2 (writing it again could lock the row page 2 is about to write while page
        // 2's turn holds page 3 back, a deadlock that rolls one of them back).
        let (turn, has_turn) = tokio::sync::oneshot::channel();
        let p2 = page("g2", 0..400);
        let p3 = PageWrite {
            groups: Vec::new(),
            ..page("g2", 400..800)
        };
        let (c2, c3) = (page_cursor(2), page_cursor(3));
        let second = async {
            db.write_page_after(
                &p2,
                &c2,
                now(),
                PageOrder {
                    previous: Some(page_cursor(1)),
                    started: Some(turn),
                },
            )
            .await
        };
        let third = async {
            let _ = has_turn.await;
            db.write_page_after(&p3, &c3, now(), after(Some(page_cursor(2))))
                .await
        };
        let (second, third) = tokio::join!(second, third);
        assert!(second.unwrap().is_some());
        assert!(third.unwrap().is_some());
        assert_eq!(db.group_members(&conn.id).await.unwrap().len(), 810);
        assert_eq!(
            db.cursor(&conn.id, "groups").await.unwrap().unwrap().pages,
            3
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_never_reads_anothers_rows() {
    for t in TestDb::all().await {
        let db = &t.db;
        let (org_a, a) = connection(db, "a", "ta").await;
        let (org_b, b) = connection(db, "b", "tb").await;
        for (conn, id) in [(&a, "ua"), (&b, "ub")] {
            let page = PageWrite {
                users: vec![user(id, id)],
                groups: vec![group("shared-id")],
                members_added: vec![edge("shared-id", id, "user")],
                sign_ins: vec![SignInRow {
                    id: format!("s-{id}"),
                    created_at: now(),
                    user_id: Some(id.into()),
                    user_principal_name: None,
                    app_display_name: None,
                    ip_address: None,
                    status_code: Some(0),
                    raw: "{}".into(),
                }],
                ..PageWrite::default()
            };
            db.write_page(&page, &cursor(conn, "users", 1), now())
                .await
                .unwrap();
        }
        assert_eq!(db.users(&a.id).await.unwrap()[0].id, "ua");
        assert_eq!(
            db.transitive_members(&a.id, "shared-id").await.unwrap(),
            vec!["ua"]
        );
        assert_eq!(db.sign_ins(&b.id).await.unwrap().len(), 1);
        assert!(matches!(
            db.user(&a.id, "ub").await,
            Err(Error::NotFound { .. })
        ));
        // Organization scoping: b's connection is not found through a.
        assert!(matches!(
            db.connection(&org_a.id, &b.id).await,
            Err(Error::NotFound { .. })
        ));
        assert!(db.connection(&org_b.id, &b.id).await.is_ok());
        let run = db.create_run(&b.id, "full").await.unwrap();
        assert!(matches!(
            db.run(&org_a.id, &run.id).await,
            Err(Error::NotFound { .. })
        ));
        assert_eq!(db.run(&org_b.id, &run.id).await.unwrap().status, "running");
        assert!(matches!(
            db.delete_connection(&org_a.id, &b.id).await,
            Err(Error::NotFound { .. })
        ));
        // Deleting b takes its data and leaves a's.
        db.delete_connection(&org_b.id, &b.id).await.unwrap();
        assert_eq!(db.counts(&b.id).await.unwrap(), Counts::default());
        assert_eq!(db.counts(&a.id).await.unwrap().users, 1);
        assert!(db.runs(&b.id, 10).await.unwrap().is_empty());
    }
}

/// PostgreSQL: each connection's rows live in partitions of its own, which get their
/// secondary indexes when the first full round of their table ends, and go with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_partitions_are_per_connection_and_indexed_when_their_first_load_ends() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let db = &t.db;
    let (org, a) = connection(db, "org", "ta").await;
    let (_, b) = connection(db, "org", "tb").await;
    let part =
        |table: &str, conn: &Connection| format!("tenantlink_partition('{table}', '{}')", conn.id);
    let indexes = |table: &str, conn: &Connection| {
        format!(
            "SELECT count(*) FROM pg_indexes WHERE tablename = {} AND indexname NOT LIKE '%pkey'",
            part(table, conn)
        )
    };
    // A connection's tables: every partition named after it (the seven synced tables).
    let tables = |conn: &Connection, attached: bool| {
        format!(
            "SELECT count(*) FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE '%' || md5('{}') \
             AND {} EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)",
            conn.id,
            if attached { "" } else { "NOT" }
        )
    };
    let secondary = |conn: &Connection| {
        format!(
            "SELECT count(*) FROM pg_indexes WHERE tablename LIKE '%' || md5('{}') AND indexname NOT LIKE '%pkey'",
            conn.id
        )
    };
    for conn in [&a, &b] {
        assert_eq!(t.scalar(&tables(conn, true)).await, 7);
        assert_eq!(t.scalar(&secondary(conn)).await, 0);
    }
    let page = PageWrite {
        users: vec![user("u1", "Ann"), user("u2", "Bob")],
        groups: vec![group("g1"), group("g2")],
        members_added: vec![
            edge("g1", "u1", "user"),
            edge("g1", "g2", "group"),
            edge("g2", "u2", "user"),
        ],
        ..PageWrite::default()
    };
    db.write_page(&page, &cursor(&a, "users", 1), now())
        .await
        .unwrap();
    // The edges' partition has no index at all while it loads, not even its key: an edge
    // Graph sends again is stored again, until the key is built.
    let all_indexes = |conn: &Connection| {
        format!(
            "SELECT count(*) FROM pg_indexes WHERE tablename = {}",
            part("group_members", conn)
        )
    };
    assert_eq!(t.scalar(&all_indexes(&a)).await, 0);
    let again = PageWrite {
        members_added: vec![edge("g1", "u1", "user")],
        ..PageWrite::default()
    };
    db.write_page(&again, &cursor(&a, "groups", 1), now())
        .await
        .unwrap();
    for (table, rows) in [("users", 2), ("groups", 2), ("group_members", 4)] {
        let in_partition = format!(
            "SELECT count(*) FROM {table} WHERE tableoid = to_regclass({})",
            part(table, &a)
        );
        assert_eq!(t.scalar(&in_partition).await, rows, "{table}");
    }
    // The users round ends: the users' partition is indexed, the others not yet.
    let mut end = cursor(&a, "users", 1);
    end.next_link = None;
    db.finish_full_round(&end).await.unwrap();
    assert_eq!(t.scalar(&indexes("users", &a)).await, 6);
    assert_eq!(t.scalar(&indexes("group_members", &a)).await, 0);
    let mut end = cursor(&a, "groups", 1);
    end.next_link = None;
    db.finish_full_round(&end).await.unwrap();
    assert_eq!(t.scalar(&indexes("groups", &a)).await, 2);
    // The key (one of each repeated edge kept) and the member index.
    assert_eq!(t.scalar(&indexes("group_members", &a)).await, 2);
    assert_eq!(db.counts(&a.id).await.unwrap().group_members, 3);
    assert_eq!(t.scalar(&indexes("users", &b)).await, 0);
    // Later rounds upsert edges through the key: unchanged ones are not written.
    let mut later = cursor(&a, "groups", 1);
    later.full_round = false;
    assert_eq!(db.write_page(&again, &later, now()).await.unwrap(), 0);
    // A first load that never ended (the round started over): the next round's first
    // write of edges builds the key, one of each repeated edge kept, and upserts.
    for _ in 0..2 {
        db.write_page(&again, &cursor(&b, "groups", 1), now())
            .await
            .unwrap();
    }
    assert_eq!(db.counts(&b.id).await.unwrap().group_members, 2);
    assert_eq!(t.scalar(&all_indexes(&b)).await, 0);
    let round2 = PageWrite {
        members_added: vec![edge("g1", "u1", "user"), edge("g1", "u2", "user")],
        ..PageWrite::default()
    };
    assert_eq!(
        db.write_page(&round2, &cursor(&b, "groups", 2), now())
            .await
            .unwrap(),
        2,
        "u1's edge stamped with round 2, u2's new"
    );
    assert_eq!(db.counts(&b.id).await.unwrap().group_members, 2);
    assert_eq!(t.scalar(&all_indexes(&b)).await, 2);
    assert_eq!(
        db.transitive_groups(&a.id, "u2").await.unwrap(),
        vec!["g1", "g2"]
    );
    // A first round swept nothing; a later one sweeps what it did not see, through the
    // indexes.
    db.write_page(
        &users_page(vec![user("u1", "Ann")]),
        &cursor(&a, "users", 2),
        now(),
    )
    .await
    .unwrap();
    let mut end = cursor(&a, "users", 2);
    end.next_link = None;
    assert_eq!(
        db.finish_full_round(&end).await.unwrap(),
        2,
        "u2 and its edge"
    );
    // Deleting a connection drops its partitions and leaves the other's.
    db.delete_connection(&org.id, &a.id).await.unwrap();
    assert_eq!(t.scalar(&tables(&a, true)).await, 0);
    assert_eq!(t.scalar(&tables(&a, false)).await, 0);
    assert_eq!(t.scalar(&tables(&b, true)).await, 7);
}

/// PostgreSQL: the partitioning migration keeps every connection's rows, down to one table
/// per kind and up again to a partition per connection with its indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_partitioning_migration_keeps_every_connections_rows_both_ways() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let db = &t.db;
    let (_, a) = connection(db, "org", "ta").await;
    let (_, b) = connection(db, "org", "tb").await;
    for (conn, id) in [(&a, "ua"), (&b, "ub")] {
        let page = PageWrite {
            users: vec![user(id, id), user("shared", "Sam")],
            groups: vec![group("g1")],
            members_added: vec![edge("g1", id, "user"), edge("g1", "shared", "user")],
            ..PageWrite::default()
        };
        db.write_page(&page, &cursor(conn, "users", 1), now())
            .await
            .unwrap();
    }
    // A first load still in progress may hold an edge twice (no key yet): going down keys
    // it, one row kept.
    let repeat = PageWrite {
        members_added: vec![edge("g1", "ua", "user")],
        ..PageWrite::default()
    };
    db.write_page(&repeat, &cursor(&a, "groups", 1), now())
        .await
        .unwrap();
    assert_eq!(db.counts(&a.id).await.unwrap().group_members, 3);
    let before = (
        Counts {
            group_members: 2,
            ..db.counts(&a.id).await.unwrap()
        },
        db.counts(&b.id).await.unwrap(),
    );
    assert_eq!((before.0.users, before.1.group_members), (2, 2));
    let partitioned = "SELECT count(*) FROM pg_partitioned_table";
    assert_eq!(t.scalar(partitioned).await, 7);
    // Down, then up again: the counts stay.
    macro_rules! migration {
        ($path:literal) => {
            include_str!(concat!("../../../migrations/postgres/2026-12-08-", $path))
        };
    }
    let keyed = "SELECT count(*) FROM pg_constraint \
                 WHERE conrelid = 'group_members'::regclass AND contype = 'p'";
    assert_eq!(t.scalar(keyed).await, 0, "the parent has no key");
    for (sql, tables) in [
        (
            migration!("000002_key_membership_edges_after_load/down.sql"),
            7,
        ),
        (migration!("000001_partition_synced_tables/down.sql"), 0),
        (migration!("000001_partition_synced_tables/up.sql"), 7),
        (
            migration!("000002_key_membership_edges_after_load/up.sql"),
            7,
        ),
    ] {
        db.execute_admin(sql).await.unwrap();
        assert_eq!(t.scalar(partitioned).await, tables);
        let counts = (
            db.counts(&a.id).await.unwrap(),
            db.counts(&b.id).await.unwrap(),
        );
        assert_eq!(counts, before);
    }
    // Rows already there are indexed at once: their connection's first load is over.
    let users_indexes = format!(
        "SELECT count(*) FROM pg_indexes WHERE tablename = tenantlink_partition('users', '{}') \
         AND indexname NOT LIKE '%pkey'",
        a.id
    );
    assert_eq!(t.scalar(&users_indexes).await, 6);
    let edges_key = format!(
        "SELECT count(*) FROM pg_indexes WHERE indexname = \
         tenantlink_partition('group_members', '{}') || '_key'",
        b.id
    );
    assert_eq!(t.scalar(&edges_key).await, 1);
    assert_eq!(t.scalar(keyed).await, 0, "the parent has no key");
    assert_eq!(
        db.transitive_groups(&b.id, "shared").await.unwrap(),
        vec!["g1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_replaced_only_if_unchanged() {
    for t in TestDb::all().await {
        let db = &t.db;
        let (_, conn) = connection(db, "org", "t1").await;
        db.put_delegated_token(&DelegatedToken {
            connection_id: conn.id.clone(),
            principal: "user@contoso.test".into(),
            token_ciphertext: b"token-a".to_vec(),
            key_id: "key-a".into(),
            expires_at: None,
            updated_at: now(),
        })
        .await
        .unwrap();
        assert_eq!(
            db.secrets_per_key().await.unwrap(),
            vec![("key-a".into(), 2)]
        );
        let stale = db.secrets_not_under("key-b", 10).await.unwrap();
        assert_eq!(stale.len(), 2);
        assert!(
            !format!("{stale:?}").contains("ciphertext-t1"),
            "Debug shows ciphertext"
        );
        // Someone rotates the connection's secret meanwhile: the stale swap is refused.
        db.set_connection_secret(
            &conn.organization_id,
            &conn.id,
            b"fresh".to_vec(),
            "key-b",
            None,
        )
        .await
        .unwrap();
        let conn_secret = stale
            .iter()
            .find(|s| matches!(s.at, SecretRef::Connection(_)))
            .unwrap();
        assert!(
            !db.replace_secret(conn_secret, b"x".to_vec(), "key-b")
                .await
                .unwrap()
        );
        let token = stale
            .iter()
            .find(|s| matches!(s.at, SecretRef::DelegatedToken(..)))
            .unwrap();
        assert!(
            db.replace_secret(token, b"token-b".to_vec(), "key-b")
                .await
                .unwrap()
        );
        assert_eq!(
            db.secrets_per_key().await.unwrap(),
            vec![("key-b".into(), 2)]
        );
        assert!(db.secrets_not_under("key-b", 10).await.unwrap().is_empty());
        let stored = db
            .connection(&conn.organization_id, &conn.id)
            .await
            .unwrap();
        assert_eq!(stored.secret_ciphertext.as_deref(), Some(&b"fresh"[..]));
        assert!(!format!("{stored:?}").contains("fresh"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_without_damage() {
    for t in TestDb::all().await {
        let db = &t.db;
        let (org, conn) = connection(db, "org", "t1").await;
        assert!(matches!(
            db.create_organization("org").await,
            Err(Error::Conflict(_))
        ));
        let dup = db
            .create_connection(NewConnection {
                organization_id: org.id.clone(),
                tenant_id: "t1".into(),
                client_id: "app".into(),
                auth_kind: AuthKind::ClientSecret,
                secret: None,
                secret_expires_at: None,
                granted_permissions: vec![],
                missing_permissions: vec![],
            })
            .await;
        assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
        // A page that fails (a row for a connection that does not exist) changes nothing,
        // not even the cursor.
        let mut ghost = cursor(&conn, "users", 1);
        ghost.connection_id = "no-such-connection".into();
        let page = PageWrite {
            users: vec![user("u1", "Ann")],
            ..PageWrite::default()
        };
        assert!(db.write_page(&page, &ghost, now()).await.is_err());
        assert!(
            db.cursor("no-such-connection", "users")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(db.counts(&conn.id).await.unwrap(), Counts::default());
    }
    for bad in ["mysql://x/y", "", "sqlite://", "/tmp/no-extension"] {
        assert!(DbConfig::new(bad).validate().is_err(), "{bad}");
    }
    assert_eq!(
        redact_url("postgres://app:hunter2@db:5432/x"),
        "postgres://app:***@db:5432/x"
    );
    for leaky in [
        "postgres:/app:hunter2@db/x",
        "app:hunter2@db:5432/x",
        "postgres://db/x?password=hunter2",
        "postgres://app:hun/ter2@db/x",
    ] {
        assert!(!redact_url(leaky).contains("hunter2"), "{leaky}");
        assert!(!redact_url(leaky).contains("ter2"), "{leaky}");
    }
    assert!(!format!("{:?}", DbConfig::new("postgres://app:hunter2@db/x")).contains("hunter2"));
    let debug = format!("{:?}", cursor_debug_sample());
    assert!(!debug.contains("SECRET"), "{debug}");
}

fn cursor_debug_sample() -> Cursor {
    Cursor {
        connection_id: "c".into(),
        resource: "users".into(),
        round: 1,
        full_round: false,
        run_id: None,
        next_link: Some("https://g/v1.0/users/delta?$skiptoken=SECRET".into()),
        delta_link: Some("https://g/v1.0/users/delta?$deltatoken=SECRET".into()),
        time_cursor: None,
        round_started_at: None,
        pages: 0,
        rows_written: 0,
        updated_at: now(),
    }
}
