//! Graph's error body: `{"error": {"code", "message", "innerError": {"date", "request-id",
//! "client-request-id"}}}`. The adapter fills the ids into `innerError` on the way out.

use serde_json::{Value, json};

use super::{Body, GraphResponse};

/// A Graph error answer.
pub(crate) fn graph_error(status: u16, code: &str, message: &str) -> GraphResponse {
    graph_error_with(status, code, message, Vec::new())
}

/// A Graph error answer with extra headers (Retry-After, ...).
pub(crate) fn graph_error_with(
    status: u16,
    code: &str,
    message: &str,
    headers: Vec<(String, String)>,
) -> GraphResponse {
    GraphResponse {
        status,
        headers,
        body: Some(Body::Json(json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": crate::json::iso(chrono::Utc::now()),
                    "request-id": Value::Null,
                    "client-request-id": Value::Null,
                },
            }
        }))),
    }
}
