//! `AppState`: what every handler and worker shares. Built once at start-up from validated
//! configuration; cheap to clone.

use std::sync::Arc;

use tenantlink_identity::IdentityClient;
use tenantlink_store::Db;
use tenantlink_vault::KeyRing;

use crate::audit::AuditLog;
use crate::auth::RateLimits;
use crate::config::{CloudSettings, ServeSettings};
use crate::metrics::Metrics;

/// Shared state of the server process.
#[derive(Clone)]
pub(crate) struct AppState {
    /// The database.
    pub(crate) db: Db,
    /// The keys that encrypt stored secrets and tokens.
    pub(crate) ring: Arc<KeyRing>,
    /// Which Microsoft cloud (or emulator) connections talk to.
    pub(crate) cloud: Arc<CloudSettings>,
    /// Entra ID client for that cloud.
    pub(crate) identity: IdentityClient,
    /// The server's settings.
    pub(crate) settings: Arc<ServeSettings>,
    /// Prometheus metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Per-key and per-organization request limits.
    pub(crate) limits: Arc<RateLimits>,
    /// Turns true when the process is shutting down: workers stop taking jobs.
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
    /// This process's id as a worker (in job leases and logs).
    pub(crate) instance_id: String,
    /// The audit trail recorder (group commit; see `audit`).
    pub(crate) audit: Arc<AuditLog>,
}
