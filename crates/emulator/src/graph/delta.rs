//! Delta query for users and groups.

use super::auth::Caller;
use super::{GraphRequest, GraphResponse, graph_error};
use crate::state::State;

pub(crate) fn users(_s: &State, _c: &Caller, _r: &GraphRequest) -> GraphResponse {
    graph_error(501, "NotImplemented", "This endpoint is not emulated yet.")
}
pub(crate) fn groups(_s: &State, _c: &Caller, _r: &GraphRequest) -> GraphResponse {
    graph_error(501, "NotImplemented", "This endpoint is not emulated yet.")
}
