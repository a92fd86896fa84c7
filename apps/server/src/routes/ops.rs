//! Operations: liveness, readiness, Prometheus metrics, the OpenAPI document and its page.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(health, ready, metrics, openapi_json))]
pub(crate) struct Api;

/// Health or readiness.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusResponse {
    /// `ok` or `ready`.
    pub(crate) status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = StatusResponse)))]
pub(crate) async fn health() -> web::Json<StatusResponse> {
    web::Json(StatusResponse { status: "ok" })
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = StatusResponse),
        (status = 503, description = "Not ready, and why", body = ErrorBody),
    ))]
pub(crate) async fn ready(
    state: web::Data<AppState>,
) -> Result<web::Json<StatusResponse>, ApiError> {
    if *state.shutdown.borrow() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    state
        .db
        .ping()
        .await
        .map_err(|_| ApiError::Unavailable("the database does not answer".into()))?;
    let pending = state
        .db
        .pending_migrations()
        .await
        .map_err(|_| ApiError::Unavailable("cannot read the migration state".into()))?;
    if !pending.is_empty() {
        return Err(ApiError::Unavailable(format!(
            "{} migration(s) not applied: run `tenantlink migrate`",
            pending.len()
        )));
    }
    Ok(web::Json(StatusResponse { status: "ready" }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::document_json())
}

/// The API reference for people, rendered from the same document (no scripts, no CDN).
pub(crate) async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .body(crate::openapi::document_html())
}
