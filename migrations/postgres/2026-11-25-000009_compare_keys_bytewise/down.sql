ALTER TABLE security_alerts
    ALTER COLUMN connection_id TYPE TEXT COLLATE "default",
    ALTER COLUMN id TYPE TEXT COLLATE "default";
ALTER TABLE directory_audits
    ALTER COLUMN connection_id TYPE TEXT COLLATE "default",
    ALTER COLUMN id TYPE TEXT COLLATE "default";
ALTER TABLE sign_ins
    ALTER COLUMN connection_id TYPE TEXT COLLATE "default",
    ALTER COLUMN id TYPE TEXT COLLATE "default";
ALTER TABLE managed_devices
    ALTER COLUMN connection_id TYPE TEXT COLLATE "default",
    ALTER COLUMN id TYPE TEXT COLLATE "default";
ALTER TABLE groups
    ALTER COLUMN connection_id TYPE TEXT COLLATE "default",
    ALTER COLUMN id TYPE TEXT COLLATE "default";
ALTER TABLE users
    ALTER COLUMN connection_id TYPE TEXT COLLATE "default",
    ALTER COLUMN id TYPE TEXT COLLATE "default";

ALTER TABLE group_members DROP CONSTRAINT group_members_pkey;
ALTER TABLE group_members
    ALTER COLUMN connection_id TYPE TEXT COLLATE "default",
    ALTER COLUMN group_id TYPE TEXT COLLATE "default",
    ALTER COLUMN member_id TYPE TEXT COLLATE "default";
ALTER TABLE group_members ADD PRIMARY KEY (group_id, member_id, connection_id);
CREATE INDEX group_members_connection ON group_members (connection_id);
