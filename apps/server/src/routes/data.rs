//! A connection's synced data, read by its organization: users, groups and membership,
//! devices, sign-ins, directory audits and alerts, in pages with opaque cursors.

use actix_web::web;
use utoipa::OpenApi;

use crate::auth::OrgAuth;
use crate::dto::data::{
    AlertListQuery, AlertPage, AuditListQuery, AuditPage, DeviceListQuery, DevicePage,
    GroupListQuery, GroupPage, GroupResponse, MemberPage, MembershipQuery, SignInListQuery,
    SignInPage, UserGroupPage, UserListQuery, UserPage, UserResponse, page_request, search,
    time_range,
};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use tenantlink_store::{
    AlertFilter, DeviceFilter, DirectoryAuditFilter, GroupFilter, Listing, Scope, SignInFilter,
    UserFilter,
};

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    list_users,
    get_user,
    list_user_groups,
    list_groups,
    get_group,
    list_group_members,
    list_devices,
    list_sign_ins,
    list_directory_audits,
    list_alerts
))]
pub(crate) struct Api;

// Handlers take their path and query before `OrgAuth`: actix polls extractors in order and
// stops at the first error, so a malformed listing request is refused (400) without a key
// lookup. (The lookup runs as its own task either way; see `auth.rs`.)
fn scope<'a>(auth: &'a OrgAuth, connection_id: &'a str) -> Scope<'a> {
    Scope {
        organization_id: &auth.organization_id,
        connection_id,
    }
}

/// Lists a connection's users, by id (a search: by matched value, then id).
#[utoipa::path(get, path = "/v1/connections/{connection_id}/users", tag = "data",
    security(("api_key" = [])),
    params(("connection_id" = String, Path, description = "The connection"), UserListQuery),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 400, description = "Invalid limit, cursor, filter or search", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection for this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn list_users(
    path: web::Path<String>,
    query: web::Query<UserListQuery>,
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<UserPage>, ApiError> {
    let q = query.into_inner();
    let page = page_request(Listing::Users, q.limit, q.cursor.as_deref())?;
    let filter = UserFilter {
        department: q.department,
        enabled: q.enabled,
        user_type: q.user_type.map(|t| t.as_str().to_owned()),
        search: search(q.search)?,
    };
    let rows = state
        .db
        .list_users(&scope(&auth, &path), &filter, &page)
        .await?;
    Ok(web::Json(rows.into()))
}

/// One user of a connection, with its manager's id and last sign-ins.
#[utoipa::path(get, path = "/v1/connections/{connection_id}/users/{user_id}", tag = "data",
    security(("api_key" = [])),
    params(
        ("connection_id" = String, Path, description = "The connection"),
        ("user_id" = String, Path, description = "The user's object id"),
    ),
    responses(
        (status = 200, description = "The user", body = UserResponse),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection or user for this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn get_user(
    path: web::Path<(String, String)>,
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<UserResponse>, ApiError> {
    let (connection_id, user_id) = path.into_inner();
    let user = state
        .db
        .get_user(&scope(&auth, &connection_id), &user_id)
        .await?;
    Ok(web::Json(user.into()))
}

/// The groups a user belongs to, directly or (`transitive=true`) through nested groups.
#[utoipa::path(get, path = "/v1/connections/{connection_id}/users/{user_id}/groups", tag = "data",
    security(("api_key" = [])),
    params(
        ("connection_id" = String, Path, description = "The connection"),
        ("user_id" = String, Path, description = "The user's object id"),
        MembershipQuery,
    ),
    responses(
        (status = 200, description = "A page of groups, by id", body = UserGroupPage),
        (status = 400, description = "Invalid limit, cursor or transitive", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection or user for this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn list_user_groups(
    path: web::Path<(String, String)>,
    query: web::Query<MembershipQuery>,
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<UserGroupPage>, ApiError> {
    let (connection_id, user_id) = path.into_inner();
    let page = page_request(Listing::UserGroups, query.limit, query.cursor.as_deref())?;
    let rows = state
        .db
        .list_user_groups(
            &scope(&auth, &connection_id),
            &user_id,
            query.transitive.unwrap_or(false),
            &page,
        )
        .await?;
    Ok(web::Json(rows.into()))
}

/// Lists a connection's groups, by id (a search: by matched value, then id).
#[utoipa::path(get, path = "/v1/connections/{connection_id}/groups", tag = "data",
    security(("api_key" = [])),
    params(("connection_id" = String, Path, description = "The connection"), GroupListQuery),
    responses(
        (status = 200, description = "A page of groups", body = GroupPage),
        (status = 400, description = "Invalid limit, cursor, kind or search", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection for this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn list_groups(
    path: web::Path<String>,
    query: web::Query<GroupListQuery>,
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<GroupPage>, ApiError> {
    let q = query.into_inner();
    let page = page_request(Listing::Groups, q.limit, q.cursor.as_deref())?;
    let filter = GroupFilter {
        kind: q.kind.map(|k| k.as_str().to_owned()),
        search: search(q.search)?,
    };
    let rows = state
        .db
        .list_groups(&scope(&auth, &path), &filter, &page)
        .await?;
    Ok(web::Json(rows.into()))
}

/// One group of a connection.
#[utoipa::path(get, path = "/v1/connections/{connection_id}/groups/{group_id}", tag = "data",
    security(("api_key" = [])),
    params(
        ("connection_id" = String, Path, description = "The connection"),
        ("group_id" = String, Path, description = "The group's object id"),
    ),
    responses(
        (status = 200, description = "The group", body = GroupResponse),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection or group for this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn get_group(
    path: web::Path<(String, String)>,
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<GroupResponse>, ApiError> {
    let (connection_id, group_id) = path.into_inner();
    let group = state
        .db
        .get_group(&scope(&auth, &connection_id), &group_id)
        .await?;
    Ok(web::Json(group.into()))
}

/// The members of a group, direct or (`transitive=true`) through nested groups.
#[utoipa::path(get, path = "/v1/connections/{connection_id}/groups/{group_id}/members", tag = "data",
    security(("api_key" = [])),
    params(
        ("connection_id" = String, Path, description = "The connection"),
        ("group_id" = String, Path, description = "The group's object id"),
        MembershipQuery,
    ),
    responses(
        (status = 200, description = "A page of members, by id", body = MemberPage),
        (status = 400, description = "Invalid limit, cursor or transitive", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection or group for this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn list_group_members(
    path: web::Path<(String, String)>,
    query: web::Query<MembershipQuery>,
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<MemberPage>, ApiError> {
    let (connection_id, group_id) = path.into_inner();
    let page = page_request(Listing::GroupMembers, query.limit, query.cursor.as_deref())?;
    let rows = state
        .db
        .list_group_members(
            &scope(&auth, &connection_id),
            &group_id,
            query.transitive.unwrap_or(false),
            &page,
        )
        .await?;
    Ok(web::Json(rows.into()))
}

/// Lists a connection's managed devices, by id (a search: by device name, then id).
#[utoipa::path(get, path = "/v1/connections/{connection_id}/devices", tag = "data",
    security(("api_key" = [])),
    params(("connection_id" = String, Path, description = "The connection"), DeviceListQuery),
    responses(
        (status = 200, description = "A page of devices", body = DevicePage),
        (status = 400, description = "Invalid limit, cursor, filter or search", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection for this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn list_devices(
    path: web::Path<String>,
    query: web::Query<DeviceListQuery>,
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<DevicePage>, ApiError> {
    let q = query.into_inner();
    let page = page_request(Listing::Devices, q.limit, q.cursor.as_deref())?;
    let filter = DeviceFilter {
        compliance_state: q.compliance_state,
        operating_system: q.operating_system,
        user_id: q.user_id,
        search: search(q.search)?,
    };
    let rows = state
        .db
        .list_devices(&scope(&auth, &path), &filter, &page)
        .await?;
    Ok(web::Json(rows.into()))
}

/// Lists a connection's sign-ins, newest first.
#[utoipa::path(get, path = "/v1/connections/{connection_id}/sign-ins", tag = "data",
    security(("api_key" = [])),
    params(("connection_id" = String, Path, description = "The connection"), SignInListQuery),
    responses(
        (status = 200, description = "A page of sign-ins", body = SignInPage),
        (status = 400, description = "Invalid limit, cursor, time or range", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection for this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn list_sign_ins(
    path: web::Path<String>,
    query: web::Query<SignInListQuery>,
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<SignInPage>, ApiError> {
    let q = query.into_inner();
    let page = page_request(Listing::SignIns, q.limit, q.cursor.as_deref())?;
    let filter = SignInFilter {
        range: time_range(q.from, q.to)?,
        user_id: q.user_id,
    };
    let rows = state
        .db
        .list_sign_ins(&scope(&auth, &path), &filter, &page)
        .await?;
    Ok(web::Json(rows.into()))
}

/// Lists a connection's directory audits, newest first.
#[utoipa::path(get, path = "/v1/connections/{connection_id}/directory-audits", tag = "data",
    security(("api_key" = [])),
    params(("connection_id" = String, Path, description = "The connection"), AuditListQuery),
    responses(
        (status = 200, description = "A page of directory audits", body = AuditPage),
        (status = 400, description = "Invalid limit, cursor, time or range", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection for this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn list_directory_audits(
    path: web::Path<String>,
    query: web::Query<AuditListQuery>,
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<AuditPage>, ApiError> {
    let q = query.into_inner();
    let page = page_request(Listing::DirectoryAudits, q.limit, q.cursor.as_deref())?;
    let filter = DirectoryAuditFilter {
        range: time_range(q.from, q.to)?,
        category: q.category,
    };
    let rows = state
        .db
        .list_directory_audits(&scope(&auth, &path), &filter, &page)
        .await?;
    Ok(web::Json(rows.into()))
}

/// Lists a connection's security alerts, newest first.
#[utoipa::path(get, path = "/v1/connections/{connection_id}/alerts", tag = "data",
    security(("api_key" = [])),
    params(("connection_id" = String, Path, description = "The connection"), AlertListQuery),
    responses(
        (status = 200, description = "A page of alerts", body = AlertPage),
        (status = 400, description = "Invalid limit, cursor, time or range", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection for this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn list_alerts(
    path: web::Path<String>,
    query: web::Query<AlertListQuery>,
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<AlertPage>, ApiError> {
    let q = query.into_inner();
    let page = page_request(Listing::Alerts, q.limit, q.cursor.as_deref())?;
    let filter = AlertFilter {
        range: time_range(q.from, q.to)?,
        severity: q.severity,
        status: q.status,
    };
    let rows = state
        .db
        .list_alerts(&scope(&auth, &path), &filter, &page)
        .await?;
    Ok(web::Json(rows.into()))
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test, web};
    use serde_json::Value;
    use tenantlink_store::testing::TestDb;
    use tenantlink_store::{
        AlertRow, AuditRow, AuthKind, Cursor, Db, DeviceRow, GroupRow, MemberRow, NewConnection,
        PageWrite, SignInRow, UserRow,
    };

    use crate::testing::{offline_cloud, org_with_key, settings, state};

    fn at(secs: i64) -> chrono::NaiveDateTime {
        chrono::DateTime::from_timestamp(1_760_000_000 + secs, 0)
            .unwrap()
            .naive_utc()
    }

    /// [`seeded_connection`] on a multi-threaded runtime of its own (SQLite's write
    /// transactions need one; actix's test runtime has a single thread), through a second
    /// handle on the same database.
    fn seed(url: &str, org_id: &str, tag: &str) -> String {
        let (url, org_id, tag) = (url.to_owned(), org_id.to_owned(), tag.to_owned());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let db = Db::connect(&tenantlink_store::DbConfig::new(url))
                        .await
                        .unwrap();
                    seeded_connection(&db, &org_id, &tag).await
                })
        })
        .join()
        .unwrap()
    }

    /// A connection of `org_id` holding users u0..u4 (u1 managed by u0), groups g1 > g2
    /// (u2 in g2), a device, sign-ins, audits and alerts; `tag` marks its names.
    async fn seeded_connection(db: &Db, org_id: &str, tag: &str) -> String {
        let conn = db
            .create_connection(NewConnection {
                organization_id: org_id.into(),
                tenant_id: format!("tenant-{tag}"),
                client_id: "app".into(),
                auth_kind: AuthKind::ClientSecret,
                secret: Some((b"ciphertext".to_vec(), "key".into())),
                secret_expires_at: None,
                granted_permissions: vec![],
                missing_permissions: vec![],
            })
            .await
            .unwrap();
        let user = |i: usize| UserRow {
            id: format!("u{i}"),
            display_name: Some(format!("{tag} User{i}")),
            user_principal_name: Some(format!("user{i}@{tag}.test")),
            department: Some(if i.is_multiple_of(2) { "Sales" } else { "Ops" }.into()),
            account_enabled: Some(i != 3),
            user_type: Some(if i == 4 { "Guest" } else { "Member" }.into()),
            manager_id: (i == 1).then(|| "u0".into()),
            ..UserRow::default()
        };
        let group = |id: &str, kind: &str| GroupRow {
            id: id.into(),
            display_name: Some(format!("{tag} {id}")),
            kind: kind.into(),
            group_types: "Unified".into(),
            ..GroupRow::default()
        };
        let edge = |g: &str, m: &str, t: &str| MemberRow {
            group_id: g.into(),
            member_id: m.into(),
            member_type: t.into(),
        };
        let page = PageWrite {
            users: (0..5).map(user).collect(),
            groups: vec![group("g1", "security"), group("g2", "microsoft365")],
            members_added: vec![edge("g1", "g2", "group"), edge("g2", "u2", "user")],
            devices: vec![DeviceRow {
                id: "d1".into(),
                device_name: Some(format!("{tag}-laptop")),
                user_id: Some("u1".into()),
                compliance_state: Some("compliant".into()),
                operating_system: Some("Windows".into()),
                ..DeviceRow::default()
            }],
            sign_ins: (0..3)
                .map(|i| SignInRow {
                    id: format!("s{i}"),
                    created_at: at(i),
                    user_id: Some(format!("u{i}")),
                    user_principal_name: None,
                    app_display_name: None,
                    ip_address: None,
                    status_code: Some(0),
                    raw: r#"{"id":"x"}"#.into(),
                })
                .collect(),
            audits: vec![AuditRow {
                id: "a1".into(),
                activity_at: at(5),
                activity_display_name: Some("Add user".into()),
                category: Some("UserManagement".into()),
                result: Some("success".into()),
                raw: "{}".into(),
            }],
            alerts: vec![AlertRow {
                id: "al1".into(),
                created_at: at(7),
                updated_at: None,
                title: Some("Impossible travel".into()),
                severity: Some("high".into()),
                status: Some("new".into()),
                raw: "{}".into(),
            }],
            ..PageWrite::default()
        };
        let cursor = Cursor {
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
        };
        db.write_page(&page, &cursor, at(0)).await.unwrap();
        conn.id
    }

    fn ids(body: &Value) -> Vec<&str> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect()
    }

    /// Every status the OpenAPI document lists for `path` (GET).
    fn documented(path: &str) -> Vec<u16> {
        let doc = crate::openapi::document();
        let item = doc.paths.paths.get(path).expect("documented path");
        let op = item.get.as_ref().expect("GET");
        op.responses
            .responses
            .keys()
            .map(|k| k.parse().unwrap())
            .collect()
    }

    #[actix_web::test]
    async fn data_endpoints_answer_their_rows_and_refuse_others() {
        for db in TestDb::all().await {
            let (st, _stop) = state(db.db.clone(), offline_cloud(), settings());
            let app =
                test::init_service(App::new().configure(crate::app::configure(web::Data::new(st))))
                    .await;
            let (org_a, key_a) = org_with_key(&db.db, "org-a").await;
            let (org_b, key_b) = org_with_key(&db.db, "org-b").await;
            let conn_a = seed(&db.url, &org_a, "alpha");
            let conn_b = seed(&db.url, &org_b, "beta");

            let get = |key: &str, uri: String| {
                test::TestRequest::get()
                    .uri(&uri)
                    .insert_header(("authorization", format!("Bearer {key}")))
                    .to_request()
            };
            // (template path, concrete path with A's connection) of every endpoint.
            let endpoints = [
                ("/v1/connections/{connection_id}/users", "users"),
                (
                    "/v1/connections/{connection_id}/users/{user_id}",
                    "users/u1",
                ),
                (
                    "/v1/connections/{connection_id}/users/{user_id}/groups",
                    "users/u2/groups",
                ),
                ("/v1/connections/{connection_id}/groups", "groups"),
                (
                    "/v1/connections/{connection_id}/groups/{group_id}",
                    "groups/g1",
                ),
                (
                    "/v1/connections/{connection_id}/groups/{group_id}/members",
                    "groups/g1/members",
                ),
                ("/v1/connections/{connection_id}/devices", "devices"),
                ("/v1/connections/{connection_id}/sign-ins", "sign-ins"),
                (
                    "/v1/connections/{connection_id}/directory-audits",
                    "directory-audits",
                ),
                ("/v1/connections/{connection_id}/alerts", "alerts"),
            ];
            let mut seen: std::collections::HashMap<&str, Vec<u16>> = Default::default();
            let mut record = |template: &'static str, status: u16| {
                seen.entry(template).or_default().push(status);
            };
            for (template, tail) in endpoints {
                let own = format!("/v1/connections/{conn_a}/{tail}");
                let res = test::call_service(&app, get(&key_a, own.clone())).await;
                assert_eq!(res.status(), 200, "{own}");
                record(template, 200);
                // B's key on A's connection, and A's key on B's connection: 404.
                let res = test::call_service(&app, get(&key_b, own.clone())).await;
                assert_eq!(res.status(), 404, "{own} with B's key");
                let body: Value = test::read_body_json(res).await;
                assert_eq!(body["error"]["code"], "not_found");
                record(template, 404);
                let other = format!("/v1/connections/{conn_b}/{tail}");
                let res = test::call_service(&app, get(&key_a, other.clone())).await;
                assert_eq!(res.status(), 404, "{other} with A's key");
                // No key: 401.
                let req = test::TestRequest::get().uri(&own).to_request();
                assert_eq!(test::call_service(&app, req).await.status(), 401);
                record(template, 401);
                // A bad limit: 400 (listings only take it; single rows ignore it).
                let res = test::call_service(&app, get(&key_a, format!("{own}?limit=0"))).await;
                if template.ends_with('}') {
                    assert_eq!(res.status(), 200, "{own}");
                } else {
                    assert_eq!(res.status(), 400, "{own}");
                    let body: Value = test::read_body_json(res).await;
                    assert_eq!(body["error"]["code"], "invalid_limit");
                    record(template, 400);
                    let res =
                        test::call_service(&app, get(&key_a, format!("{own}?cursor=abc"))).await;
                    let body: Value = test::read_body_json(res).await;
                    assert_eq!(body["error"]["code"], "invalid_cursor", "{own}");
                }
            }
            // Every status seen is documented.
            for (template, statuses) in &seen {
                let doc = documented(template);
                for s in statuses {
                    assert!(
                        doc.contains(s),
                        "{template} answers {s} but documents {doc:?}"
                    );
                }
                assert!(doc.contains(&429) && doc.contains(&400), "{template}");
            }

            let base = format!("/v1/connections/{conn_a}");
            let json = |uri: String| {
                let req = get(&key_a, uri);
                let app = &app;
                async move {
                    let res = test::call_service(app, req).await;
                    assert_eq!(res.status(), 200);
                    test::read_body_json::<Value, _>(res).await
                }
            };
            // Paging with the cursor returns every user once.
            let first = json(format!("{base}/users?limit=3")).await;
            assert_eq!(ids(&first), ["u0", "u1", "u2"]);
            let cursor = first["next_cursor"].as_str().unwrap();
            let second = json(format!("{base}/users?limit=3&cursor={cursor}")).await;
            assert_eq!(ids(&second), ["u3", "u4"]);
            assert!(second["next_cursor"].is_null());
            // Another listing's cursor is refused.
            let res =
                test::call_service(&app, get(&key_a, format!("{base}/groups?cursor={cursor}")))
                    .await;
            assert_eq!(res.status(), 400);
            // Filters and search.
            let body = json(format!(
                "{base}/users?department=Sales&enabled=true&user_type=Member"
            ))
            .await;
            assert_eq!(ids(&body), ["u0", "u2"]);
            assert_eq!(
                ids(&json(format!("{base}/users?search=ALPHA%20user4")).await),
                ["u4"]
            );
            assert_eq!(
                ids(&json(format!("{base}/users?search=user3%40")).await),
                ["u3"]
            );
            assert_eq!(
                ids(&json(format!("{base}/users?user_type=Guest")).await),
                ["u4"]
            );
            let u1 = json(format!("{base}/users/u1")).await;
            assert_eq!(u1["manager_id"], "u0");
            assert!(u1.get("last_sign_in_at").is_some());
            assert_eq!(ids(&json(format!("{base}/users/u2/groups")).await), ["g2"]);
            assert_eq!(
                ids(&json(format!("{base}/users/u2/groups?transitive=true")).await),
                ["g1", "g2"]
            );
            assert_eq!(
                ids(&json(format!("{base}/groups?kind=microsoft365")).await),
                ["g2"]
            );
            assert_eq!(
                ids(&json(format!("{base}/groups?search=alpha%20g1")).await),
                ["g1"]
            );
            assert_eq!(
                json(format!("{base}/groups/g2")).await["group_types"],
                serde_json::json!(["Unified"])
            );
            let members = json(format!("{base}/groups/g1/members?transitive=true")).await;
            assert_eq!(ids(&members), ["g2", "u2"]);
            assert_eq!(
                members["items"][1]["user_principal_name"],
                "user2@alpha.test"
            );
            assert_eq!(members["items"][1]["member_type"], "user");
            assert_eq!(
                ids(&json(format!("{base}/groups/g1/members")).await),
                ["g2"]
            );
            assert_eq!(ids(&json(format!("{base}/devices?search=ALPHA-&user_id=u1&compliance_state=compliant&operating_system=Windows")).await), ["d1"]);
            assert_eq!(
                ids(&json(format!("{base}/sign-ins")).await),
                ["s2", "s1", "s0"]
            );
            let from = at(1).and_utc().format("%Y-%m-%dT%H:%M:%SZ");
            assert_eq!(
                ids(&json(format!("{base}/sign-ins?from={from}&user_id=u1")).await),
                ["s1"]
            );
            assert_eq!(
                ids(&json(format!("{base}/sign-ins?to={from}")).await),
                ["s0"]
            );
            assert_eq!(
                json(format!("{base}/sign-ins?limit=1")).await["items"][0]["details"]["id"],
                "x"
            );
            assert_eq!(
                ids(&json(format!("{base}/directory-audits?category=UserManagement")).await),
                ["a1"]
            );
            assert_eq!(
                ids(&json(format!("{base}/alerts?severity=high&status=new")).await),
                ["al1"]
            );
            assert!(ids(&json(format!("{base}/alerts?severity=low")).await).is_empty());

            // Bad input: 400 with a code, never a 5xx.
            for (uri, code) in [
                (format!("{base}/users?limit=1001"), "invalid_limit"),
                (format!("{base}/users?limit=-1"), "invalid_limit"),
                (format!("{base}/users?limit=x"), "invalid_query"),
                (format!("{base}/users?enabled=maybe"), "invalid_query"),
                (format!("{base}/users?user_type=Admin"), "invalid_query"),
                (
                    format!("{base}/users?search={}", "a".repeat(300)),
                    "invalid_search",
                ),
                (format!("{base}/groups?kind=unknown"), "invalid_query"),
                (
                    format!("{base}/users/u2/groups?transitive=yes"),
                    "invalid_query",
                ),
                (format!("{base}/sign-ins?from=yesterday"), "invalid_query"),
                (
                    format!("{base}/sign-ins?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"),
                    "invalid_range",
                ),
                (
                    format!("{base}/directory-audits?from=0000-01-01T00:00:00Z"),
                    "invalid_time",
                ),
                (format!("{base}/users?cursor=%00"), "invalid_cursor"),
            ] {
                let res = test::call_service(&app, get(&key_a, uri.clone())).await;
                assert_eq!(res.status(), 400, "{uri}");
                let body: Value = test::read_body_json(res).await;
                assert_eq!(body["error"]["code"], code, "{uri}");
            }
            // Odd ids are simply not found.
            for uri in [
                format!("{base}/users/%00"),
                format!("{base}/groups/nope/members"),
                "/v1/connections/%00/users?department=%00".to_owned(),
                format!("{base}/users?department=%00"),
            ] {
                let res = test::call_service(&app, get(&key_a, uri.clone())).await;
                assert!(
                    matches!(res.status().as_u16(), 200 | 404),
                    "{uri}: {}",
                    res.status()
                );
            }
        }
    }
}
