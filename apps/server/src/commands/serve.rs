//! `tenantlink serve`: the HTTP API and the background sync workers, configured from the
//! environment and refusing to start when something required is missing or weak.

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tenantlink_store::Db;
use tenantlink_vault::KeyRing;

use crate::audit::AuditLog;
use crate::auth::RateLimits;
use crate::config::{self, CloudSettings, ServeSettings};
use crate::metrics::Metrics;
use crate::state::AppState;

/// JSON log lines on stderr, filtered by `RUST_LOG` (else `default`, e.g. `info`).
pub(crate) fn init_json_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Everything a server process needs, validated.
pub(crate) struct Parts {
    pub(crate) settings: ServeSettings,
    pub(crate) db: Db,
    pub(crate) ring: KeyRing,
    pub(crate) cloud: CloudSettings,
}

/// Builds the state, starts the workers and serves on `listener` until a signal.
pub(crate) async fn run(parts: Parts, listener: TcpListener) -> anyhow::Result<()> {
    let Parts {
        settings,
        db,
        ring,
        cloud,
    } = parts;
    let identity = cloud.identity_client()?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let (audit_stop, audit_stop_rx) = tokio::sync::watch::channel(false);
    let (audit, audit_task) = AuditLog::start(db.clone(), audit_stop_rx);
    let state = AppState {
        audit,
        db,
        ring: Arc::new(ring),
        cloud: Arc::new(cloud),
        identity,
        limits: Arc::new(RateLimits::new(
            settings.rate_per_key,
            settings.rate_per_org,
        )),
        settings: Arc::new(settings),
        metrics: Arc::new(Metrics::new()),
        shutdown: shutdown_rx,
        instance_id: format!(
            "{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
    };
    let mut tasks = crate::worker::start(&state);
    tasks.extend(crate::scheduler::start(&state));
    tracing::info!(
        address = %listener.local_addr()?,
        instance = %state.instance_id,
        workers = state.settings.workers,
        backend = ?state.db.backend(),
        "tenantlink serving"
    );
    crate::app::run(
        state,
        listener,
        crate::app::Background {
            shutdown: shutdown_tx,
            tasks,
            audit_stop,
            audit_task,
        },
    )
    .await
}

pub(crate) async fn serve() -> anyhow::Result<ExitCode> {
    init_json_logs("info");
    let mut settings = config::serve_from_env()?;
    let ring = config::vault_from_env()?.build()?;
    let cloud = config::cloud_from_env()?;
    let db = super::db::open().await?;
    let listener =
        TcpListener::bind((settings.bind.as_str(), settings.port)).with_context(|| {
            format!(
                "cannot listen on {}:{} (set {} or {})",
                settings.bind,
                settings.port,
                config::PORT_VAR,
                config::BIND_VAR
            )
        })?;
    settings.bound_to(listener.local_addr()?);
    run(
        Parts {
            settings,
            db,
            ring,
            cloud,
        },
        listener,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
