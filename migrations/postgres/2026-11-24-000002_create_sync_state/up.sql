-- Sync runs and the cursors that make them resumable: a delta or next link, a time cursor
-- and the round every row was last seen in (for sweeping rows a full round did not see).
CREATE TABLE sync_runs (
    id TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    sync_type TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed')),
    started_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    report TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
CREATE INDEX sync_runs_connection ON sync_runs (connection_id, started_at);
-- At most one live run per connection: two runs would move the same cursors and sweep each
-- other's rows.
CREATE UNIQUE INDEX sync_runs_one_running ON sync_runs (connection_id) WHERE status = 'running';

CREATE TABLE sync_cursors (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    resource TEXT NOT NULL,
    round BIGINT NOT NULL DEFAULT 0,
    full_round BOOLEAN NOT NULL DEFAULT FALSE,
    run_id TEXT,
    next_link TEXT,
    delta_link TEXT,
    time_cursor TIMESTAMP,
    round_started_at TIMESTAMP,
    pages BIGINT NOT NULL DEFAULT 0,
    rows_written BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (connection_id, resource)
);
