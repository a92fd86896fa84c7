//! `cargo xtask bench sync`: the real `tenantlink` binary syncs a seeded emulator tenant
//! (10,000 and 100,000 users) into PostgreSQL and SQLite, then syncs incrementally after 1%
//! of the tenant changed. Prints rows/s, wall time and the sync process's peak memory.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::{cargo, run};

pub(crate) struct Measured {
    pub(crate) rows: u64,
    pub(crate) wall: Duration,
    peak_mib: f64,
    status: String,
    /// CPU seconds of the sync process while it ran.
    sync_cpu: f64,
    /// CPU seconds of the emulator over the same time.
    emulator_cpu: f64,
    /// CPU seconds of the whole machine over the same time (all cores, every process:
    /// the database's, the emulator's and the sync's).
    machine_cpu: f64,
}

/// The emulator, killed on drop.
pub(crate) struct EmulatorProcess {
    child: Child,
    pub(crate) https_url: String,
    pub(crate) ca_path: String,
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_emulator(bin: &Path, users: usize, dir: &Path) -> Result<EmulatorProcess> {
    let ca = dir.join("emulator-ca.pem");
    let mut child = Command::new(bin)
        .args([
            "--https-port",
            "0",
            "--http-port",
            "0",
            "--tenants",
            "1",
            "--json",
        ])
        .args(["--size", &users.to_string()])
        .arg("--ca-path")
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start tenantlink-emulator")?;
    let stdout = child.stdout.take().context("emulator stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let described: Value = serde_json::from_str(&line).context("emulator --json line")?;
    let tenant = &described["tenants"][0];
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_owned)
            .context("emulator description")
    };
    Ok(EmulatorProcess {
        https_url: text(&described["https_url"])?,
        ca_path: text(&described["ca_path"])?,
        tenant_id: text(&tenant["tenant_id"])?,
        client_id: text(&tenant["connector_app"]["client_id"])?,
        client_secret: text(&tenant["connector_app"]["client_secret"])?,
        child,
    })
}

/// Clock ticks per second of `/proc`'s CPU times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// User and system CPU seconds of process `pid` so far.
fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / TICKS_PER_SECOND)
}

/// CPU seconds the machine has spent busy (all cores; neither idle nor waiting for IO).
fn machine_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((ticks.iter().sum::<u64>() - idle) as f64 / TICKS_PER_SECOND)
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `tenantlink sync --json` against `emulator`, sampling its peak RSS (VmHWM) until it
/// exits, and the CPU time it, the emulator and the machine spent meanwhile.
pub(crate) fn measure_sync(
    tenantlink: &Path,
    env: &[(String, String)],
    emulator: &EmulatorProcess,
    sync_type: &str,
) -> Result<Measured> {
    let started = Instant::now();
    let machine_before = machine_cpu().unwrap_or(0.0);
    let emulator_before = process_cpu(emulator.child.id()).unwrap_or(0.0);
    let mut child = Command::new(tenantlink)
        .args(["sync", "--type", sync_type, "--json"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start tenantlink sync")?;
    let pid = child.id();
    let (mut peak, mut sync_cpu) = (0, 0.0);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(kib) = status_kib(pid, "VmHWM:") {
            peak = peak.max(kib);
        }
        // The last reading before it exits: at most one 5 ms poll short.
        sync_cpu = process_cpu(pid).unwrap_or(sync_cpu);
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = started.elapsed();
    let machine_cpu = machine_cpu().unwrap_or(0.0) - machine_before;
    let emulator_cpu = process_cpu(emulator.child.id()).unwrap_or(0.0) - emulator_before;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().context("stdout")?, &mut out)?;
    if !status.success() && status.code() != Some(2) {
        // The report (stdout) says which resource failed and why.
        bail!(
            "tenantlink sync --type {sync_type} failed ({status}): {}",
            out.trim()
        );
    }
    let report: Value = serde_json::from_str(out.trim()).context("the sync's JSON report")?;
    Ok(Measured {
        rows: report["rows"].as_u64().unwrap_or(0),
        wall,
        peak_mib: peak as f64 / 1024.0,
        status: report["status"].as_str().unwrap_or("?").to_owned(),
        sync_cpu,
        emulator_cpu,
        machine_cpu,
    })
}

fn churn(emulator: &EmulatorProcess, fraction: f64) -> Result<Value> {
    let url = format!(
        "{}/_emulator/tenants/{}/churn",
        emulator.https_url, emulator.tenant_id
    );
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert", &emulator.ca_path, "-H"])
        .arg("content-type: application/json")
        .args([
            "-d",
            &format!("{{\"fraction\": {fraction}, \"seed\": 11}}"),
            &url,
        ])
        .output()
        .context("curl (the bench uses it to change the emulator's tenant)")?;
    if !out.status.success() {
        bail!("churn failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

pub(crate) fn psql(admin_url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .args([admin_url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .context("psql (the bench uses it to create its PostgreSQL database)")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Builds the release `tenantlink` and `tenantlink-emulator`; returns their directory.
pub(crate) fn build_release(root: &Path) -> Result<PathBuf> {
    run(cargo(root).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "tenantlink-server",
        "-p",
        "tenantlink-emulator",
        "--bins",
    ]))?;
    Ok(root.join("target").join("release"))
}

/// The PostgreSQL server the benches use (`TENANTLINK_TEST_DATABASE_URL`, else local).
pub(crate) fn admin_url() -> String {
    std::env::var("TENANTLINK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Drops and creates database `name` on `admin_url`'s server; returns its URL.
pub(crate) fn fresh_database(admin_url: &str, name: &str) -> Result<String> {
    psql(
        admin_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )?;
    psql(admin_url, &format!("CREATE DATABASE {name}"))?;
    let (base, _) = admin_url.rsplit_once('/').context("database URL")?;
    Ok(format!("{base}/{name}"))
}

/// A new vault key from `tenantlink vault generate-key`.
pub(crate) fn generate_key(tenantlink: &Path) -> Result<String> {
    let out = Command::new(tenantlink)
        .args(["vault", "generate-key"])
        .output()?;
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// `tenantlink connect` of the emulator's tenant (secret on stdin), with `extra` arguments.
pub(crate) fn connect(
    tenantlink: &Path,
    env: &[(String, String)],
    emulator: &EmulatorProcess,
    extra: &[&str],
) -> Result<()> {
    let mut connect = Command::new(tenantlink)
        .args(["connect", "--tenant-id", &emulator.tenant_id])
        .args(["--client-id", &emulator.client_id])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    connect
        .stdin
        .take()
        .context("stdin")?
        .write_all(emulator.client_secret.as_bytes())?;
    if !connect.wait()?.success() {
        bail!("tenantlink connect failed");
    }
    Ok(())
}

pub(crate) fn bench_sync(root: &Path) -> Result<()> {
    let release = build_release(root)?;
    let (tenantlink, emulator_bin) = (
        release.join("tenantlink"),
        release.join("tenantlink-emulator"),
    );
    let admin_url = admin_url();
    let work: PathBuf = root.join("target").join("bench-sync");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let key = generate_key(&tenantlink)?;

    let mut lines = Vec::new();
    for users in [10_000usize, 100_000] {
        for backend in ["postgres", "sqlite"] {
            eprintln!("==> {users} users into {backend}");
            let dir = work.join(format!("{users}-{backend}"));
            std::fs::create_dir_all(&dir)?;
            let emulator = start_emulator(&emulator_bin, users, &dir)?;
            let database_url = if backend == "postgres" {
                fresh_database(&admin_url, &format!("tl_bench_{users}"))?
            } else {
                format!("sqlite://{}", dir.join("bench.db").display())
            };
            let env: Vec<(String, String)> = vec![
                ("DATABASE_URL".into(), database_url),
                ("CREDENTIAL_ENCRYPTION_KEY".into(), key.clone()),
                ("TENANTLINK_CLOUD".into(), emulator.https_url.clone()),
                ("TENANTLINK_CA_FILE".into(), emulator.ca_path.clone()),
            ];
            connect(&tenantlink, &env, &emulator, &[])?;
            if backend == "postgres" {
                // The runs before left WAL behind: a checkpoint they would have caused falls
                // here, not in the middle of this one.
                psql(&admin_url, "CHECKPOINT")?;
            }
            let full = measure_sync(&tenantlink, &env, &emulator, "full")?;
            let changed = churn(&emulator, 0.01)?;
            let incremental = measure_sync(&tenantlink, &env, &emulator, "incremental")?;
            for (phase, m) in [("full", &full), ("incremental", &incremental)] {
                // What is neither the sync nor the emulator is, on a quiet machine, the
                // database (PostgreSQL's processes; SQLite runs inside the sync).
                let rest = (m.machine_cpu - m.sync_cpu - m.emulator_cpu).max(0.0);
                let line = format!(
                    "{users:>7} users  {backend:<8}  {phase:<11}  {:>9} rows  {:>7.2} s  {:>9.0} rows/s  peak {:>6.1} MiB  {}  CPU s: sync {:.1} emulator {:.1} rest {:.1} of {:.1}",
                    m.rows,
                    m.wall.as_secs_f64(),
                    m.rows as f64 / m.wall.as_secs_f64(),
                    m.peak_mib,
                    m.status,
                    m.sync_cpu,
                    m.emulator_cpu,
                    rest,
                    m.machine_cpu,
                );
                eprintln!("    {line}");
                lines.push(line);
            }
            eprintln!(
                "    (1% churn before the incremental sync: {} changes)",
                changed
                    .as_object()
                    .map_or(0, |o| o.values().filter_map(Value::as_u64).sum::<u64>())
            );
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nsync bench (wall time of the real `tenantlink sync` process, emulator in its own process;\n\
         CPU seconds of the sync, the emulator, the rest of the machine (the database), and all):"
    )?;
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
