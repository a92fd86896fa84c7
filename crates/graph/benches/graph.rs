//! `cargo xtask bench graph`: users per second and peak memory listing a 100,000-user
//! tenant from the emulator through the connector (pages streamed, not kept), without and
//! with 10% of answers throttled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tenantlink_emulator::{Emulator, EmulatorConfig, TenantSize};
use tenantlink_graph::{GraphClient, GraphClientOptions, ListQuery, RetryPolicy};

/// A token minted once through the emulator's control API.
#[derive(Debug)]
struct MintedToken(String);

#[async_trait::async_trait]
impl TokenCredential for MintedToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.clone(),
            OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

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

/// Resets VmHWM to the current RSS (Linux `clear_refs` 5), so the peak is the listing's.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Run {
    users: usize,
    pages: usize,
    took: Duration,
    rss_before: f64,
    peak: f64,
}

async fn list(client: &GraphClient) -> Run {
    reset_peak();
    let rss_before = status_mib("VmRSS:");
    let started = Instant::now();
    let mut pages = client.list_users(&ListQuery::default());
    let (mut users, mut n) = (0, 0);
    while let Some(page) = pages.next().await {
        let page = page.expect("every page arrives");
        users += page.items.len();
        n += 1;
    }
    Run {
        users,
        pages: n,
        took: started.elapsed(),
        rss_before,
        peak: status_mib("VmHWM:"),
    }
}

#[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
fn main() {
    let size = TenantSize::LARGE;
    println!(
        "tenantlink-graph benchmark: listing {} users through GraphClient",
        size.users
    );
    let started = Instant::now();
    let emulator = Emulator::start(EmulatorConfig {
        tenants: 1,
        size,
        workers: 2,
        ..EmulatorConfig::default()
    })
    .expect("emulator");
    println!(
        "emulator started in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).expect("CA");
        let control = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .expect("client");
        let tenant = &emulator.tenants()[0];
        let minted: Value = control
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
        let token = minted["access_token"].as_str().expect("access token");
        let options = GraphClientOptions {
            base_url: emulator.graph_url(),
            extra_root_certificates: vec![emulator.ca_pem()],
            retry: RetryPolicy {
                max_retries: 20,
                budget: Duration::from_secs(300),
                ..RetryPolicy::default()
            },
            ..GraphClientOptions::default()
        };
        let faults = |body: Value| {
            let control = control.clone();
            let url = format!("{}/_emulator/faults", emulator.https_url());
            async move {
                let res = control.put(url).json(&body).send().await.expect("faults");
                assert!(res.status().is_success());
            }
        };
        for (label, rate) in [("no faults", 0.0), ("10% throttled (rate_429 0.1)", 0.1)] {
            faults(json!({"rate_429": rate})).await;
            let client = GraphClient::new(Arc::new(MintedToken(token.to_owned())), options.clone())
                .expect("client");
            if rate == 0.0 {
                list(&client).await; // warm-up
            }
            let client = GraphClient::new(Arc::new(MintedToken(token.to_owned())), options.clone())
                .expect("client");
            let run = list(&client).await;
            let stats = client.stats();
            println!(
                "{label}: {} users in {} pages, {:.2} s, {:.0} users/s; RSS {:.0} MiB before, peak {:.0} MiB during (+{:.1} MiB, emulator serving included); {} requests, {} throttled, {} retries, {:.1} s waiting",
                run.users,
                run.pages,
                run.took.as_secs_f64(),
                run.users as f64 / run.took.as_secs_f64(),
                run.rss_before,
                run.peak,
                run.peak - run.rss_before,
                stats.requests,
                stats.throttled,
                stats.retries,
                stats.waited.as_secs_f64()
            );
        }
    });
    emulator.stop();
}
