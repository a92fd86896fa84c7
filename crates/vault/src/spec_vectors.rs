//! The Fernet specification's test vectors (generate, verify, invalid), read from the
//! `cryptography_vectors` package that `cargo xtask pyenv` installs from PyPI.

use std::path::PathBuf;
use std::process::Command;

use secrecy::ExposeSecret as _;
use serde_json::Value;

use crate::{Error, FernetKey, KeyRing, token};

/// The pinned Python that has `cryptography_vectors`: `TENANTLINK_PYTHON`, or the venv that
/// `cargo xtask pyenv` makes under the workspace's `target/`.
fn python() -> PathBuf {
    std::env::var_os("TENANTLINK_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python"),
        PathBuf::from,
    )
}

fn vectors(name: &str) -> Vec<Value> {
    let python = python();
    let output = Command::new(&python)
        .args([
            "-c",
            "import cryptography_vectors, os; print(os.path.dirname(cryptography_vectors.__file__))",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); run `cargo xtask pyenv` (or `cargo xtask ci`) first",
                python.display()
            )
        });
    assert!(
        output.status.success(),
        "cryptography_vectors is not installed for {}; run `cargo xtask pyenv`",
        python.display()
    );
    let dir = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    let path = dir.join("fernet").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let parsed: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(!parsed.is_empty(), "{} has no vectors", path.display());
    parsed
}

fn unix(rfc3339: &Value) -> u64 {
    let parsed = chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().unwrap()).unwrap();
    u64::try_from(parsed.timestamp()).unwrap()
}

fn ring(vector: &Value) -> KeyRing {
    KeyRing::new(FernetKey::from_base64(vector["secret"].as_str().unwrap()).unwrap())
}

#[test]
fn generate_vectors_are_reproduced_byte_for_byte() {
    for vector in vectors("generate") {
        let iv: Vec<u8> = vector["iv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
            .collect();
        let iv: [u8; 16] = iv.try_into().unwrap();
        let ring = ring(&vector);
        let token = token::seal(
            ring.primary(),
            vector["src"].as_str().unwrap().as_bytes(),
            unix(&vector["now"]),
            &iv,
        );
        assert_eq!(token, vector["token"].as_str().unwrap());
    }
}

#[test]
fn verify_vectors_decrypt() {
    for vector in vectors("verify") {
        let ring = ring(&vector);
        let ttl = vector["ttl_sec"].as_u64();
        let now = unix(&vector["now"]);
        let opened = ring
            .decrypt_at_time(vector["token"].as_str().unwrap(), ttl, now)
            .unwrap();
        assert_eq!(
            opened.plaintext.expose_secret(),
            vector["src"].as_str().unwrap().as_bytes()
        );
    }
}

#[test]
fn invalid_vectors_are_rejected_with_the_right_reason() {
    let invalid = vectors("invalid");
    assert!(invalid.len() >= 8);
    for vector in invalid {
        let desc = vector["desc"].as_str().unwrap();
        let ring = ring(&vector);
        let err = ring
            .decrypt_at_time(
                vector["token"].as_str().unwrap(),
                vector["ttl_sec"].as_u64(),
                unix(&vector["now"]),
            )
            .expect_err(desc);
        let expected = match desc {
            "incorrect mac" => matches!(err, Error::WrongKeyOrTampered { .. }),
            "too short" => matches!(err, Error::TokenTooShort { .. }),
            "invalid base64" => err == Error::TokenNotBase64,
            "payload size not multiple of block size" => {
                matches!(err, Error::CiphertextLength { .. })
            }
            "payload padding error" | "incorrect IV (causes padding error)" => {
                err == Error::BadPadding
            }
            "far-future TS (unacceptable clock skew)" => matches!(err, Error::FromFuture { .. }),
            "expired TTL" => matches!(err, Error::Expired { .. }),
            other => panic!("an invalid vector this test does not know: {other:?} ({err})"),
        };
        assert!(expected, "{desc}: got {err:?}");
        assert!(!err.to_string().contains(vector["token"].as_str().unwrap()));
    }
}
