-- Back to one table each, every connection's rows in it, with the indexes of
-- 2026-11-25-000009_compare_keys_bytewise.

CREATE TABLE users_plain (
    connection_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    display_name TEXT,
    user_principal_name TEXT,
    given_name TEXT,
    surname TEXT,
    mail TEXT,
    department TEXT,
    job_title TEXT,
    office_location TEXT,
    mobile_phone TEXT,
    account_enabled BOOLEAN,
    user_type TEXT,
    created_at TIMESTAMP,
    manager_id TEXT,
    last_sign_in_at TIMESTAMP,
    last_non_interactive_sign_in_at TIMESTAMP,
    deleted_at TIMESTAMP,
    seen_round BIGINT NOT NULL,
    CONSTRAINT users_plain_pkey PRIMARY KEY (connection_id, id)
) WITH (fillfactor = 50);
INSERT INTO users_plain SELECT * FROM users;
DROP TABLE users;
ALTER TABLE users_plain RENAME TO users;
ALTER TABLE users RENAME CONSTRAINT users_plain_pkey TO users_pkey;

CREATE TABLE groups_plain (
    connection_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    display_name TEXT,
    description TEXT,
    mail TEXT,
    mail_nickname TEXT,
    kind TEXT NOT NULL,
    group_types TEXT NOT NULL,
    mail_enabled BOOLEAN,
    security_enabled BOOLEAN,
    visibility TEXT,
    created_at TIMESTAMP,
    deleted_at TIMESTAMP,
    seen_round BIGINT NOT NULL,
    CONSTRAINT groups_plain_pkey PRIMARY KEY (connection_id, id)
);
INSERT INTO groups_plain SELECT * FROM groups;
DROP TABLE groups;
ALTER TABLE groups_plain RENAME TO groups;
ALTER TABLE groups RENAME CONSTRAINT groups_plain_pkey TO groups_pkey;

CREATE TABLE group_members_plain (
    connection_id TEXT COLLATE "C" NOT NULL,
    group_id TEXT COLLATE "C" NOT NULL,
    member_id TEXT COLLATE "C" NOT NULL,
    member_type TEXT NOT NULL,
    seen_round BIGINT NOT NULL,
    CONSTRAINT group_members_plain_pkey PRIMARY KEY (connection_id, group_id, member_id)
);
INSERT INTO group_members_plain SELECT * FROM group_members;
DROP TABLE group_members;
ALTER TABLE group_members_plain RENAME TO group_members;
ALTER TABLE group_members RENAME CONSTRAINT group_members_plain_pkey TO group_members_pkey;

CREATE TABLE managed_devices_plain (
    connection_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    device_name TEXT,
    user_id TEXT,
    user_principal_name TEXT,
    operating_system TEXT,
    os_version TEXT,
    compliance_state TEXT,
    owner_type TEXT,
    is_encrypted BOOLEAN,
    manufacturer TEXT,
    model TEXT,
    serial_number TEXT,
    azure_ad_device_id TEXT,
    enrolled_at TIMESTAMP,
    last_sync_at TIMESTAMP,
    seen_round BIGINT NOT NULL,
    CONSTRAINT managed_devices_plain_pkey PRIMARY KEY (connection_id, id)
);
INSERT INTO managed_devices_plain SELECT * FROM managed_devices;
DROP TABLE managed_devices;
ALTER TABLE managed_devices_plain RENAME TO managed_devices;
ALTER TABLE managed_devices RENAME CONSTRAINT managed_devices_plain_pkey TO managed_devices_pkey;

CREATE TABLE sign_ins_plain (
    connection_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    created_at TIMESTAMP NOT NULL,
    user_id TEXT,
    user_principal_name TEXT,
    app_display_name TEXT,
    ip_address TEXT,
    status_code BIGINT,
    raw TEXT NOT NULL,
    CONSTRAINT sign_ins_plain_pkey PRIMARY KEY (connection_id, id)
);
INSERT INTO sign_ins_plain SELECT * FROM sign_ins;
DROP TABLE sign_ins;
ALTER TABLE sign_ins_plain RENAME TO sign_ins;
ALTER TABLE sign_ins RENAME CONSTRAINT sign_ins_plain_pkey TO sign_ins_pkey;

CREATE TABLE directory_audits_plain (
    connection_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    activity_at TIMESTAMP NOT NULL,
    activity_display_name TEXT,
    category TEXT,
    result TEXT,
    raw TEXT NOT NULL,
    CONSTRAINT directory_audits_plain_pkey PRIMARY KEY (connection_id, id)
);
INSERT INTO directory_audits_plain SELECT * FROM directory_audits;
DROP TABLE directory_audits;
ALTER TABLE directory_audits_plain RENAME TO directory_audits;
ALTER TABLE directory_audits RENAME CONSTRAINT directory_audits_plain_pkey TO directory_audits_pkey;

CREATE TABLE security_alerts_plain (
    connection_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP,
    title TEXT,
    severity TEXT,
    status TEXT,
    raw TEXT NOT NULL,
    CONSTRAINT security_alerts_plain_pkey PRIMARY KEY (connection_id, id)
);
INSERT INTO security_alerts_plain SELECT * FROM security_alerts;
DROP TABLE security_alerts;
ALTER TABLE security_alerts_plain RENAME TO security_alerts;
ALTER TABLE security_alerts RENAME CONSTRAINT security_alerts_plain_pkey TO security_alerts_pkey;

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
