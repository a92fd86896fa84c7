//! Unit tests of the key ring: round trips, tampering, time limits, rotation and secrecy.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use secrecy::{ExposeSecret as _, SecretString};

use crate::ring::now_secs;
use crate::{Error, FernetKey, KeyRing, VaultConfig, self_test};

fn ring() -> KeyRing {
    KeyRing::new(FernetKey::generate().unwrap())
}

fn flip(token: &str, position: usize) -> String {
    let mut bytes = URL_SAFE.decode(token).unwrap();
    bytes[position] ^= 0x80;
    URL_SAFE.encode(bytes)
}

#[test]
fn round_trip_of_many_sizes() {
    let ring = ring();
    for size in [0, 1, 15, 16, 17, 64, 1024, 100_000] {
        let plaintext: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let token = ring.encrypt(&plaintext).unwrap();
        let opened = ring.decrypt(&token).unwrap();
        assert_eq!(opened.plaintext.expose_secret(), plaintext.as_slice());
        assert_eq!(&opened.key_id, ring.primary_id());
        assert!(opened.timestamp.abs_diff(now_secs()) <= 2);
    }
}

#[test]
fn tokens_are_randomized() {
    let ring = ring();
    assert_ne!(
        ring.encrypt(b"same").unwrap(),
        ring.encrypt(b"same").unwrap()
    );
}

#[test]
fn every_altered_region_is_rejected() {
    let ring = ring();
    let token = ring.encrypt(b"client secret value").unwrap();
    let len = URL_SAFE.decode(&token).unwrap().len();
    // version byte
    assert_eq!(
        ring.decrypt(&flip(&token, 0)).unwrap_err(),
        Error::UnsupportedVersion { version: 0x00 }
    );
    // timestamp, IV, ciphertext, HMAC
    for position in [1, 8, 9, 24, 25, len - 33, len - 32, len - 1] {
        assert_eq!(
            ring.decrypt(&flip(&token, position)).unwrap_err(),
            Error::WrongKeyOrTampered { keys_tried: 1 },
            "byte {position}"
        );
    }
    // truncated
    let bytes = URL_SAFE.decode(&token).unwrap();
    assert_eq!(
        ring.decrypt(&URL_SAFE.encode(&bytes[..40])).unwrap_err(),
        Error::TokenTooShort { len: 40 }
    );
    assert_eq!(
        ring.decrypt("this is not a token!").unwrap_err(),
        Error::TokenNotBase64
    );
}

#[test]
fn wrong_key_is_reported_with_keys_tried() {
    let writer = ring();
    let reader = KeyRing::with_previous(
        FernetKey::generate().unwrap(),
        [FernetKey::generate().unwrap()],
    );
    let token = writer.encrypt(b"x").unwrap();
    assert_eq!(
        reader.decrypt(&token).unwrap_err(),
        Error::WrongKeyOrTampered { keys_tried: 2 }
    );
}

#[test]
fn ttl_and_clock_skew() {
    let ring = ring();
    let now = now_secs();
    let token = ring.encrypt_at_time(b"x", now - 100).unwrap();
    assert!(ring.decrypt_at_time(&token, Some(100), now).is_ok());
    assert_eq!(
        ring.decrypt_at_time(&token, Some(99), now).unwrap_err(),
        Error::Expired {
            age_secs: 100,
            ttl_secs: 99
        }
    );
    assert!(
        ring.decrypt_with_ttl(&token, std::time::Duration::from_secs(3600))
            .is_ok()
    );
    let ahead = ring.encrypt_at_time(b"x", now + 61).unwrap();
    assert_eq!(
        ring.decrypt_at_time(&ahead, None, now).unwrap_err(),
        Error::FromFuture {
            ahead_secs: 61,
            max_skew_secs: 60
        }
    );
    let within_skew = ring.encrypt_at_time(b"x", now + 60).unwrap();
    assert!(ring.decrypt_at_time(&within_skew, None, now).is_ok());
}

#[test]
fn rotation_moves_to_primary_and_keeps_timestamp() {
    let old = FernetKey::generate().unwrap();
    let new = FernetKey::generate().unwrap();
    let before = KeyRing::new(old.clone());
    let after = KeyRing::with_previous(new.clone(), [old.clone()]);
    let stamp = now_secs() - 86_400;
    let token = before.encrypt_at_time(b"secret", stamp).unwrap();

    assert_eq!(after.key_id_of(&token), Some(old.id()));
    let opened = after.decrypt(&token).unwrap();
    assert_eq!(&opened.key_id, old.id());

    let rotated = after.rotate(&token).unwrap();
    assert_eq!(&rotated.from, old.id());
    assert_eq!(after.key_id_of(&rotated.token), Some(new.id()));
    let reopened = KeyRing::new(new).decrypt(&rotated.token).unwrap();
    assert_eq!(reopened.timestamp, stamp);
    assert_eq!(reopened.plaintext.expose_secret(), b"secret");
    // Rotating a token already under the primary is harmless.
    assert_eq!(
        &after.rotate(&rotated.token).unwrap().from,
        after.primary_id()
    );
    // The old ring alone can no longer read it.
    assert!(before.decrypt(&rotated.token).is_err());
}

#[test]
fn duplicate_previous_keys_are_dropped() {
    let key = FernetKey::generate().unwrap();
    let ring = KeyRing::with_previous(key.clone(), [key.clone(), key]);
    assert_eq!(ring.key_ids().count(), 1);
}

#[test]
fn config_takes_keys_and_passphrases() {
    let key = FernetKey::generate().unwrap();
    let ring = VaultConfig::new(key.to_base64()).build().unwrap();
    assert_eq!(ring.primary_id(), key.id());

    let mut config = VaultConfig::new(SecretString::from("a long enough passphrase"));
    let err = config.build().unwrap_err();
    assert!(
        err.to_string().contains("CREDENTIAL_ENCRYPTION_SALT"),
        "{err}"
    );
    config.salt = Some(SecretString::from("tenantlink-salt"));
    config.previous = vec![key.to_base64()];
    let ring = config.build().unwrap();
    assert_eq!(ring.key_ids().count(), 2);
    let derived = FernetKey::derive(&config.key, b"tenantlink-salt", config.iterations).unwrap();
    assert_eq!(ring.primary_id(), derived.id());

    config.iterations = 1_000;
    assert!(matches!(
        config.validate(),
        Err(Error::TooFewIterations { .. })
    ));
    let empty = VaultConfig::new(SecretString::from("  "));
    assert!(empty.validate().unwrap_err().to_string().contains("empty"));
}

#[test]
fn errors_and_debug_never_show_secrets() {
    let passphrase = "hunter2-passphrase-value";
    let mut config = VaultConfig::new(SecretString::from(passphrase));
    config.salt = Some(SecretString::from("salt-value-xyz"));
    let ring = config.build().unwrap();
    let plaintext = "client-secret-abc123";
    let token = ring.encrypt(plaintext.as_bytes()).unwrap();
    let key_b64 = ring.primary().to_base64().expose_secret().to_owned();

    let mut outputs = vec![
        format!("{config:?}"),
        format!("{ring:?}"),
        format!("{:?}", ring.primary()),
        format!("{:?}", ring.decrypt(&token).unwrap()),
        format!("{:?}", ring.rotate(&token).unwrap().from),
    ];
    let bad = flip(&token, 30);
    for err in [
        ring.decrypt(&bad).unwrap_err(),
        KeyRing::new(FernetKey::generate().unwrap())
            .decrypt(&token)
            .unwrap_err(),
        FernetKey::from_base64(&key_b64[..40]).unwrap_err(),
        VaultConfig::new(SecretString::from(passphrase))
            .build()
            .unwrap_err(),
    ] {
        outputs.push(err.to_string());
        outputs.push(format!("{err:?}"));
    }
    for output in outputs {
        for secret in [
            passphrase,
            "salt-value-xyz",
            plaintext,
            &key_b64,
            &key_b64[..40],
            &token,
            &bad,
        ] {
            assert!(!output.contains(secret), "{output:?} shows a secret");
        }
    }
}

#[test]
fn self_test_passes_with_key_and_passphrase() {
    let key = FernetKey::generate().unwrap();
    let report = self_test(&VaultConfig::new(key.to_base64()));
    assert!(report.passed(), "{report:?}");

    let mut config = VaultConfig::new(SecretString::from("a passphrase for the test"));
    config.salt = Some(SecretString::from("salt"));
    config.previous = vec![FernetKey::generate().unwrap().to_base64()];
    let report = self_test(&config);
    assert!(report.passed(), "{report:?}");
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "derivation" && c.detail.contains("100000"))
    );
}

#[test]
fn self_test_fails_on_bad_configuration() {
    let report = self_test(&VaultConfig::new(SecretString::from(
        "passphrase without salt",
    )));
    assert!(!report.passed());
    assert_eq!(report.checks.len(), 1);
}
