//! The `tenantlink` command line: its subcommands and flags.

use clap::{Parser, Subcommand};

/// tenantlink: connect a platform to its customers' Microsoft cloud tenants.
#[derive(Debug, Parser)]
#[command(name = "tenantlink", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Encrypt, decrypt and rotate credentials with the configured keys.
    ///
    /// Keys come from CREDENTIAL_ENCRYPTION_KEY (a Fernet key or a passphrase),
    /// CREDENTIAL_ENCRYPTION_SALT (required with a passphrase) and
    /// CREDENTIAL_ENCRYPTION_KEY_PREVIOUS (comma-separated older keys that still decrypt).
    #[command(subcommand)]
    Vault(VaultCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum VaultCommand {
    /// Print a new random Fernet key.
    GenerateKey,
    /// Read a secret on stdin and print its token under the primary key.
    Encrypt {
        /// Encrypt stdin byte for byte (by default one trailing newline is dropped).
        #[arg(long)]
        raw: bool,
    },
    /// Read a token on stdin and print its plaintext.
    Decrypt {
        /// Reject tokens older than this many seconds.
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
        /// Print the plaintext byte for byte (by default a newline follows it).
        #[arg(long)]
        raw: bool,
    },
    /// Read tokens, one per line, and print each re-encrypted under the primary key,
    /// keeping its timestamp. Nothing is printed unless every line rotates.
    Rotate,
    /// Check round trip, tamper detection, TTL, rotation and derivation with the
    /// configured keys.
    SelfTest,
}
