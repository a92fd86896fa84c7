//! End-to-end tests of `tenantlink vault` through the real binary: stdin in, stdout out,
//! exit codes, and no secret on any stream that is not meant to carry it.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;

const PASSPHRASE: &str = "cli test passphrase 7f3e";
const SALT: &str = "cli-test-salt";
const PLAINTEXT: &str = "tenant-client-secret~9QxYz";

fn tenantlink(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenantlink"));
    command
        .args(args)
        .env_remove("CREDENTIAL_ENCRYPTION_KEY")
        .env_remove("CREDENTIAL_ENCRYPTION_SALT")
        .env_remove("CREDENTIAL_ENCRYPTION_KEY_PREVIOUS")
        .env_remove("CREDENTIAL_ENCRYPTION_ITERATIONS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("run tenantlink");
    // A command that fails on its arguments exits without reading stdin; writing to it then
    // meets a closed pipe, which is fine. Any other write error is not.
    if let Err(err) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing stdin: {err}"
        );
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn generate_key() -> String {
    let out = tenantlink(&["vault", "generate-key"], &[], b"");
    assert!(out.status.success());
    text(&out.stdout).trim().to_owned()
}

fn assert_hidden(out: &Output, secrets: &[&str]) {
    for stream in [text(&out.stdout), text(&out.stderr)] {
        for secret in secrets {
            assert!(!stream.contains(secret), "a secret appeared in {stream:?}");
        }
    }
}

#[test]
fn generate_key_prints_a_fresh_fernet_key() {
    let a = generate_key();
    let b = generate_key();
    assert_ne!(a, b);
    assert_eq!(a.len(), 44);
    assert_eq!(URL_SAFE.decode(&a).unwrap().len(), 32);
}

#[test]
fn encrypt_then_decrypt_round_trips_with_a_key() {
    let key = generate_key();
    let env = [("CREDENTIAL_ENCRYPTION_KEY", key.as_str())];
    let enc = tenantlink(
        &["vault", "encrypt"],
        &env,
        format!("{PLAINTEXT}\n").as_bytes(),
    );
    assert!(enc.status.success(), "{}", text(&enc.stderr));
    assert_hidden(&enc, &[PLAINTEXT, &key]);
    let token = text(&enc.stdout);
    assert!(token.starts_with("gAAAAA"));

    let dec = tenantlink(&["vault", "decrypt"], &env, token.as_bytes());
    assert!(dec.status.success());
    assert_eq!(text(&dec.stdout), format!("{PLAINTEXT}\n"));
    assert!(dec.stderr.is_empty());

    let raw = tenantlink(
        &["vault", "decrypt", "--raw", "--ttl", "600"],
        &env,
        token.as_bytes(),
    );
    assert_eq!(raw.stdout, PLAINTEXT.as_bytes());
}

#[test]
fn passphrase_needs_a_salt_and_then_works() {
    let no_salt = tenantlink(
        &["vault", "encrypt"],
        &[("CREDENTIAL_ENCRYPTION_KEY", PASSPHRASE)],
        PLAINTEXT.as_bytes(),
    );
    assert_eq!(no_salt.status.code(), Some(1));
    let stderr = text(&no_salt.stderr);
    assert!(stderr.contains("CREDENTIAL_ENCRYPTION_SALT"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
    assert!(no_salt.stdout.is_empty());
    assert_hidden(&no_salt, &[PASSPHRASE, PLAINTEXT]);

    let env = [
        ("CREDENTIAL_ENCRYPTION_KEY", PASSPHRASE),
        ("CREDENTIAL_ENCRYPTION_SALT", SALT),
    ];
    let enc = tenantlink(&["vault", "encrypt"], &env, PLAINTEXT.as_bytes());
    assert!(enc.status.success());
    let dec = tenantlink(&["vault", "decrypt", "--raw"], &env, &enc.stdout);
    assert_eq!(dec.stdout, PLAINTEXT.as_bytes());
}

#[test]
fn a_bad_token_exits_non_zero_with_one_line_and_no_secret() {
    let key = generate_key();
    let env = [("CREDENTIAL_ENCRYPTION_KEY", key.as_str())];
    let enc = tenantlink(&["vault", "encrypt"], &env, PLAINTEXT.as_bytes());
    let token = text(&enc.stdout).trim().to_owned();
    let mut bytes = URL_SAFE.decode(&token).unwrap();
    bytes[40] ^= 1;
    let tampered = URL_SAFE.encode(&bytes);

    for (input, reason) in [
        (tampered.as_str(), "altered"),
        ("%%% not base64 %%%", "base64"),
        ("gAAAAAAdwJ6x", "too short"),
    ] {
        let out = tenantlink(&["vault", "decrypt"], &env, input.as_bytes());
        assert_eq!(out.status.code(), Some(1), "{input}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        assert!(out.stdout.is_empty());
        assert_hidden(&out, &[PLAINTEXT, &key, &token, &tampered]);
    }

    let other_key = generate_key();
    let out = tenantlink(
        &["vault", "decrypt"],
        &[("CREDENTIAL_ENCRYPTION_KEY", other_key.as_str())],
        token.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("another key"));
    assert_hidden(&out, &[PLAINTEXT, &key, &other_key, &token]);
}

#[test]
fn rotate_rewraps_every_line_or_prints_nothing() {
    let old = generate_key();
    let new = generate_key();
    let old_env = [("CREDENTIAL_ENCRYPTION_KEY", old.as_str())];
    let tokens: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|s| text(&tenantlink(&["vault", "encrypt"], &old_env, s.as_bytes()).stdout))
        .collect();
    let input = tokens.concat();
    let ring_env = [
        ("CREDENTIAL_ENCRYPTION_KEY", new.as_str()),
        ("CREDENTIAL_ENCRYPTION_KEY_PREVIOUS", old.as_str()),
    ];
    let out = tenantlink(&["vault", "rotate"], &ring_env, input.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("3 were under an older key"));
    let rotated = text(&out.stdout);
    let new_only = [("CREDENTIAL_ENCRYPTION_KEY", new.as_str())];
    for (line, expected) in rotated.lines().zip(["one", "two", "three"]) {
        let dec = tenantlink(&["vault", "decrypt", "--raw"], &new_only, line.as_bytes());
        assert_eq!(text(&dec.stdout), expected);
    }
    assert_eq!(rotated.lines().count(), 3);

    let broken = format!("{input}garbage\n");
    let out = tenantlink(&["vault", "rotate"], &ring_env, broken.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "nothing is printed when a line fails"
    );
    assert!(text(&out.stderr).contains("line 4"));
    assert_hidden(&out, &[&old, &new]);
}

#[test]
fn decrypt_with_an_expired_ttl_fails() {
    // A token written by the spec's generate vector's key in 1985 is far older than a day.
    let key = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
    let token = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
    let env = [("CREDENTIAL_ENCRYPTION_KEY", key)];
    let out = tenantlink(
        &["vault", "decrypt", "--ttl", "86400"],
        &env,
        token.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("expired"));
    let ok = tenantlink(&["vault", "decrypt"], &env, token.as_bytes());
    assert_eq!(text(&ok.stdout), "hello\n");
}

#[test]
fn self_test_reports_each_check() {
    let key = generate_key();
    let out = tenantlink(
        &["vault", "self-test"],
        &[
            ("CREDENTIAL_ENCRYPTION_KEY", PASSPHRASE),
            ("CREDENTIAL_ENCRYPTION_SALT", SALT),
            ("CREDENTIAL_ENCRYPTION_KEY_PREVIOUS", key.as_str()),
        ],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
    let report = text(&out.stdout);
    for check in [
        "round trip",
        "tamper detection",
        "ttl",
        "rotation",
        "derivation",
    ] {
        assert!(report.contains(&format!("ok   {check}")), "{report}");
    }
    assert!(report.contains("vault self-test passed"));
    assert_hidden(&out, &[PASSPHRASE, SALT, &key]);

    let missing = tenantlink(&["vault", "self-test"], &[], b"");
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("CREDENTIAL_ENCRYPTION_KEY is not set"));
}

#[test]
fn empty_input_and_bad_flags_are_clear_errors() {
    let key = generate_key();
    let env = [("CREDENTIAL_ENCRYPTION_KEY", key.as_str())];
    let out = tenantlink(&["vault", "encrypt"], &env, b"\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("stdin is empty"));
    let out = tenantlink(&["vault", "decrypt", "--ttl", "soon"], &env, b"x");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--ttl"));
}
