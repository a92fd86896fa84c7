//! Connections to Microsoft tenants: connect one with app credentials verified by Entra ID
//! first, read where it stands, rotate its secret, disconnect it (keeping the synced data)
//! or delete it with its data.

use actix_web::{HttpResponse, web};
use tenantlink_sync::credentials::{AppSecret, CredentialsRequest, store_credentials};
use utoipa::OpenApi;

use crate::auth::OrgAuth;
use crate::dto::connections::{
    ConnectRequest, ConnectionList, ConnectionResponse, DeleteQuery, ReplaceSecretRequest,
};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    create_connection,
    list_connections,
    get_connection,
    replace_connection_secret,
    delete_connection
))]
pub(crate) struct Api;

/// The longest client secret accepted (Entra ID's are 40 characters).
const MAX_SECRET_LEN: usize = 1024;
/// The longest certificate or private key PEM accepted.
const MAX_PEM_LEN: usize = 16 * 1024;

/// The error an extractor taken as a `Result` answered (our JSON, query or size error),
/// back as an `ApiError`.
pub(crate) fn rejected(e: actix_web::Error) -> ApiError {
    match e.as_error::<ApiError>() {
        Some(ApiError::BadRequest { code, message }) => ApiError::BadRequest {
            code,
            message: message.clone(),
        },
        Some(ApiError::PayloadTooLarge { limit }) => ApiError::PayloadTooLarge { limit: *limit },
        _ => ApiError::bad_request("invalid_request", e.to_string()),
    }
}

/// A GUID (8-4-4-4-12 hex digits), lowercased; else 400 `invalid_<field>`.
pub(crate) fn check_guid(field: &'static str, value: &str) -> Result<String, ApiError> {
    let code = match field {
        "tenant_id" => "invalid_tenant_id",
        _ => "invalid_client_id",
    };
    let v = value.trim();
    let groups: Vec<&str> = v.split('-').collect();
    let shape = [8, 4, 4, 4, 12];
    let ok = groups.len() == shape.len()
        && groups
            .iter()
            .zip(shape)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(ApiError::bad_request(
            code,
            format!("{field} must be a GUID (8-4-4-4-12 hexadecimal digits)"),
        ));
    }
    Ok(v.to_ascii_lowercase())
}

pub(crate) fn ensure_secret(secret: &str) -> Result<(), ApiError> {
    if secret.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_secret",
            "client_secret is empty",
        ));
    }
    if secret.chars().count() > MAX_SECRET_LEN || secret.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_secret",
            format!("client_secret must be 1 to {MAX_SECRET_LEN} printable characters"),
        ));
    }
    Ok(())
}

fn check_pem(field: &str, pem: &str) -> Result<(), ApiError> {
    if pem.len() > MAX_PEM_LEN || !pem.contains("-----BEGIN ") {
        return Err(ApiError::bad_request(
            "invalid_certificate",
            format!("{field} must be PEM text of at most {MAX_PEM_LEN} bytes"),
        ));
    }
    Ok(())
}

/// Exactly one of a client secret or a certificate with its key; else 400.
pub(crate) fn app_secret(
    client_secret: Option<&String>,
    certificate_pem: Option<&String>,
    private_key_pem: Option<&String>,
) -> Result<AppSecret, ApiError> {
    match (client_secret, certificate_pem, private_key_pem) {
        (Some(secret), None, None) => {
            ensure_secret(secret)?;
            Ok(AppSecret::Secret(secret.clone().into()))
        }
        (None, Some(cert), Some(key)) => {
            check_pem("certificate_pem", cert)?;
            check_pem("private_key_pem", key)?;
            Ok(AppSecret::Certificate {
                certificate_pem: cert.clone(),
                private_key_pem: key.clone().into(),
            })
        }
        _ => Err(ApiError::bad_request(
            "secret_or_certificate",
            "send either client_secret, or certificate_pem with private_key_pem (not both)",
        )),
    }
}

/// An expiry in the future, as stored; else 400.
pub(crate) fn check_expiry(
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<chrono::NaiveDateTime>, ApiError> {
    match at {
        Some(t) if t <= chrono::Utc::now() => Err(ApiError::bad_request(
            "invalid_expiry",
            "secret_expires_at must be in the future",
        )),
        other => Ok(other.map(|t| t.naive_utc())),
    }
}

/// Entra ID's refusal (422), its absence (502), or ours, in the API's words. Never carries
/// a secret: Entra ID's descriptions do not echo it.
pub(crate) fn credential_error(e: tenantlink_sync::Error) -> ApiError {
    use tenantlink_sync::Error as S;
    match e {
        S::Identity(e) => identity_error(*e),
        S::Store(tenantlink_store::Error::Conflict(message)) => ApiError::Conflict {
            code: "connection_exists",
            message,
        },
        S::Store(e) => e.into(),
        other => ApiError::internal(other),
    }
}

/// An Entra ID error met while verifying app credentials.
pub(crate) fn identity_error(e: tenantlink_identity::Error) -> ApiError {
    use tenantlink_identity::Error as I;
    match &e {
        I::Network(_) => ApiError::Upstream {
            code: "entra_unreachable",
            message: "cannot reach Entra ID to verify the credentials; retry shortly".into(),
        },
        I::InvalidResponse(_) => ApiError::Upstream {
            code: "entra_error",
            message: e.to_string(),
        },
        I::Unexpected { status, .. } if *status >= 500 || *status == 429 => ApiError::Upstream {
            code: "entra_error",
            message: e.to_string(),
        },
        I::Certificate(_) => ApiError::bad_request("invalid_certificate", e.to_string()),
        _ => ApiError::Unprocessable {
            code: "invalid_credentials",
            message: format!("Entra ID refused the credentials: {e}"),
        },
    }
}

/// An Entra ID client of its own for verifying credentials: the shared client's token
/// cache could answer with a token another secret of the same app obtained.
pub(crate) fn verifier_identity(
    state: &AppState,
) -> Result<tenantlink_identity::IdentityClient, ApiError> {
    state.cloud.identity_client().map_err(ApiError::internal)
}

/// A connection as the API shows it: with its delegated accounts, latest run and cursors.
pub(crate) async fn connection_response(
    state: &AppState,
    connection: tenantlink_store::Connection,
) -> Result<ConnectionResponse, ApiError> {
    let tokens = state.db.delegated_tokens(&connection.id).await?.len();
    let last_run = state.db.runs(&connection.id, 1).await?.into_iter().next();
    let cursors = state.db.cursors(&connection.id).await?;
    Ok(ConnectionResponse::new(
        connection, tokens, last_run, cursors,
    ))
}

/// Connects a Microsoft tenant with an app's client secret or certificate. The
/// credentials are verified with Entra ID first; nothing is stored if it refuses them.
#[utoipa::path(post, path = "/v1/connections", tag = "connections",
    request_body = ConnectRequest,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Connected", body = ConnectionResponse),
        (status = 400, description = "Malformed body, a non-GUID id, an empty or too long secret, both or neither of secret and certificate, a past expiry", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 409, description = "This organization already connects the tenant", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Entra ID refused the credentials (code `invalid_credentials`, with its reason)", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 502, description = "Entra ID could not be reached", body = ErrorBody),
    ))]
pub(crate) async fn create_connection(
    auth: OrgAuth,
    state: web::Data<AppState>,
    body: Result<web::Json<ConnectRequest>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    // Taken as a `Result`: the key (401) is checked before the body (400).
    let body = body.map_err(rejected)?;
    let tenant_id = check_guid("tenant_id", &body.tenant_id)?;
    let client_id = check_guid("client_id", &body.client_id)?;
    let secret = app_secret(
        body.client_secret.as_ref(),
        body.certificate_pem.as_ref(),
        body.private_key_pem.as_ref(),
    )?;
    let secret_expires_at = check_expiry(body.secret_expires_at)?;
    if let Some(existing) = state
        .db
        .connection_by_tenant(&auth.organization_id, &tenant_id)
        .await?
    {
        return Err(ApiError::Conflict {
            code: "connection_exists",
            message: format!(
                "this organization already connects tenant {tenant_id} (connection {}); give it a new secret with PUT /v1/connections/{}/secret",
                existing.id, existing.id
            ),
        });
    }
    let (connection, _) = store_credentials(
        &state.db,
        &state.ring,
        &verifier_identity(&state)?,
        CredentialsRequest {
            organization_id: auth.organization_id.clone(),
            connection_id: None,
            tenant_id,
            client_id,
            secret,
            secret_expires_at,
        },
    )
    .await
    .map_err(credential_error)?;
    Ok(HttpResponse::Created().json(connection_response(&state, connection).await?))
}

/// Lists the organization's connections.
#[utoipa::path(get, path = "/v1/connections", tag = "connections",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Connections", body = ConnectionList),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn list_connections(
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<ConnectionList>, ApiError> {
    let connections = state.db.connections(&auth.organization_id).await?;
    let mut items = Vec::with_capacity(connections.len());
    for c in connections {
        items.push(connection_response(&state, c).await?);
    }
    Ok(web::Json(ConnectionList { items }))
}

/// One connection: status, credentials' expiry and permissions, last sync per resource.
#[utoipa::path(get, path = "/v1/connections/{connection_id}", tag = "connections",
    params(("connection_id" = String, Path, description = "The connection")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The connection", body = ConnectionResponse),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection in this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn get_connection(
    auth: OrgAuth,
    state: web::Data<AppState>,
    connection_id: web::Path<String>,
) -> Result<web::Json<ConnectionResponse>, ApiError> {
    let connection = state
        .db
        .connection(&auth.organization_id, &connection_id)
        .await?;
    Ok(web::Json(connection_response(&state, connection).await?))
}

/// Gives a connection a new client secret (or certificate), verified with Entra ID first.
/// Also reconnects a disconnected connection.
#[utoipa::path(put, path = "/v1/connections/{connection_id}/secret", tag = "connections",
    params(("connection_id" = String, Path, description = "The connection")),
    request_body = ReplaceSecretRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Replaced; the connection is active", body = ConnectionResponse),
        (status = 400, description = "Malformed body, an empty or too long secret, a past expiry", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection in this organization", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Entra ID refused the new secret; the old one is kept", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 502, description = "Entra ID could not be reached", body = ErrorBody),
    ))]
pub(crate) async fn replace_connection_secret(
    auth: OrgAuth,
    state: web::Data<AppState>,
    connection_id: web::Path<String>,
    body: Result<web::Json<ReplaceSecretRequest>, actix_web::Error>,
) -> Result<web::Json<ConnectionResponse>, ApiError> {
    // Taken as a `Result`: the key (401) is checked before the body (400).
    let body = body.map_err(rejected)?;
    let secret = app_secret(
        body.client_secret.as_ref(),
        body.certificate_pem.as_ref(),
        body.private_key_pem.as_ref(),
    )?;
    let secret_expires_at = check_expiry(body.secret_expires_at)?;
    let existing = state
        .db
        .connection(&auth.organization_id, &connection_id)
        .await?;
    let (connection, _) = store_credentials(
        &state.db,
        &state.ring,
        &verifier_identity(&state)?,
        CredentialsRequest {
            organization_id: auth.organization_id.clone(),
            connection_id: Some(existing.id),
            tenant_id: existing.tenant_id,
            client_id: existing.client_id,
            secret,
            secret_expires_at,
        },
    )
    .await
    .map_err(credential_error)?;
    Ok(web::Json(connection_response(&state, connection).await?))
}

/// Disconnects a connection: its credentials and delegated tokens are erased and it is
/// marked `disconnected`; its synced data stays. With `purge=true`, deletes it with all its
/// synced data.
#[utoipa::path(delete, path = "/v1/connections/{connection_id}", tag = "connections",
    params(("connection_id" = String, Path, description = "The connection"), DeleteQuery),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Disconnected (or deleted, with purge)"),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection in this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn delete_connection(
    auth: OrgAuth,
    state: web::Data<AppState>,
    connection_id: web::Path<String>,
    query: Result<web::Query<DeleteQuery>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    // Taken as a `Result`: the key (401) is checked before the query (400).
    let query = query.map_err(rejected)?;
    if query.purge == Some(true) {
        state
            .db
            .delete_connection(&auth.organization_id, &connection_id)
            .await?;
    } else {
        state
            .db
            .disconnect_connection(&auth.organization_id, &connection_id)
            .await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Requests for handler tests.
#[cfg(test)]
pub(crate) mod test_http {
    use actix_web::test;
    use serde_json::Value;

    /// A request with an API key and an optional JSON body.
    pub(crate) fn build(
        method: &str,
        uri: &str,
        key: &str,
        body: Option<Value>,
    ) -> test::TestRequest {
        let req = match method {
            "POST" => test::TestRequest::post(),
            "PUT" => test::TestRequest::put(),
            "DELETE" => test::TestRequest::delete(),
            _ => test::TestRequest::get(),
        }
        .uri(uri)
        .insert_header(("authorization", format!("Bearer {key}")));
        match body {
            Some(b) => req.set_json(b),
            None => req,
        }
    }

    /// The status, the body as JSON (Null if none) and as text.
    pub(crate) async fn read(res: actix_web::dev::ServiceResponse) -> (u16, Value, String) {
        let status = res.status().as_u16();
        let bytes = test::read_body(res).await;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        )
    }

    macro_rules! call {
        ($app:expr, $method:expr, $uri:expr, $key:expr, $body:expr $(,)?) => {
            async {
                $crate::routes::connections::test_http::read(
                    ::actix_web::test::call_service(
                        $app,
                        $crate::routes::connections::test_http::build($method, $uri, $key, $body)
                            .to_request(),
                    )
                    .await,
                )
                .await
            }
        };
    }

    pub(crate) use call;
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test, web};
    use serde_json::json;
    use tenantlink_store::testing::TestDb;
    use tenantlink_store::{Cursor, PageWrite, UserRow};

    use crate::testing;

    use super::test_http::call;

    #[actix_web::test]
    async fn connect_read_rotate_disconnect_reconnect_and_purge() {
        let emulator = testing::emulator(7);
        let tenant = emulator.tenants()[0].clone();
        let app_creds = &tenant.connector_app;
        for db in TestDb::all().await {
            let backend = db.backend();
            let (state, _stop) = testing::state(
                db.db.clone(),
                testing::emulator_cloud(&emulator),
                testing::settings(),
            );
            let app = test::init_service(
                App::new().configure(crate::app::configure(web::Data::new(state))),
            )
            .await;
            let (org, key) = testing::org_with_key(&db.db, "Contoso").await;
            let (_, other_key) = testing::org_with_key(&db.db, "Fabrikam").await;
            let mut answers = Vec::new();
            let connect = |secret: &str| {
                json!({
                    "tenant_id": tenant.tenant_id,
                    "client_id": app_creds.client_id,
                    "client_secret": secret,
                })
            };

            // Bad input: 400 with a code, nothing stored, nothing sent to Entra ID.
            let long = "x".repeat(2000);
            for (body, code) in [
                (
                    json!({"tenant_id": "nope", "client_id": app_creds.client_id, "client_secret": "s"}),
                    "invalid_tenant_id",
                ),
                (
                    json!({"tenant_id": tenant.tenant_id, "client_id": "1234", "client_secret": "s"}),
                    "invalid_client_id",
                ),
                (
                    json!({"tenant_id": tenant.tenant_id, "client_id": app_creds.client_id, "client_secret": ""}),
                    "invalid_secret",
                ),
                (
                    json!({"tenant_id": tenant.tenant_id, "client_id": app_creds.client_id, "client_secret": "  "}),
                    "invalid_secret",
                ),
                (
                    json!({"tenant_id": tenant.tenant_id, "client_id": app_creds.client_id, "client_secret": long}),
                    "invalid_secret",
                ),
                (
                    json!({"tenant_id": tenant.tenant_id, "client_id": app_creds.client_id}),
                    "secret_or_certificate",
                ),
                (
                    json!({"tenant_id": tenant.tenant_id, "client_id": app_creds.client_id, "client_secret": "s", "certificate_pem": "-----BEGIN CERTIFICATE-----", "private_key_pem": "-----BEGIN PRIVATE KEY-----"}),
                    "secret_or_certificate",
                ),
                (
                    json!({"tenant_id": tenant.tenant_id, "client_id": app_creds.client_id, "client_secret": "s", "secret_expires_at": "2001-01-01T00:00:00Z"}),
                    "invalid_expiry",
                ),
                (
                    json!({"tenant_id": tenant.tenant_id, "client_id": app_creds.client_id, "certificate_pem": "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----", "private_key_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}),
                    "invalid_certificate",
                ),
                (
                    json!({"tenant_id": tenant.tenant_id, "client_id": app_creds.client_id, "certificate_pem": "no pem", "private_key_pem": "x"}),
                    "invalid_certificate",
                ),
                (
                    json!({"tenant_id": tenant.tenant_id, "client_secret": "s"}),
                    "invalid_json",
                ),
                (
                    json!({"tenant_id": 5, "client_id": app_creds.client_id, "client_secret": "s"}),
                    "invalid_json",
                ),
                (
                    json!({"tenant_id": tenant.tenant_id, "client_id": app_creds.client_id, "client_secret": "s", "extra": 1}),
                    "invalid_json",
                ),
            ] {
                let (status, body, _) =
                    call!(&app, "POST", "/v1/connections", &key, Some(body)).await;
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (400, Some(code)),
                    "{body}"
                );
            }

            // A wrong secret: 422 with Entra ID's reason, not the secret; nothing stored.
            let wrong = "wrong-secret-7c1f0e9a";
            let (status, body, text) =
                call!(&app, "POST", "/v1/connections", &key, Some(connect(wrong))).await;
            assert_eq!(status, 422, "{body}");
            assert_eq!(body["error"]["code"], "invalid_credentials");
            assert!(text.contains("AADSTS"), "{text}");
            assert!(!text.contains(wrong));
            assert!(db.db.connections(&org).await.unwrap().is_empty());

            // The right one: 201, verified permissions, no secret.
            let (status, created, text) = call!(
                &app,
                "POST",
                "/v1/connections",
                &key,
                Some(connect(&app_creds.client_secret)),
            )
            .await;
            assert_eq!(status, 201, "{created}");
            answers.push(text);
            let id = created["id"].as_str().unwrap().to_owned();
            assert_eq!(created["status"], "active");
            assert_eq!(created["connected"], true);
            assert_eq!(created["auth_kind"], "client_secret");
            assert_eq!(created["tenant_id"], tenant.tenant_id.to_lowercase());
            assert!(
                created["granted_permissions"].as_array().unwrap().len() >= 5,
                "{created}"
            );
            assert_eq!(created["missing_permissions"], json!([]));

            // The same tenant again: 409.
            let (status, body, _) = call!(
                &app,
                "POST",
                "/v1/connections",
                &key,
                Some(connect(&app_creds.client_secret)),
            )
            .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (409, Some("connection_exists"))
            );

            // Synced data and a run show in the connection's sync status.
            let now = chrono::Utc::now().naive_utc();
            let cursor = Cursor {
                connection_id: id.clone(),
                resource: "users".into(),
                round: 1,
                full_round: true,
                run_id: None,
                next_link: None,
                delta_link: None,
                time_cursor: None,
                round_started_at: Some(now),
                pages: 1,
                rows_written: 1,
                updated_at: now,
            };
            let page = PageWrite {
                users: vec![UserRow {
                    id: "u1".into(),
                    ..UserRow::default()
                }],
                ..PageWrite::default()
            };
            db.db.write_page(&page, &cursor, now).await.unwrap();
            let run = db.db.create_run(&id, "full").await.unwrap();
            let report =
                json!({"resources": [{"resource": "users", "status": "complete", "reason": null}]});
            db.db
                .finish_run(&run.id, "complete", &report.to_string(), None)
                .await
                .unwrap();
            let (status, got, text) =
                call!(&app, "GET", &format!("/v1/connections/{id}"), &key, None).await;
            assert_eq!(status, 200);
            answers.push(text);
            assert_eq!(got["sync"][0]["resource"], "users");
            assert_eq!(got["sync"][0]["completeness"], "complete");
            assert_eq!(got["sync"][0]["in_progress"], false);
            assert_eq!(got["last_run"]["status"], "complete");
            let (status, list, text) = call!(&app, "GET", "/v1/connections", &key, None).await;
            assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 1));
            answers.push(text);

            // Another organization sees nothing and can touch nothing.
            let (_, list, _) = call!(&app, "GET", "/v1/connections", &other_key, None).await;
            assert_eq!(list["items"], json!([]));
            for (method, uri, body) in [
                ("GET", format!("/v1/connections/{id}"), None),
                (
                    "PUT",
                    format!("/v1/connections/{id}/secret"),
                    Some(json!({"client_secret": app_creds.client_secret})),
                ),
                ("DELETE", format!("/v1/connections/{id}"), None),
                ("DELETE", format!("/v1/connections/{id}?purge=true"), None),
                (
                    "GET",
                    format!("/v1/connections/{id}/connect/microsoft"),
                    None,
                ),
                (
                    "GET",
                    format!("/v1/connections/{id}/consent/microsoft"),
                    None,
                ),
            ] {
                let (status, body, _) = call!(&app, method, &uri, &other_key, body).await;
                assert_eq!(status, 404, "{method} {uri}: {body}");
            }
            assert_eq!(
                call!(&app, "GET", "/v1/connections/nope", &key, None)
                    .await
                    .0,
                404
            );
            assert_eq!(
                call!(&app, "GET", "/v1/connections", "tlk_bad", None)
                    .await
                    .0,
                401
            );

            // Rotation: a refused secret keeps the old one; a good one replaces it.
            let before = db.db.connection(&org, &id).await.unwrap();
            let (status, body, text) = call!(
                &app,
                "PUT",
                &format!("/v1/connections/{id}/secret"),
                &key,
                Some(json!({"client_secret": wrong})),
            )
            .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (422, Some("invalid_credentials"))
            );
            assert!(!text.contains(wrong));
            assert_eq!(db.db.connection(&org, &id).await.unwrap(), before);
            let (status, body, _) = call!(
                &app,
                "PUT",
                &format!("/v1/connections/{id}/secret"),
                &key,
                Some(json!({"client_secret": ""})),
            )
            .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_secret"))
            );
            let expires = chrono::Utc::now() + chrono::Duration::days(30);
            let (status, rotated, text) = call!(
                &app,
                "PUT",
                &format!("/v1/connections/{id}/secret"),
                &key,
                Some(
                    json!({"client_secret": app_creds.client_secret, "secret_expires_at": expires}),
                ),
            )
            .await;
            assert_eq!(status, 200, "{rotated}");
            answers.push(text);
            assert!(rotated["secret_expires_at"].is_string());
            let after = db.db.connection(&org, &id).await.unwrap();
            assert_ne!(after.secret_ciphertext, before.secret_ciphertext);

            // Disconnect: credentials gone, data kept; a new secret reconnects.
            let (status, _, _) =
                call!(&app, "DELETE", &format!("/v1/connections/{id}"), &key, None).await;
            assert_eq!(status, 204);
            let (_, got, text) =
                call!(&app, "GET", &format!("/v1/connections/{id}"), &key, None).await;
            answers.push(text);
            assert_eq!(
                (got["status"].as_str(), got["connected"].as_bool()),
                (Some("disconnected"), Some(false))
            );
            let stored = db.db.connection(&org, &id).await.unwrap();
            assert!(stored.secret_ciphertext.is_none());
            assert_eq!(db.db.users(&id).await.unwrap().len(), 1, "{backend:?}");
            let (status, got, _) = call!(
                &app,
                "PUT",
                &format!("/v1/connections/{id}/secret"),
                &key,
                Some(json!({"client_secret": app_creds.client_secret})),
            )
            .await;
            assert_eq!((status, got["status"].as_str()), (200, Some("active")));

            // Purge: the connection and its data go.
            let (status, _, _) = call!(
                &app,
                "DELETE",
                &format!("/v1/connections/{id}?purge=true"),
                &key,
                None
            )
            .await;
            assert_eq!(status, 204);
            assert_eq!(
                call!(&app, "GET", &format!("/v1/connections/{id}"), &key, None)
                    .await
                    .0,
                404
            );
            assert!(db.db.users(&id).await.unwrap().is_empty());
            let (status, body, _) = call!(
                &app,
                "DELETE",
                &format!("/v1/connections/{id}?purge=maybe"),
                &key,
                None
            )
            .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_query"))
            );

            // No answer carried a secret, a ciphertext (Fernet tokens start `gAAAAA`) or a key id.
            for text in &answers {
                assert!(!text.contains(&app_creds.client_secret), "{text}");
                assert!(!text.contains("gAAAAA"), "{text}");
                assert!(
                    !text.contains("secret_ciphertext") && !text.contains("key_id"),
                    "{text}"
                );
            }
        }
    }

    #[actix_web::test]
    async fn entra_unreachable_is_502_and_stores_nothing() {
        for db in TestDb::all().await {
            let (state, _stop) =
                testing::state(db.db.clone(), testing::offline_cloud(), testing::settings());
            let app = test::init_service(
                App::new().configure(crate::app::configure(web::Data::new(state))),
            )
            .await;
            let (org, key) = testing::org_with_key(&db.db, "Contoso").await;
            let body = json!({
                "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "client_id": "00000000-0000-0000-0000-000000000001",
                "client_secret": "a-secret",
            });
            let (status, body, _) = call!(&app, "POST", "/v1/connections", &key, Some(body)).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (502, Some("entra_unreachable")),
                "{body}"
            );
            assert!(db.db.connections(&org).await.unwrap().is_empty());
        }
    }
}
