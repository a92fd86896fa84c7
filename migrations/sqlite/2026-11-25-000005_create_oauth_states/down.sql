PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

DROP TABLE oauth_states;

CREATE TABLE connections_old (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    auth_kind TEXT NOT NULL CHECK (auth_kind IN ('client_secret', 'certificate', 'delegated')),
    secret_ciphertext BLOB,
    secret_key_id TEXT,
    secret_expires_at TIMESTAMP,
    status TEXT NOT NULL CHECK (status IN ('active', 'error', 'disabled')),
    last_error TEXT,
    granted_permissions TEXT NOT NULL DEFAULT '',
    missing_permissions TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (organization_id, tenant_id, client_id),
    CHECK ((secret_ciphertext IS NULL) = (secret_key_id IS NULL))
);
INSERT INTO connections_old
SELECT
    id, organization_id, tenant_id, client_id, auth_kind, secret_ciphertext, secret_key_id,
    secret_expires_at,
    CASE status WHEN 'disconnected' THEN 'disabled' ELSE status END,
    last_error, granted_permissions, missing_permissions, created_at, updated_at
FROM connections;
DROP TABLE connections;
ALTER TABLE connections_old RENAME TO connections;
CREATE INDEX connections_secret_key_id ON connections (secret_key_id);

COMMIT;
PRAGMA foreign_keys = ON;
