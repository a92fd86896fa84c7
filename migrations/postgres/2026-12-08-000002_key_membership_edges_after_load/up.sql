-- A connection's membership edges are keyed (made unique) when their first load ends,
-- like the partition's other indexes, not while the first load writes them.
--
-- Measured on a 100,000-user tenant (1.1M edges) on 2 cores: keeping the edges' primary
-- key up to date row by row was about two thirds of PostgreSQL's time for the groups
-- round (a groups-only full sync: 11.2-11.9 CPU-s with it, 7.0-7.7 without), and the
-- sorted build afterwards takes about half a second.
--
-- So the parent table has no primary key any more (a partitioned table's key would give
-- every partition its index from the moment it is attached). Each partition gets a
-- unique index on (group_id, member_id), the key within one connection, built by
-- tenantlink_index_partition. Until then a first full round inserts its edges with
-- ON CONFLICT DO NOTHING (no arbiter yet: a plain insert); an edge Graph sent twice is
-- then stored twice, and the build keeps one of them (every copy is the same: the key,
-- the member's type and the round). Later rounds upsert into the partition itself,
-- whose key is the arbiter; the store makes sure it exists before such a write.
--
-- The functions of 2026-12-08-000001 stay the only place partitions and their indexes
-- are defined; tenantlink_partition_indexes now says which are unique,
-- tenantlink_build_index builds one of them (the store runs two builds at a time when a
-- load ends), and tenantlink_index_partition builds all that a partition lacks
-- (tenantlink_finish_load calls it, then refreshes the statistics).

ALTER TABLE group_members DROP CONSTRAINT group_members_pkey;

DROP FUNCTION tenantlink_finish_load(text, text);
DROP FUNCTION tenantlink_partition_indexes(text);

-- Indexes of a partition: (name suffix, definition, whether unique). Within a partition
-- the connection is fixed, so no index starts with it. Membership edges are looked up by
-- member only by equality; a B-tree builds from sorted input in a quarter of a hash
-- index's time.
CREATE FUNCTION tenantlink_partition_indexes(tbl text)
RETURNS TABLE (suffix text, definition text, is_unique boolean)
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT i.suffix, i.definition, i.is_unique FROM (VALUES
        ('users', 'department', '(department)', false),
        ('users', 'search_display_name', '(lower(display_name) COLLATE "C", id)', false),
        ('users', 'search_given_name', '(lower(given_name) COLLATE "C", id)', false),
        ('users', 'search_surname', '(lower(surname) COLLATE "C", id)', false),
        ('users', 'search_upn', '(lower(user_principal_name) COLLATE "C", id)', false),
        ('users', 'search_mail', '(lower(mail) COLLATE "C", id)', false),
        ('groups', 'search_display_name', '(lower(display_name) COLLATE "C", id)', false),
        ('groups', 'search_mail', '(lower(mail) COLLATE "C", id)', false),
        ('group_members', 'key', '(group_id, member_id)', true),
        ('group_members', 'member', '(member_id)', false),
        ('managed_devices', 'search_name', '(lower(device_name) COLLATE "C", id)', false),
        ('managed_devices', 'user', '(user_id)', false),
        ('sign_ins', 'time', '(created_at)', false),
        ('sign_ins', 'user', '(user_id, created_at)', false),
        ('directory_audits', 'time', '(activity_at)', false),
        ('security_alerts', 'time', '(created_at)', false)
    ) AS i (tbl, suffix, definition, is_unique)
    WHERE i.tbl = tenantlink_partition_indexes.tbl
$$;

-- Builds index `suffix` of `conn`'s partition of `tbl` unless it exists. A unique index
-- whose rows repeat a key (a first load writes without one) is built once the repeats are
-- gone, one row of each kept. Builds of one partition's indexes may run side by side, each
-- in its own session (all take the same lock, which lets the others in).
CREATE FUNCTION tenantlink_build_index(tbl text, conn text, suffix text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    part text := tenantlink_partition(tbl, conn);
    idx record;
    build text;
BEGIN
    SELECT * INTO STRICT idx FROM tenantlink_partition_indexes(tbl) AS i
        WHERE i.suffix = tenantlink_build_index.suffix;
    IF to_regclass(quote_ident(part)) IS NULL
        OR to_regclass(quote_ident(part || '_' || suffix)) IS NOT NULL THEN
        RETURN;
    END IF;
    build := format('CREATE %s INDEX %I ON %I %s',
        CASE WHEN idx.is_unique THEN 'UNIQUE' ELSE '' END,
        part || '_' || suffix, part, idx.definition);
    -- A sorted build of a large load stays in memory.
    PERFORM set_config('maintenance_work_mem', '128MB', true);
    BEGIN
        EXECUTE build;
    EXCEPTION WHEN unique_violation THEN
        EXECUTE format(
            'DELETE FROM %1$I WHERE ctid IN (SELECT ctid FROM (SELECT ctid, row_number() '
            'OVER (PARTITION BY %2$s) AS n FROM %1$I) AS r WHERE n > 1)',
            part, btrim(idx.definition, '()'));
        EXECUTE build;
    END;
END
$$;

-- Builds the indexes `conn`'s partition of `tbl` lacks, one after another; returns the
-- partition's name (NULL when it does not exist).
CREATE FUNCTION tenantlink_index_partition(tbl text, conn text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    part text := tenantlink_partition(tbl, conn);
BEGIN
    IF to_regclass(quote_ident(part)) IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM tenantlink_build_index(tbl, conn, i.suffix)
        FROM tenantlink_partition_indexes(tbl) AS i;
    RETURN part;
END
$$;

CREATE FUNCTION tenantlink_finish_load(tbl text, conn text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    part text := tenantlink_index_partition(tbl, conn);
BEGIN
    IF part IS NULL THEN
        RETURN;
    END IF;
    -- A load leaves the planner's statistics stale (on a new partition they do not exist
    -- yet), and with them it picks a hash join over all of the connection's rows for the
    -- small, id-keyed statements that follow. A sample of 6,000 rows (statistics target
    -- 20; the default 100 samples 30,000) is enough for those plans and reads a fifth of
    -- the pages (1.1M edges: 150 ms -> 30 ms); autovacuum's later ANALYZE of the
    -- partition uses the server's target.
    PERFORM set_config('default_statistics_target', '20', true);
    EXECUTE format('ANALYZE %I', part);
END
$$;

-- The edges already stored were unique under the old key: each connection's partition
-- gets its key now.
DO $$
DECLARE
    conn text;
BEGIN
    FOR conn IN SELECT id FROM connections LOOP
        PERFORM tenantlink_index_partition('group_members', conn);
    END LOOP;
END
$$;
