//! Configuration from the environment. The binary alone reads it, validates it at start-up
//! and hands plain config structs down to the library crates.

use anyhow::{Context as _, bail};
use tenantlink_vault::{DEFAULT_PBKDF2_ITERATIONS, SecretString, VaultConfig};

/// The primary key or passphrase.
pub(crate) const KEY_VAR: &str = "CREDENTIAL_ENCRYPTION_KEY";
/// The salt for passphrases.
pub(crate) const SALT_VAR: &str = "CREDENTIAL_ENCRYPTION_SALT";
/// Older keys or passphrases, comma-separated, newest first.
pub(crate) const PREVIOUS_VAR: &str = "CREDENTIAL_ENCRYPTION_KEY_PREVIOUS";
/// PBKDF2 iterations for passphrases (default and minimum 100000).
pub(crate) const ITERATIONS_VAR: &str = "CREDENTIAL_ENCRYPTION_ITERATIONS";

/// Where the database is: `postgres://…` or `sqlite://path`.
pub(crate) const DATABASE_VAR: &str = "DATABASE_URL";
/// The embedded default when `DATABASE_URL` is unset.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://tenantlink.db";
/// Which Microsoft cloud: `public` (default), `usgov`, `china`, or the https URL of a
/// tenantlink emulator.
pub(crate) const CLOUD_VAR: &str = "TENANTLINK_CLOUD";
/// Extra CA certificates (PEM file) to trust, e.g. the emulator's or a proxy's.
pub(crate) const CA_FILE_VAR: &str = "TENANTLINK_CA_FILE";

/// The database configuration from `DATABASE_URL` (SQLite in the working directory when
/// unset).
pub(crate) fn database_from_env() -> anyhow::Result<tenantlink_store::DbConfig> {
    database_from(|name| std::env::var(name).ok())
}

fn database_from(
    get: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<tenantlink_store::DbConfig> {
    let url = get(DATABASE_VAR)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    let config = tenantlink_store::DbConfig::new(url);
    config
        .validate()
        .with_context(|| format!("{DATABASE_VAR} is not usable"))?;
    Ok(config)
}

/// Which Microsoft cloud to talk to, and how.
#[derive(Debug, Clone)]
pub(crate) struct CloudSettings {
    /// Entra ID endpoints.
    pub(crate) cloud: tenantlink_identity::Cloud,
    /// Microsoft Graph's base URL (with `/v1.0`).
    pub(crate) graph_url: String,
    /// Graph's token audience.
    pub(crate) graph_audience: String,
    /// Extra root certificates (PEM).
    pub(crate) root_certificates_pem: Vec<String>,
}

impl CloudSettings {
    /// `cloud`'s endpoints (Graph `v1.0`), trusting `root_certificates_pem` too.
    pub(crate) fn new(
        cloud: tenantlink_identity::Cloud,
        root_certificates_pem: Vec<String>,
    ) -> Self {
        let endpoints = cloud.config();
        Self {
            graph_url: format!("{}/v1.0", endpoints.graph_endpoint),
            graph_audience: endpoints.graph_audience,
            cloud,
            root_certificates_pem,
        }
    }

    /// A new Entra ID client for this cloud (its own token cache).
    pub(crate) fn identity_client(&self) -> anyhow::Result<tenantlink_identity::IdentityClient> {
        tenantlink_identity::IdentityClient::new(
            self.cloud.clone(),
            &tenantlink_identity::IdentityClientOptions {
                root_certificates_pem: self.root_certificates_pem.clone(),
                ..tenantlink_identity::IdentityClientOptions::default()
            },
        )
        .context("cannot set up the Entra ID client")
    }
}

/// Reads `TENANTLINK_CLOUD` and `TENANTLINK_CA_FILE`.
pub(crate) fn cloud_from_env() -> anyhow::Result<CloudSettings> {
    cloud_from(|name| std::env::var(name).ok())
}

fn cloud_from(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<CloudSettings> {
    use tenantlink_identity::Cloud;
    let value = get(CLOUD_VAR).unwrap_or_default();
    let value = value.trim();
    let cloud = match value.to_ascii_lowercase().as_str() {
        "" | "public" => Cloud::Public,
        "usgov" | "usgovernment" => Cloud::UsGovernment,
        "china" => Cloud::China,
        _ if value.starts_with("https://") => Cloud::Custom {
            base_url: value.trim_end_matches('/').to_owned(),
        },
        _ => bail!(
            "{CLOUD_VAR} must be public, usgov, china or the https:// URL of a tenantlink emulator (got {value:?})"
        ),
    };
    let mut root_certificates_pem = Vec::new();
    if let Some(path) = get(CA_FILE_VAR).filter(|v| !v.trim().is_empty()) {
        let pem = std::fs::read_to_string(path.trim())
            .with_context(|| format!("{CA_FILE_VAR}: cannot read {path}"))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            bail!("{CA_FILE_VAR}: {path} holds no PEM certificate");
        }
        root_certificates_pem.push(pem);
    }
    Ok(CloudSettings::new(cloud, root_certificates_pem))
}

/// The platform admin key: creates organizations and their API keys.
pub(crate) const ADMIN_KEY_VAR: &str = "TENANTLINK_ADMIN_KEY";
/// The port to listen on.
pub(crate) const PORT_VAR: &str = "PORT";
/// The address to listen on (default 127.0.0.1; 0.0.0.0 in a container).
pub(crate) const BIND_VAR: &str = "TENANTLINK_BIND";
/// How the server is reached from outside (for OAuth redirect URIs).
pub(crate) const PUBLIC_URL_VAR: &str = "TENANTLINK_PUBLIC_URL";
/// Sync workers in this process (0: API only).
pub(crate) const WORKERS_VAR: &str = "TENANTLINK_WORKERS";
/// Seconds between scheduled incremental syncs of a connection (0: none).
pub(crate) const SYNC_INTERVAL_VAR: &str = "TENANTLINK_SYNC_INTERVAL_SECS";
/// Seconds a worker's lease on a job lasts without renewal.
pub(crate) const LEASE_VAR: &str = "TENANTLINK_LEASE_SECS";
/// Requests per second allowed per API key (burst: twice as many).
pub(crate) const RATE_KEY_VAR: &str = "TENANTLINK_RATE_LIMIT_PER_KEY";
/// Requests per second allowed per organization, all its keys together.
pub(crate) const RATE_ORG_VAR: &str = "TENANTLINK_RATE_LIMIT_PER_ORG";
/// Largest accepted request body, in bytes.
pub(crate) const MAX_BODY_VAR: &str = "TENANTLINK_MAX_BODY_BYTES";
/// Seconds a request may take before it is answered 503.
pub(crate) const REQUEST_TIMEOUT_VAR: &str = "TENANTLINK_REQUEST_TIMEOUT_SECS";
/// The platform's multi-tenant app for delegated sign-in and admin consent.
pub(crate) const APP_CLIENT_ID_VAR: &str = "MICROSOFT_CLIENT_ID";
/// Its client secret.
pub(crate) const APP_CLIENT_SECRET_VAR: &str = "MICROSOFT_CLIENT_SECRET";

/// The shortest admin key accepted.
pub(crate) const MIN_ADMIN_KEY_LEN: usize = 32;

/// How `tenantlink serve` runs; read from the environment and validated at start-up.
#[derive(Clone)]
pub(crate) struct ServeSettings {
    /// Address and port to listen on.
    pub(crate) bind: String,
    /// Port.
    pub(crate) port: u16,
    /// The base URL clients and browsers reach the server at, without a trailing slash.
    pub(crate) public_url: String,
    /// Whether `public_url` was configured (else it follows the bound address).
    pub(crate) public_url_explicit: bool,
    /// SHA-256 of the admin key (the key itself is not kept).
    pub(crate) admin_key_hash: [u8; 32],
    /// Sync workers in this process.
    pub(crate) workers: usize,
    /// Scheduled incremental sync interval per connection, if any.
    pub(crate) sync_interval: Option<std::time::Duration>,
    /// Job lease length.
    pub(crate) lease: std::time::Duration,
    /// Requests per second per key.
    pub(crate) rate_per_key: u32,
    /// Requests per second per organization.
    pub(crate) rate_per_org: u32,
    /// Largest request body in bytes.
    pub(crate) max_body_bytes: usize,
    /// Request timeout.
    pub(crate) request_timeout: std::time::Duration,
    /// The platform's app for delegated sign-in and admin consent, if configured.
    pub(crate) delegated_app: Option<(String, SecretString)>,
}

impl std::fmt::Debug for ServeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeSettings")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("public_url", &self.public_url)
            .field("workers", &self.workers)
            .field("sync_interval", &self.sync_interval)
            .field("lease", &self.lease)
            .field("rate_per_key", &self.rate_per_key)
            .field("rate_per_org", &self.rate_per_org)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout", &self.request_timeout)
            .field(
                "delegated_app",
                &self.delegated_app.as_ref().map(|(id, _)| id),
            )
            .finish_non_exhaustive()
    }
}

impl ServeSettings {
    /// Records the address actually bound (`PORT=0` picks one); the public URL follows it
    /// unless it was configured.
    pub(crate) fn bound_to(&mut self, addr: std::net::SocketAddr) {
        self.port = addr.port();
        if !self.public_url_explicit {
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                addr.ip().to_string()
            };
            self.public_url = format!("http://{host}:{}", addr.port());
        }
    }
}

/// Settings for `tenantlink demo`: the environment's, with `admin_key` when none is set,
/// one worker and a scheduled incremental sync every 5 minutes unless configured.
pub(crate) fn demo_settings(admin_key: &str) -> anyhow::Result<ServeSettings> {
    serve_from(|name| match name {
        ADMIN_KEY_VAR => Some(admin_key.to_owned()),
        WORKERS_VAR => std::env::var(name).ok().or_else(|| Some("1".into())),
        SYNC_INTERVAL_VAR => std::env::var(name).ok().or_else(|| Some("300".into())),
        _ => std::env::var(name).ok(),
    })
}

/// SHA-256 of a key, for constant-time comparison without keeping the key.
pub(crate) fn key_hash(key: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(key.as_bytes()).into()
}

/// Reads the server's settings from the environment.
pub(crate) fn serve_from_env() -> anyhow::Result<ServeSettings> {
    serve_from(|name| std::env::var(name).ok())
}

fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
    ok: impl Fn(&T) -> bool,
    expect: &str,
) -> anyhow::Result<T> {
    match get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(text) => match text.trim().parse::<T>() {
            Ok(value) if ok(&value) => Ok(value),
            _ => bail!("{name} must be {expect} (got {:?})", text.trim()),
        },
    }
}

fn serve_from(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<ServeSettings> {
    let Some(admin_key) = get(ADMIN_KEY_VAR).filter(|v| !v.trim().is_empty()) else {
        bail!(
            "{ADMIN_KEY_VAR} is not set: set it to a random string of at least {MIN_ADMIN_KEY_LEN} characters (`openssl rand -hex 32`, or `tenantlink vault generate-key`); it creates organizations and their API keys"
        );
    };
    check_admin_key(&admin_key)?;
    let port: u16 = number(
        &get,
        PORT_VAR,
        8080,
        |_| true,
        "a port number from 0 (any free port) to 65535",
    )?;
    let bind = get(BIND_VAR)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    if bind.parse::<std::net::IpAddr>().is_err() {
        bail!("{BIND_VAR} must be an IP address such as 127.0.0.1 or 0.0.0.0 (got {bind:?})");
    }
    let configured_url = get(PUBLIC_URL_VAR).filter(|v| !v.trim().is_empty());
    let public_url = match &configured_url {
        Some(url) => {
            let url = url.trim().trim_end_matches('/').to_owned();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                bail!("{PUBLIC_URL_VAR} must be an http(s):// URL (got {url:?})");
            }
            url
        }
        None => format!("http://127.0.0.1:{port}"),
    };
    let workers = number(
        &get,
        WORKERS_VAR,
        2usize,
        |n| *n <= 64,
        "a number of workers from 0 to 64",
    )?;
    let interval: u64 = number(
        &get,
        SYNC_INTERVAL_VAR,
        3600,
        |s| *s == 0 || *s >= 60,
        "0 (off) or at least 60 seconds",
    )?;
    let lease: u64 = number(
        &get,
        LEASE_VAR,
        60,
        |s| (5..=3600).contains(s),
        "between 5 and 3600 seconds",
    )?;
    let rate_per_key = number(
        &get,
        RATE_KEY_VAR,
        50u32,
        |n| *n > 0,
        "a positive number of requests per second",
    )?;
    let rate_per_org = number(
        &get,
        RATE_ORG_VAR,
        100u32,
        |n| *n > 0,
        "a positive number of requests per second",
    )?;
    let max_body_bytes = number(
        &get,
        MAX_BODY_VAR,
        64 * 1024usize,
        |n| (1024..=16 * 1024 * 1024).contains(n),
        "between 1024 and 16777216 bytes",
    )?;
    let timeout: u64 = number(
        &get,
        REQUEST_TIMEOUT_VAR,
        30,
        |s| (1..=600).contains(s),
        "between 1 and 600 seconds",
    )?;
    let delegated_app = match (
        get(APP_CLIENT_ID_VAR).filter(|v| !v.trim().is_empty()),
        get(APP_CLIENT_SECRET_VAR).filter(|v| !v.trim().is_empty()),
    ) {
        (Some(id), Some(secret)) => Some((id.trim().to_owned(), SecretString::from(secret))),
        (None, None) => None,
        _ => bail!(
            "set both {APP_CLIENT_ID_VAR} and {APP_CLIENT_SECRET_VAR} (the platform's multi-tenant app, for delegated sign-in and admin consent), or neither"
        ),
    };
    Ok(ServeSettings {
        bind,
        port,
        public_url,
        public_url_explicit: configured_url.is_some(),
        admin_key_hash: key_hash(admin_key.trim()),
        workers,
        sync_interval: (interval > 0).then(|| std::time::Duration::from_secs(interval)),
        lease: std::time::Duration::from_secs(lease),
        rate_per_key,
        rate_per_org,
        max_body_bytes,
        request_timeout: std::time::Duration::from_secs(timeout),
        delegated_app,
    })
}

/// Refuses short or obviously weak admin keys, without echoing them.
fn check_admin_key(key: &str) -> anyhow::Result<()> {
    let key = key.trim();
    if key.len() < MIN_ADMIN_KEY_LEN {
        bail!(
            "{ADMIN_KEY_VAR} is too short ({} characters): use at least {MIN_ADMIN_KEY_LEN} random characters (`openssl rand -hex 32`)",
            key.len()
        );
    }
    let distinct = key.chars().collect::<std::collections::HashSet<_>>().len();
    let lower = key.to_ascii_lowercase();
    if distinct < 10
        || ["changeme", "password", "secret", "admin", "example"]
            .iter()
            .any(|w| lower.contains(w))
    {
        bail!(
            "{ADMIN_KEY_VAR} looks weak (repeated characters or a common word): use a random one (`openssl rand -hex 32`)"
        );
    }
    Ok(())
}

/// Reads the vault's configuration from the environment and validates it.
pub(crate) fn vault_from_env() -> anyhow::Result<VaultConfig> {
    vault_from(|name| std::env::var(name).ok())
}

fn vault_from(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<VaultConfig> {
    let Some(key) = get(KEY_VAR).filter(|v| !v.trim().is_empty()) else {
        bail!(
            "{KEY_VAR} is not set: set it to a Fernet key (`tenantlink vault generate-key` makes one) or to a passphrase with {SALT_VAR}"
        );
    };
    let mut config = VaultConfig::new(SecretString::from(key));
    config.salt = get(SALT_VAR)
        .filter(|v| !v.is_empty())
        .map(SecretString::from);
    config.previous = get(PREVIOUS_VAR)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| SecretString::from(v.to_owned()))
        .collect();
    config.iterations = match get(ITERATIONS_VAR).filter(|v| !v.trim().is_empty()) {
        Some(value) => value
            .trim()
            .parse()
            .with_context(|| format!("{ITERATIONS_VAR} must be a whole number"))?,
        None => DEFAULT_PBKDF2_ITERATIONS,
    };
    config
        .validate()
        .with_context(|| format!("the keys in {KEY_VAR} / {PREVIOUS_VAR} are not usable"))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> anyhow::Result<VaultConfig> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        vault_from(|name| vars.get(name).cloned())
    }

    #[test]
    fn database_defaults_to_sqlite_and_rejects_other_schemes() {
        let config = database_from(|_| None).unwrap();
        assert_eq!(config.url, DEFAULT_DATABASE_URL);
        let err = database_from(|_| Some("mysql://root:hunter2@db/x".into())).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains(DATABASE_VAR) && !text.contains("hunter2"),
            "{text}"
        );
    }

    #[test]
    fn cloud_names_and_emulator_urls() {
        let public = cloud_from(|_| None).unwrap();
        assert_eq!(public.graph_url, "https://graph.microsoft.com/v1.0");
        let emulator =
            cloud_from(|n| (n == CLOUD_VAR).then(|| "https://127.0.0.1:8443/".into())).unwrap();
        assert_eq!(emulator.graph_url, "https://127.0.0.1:8443/v1.0");
        assert!(cloud_from(|n| (n == CLOUD_VAR).then(|| "mars".into())).is_err());
    }

    fn serve(vars: &[(&str, &str)]) -> anyhow::Result<ServeSettings> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        serve_from(|name| vars.get(name).cloned())
    }

    const GOOD_ADMIN: &str = "3f9a1c7e5b2d8046af13c9e7d5b1a8f2c4e6";

    #[test]
    fn serve_needs_a_strong_admin_key_and_never_echoes_it() {
        let err = format!("{:#}", serve(&[]).unwrap_err());
        assert!(err.contains(ADMIN_KEY_VAR), "{err}");
        for weak in [
            "short-key",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "changeme-changeme-changeme-changeme-1234",
        ] {
            let err = format!("{:#}", serve(&[(ADMIN_KEY_VAR, weak)]).unwrap_err());
            assert!(err.contains(ADMIN_KEY_VAR) && !err.contains(weak), "{err}");
        }
        let settings = serve(&[(ADMIN_KEY_VAR, GOOD_ADMIN)]).unwrap();
        assert_eq!(settings.port, 8080);
        assert_eq!(settings.public_url, "http://127.0.0.1:8080");
        assert!(!format!("{settings:?}").contains(GOOD_ADMIN));
    }

    #[test]
    fn serve_rejects_bad_numbers_and_half_an_app() {
        for (name, value) in [
            (PORT_VAR, "65536"),
            (PORT_VAR, "http"),
            (LEASE_VAR, "1"),
            (SYNC_INTERVAL_VAR, "5"),
            (BIND_VAR, "localhost:80"),
            (PUBLIC_URL_VAR, "ftp://x"),
        ] {
            let err = format!(
                "{:#}",
                serve(&[(ADMIN_KEY_VAR, GOOD_ADMIN), (name, value)]).unwrap_err()
            );
            assert!(err.contains(name), "{name}: {err}");
        }
        let err = format!(
            "{:#}",
            serve(&[(ADMIN_KEY_VAR, GOOD_ADMIN), (APP_CLIENT_ID_VAR, "x")]).unwrap_err()
        );
        assert!(err.contains(APP_CLIENT_SECRET_VAR), "{err}");
    }

    #[test]
    fn missing_key_says_what_to_do() {
        let err = from(&[]).unwrap_err().to_string();
        assert!(
            err.contains(KEY_VAR) && err.contains("generate-key"),
            "{err}"
        );
    }

    #[test]
    fn passphrase_without_salt_is_refused_without_echoing_it() {
        let err = from(&[(KEY_VAR, "my secret passphrase")]).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains(SALT_VAR), "{text}");
        assert!(!text.contains("my secret passphrase"));
    }

    #[test]
    fn previous_keys_are_split_and_iterations_checked() {
        let config = from(&[
            (KEY_VAR, "pass one"),
            (SALT_VAR, "salt"),
            (PREVIOUS_VAR, " pass two , ,pass three"),
        ])
        .unwrap();
        assert_eq!(config.previous.len(), 2);
        assert_eq!(config.iterations, 100_000);
        let err = from(&[(KEY_VAR, "p"), (SALT_VAR, "s"), (ITERATIONS_VAR, "1000")]).unwrap_err();
        assert!(format!("{err:#}").contains("100000"));
        assert!(from(&[(KEY_VAR, "p"), (SALT_VAR, "s"), (ITERATIONS_VAR, "lots")]).is_err());
    }
}
