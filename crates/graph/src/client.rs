//! The public client, its options and its counters.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;

use crate::error::Error;

/// How failed requests are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries of one request (or one batch item) after the first attempt.
    pub max_retries: u32,
    /// First backoff when Graph gives no `Retry-After`; doubles each retry.
    pub base_backoff: Duration,
    /// Cap of one backoff (not of a `Retry-After`, which is honoured as given).
    pub max_backoff: Duration,
    /// Total time one request may spend waiting to be retried; past it the error is
    /// [`Error::Throttled`] (or the last server or network error), never a short result.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 10,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            budget: Duration::from_secs(600),
        }
    }
}

/// Options of a [`GraphClient`].
#[derive(Debug, Clone)]
pub struct GraphClientOptions {
    /// Graph's base URL with its version, e.g. `https://graph.microsoft.com/v1.0`.
    pub base_url: String,
    /// The resource whose `{audience}/.default` scope tokens are asked for.
    pub audience: String,
    /// Page size to ask for; `None` asks each endpoint for its documented maximum (users and
    /// groups 999, users with `signInActivity` 120, sign-ins, audits and devices 1000).
    /// Larger values are clamped to the endpoint's maximum.
    pub page_size: Option<u32>,
    /// Requests in flight at once through this client.
    pub concurrency: usize,
    /// Retry of throttled, unavailable and dropped requests.
    pub retry: RetryPolicy,
    /// Root certificates (PEM) to trust in addition to Mozilla's roots (which already cover
    /// Microsoft Graph): the emulator's CA, or a TLS-inspecting proxy's.
    pub extra_root_certificates: Vec<String>,
    /// TCP and TLS connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of one HTTP request, body included.
    pub request_timeout: Duration,
    /// When `x-ms-throttle-limit-percentage` goes above this share (0 to 1), the next
    /// requests are slowed down before Graph throttles.
    pub slow_down_above: f64,
    /// The pause before the next request when above `slow_down_above` (scaled up to twice
    /// as the share nears 1).
    pub slow_down_delay: Duration,
}

impl Default for GraphClientOptions {
    fn default() -> Self {
        Self {
            base_url: "https://graph.microsoft.com/v1.0".into(),
            audience: "https://graph.microsoft.com".into(),
            page_size: None,
            concurrency: 4,
            retry: RetryPolicy::default(),
            extra_root_certificates: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(100),
            slow_down_above: 0.8,
            slow_down_delay: Duration::from_millis(250),
        }
    }
}

impl GraphClientOptions {
    /// Checks the options.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
        if !(self.base_url.starts_with("https://") || self.base_url.starts_with("http://")) {
            return bad("base_url must be an http(s) URL");
        }
        if self.audience.is_empty() {
            return bad("audience must not be empty");
        }
        if self.page_size == Some(0) {
            return bad("page_size must be at least 1");
        }
        if self.concurrency == 0 {
            return bad("concurrency must be at least 1");
        }
        if self.retry.base_backoff.is_zero() || self.retry.max_backoff < self.retry.base_backoff {
            return bad("backoff: base must be above zero and max at least base");
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return bad("timeouts must be above zero");
        }
        if !(0.0..=1.0).contains(&self.slow_down_above) {
            return bad("slow_down_above must be between 0 and 1");
        }
        for pem in &self.extra_root_certificates {
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return bad("a root certificate is not a PEM certificate");
            }
            reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| Error::Config(format!("a root certificate is not PEM: {e}")))?;
        }
        Ok(())
    }
}

/// Counters of what a client did, from [`GraphClient::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GraphStats {
    /// HTTP requests sent (each attempt counts).
    pub requests: u64,
    /// Retries (of requests and of batch items).
    pub retries: u64,
    /// 429 answers (whole requests and batch items).
    pub throttled: u64,
    /// 401 answers.
    pub unauthorized: u64,
    /// Batch items sent, re-sent ones included.
    pub batch_items_sent: u64,
    /// Times a request was slowed down because Graph reported the budget nearly spent.
    pub slowdowns: u64,
    /// Time spent waiting before retries and slowed-down requests.
    pub waited: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) batch_items_sent: AtomicU64,
    pub(crate) slowdowns: AtomicU64,
    pub(crate) waited_micros: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn waited(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.waited_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) credential: Arc<dyn TokenCredential>,
    pub(crate) scope: String,
    pub(crate) options: GraphClientOptions,
    pub(crate) permits: tokio::sync::Semaphore,
    pub(crate) counters: Counters,
    /// No request before this instant (slowing down before Graph throttles).
    pub(crate) pace_until: Mutex<Option<Instant>>,
}

/// A Microsoft Graph v1.0 client. Cheap to clone; clones share the connection pool, the
/// concurrency limit and the counters.
#[derive(Clone)]
pub struct GraphClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base_url", &self.inner.options.base_url)
            .field("scope", &self.inner.scope)
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    /// A client that asks `credential` for a token before every request.
    pub fn new(
        credential: Arc<dyn TokenCredential>,
        options: GraphClientOptions,
    ) -> Result<Self, Error> {
        options.validate()?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .redirect(reqwest::redirect::Policy::none());
        for pem in &options.extra_root_certificates {
            let cert = reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| Error::Config(format!("a root certificate is not PEM: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let scope = format!("{}/.default", options.audience.trim_end_matches('/'));
        let mut options = options;
        options.base_url = options.base_url.trim_end_matches('/').to_owned();
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                credential,
                scope,
                permits: tokio::sync::Semaphore::new(options.concurrency),
                options,
                counters: Counters::default(),
                pace_until: Mutex::new(None),
            }),
        })
    }

    /// The options the client runs with.
    pub fn options(&self) -> &GraphClientOptions {
        &self.inner.options
    }

    /// What the client did so far.
    pub fn stats(&self) -> GraphStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GraphStats {
            requests: get(&c.requests),
            retries: get(&c.retries),
            throttled: get(&c.throttled),
            unauthorized: get(&c.unauthorized),
            batch_items_sent: get(&c.batch_items_sent),
            slowdowns: get(&c.slowdowns),
            waited: Duration::from_micros(get(&c.waited_micros)),
        }
    }

    /// An absolute URL for a path relative to the base URL (absolute URLs pass unchanged).
    pub(crate) fn url(&self, path: &str) -> String {
        if path.starts_with("https://") || path.starts_with("http://") {
            path.to_owned()
        } else {
            format!(
                "{}/{}",
                self.inner.options.base_url,
                path.trim_start_matches('/')
            )
        }
    }
}

/// Whether `link` is under `base`: the same scheme, host and port, and a path equal to
/// `base`'s or below it. Anything unparsable, with user info, or elsewhere is refused.
pub(crate) fn link_is_under(base: &str, link: &str) -> bool {
    let (Ok(base), Ok(link)) = (reqwest::Url::parse(base), reqwest::Url::parse(link)) else {
        return false;
    };
    if base.scheme() != link.scheme()
        || base.host_str() != link.host_str()
        || base.port_or_known_default() != link.port_or_known_default()
        || !link.username().is_empty()
        || link.password().is_some()
    {
        return false;
    }
    let prefix = base.path().trim_end_matches('/');
    let path = link.path();
    prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"))
}

/// A link for errors and Debug: no query or fragment (they carry skip and delta tokens).
pub(crate) fn redact_link(link: &str) -> &str {
    link.split(['?', '#']).next().unwrap_or(link)
}

impl GraphClient {
    /// Refuses a link not under the base URL, before any token is attached to it.
    pub(crate) fn check_link(&self, link: &str) -> Result<(), Error> {
        if link_is_under(&self.inner.options.base_url, link) {
            Ok(())
        } else {
            tracing::warn!(link = %redact_link(link), "refusing a link outside the base URL");
            Err(Error::UntrustedLink(redact_link(link).to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_links_under_the_base_url_are_followed() {
        let base = "https://graph.microsoft.com/v1.0";
        let ok = [
            "https://graph.microsoft.com/v1.0/users?$skiptoken=x",
            "https://graph.microsoft.com:443/v1.0/users/delta?$deltatoken=y",
            "https://GRAPH.microsoft.com/v1.0/groups",
        ];
        for l in ok {
            assert!(link_is_under(base, l), "{l}");
        }
        let refused = [
            "http://graph.microsoft.com/v1.0/users",
            "https://graph.microsoft.com:8443/v1.0/users",
            "https://evil.example/v1.0/users?$skiptoken=x",
            "https://graph.microsoft.com.evil.example/v1.0/users",
            "https://graph.microsoft.com/beta/users",
            "https://graph.microsoft.com/v1.0evil/users",
            "https://user:pw@graph.microsoft.com/v1.0/users",
            "/v1.0/users",
            "not a url",
        ];
        for l in refused {
            assert!(!link_is_under(base, l), "{l}");
        }
        assert_eq!(
            redact_link("https://h/v1.0/users/delta?$deltatoken=secret"),
            "https://h/v1.0/users/delta"
        );
    }

    #[test]
    fn default_options_are_valid_and_bad_ones_are_refused() {
        assert!(GraphClientOptions::default().validate().is_ok());
        let bad = GraphClientOptions {
            concurrency: 0,
            ..GraphClientOptions::default()
        };
        assert!(matches!(bad.validate(), Err(Error::Config(_))));
        let bad = GraphClientOptions {
            extra_root_certificates: vec!["not a pem".into()],
            ..GraphClientOptions::default()
        };
        assert!(bad.validate().is_err());
    }
}
