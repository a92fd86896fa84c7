-- PostgreSQL only (see the PostgreSQL half of this pair): SQLite has no hash indexes.
SELECT 1;
