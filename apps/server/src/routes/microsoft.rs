//! The seed platform's routes, for an organization with one Microsoft connection: set it
//! up (or replace its credentials), read its status, disconnect it.

use actix_web::{HttpResponse, web};
use tenantlink_store::Connection;
use tenantlink_sync::credentials::{AppSecret, CredentialsRequest, store_credentials};
use utoipa::OpenApi;

use super::connections::rejected;
use super::connections::{
    check_expiry, check_guid, connection_response, credential_error, ensure_secret,
    verifier_identity,
};
use crate::auth::OrgAuth;
use crate::dto::connections::{
    ConnectionResponse, MicrosoftStatusResponse, NotConnected, SetupRequest,
};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(setup_microsoft, microsoft_status, disconnect_microsoft))]
pub(crate) struct Api;

/// The organization's Microsoft connection: the most recently changed one still
/// connected, else the most recently changed one.
fn current(mut connections: Vec<Connection>) -> Option<Connection> {
    connections.sort_by_key(|c| std::cmp::Reverse(c.updated_at));
    let live = connections.iter().position(|c| c.status != "disconnected");
    match live {
        Some(i) => Some(connections.swap_remove(i)),
        None => connections.into_iter().next(),
    }
}

/// Connects the organization's Microsoft tenant, or replaces the credentials of its
/// connection to that tenant (reconnecting it if it was disconnected). Verified with
/// Entra ID first.
#[utoipa::path(post, path = "/v1/microsoft/setup", tag = "microsoft",
    request_body = SetupRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The existing connection's credentials were replaced", body = ConnectionResponse),
        (status = 201, description = "Connected", body = ConnectionResponse),
        (status = 400, description = "Malformed body, a non-GUID id, an empty or too long secret, a past expiry", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 409, description = "Another tenant is connected: disconnect it first", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Entra ID refused the credentials", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 502, description = "Entra ID could not be reached", body = ErrorBody),
    ))]
pub(crate) async fn setup_microsoft(
    auth: OrgAuth,
    state: web::Data<AppState>,
    body: Result<web::Json<SetupRequest>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    // Taken as a `Result`: the key (401) is checked before the body (400).
    let body = body.map_err(rejected)?;
    let tenant_id = check_guid("tenant_id", &body.tenant_id)?;
    let client_id = check_guid("client_id", &body.client_id)?;
    ensure_secret(&body.client_secret)?;
    let secret = AppSecret::Secret(body.client_secret.clone().into());
    let secret_expires_at = check_expiry(body.secret_expires_at)?;
    let connections = state.db.connections(&auth.organization_id).await?;
    let same_tenant = connections
        .iter()
        .find(|c| c.tenant_id.eq_ignore_ascii_case(&tenant_id))
        .map(|c| c.id.clone());
    if same_tenant.is_none()
        && let Some(other) = connections.iter().find(|c| c.status != "disconnected")
    {
        return Err(ApiError::Conflict {
            code: "already_connected",
            message: format!(
                "this organization is connected to tenant {}: DELETE /v1/microsoft/disconnect first",
                other.tenant_id
            ),
        });
    }
    let created = same_tenant.is_none();
    let (connection, _) = store_credentials(
        &state.db,
        &state.ring,
        &verifier_identity(&state)?,
        CredentialsRequest {
            organization_id: auth.organization_id.clone(),
            connection_id: same_tenant,
            tenant_id,
            client_id,
            secret,
            secret_expires_at,
        },
    )
    .await
    .map_err(credential_error)?;
    let body = connection_response(&state, connection).await?;
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// The organization's Microsoft connection, or `{"connected": false}`.
#[utoipa::path(get, path = "/v1/microsoft/status", tag = "microsoft",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The connection, or `{\"connected\": false}`", body = MicrosoftStatusResponse),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn microsoft_status(
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<MicrosoftStatusResponse>, ApiError> {
    let connections = state.db.connections(&auth.organization_id).await?;
    Ok(web::Json(match current(connections) {
        Some(c) => {
            MicrosoftStatusResponse::Connected(Box::new(connection_response(&state, c).await?))
        }
        None => MicrosoftStatusResponse::NotConnected(NotConnected { connected: false }),
    }))
}

/// Disconnects the organization's Microsoft connection: credentials and delegated tokens
/// erased, synced data kept.
#[utoipa::path(delete, path = "/v1/microsoft/disconnect", tag = "microsoft",
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Disconnected"),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No connected tenant", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn disconnect_microsoft(
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let connections = state.db.connections(&auth.organization_id).await?;
    let live = current(connections)
        .filter(|c| c.status != "disconnected")
        .ok_or(ApiError::NotFound {
            what: "connected tenant",
        })?;
    state
        .db
        .disconnect_connection(&auth.organization_id, &live.id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test, web};
    use serde_json::json;
    use tenantlink_store::testing::TestDb;

    use super::super::connections::test_http::call;
    use crate::testing;

    #[actix_web::test]
    async fn setup_status_disconnect_and_setup_again() {
        let emulator = testing::emulator(11);
        let tenant = emulator.tenants()[0].clone();
        let limited = &tenant.limited_app;
        for db in TestDb::all().await {
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
            let setup = |secret: &str| {
                Some(json!({
                    "tenant_id": tenant.tenant_id,
                    "client_id": limited.client_id,
                    "client_secret": secret,
                }))
            };

            let (status, body, _) = call!(&app, "GET", "/v1/microsoft/status", &key, None).await;
            assert_eq!((status, body), (200, json!({"connected": false})));
            let (status, _, _) =
                call!(&app, "DELETE", "/v1/microsoft/disconnect", &key, None).await;
            assert_eq!(status, 404);
            let (status, body, _) = call!(
                &app,
                "POST",
                "/v1/microsoft/setup",
                &key,
                Some(json!({"tenant_id": tenant.tenant_id, "client_id": limited.client_id})),
            )
            .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_json"))
            );
            let (status, body, _) =
                call!(&app, "POST", "/v1/microsoft/setup", &key, setup("nope")).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (422, Some("invalid_credentials"))
            );
            assert!(db.db.connections(&org).await.unwrap().is_empty());

            // Created, with the permissions the limited app lacks.
            let (status, created, text) = call!(
                &app,
                "POST",
                "/v1/microsoft/setup",
                &key,
                setup(&limited.client_secret)
            )
            .await;
            assert_eq!(status, 201, "{created}");
            assert!(!text.contains(&limited.client_secret));
            assert!(
                created["missing_permissions"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("AuditLog.Read.All")),
                "{created}"
            );
            // Again: the same connection's credentials are replaced.
            let (status, replaced, _) = call!(
                &app,
                "POST",
                "/v1/microsoft/setup",
                &key,
                setup(&limited.client_secret)
            )
            .await;
            assert_eq!((status, &replaced["id"]), (200, &created["id"]));
            let (status, got, _) = call!(&app, "GET", "/v1/microsoft/status", &key, None).await;
            assert_eq!(
                (status, &got["id"], &got["connected"]),
                (200, &created["id"], &json!(true))
            );
            let (_, got, _) = call!(&app, "GET", "/v1/microsoft/status", &other_key, None).await;
            assert_eq!(got, json!({"connected": false}));
            let (status, _, _) =
                call!(&app, "DELETE", "/v1/microsoft/disconnect", &other_key, None).await;
            assert_eq!(status, 404);

            // Disconnected: the status says so; a second disconnect is 404; setup reconnects.
            let (status, _, _) =
                call!(&app, "DELETE", "/v1/microsoft/disconnect", &key, None).await;
            assert_eq!(status, 204);
            let (_, got, _) = call!(&app, "GET", "/v1/microsoft/status", &key, None).await;
            assert_eq!(
                (got["connected"].as_bool(), got["status"].as_str()),
                (Some(false), Some("disconnected"))
            );
            let (status, _, _) =
                call!(&app, "DELETE", "/v1/microsoft/disconnect", &key, None).await;
            assert_eq!(status, 404);
            let (status, again, _) = call!(
                &app,
                "POST",
                "/v1/microsoft/setup",
                &key,
                setup(&limited.client_secret)
            )
            .await;
            assert_eq!(
                (status, &again["id"], &again["status"]),
                (200, &created["id"], &json!("active"))
            );
        }
    }
}
