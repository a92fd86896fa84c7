//! The emulator's shared, mutable state: the world, sign-in sessions and fault settings.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{EmulatorConfig, ThrottleMode};
use crate::jwt::Signer;
use crate::model::{AppRegistration, Tenant};
use crate::seed::World;

/// Tenants and app registrations.
#[derive(Debug)]
pub(crate) struct WorldState {
    /// The tenants, in seed order.
    pub tenants: Vec<Tenant>,
    /// App registrations by client id.
    pub apps: HashMap<String, AppRegistration>,
}

impl WorldState {
    pub(crate) fn from_world(world: World) -> Self {
        Self {
            tenants: world.tenants,
            apps: world.apps,
        }
    }

    /// A tenant's position by id or verified domain (case-insensitive).
    pub(crate) fn tenant_pos(&self, id_or_domain: &str) -> Option<usize> {
        self.tenants.iter().position(|t| {
            t.id.eq_ignore_ascii_case(id_or_domain) || t.domain.eq_ignore_ascii_case(id_or_domain)
        })
    }

    /// A tenant by id or verified domain.
    pub(crate) fn tenant(&self, id_or_domain: &str) -> Option<&Tenant> {
        self.tenant_pos(id_or_domain).map(|i| &self.tenants[i])
    }

    /// A tenant by id or verified domain, mutable.
    pub(crate) fn tenant_mut(&mut self, id_or_domain: &str) -> Option<&mut Tenant> {
        self.tenant_pos(id_or_domain).map(|i| &mut self.tenants[i])
    }
}

/// Fault injection and runtime settings, changeable through the control API.
#[derive(Debug, Clone)]
pub(crate) struct Faults {
    /// Share of Graph answers replaced by 429 (0.0 to 1.0).
    pub rate_429: f64,
    /// Share replaced by 500.
    pub rate_500: f64,
    /// Share replaced by 503.
    pub rate_503: f64,
    /// Share of Graph answers whose connection is dropped part way.
    pub drop_rate: f64,
    /// Latency added to every Graph answer.
    pub latency: Duration,
    /// Lifetime of new access tokens.
    pub token_lifetime: Duration,
    /// How long delta tokens stay usable.
    pub delta_token_lifetime: Duration,
    /// How long a paging `$skiptoken` stays usable.
    pub page_token_lifetime: Duration,
    /// Graph throttling mode.
    pub throttling: ThrottleMode,
}

impl Faults {
    pub(crate) fn from_config(config: &EmulatorConfig) -> Self {
        Self {
            rate_429: 0.0,
            rate_500: 0.0,
            rate_503: 0.0,
            drop_rate: 0.0,
            latency: Duration::ZERO,
            token_lifetime: config.token_lifetime,
            delta_token_lifetime: config.delta_token_lifetime,
            page_token_lifetime: Duration::from_secs(3600),
            throttling: config.throttling,
        }
    }
}

/// Everything the handlers share.
#[derive(Debug)]
#[expect(
    dead_code,
    reason = "signer, sessions and throttle serve the Entra ID and Graph modules as they land"
)]
pub(crate) struct State {
    /// How the emulator was started.
    pub config: EmulatorConfig,
    /// The token signing key.
    pub signer: Signer,
    /// Tenants, apps and directories.
    pub world: RwLock<WorldState>,
    /// Fault settings.
    pub faults: RwLock<Faults>,
    /// Authorization codes, refresh tokens and other sign-in state, owned by `entra`.
    pub sessions: Mutex<crate::entra::Sessions>,
    /// Graph throttling buckets, owned by `graph`.
    pub throttle: Mutex<crate::graph::Throttle>,
    /// The HTTPS base URL (`https://127.0.0.1:port`).
    pub https_url: String,
    /// The HTTP base URL (`http://127.0.0.1:port`).
    pub http_url: String,
    /// The time the seeded data is relative to.
    pub anchor: DateTime<Utc>,
}

impl State {
    /// Reads the world, recovering from a poisoned lock (a panicked handler must not take
    /// the emulator down with it).
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, WorldState> {
        self.world
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the world.
    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, WorldState> {
        self.world
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current fault settings.
    pub(crate) fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
