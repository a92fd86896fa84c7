//! Request and response types of the HTTP API, one module per resource. These are the
//! documented shapes (OpenAPI schemas); handlers map store models into them and never
//! send a store model.

pub(crate) mod audit;
pub(crate) mod connections;
pub(crate) mod data;
pub(crate) mod organizations;
pub(crate) mod sync;

/// Timestamps in answers: RFC 3339, UTC.
pub(crate) fn utc(t: chrono::NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    t.and_utc()
}
