-- Sync jobs: syncs asked for over the API or by the scheduler, taken by workers under a
-- lease. A worker that dies leaves its lease to expire; another worker then claims the
-- job and the engine resumes its run (`run_id`) from the run's checkpoints.
CREATE TABLE sync_jobs (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    sync_type TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'complete', 'partial', 'failed')),
    "trigger" TEXT NOT NULL CHECK ("trigger" IN ('api', 'schedule')),
    requested_by TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before TIMESTAMP NOT NULL,
    lease_owner TEXT,
    lease_expires_at TIMESTAMP,
    run_id TEXT,
    progress TEXT NOT NULL DEFAULT '{}',
    report TEXT,
    error TEXT,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
-- One active (queued or running) job per connection and sync type: a second request
-- while one is active gets that one, and concurrent schedulers cannot enqueue twice.
CREATE UNIQUE INDEX sync_jobs_one_active ON sync_jobs (connection_id, sync_type)
    WHERE status IN ('queued', 'running');
CREATE INDEX sync_jobs_claimable ON sync_jobs (created_at)
    WHERE status IN ('queued', 'running');
CREATE INDEX sync_jobs_connection ON sync_jobs (connection_id, created_at);
