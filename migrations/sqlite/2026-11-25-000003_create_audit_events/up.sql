-- The audit trail: who did what to which thing, with what outcome. Append-only and
-- hash-chained: each event's hash covers the previous event's hash and its own fields, so
-- an edited, inserted or deleted row breaks the chain (`tenantlink audit verify`).
--
-- `seq` is assigned from the single row of `audit_chain_head`, read and updated in the
-- (immediate) transaction that appends: seqs have no gaps, and the head also remembers the
-- last seq and hash, so deleting the newest events is caught.
-- No foreign key to organizations: the trail outlives what it describes.
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    organization_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    request_id TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_organization ON audit_events (organization_id, seq);

CREATE TABLE audit_chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_chain_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
