//! The scheduler: when `TENANTLINK_SYNC_INTERVAL` is set, every ~30 s it enqueues an
//! incremental sync for each connection that has had none for that long. Any number of
//! processes may run it: the one-active-job-per-connection-and-type index makes a
//! duplicate enqueue return the existing job.

use std::time::Duration;

use tenantlink_store::NewJob;
use tokio::task::JoinHandle;

use crate::state::AppState;
use crate::worker::{jitter, now};

/// How often the scheduler looks (plus up to a third again, at random).
const EVERY: Duration = Duration::from_secs(30);

/// Starts the scheduler when a sync interval is configured.
pub(crate) fn start(state: &AppState) -> Vec<JoinHandle<()>> {
    let Some(interval) = state.settings.sync_interval else {
        return Vec::new();
    };
    let state = state.clone();
    vec![tokio::spawn(async move {
        let mut shutdown = state.shutdown.clone();
        loop {
            tokio::select! {
                () = tokio::time::sleep(EVERY + jitter(EVERY / 3)) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            if let Err(e) = enqueue_due(&state, interval).await {
                tracing::warn!(error = %e, "the scheduler could not enqueue syncs");
            }
        }
    })]
}

/// Enqueues an incremental job for every connection due; returns how many were new.
pub(crate) async fn enqueue_due(
    state: &AppState,
    interval: Duration,
) -> Result<usize, tenantlink_store::Error> {
    let at = now();
    let mut created = 0;
    for (organization_id, connection_id) in state.db.connections_due(interval, at).await? {
        let job = NewJob {
            organization_id: &organization_id,
            connection_id: &connection_id,
            sync_type: "incremental",
            trigger: "schedule",
            requested_by: None,
        };
        match state.db.enqueue_job(&job, at).await {
            Ok((job, true)) => {
                created += 1;
                tracing::info!(job = %job.id, %connection_id, "scheduled an incremental sync");
            }
            Ok((_, false)) => {}
            // Deleted meanwhile.
            Err(tenantlink_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use tenantlink_store::testing::TestDb;

    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn due_connections_get_one_scheduled_job_however_many_schedulers_run() {
        for tdb in TestDb::all().await {
            let (state, _stop) = testing::state(
                tdb.db.clone(),
                testing::offline_cloud(),
                testing::settings(),
            );
            let org = state.db.create_organization("Contoso").await.unwrap();
            let connection = state
                .db
                .create_connection(tenantlink_store::NewConnection {
                    organization_id: org.id.clone(),
                    tenant_id: "t".into(),
                    client_id: "c".into(),
                    auth_kind: tenantlink_store::AuthKind::ClientSecret,
                    secret: Some((b"token".to_vec(), "k".into())),
                    secret_expires_at: None,
                    granted_permissions: vec![],
                    missing_permissions: vec![],
                })
                .await
                .unwrap();
            let interval = Duration::from_secs(3600);
            let (a, b) = tokio::join!(enqueue_due(&state, interval), enqueue_due(&state, interval));
            assert_eq!(a.unwrap() + b.unwrap(), 1);
            assert_eq!(enqueue_due(&state, interval).await.unwrap(), 0);
            let jobs = state.db.jobs(&org.id, &connection.id, 10).await.unwrap();
            assert_eq!(jobs.len(), 1);
            assert_eq!(
                (jobs[0].sync_type.as_str(), jobs[0].trigger.as_str()),
                ("incremental", "schedule")
            );
        }
    }
}
