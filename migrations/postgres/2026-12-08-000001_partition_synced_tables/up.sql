-- Each connection's synced rows live in partitions of their own (LIST on connection_id),
-- and a partition's secondary indexes are built when the connection's first load of that
-- table ends, not kept up to date row by row while it loads.
--
-- Measured on a 100,000-user tenant (1.1M membership edges, 50,000 devices, 100,000
-- sign-ins) into PostgreSQL on 2 cores: keeping the 15 secondary indexes up to date was
-- about a third of a full sync's time (every row meant a descent into each index at a
-- random leaf), while building them once the rows are in takes about 2 s of CPU in all
-- (sorted builds, the membership index 0.5 s). A partition holds one connection, so its
-- indexes no longer start with the connection's 36-character id either.
--
-- Parents carry only the primary keys (they include the partition key, so uniqueness and
-- ON CONFLICT work through the parent). The functions below are the only place partitions
-- and their indexes are defined; the store calls them:
--   tenantlink_add_partition(table, connection)    when a connection is created (and,
--                                                  idempotently, when a sync run starts)
--   tenantlink_finish_load(table, connection)      when a full round (or an audit log's
--                                                  first pass) ends: builds missing indexes,
--                                                  then refreshes the planner's statistics
--   tenantlink_drop_partition(table, connection)   after a connection and its rows are gone
-- A partition is attached (ATTACH PARTITION: no lock that stops other connections' reads
-- or writes), never created with PARTITION OF (which waits for every query on the parent).

-- The partition of `tbl` for connection `conn`: the table's name and the md5 of the id
-- (a valid identifier whatever the id, and short enough for index names after it).
CREATE FUNCTION tenantlink_partition(tbl text, conn text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT tbl || '_' || md5(conn) $$;

-- Secondary indexes of a partition: (name suffix, definition). Within a partition the
-- connection is fixed, so no index starts with it. Membership edges are looked up by
-- member only by equality; a B-tree builds from sorted input in a quarter of a hash
-- index's time.
CREATE FUNCTION tenantlink_partition_indexes(tbl text) RETURNS TABLE (suffix text, definition text)
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT i.suffix, i.definition FROM (VALUES
        ('users', 'department', '(department)'),
        ('users', 'search_display_name', '(lower(display_name) COLLATE "C", id)'),
        ('users', 'search_given_name', '(lower(given_name) COLLATE "C", id)'),
        ('users', 'search_surname', '(lower(surname) COLLATE "C", id)'),
        ('users', 'search_upn', '(lower(user_principal_name) COLLATE "C", id)'),
        ('users', 'search_mail', '(lower(mail) COLLATE "C", id)'),
        ('groups', 'search_display_name', '(lower(display_name) COLLATE "C", id)'),
        ('groups', 'search_mail', '(lower(mail) COLLATE "C", id)'),
        ('group_members', 'member', '(member_id)'),
        ('managed_devices', 'search_name', '(lower(device_name) COLLATE "C", id)'),
        ('managed_devices', 'user', '(user_id)'),
        ('sign_ins', 'time', '(created_at)'),
        ('sign_ins', 'user', '(user_id, created_at)'),
        ('directory_audits', 'time', '(activity_at)'),
        ('security_alerts', 'time', '(created_at)')
    ) AS i (tbl, suffix, definition)
    WHERE i.tbl = tenantlink_partition_indexes.tbl
$$;

CREATE FUNCTION tenantlink_add_partition(tbl text, conn text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    part text := tenantlink_partition(tbl, conn);
BEGIN
    -- Two processes adding the same partition take turns.
    PERFORM pg_advisory_xact_lock(hashtext('tenantlink partition'), hashtext(part));
    IF to_regclass(quote_ident(part)) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)%s',
            part, tbl,
            -- Half of each page free: a round's signInActivity update of a user (and a
            -- later round's seen_round stamp) stays on the row's page, a HOT update.
            CASE WHEN tbl = 'users' THEN ' WITH (fillfactor = 50)' ELSE '' END);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(quote_ident(part))) THEN
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES IN (%L)', tbl, part, conn);
    END IF;
END
$$;

CREATE FUNCTION tenantlink_finish_load(tbl text, conn text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    part text := tenantlink_partition(tbl, conn);
    idx record;
BEGIN
    IF to_regclass(quote_ident(part)) IS NULL THEN
        RETURN;
    END IF;
    -- Sorted builds of a large load stay in memory.
    PERFORM set_config('maintenance_work_mem', '128MB', true);
    FOR idx IN SELECT * FROM tenantlink_partition_indexes(tbl) LOOP
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I %s',
            part || '_' || idx.suffix, part, idx.definition);
    END LOOP;
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

CREATE FUNCTION tenantlink_drop_partition(tbl text, conn text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', tenantlink_partition(tbl, conn));
END
$$;

-- The tables, partitioned: each keeps its columns (LIKE the old table: types, collations,
-- NOT NULL, defaults) and its primary key. Their rows move to their connections' new
-- partitions; rows of no connection, which only a bug could have left, go with the old
-- tables.
DO $$
DECLARE
    tbl text;
    pkey text;
    conn text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['users', 'groups', 'group_members', 'managed_devices',
                               'sign_ins', 'directory_audits', 'security_alerts'] LOOP
        SELECT pg_get_constraintdef(oid) INTO STRICT pkey
            FROM pg_constraint WHERE conrelid = tbl::regclass AND contype = 'p';
        EXECUTE format('ALTER TABLE %I RENAME TO %I', tbl, tbl || '_unpartitioned');
        EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I',
            tbl || '_unpartitioned', tbl || '_pkey', tbl || '_unpartitioned_pkey');
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS, %s) PARTITION BY LIST (connection_id)',
            tbl, tbl || '_unpartitioned', pkey);
        FOR conn IN SELECT id FROM connections LOOP
            PERFORM tenantlink_add_partition(tbl, conn);
        END LOOP;
        EXECUTE format('INSERT INTO %I SELECT * FROM %I WHERE connection_id IN (SELECT id FROM connections)',
            tbl, tbl || '_unpartitioned');
        FOR conn IN SELECT id FROM connections LOOP
            PERFORM tenantlink_finish_load(tbl, conn);
        END LOOP;
        EXECUTE format('DROP TABLE %I', tbl || '_unpartitioned');
    END LOOP;
END
$$;
