DROP TABLE audit_chain_head;
DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();
