ALTER TABLE users ADD CONSTRAINT users_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE;
ALTER TABLE groups ADD CONSTRAINT groups_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE;
ALTER TABLE group_members ADD CONSTRAINT group_members_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE;
ALTER TABLE managed_devices ADD CONSTRAINT managed_devices_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE;
ALTER TABLE sign_ins ADD CONSTRAINT sign_ins_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE;
ALTER TABLE directory_audits ADD CONSTRAINT directory_audits_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE;
ALTER TABLE security_alerts ADD CONSTRAINT security_alerts_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE;
