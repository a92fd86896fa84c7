//! `cargo xtask`: the project's automation. `cargo xtask ci` runs what CI runs.

mod bench_api;
mod bench_sync;
mod checks;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

  ci                 everything CI runs: fmt, clippy, deny, docs, layering, migrations, tests
  test               the tests only (prepares the Python environment first)
  pyenv              create or update target/pyenv from python/requirements.txt
  check layering     fail on an internal dependency STYLE.md's table does not allow
  check migrations   fail when migrations/postgres and migrations/sqlite differ
  bench vault        encrypt/decrypt operations per second and key derivation time
  bench emulator     seed time and memory of a 100,000-user tenant; users/s served over loopback
  bench graph        users/s and peak memory listing 100,000 users through the Graph connector
  bench sync         full and 1%-changed incremental syncs of 10,000 and 100,000 users into
                     PostgreSQL and SQLite with the real binary: rows/s, wall time, peak memory,
                     CPU seconds of the sync, the emulator and the rest of the machine
  bench api          p50/p99 latency of a paged users listing and a search at 500 requests/s
                     on a 100,000-user tenant in PostgreSQL (load from oha, installed on use)
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let root = workspace_root();
    match args.as_slice() {
        ["ci"] => ci(&root),
        ["test"] => test(&root),
        ["pyenv"] => pyenv(&root).map(drop),
        ["check", "layering"] => checks::layering(&root),
        ["check", "migrations"] => checks::migrations(&root),
        ["bench", "vault"] => bench(&root, "tenantlink-vault", "vault"),
        ["bench", "emulator"] => bench(&root, "tenantlink-emulator", "emulator"),
        ["bench", "graph"] => bench(&root, "tenantlink-graph", "graph"),
        ["bench", "sync"] => bench_sync::bench_sync(&root),
        ["bench", "api"] => bench_api::bench_api(&root),
        ["help" | "--help" | "-h"] | [] => {
            eprint!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{}`\n\n{USAGE}", other.join(" ")),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs one step, timing it; fails with the step's name.
fn step(name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    eprintln!("==> {name}");
    let started = Instant::now();
    f().with_context(|| format!("step `{name}` failed"))?;
    eprintln!("    {name}: ok ({:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

fn cargo(root: &Path) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root);
    command
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} exited with {status}");
    }
    Ok(())
}

fn ci(root: &Path) -> Result<()> {
    step("fmt", || run(cargo(root).args(["fmt", "--all", "--check"])))?;
    step("clippy", || {
        run(cargo(root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    step("deny", || checks::deny(root))?;
    step("docs", || {
        run(cargo(root)
            .args(["doc", "--workspace", "--no-deps", "--locked"])
            .env("RUSTDOCFLAGS", "-D warnings"))
    })?;
    step("layering", || checks::layering(root))?;
    step("migrations", || checks::migrations(root))?;
    test(root)
}

fn test(root: &Path) -> Result<()> {
    let python = pyenv(root)?;
    step("tests", || {
        run(cargo(root)
            .args([
                "test",
                "--workspace",
                "--locked",
                "--lib",
                "--bins",
                "--tests",
            ])
            .env("TENANTLINK_PYTHON", &python))?;
        // Doc tests (the READMEs' examples) are not part of --all-targets.
        run(cargo(root)
            .args(["test", "--workspace", "--locked", "--doc"])
            .env("TENANTLINK_PYTHON", &python))
    })
}

/// Creates or refreshes `target/pyenv` from the pinned `python/requirements.txt`; returns its
/// interpreter. A stamp file holding the requirements skips pip when nothing changed.
fn pyenv(root: &Path) -> Result<PathBuf> {
    let requirements = root.join("python/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    let venv = root.join("target/pyenv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".requirements-installed");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    step("pyenv", || {
        if !python.exists() {
            let host = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
            run(Command::new(&host).args(["-m", "venv"]).arg(&venv))
                .with_context(|| format!("cannot create a venv with {host}"))?;
        }
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements))?;
        std::fs::write(&stamp, &wanted)?;
        Ok(())
    })?;
    Ok(python)
}

fn bench(root: &Path, package: &str, name: &str) -> Result<()> {
    run(cargo(root).args(["bench", "--locked", "-p", package, "--bench", name]))
}
