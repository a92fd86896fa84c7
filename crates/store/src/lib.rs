#![doc = include_str!("../README.md")]

mod audit;
mod columns;
mod data;
mod db;
mod error;
mod jobs;
mod keys;
pub mod models;
mod oauth;
mod pages;
mod partitions;
mod prepared;
mod read;
mod runs;
pub mod schema;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;

pub use audit::{AuditFilter, AuditVerification, GENESIS_HASH, NewAuditEvent, event_hash};
pub use data::{PAGES_IN_FLIGHT, PageOrder, PageWrite};
pub use db::{Backend, Db, DbConfig, SqliteConn, redact_url};
pub use error::Error;
pub use jobs::NewJob;
pub use keys::NewApiKey;
pub use models::{
    AlertRow, ApiKey, AuditEvent, AuditRow, AuthKind, Connection, Cursor, DelegatedToken,
    DeviceRow, GroupRow, MemberRow, OAuthState, Organization, SignInActivityRow, SignInRow,
    SyncJob, SyncRun, UserRow,
};
pub use pages::{
    AlertFilter, DEFAULT_LIMIT, DeviceFilter, DirectoryAuditFilter, GroupFilter, GroupRef, Listing,
    MAX_LIMIT, MAX_SEARCH_CHARS, MemberEntry, Page, PageError, PageRequest, Scope, SignInFilter,
    TimeRange, UserFilter,
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
