//! The audit trail as an organization sees it (`GET /v1/audit`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::utc;

/// Which events to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only actions starting with this text, e.g. `GET /v1/connections` or `sync.` (at most
    /// 200 characters).
    #[param(max_length = 200)]
    pub(crate) action: Option<String>,
    /// Only events at or after this time (RFC 3339).
    pub(crate) from: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339).
    pub(crate) to: Option<DateTime<Utc>>,
    /// Events per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub(crate) limit: Option<i64>,
    /// `next_cursor` of the previous page, unchanged.
    pub(crate) cursor: Option<String>,
}

/// One event of the organization's audit trail.
///
/// The chain's `seq` and `prev_hash` are not shown: they would tell one organization how
/// much every other organization does. `hash` is a receipt: the operator's
/// `tenantlink audit verify` proves every stored hash is still in an intact chain.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEventResponse {
    /// When it happened.
    pub(crate) at: DateTime<Utc>,
    /// Who: `key:<key id>`, `worker:<instance>` or `system`.
    #[schema(example = "key:3f1c0a5e9b7d4c2a8e6f1b3d5c7a9e0f")]
    pub(crate) actor: String,
    /// What: the method and route of an API call, or a named action such as `sync.run`.
    #[schema(example = "GET /v1/connections/{connection_id}/users")]
    pub(crate) action: String,
    /// Which things: `name=value` pairs separated by spaces.
    #[schema(example = "connection_id=6c1d2e8f-0b4a-4f55-9d3e-2a7b8c9d0e1f")]
    pub(crate) target: String,
    /// How it ended: an HTTP status, or `complete`, `partial`, `failed`.
    #[schema(example = "200")]
    pub(crate) outcome: String,
    /// The request it came from, if any.
    pub(crate) request_id: Option<String>,
    /// Details of the action (a JSON object, never a secret).
    #[schema(value_type = Object)]
    pub(crate) detail: serde_json::Value,
    /// The event's hash in the tamper-evident chain (hex SHA-256).
    pub(crate) hash: String,
}

impl From<tenantlink_store::AuditEvent> for AuditEventResponse {
    fn from(e: tenantlink_store::AuditEvent) -> Self {
        Self {
            at: utc(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            request_id: e.request_id,
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
            hash: e.hash,
        }
    }
}

/// A page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEventList {
    /// The events.
    pub(crate) items: Vec<AuditEventResponse>,
    /// Pass as `cursor` (with the same filters) for the next page; absent on the last.
    pub(crate) next_cursor: Option<String>,
}
