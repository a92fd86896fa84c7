//! Connecting a tenant: verify, encrypt, store; re-encrypt under a new key.
