//! Audit logs and security alerts: sign-ins, directory audits, alerts_v2.

use super::auth::Caller;
use super::{GraphRequest, GraphResponse, graph_error};
use crate::state::State;

pub(crate) fn sign_ins(
    _s: &State,
    _c: &Caller,
    _r: &GraphRequest,
    _id: Option<&str>,
) -> GraphResponse {
    graph_error(501, "NotImplemented", "This endpoint is not emulated yet.")
}
pub(crate) fn directory_audits(
    _s: &State,
    _c: &Caller,
    _r: &GraphRequest,
    _id: Option<&str>,
) -> GraphResponse {
    graph_error(501, "NotImplemented", "This endpoint is not emulated yet.")
}
pub(crate) fn alerts(
    _s: &State,
    _c: &Caller,
    _r: &GraphRequest,
    _id: Option<&str>,
) -> GraphResponse {
    graph_error(501, "NotImplemented", "This endpoint is not emulated yet.")
}
