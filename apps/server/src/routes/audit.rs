//! The calling organization's audit trail.

use actix_web::web;
use secrecy::ExposeSecret as _;
use utoipa::OpenApi;

use crate::auth::OrgAuth;
use crate::dto::audit::{AuditEventList, AuditQuery};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(list_audit_events))]
pub(crate) struct Api;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;
const CURSOR_PREFIX: &str = "audit1";

/// A cursor: the last seq of a page and the organization, encrypted under the server's key
/// ring, so it is opaque (seqs would tell how busy other organizations are) and a changed
/// or foreign one is refused.
fn encode_cursor(state: &AppState, organization_id: &str, seq: i64) -> Result<String, ApiError> {
    state
        .ring
        .encrypt(format!("{CURSOR_PREFIX}:{seq}:{organization_id}").as_bytes())
        .map_err(ApiError::internal)
}

fn decode_cursor(state: &AppState, organization_id: &str, cursor: &str) -> Result<i64, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_cursor",
            "cursor is not a next_cursor this API gave this organization",
        )
    };
    let plain = state.ring.decrypt(cursor).map_err(|_| invalid())?;
    let text = std::str::from_utf8(plain.plaintext.expose_secret()).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(CURSOR_PREFIX), Some(seq), Some(org)) if org == organization_id => {
            seq.parse().map_err(|_| invalid())
        }
        _ => Err(invalid()),
    }
}

/// Lists the calling organization's audit events, newest first: every API call made with
/// its keys (including refused ones) and the actions taken for it (sync runs, changes).
#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(AuditQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "A page of events, newest first", body = AuditEventList),
        (status = 400, description = "Invalid limit, time range, action or cursor", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 429, description = "Too many requests for this key or organization", body = ErrorBody),
        (status = 503, description = "The database or the audit trail is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn list_audit_events(
    auth: OrgAuth,
    state: web::Data<AppState>,
    // Taken as a `Result`: the key (401) is checked before the query (400).
    query: Result<web::Query<AuditQuery>, actix_web::Error>,
) -> Result<web::Json<AuditEventList>, ApiError> {
    let query = query
        .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?
        .into_inner();
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    if let Some(action) = &query.action
        && (action.chars().count() > 200 || action.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "invalid_action",
            "action must be at most 200 printable characters",
        ));
    }
    let range = crate::dto::data::time_range(query.from, query.to)?;
    let before = query
        .cursor
        .as_deref()
        .map(|c| decode_cursor(&state, &auth.organization_id, c))
        .transpose()?;
    let filter = tenantlink_store::AuditFilter {
        action_prefix: query.action,
        from: range.from,
        to: range.to,
    };
    let mut events = state
        .db
        .audit_events(&auth.organization_id, &filter, before, limit + 1)
        .await?;
    let more = events.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = match events.last() {
        Some(last) if more => Some(encode_cursor(&state, &auth.organization_id, last.seq)?),
        _ => None,
    };
    Ok(web::Json(AuditEventList {
        items: events.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}
