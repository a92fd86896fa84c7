-- Indexes of the API's paged reads. A case-insensitive prefix search is a range on
-- lower(column) (compared byte-wise: collation "C" on PostgreSQL, SQLite's default BINARY),
-- so each searched column has an index (connection_id, lower(column), id) (ids byte-wise too:
-- a search pages by (value, id) in that order). Sign-ins are
-- listed per user, newest first.
CREATE INDEX users_search_display_name ON users (connection_id, lower(display_name) COLLATE "C", id COLLATE "C");
CREATE INDEX users_search_given_name ON users (connection_id, lower(given_name) COLLATE "C", id COLLATE "C");
CREATE INDEX users_search_surname ON users (connection_id, lower(surname) COLLATE "C", id COLLATE "C");
CREATE INDEX users_search_upn ON users (connection_id, lower(user_principal_name) COLLATE "C", id COLLATE "C");
CREATE INDEX users_search_mail ON users (connection_id, lower(mail) COLLATE "C", id COLLATE "C");
CREATE INDEX groups_search_display_name ON groups (connection_id, lower(display_name) COLLATE "C", id COLLATE "C");
CREATE INDEX groups_search_mail ON groups (connection_id, lower(mail) COLLATE "C", id COLLATE "C");
CREATE INDEX managed_devices_search_name ON managed_devices (connection_id, lower(device_name) COLLATE "C", id COLLATE "C");
CREATE INDEX sign_ins_user ON sign_ins (connection_id, user_id, created_at);
