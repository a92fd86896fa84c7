//! `cargo xtask bench emulator`: how long a 100,000-user tenant takes to seed and how much
//! memory it needs, then how many users per second the emulator serves in full 999-user
//! pages over loopback (HTTP and HTTPS), following `@odata.nextLink` to the end.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantlink_emulator::{Emulator, EmulatorConfig, TenantSize};

/// A memory figure of this process from /proc/self/status (Linux), in MiB.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with(field))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn list_all_users(
    client: &reqwest::Client,
    base: &str,
    token: &str,
) -> (usize, usize, Duration) {
    let started = Instant::now();
    let mut url = format!("{base}/v1.0/users?$top=999");
    let (mut users, mut pages) = (0usize, 0usize);
    loop {
        let res = client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .expect("page");
        assert!(res.status().is_success(), "page failed: {}", res.status());
        let body: Value = res.json().await.expect("JSON page");
        users += body["value"].as_array().map_or(0, Vec::len);
        pages += 1;
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    (users, pages, started.elapsed())
}

#[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
fn main() {
    let size = TenantSize::LARGE;
    println!(
        "tenantlink-emulator benchmark: {} users, {} groups (~{} memberships), {} devices, {} sign-ins",
        size.users,
        size.groups,
        size.groups * size.members_per_group,
        size.devices,
        size.sign_ins
    );
    let base_rss = status_mib("VmRSS:");
    let started = Instant::now();
    let world = tenantlink_emulator::seed::world(1, 1, size, chrono::Utc::now());
    let seed_time = started.elapsed();
    let memberships: usize = world.tenants[0]
        .dir
        .groups
        .iter()
        .map(|g| g.members.len())
        .sum();
    println!(
        "seed: {:.2} s, {memberships} memberships, peak RSS {:.0} MiB (process baseline {:.0} MiB)",
        seed_time.as_secs_f64(),
        status_mib("VmHWM:"),
        base_rss
    );
    drop(world);

    let started = Instant::now();
    let emulator = Emulator::start(EmulatorConfig {
        tenants: 1,
        size,
        workers: 2,
        ..EmulatorConfig::default()
    })
    .expect("emulator");
    println!(
        "start (seed + signing key + CA + bind): {:.2} s, peak RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        status_mib("VmHWM:")
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).expect("CA");
        let client = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .expect("client");
        let tenant = &emulator.tenants()[0];
        let minted: Value = client
            .post(format!(
                "{}/_emulator/tenants/{}/tokens",
                emulator.https_url(),
                tenant.tenant_id
            ))
            .json(&json!({"client_id": tenant.connector_app.client_id}))
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("token JSON");
        let token = minted["access_token"]
            .as_str()
            .expect("access token")
            .to_owned();
        for (label, base) in [
            ("http", emulator.http_url()),
            ("https", emulator.https_url()),
        ] {
            // One warm-up pass, then the measured one.
            list_all_users(&client, base, &token).await;
            let (users, pages, took) = list_all_users(&client, base, &token).await;
            println!(
                "serve /users over {label}: {users} users in {pages} pages, {:.2} s, {:.0} users/s",
                took.as_secs_f64(),
                users as f64 / took.as_secs_f64()
            );
        }
    });
    emulator.stop();
}
