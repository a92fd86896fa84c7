//! Test support (unit tests only): an `AppState` over a test database, optionally pointed
//! at an in-process emulator, and an organization with an API key.

use std::sync::Arc;
use std::time::Duration;

use tenantlink_emulator::{Emulator, EmulatorConfig, TenantSize};
use tenantlink_store::Db;
use tenantlink_vault::{FernetKey, KeyRing};

use crate::audit::AuditLog;
use crate::auth::RateLimits;
use crate::config::{CloudSettings, ServeSettings, key_hash};
use crate::metrics::Metrics;
use crate::state::AppState;

/// The admin key of test states.
pub(crate) const ADMIN_KEY: &str = "test-admin-5b2d8046af13c9e7d5b1a8f2c4e6";

/// Settings as `serve` would default them, with generous rate limits.
pub(crate) fn settings() -> ServeSettings {
    ServeSettings {
        bind: "127.0.0.1".into(),
        port: 8080,
        public_url: "http://127.0.0.1:8080".into(),
        public_url_explicit: false,
        admin_key_hash: key_hash(ADMIN_KEY),
        workers: 0,
        sync_interval: None,
        lease: Duration::from_secs(30),
        rate_per_key: 10_000,
        rate_per_org: 10_000,
        max_body_bytes: 64 * 1024,
        request_timeout: Duration::from_secs(60),
        delegated_app: None,
    }
}

/// A seeded emulator (small tenant) started in-process.
pub(crate) fn emulator(seed: u64) -> Emulator {
    Emulator::start(EmulatorConfig {
        seed,
        tenants: 1,
        size: TenantSize::SMALL,
        ..EmulatorConfig::default()
    })
    .expect("emulator starts")
}

/// Cloud settings pointing at `emulator`.
pub(crate) fn emulator_cloud(emulator: &Emulator) -> CloudSettings {
    let base = emulator.https_url().trim_end_matches('/').to_owned();
    CloudSettings::new(
        tenantlink_identity::Cloud::Custom { base_url: base },
        vec![emulator.ca_pem()],
    )
}

/// Cloud settings that point nowhere reachable (for tests that never call out).
pub(crate) fn offline_cloud() -> CloudSettings {
    CloudSettings::new(
        tenantlink_identity::Cloud::Custom {
            base_url: "https://127.0.0.1:9".into(),
        },
        Vec::new(),
    )
}

/// An `AppState` over `db` with a fresh vault key. The shutdown sender is returned so
/// tests can keep it alive (or flip it).
pub(crate) fn state(
    db: Db,
    cloud: CloudSettings,
    settings: ServeSettings,
) -> (AppState, tokio::sync::watch::Sender<bool>) {
    let ring = KeyRing::new(FernetKey::generate().expect("a key"));
    let identity = cloud.identity_client().expect("identity client");
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (audit, _task) = AuditLog::start(db.clone(), rx.clone());
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
        shutdown: rx,
        instance_id: "test".into(),
    };
    (state, tx)
}

/// Creates an organization named `name` and an API key for it; returns (org id, key).
pub(crate) async fn org_with_key(db: &Db, name: &str) -> (String, String) {
    let org = db.create_organization(name).await.expect("organization");
    let issued = crate::auth::issue_key().expect("key");
    db.create_api_key(&tenantlink_store::NewApiKey {
        id: issued.id.clone(),
        organization_id: org.id.clone(),
        name: "test".into(),
        secret_hash: issued.secret_hash.clone(),
        expires_at: None,
    })
    .await
    .expect("api key");
    (org.id, issued.key)
}
