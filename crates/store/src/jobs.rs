//! Sync jobs: enqueued over the API or by the scheduler, claimed by workers under a lease
//! that they renew, finished or retried later. A job whose worker died (its lease expired)
//! is claimed again by another worker. Times are passed in by callers (tests move them).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};
use diesel_async::RunQueryDsl;

use crate::db::{with_conn, write_transaction};
use crate::models::{AuthKind, SyncJob};
use crate::schema::{connections, sync_jobs};
use crate::{Backend, Db, Error};

/// Statuses of a job that is not over.
const ACTIVE: [&str; 2] = ["queued", "running"];

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// The organization asking (the connection must be one of its own).
    pub organization_id: &'a str,
    /// The connection to sync.
    pub connection_id: &'a str,
    /// `full`, `incremental`, ...
    pub sync_type: &'a str,
    /// `api` or `schedule`.
    pub trigger: &'a str,
    /// The API key asking, if any.
    pub requested_by: Option<&'a str>,
}

impl Db {
    /// Enqueues a job, unless one of that connection and type is active (queued or
    /// running): then returns that one. `true` when a new job was made. A connection that
    /// is not the organization's is [`Error::NotFound`].
    pub async fn enqueue_job(
        &self,
        job: &NewJob<'_>,
        now: NaiveDateTime,
    ) -> Result<(SyncJob, bool), Error> {
        let backend = self.backend();
        let p = |n| backend.param(n);
        // The connection's organization is checked in the insert itself; the partial
        // unique index turns a second active job into no row.
        let sql = format!(
            "INSERT INTO sync_jobs (id, organization_id, connection_id, sync_type, status, \
             \"trigger\", requested_by, attempts, not_before, progress, created_at, updated_at) \
             SELECT {p1}, organization_id, id, {p2}, 'queued', {p3}, {p4}, 0, {p5}, '{{}}', {p5}, {p5} \
             FROM connections WHERE id = {p6} AND organization_id = {p7} \
             ON CONFLICT DO NOTHING",
            p1 = p(1),
            p2 = p(2),
            p3 = p(3),
            p4 = p(4),
            p5 = p(5),
            p6 = p(6),
            p7 = p(7),
        );
        // A job finishing between a conflict and the look for it: try again.
        for _ in 0..3 {
            let id = uuid::Uuid::new_v4().to_string();
            let n = {
                let _writer = self.writer().await;
                let mut conn = self.conn().await?;
                with_conn!(&mut conn, |c| diesel::sql_query(&sql)
                    .bind::<Text, _>(&id)
                    .bind::<Text, _>(job.sync_type)
                    .bind::<Text, _>(job.trigger)
                    .bind::<diesel::sql_types::Nullable<Text>, _>(job.requested_by)
                    .bind::<Timestamp, _>(now)
                    .bind::<Text, _>(job.connection_id)
                    .bind::<Text, _>(job.organization_id)
                    .execute(c)
                    .await)?
            };
            if n == 1 {
                return Ok((self.job(job.organization_id, &id).await?, true));
            }
            let mut conn = self.conn().await?;
            let active = with_conn!(&mut conn, |c| sync_jobs::table
                .filter(sync_jobs::organization_id.eq(job.organization_id))
                .filter(sync_jobs::connection_id.eq(job.connection_id))
                .filter(sync_jobs::sync_type.eq(job.sync_type))
                .filter(sync_jobs::status.eq_any(ACTIVE))
                .select(SyncJob::as_select())
                .first(c)
                .await
                .optional())?;
            if let Some(active) = active {
                return Ok((active, false));
            }
            // No row and no active job: the connection is not the organization's.
            self.connection(job.organization_id, job.connection_id)
                .await?;
        }
        Err(Error::Conflict(format!(
            "connection {} keeps finishing and starting {} jobs; try again",
            job.connection_id, job.sync_type
        )))
    }

    /// A job of the organization.
    pub async fn job(&self, organization_id: &str, id: &str) -> Result<SyncJob, Error> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| sync_jobs::table
            .filter(sync_jobs::organization_id.eq(organization_id))
            .filter(sync_jobs::id.eq(id))
            .select(SyncJob::as_select())
            .first(c)
            .await
            .map_err(|e| Error::or_not_found(e, "sync run", id)))
    }

    /// The newest jobs of a connection of the organization, newest first.
    pub async fn jobs(
        &self,
        organization_id: &str,
        connection_id: &str,
        limit: i64,
    ) -> Result<Vec<SyncJob>, Error> {
        self.connection(organization_id, connection_id).await?;
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| sync_jobs::table
            .filter(sync_jobs::organization_id.eq(organization_id))
            .filter(sync_jobs::connection_id.eq(connection_id))
            .order((sync_jobs::created_at.desc(), sync_jobs::id.desc()))
            .limit(limit)
            .select(SyncJob::as_select())
            .load(c)
            .await)?)
    }

    /// Claims the oldest job that is queued and due (`not_before` passed) or running under
    /// an expired lease (its worker died): it becomes `running`, leased to `owner` until
    /// `lease_until`, one more attempt. No two claimers ever get the same job.
    pub async fn claim_job(
        &self,
        owner: &str,
        lease_until: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<Option<SyncJob>, Error> {
        match self.backend() {
            Backend::Postgres => {
                // Locked candidates are skipped, not waited for: concurrent claimers take
                // different jobs. The outer WHERE is checked again on the locked row.
                let claimable = "((status = 'queued' AND not_before <= $3) \
                                 OR (status = 'running' AND lease_expires_at < $3))";
                let sql = format!(
                    "UPDATE sync_jobs SET status = 'running', lease_owner = $1, \
                     lease_expires_at = $2, attempts = attempts + 1, \
                     started_at = COALESCE(started_at, $3), updated_at = $3 \
                     WHERE id = (SELECT id FROM sync_jobs WHERE {claimable} \
                     ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) AND {claimable} \
                     RETURNING *"
                );
                let mut conn = self.conn().await?;
                Ok(with_conn!(&mut conn, |c| diesel::sql_query(&sql)
                    .bind::<Text, _>(owner)
                    .bind::<Timestamp, _>(lease_until)
                    .bind::<Timestamp, _>(now)
                    .get_result::<SyncJob>(c)
                    .await
                    .optional())?)
            }
            Backend::Sqlite => {
                let owner = owner.to_owned();
                let _writer = self.writer().await;
                let mut conn = self.conn().await?;
                write_transaction!(&mut conn, async move |c| {
                    let candidate: Option<String> = sync_jobs::table
                        .filter(
                            sync_jobs::status
                                .eq("queued")
                                .and(sync_jobs::not_before.le(now))
                                .or(sync_jobs::status
                                    .eq("running")
                                    .and(sync_jobs::lease_expires_at.lt(now))),
                        )
                        .order((sync_jobs::created_at, sync_jobs::id))
                        .select(sync_jobs::id)
                        .first(c)
                        .await
                        .optional()?;
                    let Some(id) = candidate else {
                        return Ok::<_, Error>(None);
                    };
                    let started: Option<Option<NaiveDateTime>> = sync_jobs::table
                        .find(&id)
                        .select(sync_jobs::started_at)
                        .first(c)
                        .await
                        .optional()?;
                    diesel::update(sync_jobs::table.find(&id))
                        .set((
                            sync_jobs::status.eq("running"),
                            sync_jobs::lease_owner.eq(&owner),
                            sync_jobs::lease_expires_at.eq(lease_until),
                            sync_jobs::attempts.eq(sync_jobs::attempts + 1),
                            sync_jobs::started_at.eq(started.flatten().unwrap_or(now)),
                            sync_jobs::updated_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                    Ok(Some(
                        sync_jobs::table
                            .find(&id)
                            .select(SyncJob::as_select())
                            .first(c)
                            .await?,
                    ))
                })
            }
        }
    }

    /// Extends `owner`'s lease on a running job to `until`; `false` when the job is no
    /// longer `owner`'s (another worker claimed it after the lease expired) or not running.
    pub async fn renew_lease(
        &self,
        id: &str,
        owner: &str,
        until: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<bool, Error> {
        let _writer = self.writer().await;
        let mut conn = self.conn().await?;
        let n = with_conn!(&mut conn, |c| diesel::update(owned(id, owner))
            .set((
                sync_jobs::lease_expires_at.eq(until),
                sync_jobs::updated_at.eq(now),
            ))
            .execute(c)
            .await)?;
        Ok(n == 1)
    }

    /// Records the engine's run id of `owner`'s running job.
    pub async fn set_job_run(
        &self,
        id: &str,
        owner: &str,
        run_id: &str,
        now: NaiveDateTime,
    ) -> Result<bool, Error> {
        let _writer = self.writer().await;
        let mut conn = self.conn().await?;
        let n = with_conn!(&mut conn, |c| diesel::update(owned(id, owner))
            .set((sync_jobs::run_id.eq(run_id), sync_jobs::updated_at.eq(now)))
            .execute(c)
            .await)?;
        Ok(n == 1)
    }

    /// Records the progress (JSON) of `owner`'s running job.
    pub async fn set_job_progress(
        &self,
        id: &str,
        owner: &str,
        progress: &str,
        now: NaiveDateTime,
    ) -> Result<bool, Error> {
        let _writer = self.writer().await;
        let mut conn = self.conn().await?;
        let n = with_conn!(&mut conn, |c| diesel::update(owned(id, owner))
            .set((
                sync_jobs::progress.eq(progress),
                sync_jobs::updated_at.eq(now),
            ))
            .execute(c)
            .await)?;
        Ok(n == 1)
    }

    /// Ends `owner`'s running job as `complete`, `partial` or `failed`, with the run's
    /// report (JSON) and an error for people; `false` when the job is not `owner`'s.
    pub async fn finish_job(
        &self,
        id: &str,
        owner: &str,
        status: &str,
        report: Option<&str>,
        error: Option<&str>,
        now: NaiveDateTime,
    ) -> Result<bool, Error> {
        let _writer = self.writer().await;
        let mut conn = self.conn().await?;
        let n = with_conn!(&mut conn, |c| diesel::update(owned(id, owner))
            .set((
                sync_jobs::status.eq(status),
                sync_jobs::report.eq(report),
                sync_jobs::error.eq(error),
                sync_jobs::lease_owner.eq(None::<String>),
                sync_jobs::lease_expires_at.eq(None::<NaiveDateTime>),
                sync_jobs::finished_at.eq(Some(now)),
                sync_jobs::updated_at.eq(now),
            ))
            .execute(c)
            .await)?;
        Ok(n == 1)
    }

    /// Puts `owner`'s running job back in the queue until `not_before` (a retry's backoff),
    /// with why; `false` when the job is not `owner`'s.
    pub async fn retry_job_later(
        &self,
        id: &str,
        owner: &str,
        not_before: NaiveDateTime,
        error: Option<&str>,
        now: NaiveDateTime,
    ) -> Result<bool, Error> {
        let _writer = self.writer().await;
        let mut conn = self.conn().await?;
        let n = with_conn!(&mut conn, |c| diesel::update(owned(id, owner))
            .set((
                sync_jobs::status.eq("queued"),
                sync_jobs::not_before.eq(not_before),
                sync_jobs::error.eq(error),
                sync_jobs::lease_owner.eq(None::<String>),
                sync_jobs::lease_expires_at.eq(None::<NaiveDateTime>),
                sync_jobs::updated_at.eq(now),
            ))
            .execute(c)
            .await)?;
        Ok(n == 1)
    }

    /// Gives `owner`'s running job back to the queue, claimable from `not_before`, without
    /// counting the attempt (the worker is shutting down and another one goes on with its
    /// run, or another run of the connection is live). `false` when it is not `owner`'s.
    pub async fn release_job(
        &self,
        id: &str,
        owner: &str,
        not_before: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<bool, Error> {
        let _writer = self.writer().await;
        let mut conn = self.conn().await?;
        let n = with_conn!(&mut conn, |c| diesel::update(owned(id, owner))
            .set((
                sync_jobs::status.eq("queued"),
                sync_jobs::not_before.eq(not_before),
                sync_jobs::attempts.eq(sync_jobs::attempts - 1),
                sync_jobs::lease_owner.eq(None::<String>),
                sync_jobs::lease_expires_at.eq(None::<NaiveDateTime>),
                sync_jobs::updated_at.eq(now),
            ))
            .execute(c)
            .await)?;
        Ok(n == 1)
    }

    /// Connections the scheduler should sync now, as (organization id, connection id):
    /// those with a stored app credential (secret or certificate), not disabled, with no active job and no job created
    /// or finished within `interval` before `now`.
    pub async fn connections_due(
        &self,
        interval: std::time::Duration,
        now: NaiveDateTime,
    ) -> Result<Vec<(String, String)>, Error> {
        let since = now - chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| connections::table
            .filter(connections::secret_ciphertext.is_not_null())
            .filter(connections::auth_kind.eq_any([
                AuthKind::ClientSecret.as_str(),
                AuthKind::Certificate.as_str(),
            ]))
            .filter(connections::status.ne("disabled"))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                sync_jobs::table
                    .filter(sync_jobs::connection_id.eq(connections::id))
                    .filter(
                        sync_jobs::status
                            .eq_any(ACTIVE)
                            .or(sync_jobs::created_at.gt(since))
                            .or(sync_jobs::finished_at.gt(since)),
                    ),
            )))
            .order(connections::id)
            .select((connections::organization_id, connections::id))
            .load(c)
            .await)?)
    }
}

/// `owner`'s running job, as [`owned`] selects it.
type Owned<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<sync_jobs::table, diesel::dsl::Eq<sync_jobs::id, &'a str>>,
        diesel::dsl::Eq<sync_jobs::lease_owner, &'a str>,
    >,
    diesel::dsl::Eq<sync_jobs::status, &'static str>,
>;

/// `owner`'s running job `id`.
fn owned<'a>(id: &'a str, owner: &'a str) -> Owned<'a> {
    sync_jobs::table
        .filter(sync_jobs::id.eq(id))
        .filter(sync_jobs::lease_owner.eq(owner))
        .filter(sync_jobs::status.eq("running"))
}
