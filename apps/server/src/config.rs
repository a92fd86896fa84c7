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
