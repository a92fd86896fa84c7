//! JSON batching: `POST /$batch`.

use super::auth::Caller;
use super::{GraphRequest, GraphResponse, graph_error};
use crate::state::State;

pub(crate) fn run(_s: &State, _c: &Caller, _r: &GraphRequest) -> GraphResponse {
    graph_error(501, "NotImplemented", "This endpoint is not emulated yet.")
}
