//! `tenantlink vault`: key generation, encrypt, decrypt, rotate and self-test on stdin/stdout.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tenantlink_vault::{ExposeSecret as _, FernetKey, self_test};
use zeroize::Zeroizing;

use crate::cli::VaultCommand;
use crate::config;

pub(crate) fn run(command: VaultCommand) -> anyhow::Result<ExitCode> {
    match command {
        VaultCommand::GenerateKey => generate_key(),
        VaultCommand::Encrypt { raw } => encrypt(raw),
        VaultCommand::Decrypt { ttl, raw } => decrypt(ttl, raw),
        VaultCommand::Rotate => rotate(),
        VaultCommand::SelfTest => run_self_test(),
        VaultCommand::Rewrap { batch } => super::runtime()?.block_on(rewrap(batch)),
    }
}

fn generate_key() -> anyhow::Result<ExitCode> {
    let key = FernetKey::generate()?;
    write_stdout(format!("{}\n", key.to_base64().expose_secret()).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn encrypt(raw: bool) -> anyhow::Result<ExitCode> {
    let ring = config::vault_from_env()?.build()?;
    let mut input = read_stdin()?;
    if !raw {
        strip_one_newline(&mut input);
    }
    if input.is_empty() {
        bail!(
            "stdin is empty: pipe the secret in, for example `printf %s \"$SECRET\" | tenantlink vault encrypt`"
        );
    }
    let token = ring.encrypt(&input)?;
    write_stdout(format!("{token}\n").as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn decrypt(ttl: Option<u64>, raw: bool) -> anyhow::Result<ExitCode> {
    let ring = config::vault_from_env()?.build()?;
    let input = read_stdin()?;
    let token = std::str::from_utf8(&input)
        .context("the token on stdin is not text")?
        .trim();
    if token.is_empty() {
        bail!("stdin is empty: pipe one token in");
    }
    let opened = match ttl {
        Some(ttl) => ring.decrypt_with_ttl(token, Duration::from_secs(ttl)),
        None => ring.decrypt(token),
    }
    .context("cannot decrypt the token")?;
    let mut out = Zeroizing::new(opened.plaintext.expose_secret().to_vec());
    if !raw {
        out.push(b'\n');
    }
    write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn rotate() -> anyhow::Result<ExitCode> {
    let ring = config::vault_from_env()?.build()?;
    let input = read_stdin()?;
    let text = std::str::from_utf8(&input).context("the tokens on stdin are not text")?;
    let mut output = String::with_capacity(text.len() + text.len() / 8);
    let mut failures = Vec::new();
    let (mut rotated, mut from_older) = (0usize, 0usize);
    for (number, line) in text.lines().enumerate() {
        let token = line.trim();
        if token.is_empty() {
            output.push('\n');
            continue;
        }
        match ring.rotate(token) {
            Ok(done) => {
                rotated += 1;
                if &done.from != ring.primary_id() {
                    from_older += 1;
                }
                output.push_str(&done.token);
                output.push('\n');
            }
            Err(err) => failures.push(format!("line {}: {err}", number + 1)),
        }
    }
    if !failures.is_empty() {
        let mut stderr = std::io::stderr().lock();
        for failure in &failures {
            writeln!(stderr, "{failure}")?;
        }
        bail!(
            "{} of {} tokens could not be rotated; nothing was printed",
            failures.len(),
            failures.len() + rotated
        );
    }
    write_stdout(output.as_bytes())?;
    writeln!(
        std::io::stderr().lock(),
        "rotated {rotated} token(s) to key {} ({from_older} were under an older key)",
        ring.primary_id()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn run_self_test() -> anyhow::Result<ExitCode> {
    let config = config::vault_from_env()?;
    let report = self_test(&config);
    let mut out = String::new();
    for check in &report.checks {
        let mark = if check.passed { "ok  " } else { "FAIL" };
        out.push_str(&format!("{mark} {:<17} {}\n", check.name, check.detail));
    }
    let verdict = if report.passed() {
        "vault self-test passed"
    } else {
        "vault self-test FAILED"
    };
    out.push_str(verdict);
    out.push('\n');
    write_stdout(out.as_bytes())?;
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `vault rewrap`: every stored secret and token under the primary key.
async fn rewrap(batch: i64) -> anyhow::Result<ExitCode> {
    let ring = config::vault_from_env()?.build()?;
    let db = super::db::open().await?;
    let report = tenantlink_sync::credentials::rewrap(&db, &ring, batch, |done| {
        let _ = writeln!(std::io::stderr().lock(), "re-encrypted {done} so far");
    })
    .await
    .context("rewrap stopped (rows done so far keep their new ciphertext; run it again)")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "re-encrypted {} secret(s) under key {}",
        report.rewrapped,
        ring.primary_id()
    )?;
    if report.changed_meanwhile > 0 {
        writeln!(
            out,
            "{} changed while rewrapping and were left as written",
            report.changed_meanwhile
        )?;
    }
    for (key, count) in &report.per_key {
        let note = if key == ring.primary_id().as_str() {
            " (primary)"
        } else {
            ""
        };
        writeln!(out, "key {key}{note}: {count} row(s)")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn read_stdin() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut input = Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .read_to_end(&mut input)
        .context("cannot read stdin")?;
    Ok(input)
}

fn strip_one_newline(input: &mut Vec<u8>) {
    if input.last() == Some(&b'\n') {
        input.pop();
        if input.last() == Some(&b'\r') {
            input.pop();
        }
    }
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).context("cannot write stdout")?;
    stdout.flush().context("cannot write stdout")?;
    Ok(())
}
