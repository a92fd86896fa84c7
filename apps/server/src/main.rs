#![doc = include_str!("../README.md")]

mod app;
mod audit;
mod auth;
mod cli;
mod commands;
mod config;
mod dto;
mod error;
mod metrics;
mod openapi;
mod routes;
mod scheduler;
mod state;
#[cfg(test)]
mod testing;
mod worker;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // One line, the whole chain of causes; no error here ever carries a secret.
            let mut line = format!("error: {err}");
            for cause in err.chain().skip(1) {
                line.push_str(&format!(": {cause}"));
            }
            let _ = writeln!(std::io::stderr().lock(), "{line}");
            ExitCode::FAILURE
        }
    }
}
