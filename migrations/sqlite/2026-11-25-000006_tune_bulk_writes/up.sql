-- PostgreSQL only (see the PostgreSQL half of this pair): SQLite has no fillfactor, and
-- rebuilding its membership table to reorder a key would buy nothing measured.
SELECT 1;
