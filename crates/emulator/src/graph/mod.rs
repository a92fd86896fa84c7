//! Microsoft Graph v1.0. An actix adapter turns HTTP into a [`GraphRequest`]; [`dispatch`]
//! authenticates, throttles and routes it to a resource module and returns a
//! [`GraphResponse`]. `$batch` calls [`dispatch`] for each item, so batched and single
//! requests share one code path (throttling per item included).

mod audit;
mod auth;
mod batch;
mod delta;
mod devices;
mod directory;
mod error;
mod odata;
mod throttle;

use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

pub(crate) use auth::Caller;
pub(crate) use error::{graph_error, graph_error_with};
pub(crate) use throttle::Throttle;

use crate::state::State;

/// One Graph request, as the resource modules see it.
#[derive(Debug, Clone)]
pub(crate) struct GraphRequest {
    /// `GET`, `POST`, ...
    pub(crate) method: String,
    /// The path after `/v1.0`, percent-decoded, e.g. `/users/{id}/memberOf`.
    pub(crate) path: String,
    /// Query pairs, percent-decoded, in order (`%24top` arrives as `$top`).
    pub(crate) query: Vec<(String, String)>,
    /// Request headers, names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
    /// The JSON body, if any.
    pub(crate) body: Option<Value>,
    /// `https://127.0.0.1:port/v1.0` (or http), as the client reached us: nextLinks use it.
    pub(crate) base_url: String,
}

impl GraphRequest {
    /// The first value of a query parameter (keys compared case-insensitively, as Graph does
    /// for `$`-options).
    pub(crate) fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// A header by lower-case name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path split into non-empty segments.
    pub(crate) fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }
}

/// One Graph answer.
#[derive(Debug, Clone)]
pub(crate) struct GraphResponse {
    /// HTTP status.
    pub(crate) status: u16,
    /// Extra headers (Retry-After, throttle headers, ...).
    pub(crate) headers: Vec<(String, String)>,
    /// JSON body; `None` for 204.
    pub(crate) body: Option<Body>,
}

/// A JSON answer body.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// As a value (small answers, and every error: its request ids are filled in last).
    Json(Value),
    /// Already serialized (delta pages, written straight from the directory: building a
    /// value for each of a page's thousand `members@delta` entries cost more than the rest
    /// of the answer).
    Raw(Vec<u8>),
}

impl GraphResponse {
    /// 200 with a JSON body.
    pub(crate) fn ok(body: Value) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: Some(Body::Json(body)),
        }
    }

    /// 200 with `body` serialized as JSON at once (a 500 if it cannot be).
    pub(crate) fn ok_written(body: &impl serde::Serialize) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => Self {
                status: 200,
                headers: Vec::new(),
                body: Some(Body::Raw(bytes)),
            },
            Err(e) => graph_error(
                500,
                "InternalServerError",
                &format!("cannot write the answer: {e}"),
            ),
        }
    }

    /// Adds a header.
    pub(crate) fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// Authenticates, throttles and routes one request.
pub(crate) fn dispatch(state: &State, req: &GraphRequest) -> GraphResponse {
    let caller = match auth::authenticate(state, req) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    dispatch_as(state, &caller, req)
}

/// Throttles and routes a request of an already authenticated caller (`$batch` items).
pub(crate) fn dispatch_as(state: &State, caller: &Caller, req: &GraphRequest) -> GraphResponse {
    let ticket = match throttle::admit(state, caller, req) {
        Ok(ticket) => ticket,
        Err(response) => return response,
    };
    let response = route(state, caller, req);
    throttle::finish(state, caller, ticket, response)
}

fn route(state: &State, caller: &Caller, req: &GraphRequest) -> GraphResponse {
    let segments = req.segments();
    let method = req.method.as_str();
    match (method, segments.as_slice()) {
        ("POST", ["$batch"]) => batch::run(state, caller, req),
        ("GET", ["users"]) => directory::list_users(state, caller, req),
        ("GET", ["users", "delta" | "delta()"]) => delta::users(state, caller, req),
        ("GET", ["users", id]) => directory::get_user(state, caller, req, id),
        ("GET", ["users", id, "manager"]) => directory::get_manager(state, caller, req, id),
        ("GET", ["users", id, "memberOf"]) => directory::member_of(state, caller, req, id, false),
        ("GET", ["users", id, "transitiveMemberOf"]) => {
            directory::member_of(state, caller, req, id, true)
        }
        ("GET", ["groups"]) => directory::list_groups(state, caller, req),
        ("GET", ["groups", "delta" | "delta()"]) => delta::groups(state, caller, req),
        ("GET", ["groups", id]) => directory::get_group(state, caller, req, id),
        ("GET", ["groups", id, "members"]) => directory::members(state, caller, req, id, false),
        ("GET", ["groups", id, "transitiveMembers"]) => {
            directory::members(state, caller, req, id, true)
        }
        ("GET", ["deviceManagement", "managedDevices"]) => devices::list(state, caller, req),
        ("GET", ["deviceManagement", "managedDevices", id]) => devices::get(state, caller, req, id),
        ("GET", ["auditLogs", "signIns"]) => audit::sign_ins(state, caller, req, None),
        ("GET", ["auditLogs", "signIns", id]) => audit::sign_ins(state, caller, req, Some(id)),
        ("GET", ["auditLogs", "directoryAudits"]) => {
            audit::directory_audits(state, caller, req, None)
        }
        ("GET", ["auditLogs", "directoryAudits", id]) => {
            audit::directory_audits(state, caller, req, Some(id))
        }
        ("GET", ["security", "alerts_v2"]) => audit::alerts(state, caller, req, None),
        ("GET", ["security", "alerts_v2", id]) => audit::alerts(state, caller, req, Some(id)),
        (_, []) => graph_error(400, "BadRequest", "Invalid request."),
        _ => graph_error(
            400,
            "BadRequest",
            &format!(
                "Resource not found for the segment '{}'.",
                segments.last().copied().unwrap_or_default()
            ),
        ),
    }
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.default_service(web::to(handle));
}

/// The HTTP adapter: builds the [`GraphRequest`], applies faults, dispatches, and writes the
/// answer with `request-id`, `client-request-id` and Graph's content type.
async fn handle(http: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let request_id = crate::rng::random_guid();
    let client_request_id = http
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| request_id.clone(), str::to_owned);
    let req = match to_graph_request(&http, &body) {
        Ok(req) => req,
        Err(response) => return write(response, &request_id, &client_request_id),
    };
    let faults = state.faults();
    if faults.latency > Duration::ZERO {
        actix_web::rt::time::sleep(faults.latency).await;
    }
    if let Some(injected) = throttle::injected_fault(&faults) {
        return match injected {
            throttle::Injected::Respond(response) => {
                write(response, &request_id, &client_request_id)
            }
            throttle::Injected::Drop => throttle::dropped_connection(),
        };
    }
    let state = state.into_inner();
    let response = match web::block(move || dispatch(&state, &req)).await {
        Ok(response) => response,
        Err(_) => graph_error(
            500,
            "generalException",
            "The request could not be completed.",
        ),
    };
    write(response, &request_id, &client_request_id)
}

fn to_graph_request(http: &HttpRequest, body: &[u8]) -> Result<GraphRequest, GraphResponse> {
    let info = http.connection_info();
    let base_url = format!("{}://{}/v1.0", info.scheme(), info.host());
    let path = http
        .path()
        .strip_prefix("/v1.0")
        .unwrap_or(http.path())
        .to_owned();
    let path = percent_encoding::percent_decode_str(&path)
        .decode_utf8_lossy()
        .into_owned();
    let query = form_urlencoded::parse(http.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let headers = http
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = if body.is_empty() {
        None
    } else {
        Some(serde_json::from_slice(body).map_err(|e| {
            graph_error(
                400,
                "BadRequest",
                &format!("Unable to read JSON request payload: {e}"),
            )
        })?)
    };
    Ok(GraphRequest {
        method: http.method().as_str().to_owned(),
        path,
        query,
        headers,
        body,
        base_url,
    })
}

fn write(mut response: GraphResponse, request_id: &str, client_request_id: &str) -> HttpResponse {
    if let Some(Body::Json(body)) = &mut response.body
        && let Some(inner) = body.get_mut("error").and_then(|e| e.get_mut("innerError"))
    {
        inner["request-id"] = Value::String(request_id.to_owned());
        inner["client-request-id"] = Value::String(client_request_id.to_owned());
    }
    let status = actix_web::http::StatusCode::from_u16(response.status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    out.insert_header(("request-id", request_id))
        .insert_header(("client-request-id", client_request_id))
        .insert_header((
            "x-ms-ags-diagnostic",
            r#"{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"1","ScaleUnit":"000","RoleInstance":"EMU","ADSiteName":"EMU"}}"#,
        ));
    for (name, value) in &response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            out.append_header((name, value));
        }
    }
    match response.body {
        Some(body) => out
            .content_type(
                "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
            )
            .body(match body {
                // Straight into bytes: `to_string` would go through `fmt::Write` a piece at a
                // time.
                Body::Json(value) => serde_json::to_vec(&value).unwrap_or_default(),
                Body::Raw(bytes) => bytes,
            }),
        None => out.finish(),
    }
}
