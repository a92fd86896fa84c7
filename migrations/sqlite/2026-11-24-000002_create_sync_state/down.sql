DROP TABLE sync_cursors;
DROP TABLE sync_runs;
