//! Sending requests: a fresh token per attempt, `client-request-id`, retries of 429, 503,
//! 504 (500 and 502 for `GET`) and dropped connections honouring `Retry-After`, jittered backoff, a total retry
//! budget, slowing down before Graph throttles, and Graph's errors mapped to [`Error`].

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::client::{Counters, GraphClient};
use crate::error::Error;

/// One request to send (and re-send). Its `Debug` leaves out the URL's query (skip and delta
/// tokens) and the body.
#[derive(Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Option<serde_json::Value>,
    /// The permission the endpoint needs, named in [`Error::Forbidden`].
    pub(crate) permission: &'static str,
    /// Whether a dropped connection or a timeout may be retried.
    pub(crate) idempotent: bool,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("method", &self.method)
            .field("url", &strip_query(&self.url))
            .field("permission", &self.permission)
            .field("idempotent", &self.idempotent)
            .finish_non_exhaustive()
    }
}

impl Call {
    pub(crate) fn get(url: String, permission: &'static str) -> Self {
        Self {
            method: Method::GET,
            url,
            headers: Vec::new(),
            body: None,
            permission,
            idempotent: true,
        }
    }
}

/// A successful answer, body read in full.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode(e.to_string()))
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Graph's `{"error": {"code", "message"}}`, when the body has it.
pub(crate) fn error_parts(body: &[u8]) -> (String, String) {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| (b.error.code, b.error.message))
        .unwrap_or_default()
}

/// Maps a failed answer (after retries) to an [`Error`].
pub(crate) fn map_error(
    status: u16,
    code: String,
    message: String,
    retry_after: Option<Duration>,
    permission: &str,
) -> Error {
    match (status, code.as_str()) {
        (400, "Directory_ExpiredPageToken") => Error::PageTokenExpired,
        (400, "syncStateNotFound") | (410, _) => Error::ResyncRequired { code },
        (401, _) => Error::Unauthorized { message },
        (403, _) => Error::Forbidden {
            permission: permission.to_owned(),
            message,
        },
        (404, _) => Error::NotFound { message },
        (429, _) => Error::Throttled { retry_after },
        (500..=599, _) => Error::Server { status, message },
        _ => Error::BadRequest {
            status,
            code,
            message,
        },
    }
}

/// The longest `Retry-After` taken as given; a longer one is cut to this (the retry budget
/// then decides whether to wait at all).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` as seconds or an HTTP-date, at most [`MAX_RETRY_AFTER`]; a date in the
/// past is zero; anything else is `None`.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        return Some(
            Duration::try_from_secs_f64(secs)
                .unwrap_or(MAX_RETRY_AFTER)
                .min(MAX_RETRY_AFTER),
        );
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at
        .with_timezone(&chrono::Utc)
        .signed_duration_since(chrono::Utc::now());
    Some(
        wait.to_std()
            .map_or(Duration::ZERO, |w| w.min(MAX_RETRY_AFTER)),
    )
}

/// Whether waiting `wait` more after `elapsed` would overrun `budget` (never overflows).
pub(crate) fn over_budget(elapsed: Duration, wait: Duration, budget: Duration) -> bool {
    elapsed.saturating_add(wait) > budget
}

pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// A random number in `[0, 1)`.
pub(crate) fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::getrandom(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Capped exponential backoff with jitter: between half and all of
/// `min(max, base * 2^attempt)`.
pub(crate) fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(20));
    let cap = base.saturating_mul(factor).min(max);
    cap.mul_f64(0.5 + 0.5 * unit_random())
}

/// A random (version 4) GUID for `client-request-id`.
pub(crate) fn new_guid() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = (unit_random() * 256.0) as u8 ^ i as u8;
        }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `x-ms-throttle-limit-percentage` as a share between 0 and 1.
fn limit_share(headers: &HeaderMap) -> Option<f64> {
    let v: f64 = headers
        .get("x-ms-throttle-limit-percentage")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(if v > 1.0 { v / 100.0 } else { v })
}

/// What one attempt ended with.
enum Outcome {
    Done(Answer),
    Retry {
        wait: Option<Duration>,
        error: Error,
    },
    Fail(Error),
}

impl GraphClient {
    /// Asks the credential for a token (its cache makes this cheap).
    pub(crate) async fn token(&self) -> Result<String, Error> {
        let scope = self.inner.scope.as_str();
        let token = self
            .inner
            .credential
            .get_token(&[scope], None)
            .await
            .map_err(|e| Error::Credential(e.to_string()))?;
        Ok(token.token.secret().to_owned())
    }

    /// Waits while the client slows down before Graph throttles.
    async fn pace(&self) {
        let until = *self
            .inner
            .pace_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                let wait = until - now;
                Counters::add(&self.inner.counters.slowdowns, 1);
                self.inner.counters.waited(wait);
                tokio::time::sleep(wait).await;
            }
        }
    }

    fn note_throttle_headers(&self, headers: &HeaderMap) {
        let opts = &self.inner.options;
        if let Some(share) = limit_share(headers)
            && share > opts.slow_down_above
        {
            let over =
                ((share - opts.slow_down_above) / (1.0 - opts.slow_down_above)).clamp(0.0, 1.0);
            let delay = opts.slow_down_delay.mul_f64(1.0 + over);
            tracing::debug!(
                share,
                delay_ms = delay.as_millis() as u64,
                "Graph budget nearly spent: slowing down"
            );
            let mut pace = self
                .inner
                .pace_until
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let until = Instant::now() + delay;
            if pace.is_none_or(|p| p < until) {
                *pace = Some(until);
            }
        }
    }

    /// Sends `call`, retrying per the policy, and answers a 2xx answer or the error.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Answer, Error> {
        let policy = &self.inner.options.retry;
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            self.pace().await;
            let outcome = self.attempt(call).await?;
            let (wait, error) = match outcome {
                Outcome::Done(answer) => return Ok(answer),
                Outcome::Fail(error) => return Err(error),
                Outcome::Retry { wait, error } => (wait, error),
            };
            let wait =
                wait.unwrap_or_else(|| backoff(policy.base_backoff, policy.max_backoff, attempt));
            if attempt >= policy.max_retries || over_budget(started.elapsed(), wait, policy.budget)
            {
                tracing::warn!(url = %strip_query(&call.url), attempt, "giving up: retry budget spent");
                return Err(error);
            }
            attempt += 1;
            Counters::add(&self.inner.counters.retries, 1);
            self.inner.counters.waited(wait);
            tracing::debug!(url = %strip_query(&call.url), attempt, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, call: &Call) -> Result<Outcome, Error> {
        // The permit first, then the token: a request that queued for a while still gets a
        // token the credential considers fresh.
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Network("the client is closed".into()))?;
        let token = self.token().await?;
        let client_request_id = new_guid();
        let mut req = self
            .inner
            .http
            .request(call.method.clone(), &call.url)
            .bearer_auth(token)
            .header("client-request-id", &client_request_id)
            .header("return-client-request-id", "true")
            .header(reqwest::header::ACCEPT, "application/json");
        for (name, value) in &call.headers {
            req = req.header(*name, value);
        }
        if let Some(body) = &call.body {
            req = req.json(body);
        }
        Counters::add(&self.inner.counters.requests, 1);
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let error = Error::Network(describe(&e));
                tracing::debug!(%client_request_id, error = %error, "request failed");
                return Ok(if call.idempotent || e.is_connect() {
                    Outcome::Retry { wait: None, error }
                } else {
                    Outcome::Fail(error)
                });
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let request_id = headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                let error = Error::Network(format!("reading the answer: {}", describe(&e)));
                tracing::debug!(%client_request_id, %request_id, error = %error, "answer broke off");
                return Ok(if call.idempotent {
                    Outcome::Retry { wait: None, error }
                } else {
                    Outcome::Fail(error)
                });
            }
        };
        tracing::debug!(
            method = %call.method,
            url = %strip_query(&call.url),
            status = status.as_u16(),
            %client_request_id,
            %request_id,
            "Graph answered"
        );
        self.note_throttle_headers(&headers);
        if status.is_success() {
            return Ok(Outcome::Done(Answer { body }));
        }
        let (code, message) = error_parts(&body);
        let ra = retry_after(&headers);
        let error = map_error(status.as_u16(), code, message, ra, call.permission);
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                Counters::add(&self.inner.counters.throttled, 1);
                tracing::info!(%client_request_id, %request_id, retry_after = ?ra, "throttled by Graph");
                Ok(Outcome::Retry { wait: ra, error })
            }
            _ if transient(&call.method, status) => Ok(Outcome::Retry { wait: ra, error }),
            StatusCode::UNAUTHORIZED => {
                Counters::add(&self.inner.counters.unauthorized, 1);
                Ok(Outcome::Fail(error))
            }
            _ => Ok(Outcome::Fail(error)),
        }
    }
}

/// Whether a 5xx is worth another attempt: 503 and 504 always (Graph asks for it), 500 and
/// 502 only for a `GET` (Graph documents them as transient; a write may have been applied).
fn transient(method: &Method, status: StatusCode) -> bool {
    match status {
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => true,
        StatusCode::INTERNAL_SERVER_ERROR | StatusCode::BAD_GATEWAY => *method == Method::GET,
        _ => false,
    }
}

/// The URL without its query (which may hold opaque tokens), for logs.
fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// A reqwest error without its URL (which may hold skip and delta tokens).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    let mut msg = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_debug_leaves_out_the_query() {
        let call = Call::get(
            "https://graph.example/v1.0/users?$skiptoken=SECRETSKIP&$top=999".into(),
            "User.Read.All",
        );
        let debug = format!("{call:?}");
        assert!(
            debug.contains("https://graph.example/v1.0/users"),
            "{debug}"
        );
        assert!(!debug.contains("SECRETSKIP"), "{debug}");
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let at = chrono::Utc::now() + chrono::TimeDelta::seconds(30);
        let wait = parse_retry_after(&at.to_rfc2822()).expect("date");
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn absurd_retry_after_values_are_capped_not_panics() {
        for v in [
            "1e30",
            "1e300",
            "18446744073709551615",
            "99999999999999999999999",
            "1.7976931348623157e308",
        ] {
            let got = parse_retry_after(v);
            assert!(got.is_none_or(|d| d <= MAX_RETRY_AFTER), "{v} gave {got:?}");
        }
        assert_eq!(parse_retry_after("1e30"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("18446744073709551615"),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("2.5"), Some(Duration::from_millis(2500)));
        for v in [
            "-1",
            "-1e30",
            "NaN",
            "inf",
            "-inf",
            "",
            "0x10",
            "Fri, 99 Foo",
        ] {
            assert_eq!(parse_retry_after(v), None, "{v}");
        }
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after("Mon, 01 Jan 1900 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn budget_arithmetic_saturates() {
        let budget = Duration::from_secs(60);
        assert!(over_budget(Duration::from_secs(1), Duration::MAX, budget));
        assert!(over_budget(Duration::MAX, Duration::MAX, budget));
        assert!(!over_budget(
            Duration::from_secs(1),
            Duration::from_secs(2),
            budget
        ));
        assert!(over_budget(
            Duration::from_secs(59),
            Duration::from_secs(2),
            budget
        ));
    }

    #[test]
    fn transient_5xx_are_retried_only_where_safe() {
        let s = |c| StatusCode::from_u16(c).expect("status");
        for c in [500, 502, 503, 504] {
            assert!(transient(&Method::GET, s(c)), "GET {c}");
        }
        for m in [Method::POST, Method::PATCH, Method::DELETE] {
            assert!(!transient(&m, s(500)), "{m} 500");
            assert!(!transient(&m, s(502)), "{m} 502");
        }
        for c in [400, 401, 403, 404, 501, 505] {
            assert!(!transient(&Method::GET, s(c)), "GET {c}");
        }
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 0..30 {
            let b = backoff(base, max, attempt);
            assert!(b <= max);
        }
        assert!(backoff(base, max, 0) >= Duration::from_millis(50));
    }

    #[test]
    fn guid_shape() {
        let g = new_guid();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
        assert_ne!(g, new_guid());
    }

    #[test]
    fn errors_in_graph_vocabulary() {
        let e = |s, c: &str| map_error(s, c.into(), "m".into(), None, "User.Read.All");
        assert!(matches!(
            e(400, "Directory_ExpiredPageToken"),
            Error::PageTokenExpired
        ));
        assert!(matches!(
            e(400, "syncStateNotFound"),
            Error::ResyncRequired { .. }
        ));
        assert!(matches!(
            e(410, "resyncRequired"),
            Error::ResyncRequired { .. }
        ));
        assert!(
            matches!(e(403, "Authorization_RequestDenied"), Error::Forbidden { permission, .. } if permission == "User.Read.All")
        );
        assert!(matches!(
            e(404, "Request_ResourceNotFound"),
            Error::NotFound { .. }
        ));
        assert!(matches!(e(503, "x"), Error::Server { status: 503, .. }));
        assert!(matches!(
            e(400, "BadRequest"),
            Error::BadRequest { status: 400, .. }
        ));
    }
}
