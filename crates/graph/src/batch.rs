//! JSON batching (`POST /$batch`): chunks of at most 20 requests (a `dependsOn` chain kept in
//! one chunk), per-item results, per-item retry of 429 (and of 500, 502, 503 and 504 for
//! `GET` items) honouring each item's own `Retry-After` while items that already succeeded
//! are not re-sent, and `dependsOn` failures (424) reported per item.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{Counters, GraphClient};
use crate::error::Error;
use crate::http::{Call, backoff, map_error, over_budget, parse_retry_after};

/// The most requests Graph takes in one batch.
pub const MAX_BATCH_REQUESTS: usize = 20;

/// One request of a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRequest {
    /// Unique (case-insensitive) within the batch.
    pub id: String,
    /// `GET`, `POST`, `PATCH`, `DELETE`...
    pub method: String,
    /// Relative to the version, e.g. `/users/{id}?$select=displayName`.
    pub url: String,
    /// Headers (`Content-Type: application/json` is added when there is a body).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// JSON body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Ids of requests that must succeed first.
    #[serde(rename = "dependsOn", skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

impl BatchRequest {
    /// A `GET` of `url` (relative to the version).
    pub fn get(id: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            method: "GET".into(),
            url: url.into(),
            headers: BTreeMap::new(),
            body: None,
            depends_on: Vec::new(),
        }
    }

    /// Runs only after `id` succeeded.
    pub fn depends_on(mut self, id: impl Into<String>) -> Self {
        self.depends_on.push(id.into());
        self
    }
}

/// The result of one batch request.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResponse {
    /// The request's id.
    pub id: String,
    /// Its HTTP status (424 when a dependency failed; 429 when still throttled after the
    /// retry policy).
    pub status: u16,
    /// Its headers.
    pub headers: BTreeMap<String, String>,
    /// Its body.
    pub body: Option<Value>,
    /// How many times it was sent.
    pub attempts: u32,
    /// The permission its endpoint needs (named in [`Error::Forbidden`]).
    permission: &'static str,
}

impl BatchResponse {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error in Graph's vocabulary, if it failed (424: [`Error::BadRequest`] with code
    /// `FailedDependency`).
    pub fn error(&self) -> Option<Error> {
        if self.is_success() {
            return None;
        }
        let (code, message) = self
            .body
            .as_ref()
            .and_then(|b| b.get("error"))
            .map(|e| {
                let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                (s("code"), s("message"))
            })
            .unwrap_or_default();
        let code = if self.status == 424 && code.is_empty() {
            "FailedDependency".to_owned()
        } else {
            code
        };
        Some(map_error(
            self.status,
            code,
            message,
            self.retry_after(),
            self.permission,
        ))
    }

    /// The body (`None` when there is none), or the item's error: a 429 left when the retry
    /// budget ran out becomes [`Error::Throttled`], a 424 [`Error::BadRequest`].
    pub fn into_result(self) -> Result<Option<Value>, Error> {
        match self.error() {
            Some(e) => Err(e),
            None => Ok(self.body),
        }
    }

    /// The body as `T`, or the item's error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        serde_json::from_value(self.body.clone().unwrap_or(Value::Null))
            .map_err(|e| Error::Decode(e.to_string()))
    }

    fn retry_after(&self) -> Option<Duration> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| parse_retry_after(v))
    }
}

#[derive(Deserialize)]
struct WireBatch {
    responses: Vec<WireResponse>,
}

#[derive(Deserialize)]
struct WireResponse {
    id: String,
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
}

fn permission_for(url: &str) -> &'static str {
    let path = url.trim_start_matches('/').to_ascii_lowercase();
    if path.starts_with("auditlogs") {
        "AuditLog.Read.All"
    } else if path.starts_with("devicemanagement") {
        "DeviceManagementManagedDevices.Read.All"
    } else if path.starts_with("security") {
        "SecurityAlert.Read.All"
    } else if path.starts_with("groups")
        || path.contains("/memberof")
        || path.contains("/transitivememberof")
    {
        "GroupMember.Read.All"
    } else {
        "User.Read.All"
    }
}

/// Whether a batch item answered `status` may be re-sent. 429 for any method: Graph did
/// not process a throttled item. 500, 502, 503 and 504 only for `GET`: a write may have
/// been applied before the failure, and re-sending it could do it twice.
fn item_retryable(method: &str, status: u16) -> bool {
    match status {
        429 => true,
        500 | 502 | 503 | 504 => method.eq_ignore_ascii_case("GET"),
        _ => false,
    }
}

/// Splits requests into chunks of at most 20, each `dependsOn`-connected set in one chunk.
fn chunks(requests: Vec<BatchRequest>) -> Result<Vec<Vec<BatchRequest>>, Error> {
    let key = |s: &str| s.to_ascii_lowercase();
    let mut position = HashMap::new();
    for (i, r) in requests.iter().enumerate() {
        if position.insert(key(&r.id), i).is_some() {
            return Err(Error::Config(format!(
                "batch request id `{}` is repeated",
                r.id
            )));
        }
    }
    // Union-find over dependsOn edges.
    let mut parent: Vec<usize> = (0..requests.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, r) in requests.iter().enumerate() {
        for d in &r.depends_on {
            let j = *position.get(&key(d)).ok_or_else(|| {
                Error::Config(format!("batch request `{}` depends on unknown `{d}`", r.id))
            })?;
            let (a, b) = (find(&mut parent, i), find(&mut parent, j));
            parent[a] = b;
        }
    }
    let mut groups: Vec<(usize, Vec<BatchRequest>)> = Vec::new();
    let mut group_of_root: HashMap<usize, usize> = HashMap::new();
    for (i, r) in requests.into_iter().enumerate() {
        let root = find(&mut parent, i);
        let g = *group_of_root.entry(root).or_insert_with(|| {
            groups.push((root, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(r);
    }
    let mut out: Vec<Vec<BatchRequest>> = Vec::new();
    let mut current: Vec<BatchRequest> = Vec::new();
    for (_, group) in groups {
        if group.len() > MAX_BATCH_REQUESTS {
            return Err(Error::Config(format!(
                "a dependsOn chain holds {} requests; a batch takes {MAX_BATCH_REQUESTS}",
                group.len()
            )));
        }
        if current.len() + group.len() > MAX_BATCH_REQUESTS {
            out.push(std::mem::take(&mut current));
        }
        current.extend(group);
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

impl GraphClient {
    /// Runs `requests` through `POST /$batch`, 20 at a time, and answers one response per
    /// request in the same order. Items answered 429 (and `GET` items answered 500, 502, 503
    /// or 504; a write is never re-sent after those, it may have been applied) are re-sent alone
    /// (with the items that failed only because they depend on them) after the longest
    /// `Retry-After` among them, until they succeed or the retry policy is spent; items that
    /// succeeded are never re-sent. The whole call fails only when a batch request itself
    /// fails.
    pub async fn batch(&self, requests: Vec<BatchRequest>) -> Result<Vec<BatchResponse>, Error> {
        let order: Vec<String> = requests.iter().map(|r| r.id.clone()).collect();
        let mut results: HashMap<String, BatchResponse> = HashMap::new();
        for chunk in chunks(requests)? {
            for r in self.batch_chunk(chunk).await? {
                results.insert(r.id.to_ascii_lowercase(), r);
            }
        }
        order
            .iter()
            .map(|id| {
                results
                    .remove(&id.to_ascii_lowercase())
                    .ok_or_else(|| Error::Decode(format!("no batch response for `{id}`")))
            })
            .collect()
    }

    async fn batch_chunk(&self, chunk: Vec<BatchRequest>) -> Result<Vec<BatchResponse>, Error> {
        let policy = &self.inner.options.retry;
        let key = |s: &str| s.to_ascii_lowercase();
        let started = Instant::now();
        let mut attempts: HashMap<String, u32> = HashMap::new();
        let mut done: HashMap<String, BatchResponse> = HashMap::new();
        let mut pending = chunk;
        let mut round: u32 = 0;
        loop {
            let pending_ids: HashSet<String> = pending.iter().map(|r| key(&r.id)).collect();
            let wire: Vec<BatchRequest> = pending
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.depends_on.retain(|d| pending_ids.contains(&key(d)));
                    if r.body.is_some()
                        && !r
                            .headers
                            .keys()
                            .any(|k| k.eq_ignore_ascii_case("content-type"))
                    {
                        r.headers
                            .insert("Content-Type".into(), "application/json".into());
                    }
                    r
                })
                .collect();
            for r in &pending {
                *attempts.entry(key(&r.id)).or_default() += 1;
            }
            Counters::add(&self.inner.counters.batch_items_sent, pending.len() as u64);
            let idempotent = pending.iter().all(|r| r.method.eq_ignore_ascii_case("GET"));
            let call = Call {
                method: Method::POST,
                url: self.url("$batch"),
                headers: Vec::new(),
                body: Some(serde_json::json!({ "requests": wire })),
                permission: "the permissions of each request",
                idempotent,
            };
            let answer: WireBatch = self.execute(&call).await?.json()?;
            let mut by_id: HashMap<String, WireResponse> = answer
                .responses
                .into_iter()
                .map(|r| (key(&r.id), r))
                .collect();
            // What to re-send: throttled or unavailable items, and the 424s that depend
            // (transitively) on them.
            let mut retry: HashSet<String> = pending
                .iter()
                .filter(|r| {
                    by_id
                        .get(&key(&r.id))
                        .is_some_and(|w| item_retryable(&r.method, w.status))
                })
                .map(|r| key(&r.id))
                .collect();
            loop {
                let more: Vec<String> = pending
                    .iter()
                    .filter(|r| {
                        let k = key(&r.id);
                        !retry.contains(&k)
                            && by_id.get(&k).is_some_and(|w| w.status == 424)
                            && r.depends_on.iter().any(|d| retry.contains(&key(d)))
                    })
                    .map(|r| key(&r.id))
                    .collect();
                if more.is_empty() {
                    break;
                }
                retry.extend(more);
            }
            let mut wait: Option<Duration> = None;
            for (k, r) in &by_id {
                if r.status == 429 {
                    Counters::add(&self.inner.counters.throttled, 1);
                }
                if retry.contains(k) {
                    let ra = r
                        .headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                        .and_then(|(_, v)| parse_retry_after(v));
                    if let Some(ra) = ra {
                        wait = Some(wait.map_or(ra, |w| w.max(ra)));
                    }
                }
            }
            let wait =
                wait.unwrap_or_else(|| backoff(policy.base_backoff, policy.max_backoff, round));
            let give_up = retry.is_empty()
                || round >= policy.max_retries
                || over_budget(started.elapsed(), wait, policy.budget);
            let mut next = Vec::new();
            for r in pending {
                let k = key(&r.id);
                let wire = by_id.remove(&k).ok_or_else(|| {
                    Error::Decode(format!("the batch answer has no response for `{}`", r.id))
                })?;
                if retry.contains(&k) && !give_up {
                    next.push(r);
                } else {
                    done.insert(
                        k.clone(),
                        BatchResponse {
                            id: r.id.clone(),
                            status: wire.status,
                            headers: wire.headers,
                            body: wire.body,
                            attempts: attempts.get(&k).copied().unwrap_or(1),
                            permission: permission_for(&r.url),
                        },
                    );
                }
            }
            if next.is_empty() {
                break;
            }
            round += 1;
            Counters::add(&self.inner.counters.retries, next.len() as u64);
            self.inner.counters.waited(wait);
            tracing::info!(
                items = next.len(),
                wait_ms = wait.as_millis() as u64,
                "re-sending throttled batch items"
            );
            tokio::time::sleep(wait).await;
            pending = next;
        }
        Ok(done.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_items_name_least_privileged_permissions() {
        assert_eq!(permission_for("/users?$top=5"), "User.Read.All");
        assert_eq!(permission_for("/users/u1/memberOf"), "GroupMember.Read.All");
        assert_eq!(
            permission_for("/users/u1/transitiveMemberOf?$select=id"),
            "GroupMember.Read.All"
        );
        assert_eq!(permission_for("/groups/g/members"), "GroupMember.Read.All");
        assert_eq!(permission_for("/auditLogs/signIns"), "AuditLog.Read.All");
    }

    #[test]
    fn a_throttled_item_is_an_error_in_into_result() {
        let item = |status: u16, body: Option<Value>| BatchResponse {
            id: "1".into(),
            status,
            headers: BTreeMap::from([("Retry-After".into(), "7".into())]),
            body,
            attempts: 3,
            permission: "User.Read.All",
        };
        assert!(matches!(
            item(429, None).into_result(),
            Err(Error::Throttled { retry_after: Some(d) }) if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            item(424, None).into_result(),
            Err(Error::BadRequest { status: 424, .. })
        ));
        assert_eq!(
            item(200, Some(serde_json::json!({"id": "u"})))
                .into_result()
                .expect("ok"),
            Some(serde_json::json!({"id": "u"}))
        );
    }

    #[test]
    fn only_throttled_writes_are_resent() {
        for method in ["GET", "get", "POST", "PATCH", "DELETE", "PUT"] {
            assert!(item_retryable(method, 429), "{method} 429");
            assert!(!item_retryable(method, 200), "{method} 200");
            assert!(!item_retryable(method, 400), "{method} 400");
            assert!(!item_retryable(method, 424), "{method} 424");
        }
        for status in [500, 502, 503, 504] {
            assert!(item_retryable("GET", status));
            assert!(item_retryable("get", status));
            for method in ["POST", "PATCH", "DELETE", "PUT"] {
                assert!(!item_retryable(method, status), "{method} {status}");
            }
        }
    }

    #[test]
    fn chunks_of_twenty_keep_dependency_chains_together() {
        let mut reqs: Vec<BatchRequest> = (0..45)
            .map(|i| BatchRequest::get(format!("r{i}"), "/users"))
            .collect();
        // r18 <- r19 <- r20 <- r21 must stay together.
        for (i, r) in reqs.iter_mut().enumerate().take(22).skip(19) {
            r.depends_on.push(format!("r{}", i - 1));
        }
        let chunks = chunks(reqs).expect("chunks");
        assert!(chunks.iter().all(|c| c.len() <= MAX_BATCH_REQUESTS));
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 45);
        let with_r18 = chunks
            .iter()
            .find(|c| c.iter().any(|r| r.id == "r18"))
            .expect("r18");
        for id in ["r19", "r20", "r21"] {
            assert!(with_r18.iter().any(|r| r.id == id));
        }
        assert!(
            super::chunks(vec![
                BatchRequest::get("a", "/x"),
                BatchRequest::get("A", "/y")
            ])
            .is_err()
        );
    }
}
