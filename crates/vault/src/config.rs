//! Plain configuration for building a [`KeyRing`]; the caller reads it from wherever it likes
//! (the `tenantlink` binary reads the environment), the vault never does.

use secrecy::{ExposeSecret as _, SecretString};

use crate::error::{Error, Result};
use crate::key::{DEFAULT_PBKDF2_ITERATIONS, FernetKey, MIN_PBKDF2_ITERATIONS};
use crate::ring::KeyRing;

/// How the keys of a ring are given.
///
/// Each key is either a Fernet key (url-safe base64 of 32 bytes) or a passphrase; a value that
/// decodes to exactly 32 bytes is taken as a key, anything else as a passphrase, which needs
/// `salt` and is stretched with PBKDF2-HMAC-SHA256 once, when the ring is built.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// The primary key or passphrase: it encrypts, and decrypts first.
    pub key: SecretString,
    /// Salt for passphrases (its UTF-8 bytes are the PBKDF2 salt).
    pub salt: Option<SecretString>,
    /// Older keys or passphrases that still decrypt, newest first.
    pub previous: Vec<SecretString>,
    /// PBKDF2 iterations for passphrases; at least [`MIN_PBKDF2_ITERATIONS`].
    pub iterations: u32,
}

/// What one configured value turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// A Fernet key given as base64.
    FernetKey,
    /// A key derived from a passphrase.
    Passphrase,
}

impl VaultConfig {
    /// A configuration with one key or passphrase and the default iterations.
    pub fn new(key: SecretString) -> Self {
        Self {
            key,
            salt: None,
            previous: Vec::new(),
            iterations: DEFAULT_PBKDF2_ITERATIONS,
        }
    }

    /// Checks the configuration without deriving anything.
    pub fn validate(&self) -> Result<()> {
        if self.iterations < MIN_PBKDF2_ITERATIONS {
            return Err(Error::TooFewIterations {
                requested: self.iterations,
                minimum: MIN_PBKDF2_ITERATIONS,
            });
        }
        for (position, value) in std::iter::once(&self.key).chain(&self.previous).enumerate() {
            let which = if position == 0 {
                "the primary key".to_owned()
            } else {
                format!("previous key #{position}")
            };
            if value.expose_secret().trim().is_empty() {
                return Err(Error::Config(format!("{which} is empty")));
            }
            if Self::source_of(value) == KeySource::Passphrase && self.salt().is_none() {
                return Err(Error::Config(format!(
                    "{which} is not a Fernet key, so it is taken as a passphrase, and a passphrase needs a salt (CREDENTIAL_ENCRYPTION_SALT)"
                )));
            }
        }
        Ok(())
    }

    /// Whether a configured value is a Fernet key or a passphrase.
    pub fn source_of(value: &SecretString) -> KeySource {
        match FernetKey::from_base64(value.expose_secret()) {
            Ok(_) => KeySource::FernetKey,
            Err(_) => KeySource::Passphrase,
        }
    }

    /// Validates, derives the keys once, and builds the ring.
    pub fn build(&self) -> Result<KeyRing> {
        self.validate()?;
        let primary = self.key_from(&self.key)?;
        let previous = self
            .previous
            .iter()
            .map(|value| self.key_from(value))
            .collect::<Result<Vec<_>>>()?;
        Ok(KeyRing::with_previous(primary, previous))
    }

    fn salt(&self) -> Option<&str> {
        self.salt
            .as_ref()
            .map(|salt| salt.expose_secret())
            .filter(|salt| !salt.is_empty())
    }

    fn key_from(&self, value: &SecretString) -> Result<FernetKey> {
        if let Ok(key) = FernetKey::from_base64(value.expose_secret()) {
            return Ok(key);
        }
        let salt = self.salt().ok_or(Error::SaltRequired)?;
        FernetKey::derive(value, salt.as_bytes(), self.iterations)
    }
}
