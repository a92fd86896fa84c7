-- Pending interactive requests (delegated sign-in, admin consent) kept server-side: the
-- state is stored as its SHA-256 hash and the PKCE verifier as vault ciphertext, bound to
-- an organization and a connection, valid until `expires_at`, deleted when used.
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('sign_in', 'admin_consent')),
    verifier_ciphertext BYTEA NOT NULL,
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

-- A connection its owner disconnected keeps its synced data but no credentials; an
-- administrator's tenant-wide consent to the platform's app is recorded when it arrives.
ALTER TABLE connections DROP CONSTRAINT connections_status_check;
ALTER TABLE connections ADD CONSTRAINT connections_status_check
    CHECK (status IN ('active', 'error', 'disabled', 'disconnected'));
ALTER TABLE connections ADD COLUMN consented_at TIMESTAMP;
