-- Back to one table each (LIKE the partitioned one, with its primary key), every
-- connection's rows in it, with the indexes of 2026-11-25-000009_compare_keys_bytewise.
DO $$
DECLARE
    tbl text;
    pkey text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['users', 'groups', 'group_members', 'managed_devices',
                               'sign_ins', 'directory_audits', 'security_alerts'] LOOP
        SELECT pg_get_constraintdef(oid) INTO STRICT pkey
            FROM pg_constraint WHERE conrelid = tbl::regclass AND contype = 'p';
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS, CONSTRAINT %I %s)%s',
            tbl || '_plain', tbl, tbl || '_plain_pkey', pkey,
            CASE WHEN tbl = 'users' THEN ' WITH (fillfactor = 50)' ELSE '' END);
        EXECUTE format('INSERT INTO %I SELECT * FROM %I', tbl || '_plain', tbl);
        EXECUTE format('DROP TABLE %I', tbl);
        EXECUTE format('ALTER TABLE %I RENAME TO %I', tbl || '_plain', tbl);
        EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I', tbl, tbl || '_plain_pkey', tbl || '_pkey');
    END LOOP;
END
$$;

CREATE INDEX users_department ON users (connection_id, department);
CREATE INDEX users_search_display_name ON users (connection_id, lower(display_name) COLLATE "C", id);
CREATE INDEX users_search_given_name ON users (connection_id, lower(given_name) COLLATE "C", id);
CREATE INDEX users_search_surname ON users (connection_id, lower(surname) COLLATE "C", id);
CREATE INDEX users_search_upn ON users (connection_id, lower(user_principal_name) COLLATE "C", id);
CREATE INDEX users_search_mail ON users (connection_id, lower(mail) COLLATE "C", id);
CREATE INDEX groups_search_display_name ON groups (connection_id, lower(display_name) COLLATE "C", id);
CREATE INDEX groups_search_mail ON groups (connection_id, lower(mail) COLLATE "C", id);
CREATE INDEX group_members_member ON group_members USING hash (member_id);
CREATE INDEX managed_devices_search_name ON managed_devices (connection_id, lower(device_name) COLLATE "C", id);
CREATE INDEX managed_devices_user ON managed_devices (connection_id, user_id);
CREATE INDEX sign_ins_time ON sign_ins (connection_id, created_at);
CREATE INDEX sign_ins_user ON sign_ins (connection_id, user_id, created_at);
CREATE INDEX directory_audits_time ON directory_audits (connection_id, activity_at);
CREATE INDEX security_alerts_time ON security_alerts (connection_id, created_at);

DROP FUNCTION tenantlink_drop_partition(text, text);
DROP FUNCTION tenantlink_finish_load(text, text);
DROP FUNCTION tenantlink_add_partition(text, text);
DROP FUNCTION tenantlink_partition_indexes(text);
DROP FUNCTION tenantlink_partition(text, text);
