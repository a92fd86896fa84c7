-- PostgreSQL only (see the PostgreSQL half of this pair): SQLite compares text byte-wise
-- (BINARY) unless told otherwise, and its membership key already leads with the connection.
SELECT 1;
