//! The sync engine's errors: what failed, in the words of the part that failed.

/// What can stop a sync or a credential operation. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Options or input that cannot work.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] tenantlink_store::Error),
    /// Microsoft Graph failed in a way that stops the run.
    #[error(transparent)]
    Graph(#[from] tenantlink_graph::Error),
    /// Signing in to Entra ID failed (boxed: Entra ID's errors carry trace details).
    #[error(transparent)]
    Identity(Box<tenantlink_identity::Error>),
    /// Encrypting or decrypting a stored secret failed.
    #[error(transparent)]
    Vault(#[from] tenantlink_vault::Error),
    /// Another run of the same connection and type is alive.
    #[error(
        "a {sync_type} sync of connection {connection_id} is already running (run {run_id}); wait for it, or, if its process died, run again once it has been silent for the stale interval (2 minutes by default)"
    )]
    AlreadyRunning {
        /// The connection.
        connection_id: String,
        /// The type.
        sync_type: String,
        /// The live run.
        run_id: String,
    },
    /// The run was told to stop ([`crate::SyncEngine::with_stop`]) and did, between pages:
    /// every committed page is kept and the run stays `running`, to be taken up from its
    /// checkpoints (at once by a caller passing it to [`crate::SyncEngine::taking_over`]).
    #[error("sync run {run_id} stopped between pages; it goes on from its last committed page")]
    Stopped {
        /// The run, still `running`.
        run_id: String,
    },
}

impl From<tenantlink_identity::Error> for Error {
    fn from(e: tenantlink_identity::Error) -> Self {
        Self::Identity(Box::new(e))
    }
}
