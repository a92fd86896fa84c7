#![doc = include_str!("../README.md")]

mod data;
mod db;
mod error;
pub mod models;
mod read;
mod runs;
pub mod schema;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;

pub use data::PageWrite;
pub use db::{Backend, Db, DbConfig, SqliteConn, redact_url};
pub use error::Error;
pub use models::{
    AlertRow, AuditRow, AuthKind, Connection, Cursor, DelegatedToken, DeviceRow, GroupRow,
    MemberRow, Organization, SignInActivityRow, SignInRow, SyncRun, UserRow,
};
pub use read::Counts;
pub use tenants::{NewConnection, SecretRef, StoredSecret};

/// The tables holding a connection's synced data.
pub(crate) const DATA_TABLES: &[&str] = &[
    "group_members",
    "users",
    "groups",
    "managed_devices",
    "sign_ins",
    "directory_audits",
    "security_alerts",
    "sync_cursors",
    "sync_runs",
    "delegated_tokens",
];
