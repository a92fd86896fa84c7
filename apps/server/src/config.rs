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
    let endpoints = cloud.config();
    let graph_url = format!("{}/v1.0", endpoints.graph_endpoint);
    let graph_audience = endpoints.graph_audience;
    let mut root_certificates_pem = Vec::new();
    if let Some(path) = get(CA_FILE_VAR).filter(|v| !v.trim().is_empty()) {
        let pem = std::fs::read_to_string(path.trim())
            .with_context(|| format!("{CA_FILE_VAR}: cannot read {path}"))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            bail!("{CA_FILE_VAR}: {path} holds no PEM certificate");
        }
        root_certificates_pem.push(pem);
    }
    Ok(CloudSettings {
        cloud,
        graph_url,
        graph_audience,
        root_certificates_pem,
    })
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
