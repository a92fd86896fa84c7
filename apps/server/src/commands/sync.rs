//! `tenantlink sync`: run the sync engine for stored connections with progress bars and a
//! summary table; `--demo` runs the whole job on embedded defaults (the emulator in-process
//! and an SQLite file).

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tenantlink_graph::GraphClientOptions;
use tenantlink_store::{Connection, Db};
use tenantlink_sync::credentials;
use tenantlink_sync::{
    Completeness, ProgressEvent, Resource, RunReport, SyncEngine, SyncOptions, SyncType,
};
use tenantlink_vault::KeyRing;

use crate::config::{self, CloudSettings};

use super::demo::DEMO_DATABASE;

pub(crate) async fn sync(
    sync_type: SyncType,
    connection: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let ring = config::vault_from_env()?.build()?;
    let cloud = config::cloud_from_env()?;
    let db = super::db::open().await?;
    let connections = match connection {
        Some(id) => {
            let all = db.all_connections().await?;
            match all.into_iter().find(|c| c.id == id) {
                Some(c) => vec![c],
                None => bail!("no connection {id}: `tenantlink status` lists them"),
            }
        }
        None => db.all_connections().await?,
    };
    if connections.is_empty() {
        bail!(
            "no connections to sync: `tenantlink connect` adds one (or try `tenantlink sync --demo`)"
        );
    }
    // One connection that cannot sync (already running, refused sign-in) does not stop the
    // others; it makes the exit status a failure.
    let mut worst = Completeness::Complete;
    for connection in &connections {
        match sync_one(&db, &ring, &cloud, connection, sync_type, json).await {
            Ok(report) => worst = worse(worst, report.status),
            Err(err) => {
                let mut line = format!("error: {err}");
                for cause in err.chain().skip(1) {
                    line.push_str(&format!(": {cause}"));
                }
                writeln!(std::io::stderr().lock(), "{line}")?;
                worst = Completeness::Failed;
            }
        }
    }
    Ok(exit_code(worst))
}

fn worse(a: Completeness, b: Completeness) -> Completeness {
    let rank = |c: Completeness| match c {
        Completeness::Complete => 0,
        Completeness::Partial => 1,
        Completeness::Failed => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn exit_code(status: Completeness) -> ExitCode {
    match status {
        Completeness::Complete => ExitCode::SUCCESS,
        // Partial data is stored and marked; the summary says what is missing.
        Completeness::Partial => ExitCode::from(2),
        Completeness::Failed => ExitCode::FAILURE,
    }
}

pub(crate) async fn sync_one(
    db: &Db,
    ring: &KeyRing,
    cloud: &CloudSettings,
    connection: &Connection,
    sync_type: SyncType,
    json: bool,
) -> anyhow::Result<RunReport> {
    let identity = cloud.identity_client()?;
    let graph = credentials::graph_client(
        &identity,
        ring,
        connection,
        GraphClientOptions {
            base_url: cloud.graph_url.clone(),
            audience: cloud.graph_audience.clone(),
            extra_root_certificates: cloud.root_certificates_pem.clone(),
            // The largest pages each endpoint allows (clamped per endpoint): fewest requests.
            page_size: Some(999),
            ..GraphClientOptions::default()
        },
    )
    .with_context(|| format!("cannot sign in as connection {}", connection.id))?;
    let engine = SyncEngine::new(db.clone(), graph, connection.id.clone());
    let options = SyncOptions {
        sync_type,
        ..SyncOptions::default()
    };
    if !json {
        writeln!(
            std::io::stderr().lock(),
            "syncing tenant {} ({}, {})",
            connection.tenant_id,
            connection.id,
            sync_type.as_str()
        )?;
    }
    let ui = Ui::new(json);
    let report = engine
        .run(&options, &|event| ui.event(event))
        .await
        .with_context(|| format!("the sync of connection {} stopped", connection.id))?;
    ui.done();
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        out.write_all(summary(&report).as_bytes())?;
    }
    Ok(report)
}

/// Progress bars, one per resource, on stderr (plain lines when stderr is not a terminal).
struct Ui {
    multi: MultiProgress,
    bars: Mutex<HashMap<Resource, ProgressBar>>,
    quiet: bool,
    plain: bool,
}

impl Ui {
    fn new(quiet: bool) -> Self {
        let plain = !std::io::stderr().is_terminal();
        let target = if quiet || plain {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(8)
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            quiet,
            plain,
        }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        if self.plain {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }

    fn event(&self, event: &ProgressEvent) {
        let mut bars = self
            .bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            ProgressEvent::RunStarted { run_id, resumed } => {
                if *resumed {
                    self.line(&format!(
                        "resuming interrupted run {run_id} from its last committed pages"
                    ));
                }
            }
            ProgressEvent::ResourceStarted { resource, mode } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:<17} {msg} [{elapsed}]")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(resource.as_str());
                bar.set_message(format!("{} ·", mode.as_str()));
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.insert(*resource, bar);
            }
            ProgressEvent::Page {
                resource,
                pages,
                rows,
                rows_per_sec,
            } => {
                if let Some(bar) = bars.get(resource) {
                    bar.set_message(format!(
                        "{pages} pages · {} rows · {}/s",
                        thousands(*rows),
                        thousands(*rows_per_sec as u64)
                    ));
                }
            }
            ProgressEvent::ResourceFinished(report) => {
                let text = format!(
                    "{} {} · {} rows · {} pages{}",
                    mark(report.status),
                    report.status.as_str(),
                    thousands(report.rows),
                    report.pages,
                    report
                        .reason
                        .as_deref()
                        .map(|r| format!(" · {r}"))
                        .unwrap_or_default()
                );
                match bars.get(&report.resource) {
                    Some(bar) if !self.plain && !self.quiet => bar.finish_with_message(text),
                    _ => self.line(&format!("{:<17} {text}", report.resource.as_str())),
                }
            }
            ProgressEvent::RunFinished(_) => {}
        }
    }

    fn done(&self) {
        let bars = self
            .bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for bar in bars.values() {
            if !bar.is_finished() {
                bar.finish();
            }
        }
    }
}

fn mark(status: Completeness) -> &'static str {
    match status {
        Completeness::Complete => "✔",
        Completeness::Partial => "◐",
        Completeness::Failed => "✘",
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The summary table of a run.
fn summary(report: &RunReport) -> String {
    let mut out = format!(
        "\n{:<17} {:<11} {:<9} {:>10} {:>7} {:>9} {:>8} {:>10} {:>9}  note\n",
        "resource", "mode", "status", "rows", "pages", "requests", "retries", "throttled", "time"
    );
    for r in &report.resources {
        let mut notes = Vec::new();
        if let Some(p) = &r.missing_permission {
            notes.push(format!("needs {p}"));
        }
        if let Some(reason) = &r.reason {
            notes.push(reason.clone());
        }
        if let Some(why) = &r.fell_back_to_full {
            notes.push(format!("fell back to a full round: {why}"));
        }
        if r.swept > 0 {
            notes.push(format!("{} stale rows swept", r.swept));
        }
        out.push_str(&format!(
            "{:<17} {:<11} {:<9} {:>10} {:>7} {:>9} {:>8} {:>9.1}s {:>8.1}s  {}\n",
            r.resource.as_str(),
            r.mode.as_str(),
            r.status.as_str(),
            thousands(r.rows),
            r.pages,
            r.requests,
            r.retries,
            r.throttled.as_secs_f64(),
            r.elapsed.as_secs_f64(),
            notes.join("; ")
        ));
    }
    let secs = report.elapsed.as_secs_f64().max(0.001);
    out.push_str(&format!(
        "\nrun {} {}{}: {} rows in {:.1}s ({}/s)\n",
        report.run_id,
        report.status.as_str(),
        if report.resumed { " (resumed)" } else { "" },
        thousands(report.rows),
        secs,
        thousands((report.rows as f64 / secs) as u64)
    ));
    out
}

/// `tenantlink sync --demo`: the emulator in-process with a seeded tenant, an SQLite file,
/// a connected tenant, a full sync and then an incremental one.
pub(crate) async fn demo() -> anyhow::Result<ExitCode> {
    let super::demo::DemoSetup {
        emulator,
        tenant,
        db,
        ring,
        cloud,
        connection,
        ..
    } = super::demo::setup().await?;
    let full = sync_one(&db, &ring, &cloud, &connection, SyncType::Full, false).await?;
    let churned = emulator
        .churn(&tenant.tenant_id, 0.01, 7)
        .context("the demo tenant is gone")?;
    writeln!(
        std::io::stderr().lock(),
        "\n{} changes in the tenant (1%: users updated, created, soft- and hard-deleted; groups; memberships; devices)\n\
         now an incremental sync: only what changed since",
        churned.total()
    )?;
    let incremental = sync_one(
        &db,
        &ring,
        &cloud,
        &connection,
        SyncType::Incremental,
        false,
    )
    .await?;
    let counts = db.counts(&connection.id).await?;
    writeln!(
        std::io::stdout().lock(),
        "\ndemo database {DEMO_DATABASE}: {} users, {} groups, {} memberships, {} devices, {} sign-ins, {} audits, {} alerts\n\
         `DATABASE_URL=sqlite://{DEMO_DATABASE} tenantlink status` shows it again.",
        counts.users,
        counts.groups,
        counts.group_members,
        counts.devices,
        counts.sign_ins,
        counts.directory_audits,
        counts.alerts
    )?;
    emulator.stop();
    Ok(exit_code(worse(full.status, incremental.status)))
}
