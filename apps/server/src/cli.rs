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
    /// Run the HTTP API and the background sync workers.
    ///
    /// Configured from the environment (see `.env.example`): DATABASE_URL,
    /// CREDENTIAL_ENCRYPTION_KEY, TENANTLINK_ADMIN_KEY (required, 32+ random characters),
    /// PORT, and TENANTLINK_* settings. Migrations are applied at start.
    Serve,
    /// Run everything offline on embedded defaults: the emulator in-process with a seeded
    /// tenant, an SQLite file (tenantlink-demo.db), a demo organization and API key, a
    /// connected tenant, a first sync, and the server. Prints the URL and the key.
    ///
    /// PORT picks the port (default 8080; 0 for any free one).
    Demo,
    /// Apply pending database migrations (DATABASE_URL; SQLite `tenantlink.db` by default).
    Migrate,
    /// Connect a Microsoft tenant: verify the app's credentials with Entra ID, report the
    /// permissions it lacks, and store the secret encrypted.
    ///
    /// The client secret is read from stdin, or asked for at a prompt; never pass it as an
    /// argument.
    Connect {
        /// The tenant (directory) id.
        #[arg(long)]
        tenant_id: String,
        /// The app registration's client (application) id.
        #[arg(long)]
        client_id: String,
        /// The organization that owns the connection (created if new).
        #[arg(long, default_value = "default")]
        organization: String,
        /// When the secret expires (YYYY-MM-DD), to warn before it does.
        #[arg(long, value_name = "DATE")]
        secret_expires: Option<chrono::NaiveDate>,
    },
    /// Sync connected tenants into the database, with progress and a summary.
    ///
    /// Exit status: 0 complete, 2 partial (stored and marked; the summary says what is
    /// missing), 1 failed.
    Sync {
        /// full, incremental, users, groups, devices or audit.
        #[arg(long = "type", default_value = "incremental", value_parser = parse_sync_type)]
        sync_type: tenantlink_sync::SyncType,
        /// Only this connection (default: every connection).
        #[arg(long)]
        connection: Option<String>,
        /// Run the whole job offline: the emulator in-process with a seeded tenant, an SQLite
        /// file, a connected tenant, a full sync and an incremental one.
        #[arg(long, conflicts_with_all = ["connection", "sync_type"])]
        demo: bool,
        /// Print each run's report as one JSON line instead of bars and a table.
        #[arg(long)]
        json: bool,
    },
    /// Check the audit trail (DATABASE_URL).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Show connections, what is synced and the last run of each.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_sync_type(value: &str) -> Result<tenantlink_sync::SyncType, String> {
    value
        .parse()
        .map_err(|e: tenantlink_sync::Error| e.to_string())
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
    /// Re-encrypt every stored secret and token under the primary key (in batches; safe
    /// while syncs run), then report how many rows each key still protects.
    Rewrap {
        /// Rows per batch.
        #[arg(long, default_value_t = 100)]
        batch: i64,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Recompute the hash chain of the whole trail, in seq order.
    ///
    /// Prints `audit chain intact: N events` and exits 0, or prints the first broken seq and
    /// why and exits 1.
    Verify {
        /// Events read per query (memory stays bounded by this).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch: i64,
    },
}
