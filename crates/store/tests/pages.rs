//! Paged reads on both backends: every row exactly once, filters, search, transitive
//! membership, checked cursors and isolation between organizations and connections.

use chrono::NaiveDateTime;
use tenantlink_store::testing::TestDb;
use tenantlink_store::*;

fn at(secs: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(1_760_000_000 + secs, 0)
        .unwrap()
        .naive_utc()
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
            secret: Some((b"ciphertext".to_vec(), "key-a".into())),
            secret_expires_at: None,
            granted_permissions: vec![],
            missing_permissions: vec![],
        })
        .await
        .unwrap();
    (org, conn)
}

fn cursor(conn: &Connection) -> Cursor {
    Cursor {
        connection_id: conn.id.clone(),
        resource: "users".into(),
        round: 1,
        full_round: true,
        run_id: None,
        next_link: None,
        delta_link: None,
        time_cursor: None,
        round_started_at: None,
        pages: 1,
        rows_written: 0,
        updated_at: at(0),
    }
}

fn user(i: usize) -> UserRow {
    let first = ["Ada", "Bob", "Chloé", "dan", "Eve"][i % 5];
    UserRow {
        id: format!("u{i:04}"),
        display_name: Some(format!("{first} Person{i}")),
        given_name: Some(first.into()),
        surname: Some(format!("Person{i}")),
        user_principal_name: Some(format!("{}.p{i}@contoso.test", first.to_lowercase())),
        mail: i.is_multiple_of(2).then(|| format!("MAIL{i}@Contoso.test")),
        department: Some(["Sales", "R&D", "Ops"][i % 3].into()),
        account_enabled: Some(!i.is_multiple_of(4)),
        user_type: Some(
            if i.is_multiple_of(10) {
                "Guest"
            } else {
                "Member"
            }
            .into(),
        ),
        manager_id: (i > 0).then(|| "u0000".into()),
        ..UserRow::default()
    }
}

fn group(id: &str, kind: &str) -> GroupRow {
    GroupRow {
        id: id.into(),
        display_name: Some(format!("Team {id}")),
        mail: Some(format!("{id}@contoso.test")),
        kind: kind.into(),
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

const USERS: usize = 230;

/// Users, groups g1 > g2 > g3 (nested, with a cycle g3 > g1), devices and audit rows with
/// equal times.
async fn seed(db: &Db, conn: &Connection) {
    let page = PageWrite {
        users: (0..USERS).map(user).collect(),
        groups: vec![
            group("g1", "security"),
            group("g2", "microsoft365"),
            group("g3", "distribution"),
        ],
        members_added: vec![
            edge("g1", "u0001", "user"),
            edge("g1", "g2", "group"),
            edge("g2", "u0002", "user"),
            edge("g2", "g3", "group"),
            edge("g3", "u0003", "user"),
            edge("g3", "g1", "group"),
            edge("g3", "dev-x", "device"),
        ],
        devices: (0..30)
            .map(|i| DeviceRow {
                id: format!("d{i:02}"),
                device_name: Some(format!(
                    "{}-{i}",
                    if i % 2 == 0 { "LAPTOP" } else { "phone" }
                )),
                user_id: Some(format!("u{:04}", i % 3)),
                operating_system: Some(if i % 2 == 0 { "Windows" } else { "iOS" }.into()),
                compliance_state: Some(
                    if i % 5 == 0 {
                        "noncompliant"
                    } else {
                        "compliant"
                    }
                    .into(),
                ),
                ..DeviceRow::default()
            })
            .collect(),
        sign_ins: (0..45)
            .map(|i| SignInRow {
                id: format!("s{i:02}"),
                // Groups of three share a time: the keyset must break ties by id.
                created_at: at(i / 3),
                user_id: Some(format!("u{:04}", i % 2)),
                user_principal_name: None,
                app_display_name: None,
                ip_address: None,
                status_code: Some(0),
                raw: "{}".into(),
            })
            .collect(),
        audits: (0..12)
            .map(|i| AuditRow {
                id: format!("a{i:02}"),
                activity_at: at(i),
                activity_display_name: None,
                category: Some(
                    if i % 2 == 0 {
                        "UserManagement"
                    } else {
                        "GroupManagement"
                    }
                    .into(),
                ),
                result: None,
                raw: "{}".into(),
            })
            .collect(),
        alerts: (0..9)
            .map(|i| AlertRow {
                id: format!("al{i}"),
                created_at: at(i % 4),
                updated_at: None,
                title: None,
                severity: Some(if i < 3 { "high" } else { "low" }.into()),
                status: Some(if i % 2 == 0 { "new" } else { "resolved" }.into()),
                raw: "{}".into(),
            })
            .collect(),
        ..PageWrite::default()
    };
    db.write_page(&page, &cursor(conn), at(0)).await.unwrap();
}

/// The order of a search for `prefix`: users with a field starting with it
/// (case-insensitive), by the least such field (lowered), then id.
fn search_order(rows: impl IntoIterator<Item = UserRow>, prefix: &str) -> Vec<String> {
    let p = prefix.trim().to_lowercase();
    let mut keyed: Vec<(String, String)> = rows
        .into_iter()
        .filter_map(|u| {
            [
                &u.display_name,
                &u.given_name,
                &u.surname,
                &u.user_principal_name,
                &u.mail,
            ]
            .into_iter()
            .flatten()
            .map(|f| f.to_lowercase())
            .filter(|f| f.starts_with(&p))
            .min()
            .map(|k| (k, u.id))
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, id)| id).collect()
}

/// The users `want` selects, in the order of a search for `prefix`.
fn searched(prefix: &str, want: impl Fn(usize) -> bool) -> Vec<String> {
    search_order((0..USERS).filter(|i| want(*i)).map(user), prefix)
}

async fn all_users(db: &Db, scope: &Scope<'_>, filter: &UserFilter, limit: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = PageRequest::new(Listing::Users, Some(limit), next.as_deref()).unwrap();
        let got = db.list_users(scope, filter, &page).await.unwrap();
        assert!(got.items.len() <= limit as usize);
        out.extend(got.items.into_iter().map(|u| u.id));
        match got.next_cursor {
            Some(c) => next = Some(c),
            None => return out,
        }
    }
}

#[tokio::test]
async fn paging_returns_every_row_once_in_order() {
    for t in TestDb::all().await {
        let db = &t.db;
        let (org, conn) = connection(db, "org-a", "t1").await;
        seed(db, &conn).await;
        let scope = Scope {
            organization_id: &org.id,
            connection_id: &conn.id,
        };
        let expected: Vec<String> = (0..USERS).map(|i| format!("u{i:04}")).collect();
        for limit in [1, 7, 100, 230, 1000] {
            assert_eq!(
                all_users(db, &scope, &UserFilter::default(), limit).await,
                expected
            );
        }
        // Time-ordered listings: newest first, ties by id descending, each row once.
        let mut ids = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = PageRequest::new(Listing::SignIns, Some(4), next.as_deref()).unwrap();
            let got = db
                .list_sign_ins(&scope, &SignInFilter::default(), &page)
                .await
                .unwrap();
            ids.extend(got.items.iter().map(|s| (s.created_at, s.id.clone())));
            next = got.next_cursor;
            if next.is_none() {
                break;
            }
        }
        let mut sorted = ids.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        sorted.dedup();
        assert_eq!(ids, sorted, "{:?}", t.backend());
        assert_eq!(ids.len(), 45);
        // A row written between pages does not repeat or skip the others.
        let first = db
            .list_users(
                &scope,
                &UserFilter::default(),
                &PageRequest::first(Listing::Users, 100).unwrap(),
            )
            .await
            .unwrap();
        let extra = PageWrite {
            users: vec![UserRow {
                id: "u0000a".into(),
                ..user(1)
            }],
            ..PageWrite::default()
        };
        db.write_page(&extra, &cursor(&conn), at(1)).await.unwrap();
        let second = db
            .list_users(
                &scope,
                &UserFilter::default(),
                &PageRequest::new(Listing::Users, Some(100), first.next_cursor.as_deref()).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(second.items[0].id, "u0100");
    }
}

#[tokio::test]
async fn filters_and_search() {
    for t in TestDb::all().await {
        let db = &t.db;
        let (org, conn) = connection(db, "org-a", "t1").await;
        seed(db, &conn).await;
        let scope = Scope {
            organization_id: &org.id,
            connection_id: &conn.id,
        };
        let users = |f: UserFilter| async move { all_users(db, &scope, &f, 50).await };
        let want = |p: &dyn Fn(usize) -> bool| -> Vec<String> {
            (0..USERS)
                .filter(|i| p(*i))
                .map(|i| format!("u{i:04}"))
                .collect()
        };
        assert_eq!(
            users(UserFilter {
                department: Some("R&D".into()),
                enabled: Some(false),
                ..UserFilter::default()
            })
            .await,
            want(&|i| i % 3 == 1 && i % 4 == 0)
        );
        assert_eq!(
            users(UserFilter {
                user_type: Some("Guest".into()),
                ..UserFilter::default()
            })
            .await,
            want(&|i| i % 10 == 0)
        );
        // Prefix of given name, case-insensitive.
        assert_eq!(
            users(UserFilter {
                search: Some("bO".into()),
                ..UserFilter::default()
            })
            .await,
            searched("bO", |i| i % 5 == 1)
        );
        // Non-ASCII: the database lowers the prefix as it lowers the names (SQLite's
        // lower() folds ASCII letters only, so the é is written as stored).
        assert_eq!(
            users(UserFilter {
                search: Some("CHLOé".into()),
                ..UserFilter::default()
            })
            .await,
            searched("chloé", |i| i % 5 == 2)
        );
        // Prefix of surname (and of nothing else): "person12" matches Person12, Person120..129.
        assert_eq!(
            users(UserFilter {
                search: Some(" PERSON12 ".into()),
                ..UserFilter::default()
            })
            .await,
            searched("person12", |i| i == 12 || (120..130).contains(&i))
        );
        // Mail (stored in capitals) and principal name with punctuation.
        assert_eq!(
            users(UserFilter {
                search: Some("mail10@".into()),
                ..UserFilter::default()
            })
            .await,
            searched("mail10@", |i| i == 10)
        );
        assert_eq!(
            users(UserFilter {
                search: Some("eve.p4".into()),
                ..UserFilter::default()
            })
            .await,
            searched("eve.p4", |i| i % 5 == 4 && format!("{i}").starts_with('4'))
        );
        // Search combined with a filter; a prefix nobody has; NUL matches nothing.
        assert_eq!(
            users(UserFilter {
                search: Some("ada".into()),
                department: Some("Ops".into()),
                ..UserFilter::default()
            })
            .await,
            searched("ada", |i| i % 5 == 0 && i % 3 == 2)
        );
        assert!(
            users(UserFilter {
                search: Some("zz".into()),
                ..UserFilter::default()
            })
            .await
            .is_empty()
        );
        assert!(
            users(UserFilter {
                department: Some("a\0b".into()),
                ..UserFilter::default()
            })
            .await
            .is_empty()
        );

        let page = PageRequest::first(Listing::Groups, 100).unwrap();
        let g = db
            .list_groups(
                &scope,
                &GroupFilter {
                    kind: Some("microsoft365".into()),
                    search: None,
                },
                &page,
            )
            .await
            .unwrap();
        assert_eq!(
            g.items.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            ["g2"]
        );
        let g = db
            .list_groups(
                &scope,
                &GroupFilter {
                    kind: None,
                    search: Some("G3@".into()),
                },
                &page,
            )
            .await
            .unwrap();
        assert_eq!(
            g.items.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            ["g3"]
        );

        let page = PageRequest::first(Listing::Devices, 100).unwrap();
        let d = db
            .list_devices(
                &scope,
                &DeviceFilter {
                    search: Some("laptop-1".into()),
                    compliance_state: Some("noncompliant".into()),
                    ..DeviceFilter::default()
                },
                &page,
            )
            .await
            .unwrap();
        assert_eq!(
            d.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["d10"]
        );
        let d = db
            .list_devices(
                &scope,
                &DeviceFilter {
                    user_id: Some("u0001".into()),
                    operating_system: Some("iOS".into()),
                    ..DeviceFilter::default()
                },
                &page,
            )
            .await
            .unwrap();
        assert_eq!(d.items.len(), 5, "odd i with i % 3 == 1");

        let s = db
            .list_sign_ins(
                &scope,
                &SignInFilter {
                    range: TimeRange {
                        from: Some(at(2)),
                        to: Some(at(4)),
                    },
                    user_id: Some("u0001".into()),
                },
                &PageRequest::first(Listing::SignIns, 100).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            s.items.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["s11", "s09", "s07"]
        );
        let a = db
            .list_directory_audits(
                &scope,
                &DirectoryAuditFilter {
                    range: TimeRange {
                        from: Some(at(8)),
                        to: None,
                    },
                    category: Some("UserManagement".into()),
                },
                &PageRequest::first(Listing::DirectoryAudits, 100).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            a.items.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["a10", "a08"]
        );
        let al = db
            .list_alerts(
                &scope,
                &AlertFilter {
                    range: TimeRange::default(),
                    severity: Some("high".into()),
                    status: Some("new".into()),
                },
                &PageRequest::first(Listing::Alerts, 100).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            al.items.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["al2", "al0"]
        );
    }
}

#[tokio::test]
async fn membership_direct_and_transitive_through_nested_groups() {
    for t in TestDb::all().await {
        let db = &t.db;
        let (org, conn) = connection(db, "org-a", "t1").await;
        seed(db, &conn).await;
        let scope = Scope {
            organization_id: &org.id,
            connection_id: &conn.id,
        };
        let page = PageRequest::first(Listing::GroupMembers, 100).unwrap();
        let direct = db
            .list_group_members(&scope, "g1", false, &page)
            .await
            .unwrap();
        assert_eq!(
            direct.items,
            vec![
                MemberEntry {
                    id: "g2".into(),
                    member_type: "group".into(),
                    display_name: Some("Team g2".into()),
                    user_principal_name: None
                },
                MemberEntry {
                    id: "u0001".into(),
                    member_type: "user".into(),
                    display_name: Some("Bob Person1".into()),
                    user_principal_name: Some("bob.p1@contoso.test".into())
                },
            ]
        );
        // Everything under g1, through g2 and g3 and back (the cycle ends), two per page.
        let mut ids = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = PageRequest::new(Listing::GroupMembers, Some(2), next.as_deref()).unwrap();
            let got = db
                .list_group_members(&scope, "g1", true, &page)
                .await
                .unwrap();
            ids.extend(got.items.into_iter().map(|m| m.id));
            next = got.next_cursor;
            if next.is_none() {
                break;
            }
        }
        assert_eq!(ids, ["dev-x", "g1", "g2", "g3", "u0001", "u0002", "u0003"]);

        let page = PageRequest::first(Listing::UserGroups, 100).unwrap();
        let direct = db
            .list_user_groups(&scope, "u0003", false, &page)
            .await
            .unwrap();
        assert_eq!(
            direct
                .items
                .iter()
                .map(|g| g.id.as_str())
                .collect::<Vec<_>>(),
            ["g3"]
        );
        let all = db
            .list_user_groups(&scope, "u0003", true, &page)
            .await
            .unwrap();
        assert_eq!(
            all.items.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            ["g1", "g2", "g3"]
        );
        assert_eq!(all.items[1].kind.as_deref(), Some("microsoft365"));
        let none = db
            .list_user_groups(&scope, "u0100", true, &page)
            .await
            .unwrap();
        assert!(none.items.is_empty() && none.next_cursor.is_none());

        let u = db.get_user(&scope, "u0007").await.unwrap();
        assert_eq!(u.manager_id.as_deref(), Some("u0000"));
        assert_eq!(
            db.get_group(&scope, "g2").await.unwrap().kind,
            "microsoft365"
        );
    }
}

#[tokio::test]
async fn cursors_are_checked() {
    for t in TestDb::all().await {
        let db = &t.db;
        let (org, conn) = connection(db, "org-a", "t1").await;
        seed(db, &conn).await;
        let scope = Scope {
            organization_id: &org.id,
            connection_id: &conn.id,
        };
        let page = PageRequest::first(Listing::Users, 10).unwrap();
        let cursor = db
            .list_users(&scope, &UserFilter::default(), &page)
            .await
            .unwrap()
            .next_cursor
            .unwrap();
        assert!(PageRequest::new(Listing::Users, None, Some(&cursor)).is_ok());
        // Another listing's cursor, a changed character, garbage, padding: refused.
        assert_eq!(
            PageRequest::new(Listing::Groups, None, Some(&cursor)),
            Err(PageError::Cursor)
        );
        assert_eq!(
            PageRequest::new(Listing::SignIns, None, Some(&cursor)),
            Err(PageError::Cursor)
        );
        for i in 0..cursor.len() {
            let mut bytes = cursor.clone().into_bytes();
            bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert_eq!(
                PageRequest::new(Listing::Users, None, Some(&tampered)),
                Err(PageError::Cursor),
                "position {i}"
            );
        }
        for bad in [
            "",
            "!!!!",
            "eyJsIjoidXNlcnMiLCJpIjoidTAwMDkifQ",
            &format!("{cursor}="),
        ] {
            assert_eq!(
                PageRequest::new(Listing::Users, None, Some(bad)),
                Err(PageError::Cursor),
                "{bad}"
            );
        }
        assert_eq!(
            PageRequest::new(Listing::Users, Some(0), None),
            Err(PageError::Limit)
        );
        assert_eq!(
            PageRequest::new(Listing::Users, Some(MAX_LIMIT + 1), None),
            Err(PageError::Limit)
        );
        assert_eq!(
            PageRequest::new(Listing::Users, None, None)
                .unwrap()
                .limit(),
            DEFAULT_LIMIT
        );
    }
}

fn not_found<T: std::fmt::Debug>(r: Result<T, Error>, entity: &str) {
    match r {
        Err(Error::NotFound { entity: e, .. }) => assert_eq!(e, entity),
        other => panic!("expected {entity} not found, got {other:?}"),
    }
}

#[tokio::test]
async fn another_organization_sees_nothing() {
    for t in TestDb::all().await {
        let db = &t.db;
        let (org_a, conn_a) = connection(db, "org-a", "t1").await;
        let (org_b, conn_b) = connection(db, "org-b", "t2").await;
        seed(db, &conn_a).await;
        // B's connection has one user with A's ids but its own data.
        let page = PageWrite {
            users: vec![user(1)],
            ..PageWrite::default()
        };
        db.write_page(&page, &cursor(&conn_b), at(0)).await.unwrap();

        // B's organization naming A's connection, A naming B's connection, unknown ids.
        for scope in [
            Scope {
                organization_id: &org_b.id,
                connection_id: &conn_a.id,
            },
            Scope {
                organization_id: &org_a.id,
                connection_id: &conn_b.id,
            },
            Scope {
                organization_id: &org_a.id,
                connection_id: "nope",
            },
            Scope {
                organization_id: "nope\0",
                connection_id: &conn_a.id,
            },
        ] {
            let p = |l| PageRequest::first(l, 100).unwrap();
            not_found(
                db.list_users(&scope, &UserFilter::default(), &p(Listing::Users))
                    .await,
                "connection",
            );
            not_found(
                db.list_groups(&scope, &GroupFilter::default(), &p(Listing::Groups))
                    .await,
                "connection",
            );
            not_found(
                db.list_devices(&scope, &DeviceFilter::default(), &p(Listing::Devices))
                    .await,
                "connection",
            );
            not_found(
                db.list_sign_ins(&scope, &SignInFilter::default(), &p(Listing::SignIns))
                    .await,
                "connection",
            );
            not_found(
                db.list_directory_audits(
                    &scope,
                    &DirectoryAuditFilter::default(),
                    &p(Listing::DirectoryAudits),
                )
                .await,
                "connection",
            );
            not_found(
                db.list_alerts(&scope, &AlertFilter::default(), &p(Listing::Alerts))
                    .await,
                "connection",
            );
            not_found(db.get_user(&scope, "u0005").await, "connection");
            not_found(db.get_group(&scope, "g1").await, "connection");
            not_found(
                db.list_group_members(&scope, "g1", true, &p(Listing::GroupMembers))
                    .await,
                "connection",
            );
            not_found(
                db.list_user_groups(&scope, "u0003", true, &p(Listing::UserGroups))
                    .await,
                "connection",
            );
        }
        // B's own connection sees only its own row; A's ids not in it are not found.
        let b = Scope {
            organization_id: &org_b.id,
            connection_id: &conn_b.id,
        };
        let users = db
            .list_users(
                &b,
                &UserFilter::default(),
                &PageRequest::first(Listing::Users, 100).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(users.items.len(), 1);
        not_found(db.get_user(&b, "u0005").await, "user");
        not_found(db.get_group(&b, "g1").await, "group");
        not_found(
            db.list_group_members(
                &b,
                "g1",
                false,
                &PageRequest::first(Listing::GroupMembers, 10).unwrap(),
            )
            .await,
            "group",
        );
        // An empty listing of one's own connection is a page, not an error.
        let g = db
            .list_groups(
                &b,
                &GroupFilter::default(),
                &PageRequest::first(Listing::Groups, 10).unwrap(),
            )
            .await
            .unwrap();
        assert!(g.items.is_empty() && g.next_cursor.is_none());
    }
}

#[tokio::test]
async fn a_search_pages_by_matched_value_every_row_once() {
    // Many matches, in several fields of the same users (given name, display name, mail):
    // each user comes once, at its least matching field, whatever the page size.
    for t in TestDb::all().await {
        let db = &t.db;
        let (org, conn) = connection(db, "org-a", "t1").await;
        let users: Vec<UserRow> = (0..2600)
            .map(|i| UserRow {
                id: format!("b{:05}", (i * 7919) % 2600),
                display_name: Some(format!("Bulk {}", i % 700)),
                given_name: (i % 3 != 0).then(|| "Bulk".into()),
                surname: Some(format!("Z{i}")),
                mail: (i % 5 == 0).then(|| format!("BULK.{i}@contoso.test")),
                department: Some(if i % 2 == 0 { "Even" } else { "Odd" }.into()),
                ..UserRow::default()
            })
            .chain((0..50).map(user))
            .collect();
        let page = PageWrite {
            users: users.clone(),
            ..PageWrite::default()
        };
        db.write_page(&page, &cursor(&conn), at(0)).await.unwrap();
        let scope = Scope {
            organization_id: &org.id,
            connection_id: &conn.id,
        };
        let want = search_order(users.clone(), "BULK");
        assert_eq!(want.len(), 2600);
        let f = UserFilter {
            search: Some("BULK".into()),
            ..UserFilter::default()
        };
        assert_eq!(all_users(db, &scope, &f, 1000).await, want);
        assert_eq!(all_users(db, &scope, &f, 333).await, want);
        assert_eq!(all_users(db, &scope, &f, 10).await, want);
        // With a filter; and a prefix that only some display names and mails have.
        let f = UserFilter {
            search: Some("bulk 1".into()),
            department: Some("Odd".into()),
            ..UserFilter::default()
        };
        let odd = search_order(
            users
                .iter()
                .filter(|u| u.department.as_deref() == Some("Odd"))
                .cloned(),
            "bulk 1",
        );
        assert!(odd.len() > 100);
        assert_eq!(all_users(db, &scope, &f, 100).await, odd);
        assert_eq!(all_users(db, &scope, &f, 7).await, odd);

        // A search's cursor goes with that search only.
        let first = db
            .list_users(
                &scope,
                &UserFilter {
                    search: Some("bulk".into()),
                    ..UserFilter::default()
                },
                &PageRequest::first(Listing::Users, 5).unwrap(),
            )
            .await
            .unwrap();
        let cursor = first.next_cursor.unwrap();
        let page = PageRequest::new(Listing::Users, Some(5), Some(&cursor)).unwrap();
        for search in [None, Some("bulk 1".to_owned()), Some("BULK".to_owned())] {
            let got = db
                .list_users(
                    &scope,
                    &UserFilter {
                        search,
                        ..UserFilter::default()
                    },
                    &page,
                )
                .await;
            assert!(
                matches!(got, Err(Error::Page(PageError::Cursor))),
                "{got:?}"
            );
        }
        // ... and the listing's own cursor is not a search's.
        let plain = db
            .list_users(
                &scope,
                &UserFilter::default(),
                &PageRequest::first(Listing::Users, 5).unwrap(),
            )
            .await
            .unwrap();
        let page = PageRequest::new(Listing::Users, Some(5), plain.next_cursor.as_deref()).unwrap();
        let got = db.list_users(&scope, &f, &page).await;
        assert!(
            matches!(got, Err(Error::Page(PageError::Cursor))),
            "{got:?}"
        );
    }
}
