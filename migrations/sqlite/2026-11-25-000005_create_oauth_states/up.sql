-- Pending interactive requests (delegated sign-in, admin consent) kept server-side: the
-- state is stored as its SHA-256 hash and the PKCE verifier as vault ciphertext, bound to
-- an organization and a connection, valid until `expires_at`, deleted when used.
--
-- A connection its owner disconnected keeps its synced data but no credentials
-- (status `disconnected`); an administrator's tenant-wide consent is recorded in
-- `consented_at`. SQLite cannot change a CHECK constraint, so `connections` is rebuilt
-- (the documented twelve steps: foreign keys off, copy, drop, rename, check).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE connections_new (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    auth_kind TEXT NOT NULL CHECK (auth_kind IN ('client_secret', 'certificate', 'delegated')),
    secret_ciphertext BLOB,
    secret_key_id TEXT,
    secret_expires_at TIMESTAMP,
    status TEXT NOT NULL CHECK (status IN ('active', 'error', 'disabled', 'disconnected')),
    last_error TEXT,
    granted_permissions TEXT NOT NULL DEFAULT '',
    missing_permissions TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    consented_at TIMESTAMP,
    UNIQUE (organization_id, tenant_id, client_id),
    CHECK ((secret_ciphertext IS NULL) = (secret_key_id IS NULL))
);
INSERT INTO connections_new (
    id, organization_id, tenant_id, client_id, auth_kind, secret_ciphertext, secret_key_id,
    secret_expires_at, status, last_error, granted_permissions, missing_permissions,
    created_at, updated_at
)
SELECT
    id, organization_id, tenant_id, client_id, auth_kind, secret_ciphertext, secret_key_id,
    secret_expires_at, status, last_error, granted_permissions, missing_permissions,
    created_at, updated_at
FROM connections;
DROP TABLE connections;
ALTER TABLE connections_new RENAME TO connections;
CREATE INDEX connections_secret_key_id ON connections (secret_key_id);

CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('sign_in', 'admin_consent')),
    verifier_ciphertext BLOB NOT NULL,
    key_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX oauth_states_connection ON oauth_states (connection_id);
CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);
CREATE INDEX oauth_states_key_id ON oauth_states (key_id);

COMMIT;
PRAGMA foreign_keys = ON;
