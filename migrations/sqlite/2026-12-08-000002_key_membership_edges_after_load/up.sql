-- PostgreSQL only (see the PostgreSQL half of this pair): SQLite has no partitions, and a
-- sync into SQLite keeps its membership edges' primary key as it writes.
SELECT 1;
