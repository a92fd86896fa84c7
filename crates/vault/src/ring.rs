//! The key ring: one primary key that encrypts, older keys that still decrypt, and rotation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretSlice;

use crate::error::{Error, Result};
use crate::key::{FernetKey, KeyId};
use crate::token;

/// A plaintext recovered from a token, with which key opened it and when it was written.
#[derive(Debug)]
pub struct Decrypted {
    /// The plaintext, kept secret (zeroized on drop, redacted in `Debug`).
    pub plaintext: SecretSlice<u8>,
    /// The key that verified and decrypted the token.
    pub key_id: KeyId,
    /// The token's timestamp, seconds since the Unix epoch.
    pub timestamp: u64,
}

/// The outcome of re-encrypting one token under the primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The token, now under the primary key, with its original timestamp.
    pub token: String,
    /// The key that had written it.
    pub from: KeyId,
}

/// A primary key that encrypts and older keys that still decrypt, tried in order.
///
/// `Debug` lists key identifiers only.
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Vec<FernetKey>,
}

impl KeyRing {
    /// A ring of one key.
    pub fn new(primary: FernetKey) -> Self {
        Self {
            keys: vec![primary],
        }
    }

    /// A ring with a primary key and older keys that still decrypt (newest first).
    pub fn with_previous(
        primary: FernetKey,
        previous: impl IntoIterator<Item = FernetKey>,
    ) -> Self {
        let mut keys = vec![primary];
        for key in previous {
            if !keys.iter().any(|k| k.id() == key.id()) {
                keys.push(key);
            }
        }
        Self { keys }
    }

    /// The key that encrypts.
    pub fn primary(&self) -> &FernetKey {
        &self.keys[0]
    }

    /// The primary key's identifier: what callers record beside a value they store.
    pub fn primary_id(&self) -> &KeyId {
        self.primary().id()
    }

    /// Every key of the ring, primary first.
    pub fn keys(&self) -> impl Iterator<Item = &FernetKey> {
        self.keys.iter()
    }

    /// Identifiers of every key in the ring, primary first.
    pub fn key_ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(FernetKey::id)
    }

    /// Encrypts under the primary key, stamped with the current time.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String> {
        self.encrypt_at_time(plaintext, now_secs())
    }

    /// Encrypts under the primary key with a given timestamp (seconds since the epoch).
    /// Meant for rotation and tests; normal writes use [`KeyRing::encrypt`].
    pub fn encrypt_at_time(&self, plaintext: &[u8], timestamp: u64) -> Result<String> {
        let mut iv = [0u8; 16];
        getrandom::getrandom(&mut iv).map_err(|_| Error::Random)?;
        Ok(token::seal(self.primary(), plaintext, timestamp, &iv))
    }

    /// Decrypts a token written under any key of the ring, with no age limit.
    pub fn decrypt(&self, token: &str) -> Result<Decrypted> {
        self.decrypt_at_time(token, None, now_secs())
    }

    /// Decrypts a token no older than `ttl` (whole seconds).
    pub fn decrypt_with_ttl(&self, token: &str, ttl: Duration) -> Result<Decrypted> {
        self.decrypt_at_time(token, Some(ttl.as_secs()), now_secs())
    }

    /// Decrypts as if the time were `now` (seconds since the epoch), with an optional TTL in
    /// seconds. For tests and replaying vectors; normal reads use [`KeyRing::decrypt`].
    pub fn decrypt_at_time(&self, token: &str, ttl: Option<u64>, now: u64) -> Result<Decrypted> {
        let token = token.trim();
        for key in &self.keys {
            if let Ok(plaintext) = key.fernet.decrypt_at_time(token, ttl, now) {
                return Ok(Decrypted {
                    plaintext: plaintext.into(),
                    key_id: key.id().clone(),
                    timestamp: token::timestamp(token).unwrap_or_default(),
                });
            }
        }
        Err(token::diagnose(token, self.keys.iter(), ttl, now))
    }

    /// Re-encrypts a token under the primary key, keeping its original timestamp (as
    /// pyca `MultiFernet.rotate` does), so TTL checks still see when it was first written.
    pub fn rotate(&self, token: &str) -> Result<Rotated> {
        let opened = self.decrypt(token)?;
        let token = {
            use secrecy::ExposeSecret as _;
            self.encrypt_at_time(opened.plaintext.expose_secret(), opened.timestamp)?
        };
        Ok(Rotated {
            token,
            from: opened.key_id,
        })
    }

    /// Which key of the ring verifies `token`, without decrypting it; `None` when none does.
    /// Use it to find values that still need rewrapping.
    pub fn key_id_of(&self, token: &str) -> Option<&KeyId> {
        token::verifying_key(token.trim(), self.keys.iter()).map(FernetKey::id)
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
