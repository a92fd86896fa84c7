CREATE INDEX users_upn ON users (connection_id, user_principal_name);
