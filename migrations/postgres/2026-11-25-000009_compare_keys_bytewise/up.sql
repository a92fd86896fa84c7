-- Synced rows' keys compare byte-wise (collation "C"), whatever the database's default.
-- Under any other collation, even C.UTF-8, PostgreSQL compares two text keys by copying
-- both into NUL-terminated buffers and calling strcoll: in a full sync, where every
-- written row adds entries to indexes that all start with the connection's 36-character
-- id, that was a large part of each B-tree descent. Byte order is also the order of the
-- ids in every deployment, and these columns are only ever compared for equality or to
-- page through them.
--
-- Membership edges go back to a primary key that leads with the connection (migration
-- 2026-11-25-000006 moved it last because those comparisons were dear), and the narrow
-- connection index it needed goes: the primary key serves a connection's sweeps, counts and
-- deletion. Inserting 1.1M edges a page at a time, 1,000 per statement: 5.4-5.8 s of
-- PostgreSQL time before, 4.4-4.6 s after; 100,000 users with their eight indexes, about
-- 6% less.
ALTER TABLE group_members DROP CONSTRAINT group_members_pkey;
DROP INDEX group_members_connection;
ALTER TABLE group_members
    ALTER COLUMN connection_id TYPE TEXT COLLATE "C",
    ALTER COLUMN group_id TYPE TEXT COLLATE "C",
    ALTER COLUMN member_id TYPE TEXT COLLATE "C";
ALTER TABLE group_members ADD PRIMARY KEY (connection_id, group_id, member_id);

ALTER TABLE users
    ALTER COLUMN connection_id TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE groups
    ALTER COLUMN connection_id TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE managed_devices
    ALTER COLUMN connection_id TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE sign_ins
    ALTER COLUMN connection_id TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE directory_audits
    ALTER COLUMN connection_id TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE security_alerts
    ALTER COLUMN connection_id TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C";
