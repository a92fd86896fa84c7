//! The vault self-test: checks the configured keys end to end and reports each check.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use secrecy::ExposeSecret as _;

use crate::config::{KeySource, VaultConfig};
use crate::error::Error;
use crate::key::FernetKey;
use crate::ring::{KeyRing, now_secs};

/// One check of the self-test. Its detail never contains key material or plaintext.
#[derive(Debug, Clone)]
pub struct Check {
    /// Short name of the check.
    pub name: &'static str,
    /// Whether it passed.
    pub passed: bool,
    /// What was checked or what failed.
    pub detail: String,
}

/// The result of [`self_test`].
#[derive(Debug, Clone, Default)]
pub struct SelfTestReport {
    /// Every check, in the order run.
    pub checks: Vec<Check>,
}

impl SelfTestReport {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    fn record(&mut self, name: &'static str, outcome: Result<String, String>) {
        let (passed, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        self.checks.push(Check {
            name,
            passed,
            detail,
        });
    }
}

/// Checks derivation, round trip, tamper detection, TTL and rotation with the configured keys.
pub fn self_test(config: &VaultConfig) -> SelfTestReport {
    let mut report = SelfTestReport::default();
    let started = Instant::now();
    let ring = match config.build() {
        Ok(ring) => ring,
        Err(err) => {
            report.record("keys", Err(err.to_string()));
            return report;
        }
    };
    report.record("keys", Ok(describe_keys(config, &ring)));
    report.record("derivation", check_derivation(config, &ring, started));
    report.record("round trip", check_round_trip(&ring));
    report.record("tamper detection", check_tampering(&ring));
    report.record("ttl", check_ttl(&ring));
    report.record("rotation", check_rotation(&ring));
    report
}

fn describe_keys(config: &VaultConfig, ring: &KeyRing) -> String {
    let kind = |value| match VaultConfig::source_of(value) {
        KeySource::FernetKey => "Fernet key",
        KeySource::Passphrase => "passphrase",
    };
    let mut ids = ring.key_ids();
    let primary = ids.next().map(ToString::to_string).unwrap_or_default();
    let previous: Vec<String> = ids.map(ToString::to_string).collect();
    format!(
        "primary {primary} ({}), {} previous key(s){}",
        kind(&config.key),
        previous.len(),
        if previous.is_empty() {
            String::new()
        } else {
            format!(": {}", previous.join(", "))
        }
    )
}

fn check_derivation(
    config: &VaultConfig,
    ring: &KeyRing,
    started: Instant,
) -> Result<String, String> {
    if VaultConfig::source_of(&config.key) == KeySource::FernetKey {
        return Ok("primary is a Fernet key, nothing to derive".into());
    }
    let elapsed = started.elapsed();
    let salt = config
        .salt
        .as_ref()
        .map(|s| s.expose_secret())
        .unwrap_or("");
    let again = FernetKey::derive(&config.key, salt.as_bytes(), config.iterations)
        .map_err(|e| e.to_string())?;
    if again.id() != ring.primary_id() {
        return Err("deriving the same passphrase twice gave two different keys".into());
    }
    Ok(format!(
        "PBKDF2-HMAC-SHA256, {} iterations, deterministic, key ring built in {} ms",
        config.iterations,
        elapsed.as_millis()
    ))
}

fn check_round_trip(ring: &KeyRing) -> Result<String, String> {
    for size in [0usize, 1, 15, 16, 64, 1024] {
        let mut plaintext = vec![0u8; size];
        getrandom::getrandom(&mut plaintext).map_err(|_| Error::Random.to_string())?;
        let token = ring.encrypt(&plaintext).map_err(|e| e.to_string())?;
        let opened = ring.decrypt(&token).map_err(|e| e.to_string())?;
        if opened.plaintext.expose_secret() != plaintext.as_slice() {
            return Err(format!("a {size}-byte secret did not come back unchanged"));
        }
        if &opened.key_id != ring.primary_id() {
            return Err("a fresh token was not opened by the primary key".into());
        }
    }
    Ok("secrets of 0, 1, 15, 16, 64 and 1024 bytes come back unchanged".into())
}

fn check_tampering(ring: &KeyRing) -> Result<String, String> {
    let token = ring.encrypt(b"tamper check").map_err(|e| e.to_string())?;
    let bytes = URL_SAFE.decode(&token).map_err(|e| e.to_string())?;
    // timestamp, IV, ciphertext and HMAC: one flipped bit anywhere must be caught.
    let positions = [3, 12, 30, bytes.len() - 1];
    for position in positions {
        let mut altered = bytes.clone();
        altered[position] ^= 0x01;
        match ring.decrypt(&URL_SAFE.encode(&altered)) {
            Err(Error::WrongKeyOrTampered { .. }) => {}
            Err(other) => return Err(format!("byte {position} altered: wrong error: {other}")),
            Ok(_) => return Err(format!("byte {position} altered and still accepted")),
        }
    }
    let other = KeyRing::new(FernetKey::generate().map_err(|e| e.to_string())?);
    if other.decrypt(&token).is_ok() {
        return Err("a token opened under an unrelated key".into());
    }
    Ok("altered timestamp, IV, ciphertext and HMAC are rejected, and so is a foreign key".into())
}

fn check_ttl(ring: &KeyRing) -> Result<String, String> {
    let now = now_secs();
    let old = ring
        .encrypt_at_time(b"ttl check", now - 120)
        .map_err(|e| e.to_string())?;
    match ring.decrypt_at_time(&old, Some(60), now) {
        Err(Error::Expired { .. }) => {}
        other => return Err(format!("a 120 s old token with a 60 s TTL gave {other:?}")),
    }
    ring.decrypt_at_time(&old, Some(300), now)
        .map_err(|e| format!("a 120 s old token with a 300 s TTL failed: {e}"))?;
    let future = ring
        .encrypt_at_time(b"ttl check", now + 3600)
        .map_err(|e| e.to_string())?;
    match ring.decrypt_at_time(&future, None, now) {
        Err(Error::FromFuture { .. }) => {}
        other => return Err(format!("a token from an hour ahead gave {other:?}")),
    }
    Ok("expired and far-future tokens are rejected, fresh ones accepted".into())
}

fn check_rotation(ring: &KeyRing) -> Result<String, String> {
    let previous: Vec<FernetKey> = ring_keys(ring).skip(1).cloned().collect();
    let (keys, note) = if previous.is_empty() {
        let temporary = FernetKey::generate().map_err(|e| e.to_string())?;
        (
            vec![temporary],
            "no previous keys configured; checked with a temporary key",
        )
    } else {
        (previous, "every previous key")
    };
    let stamp = now_secs() - 3600;
    for old in keys {
        let writer = KeyRing::new(old.clone());
        let token = writer
            .encrypt_at_time(b"rotation check", stamp)
            .map_err(|e| e.to_string())?;
        let reader = KeyRing::with_previous(ring.primary().clone(), [old.clone()]);
        let rotated = reader.rotate(&token).map_err(|e| e.to_string())?;
        if &rotated.from != old.id() {
            return Err(format!(
                "rotation reported key {} as the writer",
                rotated.from
            ));
        }
        let opened = KeyRing::new(ring.primary().clone())
            .decrypt(&rotated.token)
            .map_err(|e| format!("the primary key cannot open a rotated token: {e}"))?;
        if opened.timestamp != stamp {
            return Err("rotation changed the token's timestamp".into());
        }
    }
    Ok(format!(
        "{note}: rewrapped under {}, timestamps kept",
        ring.primary_id()
    ))
}

fn ring_keys(ring: &KeyRing) -> impl Iterator<Item = &FernetKey> {
    ring.keys()
}
