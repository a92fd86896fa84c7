//! Interoperability with another standard Fernet implementation: pyca `cryptography`,
//! pinned in `python/requirements.txt` and installed by `cargo xtask pyenv`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tenantlink_vault::{
    DEFAULT_PBKDF2_ITERATIONS, ExposeSecret, FernetKey, KeyRing, SecretString, VaultConfig,
};

const SCRIPT: &str = r#"
import base64, json, sys
from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

req = json.load(sys.stdin)
out = {}
old, new = Fernet(req["old_key"]), Fernet(req["new_key"])

# Ours -> pyca
out["rust_plain"] = new.decrypt(req["rust_token"], ttl=3600).decode()
out["rust_rotated_plain"] = new.decrypt(req["rust_rotated"]).decode()
out["rust_rotated_ts"] = new.extract_timestamp(req["rust_rotated"])

# pyca -> ours
out["py_token"] = new.encrypt(req["plain"].encode()).decode()
out["py_old_token"] = old.encrypt_at_time(req["plain"].encode(), req["old_ts"]).decode()
out["py_rotated"] = MultiFernet([new, old]).rotate(out["py_old_token"]).decode()

# Passphrase-derived keys, as the platform tenantlink replaces derived them
kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=req["salt"].encode(),
                 iterations=req["iterations"])
derived = base64.urlsafe_b64encode(kdf.derive(req["passphrase"].encode()))
out["derived_key"] = derived.decode()
out["py_derived_token"] = Fernet(derived).encrypt(req["plain"].encode()).decode()
out["rust_derived_plain"] = Fernet(derived).decrypt(req["rust_derived_token"]).decode()
json.dump(out, sys.stdout)
"#;

fn python() -> PathBuf {
    std::env::var_os("TENANTLINK_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python"),
        PathBuf::from,
    )
}

fn run_pyca(request: &Value) -> Value {
    let python = python();
    let mut child = Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); run `cargo xtask pyenv` (or `cargo xtask ci`) first",
                python.display()
            )
        });
    // If Python fails early it closes stdin; the exit status below then reports its stderr.
    if let Err(err) = child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
    {
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing stdin: {err}"
        );
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "pyca script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn tokens_keys_and_rotation_interoperate_with_pyca_both_ways() {
    let plain = "client secret ✓ 0123456789 ~!@#";
    let passphrase = "the old platform's passphrase";
    let salt = "tenantlink-deployment-salt";
    let old = FernetKey::generate().unwrap();
    let new = FernetKey::generate().unwrap();
    let old_ring = KeyRing::new(old.clone());
    let ring = KeyRing::with_previous(new.clone(), [old.clone()]);
    let old_ts = 1_700_000_000u64;

    let mut derived_config = VaultConfig::new(SecretString::from(passphrase));
    derived_config.salt = Some(SecretString::from(salt));
    let derived_ring = derived_config.build().unwrap();

    let old_token = old_ring.encrypt_at_time(plain.as_bytes(), old_ts).unwrap();
    let request = json!({
        "old_key": old.to_base64().expose_secret(),
        "new_key": new.to_base64().expose_secret(),
        "plain": plain,
        "old_ts": old_ts,
        "rust_token": ring.encrypt(plain.as_bytes()).unwrap(),
        "rust_rotated": ring.rotate(&old_token).unwrap().token,
        "passphrase": passphrase,
        "salt": salt,
        "iterations": DEFAULT_PBKDF2_ITERATIONS,
        "rust_derived_token": derived_ring.encrypt(plain.as_bytes()).unwrap(),
    });
    let out = run_pyca(&request);

    // Ours -> pyca: a fresh token, and a rotated one that kept its timestamp.
    assert_eq!(out["rust_plain"], plain);
    assert_eq!(out["rust_rotated_plain"], plain);
    assert_eq!(out["rust_rotated_ts"], old_ts);

    // pyca -> ours.
    let opened = ring.decrypt(out["py_token"].as_str().unwrap()).unwrap();
    assert_eq!(opened.plaintext.expose_secret(), plain.as_bytes());
    assert_eq!(&opened.key_id, new.id());
    let opened_old = ring.decrypt(out["py_old_token"].as_str().unwrap()).unwrap();
    assert_eq!(&opened_old.key_id, old.id());
    assert_eq!(opened_old.timestamp, old_ts);
    let rotated_by_pyca = KeyRing::new(new.clone())
        .decrypt(out["py_rotated"].as_str().unwrap())
        .unwrap();
    assert_eq!(rotated_by_pyca.plaintext.expose_secret(), plain.as_bytes());
    assert_eq!(rotated_by_pyca.timestamp, old_ts);

    // The same passphrase, salt and iterations give the same key in both.
    assert_eq!(
        out["derived_key"].as_str().unwrap(),
        derived_ring.primary().to_base64().expose_secret()
    );
    assert_eq!(out["rust_derived_plain"], plain);
    let from_pyca = derived_ring
        .decrypt(out["py_derived_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(from_pyca.plaintext.expose_secret(), plain.as_bytes());
}
