//! `tenantlink-emulator`: runs the emulator alone and prints how to reach it.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tenantlink_emulator::{Emulator, EmulatorConfig, TenantSize, ThrottleMode};

// The same allocator and settings as the `tenantlink` binary (see .cargo/config.toml).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// An offline emulator of Entra ID and Microsoft Graph with seeded synthetic tenants.
#[derive(Debug, Parser)]
#[command(name = "tenantlink-emulator", version, about)]
struct Args {
    /// HTTPS port (Entra ID, Graph, control API); 0 picks a free one.
    #[arg(long, default_value_t = 8443)]
    https_port: u16,
    /// HTTP port (Graph and the control API without TLS); 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    http_port: u16,
    /// Seed of the generated tenants and signing key.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of tenants.
    #[arg(long, default_value_t = 2)]
    tenants: usize,
    /// Tenant size: small, medium, large (100,000 users) or a number of users.
    #[arg(long, default_value = "medium", value_parser = parse_size)]
    size: TenantSize,
    /// Graph throttling: off, realistic or aggressive.
    #[arg(long, default_value = "off", value_parser = parse_throttle)]
    throttling: ThrottleMode,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime: u64,
    /// Where to write the CA certificate (PEM).
    #[arg(long)]
    ca_path: Option<PathBuf>,
    /// Print one JSON line describing the emulator instead of the readable summary.
    #[arg(long)]
    json: bool,
}

fn parse_size(s: &str) -> Result<TenantSize, String> {
    TenantSize::named(s).ok_or_else(|| {
        format!("`{s}` is not small, medium, large or a number of users (1 to 1000000)")
    })
}

fn parse_throttle(s: &str) -> Result<ThrottleMode, String> {
    ThrottleMode::named(s).ok_or_else(|| format!("`{s}` is not off, realistic or aggressive"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = EmulatorConfig {
        http_port: args.http_port,
        https_port: args.https_port,
        seed: args.seed,
        tenants: args.tenants,
        size: args.size,
        throttling: args.throttling,
        token_lifetime: Duration::from_secs(args.token_lifetime),
        ca_path: args.ca_path,
        ..EmulatorConfig::default()
    };
    let emulator = match Emulator::start(config) {
        Ok(emulator) => emulator,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let described = emulator.describe();
    let _ = if args.json {
        writeln!(out, "{described}")
    } else {
        writeln!(out, "{}", readable(&emulator))
    };
    let _ = out.flush();
    drop(out);
    wait_for_signal();
    emulator.stop();
    ExitCode::SUCCESS
}

fn readable(emulator: &Emulator) -> String {
    let mut s = format!(
        "tenantlink emulator is running\n\n  authority host (Entra ID)  {}\n  Graph v1.0                 {}\n  Graph v1.0 over HTTP       {}/v1.0\n  control API                {}/_emulator\n  CA certificate             {}\n",
        emulator.https_url(),
        emulator.graph_url(),
        emulator.http_url(),
        emulator.https_url(),
        emulator.ca_path().display()
    );
    for t in emulator.tenants() {
        s.push_str(&format!(
            "\n  tenant {} ({})\n    connector app  client id {}  secret {}\n    limited app    client id {}  secret {}\n    users          {}\n",
            t.tenant_id,
            t.domain,
            t.connector_app.client_id,
            t.connector_app.client_secret,
            t.limited_app.client_id,
            t.limited_app.client_secret,
            t.users.join(", ")
        ));
    }
    s.push_str("\nThese are synthetic test credentials. Press Ctrl-C to stop.");
    s
}

fn wait_for_signal() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a signal-waiting runtime");
    runtime.block_on(async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    });
}
