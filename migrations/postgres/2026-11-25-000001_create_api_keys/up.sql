-- API keys of organizations. The key itself is shown once, when it is made; only a
-- SHA-256 hash of its secret part is kept, so a copy of the database lets no one in.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP,
    last_used_at TIMESTAMP
);
CREATE INDEX api_keys_organization ON api_keys (organization_id);
