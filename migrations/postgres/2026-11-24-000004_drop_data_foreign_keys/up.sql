-- Synced rows no longer carry a foreign key to connections: the check cost a trigger
-- call per written row (about a third of PostgreSQL's time on a full sync), and the
-- store already deletes a connection's rows itself, in the same transaction as the
-- connection (Db::delete_connection).
ALTER TABLE users DROP CONSTRAINT users_connection_id_fkey;
ALTER TABLE groups DROP CONSTRAINT groups_connection_id_fkey;
ALTER TABLE group_members DROP CONSTRAINT group_members_connection_id_fkey;
ALTER TABLE managed_devices DROP CONSTRAINT managed_devices_connection_id_fkey;
ALTER TABLE sign_ins DROP CONSTRAINT sign_ins_connection_id_fkey;
ALTER TABLE directory_audits DROP CONSTRAINT directory_audits_connection_id_fkey;
ALTER TABLE security_alerts DROP CONSTRAINT security_alerts_connection_id_fkey;
