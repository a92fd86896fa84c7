//! Sync runs over the API: what is asked for, and a run's state, progress and result.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantlink_store::SyncJob;
use utoipa::{IntoParams, ToSchema};

use super::utc;
use crate::worker::{parse_progress, parse_report};

/// Asks for a sync of a connection.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SyncRequest {
    /// `full`, `incremental` (the default), `users`, `groups`, `devices` or `audit`.
    #[serde(rename = "type", default)]
    #[schema(example = "incremental")]
    pub(crate) sync_type: Option<String>,
}

/// Asks for a sync of the organization's only connection (the seed platform's shape).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct MicrosoftSyncRequest {
    /// `full`, `incremental` (the default), `users_only`, `groups_only` or `devices_only`.
    #[serde(rename = "type", default)]
    #[schema(example = "full")]
    pub(crate) sync_type: Option<String>,
}

/// `?limit=` of a list of runs.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct SyncRunsQuery {
    /// How many runs, newest first (1 to 100, default 20).
    pub(crate) limit: Option<i64>,
}

/// A sync run: asked for, queued, running or finished.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SyncRunResponse {
    /// The run's id (`GET /v1/sync-runs/{id}`).
    pub(crate) id: String,
    /// The connection synced.
    pub(crate) connection_id: String,
    /// `full`, `incremental`, `users`, `groups`, `devices` or `audit`.
    #[serde(rename = "type")]
    pub(crate) sync_type: String,
    /// `queued`, `running`, `complete`, `partial` or `failed`.
    pub(crate) status: String,
    /// `api` or `schedule`.
    pub(crate) trigger: String,
    /// In an answer to a request for a sync: `true` when a run of that connection and type
    /// was already queued or running, and this is that run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) existing: Option<bool>,
    /// Id of the API key that asked for it, if one did.
    pub(crate) requested_by: Option<String>,
    /// Attempts so far (a failed attempt is retried later, up to 5).
    pub(crate) attempts: i32,
    /// When a queued run that was retried may start again.
    pub(crate) next_attempt_at: Option<DateTime<Utc>>,
    /// When it was asked for.
    pub(crate) created_at: DateTime<Utc>,
    /// When a worker first started it.
    pub(crate) started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// Last change.
    pub(crate) updated_at: DateTime<Utc>,
    /// Progress per resource while running (pages and rows of the current attempt).
    pub(crate) progress: Vec<ResourceProgressResponse>,
    /// The result, once finished (absent when it failed before syncing).
    pub(crate) result: Option<SyncResultResponse>,
    /// Why it failed or is being retried, and what to do next.
    pub(crate) error: Option<String>,
}

/// One resource's progress.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResourceProgressResponse {
    /// `users`, `groups`, `devices`, `sign_ins`, `directory_audits` or `alerts`.
    pub(crate) resource: String,
    /// `running`, or `complete`, `partial` or `failed` once done.
    pub(crate) status: String,
    /// `full`, `incremental` or `resumed`.
    pub(crate) mode: String,
    /// Pages committed.
    pub(crate) pages: u64,
    /// Rows written.
    pub(crate) rows: u64,
}

/// What a finished run did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SyncResultResponse {
    /// `complete`, `partial` or `failed`: the worst of its resources.
    pub(crate) completeness: String,
    /// Whether it went on with an interrupted run from its checkpoints.
    pub(crate) resumed: bool,
    /// Rows written, all resources.
    pub(crate) rows: u64,
    /// Pages committed, all resources.
    pub(crate) pages: u64,
    /// Graph requests sent.
    pub(crate) requests: u64,
    /// Graph requests retried.
    pub(crate) retries: u64,
    /// Seconds spent waiting on Graph throttling.
    pub(crate) throttled_seconds: f64,
    /// Per resource.
    pub(crate) resources: Vec<ResourceResultResponse>,
}

/// What a finished run did for one resource.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResourceResultResponse {
    /// `users`, `groups`, `devices`, `sign_ins`, `directory_audits` or `alerts`.
    pub(crate) resource: String,
    /// `full`, `incremental` or `resumed`.
    pub(crate) mode: String,
    /// `complete`, `partial` or `failed`.
    pub(crate) completeness: String,
    /// Why it is partial or failed.
    pub(crate) reason: Option<String>,
    /// The application permission that was missing, if that is why it is partial.
    pub(crate) missing_permission: Option<String>,
    /// Why an incremental round became a full one.
    pub(crate) fell_back_to_full: Option<String>,
    /// Pages committed.
    pub(crate) pages: u64,
    /// Rows written.
    pub(crate) rows: u64,
    /// Rows removed by changes.
    pub(crate) removed: u64,
    /// Rows a full round swept (not seen in it).
    pub(crate) swept: u64,
    /// Graph requests sent.
    pub(crate) requests: u64,
    /// Graph requests retried.
    pub(crate) retries: u64,
    /// Seconds spent waiting on throttling.
    pub(crate) throttled_seconds: f64,
    /// Seconds it took.
    pub(crate) elapsed_seconds: f64,
}

/// Runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SyncRunList {
    /// The runs.
    pub(crate) items: Vec<SyncRunResponse>,
}

impl SyncRunResponse {
    /// The answer for `job`; `existing` in answers to a request for a sync.
    pub(crate) fn of(job: SyncJob, existing: Option<bool>) -> Self {
        let progress = parse_progress(&job.progress)
            .resources
            .into_iter()
            .map(|(resource, p)| ResourceProgressResponse {
                resource,
                status: p.status,
                mode: p.mode,
                pages: p.pages,
                rows: p.rows,
            })
            .collect();
        let result = parse_report(job.report.as_deref()).map(|r| SyncResultResponse {
            completeness: r.status.as_str().into(),
            resumed: r.resumed,
            rows: r.rows,
            pages: r.resources.iter().map(|x| x.pages).sum(),
            requests: r.resources.iter().map(|x| x.requests).sum(),
            retries: r.resources.iter().map(|x| x.retries).sum(),
            throttled_seconds: r.resources.iter().map(|x| x.throttled.as_secs_f64()).sum(),
            resources: r
                .resources
                .into_iter()
                .map(|x| ResourceResultResponse {
                    resource: x.resource.as_str().into(),
                    mode: x.mode.as_str().into(),
                    completeness: x.status.as_str().into(),
                    reason: x.reason,
                    missing_permission: x.missing_permission,
                    fell_back_to_full: x.fell_back_to_full,
                    pages: x.pages,
                    rows: x.rows,
                    removed: x.removed,
                    swept: x.swept,
                    requests: x.requests,
                    retries: x.retries,
                    throttled_seconds: x.throttled.as_secs_f64(),
                    elapsed_seconds: x.elapsed.as_secs_f64(),
                })
                .collect(),
        });
        Self {
            next_attempt_at: (job.status == "queued" && job.attempts > 0)
                .then(|| utc(job.not_before)),
            id: job.id,
            connection_id: job.connection_id,
            sync_type: job.sync_type,
            status: job.status,
            trigger: job.trigger,
            existing,
            requested_by: job.requested_by,
            attempts: job.attempts,
            created_at: utc(job.created_at),
            started_at: job.started_at.map(utc),
            finished_at: job.finished_at.map(utc),
            updated_at: utc(job.updated_at),
            progress,
            result,
            error: job.error,
        }
    }
}
