-- PostgreSQL only (see the PostgreSQL half of this pair): SQLite has no partitions, and a
-- sync into SQLite keeps its indexes up to date as it writes.
SELECT 1;
