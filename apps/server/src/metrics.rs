//! Prometheus metrics: requests and latencies, sync runs, rows, retries and throttling.
//! Served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct HttpLabels {
    /// GET, POST...
    pub(crate) method: String,
    /// The route pattern (`/v1/connections/{connection_id}/users`), never the raw path.
    pub(crate) route: String,
    /// The status code.
    pub(crate) status: u16,
}

/// Labels of an HTTP latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    /// The route pattern.
    pub(crate) route: String,
}

/// Labels of a finished sync run.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RunLabels {
    /// full, incremental, users...
    pub(crate) sync_type: String,
    /// complete, partial or failed.
    pub(crate) status: String,
}

/// Labels of per-resource sync counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResourceLabels {
    /// users, groups, devices...
    pub(crate) resource: String,
}

/// Every metric the server exports.
pub(crate) struct Metrics {
    registry: Registry,
    /// Requests answered.
    pub(crate) http_requests: Family<HttpLabels, Counter>,
    /// Request latency in seconds.
    pub(crate) http_latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Sync runs finished.
    pub(crate) sync_runs: Family<RunLabels, Counter>,
    /// Sync runs in progress in this process.
    pub(crate) sync_running: Gauge,
    /// Rows written by syncs.
    pub(crate) sync_rows: Family<ResourceLabels, Counter>,
    /// Graph requests retried by syncs.
    pub(crate) sync_retries: Family<ResourceLabels, Counter>,
    /// Seconds syncs spent waiting on Graph throttling.
    pub(crate) sync_throttled_seconds:
        Family<ResourceLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Requests refused by the rate limiter.
    pub(crate) rate_limited: Counter,
}

impl Metrics {
    /// Registers every metric.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("tenantlink");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_latency =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
            );
        let sync_runs = Family::<RunLabels, Counter>::default();
        let sync_running = Gauge::default();
        let sync_rows = Family::<ResourceLabels, Counter>::default();
        let sync_retries = Family::<ResourceLabels, Counter>::default();
        let sync_throttled_seconds =
            Family::<ResourceLabels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        let rate_limited = Counter::default();
        registry.register(
            "http_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            http_latency.clone(),
        );
        registry.register("sync_runs", "Sync runs finished", sync_runs.clone());
        registry.register(
            "sync_running",
            "Sync runs in progress here",
            sync_running.clone(),
        );
        registry.register("sync_rows", "Rows written by syncs", sync_rows.clone());
        registry.register(
            "sync_retries",
            "Graph requests retried by syncs",
            sync_retries.clone(),
        );
        registry.register(
            "sync_throttled_seconds",
            "Seconds syncs waited on Graph throttling",
            sync_throttled_seconds.clone(),
        );
        registry.register(
            "rate_limited_requests",
            "Requests refused by the rate limiter",
            rate_limited.clone(),
        );
        Self {
            registry,
            http_requests,
            http_latency,
            sync_runs,
            sync_running,
            sync_rows,
            sync_retries,
            sync_throttled_seconds,
            rate_limited,
        }
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
