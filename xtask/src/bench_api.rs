//! `cargo xtask bench api`: requests per second and p50/p99 latency of the HTTP API on a
//! 100,000-user tenant synced into PostgreSQL: a paged users listing and a name search,
//! each at a fixed 500 requests/s from `oha` (crates.io; installed on first use).

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::bench_sync::{
    admin_url, build_release, connect, fresh_database, generate_key, measure_sync, start_emulator,
};
use crate::{cargo, run};

const USERS: usize = 100_000;
const RATE: u32 = 500;
const SECONDS: u32 = 20;
const ADMIN_KEY: &str = "7f3e9a1c5b2d8046af13c9e7d5b1c2d3e4f5a6b7";

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `oha` from crates.io, installed into `target/tools` the first time.
fn oha(root: &Path) -> Result<PathBuf> {
    if let Ok(path) = which("oha") {
        return Ok(path);
    }
    let tools = root.join("target/tools");
    let bin = tools.join("bin/oha");
    if !bin.exists() {
        eprintln!("==> installing oha (the load generator) from crates.io into target/tools");
        run(cargo(root)
            .args(["install", "oha", "--locked", "--root"])
            .arg(&tools))?;
    }
    Ok(bin)
}

fn which(name: &str) -> Result<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()?;
    if out.status.success() {
        return Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()));
    }
    bail!("{name} not on PATH")
}

fn curl_json(args: &[&str]) -> Result<Value> {
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body"])
        .args(args)
        .output()
        .context("curl")?;
    if !out.status.success() {
        bail!(
            "curl {}: {}",
            args.last().unwrap_or(&""),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// One load run: `RATE` requests/s for `SECONDS` s on `url`.
fn load(oha: &Path, url: &str, key: &str) -> Result<(f64, f64, f64, f64)> {
    let out = Command::new(oha)
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "--latency-correction",
        ])
        .args([
            "-z",
            &format!("{SECONDS}s"),
            "-q",
            &RATE.to_string(),
            "-c",
            "32",
        ])
        .args(["-H", &format!("Authorization: Bearer {key}"), url])
        .output()
        .context("oha")?;
    if !out.status.success() {
        bail!("oha failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("oha's JSON")?;
    let ms = |p: &str| v["latencyPercentiles"][p].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let ok = v["statusCodeDistribution"]["200"].as_f64().unwrap_or(0.0);
    let total: f64 = v["statusCodeDistribution"]
        .as_object()
        .map_or(0.0, |m| m.values().filter_map(Value::as_f64).sum());
    Ok((
        v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        ms("p50"),
        ms("p99"),
        if total > 0.0 { ok / total } else { 0.0 },
    ))
}

pub(crate) fn bench_api(root: &Path) -> Result<()> {
    let oha = oha(root)?;
    let release = build_release(root)?;
    let tenantlink = release.join("tenantlink");
    let work = root.join("target/bench-api");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let database_url = fresh_database(&admin_url(), "tl_bench_api")?;
    let key = generate_key(&tenantlink)?;

    eprintln!("==> seeding a {USERS}-user tenant and syncing it into PostgreSQL");
    let emulator = start_emulator(&release.join("tenantlink-emulator"), USERS, &work)?;
    let env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), database_url),
        ("CREDENTIAL_ENCRYPTION_KEY".into(), key),
        ("TENANTLINK_CLOUD".into(), emulator.https_url.clone()),
        ("TENANTLINK_CA_FILE".into(), emulator.ca_path.clone()),
        ("TENANTLINK_ADMIN_KEY".into(), ADMIN_KEY.into()),
        ("TENANTLINK_WORKERS".into(), "0".into()),
        ("TENANTLINK_SYNC_INTERVAL_SECS".into(), "0".into()),
        ("TENANTLINK_RATE_LIMIT_PER_KEY".into(), "100000".into()),
        ("TENANTLINK_RATE_LIMIT_PER_ORG".into(), "100000".into()),
        ("PORT".into(), "0".into()),
        (
            "RUST_LOG".into(),
            "warn,tenantlink::commands::serve=info".into(),
        ),
    ];
    connect(&tenantlink, &env, &emulator, &["--organization", "bench"])?;
    let synced = measure_sync(&tenantlink, &env, &emulator, "full")?;
    eprintln!(
        "    synced {} rows in {:.1} s",
        synced.rows,
        synced.wall.as_secs_f64()
    );

    let mut child = Command::new(&tenantlink)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("stderr")?;
    let server = ServerProcess(child);
    let mut address = None;
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["fields"]["message"] == "tenantlink serving"
        {
            address = v["fields"]["address"].as_str().map(str::to_owned);
            break;
        }
    }
    let url = format!("http://{}", address.context("the server did not start")?);
    let started = Instant::now();
    while Command::new("curl")
        .args(["-sf", &format!("{url}/ready")])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the server never became ready");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let admin = format!("Authorization: Bearer {ADMIN_KEY}");
    let orgs = curl_json(&["-H", &admin, &format!("{url}/v1/organizations")])?;
    let org = orgs["items"]
        .as_array()
        .and_then(|items| items.iter().find(|o| o["name"] == "bench"))
        .and_then(|o| o["id"].as_str())
        .context("the bench organization")?
        .to_owned();
    let issued = curl_json(&[
        "-H",
        &admin,
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"name":"bench"}"#,
        &format!("{url}/v1/organizations/{org}/api-keys"),
    ])?;
    let api_key = issued["key"].as_str().context("key")?.to_owned();
    let auth = format!("Authorization: Bearer {api_key}");
    let connections = curl_json(&["-H", &auth, &format!("{url}/v1/connections")])?;
    let connection = connections["items"][0]["id"]
        .as_str()
        .context("the connection")?
        .to_owned();
    let users = format!("{url}/v1/connections/{connection}/users");
    // A page in the middle of the listing (a real client pages with cursors), and a search
    // for the first three letters of some user's name.
    let first = curl_json(&["-H", &auth, &format!("{users}?limit=100")])?;
    let cursor = first["next_cursor"]
        .as_str()
        .context("a next cursor")?
        .to_owned();
    let name = first["items"][37]["display_name"]
        .as_str()
        .context("a user's name")?
        .to_lowercase();
    let prefix: String = name.chars().take(3).collect();
    let letter: String = name.chars().take(1).collect();
    let cases = [
        (
            "users, page of 100",
            format!("{users}?limit=100&cursor={cursor}"),
        ),
        ("users, search", format!("{users}?limit=25&search={prefix}")),
        // One letter: a tenth or more of the users match; a page costs the same.
        (
            "users, search (1 letter)",
            format!("{users}?limit=25&search={letter}"),
        ),
    ];
    let mut lines = Vec::new();
    for (what, target) in &cases {
        eprintln!("==> {what}: {RATE} requests/s for {SECONDS} s");
        let (rps, p50, p99, ok) = load(&oha, target, &api_key)?;
        let line = format!(
            "{what:<24} {rps:>7.0} req/s  p50 {p50:>6.2} ms  p99 {p99:>6.2} ms  {:.1}% 200  (target: p99 < 20 ms at {RATE} req/s)",
            ok * 100.0
        );
        eprintln!("    {line}");
        lines.push(line);
    }
    drop(server);
    drop(emulator);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\napi bench ({USERS} users in PostgreSQL, release build, load from oha on the same 2 cores):"
    )?;
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
