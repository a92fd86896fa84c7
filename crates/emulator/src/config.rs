//! How an emulator is started: ports, seed, tenant size, throttling and lifetimes.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How many objects each seeded tenant gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantSize {
    /// Users (about 3% guests, 5% disabled).
    pub users: usize,
    /// Groups of all kinds; memberships average `members_per_group`.
    pub groups: usize,
    /// Average direct members per group.
    pub members_per_group: usize,
    /// Intune managed devices.
    pub devices: usize,
    /// Sign-in events over the last 30 days.
    pub sign_ins: usize,
    /// Directory audit events over the last 30 days.
    pub directory_audits: usize,
    /// Security alerts.
    pub alerts: usize,
}

impl TenantSize {
    /// A few dozen objects: quick tests.
    pub const SMALL: Self = Self {
        users: 60,
        groups: 12,
        members_per_group: 8,
        devices: 40,
        sign_ins: 300,
        directory_audits: 120,
        alerts: 6,
    };
    /// A mid-sized company: demos.
    pub const MEDIUM: Self = Self {
        users: 2_000,
        groups: 200,
        members_per_group: 40,
        devices: 1_500,
        sign_ins: 20_000,
        directory_audits: 5_000,
        alerts: 40,
    };
    /// An enterprise: 100,000 users, 10,000 groups, 1,000,000 memberships, 50,000 devices.
    pub const LARGE: Self = Self {
        users: 100_000,
        groups: 10_000,
        members_per_group: 100,
        devices: 50_000,
        sign_ins: 100_000,
        directory_audits: 20_000,
        alerts: 200,
    };

    /// `LARGE`'s proportions scaled to `users` users (one group per 10 users, 100 members
    /// per group, one device per 2 users, one sign-in per user).
    pub fn users(users: usize) -> Self {
        let scale = |n: usize| (n * users).div_ceil(Self::LARGE.users).max(1);
        Self {
            users,
            groups: scale(Self::LARGE.groups),
            members_per_group: Self::LARGE.members_per_group.min(users.max(1)),
            devices: scale(Self::LARGE.devices),
            sign_ins: scale(Self::LARGE.sign_ins),
            directory_audits: scale(Self::LARGE.directory_audits),
            alerts: scale(Self::LARGE.alerts),
        }
    }

    /// A size by name: `small`, `medium` or `large`, or a number of users (`10000`) scaled
    /// as [`TenantSize::users`] does.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "small" => Some(Self::SMALL),
            "medium" => Some(Self::MEDIUM),
            "large" => Some(Self::LARGE),
            n => n
                .parse::<usize>()
                .ok()
                .filter(|&n| (1..=1_000_000).contains(&n))
                .map(Self::users),
        }
    }
}

/// How the emulated Graph throttles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThrottleMode {
    /// Never throttle.
    #[default]
    Off,
    /// The documented limits: a resource-unit budget per app and tenant for directory reads,
    /// a much smaller request budget for audit-log reports.
    Realistic,
    /// The same rules with budgets a tenth as large, to exercise clients.
    Aggressive,
}

impl ThrottleMode {
    /// A mode by name: `off`, `realistic` or `aggressive`.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "off" => Some(Self::Off),
            "realistic" => Some(Self::Realistic),
            "aggressive" => Some(Self::Aggressive),
            _ => None,
        }
    }
}

/// Everything needed to start an emulator. `Default` suits tests: random ports on
/// 127.0.0.1, seed 1, two small tenants, no throttling.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; keep it on loopback.
    pub bind: IpAddr,
    /// HTTP port (0: any free port).
    pub http_port: u16,
    /// HTTPS port (0: any free port).
    pub https_port: u16,
    /// Seed of the tenant generator and the signing key: the same seed gives the same world.
    pub seed: u64,
    /// How many tenants to seed.
    pub tenants: usize,
    /// Size of each seeded tenant.
    pub size: TenantSize,
    /// Graph throttling.
    pub throttling: ThrottleMode,
    /// Lifetime of access tokens.
    pub token_lifetime: Duration,
    /// How long a delta token stays usable.
    pub delta_token_lifetime: Duration,
    /// Where to write the CA certificate (PEM); a temporary file when `None`.
    pub ca_path: Option<PathBuf>,
    /// HTTP worker threads per listener.
    pub workers: usize,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            http_port: 0,
            https_port: 0,
            seed: 1,
            tenants: 2,
            size: TenantSize::SMALL,
            throttling: ThrottleMode::Off,
            token_lifetime: Duration::from_secs(3600),
            delta_token_lifetime: Duration::from_secs(7 * 24 * 3600),
            ca_path: None,
            workers: 2,
        }
    }
}

impl EmulatorConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let bad = |msg: &str| Err(crate::Error::Config(msg.to_owned()));
        if self.tenants == 0 {
            return bad("at least one tenant is needed");
        }
        if self.size.users < 2 {
            return bad("a tenant needs at least 2 users");
        }
        if self.token_lifetime < Duration::from_secs(1) {
            return bad("token lifetime must be at least one second");
        }
        if self.workers == 0 {
            return bad("at least one worker is needed");
        }
        if self.http_port != 0 && self.http_port == self.https_port {
            return bad("HTTP and HTTPS need different ports");
        }
        Ok(())
    }
}
