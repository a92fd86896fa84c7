//! Intune managed devices: list and get.

use super::auth::Caller;
use super::{GraphRequest, GraphResponse, graph_error};
use crate::state::State;

pub(crate) fn list(_s: &State, _c: &Caller, _r: &GraphRequest) -> GraphResponse {
    graph_error(501, "NotImplemented", "This endpoint is not emulated yet.")
}
pub(crate) fn get(_s: &State, _c: &Caller, _r: &GraphRequest, _id: &str) -> GraphResponse {
    graph_error(501, "NotImplemented", "This endpoint is not emulated yet.")
}
