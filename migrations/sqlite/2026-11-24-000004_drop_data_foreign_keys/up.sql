-- SQLite keeps the foreign keys of the synced tables: its check is a cheap lookup in the
-- same file, and dropping a constraint there means rebuilding the table. The PostgreSQL
-- half of this pair drops them (see its up.sql).
SELECT 1;
