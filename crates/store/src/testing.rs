//! Databases for tests (feature `testing`): a fresh, migrated SQLite file or PostgreSQL
//! database per test, so tests run in parallel. PostgreSQL runs when
//! `TENANTLINK_TEST_DATABASE_URL` names a server (CI always sets it; with `CI=true` and no
//! URL, asking for PostgreSQL panics rather than skip).

use crate::db::with_conn;
use crate::{Backend, Db, DbConfig};

/// A migrated database that is dropped (PostgreSQL) or deleted (SQLite) with this value.
pub struct TestDb {
    /// The database.
    pub db: Db,
    /// Its URL.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Database { admin_url: String, name: String },
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("backend", &self.db.backend())
            .finish()
    }
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl TestDb {
    /// A new SQLite file under the system temp directory.
    pub async fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!("tenantlink-test-{}", unique()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("test.db").display());
        let db = Db::connect(&DbConfig::new(url.clone()))
            .await
            .expect("open SQLite");
        db.migrate().await.expect("migrate SQLite");
        Self {
            db,
            url,
            cleanup: Cleanup::File(dir),
        }
    }

    /// A new PostgreSQL database on the server `TENANTLINK_TEST_DATABASE_URL` names, or
    /// `None` when it is unset (outside CI).
    pub async fn postgres() -> Option<Self> {
        let admin_url = match std::env::var("TENANTLINK_TEST_DATABASE_URL") {
            Ok(u) if !u.trim().is_empty() => u,
            _ => {
                assert!(
                    std::env::var("CI").map_or(true, |v| v != "true"),
                    "CI=true but TENANTLINK_TEST_DATABASE_URL is not set: PostgreSQL tests must run"
                );
                return None;
            }
        };
        let name = format!("tl_test_{}", unique());
        let admin = Db::connect(&DbConfig {
            max_connections: 1,
            ..DbConfig::new(admin_url.clone())
        })
        .await
        .expect("reach TENANTLINK_TEST_DATABASE_URL");
        admin
            .execute_admin(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("TENANTLINK_TEST_DATABASE_URL names a database");
        let url = format!("{base}/{name}");
        let db = Db::connect(&DbConfig::new(url.clone()))
            .await
            .expect("open test database");
        db.migrate().await.expect("migrate PostgreSQL");
        Some(Self {
            db,
            url,
            cleanup: Cleanup::Database { admin_url, name },
        })
    }

    /// SQLite, and PostgreSQL when configured.
    pub async fn all() -> Vec<Self> {
        let mut out = vec![Self::sqlite().await];
        out.extend(Self::postgres().await);
        out
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// The value of `expression`, an SQL expression of type bigint (a `count(*)` subquery,
    /// say), for tests that look at what the store's API does not show.
    pub async fn scalar(&self, expression: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Value {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.db.conn().await.expect("a connection");
        let query = format!("SELECT ({expression}) AS n");
        let value: Value = with_conn!(&mut conn, |c| diesel_async::RunQueryDsl::get_result(
            diesel::sql_query(query.as_str()),
            c
        )
        .await
        .expect(&query));
        value.n
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop may run inside a runtime: use a thread with its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(async {
                        if let Ok(admin) = Db::connect(&DbConfig {
                            max_connections: 1,
                            ..DbConfig::new(admin_url)
                        })
                        .await
                        {
                            let _ = admin
                                .execute_admin(&format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                ))
                                .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}
