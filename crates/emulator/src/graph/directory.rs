//! Users and groups: list, get, manager, memberOf, members (direct and transitive).

use super::auth::Caller;
use super::{GraphRequest, GraphResponse, graph_error};
use crate::state::State;

fn pending() -> GraphResponse {
    graph_error(501, "NotImplemented", "This endpoint is not emulated yet.")
}

pub(crate) fn list_users(_s: &State, _c: &Caller, _r: &GraphRequest) -> GraphResponse {
    pending()
}
pub(crate) fn get_user(_s: &State, _c: &Caller, _r: &GraphRequest, _id: &str) -> GraphResponse {
    pending()
}
pub(crate) fn get_manager(_s: &State, _c: &Caller, _r: &GraphRequest, _id: &str) -> GraphResponse {
    pending()
}
pub(crate) fn member_of(
    _s: &State,
    _c: &Caller,
    _r: &GraphRequest,
    _id: &str,
    _transitive: bool,
) -> GraphResponse {
    pending()
}
pub(crate) fn list_groups(_s: &State, _c: &Caller, _r: &GraphRequest) -> GraphResponse {
    pending()
}
pub(crate) fn get_group(_s: &State, _c: &Caller, _r: &GraphRequest, _id: &str) -> GraphResponse {
    pending()
}
pub(crate) fn members(
    _s: &State,
    _c: &Caller,
    _r: &GraphRequest,
    _id: &str,
    _transitive: bool,
) -> GraphResponse {
    pending()
}
