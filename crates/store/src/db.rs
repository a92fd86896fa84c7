//! The database handle: one of two connection pools, picked from the URL at run time, and
//! the embedded migrations of both backends.

use std::time::Duration;

use diesel::SqliteConnection;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::Error;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// An SQLite connection usable from async code (queries run on a blocking thread).
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL, through diesel-async's `AsyncPgConnection`.
    Postgres,
    /// SQLite (bundled), through diesel-async's `SyncConnectionWrapper`.
    Sqlite,
}

impl Backend {
    /// The `n`th bind placeholder in raw SQL (`$n` or `?n`).
    pub(crate) fn param(self, n: usize) -> String {
        match self {
            Self::Postgres => format!("${n}"),
            Self::Sqlite => format!("?{n}"),
        }
    }
}

/// How to reach the database.
#[derive(Clone, PartialEq, Eq)]
pub struct DbConfig {
    /// `postgres://…` (or `postgresql://…`), or `sqlite://path` (`sqlite:path` and a bare
    /// path ending `.db` or `.sqlite` are accepted too).
    pub url: String,
    /// Pool size (PostgreSQL); SQLite uses at most 4 (one writer at a time anyway).
    pub max_connections: usize,
    /// How long to wait for a pooled connection.
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// A database URL safe to show: any password replaced by `***` and the query (which may
/// hold `password=`) dropped; a URL that does not parse as `scheme://…` is not shown at all.
pub fn redact_url(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.ends_with(".db") || url.ends_with(".sqlite") || url.ends_with(".sqlite3") {
            url.to_owned()
        } else {
            "<a URL without scheme://, not shown>".to_owned()
        };
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    // The userinfo ends at the last `@` (a password may hold `/` or `@`).
    match rest.rsplit_once('@') {
        Some((userinfo, host_and_path)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let masked = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{masked}@{host_and_path}")
        }
        None => format!("{scheme}://{rest}"),
    }
}

impl DbConfig {
    /// A config for `url` with default pool settings.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(30),
        }
    }

    /// The backend the URL names, or why it names none.
    pub fn backend(&self) -> Result<Backend, Error> {
        Ok(parse_url(&self.url)?.0)
    }

    /// Checks the URL and pool settings.
    pub fn validate(&self) -> Result<(), Error> {
        parse_url(&self.url)?;
        if self.max_connections == 0 {
            return Err(Error::Config("max_connections must be at least 1".into()));
        }
        Ok(())
    }
}

fn parse_url(url: &str) -> Result<(Backend, String), Error> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .or_else(|| {
            (url.ends_with(".db") || url.ends_with(".sqlite") || url.ends_with(".sqlite3"))
                .then_some(url)
        });
    match path {
        Some(p) if !p.is_empty() => Ok((Backend::Sqlite, p.to_owned())),
        _ => Err(Error::Config(format!(
            "DATABASE_URL must start with postgres:// or sqlite:// (got {:?})",
            redact_url(url)
        ))),
    }
}

/// The database: a pool of PostgreSQL or SQLite connections. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pools: Pools,
    /// SQLite write transactions of this process take turns here, first come first served:
    /// SQLite's own busy wait polls, so a busy writer could starve the others.
    sqlite_writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// PostgreSQL: the connections whose partition of membership edges is known to have its
    /// key, with that partition's name (see `partitions.rs`).
    pub(crate) keyed_edges: crate::partitions::KeyedEdges,
    /// The URL the pool connects to (kept for migrations, which need an owned connection).
    url: std::sync::Arc<str>,
}

#[derive(Clone)]
enum Pools {
    Postgres(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteConn>),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Db").field(&self.backend()).finish()
    }
}

/// A pooled connection of either backend.
#[expect(clippy::large_enum_variant, reason = "short-lived, one per query")]
pub(crate) enum Conn {
    Postgres(Object<AsyncPgConnection>),
    Sqlite(Object<SqliteConn>),
}

#[expect(clippy::large_enum_variant, reason = "one per migration run")]
enum MigrationConn {
    Postgres(AsyncPgConnection),
    Sqlite(SqliteConn),
}

/// Runs `$body` once per backend with `$conn` bound to a `&mut` connection of that
/// backend; the body is written once and compiled for each.
macro_rules! with_conn {
    ($conn_src:expr, |$conn:ident| $body:expr) => {
        match $conn_src {
            $crate::db::Conn::Postgres(c) => {
                let $conn: &mut ::diesel_async::AsyncPgConnection = &mut *c;
                $body
            }
            $crate::db::Conn::Sqlite(c) => {
                let $conn: &mut $crate::db::SqliteConn = &mut *c;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

/// Runs `$body` in a write transaction on either backend: `BEGIN` on PostgreSQL,
/// `BEGIN IMMEDIATE` on SQLite (a deferred transaction that later writes can fail with
/// "database is locked" instead of waiting for the other writer).
macro_rules! write_transaction {
    ($conn_src:expr, async move |$c:ident| $body:expr) => {
        match $conn_src {
            $crate::db::Conn::Postgres(conn) => {
                let conn: &mut ::diesel_async::AsyncPgConnection = &mut *conn;
                ::diesel_async::AsyncConnection::transaction(conn, async move |$c| $body).await
            }
            $crate::db::Conn::Sqlite(conn) => {
                let conn: &mut $crate::db::SqliteConn = &mut *conn;
                conn.immediate_transaction(async move |$c| $body).await
            }
        }
    };
}
pub(crate) use write_transaction;

impl Db {
    /// Opens a pool for `config.url` (creating the SQLite file if needed) and checks one
    /// connection works.
    pub async fn connect(config: &DbConfig) -> Result<Self, Error> {
        config.validate()?;
        let (backend, url) = parse_url(&config.url)?;
        let pools = match backend {
            Backend::Postgres => {
                let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url.clone());
                let pool = Pool::builder(manager)
                    .max_size(config.max_connections)
                    .wait_timeout(Some(config.acquire_timeout))
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map_err(|e| Error::Config(e.to_string()))?;
                Pools::Postgres(pool)
            }
            Backend::Sqlite => {
                if let Some(parent) = std::path::Path::new(&url).parent()
                    && !parent.as_os_str().is_empty()
                    && !parent.exists()
                {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        Error::Config(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
                let mut manager_config = ManagerConfig::default();
                manager_config.custom_setup = Box::new(|url| {
                    let url = url.to_owned();
                    Box::pin(async move {
                        let mut conn = SqliteConn::establish(&url).await?;
                        conn.batch_execute(
                            // busy_timeout first: even switching to WAL (a no-op once
                            // the file is in WAL mode) must wait for a writer, not fail.
                            // A page cache of 1 MiB per connection, not SQLite's 2 MiB:
                            // a large tenant's sync fills every pooled connection's cache,
                            // and the caches were the part of its heap that grew with the
                            // tenant (heaptrack: 6.4 MiB at 10,000 users, 8.2 at 100,000).
                            "PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL; \
                             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                             PRAGMA cache_size = -1024;",
                        )
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                        Ok(conn)
                    })
                });
                let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(
                    url.clone(),
                    manager_config,
                );
                let pool = Pool::builder(manager)
                    .max_size(config.max_connections.min(4))
                    .wait_timeout(Some(config.acquire_timeout))
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map_err(|e| Error::Config(e.to_string()))?;
                Pools::Sqlite(pool)
            }
        };
        let db = Self {
            pools,
            sqlite_writer: std::sync::Arc::new(tokio::sync::Mutex::new(())),
            keyed_edges: crate::partitions::KeyedEdges::default(),
            url: url.into(),
        };
        db.ping().await?;
        Ok(db)
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Postgres(_) => Backend::Postgres,
            Pools::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Waits for this process's turn to write (SQLite only; PostgreSQL has row locks).
    pub(crate) async fn writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.pools {
            Pools::Sqlite(_) => Some(self.sqlite_writer.lock().await),
            Pools::Postgres(_) => None,
        }
    }

    pub(crate) async fn conn(&self) -> Result<Conn, Error> {
        Ok(match &self.pools {
            Pools::Postgres(p) => Conn::Postgres(p.get().await?),
            Pools::Sqlite(p) => Conn::Sqlite(p.get().await?),
        })
    }

    /// Runs `SELECT 1`.
    pub async fn ping(&self) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| c.batch_execute("SELECT 1").await?);
        Ok(())
    }

    /// Runs one statement outside a transaction (`CREATE DATABASE`...), for tools and tests.
    pub async fn execute_admin(&self, sql: &str) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| c.batch_execute(sql).await?);
        Ok(())
    }

    /// Applies every pending migration; returns the versions applied (empty when up to
    /// date).
    pub async fn migrate(&self) -> Result<Vec<String>, Error> {
        self.migrations(true).await
    }

    /// The versions of migrations not yet applied.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, Error> {
        self.migrations(false).await
    }

    async fn migrations(&self, apply: bool) -> Result<Vec<String>, Error> {
        let url = self.url.to_string();
        let backend = self.backend();
        let unavailable = |e: diesel::ConnectionError| Error::Unavailable(e.to_string());
        let conn = match backend {
            Backend::Postgres => MigrationConn::Postgres(
                AsyncPgConnection::establish(&url)
                    .await
                    .map_err(unavailable)?,
            ),
            Backend::Sqlite => {
                MigrationConn::Sqlite(SqliteConn::establish(&url).await.map_err(unavailable)?)
            }
        };
        let run = move || -> Result<Vec<String>, Error> {
            fn go<C, B>(
                harness: &mut C,
                source: EmbeddedMigrations,
                apply: bool,
            ) -> Result<Vec<String>, Error>
            where
                B: diesel::backend::Backend,
                C: MigrationHarness<B>,
            {
                let m =
                    |e: Box<dyn std::error::Error + Send + Sync>| Error::Migration(e.to_string());
                if apply {
                    Ok(harness
                        .run_pending_migrations(source)
                        .map_err(m)?
                        .into_iter()
                        .map(|v| v.to_string())
                        .collect())
                } else {
                    Ok(harness
                        .pending_migrations(source)
                        .map_err(m)?
                        .into_iter()
                        .map(|mig| mig.name().version().to_string())
                        .collect())
                }
            }
            match conn {
                MigrationConn::Postgres(c) => {
                    let mut h = diesel_async::AsyncMigrationHarness::new(c);
                    go(&mut h, PG_MIGRATIONS, apply)
                }
                MigrationConn::Sqlite(c) => {
                    let mut h = diesel_async::AsyncMigrationHarness::new(c);
                    go(&mut h, SQLITE_MIGRATIONS, apply)
                }
            }
        };
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|e| Error::Migration(e.to_string()))?
    }
}
