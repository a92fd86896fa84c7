-- The synced copy of a tenant. Every row belongs to one connection and is keyed by
-- (connection_id, Microsoft object id); seen_round is the sync round that last wrote it.
CREATE TABLE users (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
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
    PRIMARY KEY (connection_id, id)
);
CREATE INDEX users_upn ON users (connection_id, user_principal_name);
CREATE INDEX users_department ON users (connection_id, department);

CREATE TABLE groups (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
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
    PRIMARY KEY (connection_id, id)
);

-- Direct edges only; transitive membership is a recursive query.
CREATE TABLE group_members (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_type TEXT NOT NULL,
    seen_round BIGINT NOT NULL,
    PRIMARY KEY (connection_id, group_id, member_id)
);
CREATE INDEX group_members_member ON group_members (connection_id, member_id);

CREATE TABLE managed_devices (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
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
    PRIMARY KEY (connection_id, id)
);
CREATE INDEX managed_devices_user ON managed_devices (connection_id, user_id);

-- Audit data: key columns to filter on, and the record as Graph sent it.
CREATE TABLE sign_ins (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    user_id TEXT,
    user_principal_name TEXT,
    app_display_name TEXT,
    ip_address TEXT,
    status_code BIGINT,
    raw TEXT NOT NULL,
    PRIMARY KEY (connection_id, id)
);
CREATE INDEX sign_ins_time ON sign_ins (connection_id, created_at);

CREATE TABLE directory_audits (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    activity_at TIMESTAMP NOT NULL,
    activity_display_name TEXT,
    category TEXT,
    result TEXT,
    raw TEXT NOT NULL,
    PRIMARY KEY (connection_id, id)
);
CREATE INDEX directory_audits_time ON directory_audits (connection_id, activity_at);

CREATE TABLE security_alerts (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP,
    title TEXT,
    severity TEXT,
    status TEXT,
    raw TEXT NOT NULL,
    PRIMARY KEY (connection_id, id)
);
CREATE INDEX security_alerts_time ON security_alerts (connection_id, created_at);
