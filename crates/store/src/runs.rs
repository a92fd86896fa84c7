//! Sync runs and cursors.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::with_conn;
use crate::models::{Cursor, SyncRun};
use crate::schema::{connections, sync_cursors, sync_runs};
use crate::{Db, Error};

use crate::tenants::now;

/// The statement that stores `cursor` as its connection's cursor of its resource (inserted,
/// or replacing the one stored), on either backend's connection `c`; await it.
macro_rules! save_cursor {
    ($c:expr, $cursor:expr) => {
        diesel::insert_into($crate::schema::sync_cursors::table)
            .values($cursor)
            .on_conflict((
                $crate::schema::sync_cursors::connection_id,
                $crate::schema::sync_cursors::resource,
            ))
            .do_update()
            .set($cursor)
            .execute($c)
    };
}
pub(crate) use save_cursor;

impl Db {
    /// Starts a run (status `running`). A connection has at most one live run: while one
    /// is `running` this fails with [`Error::Conflict`].
    pub async fn create_run(&self, connection_id: &str, sync_type: &str) -> Result<SyncRun, Error> {
        let at = now();
        let run = SyncRun {
            id: uuid::Uuid::new_v4().to_string(),
            connection_id: connection_id.to_owned(),
            sync_type: sync_type.to_owned(),
            status: "running".into(),
            started_at: at,
            updated_at: at,
            finished_at: None,
            report: "{}".into(),
            error: None,
        };
        // A connection whose partitions were not all added (a crash while it was created)
        // gets them now; present ones cost a lookup each.
        self.add_partitions(connection_id).await?;
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| diesel::insert_into(sync_runs::table)
            .values(&run)
            .execute(c)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict(_) => Error::Conflict(format!(
                    "connection {connection_id} already has a sync running"
                )),
                other => other,
            })?);
        Ok(run)
    }

    /// The run of a connection still marked `running` (alive, or interrupted by a crash),
    /// whatever its type; there is at most one.
    pub async fn running_run(&self, connection_id: &str) -> Result<Option<SyncRun>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| sync_runs::table
            .filter(sync_runs::connection_id.eq(connection_id))
            .filter(sync_runs::status.eq("running"))
            .order(sync_runs::started_at.desc())
            .select(SyncRun::as_select())
            .first(c)
            .await
            .optional()?))
    }

    /// Takes over an interrupted run: succeeds only if the run is still `running` and
    /// nobody touched it since `seen_updated_at` (so two processes never both take it).
    pub async fn claim_run(&self, id: &str, seen_updated_at: NaiveDateTime) -> Result<bool, Error> {
        let mut conn = self.conn().await?;
        let n = with_conn!(&mut conn, |c| diesel::update(
            sync_runs::table
                .filter(sync_runs::id.eq(id))
                .filter(sync_runs::status.eq("running"))
                .filter(sync_runs::updated_at.eq(seen_updated_at))
        )
        .set(sync_runs::updated_at.eq(now()))
        .execute(c)
        .await?);
        Ok(n == 1)
    }

    /// Marks a live run as alive now (a heartbeat, independent of page progress).
    pub async fn touch_run(&self, id: &str) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| diesel::update(
            sync_runs::table
                .filter(sync_runs::id.eq(id))
                .filter(sync_runs::status.eq("running"))
        )
        .set(sync_runs::updated_at.eq(now()))
        .execute(c)
        .await?);
        Ok(())
    }

    /// Records a live run's report (progress so far).
    pub async fn update_run(&self, id: &str, report: &str) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| diesel::update(sync_runs::table.find(id))
            .set((
                sync_runs::report.eq(report),
                sync_runs::updated_at.eq(now())
            ))
            .execute(c)
            .await?);
        Ok(())
    }

    /// Ends a run with its status (`complete`, `partial` or `failed`), report and error.
    pub async fn finish_run(
        &self,
        id: &str,
        status: &str,
        report: &str,
        error: Option<&str>,
    ) -> Result<(), Error> {
        let at = now();
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| diesel::update(sync_runs::table.find(id))
            .set((
                sync_runs::status.eq(status),
                sync_runs::report.eq(report),
                sync_runs::error.eq(error),
                sync_runs::updated_at.eq(at),
                sync_runs::finished_at.eq(Some(at)),
            ))
            .execute(c)
            .await?);
        Ok(())
    }

    /// A run of a connection of `organization_id`.
    pub async fn run(&self, organization_id: &str, id: &str) -> Result<SyncRun, Error> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| sync_runs::table
            .inner_join(connections::table)
            .filter(connections::organization_id.eq(organization_id))
            .filter(sync_runs::id.eq(id))
            .select(SyncRun::as_select())
            .first(c)
            .await
            .map_err(|e| Error::or_not_found(e, "sync run", id)))
    }

    /// The newest runs of a connection, newest first.
    pub async fn runs(&self, connection_id: &str, limit: i64) -> Result<Vec<SyncRun>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| sync_runs::table
            .filter(sync_runs::connection_id.eq(connection_id))
            .order(sync_runs::started_at.desc())
            .limit(limit)
            .select(SyncRun::as_select())
            .load(c)
            .await?))
    }

    /// The cursor of one resource of a connection, if it was ever synced.
    pub async fn cursor(
        &self,
        connection_id: &str,
        resource: &str,
    ) -> Result<Option<Cursor>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| sync_cursors::table
            .find((connection_id, resource))
            .select(Cursor::as_select())
            .first(c)
            .await
            .optional()?))
    }

    /// Every cursor of a connection.
    pub async fn cursors(&self, connection_id: &str) -> Result<Vec<Cursor>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| sync_cursors::table
            .filter(sync_cursors::connection_id.eq(connection_id))
            .order(sync_cursors::resource)
            .select(Cursor::as_select())
            .load(c)
            .await?))
    }

    /// Stores a cursor on its own (a round starting, or state without rows).
    pub async fn put_cursor(&self, cursor: &Cursor) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| save_cursor!(c, cursor).await?);
        Ok(())
    }
}
