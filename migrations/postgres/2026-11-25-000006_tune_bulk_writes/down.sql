DROP INDEX group_members_connection;
DROP INDEX group_members_member;
CREATE INDEX group_members_member ON group_members (connection_id, member_id);
ALTER TABLE group_members DROP CONSTRAINT group_members_pkey;
ALTER TABLE group_members ADD PRIMARY KEY (connection_id, group_id, member_id);
ALTER TABLE users RESET (fillfactor);
