//! JSON batching: `POST /$batch`, as documented in "Combine multiple HTTP requests using JSON
//! batching". Up to 20 requests with unique (case-insensitive) ids; each runs through
//! [`super::dispatch_as`] with the batch's caller, so throttling applies per item and a
//! throttled item carries its own `Retry-After`. `dependsOn` orders items; an item whose
//! dependency failed gets `424 Failed Dependency` without running. A malformed batch is
//! answered `400` as a whole; otherwise `200` with one response per request.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::{Body, GraphRequest, GraphResponse, graph_error};
use crate::state::State;

/// The most requests one batch may hold.
const MAX_REQUESTS: usize = 20;

const JSON_CONTENT_TYPE: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// One parsed batch item.
struct Item {
    id: String,
    depends_on: Vec<String>,
    request: Result<GraphRequest, GraphResponse>,
}

fn bad(message: &str) -> GraphResponse {
    graph_error(400, "BadRequest", message)
}

/// `POST /$batch`.
pub(crate) fn run(state: &State, caller: &Caller, req: &GraphRequest) -> GraphResponse {
    let items = match parse(req) {
        Ok(items) => items,
        Err(response) => return response,
    };
    let order = match execution_order(&items) {
        Ok(order) => order,
        Err(response) => return response,
    };
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses: Vec<Option<Value>> = vec![None; items.len()];
    for pos in order {
        let item = &items[pos];
        let failed = item.depends_on.iter().find(|dep| {
            statuses
                .get(&dep.to_ascii_lowercase())
                .is_none_or(|&status| status >= 400)
        });
        let response = match (failed, &item.request) {
            (Some(dep), _) => graph_error(
                424,
                "FailedDependency",
                &format!("The request depends on request '{dep}', which failed."),
            ),
            (None, Err(response)) => response.clone(),
            (None, Ok(request)) => super::dispatch_as(state, caller, request),
        };
        statuses.insert(item.id.to_ascii_lowercase(), response.status);
        let client_request_id = item
            .request
            .as_ref()
            .ok()
            .and_then(|r| r.header("client-request-id"))
            .map(str::to_owned);
        responses[pos] = Some(to_json(&item.id, response, client_request_id));
    }
    GraphResponse::ok(json!({ "responses": responses.into_iter().flatten().collect::<Vec<_>>() }))
}

/// Reads the batch body into items; a malformed batch is one `400`.
fn parse(req: &GraphRequest) -> Result<Vec<Item>, GraphResponse> {
    let Some(requests) = req
        .body
        .as_ref()
        .and_then(|b| b.get("requests"))
        .and_then(Value::as_array)
    else {
        return Err(bad(
            "Invalid batch payload format: the body must be a JSON object with a 'requests' array.",
        ));
    };
    if requests.is_empty() {
        return Err(bad("Invalid batch payload format: 'requests' is empty."));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(bad(&format!(
            "The batch holds {} requests; the maximum number of requests in a batch is {MAX_REQUESTS}.",
            requests.len()
        )));
    }
    let mut items = Vec::with_capacity(requests.len());
    let mut seen: Vec<String> = Vec::new();
    for raw in requests {
        let Some(obj) = raw.as_object() else {
            return Err(bad(
                "Invalid batch payload format: each request must be an object.",
            ));
        };
        let field = |name: &str| -> Result<String, GraphResponse> {
            match obj.get(name) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                Some(Value::Number(n)) if name == "id" => Ok(n.to_string()),
                _ => Err(bad(&format!(
                    "Invalid batch payload format: a request is missing the required property '{name}'."
                ))),
            }
        };
        let id = field("id")?;
        let method = field("method")?.to_ascii_uppercase();
        let url = field("url")?;
        let lower = id.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(bad(&format!(
                "Batch request ids must be unique; the id '{id}' is used more than once."
            )));
        }
        seen.push(lower);
        let depends_on = match obj.get("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(deps)) => deps
                .iter()
                .map(|d| {
                    d.as_str().map(str::to_owned).ok_or_else(|| {
                        bad("Invalid batch payload format: 'dependsOn' must be an array of ids.")
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(bad(
                    "Invalid batch payload format: 'dependsOn' must be an array of ids.",
                ));
            }
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        match obj.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (name, value) in map {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    headers.push((name.to_ascii_lowercase(), value));
                }
            }
            Some(_) => {
                return Err(bad(
                    "Invalid batch payload format: 'headers' must be an object.",
                ));
            }
        }
        let body = obj.get("body").filter(|b| !b.is_null()).cloned();
        if body.is_some() && !headers.iter().any(|(k, _)| k == "content-type") {
            return Err(bad(&format!(
                "Request '{id}' has a body but no Content-Type header."
            )));
        }
        // The batch's own credentials stand for every item.
        for name in ["authorization"] {
            if let Some(value) = req.header(name)
                && !headers.iter().any(|(k, _)| k == name)
            {
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
        let request = item_request(req, &method, &url, headers, body);
        items.push(Item {
            id,
            depends_on,
            request,
        });
    }
    for item in &items {
        for dep in &item.depends_on {
            let dep = dep.to_ascii_lowercase();
            if dep == item.id.to_ascii_lowercase() || !seen.contains(&dep) {
                return Err(bad(&format!(
                    "Request '{}' depends on '{dep}', which is not another request of this batch.",
                    item.id
                )));
            }
        }
    }
    Ok(items)
}

/// Builds an item's request from its relative URL (with or without a leading slash).
fn item_request(
    batch: &GraphRequest,
    method: &str,
    url: &str,
    headers: Vec<(String, String)>,
    body: Option<Value>,
) -> Result<GraphRequest, GraphResponse> {
    // Relative to the service root: `/users`, `users?$select=id`. SDKs built on Kiota may pass
    // the request's absolute URL or a path that keeps the version segment; both name the same
    // resource, so they are read the same way.
    let relative = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => url,
    };
    let (path, query) = relative.split_once('?').unwrap_or((relative, ""));
    let path = path.split('#').next().unwrap_or_default();
    let path = format!("/{}", path.trim_start_matches('/'));
    let path = match path.strip_prefix("/v1.0") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
        _ => path,
    };
    let path = percent_encoding::percent_decode_str(&path)
        .decode_utf8_lossy()
        .into_owned();
    if path.split('/').any(|s| s == "$batch") {
        return Err(bad("A batch request cannot contain another batch."));
    }
    let query = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Ok(GraphRequest {
        method: method.to_owned(),
        path,
        query,
        headers,
        body,
        base_url: batch.base_url.clone(),
    })
}

/// Positions in the order to run: every request after its dependencies, otherwise in the
/// order given. A cycle makes the batch malformed.
fn execution_order(items: &[Item]) -> Result<Vec<usize>, GraphResponse> {
    let mut done: Vec<bool> = vec![false; items.len()];
    let mut order = Vec::with_capacity(items.len());
    let index: HashMap<String, usize> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (item.id.to_ascii_lowercase(), i))
        .collect();
    while order.len() < items.len() {
        let before = order.len();
        for (pos, item) in items.iter().enumerate() {
            if done[pos] {
                continue;
            }
            let ready = item.depends_on.iter().all(|dep| {
                index
                    .get(&dep.to_ascii_lowercase())
                    .is_some_and(|&d| done[d])
            });
            if ready {
                done[pos] = true;
                order.push(pos);
            }
        }
        if order.len() == before {
            return Err(bad("The dependsOn references of the batch form a cycle."));
        }
    }
    Ok(order)
}

/// One entry of `responses`: id, status, headers and body. Error bodies get their own
/// request ids, as the adapter gives whole answers.
fn to_json(id: &str, response: GraphResponse, client_request_id: Option<String>) -> Value {
    let mut headers = Map::new();
    let mut body = response.body.map(|b| match b {
        Body::Json(value) => value,
        // Another answer inside this one: back to a value.
        Body::Raw(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    });
    if let Some(inner) = body
        .as_mut()
        .and_then(|b| b.get_mut("error"))
        .and_then(|e| e.get_mut("innerError"))
    {
        let request_id = crate::rng::random_guid();
        inner["client-request-id"] =
            Value::String(client_request_id.unwrap_or_else(|| request_id.clone()));
        inner["request-id"] = Value::String(request_id);
    }
    if body.is_some() {
        headers.insert(
            "Content-Type".into(),
            Value::String(JSON_CONTENT_TYPE.into()),
        );
    }
    for (name, value) in response.headers {
        headers.insert(name, Value::String(value));
    }
    let mut out = json!({ "id": id, "status": response.status, "headers": headers });
    if let Some(body) = body {
        out["body"] = body;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(body: Value) -> GraphRequest {
        GraphRequest {
            method: "POST".into(),
            path: "/$batch".into(),
            query: Vec::new(),
            headers: vec![("authorization".into(), "Bearer x".into())],
            body: Some(body),
            base_url: "https://127.0.0.1/v1.0".into(),
        }
    }

    #[test]
    fn relative_urls_parse_with_or_without_slash() {
        let Ok(items) = parse(&batch(json!({"requests": [
            {"id": "1", "method": "get", "url": "users/delta?$select=id,displayName"},
            {"id": "2", "method": "GET", "url": "/groups/delta", "dependsOn": ["1"]},
        ]}))) else {
            panic!("a valid batch");
        };
        let first = items[0].request.as_ref().expect("parsed");
        assert_eq!(first.path, "/users/delta");
        assert_eq!(first.method, "GET");
        assert_eq!(first.query("$select"), Some("id,displayName"));
        assert_eq!(first.header("authorization"), Some("Bearer x"));
        assert_eq!(execution_order(&items).ok(), Some(vec![0, 1]));

        // What Kiota-based SDKs may send: absolute URLs, or the version segment kept.
        for url in [
            "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=latest",
            "/v1.0/users/delta?$deltatoken=latest",
        ] {
            let request = item_request(&batch(json!({})), "GET", url, Vec::new(), None)
                .expect("a readable url");
            assert_eq!(request.path, "/users/delta");
            assert_eq!(request.query("$deltatoken"), Some("latest"));
        }
    }

    #[test]
    fn cycles_and_unknown_dependencies_are_malformed() {
        let Ok(cycle) = parse(&batch(json!({"requests": [
            {"id": "a", "method": "GET", "url": "/users/delta", "dependsOn": ["b"]},
            {"id": "b", "method": "GET", "url": "/users/delta", "dependsOn": ["a"]},
        ]}))) else {
            panic!("parses");
        };
        assert_eq!(execution_order(&cycle).err().map(|r| r.status), Some(400));
        let unknown = parse(&batch(json!({"requests": [
            {"id": "a", "method": "GET", "url": "/users/delta", "dependsOn": ["zz"]},
        ]})));
        assert_eq!(unknown.err().map(|r| r.status), Some(400));
    }
}
