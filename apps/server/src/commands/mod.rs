//! What each subcommand does.

mod audit;
mod connect;
mod db;
mod demo;
mod serve;
mod sync;
mod vault;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Vault(command) => vault::run(command),
        Command::Audit(command) => runtime()?.block_on(audit::run(command)),
        Command::Migrate => runtime()?.block_on(db::migrate()),
        Command::Serve => runtime()?.block_on(serve::serve()),
        Command::Demo => runtime()?.block_on(demo::demo()),
        Command::Status { json } => runtime()?.block_on(db::status(json)),
        Command::Connect {
            tenant_id,
            client_id,
            organization,
            secret_expires,
        } => runtime()?.block_on(connect::connect(
            tenant_id,
            client_id,
            organization,
            secret_expires,
        )),
        Command::Sync { demo: true, .. } => runtime()?.block_on(sync::demo()),
        Command::Sync {
            sync_type,
            connection,
            json,
            ..
        } => runtime()?.block_on(sync::sync(sync_type, connection, json)),
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()?)
}

/// Threads for blocking work: SQLite runs every statement on one (its pool has at most 4
/// connections), and DNS lookups. Tokio's default (512) let a sync spread over a dozen
/// threads, each with a malloc arena of its own that keeps what it freed.
const BLOCKING_THREADS: usize = 4;
