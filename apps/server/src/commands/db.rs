//! `tenantlink migrate` and `tenantlink status`: the database and what is synced in it.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use tenantlink_store::Db;

use crate::config;

/// Opens the database named by `DATABASE_URL` and applies pending migrations.
pub(crate) async fn open() -> anyhow::Result<Db> {
    let config = config::database_from_env()?;
    let db = Db::connect(&config).await.with_context(|| {
        format!(
            "cannot open the database at {} (check {})",
            tenantlink_store::redact_url(&config.url),
            config::DATABASE_VAR
        )
    })?;
    db.migrate().await.context("cannot apply migrations")?;
    Ok(db)
}

pub(crate) async fn migrate() -> anyhow::Result<ExitCode> {
    let config = config::database_from_env()?;
    let db = Db::connect(&config).await.with_context(|| {
        format!(
            "cannot open the database at {}",
            tenantlink_store::redact_url(&config.url)
        )
    })?;
    let applied = db.migrate().await.context("cannot apply migrations")?;
    let mut out = std::io::stdout().lock();
    if applied.is_empty() {
        writeln!(out, "database is up to date ({:?})", db.backend())?;
    } else {
        for version in &applied {
            writeln!(out, "applied {version}")?;
        }
        writeln!(
            out,
            "applied {} migration(s) ({:?})",
            applied.len(),
            db.backend()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn status(json: bool) -> anyhow::Result<ExitCode> {
    let db = open().await?;
    let mut rows = Vec::new();
    for org in db.organizations().await? {
        for conn in db.connections(&org.id).await? {
            let counts = db.counts(&conn.id).await?;
            let runs = db.runs(&conn.id, 1).await?;
            let cursors = db.cursors(&conn.id).await?;
            rows.push(serde_json::json!({
                "organization": org.name,
                "connection_id": conn.id,
                "tenant_id": conn.tenant_id,
                "client_id": conn.client_id,
                "status": conn.status,
                "last_error": conn.last_error,
                "secret_key_id": conn.secret_key_id,
                "secret_expires_at": conn.secret_expires_at,
                "missing_permissions": conn.missing_permissions.split_whitespace().collect::<Vec<_>>(),
                "counts": counts,
                "last_run": runs.first().map(|r| serde_json::json!({
                    "id": r.id, "type": r.sync_type, "status": r.status,
                    "started_at": r.started_at, "finished_at": r.finished_at,
                })),
                "resources": cursors.iter().map(|c| serde_json::json!({
                    "resource": c.resource,
                    "round": c.round,
                    "in_progress": c.next_link.is_some(),
                    "incremental_ready": c.delta_link.is_some() || c.time_cursor.is_some(),
                    "updated_at": c.updated_at,
                })).collect::<Vec<_>>(),
            }));
        }
    }
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        writeln!(
            out,
            "no connections yet: `tenantlink connect --tenant-id … --client-id …` adds one"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    for row in &rows {
        let s = |k: &str| row[k].as_str().unwrap_or("-").to_owned();
        writeln!(
            out,
            "{}  {}  tenant {}  app {}  [{}]",
            s("organization"),
            s("connection_id"),
            s("tenant_id"),
            s("client_id"),
            s("status")
        )?;
        let c = &row["counts"];
        writeln!(
            out,
            "  users {}  groups {}  memberships {}  devices {}  sign-ins {}  audits {}  alerts {}",
            c["users"],
            c["groups"],
            c["group_members"],
            c["devices"],
            c["sign_ins"],
            c["directory_audits"],
            c["alerts"]
        )?;
        match row["last_run"].as_object() {
            Some(run) => writeln!(
                out,
                "  last run: {} {} started {}",
                run["type"].as_str().unwrap_or("-"),
                run["status"].as_str().unwrap_or("-"),
                run["started_at"].as_str().unwrap_or("-")
            )?,
            None => writeln!(
                out,
                "  never synced: `tenantlink sync` runs a first full sync"
            )?,
        }
        let missing = row["missing_permissions"].as_array().map_or(0, Vec::len);
        if missing > 0 {
            writeln!(out, "  missing permissions: {}", row["missing_permissions"])?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
