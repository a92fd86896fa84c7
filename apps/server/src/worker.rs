//! Background sync workers: each claims a queued job under a lease, runs the sync engine
//! for it while renewing the lease and recording progress, then finishes the job or puts
//! it back with a backoff. A job whose worker died is claimed again once its lease expires
//! and its run goes on from the engine's checkpoints; on shutdown a worker stops its run
//! at the next page boundary and gives the job back at once.

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use tenantlink_graph::GraphClientOptions;
use tenantlink_store::SyncJob;
use tenantlink_sync::{
    Completeness, ProgressEvent, RunReport, SyncEngine, SyncOptions, SyncType, credentials,
};
use tokio::task::JoinHandle;

use crate::metrics::{ResourceLabels, RunLabels};
use crate::state::AppState;

/// Claims of a job before it fails for good.
pub(crate) const MAX_ATTEMPTS: i32 = 5;
/// The first retry's delay; each next one doubles.
const BACKOFF_BASE: Duration = Duration::from_secs(15);
/// The longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(10 * 60);
/// How often an idle worker looks for a job (plus up to as much again, at random).
const IDLE: Duration = Duration::from_secs(1);
/// How often progress is written at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Now, to the microsecond (what both databases keep).
pub(crate) fn now() -> NaiveDateTime {
    use chrono::{DurationRound as _, TimeDelta};
    let t = chrono::Utc::now().naive_utc();
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

fn after(t: NaiveDateTime, d: Duration) -> NaiveDateTime {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// A random duration in `[0, max)`.
pub(crate) fn jitter(max: Duration) -> Duration {
    let nanos = max.as_nanos().max(1);
    Duration::from_nanos((uuid::Uuid::new_v4().as_u128() % nanos) as u64)
}

/// The delay before claim `attempts + 1`: exponential, capped, with up to half again of
/// jitter so retries of many jobs spread out.
fn backoff(attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(0);
    let base = BACKOFF_BASE.saturating_mul(1 << exp).min(BACKOFF_MAX);
    base + jitter(base / 2)
}

/// Progress of a running job as stored in `sync_jobs.progress`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct JobProgress {
    /// Per resource.
    #[serde(default)]
    pub(crate) resources: BTreeMap<String, ResourceProgress>,
}

/// One resource's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ResourceProgress {
    /// `running`, or the resource's completeness once done.
    pub(crate) status: String,
    /// `full`, `incremental` or `resumed`.
    pub(crate) mode: String,
    /// Pages committed by this worker.
    pub(crate) pages: u64,
    /// Rows written by this worker.
    pub(crate) rows: u64,
}

/// How workers talk to Graph.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkerOptions {
    /// Items per Graph page (clamped per endpoint); the largest means fewest requests.
    pub(crate) page_size: u32,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self { page_size: 999 }
    }
}

/// What the progress callback (sync) hands to the side task (async).
#[derive(Default)]
struct Shared {
    /// Wakes the side task at once when the run id is known (a next worker needs it).
    started: Arc<tokio::sync::Notify>,
    run_id: Option<String>,
    progress: JobProgress,
    dirty: bool,
}

/// Starts `state.settings.workers` worker loops.
pub(crate) fn start(state: &AppState) -> Vec<JoinHandle<()>> {
    (0..state.settings.workers)
        .map(|i| {
            let state = state.clone();
            let owner = format!("{}-w{i}", state.instance_id);
            tokio::spawn(async move { work(state, owner, WorkerOptions::default()).await })
        })
        .collect()
}

/// One worker: claims and runs jobs until shutdown.
async fn work(state: AppState, owner: String, options: WorkerOptions) {
    let mut shutdown = state.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let pause = match run_next(&state, &owner, options).await {
            Ok(true) => continue,
            Ok(false) => IDLE + jitter(IDLE),
            Err(e) => {
                tracing::warn!(worker = %owner, error = %e, "could not claim a sync job");
                Duration::from_secs(5) + jitter(Duration::from_secs(5))
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Claims one due job and runs it to its end (finished, retried later or given back);
/// `false` when no job was due.
pub(crate) async fn run_next(
    state: &AppState,
    owner: &str,
    options: WorkerOptions,
) -> Result<bool, tenantlink_store::Error> {
    let at = now();
    let Some(job) = state
        .db
        .claim_job(owner, after(at, state.settings.lease), at)
        .await?
    else {
        return Ok(false);
    };
    tracing::info!(
        worker = %owner,
        job = %job.id,
        connection_id = %job.connection_id,
        sync_type = %job.sync_type,
        attempt = job.attempts,
        run_id = job.run_id.as_deref().unwrap_or(""),
        "sync job claimed"
    );
    let outcome = run_job(state, owner, &job, options).await;
    end_job(state, owner, &job, outcome).await?;
    Ok(true)
}

/// How a job's attempt ended.
enum Outcome {
    /// The engine finished the run.
    Finished(RunReport),
    /// Stopped for shutdown: the job goes back to the queue at once.
    Stopped,
    /// Another worker holds the job now (this one lost its lease).
    LeaseLost,
    /// Another run of the connection is live: wait for it, without counting an attempt.
    Wait(String),
    /// Worth another attempt later.
    Retry(String),
    /// No attempt can succeed until someone acts; says what to do.
    Fail(String),
}

async fn run_job(state: &AppState, owner: &str, job: &SyncJob, worker: WorkerOptions) -> Outcome {
    if job.attempts > MAX_ATTEMPTS {
        return Outcome::Fail(format!(
            "the workers running this sync stopped {} times without finishing it; check the \
             server logs, then ask for the sync again",
            job.attempts - 1
        ));
    }
    // The worker before finished the run but died before recording it: its report is the
    // job's result (the sync is not run twice).
    if let Some(run_id) = &job.run_id {
        match state.db.run(&job.organization_id, run_id).await {
            Ok(run) if run.status != "running" => {
                // (A run closed for another reason, superseded, does not say so.)
                if let Some(report) = parse_report(Some(&run.report))
                    && report.status.as_str() == run.status
                {
                    return Outcome::Finished(report);
                }
            }
            Ok(_) | Err(tenantlink_store::Error::NotFound { .. }) => {}
            Err(e) => return Outcome::Retry(format!("the database failed: {e}")),
        }
    }
    let Ok(sync_type) = SyncType::from_str(&job.sync_type) else {
        return Outcome::Fail(format!("unknown sync type {:?}", job.sync_type));
    };
    let connection = match state
        .db
        .connection(&job.organization_id, &job.connection_id)
        .await
    {
        Ok(c) => c,
        Err(tenantlink_store::Error::NotFound { .. }) => {
            return Outcome::Fail("the connection was deleted".into());
        }
        Err(e) => return Outcome::Retry(format!("the database failed: {e}")),
    };
    let graph = match credentials::graph_client(
        &state.identity,
        &state.ring,
        &connection,
        GraphClientOptions {
            base_url: state.cloud.graph_url.clone(),
            audience: state.cloud.graph_audience.clone(),
            extra_root_certificates: state.cloud.root_certificates_pem.clone(),
            page_size: Some(worker.page_size),
            ..GraphClientOptions::default()
        },
    ) {
        Ok(g) => g,
        Err(e @ (tenantlink_sync::Error::Invalid(_) | tenantlink_sync::Error::Vault(_))) => {
            return Outcome::Fail(format!(
                "cannot use the connection's stored credentials ({e}); connect the tenant \
                 again with a client secret"
            ));
        }
        Err(e) => return Outcome::Retry(format!("cannot sign in as the connection: {e}")),
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Mutex::new(Shared::default()));
    let lease_lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut side = AbortOnDrop(tokio::spawn(keep_alive(
        state.clone(),
        owner.to_owned(),
        job.id.clone(),
        shared.clone(),
        stop_tx,
        lease_lost.clone(),
    )));
    let engine = SyncEngine::new(state.db.clone(), graph, connection.id.clone())
        .with_stop(stop_rx)
        .taking_over(job.run_id.clone());
    let options = SyncOptions {
        sync_type,
        stale_after: state.settings.lease,
        ..SyncOptions::default()
    };
    let metrics = state.metrics.clone();
    let on_event = |event: &ProgressEvent| {
        let Ok(mut s) = shared.lock() else { return };
        match event {
            ProgressEvent::RunStarted { run_id, .. } => {
                s.run_id = Some(run_id.clone());
                s.dirty = true;
                s.started.notify_one();
            }
            ProgressEvent::ResourceStarted { resource, mode } => {
                s.progress.resources.insert(
                    resource.as_str().to_owned(),
                    ResourceProgress {
                        status: "running".into(),
                        mode: mode.as_str().into(),
                        pages: 0,
                        rows: 0,
                    },
                );
                s.dirty = true;
            }
            ProgressEvent::Page {
                resource,
                pages,
                rows,
                ..
            } => {
                if let Some(p) = s.progress.resources.get_mut(resource.as_str()) {
                    p.pages = *pages;
                    p.rows = *rows;
                }
                s.dirty = true;
            }
            ProgressEvent::ResourceFinished(r) => {
                // Counted here, by the process that did the work (a resumed run's report
                // also holds what the process before did).
                let labels = ResourceLabels {
                    resource: r.resource.as_str().to_owned(),
                };
                metrics.sync_rows.get_or_create(&labels).inc_by(r.rows);
                metrics
                    .sync_retries
                    .get_or_create(&labels)
                    .inc_by(r.retries);
                metrics
                    .sync_throttled_seconds
                    .get_or_create(&labels)
                    .inc_by(r.throttled.as_secs_f64());
                let entry = s
                    .progress
                    .resources
                    .entry(r.resource.as_str().to_owned())
                    .or_insert_with(|| ResourceProgress {
                        status: String::new(),
                        mode: r.mode.as_str().into(),
                        pages: 0,
                        rows: 0,
                    });
                entry.status = r.status.as_str().into();
                entry.pages = r.pages;
                entry.rows = r.rows;
                s.dirty = true;
            }
            ProgressEvent::RunFinished(_) => {}
        }
    };
    state.metrics.sync_running.inc();
    let result = engine.run(&options, &on_event).await;
    state.metrics.sync_running.dec();
    side.0.abort();
    let _ = (&mut side.0).await;
    if lease_lost.load(std::sync::atomic::Ordering::SeqCst) {
        return Outcome::LeaseLost;
    }
    // The last progress, and the run id a next worker takes up (always recorded, however
    // short the run).
    let (run_id, progress) = match shared.lock() {
        Ok(s) => (
            s.run_id.clone(),
            serde_json::to_string(&s.progress).unwrap_or_else(|_| "{}".into()),
        ),
        Err(_) => (None, "{}".into()),
    };
    let at = now();
    if let Some(run_id) = run_id
        && let Err(e) = state.db.set_job_run(&job.id, owner, &run_id, at).await
    {
        tracing::warn!(job = %job.id, error = %e, "could not record a sync job's run");
    }
    if let Err(e) = state
        .db
        .set_job_progress(&job.id, owner, &progress, at)
        .await
    {
        tracing::warn!(job = %job.id, error = %e, "could not record a sync job's progress");
    }
    match result {
        Ok(report) => Outcome::Finished(report),
        Err(tenantlink_sync::Error::Stopped { .. }) => Outcome::Stopped,
        // A live run (a silent one is taken over after `stale_after`, the lease): it ends,
        // so waiting costs no attempt.
        Err(e @ tenantlink_sync::Error::AlreadyRunning { .. }) => Outcome::Wait(e.to_string()),
        Err(tenantlink_sync::Error::Invalid(e)) => Outcome::Fail(e),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

/// Stops a task when dropped (the worker's future dropped mid-run must not leave a task
/// renewing its lease).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Beside a running job: renews the lease every third of it, writes progress at most once
/// a second, and tells the run to stop on shutdown or when the lease is lost.
async fn keep_alive(
    state: AppState,
    owner: String,
    job_id: String,
    shared: Arc<Mutex<Shared>>,
    stop: tokio::sync::watch::Sender<bool>,
    lease_lost: Arc<std::sync::atomic::AtomicBool>,
) {
    let lease = state.settings.lease;
    let renew_every = (lease / 3).max(Duration::from_millis(100));
    let mut shutdown = state.shutdown.clone();
    let mut tick = tokio::time::interval(PROGRESS_EVERY.min(renew_every));
    let mut renewed = Instant::now();
    let mut run_recorded = false;
    let mut stopping = false;
    let started = shared.lock().map(|s| s.started.clone()).unwrap_or_default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = started.notified(), if !run_recorded => {}
            // The lease is kept (renewed below) until the run has stopped and the job is
            // given back.
            _ = shutdown.wait_for(|s| *s), if !stopping => {
                stopping = true;
                let _ = stop.send(true);
            }
        }
        if renewed.elapsed() >= renew_every {
            let at = now();
            match state
                .db
                .renew_lease(&job_id, &owner, after(at, lease), at)
                .await
            {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => {
                    tracing::warn!(job = %job_id, worker = %owner, "lost the lease on a sync job; stopping its run");
                    lease_lost.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = stop.send(true);
                    return;
                }
                Err(e) => {
                    tracing::warn!(job = %job_id, error = %e, "could not renew a sync job's lease");
                    // Stop before the lease runs out and another worker takes the job.
                    if renewed.elapsed() >= lease.saturating_sub(renew_every) {
                        lease_lost.store(true, std::sync::atomic::Ordering::SeqCst);
                        let _ = stop.send(true);
                        return;
                    }
                }
            }
        }
        let (run_id, progress) = {
            let Ok(mut s) = shared.lock() else { continue };
            if !s.dirty {
                continue;
            }
            s.dirty = false;
            let run_id = if run_recorded { None } else { s.run_id.clone() };
            (
                run_id,
                serde_json::to_string(&s.progress).unwrap_or_else(|_| "{}".into()),
            )
        };
        let at = now();
        if let Some(run_id) = run_id {
            match state.db.set_job_run(&job_id, &owner, &run_id, at).await {
                Ok(_) => run_recorded = true,
                Err(e) => {
                    tracing::warn!(job = %job_id, error = %e, "could not record a sync job's run")
                }
            }
        }
        if let Err(e) = state
            .db
            .set_job_progress(&job_id, &owner, &progress, at)
            .await
        {
            tracing::warn!(job = %job_id, error = %e, "could not record a sync job's progress");
        }
    }
}

/// Records how the attempt ended.
async fn end_job(
    state: &AppState,
    owner: &str,
    job: &SyncJob,
    outcome: Outcome,
) -> Result<(), tenantlink_store::Error> {
    let at = now();
    let db = &state.db;
    let still_ours = match outcome {
        Outcome::Finished(report) => {
            state
                .metrics
                .sync_runs
                .get_or_create(&RunLabels {
                    sync_type: job.sync_type.clone(),
                    status: report.status.as_str().into(),
                })
                .inc();
            let json = serde_json::to_string(&report).unwrap_or_else(|_| "{}".into());
            let failed: Vec<String> = report
                .resources
                .iter()
                .filter(|r| r.status == Completeness::Failed)
                .map(|r| {
                    format!(
                        "{}: {}",
                        r.resource,
                        r.reason.as_deref().unwrap_or("failed")
                    )
                })
                .collect();
            if report.status == Completeness::Failed && job.attempts < MAX_ATTEMPTS {
                // Nothing synced (Entra ID refused, Graph down...): try again later.
                let error = failed.join("; ");
                tracing::warn!(job = %job.id, attempt = job.attempts, error = %error, "sync failed; retrying later");
                db.retry_job_later(
                    &job.id,
                    owner,
                    after(at, backoff(job.attempts)),
                    Some(&error),
                    at,
                )
                .await?
            } else {
                let error = (!failed.is_empty()).then(|| {
                    if report.status == Completeness::Failed {
                        format!(
                            "{}; failed {} times: check the connection's credentials and \
                             permissions, then ask for the sync again",
                            failed.join("; "),
                            job.attempts
                        )
                    } else {
                        failed.join("; ")
                    }
                });
                tracing::info!(job = %job.id, status = %report.status, rows = report.rows, "sync job finished");
                audit_run(
                    state,
                    owner,
                    job,
                    report.status.as_str(),
                    serde_json::json!({ "rows": report.rows, "resumed": report.resumed }),
                )
                .await;
                db.finish_job(
                    &job.id,
                    owner,
                    report.status.as_str(),
                    Some(&json),
                    error.as_deref(),
                    at,
                )
                .await?
            }
        }
        Outcome::Stopped => {
            tracing::info!(job = %job.id, "sync job given back at shutdown; another worker goes on with it");
            db.release_job(&job.id, owner, at, at).await?
        }
        Outcome::LeaseLost => true,
        Outcome::Wait(reason) => {
            tracing::info!(job = %job.id, reason = %reason, "sync job waits for another run of its connection");
            let delay = backoff(job.attempts).min(Duration::from_secs(60));
            db.release_job(&job.id, owner, after(at, delay), at).await?
        }
        Outcome::Retry(error) if job.attempts < MAX_ATTEMPTS => {
            tracing::warn!(job = %job.id, attempt = job.attempts, error = %error, "sync job failed; retrying later");
            db.retry_job_later(
                &job.id,
                owner,
                after(at, backoff(job.attempts)),
                Some(&error),
                at,
            )
            .await?
        }
        Outcome::Retry(error) => {
            let error = format!(
                "{error} (failed {} times; check the connection's credentials, permissions and \
                 Microsoft's status, then ask for the sync again)",
                job.attempts
            );
            tracing::warn!(job = %job.id, error = %error, "sync job failed for good");
            fail(state, owner, job, &error, at).await?
        }
        Outcome::Fail(error) => {
            tracing::warn!(job = %job.id, error = %error, "sync job failed for good");
            fail(state, owner, job, &error, at).await?
        }
    };
    if !still_ours {
        tracing::warn!(job = %job.id, worker = %owner, "a sync job changed hands before it was recorded");
    }
    Ok(())
}

/// Records a finished sync run in the audit trail (who: this worker; what: `sync.run`;
/// target: the connection and the run; outcome: its completeness).
async fn audit_run(
    state: &AppState,
    owner: &str,
    job: &SyncJob,
    outcome: &str,
    mut detail: serde_json::Value,
) {
    detail["type"] = serde_json::Value::from(job.sync_type.clone());
    detail["trigger"] = serde_json::Value::from(job.trigger.clone());
    detail["attempts"] = serde_json::Value::from(job.attempts);
    if let Err(e) = state
        .audit
        .record_action(
            Some(&job.organization_id),
            &format!("worker:{owner}"),
            "sync.run",
            &format!("connection_id={} run_id={}", job.connection_id, job.id),
            outcome,
            detail,
        )
        .await
    {
        tracing::error!(job = %job.id, error = %e, "could not record a sync run in the audit trail");
    }
}

async fn fail(
    state: &AppState,
    owner: &str,
    job: &SyncJob,
    error: &str,
    at: NaiveDateTime,
) -> Result<bool, tenantlink_store::Error> {
    audit_run(state, owner, job, "failed", serde_json::json!({})).await;
    state
        .metrics
        .sync_runs
        .get_or_create(&RunLabels {
            sync_type: job.sync_type.clone(),
            status: "failed".into(),
        })
        .inc();
    state
        .db
        .finish_job(&job.id, owner, "failed", None, Some(error), at)
        .await
}

/// A stored report, when it parses (the DTOs read it).
pub(crate) fn parse_report(json: Option<&str>) -> Option<RunReport> {
    json.and_then(|j| serde_json::from_str(j).ok())
}

/// Stored progress, when it parses.
pub(crate) fn parse_progress(json: &str) -> JobProgress {
    serde_json::from_str(json).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use tenantlink_identity::SecretString;
    use tenantlink_store::testing::TestDb;
    use tenantlink_store::{Connection, NewJob};
    use tenantlink_sync::credentials::{ConnectRequest, connect_tenant};

    use super::*;
    use crate::testing;

    async fn connect(state: &AppState, emulator: &tenantlink_emulator::Emulator) -> Connection {
        let tenant = emulator.tenants()[0].clone();
        let org = state.db.create_organization("Contoso").await.expect("org");
        connect_tenant(
            &state.db,
            &state.ring,
            &state.identity,
            ConnectRequest {
                organization_id: org.id,
                tenant_id: tenant.tenant_id.clone(),
                client_id: tenant.connector_app.client_id.clone(),
                secret: SecretString::from(tenant.connector_app.client_secret.clone()),
                secret_expires_at: None,
            },
        )
        .await
        .expect("connect")
        .0
    }

    async fn enqueue(state: &AppState, connection: &Connection, sync_type: &str) -> SyncJob {
        state
            .db
            .enqueue_job(
                &NewJob {
                    organization_id: &connection.organization_id,
                    connection_id: &connection.id,
                    sync_type,
                    trigger: "api",
                    requested_by: None,
                },
                now(),
            )
            .await
            .expect("enqueue")
            .0
    }

    fn pages(job: &SyncJob) -> u64 {
        let report = parse_report(job.report.as_deref()).expect("a report");
        report.resources.iter().map(|r| r.pages).sum()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_told_to_stop_gives_the_job_back_and_another_finishes_its_run() {
        let emulator = testing::emulator(11);
        let small = WorkerOptions { page_size: 5 };
        for tdb in TestDb::all().await {
            let (state, stop_a) = testing::state(
                tdb.db.clone(),
                testing::emulator_cloud(&emulator),
                testing::settings(),
            );
            let connection = connect(&state, &emulator).await;
            let job = enqueue(&state, &connection, "full").await;

            // Worker A: stopped once users have committed a couple of pages.
            let a = tokio::spawn({
                let state = state.clone();
                async move { run_next(&state, "a", small).await }
            });
            loop {
                let users = state
                    .db
                    .cursor(&connection.id, "users")
                    .await
                    .expect("cursor");
                if users.is_some_and(|c| c.next_link.is_some() && c.pages >= 2) {
                    break;
                }
                assert!(
                    !a.is_finished(),
                    "worker A finished before it could be stopped"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            stop_a.send(true).expect("stop A");
            assert!(a.await.expect("join").expect("worker A"));
            let given_back = state
                .db
                .job(&connection.organization_id, &job.id)
                .await
                .unwrap();
            assert_eq!(given_back.status, "queued", "{given_back:?}");
            assert_eq!(given_back.attempts, 0, "a shutdown is not a failed attempt");
            assert!(given_back.lease_owner.is_none());
            let run_id = given_back.run_id.clone().expect("the run A started");

            // Worker B (another process): takes the job and goes on with the same run.
            let (stop_b_tx, stop_b) = tokio::sync::watch::channel(false);
            let state_b = AppState {
                shutdown: stop_b,
                instance_id: "b".into(),
                ..state.clone()
            };
            assert!(run_next(&state_b, "b", small).await.expect("worker B"));
            let done = state
                .db
                .job(&connection.organization_id, &job.id)
                .await
                .unwrap();
            assert_eq!(done.status, "complete", "{done:?}");
            assert_eq!(done.run_id.as_deref(), Some(run_id.as_str()));
            let report = parse_report(done.report.as_deref()).unwrap();
            assert!(report.resumed);
            assert_eq!(report.run_id, run_id);

            // A full run from scratch reads more pages than B did.
            let full = enqueue(&state, &connection, "full").await;
            assert!(run_next(&state_b, "b", small).await.expect("worker B"));
            let full = state
                .db
                .job(&connection.organization_id, &full.id)
                .await
                .unwrap();
            assert_eq!(full.status, "complete");
            assert!(
                pages(&done) < pages(&full),
                "resumed {} pages, full {}",
                pages(&done),
                pages(&full)
            );
            drop(stop_b_tx);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_whose_worker_dies_is_taken_over_from_its_checkpoint_when_the_lease_ends() {
        // PostgreSQL only: killing a task in-process is a crash only where the database
        // rolls back a dropped connection's transaction (an SQLite write transaction
        // dropped mid-way stays open on its pooled connection until the process exits).
        let Some(tdb) = TestDb::postgres().await else {
            return;
        };
        let emulator = testing::emulator(13);
        let small = WorkerOptions { page_size: 5 };
        {
            let settings = crate::config::ServeSettings {
                lease: Duration::from_secs(2),
                ..testing::settings()
            };
            let (state, _stop) =
                testing::state(tdb.db.clone(), testing::emulator_cloud(&emulator), settings);
            let connection = connect(&state, &emulator).await;
            let job = enqueue(&state, &connection, "full").await;
            let a = tokio::spawn({
                let state = state.clone();
                async move { run_next(&state, "a", small).await }
            });
            loop {
                let users = state
                    .db
                    .cursor(&connection.id, "users")
                    .await
                    .expect("cursor");
                let job = state
                    .db
                    .job(&connection.organization_id, &job.id)
                    .await
                    .unwrap();
                if job.run_id.is_some()
                    && users.is_some_and(|c| c.next_link.is_some() && c.pages >= 2)
                {
                    break;
                }
                assert!(!a.is_finished(), "worker A finished before it could die");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Worker A dies: nothing of it runs any more, its lease is left to expire.
            a.abort();
            let _ = a.await;
            let dead = state
                .db
                .job(&connection.organization_id, &job.id)
                .await
                .unwrap();
            assert_eq!(dead.status, "running");
            let (_b_tx, stop_b) = tokio::sync::watch::channel(false);
            let state_b = AppState {
                shutdown: stop_b,
                ..state.clone()
            };
            let started = Instant::now();
            while !run_next(&state_b, "b", small).await.expect("worker B") {
                assert!(started.elapsed() < Duration::from_secs(20), "never claimed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let done = state
                .db
                .job(&connection.organization_id, &job.id)
                .await
                .unwrap();
            assert_eq!(done.status, "complete", "{done:?}");
            assert_eq!(done.attempts, 2);
            assert_eq!(done.run_id, dead.run_id);
            let report = parse_report(done.report.as_deref()).unwrap();
            assert!(report.resumed, "B went on with A's run");
            // Nothing is left to claim.
            assert!(!run_next(&state_b, "b", small).await.unwrap());
        }
    }

    #[tokio::test]
    async fn a_job_that_cannot_sign_in_is_retried_with_backoff_then_fails() {
        let tdb = TestDb::sqlite().await;
        let (state, _stop) = testing::state(
            tdb.db.clone(),
            testing::offline_cloud(),
            testing::settings(),
        );
        let org = state.db.create_organization("Contoso").await.unwrap();
        // A connection whose stored secret no key of this ring can read.
        let connection = state
            .db
            .create_connection(tenantlink_store::NewConnection {
                organization_id: org.id.clone(),
                tenant_id: "t".into(),
                client_id: "c".into(),
                auth_kind: tenantlink_store::AuthKind::ClientSecret,
                secret: Some((b"not-a-token".to_vec(), "other-key".into())),
                secret_expires_at: None,
                granted_permissions: vec![],
                missing_permissions: vec![],
            })
            .await
            .unwrap();
        let job = enqueue(&state, &connection, "users").await;
        assert!(
            run_next(&state, "w", WorkerOptions::default())
                .await
                .unwrap()
        );
        let failed = state.db.job(&org.id, &job.id).await.unwrap();
        assert_eq!(failed.status, "failed");
        assert!(failed.error.unwrap().contains("connect the tenant again"));
        // Retryable failures back off: the delay doubles and stays under its cap.
        assert!(backoff(1) >= BACKOFF_BASE && backoff(1) < BACKOFF_BASE * 2);
        assert!(backoff(3) >= BACKOFF_BASE * 4);
        assert!(backoff(30) <= BACKOFF_MAX + BACKOFF_MAX / 2);
    }
}
