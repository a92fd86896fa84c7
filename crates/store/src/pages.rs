//! Paged reads of a connection's synced data for the API: one function per listing, each
//! scoped to an organization and a connection inside its SQL, filtered, searched by
//! case-insensitive prefix, and paged by keyset (never OFFSET) with opaque, checked
//! cursors.
//!
//! A page is read in two steps: a keyset query returns the keys of the page (the only
//! query that filters, searches and sorts, on indexes of both backends), then the rows of
//! those keys are loaded by primary key and put back in key order.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text, Timestamp};
use diesel_async::RunQueryDsl;

use crate::db::{Backend, with_conn};
use crate::models::{AlertRow, AuditRow, DeviceRow, GroupRow, SignInRow, UserRow};
use crate::schema::{directory_audits, groups, managed_devices, security_alerts, sign_ins, users};
use crate::{Db, Error};

/// Rows per page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most rows a page holds.
pub const MAX_LIMIT: u32 = 1000;
/// The users' columns a search looks at.
const USER_SEARCH: [&str; 5] = [
    "display_name",
    "given_name",
    "surname",
    "user_principal_name",
    "mail",
];

/// The longest search prefix accepted, in characters.
pub const MAX_SEARCH_CHARS: usize = 256;

/// Whose data a read may see: a connection, and the organization that must own it. Both
/// are checked in every query's SQL.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The calling organization.
    pub organization_id: &'a str,
    /// The connection read.
    pub connection_id: &'a str,
}

/// Which listing a cursor belongs to (a cursor of one listing is refused by another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Users of a connection.
    Users,
    /// Groups of a connection.
    Groups,
    /// Groups of one user.
    UserGroups,
    /// Members of one group.
    GroupMembers,
    /// Managed devices.
    Devices,
    /// Sign-ins, newest first.
    SignIns,
    /// Directory audits, newest first.
    DirectoryAudits,
    /// Security alerts, newest first.
    Alerts,
}

impl Listing {
    fn tag(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Groups => "groups",
            Self::UserGroups => "user_groups",
            Self::GroupMembers => "group_members",
            Self::Devices => "devices",
            Self::SignIns => "sign_ins",
            Self::DirectoryAudits => "directory_audits",
            Self::Alerts => "alerts",
        }
    }

    /// Whether pages are ordered by time (newest first) then id, rather than by id.
    fn by_time(self) -> bool {
        matches!(self, Self::SignIns | Self::DirectoryAudits | Self::Alerts)
    }
}

/// Why a page request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// `limit` is outside `1..=MAX_LIMIT`.
    #[error("limit must be between 1 and {MAX_LIMIT}")]
    Limit,
    /// The cursor was not made by this listing, or was changed.
    #[error("the cursor is not one this listing returned; start again without it")]
    Cursor,
}

/// Where a page starts: after this key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Position {
    /// The time of the last row (time-ordered listings).
    at: Option<NaiveDateTime>,
    /// The id of the last row.
    id: String,
    /// A search's pages: the search (trimmed) and the last row's matched value (lowered),
    /// which the results are ordered by before the id.
    search: Option<(String, String)>,
}

impl Listing {
    /// Whether the listing can be searched (and so has search cursors).
    fn searchable(self) -> bool {
        matches!(self, Self::Users | Self::Groups | Self::Devices)
    }
}

/// One page's size and start, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    listing: Listing,
    limit: u32,
    after: Option<Position>,
}

impl PageRequest {
    /// The first page of `listing`.
    pub fn first(listing: Listing, limit: u32) -> Result<Self, PageError> {
        Self::new(listing, Some(limit), None)
    }

    /// A page of `listing` of `limit` rows (default [`DEFAULT_LIMIT`]) after `cursor` (a
    /// `next_cursor` of the same listing), or the first page.
    pub fn new(
        listing: Listing,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Self, PageError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PageError::Limit);
        }
        let after = cursor.map(|c| decode_cursor(listing, c)).transpose()?;
        Ok(Self {
            listing,
            limit,
            after,
        })
    }

    /// The listing this request pages.
    pub fn listing(&self) -> Listing {
        self.listing
    }

    /// Rows asked for.
    pub fn limit(&self) -> u32 {
        self.limit
    }
}

/// One page of rows and the cursor of the next, if there are more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows, in the listing's order.
    pub items: Vec<T>,
    /// Pass to [`PageRequest::new`] for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Filters of the users listing (all optional, combined with AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Exact department.
    pub department: Option<String>,
    /// Whether the account can sign in.
    pub enabled: Option<bool>,
    /// `Member` or `Guest`.
    pub user_type: Option<String>,
    /// Case-insensitive prefix of the display name, given name, surname, principal name
    /// or mail.
    pub search: Option<String>,
}

/// Filters of the groups listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFilter {
    /// `security`, `distribution`, `microsoft365` or `mail_enabled_security`.
    pub kind: Option<String>,
    /// Case-insensitive prefix of the display name or mail.
    pub search: Option<String>,
}

/// Filters of the devices listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Exact compliance state (`compliant`, `noncompliant`...).
    pub compliance_state: Option<String>,
    /// Exact operating system (`Windows`, `iOS`...).
    pub operating_system: Option<String>,
    /// The primary user's object id.
    pub user_id: Option<String>,
    /// Case-insensitive prefix of the device name.
    pub search: Option<String>,
}

/// A time range: `from` inclusive, `to` exclusive (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Not before.
    pub from: Option<NaiveDateTime>,
    /// Before.
    pub to: Option<NaiveDateTime>,
}

/// Filters of the sign-ins listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInFilter {
    /// When.
    pub range: TimeRange,
    /// Whose (object id).
    pub user_id: Option<String>,
}

/// Filters of the directory audits listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryAuditFilter {
    /// When.
    pub range: TimeRange,
    /// Exact category.
    pub category: Option<String>,
}

/// Filters of the alerts listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Created when.
    pub range: TimeRange,
    /// Exact severity.
    pub severity: Option<String>,
    /// Exact status.
    pub status: Option<String>,
}

/// A member of a group, with names when the member is a synced user or group.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct MemberEntry {
    /// The member's object id.
    #[diesel(sql_type = Text)]
    pub id: String,
    /// `user`, `group`, `device`, `servicePrincipal`...
    #[diesel(sql_type = Text)]
    pub member_type: String,
    /// Display name of the synced user or group.
    #[diesel(sql_type = Nullable<Text>)]
    pub display_name: Option<String>,
    /// Principal name of the synced user.
    #[diesel(sql_type = Nullable<Text>)]
    pub user_principal_name: Option<String>,
}

/// A group a user belongs to; names are `None` when the group is not synced.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct GroupRef {
    /// The group's object id.
    #[diesel(sql_type = Text)]
    pub id: String,
    /// Display name.
    #[diesel(sql_type = Nullable<Text>)]
    pub display_name: Option<String>,
    /// SMTP address.
    #[diesel(sql_type = Nullable<Text>)]
    pub mail: Option<String>,
    /// Group kind.
    #[diesel(sql_type = Nullable<Text>)]
    pub kind: Option<String>,
}

// --- cursors -----------------------------------------------------------------------------

const CURSOR_SALT: &[u8] = b"tenantlink-cursor-v1";

/// FNV-1a, 64 bits: detects a changed cursor (a cursor is not a secret: whatever
/// position one names, the query stays scoped to the caller's connection).
fn checksum(payload: &[u8]) -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in CURSOR_SALT.iter().chain(payload) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.to_be_bytes()
}

fn encode_cursor(listing: Listing, position: &Position) -> String {
    let mut payload = serde_json::json!({ "l": listing.tag(), "i": position.id });
    if let Some((search, key)) = &position.search {
        payload["q"] = search.as_str().into();
        payload["k"] = key.as_str().into();
    }
    if let Some(at) = position.at {
        // Nanoseconds fit an i64 until 2262; seconds and nanoseconds keep any time exact.
        payload["s"] = at.and_utc().timestamp().into();
        payload["n"] = at.and_utc().timestamp_subsec_nanos().into();
    }
    let payload = payload.to_string().into_bytes();
    let mut bytes = checksum(&payload).to_vec();
    bytes.extend_from_slice(&payload);
    base64url::encode(&bytes)
}

fn decode_cursor(listing: Listing, cursor: &str) -> Result<Position, PageError> {
    if cursor.len() > 6000 {
        return Err(PageError::Cursor);
    }
    let bytes = base64url::decode(cursor).ok_or(PageError::Cursor)?;
    if bytes.len() < 8 || bytes.len() > 4096 {
        return Err(PageError::Cursor);
    }
    let (tag, payload) = bytes.split_at(8);
    if tag != checksum(payload) {
        return Err(PageError::Cursor);
    }
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|_| PageError::Cursor)?;
    if value["l"].as_str() != Some(listing.tag()) {
        return Err(PageError::Cursor);
    }
    let id = value["i"].as_str().ok_or(PageError::Cursor)?.to_owned();
    let at = match (value["s"].as_i64(), value["n"].as_u64()) {
        (Some(s), Some(n)) => Some(
            chrono::DateTime::from_timestamp(s, u32::try_from(n).map_err(|_| PageError::Cursor)?)
                .ok_or(PageError::Cursor)?
                .naive_utc(),
        ),
        (None, None) => None,
        _ => return Err(PageError::Cursor),
    };
    if at.is_some() != listing.by_time() {
        return Err(PageError::Cursor);
    }
    let search = match (value["q"].as_str(), value["k"].as_str()) {
        (Some(q), Some(k)) if listing.searchable() => Some((q.to_owned(), k.to_owned())),
        (None, None) => None,
        _ => return Err(PageError::Cursor),
    };
    Ok(Position { at, id, search })
}

/// Unpadded base64url (RFC 4648 §5), strict: a cursor decodes to one byte string only.
mod base64url {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }

    fn value(c: u8) -> Option<u32> {
        ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
    }

    pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
        let text = text.as_bytes();
        if text.len() % 4 == 1 {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        for chunk in text.chunks(4) {
            let mut n = 0u32;
            for (i, c) in chunk.iter().enumerate() {
                n |= value(*c)? << (18 - 6 * i);
            }
            let bytes = n.to_be_bytes();
            let keep = chunk.len() - 1;
            out.extend_from_slice(&bytes[1..=keep]);
            // Bits beyond the last byte must be zero (one encoding per byte string).
            if keep < 3 && bytes[1 + keep..].iter().any(|b| *b != 0) {
                return None;
            }
        }
        Some(out)
    }
}

// --- raw keyset queries ------------------------------------------------------------------

enum Param {
    Text(String),
    Bool(bool),
    Time(NaiveDateTime),
}

/// Raw SQL with its bind values; `$1` is always the connection id and `$2` the
/// organization id.
struct Sql {
    backend: Backend,
    text: String,
    params: Vec<Param>,
}

/// The most entries one window of a search reads from each column's index.
const SEARCH_WINDOW_MAX: usize = 50_000;

/// An entry of a search's window: the row's id, the matched value it is ordered by, its
/// lowered searched columns (up to five; the rest `NULL`) and whether it passes the
/// listing's filters.
#[derive(QueryableByName)]
struct WindowRow {
    #[diesel(sql_type = Text)]
    i: String,
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = Nullable<Text>)]
    l0: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    l1: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    l2: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    l3: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    l4: Option<String>,
    #[diesel(sql_type = Bool)]
    ok: bool,
}

impl WindowRow {
    fn lowered(&self) -> impl Iterator<Item = &str> {
        [&self.l0, &self.l1, &self.l2, &self.l3, &self.l4]
            .into_iter()
            .filter_map(|l| l.as_deref())
    }
}

impl Sql {
    fn new(backend: Backend, scope: &Scope<'_>) -> Self {
        Self {
            backend,
            text: String::new(),
            params: vec![
                Param::Text(scope.connection_id.to_owned()),
                Param::Text(scope.organization_id.to_owned()),
            ],
        }
    }

    /// Adds a bind value; returns its placeholder.
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        self.backend.param(self.params.len())
    }

    fn text(&mut self, s: impl Into<Param>) -> String {
        self.bind(s.into())
    }

    /// The scope check: the connection exists and belongs to the organization.
    fn scoped(&self) -> String {
        format!(
            "EXISTS (SELECT 1 FROM connections sc WHERE sc.id = {} AND sc.organization_id = {})",
            self.backend.param(1),
            self.backend.param(2)
        )
    }

    /// `lower(col)` compared byte-wise (PostgreSQL: collation "C", as the search indexes).
    fn lowered(&self, col: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("lower({col}) COLLATE \"C\""),
            Backend::Sqlite => format!("lower({col})"),
        }
    }

    /// `col` compared byte-wise (PostgreSQL: collation "C", as the search indexes).
    fn bytewise(&self, col: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("{col} COLLATE \"C\""),
            Backend::Sqlite => col.to_owned(),
        }
    }

    /// Binds the range of lowered values starting with `prefix` (lowered as the database
    /// lowers, see [`Db::lowered`]; byte-wise order): its
    /// least value and, unless there is none, the least value past it; each as its
    /// placeholder and its value.
    fn prefix_bounds(
        &mut self,
        prefix: &str,
    ) -> ((String, String), (Option<String>, Option<String>)) {
        let prefix = prefix.to_owned();
        let end = prefix_end(&prefix);
        let lo = self.text(prefix.clone());
        let hi = end.clone().map(|e| self.text(e));
        ((lo, prefix), (hi, end))
    }

    /// The keyset condition after `after`, for a listing ordered by `id` or by
    /// (`time` desc, `id` desc).
    fn after(&mut self, after: Option<&Position>, time: Option<&str>, id: &str) -> String {
        let Some(after) = after else {
            return String::new();
        };
        let i = self.text(after.id.clone());
        match (time, after.at) {
            (Some(t), Some(at)) => {
                let a = self.bind(Param::Time(at));
                format!(" AND {t} <= {a} AND ({t} < {a} OR {id} < {i})")
            }
            _ => format!(" AND {id} > {i}"),
        }
    }
}

impl From<String> for Param {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<&String> for Param {
    fn from(s: &String) -> Self {
        Self::Text(s.clone())
    }
}

/// The least string greater than every string starting with `prefix` (byte-wise order),
/// or `None` when there is none.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if next == 0xD800 {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The search prefix to use: trimmed, `None` when empty.
fn search_prefix(search: Option<&String>) -> Option<&str> {
    search.map(|s| s.trim()).filter(|s| !s.is_empty())
}

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Timestamp>)]
    at: Option<NaiveDateTime>,
}

/// One row of a page, as its keys query found it.
struct Key {
    id: String,
    /// The row's time (time-ordered listings).
    at: Option<NaiveDateTime>,
    /// A search's matched value (lowered).
    matched: Option<String>,
}

impl From<KeyRow> for Key {
    fn from(k: KeyRow) -> Self {
        Self {
            id: k.id,
            at: k.at,
            matched: None,
        }
    }
}

/// Rows of a page, in the order of its keys.
fn in_key_order<T>(keys: &[Key], rows: Vec<T>, id: impl Fn(&T) -> &str) -> Vec<T> {
    let mut by_id: HashMap<String, T> = rows.into_iter().map(|r| (id(&r).to_owned(), r)).collect();
    keys.iter().filter_map(|k| by_id.remove(&k.id)).collect()
}

impl Db {
    /// Runs raw SQL. A text value holding NUL matches nothing (PostgreSQL refuses such
    /// text, and none is stored), so the answer is then empty without asking.
    async fn raw<T>(&self, sql: Sql) -> Result<Vec<T>, Error>
    where
        T: QueryableByName<diesel::pg::Pg>
            + QueryableByName<diesel::sqlite::Sqlite>
            + Send
            + 'static,
    {
        if sql
            .params
            .iter()
            .any(|p| matches!(p, Param::Text(s) if s.contains('\0')))
        {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| {
            let mut q = diesel::sql_query(sql.text.as_str()).into_boxed();
            for p in &sql.params {
                q = match p {
                    Param::Text(s) => q.bind::<Text, _>(s.clone()),
                    Param::Bool(b) => q.bind::<Bool, _>(*b),
                    Param::Time(t) => q.bind::<Timestamp, _>(*t),
                };
            }
            q.load::<T>(c).await?
        }))
    }

    /// `NotFound` unless the connection exists and belongs to the organization.
    async fn check_scope(&self, scope: &Scope<'_>) -> Result<(), Error> {
        let mut sql = Sql::new(self.backend(), scope);
        sql.text = format!(
            "SELECT sc.id AS id, NULL AS at FROM connections sc WHERE sc.id = {} AND sc.organization_id = {}",
            self.backend().param(1),
            self.backend().param(2)
        );
        if self.raw::<KeyRow>(sql).await?.is_empty() {
            return Err(Error::NotFound {
                entity: "connection",
                id: scope.connection_id.to_owned(),
            });
        }
        Ok(())
    }

    /// `NotFound` unless `table` has row `id` in the scope's connection.
    async fn check_row(
        &self,
        scope: &Scope<'_>,
        table: &str,
        entity: &'static str,
        id: &str,
    ) -> Result<(), Error> {
        let mut sql = Sql::new(self.backend(), scope);
        let i = sql.text(id.to_owned());
        sql.text = format!(
            "SELECT t.id AS id, NULL AS at FROM {table} t \
             WHERE t.connection_id = {c} AND t.id = {i} AND {s}",
            c = self.backend().param(1),
            s = sql.scoped(),
        );
        if self.raw::<KeyRow>(sql).await?.is_empty() {
            self.check_scope(scope).await?;
            return Err(Error::NotFound {
                entity,
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// The keys of a page of a searchable listing: rows of `table` (alias `alias`) in the
    /// connection, with the extra conditions `filters` writes (` AND …`), by id; or, with
    /// a search, those whose `search.0` columns start with `search.1` (case-insensitive),
    /// by matched value then id.
    async fn search_keys(
        &self,
        scope: &Scope<'_>,
        (table, alias): (&str, &str),
        search: Option<(&[&str], &str)>,
        filters: impl Fn(&mut Sql) -> String,
        page: &PageRequest,
    ) -> Result<(Vec<Key>, Option<String>), Error> {
        let backend = self.backend();
        let c = backend.param(1);
        let after = page.after.as_ref();
        if let Some((cols, prefix)) = search {
            return self
                .search_merge(scope, (table, alias), (cols, prefix), filters, page)
                .await;
        }
        if after.is_some_and(|a| a.search.is_some()) {
            // A search's cursor, without the search.
            return Err(PageError::Cursor.into());
        }
        let mut sql = Sql::new(backend, scope);
        let mut w = format!("{alias}.connection_id = {c} AND {}", sql.scoped());
        w += &filters(&mut sql);
        w += &sql.after(after, None, &format!("{alias}.id"));
        sql.text = format!("SELECT {alias}.id AS id, NULL AS at FROM {table} {alias} WHERE {w}");
        self.keys(scope, sql, &format!("{alias}.id"), page).await
    }

    /// A search's keys: a merge of one ordered range per searched column.
    ///
    /// Each searched column has an index `(connection_id, lower(col), id)` (byte-wise
    /// order), so the rows whose column starts with the prefix are a range of it, already
    /// in (matched value, id) order. A row is listed once, at its least matched value: its
    /// canonical entry. The merge of the ranges is read a window at a time: the first `n`
    /// entries after the cursor (`n` from each index, merged), each with its row's
    /// lowered columns; every row whose canonical entry falls in the window is then
    /// known, because a row's canonical entry precedes its others. When a window yields
    /// fewer than `limit + 1` rows (other entries of rows already listed, filters), the
    /// next, larger one follows it. Without other filters the cost is about
    /// `columns × limit` index entries per page however many rows match (a walk by id
    /// instead grows with how rare matches are, and filtering each range on the row's
    /// other columns with how often they match too); with one, the windows grow until
    /// enough matches pass it.
    async fn search_merge(
        &self,
        scope: &Scope<'_>,
        (table, alias): (&str, &str),
        (cols, prefix): (&[&str], &str),
        filters: impl Fn(&mut Sql) -> String,
        page: &PageRequest,
    ) -> Result<(Vec<Key>, Option<String>), Error> {
        let cursor = match &page.after {
            None => None,
            Some(Position {
                id,
                search: Some((q, key)),
                ..
            }) if q == prefix => Some((key.clone(), id.clone())),
            // A cursor of another search, or of the listing without one.
            Some(_) => return Err(PageError::Cursor.into()),
        };
        // The prefix lowered by the database's own lower(), as the indexed values are.
        let Some(lowered) = self.lowered(scope, prefix).await? else {
            return self.cut(scope, Vec::new(), page, Some(prefix)).await;
        };
        let want = page.limit as usize + 1;
        let mut n = 2 * want;
        let mut after = cursor;
        let mut found: Vec<(String, String)> = Vec::new();
        let mut listed: HashSet<String> = HashSet::new();
        loop {
            let (window, lo, hi) = self
                .search_window(
                    scope,
                    (table, alias, cols, &lowered),
                    &filters,
                    after.as_ref(),
                    n,
                )
                .await?;
            let full = window.len() == n;
            let last = window.last().map(|w| (w.k.clone(), w.i.clone()));
            for w in window {
                let least = w
                    .lowered()
                    .filter(|l| *l >= lo.as_str() && hi.as_ref().is_none_or(|h| *l < h.as_str()))
                    .min();
                // Two columns of a row may hold the same value: one entry is enough.
                if w.ok && least == Some(w.k.as_str()) && listed.insert(w.i.clone()) {
                    found.push((w.k, w.i));
                }
            }
            if found.len() >= want || !full {
                break;
            }
            after = last;
            n = (n * 4).min(SEARCH_WINDOW_MAX);
        }
        found.sort();
        found.truncate(want);
        let keys = found
            .into_iter()
            .map(|(k, id)| Key {
                id,
                at: None,
                matched: Some(k),
            })
            .collect();
        self.cut(scope, keys, page, Some(prefix)).await
    }

    /// `text` as the database's `lower()` makes it (PostgreSQL's follows the database's
    /// locale; SQLite's folds ASCII only); `None` when it cannot be asked (text with NUL,
    /// or a connection out of scope).
    async fn lowered(&self, scope: &Scope<'_>, text: &str) -> Result<Option<String>, Error> {
        if self.backend() == Backend::Sqlite {
            return Ok(Some(text.to_ascii_lowercase()));
        }
        let mut sql = Sql::new(self.backend(), scope);
        let t = sql.text(text.to_owned());
        sql.text = format!(
            "SELECT lower({t}) COLLATE \"C\" AS id, NULL AS at WHERE {}",
            sql.scoped()
        );
        Ok(self.raw::<KeyRow>(sql).await?.pop().map(|r| r.id))
    }

    /// One window of a search (see [`Db::search_merge`]): the first `n` entries after
    /// `after` of the merged column ranges, in order, with their rows' lowered columns and
    /// whether the rows pass the filters; and the bounds of the range (lowered prefix, and
    /// the least value past it).
    async fn search_window(
        &self,
        scope: &Scope<'_>,
        (table, alias, cols, prefix): (&str, &str, &[&str], &str),
        filters: &impl Fn(&mut Sql) -> String,
        after: Option<&(String, String)>,
        n: usize,
    ) -> Result<(Vec<WindowRow>, String, Option<String>), Error> {
        debug_assert!(cols.len() <= 5, "a window returns five lowered columns");
        let backend = self.backend();
        let c = backend.param(1);
        let mut sql = Sql::new(backend, scope);
        let (lo, hi) = sql.prefix_bounds(prefix);
        let after = after.map(|(k, id)| (sql.text(k), sql.text(id)));
        let more = filters(&mut sql);
        let id_order = sql.bytewise("id");
        let arms: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, col)| {
                let l = sql.lowered(col);
                let mut w = format!("connection_id = {c} AND {l} >= {}", lo.0);
                if let Some(h) = &hi.0 {
                    w += &format!(" AND {l} < {h}");
                }
                if let Some((k, id)) = &after {
                    w += &format!(" AND ({l}, {id_order}) > ({k}, {id})");
                }
                format!(
                    "SELECT i, k FROM (SELECT id AS i, {l} AS k FROM {table} \
                     WHERE {w} ORDER BY {l}, {id_order} LIMIT {n}) a{i}"
                )
            })
            .collect();
        let lowered: Vec<String> = (0..5)
            .map(|i| match cols.get(i) {
                Some(col) => format!("{} AS l{i}", sql.lowered(&format!("{alias}.{col}"))),
                None => format!("NULL AS l{i}"),
            })
            .collect();
        sql.text = format!(
            "SELECT w.i AS i, w.k AS k, {lowered}, COALESCE((1 = 1{more}), FALSE) AS ok \
             FROM (SELECT m.i AS i, m.k AS k FROM ({arms}) m ORDER BY {mk}, {mi} LIMIT {n}) w \
             JOIN {table} {alias} ON {alias}.connection_id = {c} AND {alias}.id = w.i \
             WHERE {scoped}",
            lowered = lowered.join(", "),
            arms = arms.join(" UNION ALL "),
            mk = sql.bytewise("m.k"),
            mi = sql.bytewise("m.i"),
            scoped = sql.scoped(),
        );
        let (lo_value, hi_value) = (lo.1, hi.1);
        let mut rows = self.raw::<WindowRow>(sql).await?;
        // The join keeps no order; the window's is byte-wise, as Rust compares strings.
        rows.sort_by(|a, b| (&a.k, &a.i).cmp(&(&b.k, &b.i)));
        Ok((rows, lo_value, hi_value))
    }

    /// Runs a keyset query (`limit + 1` rows), and tells whether there is a next page and
    /// where it starts. An empty first answer checks the scope (404 for another
    /// organization's connection).
    async fn keys(
        &self,
        scope: &Scope<'_>,
        mut sql: Sql,
        order: &str,
        page: &PageRequest,
    ) -> Result<(Vec<Key>, Option<String>), Error> {
        sql.text = format!("{} ORDER BY {order} LIMIT {}", sql.text, page.limit + 1);
        let keys = self.raw::<KeyRow>(sql).await?;
        self.cut(scope, keys.into_iter().map(Key::from).collect(), page, None)
            .await
    }

    /// Cuts up to `limit + 1` keys into a page's keys and the next cursor (of `search`,
    /// when the keys are a search's); no keys at all checks the scope (404 for another
    /// organization's connection).
    async fn cut(
        &self,
        scope: &Scope<'_>,
        mut keys: Vec<Key>,
        page: &PageRequest,
        search: Option<&str>,
    ) -> Result<(Vec<Key>, Option<String>), Error> {
        if keys.is_empty() {
            self.check_scope(scope).await?;
        }
        let next = if keys.len() > page.limit as usize {
            keys.truncate(page.limit as usize);
            keys.last().map(|k| {
                encode_cursor(
                    page.listing,
                    &Position {
                        at: if page.listing.by_time() { k.at } else { None },
                        id: k.id.clone(),
                        search: search
                            .zip(k.matched.clone())
                            .map(|(q, m)| (q.to_owned(), m)),
                    },
                )
            })
        } else {
            None
        };
        Ok((keys, next))
    }

    /// A page of the connection's users, by id; a search's by matched value, then id.
    pub async fn list_users(
        &self,
        scope: &Scope<'_>,
        filter: &UserFilter,
        page: &PageRequest,
    ) -> Result<Page<UserRow>, Error> {
        let search = search_prefix(filter.search.as_ref());
        let build = |sql: &mut Sql| {
            let mut w = String::new();
            if let Some(d) = &filter.department {
                w += &format!(" AND u.department = {}", sql.text(d));
            }
            if let Some(e) = filter.enabled {
                w += &format!(" AND u.account_enabled = {}", sql.bind(Param::Bool(e)));
            }
            if let Some(t) = &filter.user_type {
                w += &format!(" AND u.user_type = {}", sql.text(t));
            }
            w
        };
        let (keys, next_cursor) = self
            .search_keys(
                scope,
                ("users", "u"),
                search.map(|p| (&USER_SEARCH[..], p)),
                build,
                page,
            )
            .await?;
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        let mut conn = self.conn().await?;
        let rows = with_conn!(&mut conn, |c| users::table
            .filter(users::connection_id.eq(scope.connection_id))
            .filter(users::id.eq_any(&ids))
            .select(UserRow::as_select())
            .load(c)
            .await?);
        Ok(Page {
            items: in_key_order(&keys, rows, |r| &r.id),
            next_cursor,
        })
    }

    /// One user of the connection.
    pub async fn get_user(&self, scope: &Scope<'_>, id: &str) -> Result<UserRow, Error> {
        self.check_row(scope, "users", "user", id).await?;
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| users::table
            .filter(users::connection_id.eq(scope.connection_id))
            .filter(users::id.eq(id))
            .select(UserRow::as_select())
            .first(c)
            .await
            .map_err(|e| Error::or_not_found(e, "user", id)))
    }

    /// A page of the groups `user_id` belongs to (directly, or also through nested groups
    /// when `transitive`), by group id.
    pub async fn list_user_groups(
        &self,
        scope: &Scope<'_>,
        user_id: &str,
        transitive: bool,
        page: &PageRequest,
    ) -> Result<Page<GroupRef>, Error> {
        self.check_row(scope, "users", "user", user_id).await?;
        let b = self.backend();
        let mut sql = Sql::new(b, scope);
        let m = sql.text(user_id.to_owned());
        let c = b.param(1);
        let s = sql.scoped();
        let source = if transitive {
            format!(
                "WITH RECURSIVE above(id) AS ( \
                   SELECT group_id FROM group_members WHERE connection_id = {c} AND member_id = {m} \
                   UNION \
                   SELECT gm.group_id FROM group_members gm JOIN above a ON gm.member_id = a.id \
                   WHERE gm.connection_id = {c} \
                 ) SELECT a.id AS id FROM above a WHERE {s}"
            )
        } else {
            format!(
                "SELECT gm.group_id AS id FROM group_members gm \
                 WHERE gm.connection_id = {c} AND gm.member_id = {m} AND {s}"
            )
        };
        let after = sql.after(page.after.as_ref(), None, "x.id");
        sql.text = format!(
            "SELECT x.id AS id, g.display_name AS display_name, g.mail AS mail, g.kind AS kind \
             FROM ({source}) x LEFT JOIN groups g ON g.connection_id = {c} AND g.id = x.id \
             WHERE 1 = 1{after} ORDER BY x.id LIMIT {}",
            page.limit + 1
        );
        let rows = self.raw::<GroupRef>(sql).await?;
        Ok(self.finish(rows, page, |r| &r.id))
    }

    /// A page of the connection's groups, by id; a search's by matched value, then id.
    pub async fn list_groups(
        &self,
        scope: &Scope<'_>,
        filter: &GroupFilter,
        page: &PageRequest,
    ) -> Result<Page<GroupRow>, Error> {
        let search = search_prefix(filter.search.as_ref());
        let build = |sql: &mut Sql| {
            let mut w = String::new();
            if let Some(k) = &filter.kind {
                w += &format!(" AND g.kind = {}", sql.text(k));
            }
            w
        };
        let (keys, next_cursor) = self
            .search_keys(
                scope,
                ("groups", "g"),
                search.map(|p| (&["display_name", "mail"][..], p)),
                build,
                page,
            )
            .await?;
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        let mut conn = self.conn().await?;
        let rows = with_conn!(&mut conn, |c| groups::table
            .filter(groups::connection_id.eq(scope.connection_id))
            .filter(groups::id.eq_any(&ids))
            .select(GroupRow::as_select())
            .load(c)
            .await?);
        Ok(Page {
            items: in_key_order(&keys, rows, |r| &r.id),
            next_cursor,
        })
    }

    /// One group of the connection.
    pub async fn get_group(&self, scope: &Scope<'_>, id: &str) -> Result<GroupRow, Error> {
        self.check_row(scope, "groups", "group", id).await?;
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| groups::table
            .filter(groups::connection_id.eq(scope.connection_id))
            .filter(groups::id.eq(id))
            .select(GroupRow::as_select())
            .first(c)
            .await
            .map_err(|e| Error::or_not_found(e, "group", id)))
    }

    /// A page of the members of `group_id` (direct, or everything under it through nested
    /// groups when `transitive`), by member id.
    pub async fn list_group_members(
        &self,
        scope: &Scope<'_>,
        group_id: &str,
        transitive: bool,
        page: &PageRequest,
    ) -> Result<Page<MemberEntry>, Error> {
        self.check_row(scope, "groups", "group", group_id).await?;
        let b = self.backend();
        let mut sql = Sql::new(b, scope);
        let g = sql.text(group_id.to_owned());
        let c = b.param(1);
        let s = sql.scoped();
        let source = if transitive {
            format!(
                "WITH RECURSIVE under(id, member_type) AS ( \
                   SELECT member_id, member_type FROM group_members \
                   WHERE connection_id = {c} AND group_id = {g} \
                   UNION \
                   SELECT gm.member_id, gm.member_type FROM group_members gm \
                   JOIN under x ON gm.group_id = x.id WHERE gm.connection_id = {c} \
                 ) SELECT x.id AS id, x.member_type AS member_type FROM under x WHERE {s}"
            )
        } else {
            format!(
                "SELECT gm.member_id AS id, gm.member_type AS member_type FROM group_members gm \
                 WHERE gm.connection_id = {c} AND gm.group_id = {g} AND {s}"
            )
        };
        let after = sql.after(page.after.as_ref(), None, "x.id");
        sql.text = format!(
            "SELECT x.id AS id, x.member_type AS member_type, \
               COALESCE(u.display_name, g.display_name) AS display_name, \
               u.user_principal_name AS user_principal_name \
             FROM ({source}) x \
             LEFT JOIN users u ON u.connection_id = {c} AND u.id = x.id \
             LEFT JOIN groups g ON g.connection_id = {c} AND g.id = x.id \
             WHERE 1 = 1{after} ORDER BY x.id LIMIT {}",
            page.limit + 1
        );
        let rows = self.raw::<MemberEntry>(sql).await?;
        Ok(self.finish(rows, page, |r| &r.id))
    }

    /// Cuts `limit + 1` rows ordered by id into a page and its cursor.
    fn finish<T>(
        &self,
        mut rows: Vec<T>,
        page: &PageRequest,
        id: impl Fn(&T) -> &String,
    ) -> Page<T> {
        let next_cursor = if rows.len() > page.limit as usize {
            rows.truncate(page.limit as usize);
            rows.last().map(|r| {
                encode_cursor(
                    page.listing,
                    &Position {
                        at: None,
                        id: id(r).clone(),
                        search: None,
                    },
                )
            })
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    /// A page of the connection's managed devices, by id; a search's by device name, then id.
    pub async fn list_devices(
        &self,
        scope: &Scope<'_>,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> Result<Page<DeviceRow>, Error> {
        let search = search_prefix(filter.search.as_ref());
        let build = |sql: &mut Sql| {
            let mut w = String::new();
            if let Some(v) = &filter.compliance_state {
                w += &format!(" AND d.compliance_state = {}", sql.text(v));
            }
            if let Some(v) = &filter.operating_system {
                w += &format!(" AND d.operating_system = {}", sql.text(v));
            }
            if let Some(v) = &filter.user_id {
                w += &format!(" AND d.user_id = {}", sql.text(v));
            }
            w
        };
        let (keys, next_cursor) = self
            .search_keys(
                scope,
                ("managed_devices", "d"),
                search.map(|p| (&["device_name"][..], p)),
                build,
                page,
            )
            .await?;
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        let mut conn = self.conn().await?;
        let rows = with_conn!(&mut conn, |c| managed_devices::table
            .filter(managed_devices::connection_id.eq(scope.connection_id))
            .filter(managed_devices::id.eq_any(&ids))
            .select(DeviceRow::as_select())
            .load(c)
            .await?);
        Ok(Page {
            items: in_key_order(&keys, rows, |r| &r.id),
            next_cursor,
        })
    }

    /// The `WHERE` of a time-ordered listing of `table` (alias `t`, time column `time`).
    fn time_where(
        &self,
        sql: &mut Sql,
        time: &str,
        range: &TimeRange,
        equals: &[(&str, &Option<String>)],
        page: &PageRequest,
    ) -> String {
        let mut w = format!(
            "t.connection_id = {} AND {}",
            self.backend().param(1),
            sql.scoped()
        );
        if let Some(f) = range.from {
            w += &format!(" AND t.{time} >= {}", sql.bind(Param::Time(f)));
        }
        if let Some(to) = range.to {
            w += &format!(" AND t.{time} < {}", sql.bind(Param::Time(to)));
        }
        for (col, value) in equals {
            if let Some(v) = value {
                w += &format!(" AND t.{col} = {}", sql.text(v));
            }
        }
        w += &sql.after(page.after.as_ref(), Some(&format!("t.{time}")), "t.id");
        w
    }

    /// A page of the connection's sign-ins, newest first.
    pub async fn list_sign_ins(
        &self,
        scope: &Scope<'_>,
        filter: &SignInFilter,
        page: &PageRequest,
    ) -> Result<Page<SignInRow>, Error> {
        let mut sql = Sql::new(self.backend(), scope);
        let w = self.time_where(
            &mut sql,
            "created_at",
            &filter.range,
            &[("user_id", &filter.user_id)],
            page,
        );
        sql.text = format!("SELECT t.id AS id, t.created_at AS at FROM sign_ins t WHERE {w}");
        let (keys, next_cursor) = self
            .keys(scope, sql, "t.created_at DESC, t.id DESC", page)
            .await?;
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        let mut conn = self.conn().await?;
        let rows = with_conn!(&mut conn, |c| sign_ins::table
            .filter(sign_ins::connection_id.eq(scope.connection_id))
            .filter(sign_ins::id.eq_any(&ids))
            .select(SignInRow::as_select())
            .load(c)
            .await?);
        Ok(Page {
            items: in_key_order(&keys, rows, |r| &r.id),
            next_cursor,
        })
    }

    /// A page of the connection's directory audits, newest first.
    pub async fn list_directory_audits(
        &self,
        scope: &Scope<'_>,
        filter: &DirectoryAuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditRow>, Error> {
        let mut sql = Sql::new(self.backend(), scope);
        let w = self.time_where(
            &mut sql,
            "activity_at",
            &filter.range,
            &[("category", &filter.category)],
            page,
        );
        sql.text =
            format!("SELECT t.id AS id, t.activity_at AS at FROM directory_audits t WHERE {w}");
        let (keys, next_cursor) = self
            .keys(scope, sql, "t.activity_at DESC, t.id DESC", page)
            .await?;
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        let mut conn = self.conn().await?;
        let rows = with_conn!(&mut conn, |c| directory_audits::table
            .filter(directory_audits::connection_id.eq(scope.connection_id))
            .filter(directory_audits::id.eq_any(&ids))
            .select(AuditRow::as_select())
            .load(c)
            .await?);
        Ok(Page {
            items: in_key_order(&keys, rows, |r| &r.id),
            next_cursor,
        })
    }

    /// A page of the connection's security alerts, newest first.
    pub async fn list_alerts(
        &self,
        scope: &Scope<'_>,
        filter: &AlertFilter,
        page: &PageRequest,
    ) -> Result<Page<AlertRow>, Error> {
        let mut sql = Sql::new(self.backend(), scope);
        let w = self.time_where(
            &mut sql,
            "created_at",
            &filter.range,
            &[("severity", &filter.severity), ("status", &filter.status)],
            page,
        );
        sql.text =
            format!("SELECT t.id AS id, t.created_at AS at FROM security_alerts t WHERE {w}");
        let (keys, next_cursor) = self
            .keys(scope, sql, "t.created_at DESC, t.id DESC", page)
            .await?;
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        let mut conn = self.conn().await?;
        let rows = with_conn!(&mut conn, |c| security_alerts::table
            .filter(security_alerts::connection_id.eq(scope.connection_id))
            .filter(security_alerts::id.eq_any(&ids))
            .select(AlertRow::as_select())
            .load(c)
            .await?);
        Ok(Page {
            items: in_key_order(&keys, rows, |r| &r.id),
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_and_is_strict() {
        for n in 0..40u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64url::decode(&base64url::encode(&bytes)), Some(bytes));
        }
        assert_eq!(base64url::encode(b"hi?"), "aGk_");
        assert_eq!(base64url::decode("aGk="), None);
        assert_eq!(base64url::decode("aGl"), None, "non-zero trailing bits");
        assert_eq!(base64url::decode("a"), None);
    }

    #[test]
    fn prefix_end_is_the_next_string() {
        assert_eq!(prefix_end("abc").as_deref(), Some("abd"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }

    #[test]
    fn cursors_are_checked() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 123_456_789)
            .unwrap()
            .naive_utc();
        let p = Position {
            at: Some(at),
            id: "x".into(),
            search: None,
        };
        let c = encode_cursor(Listing::SignIns, &p);
        assert_eq!(decode_cursor(Listing::SignIns, &c), Ok(p));
        // A search's cursor keeps its search and matched value, and only searchable
        // listings take one.
        let p = Position {
            at: None,
            id: "u1".into(),
            search: Some(("Om".into(), "omar khan".into())),
        };
        let s = encode_cursor(Listing::Users, &p);
        assert_eq!(decode_cursor(Listing::Users, &s), Ok(p.clone()));
        assert_eq!(decode_cursor(Listing::Groups, &s), Err(PageError::Cursor));
        assert_eq!(
            decode_cursor(Listing::UserGroups, &encode_cursor(Listing::UserGroups, &p)),
            Err(PageError::Cursor)
        );
        assert_eq!(decode_cursor(Listing::Alerts, &c), Err(PageError::Cursor));
        let mut tampered = c.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            decode_cursor(Listing::SignIns, &tampered),
            Err(PageError::Cursor)
        );
        assert_eq!(
            PageRequest::new(Listing::Users, Some(0), None),
            Err(PageError::Limit)
        );
        assert_eq!(
            PageRequest::new(Listing::Users, Some(1001), None),
            Err(PageError::Limit)
        );
    }
}
