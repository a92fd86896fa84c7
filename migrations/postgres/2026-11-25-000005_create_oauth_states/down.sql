DROP TABLE oauth_states;
ALTER TABLE connections DROP COLUMN consented_at;
UPDATE connections SET status = 'disabled' WHERE status = 'disconnected';
ALTER TABLE connections DROP CONSTRAINT connections_status_check;
ALTER TABLE connections ADD CONSTRAINT connections_status_check
    CHECK (status IN ('active', 'error', 'disabled'));
