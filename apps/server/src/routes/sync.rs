//! Sync runs: asked for over the API (queued for the background workers), followed, listed.

use std::str::FromStr as _;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use tenantlink_store::NewJob;
use tenantlink_sync::SyncType;
use utoipa::OpenApi;

use crate::auth::OrgAuth;
use crate::dto::sync::{
    MicrosoftSyncRequest, SyncRequest, SyncRunList, SyncRunResponse, SyncRunsQuery,
};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(start_sync, get_sync_run, list_sync_runs, start_microsoft_sync))]
pub(crate) struct Api;

fn sync_type(name: Option<&str>) -> Result<SyncType, ApiError> {
    match name {
        None => Ok(SyncType::Incremental),
        Some(name) => SyncType::from_str(name).map_err(|_| {
            ApiError::bad_request(
                "invalid_sync_type",
                "type must be one of full, incremental, users, groups, devices, audit",
            )
        }),
    }
}

/// The seed platform's names.
fn microsoft_sync_type(name: Option<&str>) -> Result<SyncType, ApiError> {
    Ok(match name.map(str::trim) {
        None | Some("incremental") => SyncType::Incremental,
        Some("full") => SyncType::Full,
        Some("users_only") => SyncType::Users,
        Some("groups_only") => SyncType::Groups,
        Some("devices_only") => SyncType::Devices,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_sync_type",
                "type must be one of full, incremental, users_only, groups_only, devices_only",
            ));
        }
    })
}

async fn enqueue(
    auth: &OrgAuth,
    state: &AppState,
    connection_id: &str,
    sync_type: SyncType,
) -> Result<HttpResponse, ApiError> {
    let (job, created) = state
        .db
        .enqueue_job(
            &NewJob {
                organization_id: &auth.organization_id,
                connection_id,
                sync_type: sync_type.as_str(),
                trigger: "api",
                requested_by: Some(&auth.key_id),
            },
            crate::worker::now(),
        )
        .await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/v1/sync-runs/{}", job.id)))
        .json(SyncRunResponse::of(job, Some(!created))))
}

/// Asks for a sync of a connection. The background workers run it; follow it at the
/// `Location` given. While a run of that connection and type is queued or running, this
/// answers that run (`existing: true`).
#[utoipa::path(post, path = "/v1/connections/{connection_id}/sync", tag = "sync",
    params(("connection_id" = String, Path, description = "The connection")),
    request_body = SyncRequest,
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Queued (or the run already queued or running)", body = SyncRunResponse,
            headers(("Location" = String, description = "The run: /v1/sync-runs/{id}"))),
        (status = 400, description = "Unknown sync type or malformed body", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection in this organization", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn start_sync(
    auth: OrgAuth,
    state: web::Data<AppState>,
    connection_id: web::Path<String>,
    body: web::Json<SyncRequest>,
) -> Result<HttpResponse, ApiError> {
    let sync_type = sync_type(body.sync_type.as_deref())?;
    enqueue(&auth, &state, &connection_id, sync_type).await
}

/// A sync run: its status, progress per resource while running, and its result once
/// finished.
#[utoipa::path(get, path = "/v1/sync-runs/{id}", tag = "sync",
    params(("id" = String, Path, description = "The run")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The run", body = SyncRunResponse),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such run in this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn get_sync_run(
    auth: OrgAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<SyncRunResponse>, ApiError> {
    let job = state.db.job(&auth.organization_id, &id).await?;
    Ok(web::Json(SyncRunResponse::of(job, None)))
}

/// A connection's sync runs, newest first.
#[utoipa::path(get, path = "/v1/connections/{connection_id}/sync-runs", tag = "sync",
    params(("connection_id" = String, Path, description = "The connection"), SyncRunsQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Runs, newest first", body = SyncRunList),
        (status = 400, description = "Invalid limit", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection in this organization", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn list_sync_runs(
    auth: OrgAuth,
    state: web::Data<AppState>,
    connection_id: web::Path<String>,
    query: web::Query<SyncRunsQuery>,
) -> Result<web::Json<SyncRunList>, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be between 1 and 100",
        ));
    }
    let jobs = state
        .db
        .jobs(&auth.organization_id, &connection_id, limit)
        .await?;
    Ok(web::Json(SyncRunList {
        items: jobs
            .into_iter()
            .map(|j| SyncRunResponse::of(j, None))
            .collect(),
    }))
}

/// Asks for a sync of the organization's connected tenant, when it has exactly one (with
/// several, use `POST /v1/connections/{connection_id}/sync`).
#[utoipa::path(post, path = "/v1/microsoft/sync", tag = "microsoft",
    request_body = MicrosoftSyncRequest,
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Queued (or the run already queued or running)", body = SyncRunResponse,
            headers(("Location" = String, description = "The run: /v1/sync-runs/{id}"))),
        (status = 400, description = "Unknown sync type or malformed body", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No tenant connected yet (POST /v1/microsoft/setup)", body = ErrorBody),
        (status = 409, description = "Several tenants connected: sync one with POST /v1/connections/{connection_id}/sync", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn start_microsoft_sync(
    auth: OrgAuth,
    state: web::Data<AppState>,
    body: web::Json<MicrosoftSyncRequest>,
) -> Result<HttpResponse, ApiError> {
    let sync_type = microsoft_sync_type(body.sync_type.as_deref())?;
    // A disconnected connection cannot sync: only the live ones count (as for
    // /v1/microsoft/status, which shows the live one).
    let mut connections = state.db.connections(&auth.organization_id).await?;
    connections.retain(|c| c.status != "disconnected");
    let connection = match connections.as_slice() {
        [] => {
            return Err(ApiError::NotFound {
                what: "connected tenant (connect one with POST /v1/microsoft/setup)",
            });
        }
        [one] => one,
        several => {
            return Err(ApiError::Conflict {
                code: "several_connections",
                message: format!(
                    "this organization has {} connected tenants; sync one with \
                     POST /v1/connections/{{connection_id}}/sync (GET /v1/connections lists them)",
                    several.len()
                ),
            });
        }
    };
    enqueue(&auth, &state, &connection.id, sync_type).await
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test, web};
    use tenantlink_identity::SecretString;
    use tenantlink_store::testing::TestDb;
    use tenantlink_sync::credentials::{ConnectRequest, connect_tenant};

    use crate::testing;
    use crate::worker::{WorkerOptions, run_next};

    #[actix_web::test]
    async fn a_sync_asked_for_over_the_api_is_run_by_a_worker_and_reported() {
        let emulator = testing::emulator(7);
        let tenant = emulator.tenants()[0].clone();
        for tdb in TestDb::all().await {
            let (state, _stop) = testing::state(
                tdb.db.clone(),
                testing::emulator_cloud(&emulator),
                testing::settings(),
            );
            let (org_id, key) = testing::org_with_key(&tdb.db, "Contoso").await;
            let (_, other_key) = testing::org_with_key(&tdb.db, "Fabrikam").await;
            let (connection, _) = connect_tenant(
                &tdb.db,
                &state.ring,
                &state.identity,
                ConnectRequest {
                    organization_id: org_id.clone(),
                    tenant_id: tenant.tenant_id.clone(),
                    client_id: tenant.connector_app.client_id.clone(),
                    secret: SecretString::from(tenant.connector_app.client_secret.clone()),
                    secret_expires_at: None,
                },
            )
            .await
            .expect("connect the emulator's tenant");
            let app = test::init_service(
                App::new().configure(crate::app::configure(web::Data::new(state.clone()))),
            )
            .await;
            let bearer = |k: &str| ("authorization", format!("Bearer {k}"));
            let post = |k: &str, body: serde_json::Value| {
                test::TestRequest::post()
                    .uri(&format!("/v1/connections/{}/sync", connection.id))
                    .insert_header(bearer(k))
                    .set_json(body)
                    .to_request()
            };

            let res =
                test::call_service(&app, post(&key, serde_json::json!({"type": "full"}))).await;
            assert_eq!(res.status(), 202);
            let location = res
                .headers()
                .get("location")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let first: serde_json::Value = test::read_body_json(res).await;
            assert_eq!(
                location,
                format!("/v1/sync-runs/{}", first["id"].as_str().unwrap())
            );
            assert_eq!(first["status"], "queued");
            assert_eq!(first["type"], "full");
            assert_eq!(first["trigger"], "api");
            assert_eq!(first["existing"], false);
            // Asked again while queued: the same run.
            let again: serde_json::Value = test::call_and_read_body_json(
                &app,
                post(&key, serde_json::json!({"type": "full"})),
            )
            .await;
            assert_eq!(again["id"], first["id"]);
            assert_eq!(again["existing"], true);
            // Bad type, another organization's connection.
            let res =
                test::call_service(&app, post(&key, serde_json::json!({"type": "all"}))).await;
            assert_eq!(res.status(), 400);
            let res =
                test::call_service(&app, post(&other_key, serde_json::json!({"type": "full"})))
                    .await;
            assert_eq!(res.status(), 404);
            let req = test::TestRequest::get()
                .uri(&location)
                .insert_header(bearer(&other_key))
                .to_request();
            assert_eq!(test::call_service(&app, req).await.status(), 404);

            // A worker runs it.
            assert!(
                run_next(&state, "test-w0", WorkerOptions::default())
                    .await
                    .expect("worker")
            );
            let req = test::TestRequest::get()
                .uri(&location)
                .insert_header(bearer(&key))
                .to_request();
            let run: serde_json::Value = test::call_and_read_body_json(&app, req).await;
            assert_eq!(run["status"], "complete", "{run:#}");
            assert_eq!(run["result"]["completeness"], "complete");
            assert!(run["result"]["rows"].as_u64().unwrap() > 0);
            assert!(run["result"]["pages"].as_u64().unwrap() > 0);
            assert!(run["result"]["requests"].as_u64().unwrap() > 0);
            assert_eq!(run["result"]["resources"].as_array().unwrap().len(), 6);
            assert!(run["finished_at"].is_string());
            assert!(run["progress"].as_array().is_some_and(|p| !p.is_empty()));

            // Once finished, a new request makes a new run; the list is newest first.
            let next: serde_json::Value =
                test::call_and_read_body_json(&app, post(&key, serde_json::json!({}))).await;
            assert_ne!(next["id"], first["id"]);
            assert_eq!(next["type"], "incremental");
            let req = test::TestRequest::get()
                .uri(&format!(
                    "/v1/connections/{}/sync-runs?limit=5",
                    connection.id
                ))
                .insert_header(bearer(&key))
                .to_request();
            let list: serde_json::Value = test::call_and_read_body_json(&app, req).await;
            let ids: Vec<&str> = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap())
                .collect();
            assert_eq!(
                ids,
                [next["id"].as_str().unwrap(), first["id"].as_str().unwrap()]
            );
            let req = test::TestRequest::get()
                .uri(&format!(
                    "/v1/connections/{}/sync-runs?limit=0",
                    connection.id
                ))
                .insert_header(bearer(&key))
                .to_request();
            assert_eq!(test::call_service(&app, req).await.status(), 400);

            // The seed platform's route: the one connection, its names.
            let req = test::TestRequest::post()
                .uri("/v1/microsoft/sync")
                .insert_header(bearer(&key))
                .set_json(serde_json::json!({"type": "users_only"}))
                .to_request();
            let res = test::call_service(&app, req).await;
            assert_eq!(res.status(), 202);
            let run: serde_json::Value = test::read_body_json(res).await;
            assert_eq!(run["type"], "users");
            assert_eq!(run["connection_id"], connection.id.as_str());
            let req = test::TestRequest::post()
                .uri("/v1/microsoft/sync")
                .insert_header(bearer(&other_key))
                .set_json(serde_json::json!({"type": "full"}))
                .to_request();
            let res = test::call_service(&app, req).await;
            assert_eq!(res.status(), 404);
            let body: serde_json::Value = test::read_body_json(res).await;
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("/v1/microsoft/setup")
            );
            // A disconnected tenant is not one to sync.
            let req = test::TestRequest::delete()
                .uri("/v1/microsoft/disconnect")
                .insert_header(bearer(&key))
                .to_request();
            assert_eq!(test::call_service(&app, req).await.status(), 204);
            let req = test::TestRequest::post()
                .uri("/v1/microsoft/sync")
                .insert_header(bearer(&key))
                .set_json(serde_json::json!({"type": "full"}))
                .to_request();
            assert_eq!(test::call_service(&app, req).await.status(), 404);
        }
    }
}
