-- Organizations, their Microsoft tenant connections, delegated tokens.
-- Secrets are ciphertext (Fernet tokens written by the vault) with the id of the key that
-- wrote them; the database never holds a plaintext secret or a key.
CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE connections (
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
CREATE INDEX connections_secret_key_id ON connections (secret_key_id);

CREATE TABLE delegated_tokens (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    principal TEXT NOT NULL,
    token_ciphertext BLOB NOT NULL,
    key_id TEXT NOT NULL,
    expires_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (connection_id, principal)
);
CREATE INDEX delegated_tokens_key_id ON delegated_tokens (key_id);
