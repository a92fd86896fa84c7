//! `tenantlink audit verify`: checks the audit trail's hash chain (the work is in the store).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::AuditCommand;

pub(crate) async fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { batch } => verify(batch).await,
    }
}

async fn verify(batch: i64) -> anyhow::Result<ExitCode> {
    let db = super::db::open().await?;
    let result = db
        .verify_audit_chain(batch)
        .await
        .context("cannot read the audit trail")?;
    let mut out = std::io::stdout().lock();
    match result.first_broken {
        None => {
            writeln!(out, "audit chain intact: {} events", result.events_checked)?;
            Ok(ExitCode::SUCCESS)
        }
        Some((seq, reason)) => {
            writeln!(
                out,
                "audit chain broken at seq {seq}: {reason} ({} events before it are intact)",
                result.events_checked
            )?;
            Ok(ExitCode::FAILURE)
        }
    }
}
