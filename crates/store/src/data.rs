//! Writing synced data: a page of rows and the cursor that follows it, in one transaction.
//! Rows travel in statements of about [`CHUNK_BYTES`] (a few bind parameters, no bind
//! limits), expanded by the database (on PostgreSQL one binary `text[]` per column through
//! `unnest`, see `columns.rs`; on SQLite a JSON array through `json_each`) and upserted; on
//! PostgreSQL an unchanged row is not rewritten.

use chrono::NaiveDateTime;
use diesel::sql_types::{BigInt, Text};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, QueryableByName};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::columns::{Columns, Unsupported};
use crate::db::{Backend, write_transaction};
use crate::models::{
    AlertRow, AuditRow, Cursor, DeviceRow, GroupRow, MemberRow, SignInActivityRow, SignInRow,
    UserRow,
};
use crate::prepared::{Bind, Prepared, prepared};
use crate::runs::save_cursor;
use crate::schema::sync_cursors;
use crate::{Db, Error};

/// Everything one page of a sync changes. Apply it with [`Db::write_page`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageWrite {
    /// Users created or updated (their `signInActivity` columns are left as they are).
    pub users: Vec<UserRow>,
    /// Users deleted for good: the row and its membership edges go.
    pub users_deleted: Vec<String>,
    /// Users soft-deleted: the row stays, marked deleted.
    pub users_soft_deleted: Vec<String>,
    /// `signInActivity` of users already stored.
    pub sign_in_activity: Vec<SignInActivityRow>,
    /// Groups created or updated.
    pub groups: Vec<GroupRow>,
    /// Groups deleted for good: the row and its edges go.
    pub groups_deleted: Vec<String>,
    /// Groups soft-deleted.
    pub groups_soft_deleted: Vec<String>,
    /// Membership edges added (or seen again).
    pub members_added: Vec<MemberRow>,
    /// Membership edges removed: (group id, member id).
    pub members_removed: Vec<(String, String)>,
    /// Managed devices created or updated.
    pub devices: Vec<DeviceRow>,
    /// Sign-in records (idempotent by id).
    pub sign_ins: Vec<SignInRow>,
    /// Directory audit records (idempotent by id).
    pub audits: Vec<AuditRow>,
    /// Security alerts (updated in place by id).
    pub alerts: Vec<AlertRow>,
}

impl PageWrite {
    /// Rows this page deletes or updates in place, per kind.
    fn changed_in_place(&self) -> [usize; 6] {
        [
            self.users_deleted.len(),
            self.users_soft_deleted.len(),
            self.groups_deleted.len(),
            self.groups_soft_deleted.len(),
            self.members_removed.len(),
            self.sign_in_activity.len(),
        ]
    }

    /// Rows this page inserts (or upserts), per kind.
    fn inserted(&self) -> [usize; 7] {
        [
            self.users.len(),
            self.groups.len(),
            self.members_added.len(),
            self.devices.len(),
            self.sign_ins.len(),
            self.audits.len(),
            self.alerts.len(),
        ]
    }

    /// Whether this page deletes or updates rows in place. Such a statement does not see a
    /// row another transaction inserted and has not committed yet, so this page must not
    /// run beside an uncommitted page that inserts rows (see [`Db::write_page_after`]).
    pub fn changes_rows_in_place(&self) -> bool {
        self.changed_in_place().iter().any(|n| *n > 0)
    }

    /// Whether this page inserts (or upserts) rows.
    pub fn inserts_rows(&self) -> bool {
        self.inserted().iter().any(|n| *n > 0)
    }

    /// Rows this page writes or deletes.
    pub fn rows(&self) -> usize {
        self.changed_in_place().iter().sum::<usize>() + self.inserted().iter().sum::<usize>()
    }
}

/// A table's upsert: its name, the columns after `connection_id` (name, PostgreSQL type),
/// how many of the first ones form the key with `connection_id`, and what a conflict does.
struct Spec {
    table: &'static str,
    columns: &'static [(&'static str, &'static str)],
    key: usize,
    /// Whether rows carry `seen_round`.
    stamped: bool,
    on_conflict: OnConflict,
}

#[derive(PartialEq)]
enum OnConflict {
    /// Overwrite every non-key column (unless nothing changed).
    Update,
    /// Keep the stored row (immutable records).
    Nothing,
}

const USERS: Spec = Spec {
    table: "users",
    columns: &[
        ("id", "text"),
        ("display_name", "text"),
        ("user_principal_name", "text"),
        ("given_name", "text"),
        ("surname", "text"),
        ("mail", "text"),
        ("department", "text"),
        ("job_title", "text"),
        ("office_location", "text"),
        ("mobile_phone", "text"),
        ("account_enabled", "boolean"),
        ("user_type", "text"),
        ("created_at", "timestamp"),
        ("manager_id", "text"),
        ("deleted_at", "timestamp"),
    ],
    key: 1,
    stamped: true,
    on_conflict: OnConflict::Update,
};

const GROUPS: Spec = Spec {
    table: "groups",
    columns: &[
        ("id", "text"),
        ("display_name", "text"),
        ("description", "text"),
        ("mail", "text"),
        ("mail_nickname", "text"),
        ("kind", "text"),
        ("group_types", "text"),
        ("mail_enabled", "boolean"),
        ("security_enabled", "boolean"),
        ("visibility", "text"),
        ("created_at", "timestamp"),
        ("deleted_at", "timestamp"),
    ],
    key: 1,
    stamped: true,
    on_conflict: OnConflict::Update,
};

const MEMBERS: Spec = Spec {
    table: "group_members",
    columns: &[
        ("group_id", "text"),
        ("member_id", "text"),
        ("member_type", "text"),
    ],
    key: 2,
    stamped: true,
    on_conflict: OnConflict::Update,
};

const DEVICES: Spec = Spec {
    table: "managed_devices",
    columns: &[
        ("id", "text"),
        ("device_name", "text"),
        ("user_id", "text"),
        ("user_principal_name", "text"),
        ("operating_system", "text"),
        ("os_version", "text"),
        ("compliance_state", "text"),
        ("owner_type", "text"),
        ("is_encrypted", "boolean"),
        ("manufacturer", "text"),
        ("model", "text"),
        ("serial_number", "text"),
        ("azure_ad_device_id", "text"),
        ("enrolled_at", "timestamp"),
        ("last_sync_at", "timestamp"),
    ],
    key: 1,
    stamped: true,
    on_conflict: OnConflict::Update,
};

const SIGN_INS: Spec = Spec {
    table: "sign_ins",
    columns: &[
        ("id", "text"),
        ("created_at", "timestamp"),
        ("user_id", "text"),
        ("user_principal_name", "text"),
        ("app_display_name", "text"),
        ("ip_address", "text"),
        ("status_code", "bigint"),
        ("raw", "text"),
    ],
    key: 1,
    stamped: false,
    on_conflict: OnConflict::Nothing,
};

const AUDITS: Spec = Spec {
    table: "directory_audits",
    columns: &[
        ("id", "text"),
        ("activity_at", "timestamp"),
        ("activity_display_name", "text"),
        ("category", "text"),
        ("result", "text"),
        ("raw", "text"),
    ],
    key: 1,
    stamped: false,
    on_conflict: OnConflict::Nothing,
};

const ALERTS: Spec = Spec {
    table: "security_alerts",
    columns: &[
        ("id", "text"),
        ("created_at", "timestamp"),
        ("updated_at", "timestamp"),
        ("title", "text"),
        ("severity", "text"),
        ("status", "text"),
        ("raw", "text"),
    ],
    key: 1,
    stamped: false,
    on_conflict: OnConflict::Update,
};

/// The plain `INSERT … SELECT` of `spec`'s rows on `backend` and, apart, the `ON CONFLICT`
/// clause that makes it an upsert. Binds: 1 connection id, 2 round, then the rows: on
/// PostgreSQL 3… one `text[]` per column of `spec` (see `columns.rs`), on SQLite 3 a JSON
/// array. With `partition` (PostgreSQL) the rows go into that partition of `spec.table`
/// (aliased as the table), whose key leaves out the connection.
fn insert_sql(spec: &Spec, backend: Backend, partition: Option<&str>) -> (String, String) {
    let names: Vec<&str> = spec.columns.iter().map(|(n, _)| *n).collect();
    let mut insert_cols = vec!["connection_id"];
    if spec.stamped {
        insert_cols.push("seen_round");
    }
    insert_cols.extend(&names);
    let (conn, round) = match backend {
        Backend::Postgres => ("$1", "$2"),
        Backend::Sqlite => ("?1", "?2"),
    };
    let mut select = vec![conn.to_owned()];
    if spec.stamped {
        select.push(round.to_owned());
    }
    let source = match backend {
        Backend::Postgres => {
            // One text[] per column (see `columns.rs`), each value cast to its type.
            select.extend(spec.columns.iter().map(|(n, t)| {
                if *t == "text" {
                    format!("x.{n}")
                } else {
                    format!("x.{n}::{t}")
                }
            }));
            let arrays: Vec<String> = (0..spec.columns.len())
                .map(|i| format!("${}::text[]", i + 3))
                .collect();
            format!(
                "FROM unnest({}) AS x({})",
                arrays.join(", "),
                names.join(", ")
            )
        }
        Backend::Sqlite => {
            select.extend(spec.columns.iter().map(|(n, t)| {
                if *t == "timestamp" {
                    // Stored as diesel writes it ("YYYY-MM-DD HH:MM:SS"), so text order is
                    // time order.
                    format!("replace(value ->> '{n}', 'T', ' ')")
                } else {
                    format!("value ->> '{n}'")
                }
            }));
            "FROM json_each(?3) WHERE true".to_owned()
        }
    };
    let mut key = if partition.is_some() {
        vec![]
    } else {
        vec!["connection_id"]
    };
    key.extend(&names[..spec.key]);
    let mut updated: Vec<&str> = names[spec.key..].to_vec();
    if spec.stamped {
        updated.push("seen_round");
    }
    let action = if spec.on_conflict == OnConflict::Nothing || updated.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        let set: Vec<String> = updated
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let old: Vec<String> = updated
            .iter()
            .map(|c| format!("{}.{c}", spec.table))
            .collect();
        let new: Vec<String> = updated.iter().map(|c| format!("excluded.{c}")).collect();
        let differs = match backend {
            Backend::Postgres => "IS DISTINCT FROM",
            Backend::Sqlite => "IS NOT",
        };
        format!(
            "DO UPDATE SET {} WHERE ({}) {differs} ({})",
            set.join(", "),
            old.join(", "),
            new.join(", ")
        )
    };
    // A partition's name is a table name and an md5: nothing to escape.
    let target = partition.map_or_else(
        || spec.table.to_owned(),
        |p| format!("\"{p}\" AS {}", spec.table),
    );
    (
        format!(
            "INSERT INTO {target} ({}) SELECT {} {source}",
            insert_cols.join(", "),
            select.join(", "),
        ),
        format!("ON CONFLICT ({}) {action}", key.join(", ")),
    )
}

/// `DELETE`/`UPDATE` helpers that take a JSON array of ids as bind 2.
fn ids_in(backend: Backend, bind: &str) -> String {
    match backend {
        Backend::Postgres => format!("(SELECT json_array_elements_text({bind}::json))"),
        Backend::Sqlite => format!("(SELECT value FROM json_each({bind}))"),
    }
}

fn p(backend: Backend, n: usize) -> String {
    backend.param(n)
}

/// Runs `attempt` again (after a short pause) while it fails with [`Error::Contention`],
/// up to [`CONTENTION_RETRIES`] times: the database rolled the whole transaction back.
async fn on_contention<T, F, Fut>(mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(Error::Contention(reason)) if tries < CONTENTION_RETRIES => {
                tries += 1;
                tracing::debug!(%reason, tries, "a write raced another; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(20 * tries)).await;
            }
            other => return other,
        }
    }
}

/// How many times a page write that lost a race (deadlock, serialization failure) runs
/// again before its error is returned.
const CONTENTION_RETRIES: u64 = 5;

/// The most bytes of JSON one statement carries (a row is never split, so a chunk ends
/// past it by at most one row). Every connection keeps buffers as large as the largest
/// statement it sent, so a page of big rows (sign-ins keep their raw JSON) goes as several
/// statements in its transaction, each encoded just before it is sent: memory stays the
/// same whatever the page and tenant size.
const CHUNK_BYTES: usize = 128 * 1024;

/// Rows that encode one at a time, to JSON or (flat structs) to columns.
trait Rows: Sync {
    fn count(&self) -> usize;
    fn write_row(&self, i: usize, out: &mut Vec<u8>) -> serde_json::Result<()>;
    fn write_columns(&self, i: usize, out: &mut Columns) -> Result<(), Unsupported>;
}

impl<T: Serialize + Sync> Rows for Vec<T> {
    fn count(&self) -> usize {
        self.len()
    }

    fn write_row(&self, i: usize, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, &self[i])
    }

    fn write_columns(&self, i: usize, out: &mut Columns) -> Result<(), Unsupported> {
        out.push(&self[i])
    }
}

/// The rows of one statement of a page write: a JSON array, or one array per column.
enum Chunk {
    Json(String),
    Columns(Columns),
}

impl Chunk {
    /// How many rows it holds (counted for columns only: JSON goes to statements that are
    /// never tried as a plain `INSERT` first).
    fn rows(&self) -> usize {
        match self {
            Chunk::Json(_) => 0,
            Chunk::Columns(columns) => columns.rows(),
        }
    }
}

/// The next chunk of `rows` (see [`next_chunk`]): one array per column of `columns` when
/// the statement takes them, else JSON.
fn next_chunk_of(
    columns: Option<&[(&'static str, &'static str)]>,
    rows: &dyn Rows,
    max_rows: usize,
    next: &mut usize,
) -> Result<Option<Chunk>, Error> {
    let Some(columns) = columns else {
        return Ok(next_chunk(rows, max_rows, next)?.map(Chunk::Json));
    };
    if *next >= rows.count() {
        return Ok(None);
    }
    let mut chunk = Columns::new(columns.iter().map(|(n, _)| *n));
    let end = rows.count().min(next.saturating_add(max_rows.max(1)));
    while *next < end && chunk.bytes() < CHUNK_BYTES {
        rows.write_columns(*next, &mut chunk)
            .map_err(|e| Error::Database(format!("encoding rows: {e}")))?;
        *next += 1;
    }
    Ok(Some(Chunk::Columns(chunk)))
}

/// Binds `chunk`'s rows after the binds of `q`.
fn bind_rows<'q>(q: Prepared<'q>, chunk: &'q Chunk) -> Prepared<'q> {
    match chunk {
        Chunk::Json(json) => q.bind(Bind::Text(json)),
        Chunk::Columns(columns) => columns
            .arrays()
            .iter()
            .fold(q, |q, array| q.bind(Bind::TextArray(array))),
    }
}

/// The next JSON array of about [`CHUNK_BYTES`] of `rows`, from row `*next` on (none when
/// all went); moves `*next` past it.
fn next_chunk(rows: &dyn Rows, max_rows: usize, next: &mut usize) -> Result<Option<String>, Error> {
    let encoding = |e: &dyn std::fmt::Display| Error::Database(format!("encoding rows: {e}"));
    if *next >= rows.count() {
        return Ok(None);
    }
    let mut buf: Vec<u8> = Vec::new();
    let end = rows.count().min(next.saturating_add(max_rows.max(1)));
    while *next < end && buf.len() < CHUNK_BYTES {
        buf.push(if buf.is_empty() { b'[' } else { b',' });
        rows.write_row(*next, &mut buf).map_err(|e| encoding(&e))?;
        *next += 1;
    }
    buf.push(b']');
    String::from_utf8(buf).map(Some).map_err(|e| encoding(&e))
}

/// One statement of a page write, ready to run on either backend, once per chunk of its
/// rows.
struct Statement<'p> {
    sql: String,
    rows: &'p dyn Rows,
    kind: Binds,
    /// The rows' columns (name, type) when they go as one `text[]` each (PostgreSQL), else
    /// they go as a JSON array.
    columns: Option<&'static [(&'static str, &'static str)]>,
    /// The most rows one run of the statement takes (else as many as fit [`CHUNK_BYTES`]).
    max_rows: usize,
}

enum Binds {
    /// 1 connection, 2 round, then the rows; `fresh` is the upsert's plain `INSERT`, tried
    /// first on PostgreSQL (see `run_statements!`).
    Upsert { round: i64, fresh: Option<String> },
    /// 1 connection, then the rows.
    List,
    /// 1 connection, 2 JSON, 3 time, 4 round.
    Mark(NaiveDateTime, i64),
}

/// How a page's membership edges are written. On PostgreSQL a connection's partition of
/// them is keyed (made unique) only when its first load ends, like its other indexes
/// (migration `2026-12-08-000002_key_membership_edges_after_load`): keeping the key up to
/// date row by row was most of the database's time for 1.1M edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edges<'a> {
    /// Upserts into the table, whose primary key is the arbiter (SQLite).
    Table,
    /// The connection's first full round of groups on PostgreSQL: a plain insert through
    /// the parent (`ON CONFLICT DO NOTHING`, which also holds should the key exist
    /// already). An edge sent twice is stored twice until the key's build keeps one.
    FirstLoad,
    /// Upserts into the connection's partition (this name), whose key is the arbiter.
    Keyed(&'a str),
}

fn statements<'p>(
    backend: Backend,
    page: &'p PageWrite,
    round: i64,
    at: NaiveDateTime,
    edges: Edges<'_>,
) -> Vec<Statement<'p>> {
    let mut out = Vec::new();
    let upsert = |spec: &'static Spec, rows: &'p dyn Rows, partition: Option<&str>| {
        let (insert, on_conflict) = insert_sql(spec, backend, partition);
        let fresh = (backend == Backend::Postgres).then(|| match partition {
            // The plain insert goes through the parent, like every other.
            Some(_) => insert_sql(spec, backend, None).0,
            None => insert.clone(),
        });
        Statement {
            sql: format!("{insert} {on_conflict}"),
            rows,
            kind: Binds::Upsert { round, fresh },
            columns: (backend == Backend::Postgres).then_some(spec.columns),
            max_rows: usize::MAX,
        }
    };
    let (p1, p2, p3, p4) = (p(backend, 1), p(backend, 2), p(backend, 3), p(backend, 4));
    // Removals first, so an object deleted and re-created in one page ends present.
    for (table, ids) in [
        ("users", &page.users_deleted),
        ("groups", &page.groups_deleted),
    ] {
        if ids.is_empty() {
            continue;
        }
        let set = ids_in(backend, &p2);
        for side in ["member_id", "group_id"] {
            out.push(Statement {
                sql: format!(
                    "DELETE FROM group_members WHERE connection_id = {p1} AND {side} IN {set}"
                ),
                rows: ids,
                kind: Binds::List,
                columns: None,
                max_rows: usize::MAX,
            });
        }
        out.push(Statement {
            sql: format!("DELETE FROM {table} WHERE connection_id = {p1} AND id IN {set}"),
            rows: ids,
            kind: Binds::List,
            columns: None,
            max_rows: usize::MAX,
        });
    }
    for (table, ids) in [
        ("users", &page.users_soft_deleted),
        ("groups", &page.groups_soft_deleted),
    ] {
        if ids.is_empty() {
            continue;
        }
        out.push(Statement {
            sql: format!(
                "UPDATE {table} SET deleted_at = {p3}, seen_round = {p4} WHERE connection_id = {p1} AND id IN {}",
                ids_in(backend, &p2)
            ),
            rows: ids,
            kind: Binds::Mark(at, round),
            columns: None,
            max_rows: usize::MAX,
        });
    }
    if !page.members_removed.is_empty() {
        // (group, member) pairs encode as two-element arrays.
        let sql = match backend {
            Backend::Postgres => format!(
                "DELETE FROM group_members AS m USING json_array_elements({p2}::json) AS x \
                 WHERE m.connection_id = {p1} AND m.group_id = x ->> 0 AND m.member_id = x ->> 1"
            ),
            // The pairs drive the join (CROSS JOIN fixes the order in SQLite), each edge
            // found through the primary key; the JSON is parsed once.
            Backend::Sqlite => format!(
                "DELETE FROM group_members WHERE rowid IN (SELECT m.rowid FROM \
                 (SELECT value ->> 0 AS g, value ->> 1 AS id FROM json_each({p2})) AS j \
                 CROSS JOIN group_members AS m \
                 WHERE m.connection_id = {p1} AND m.group_id = j.g AND m.member_id = j.id)"
            ),
        };
        out.push(Statement {
            sql,
            rows: &page.members_removed,
            kind: Binds::List,
            columns: None,
            max_rows: usize::MAX,
        });
    }
    if !page.users.is_empty() {
        out.push(upsert(&USERS, &page.users, None));
    }
    if !page.groups.is_empty() {
        out.push(upsert(&GROUPS, &page.groups, None));
    }
    if !page.members_added.is_empty() {
        out.push(match edges {
            Edges::Table => upsert(&MEMBERS, &page.members_added, None),
            Edges::Keyed(partition) => upsert(&MEMBERS, &page.members_added, Some(partition)),
            Edges::FirstLoad => {
                let (insert, _) = insert_sql(&MEMBERS, backend, None);
                Statement {
                    sql: format!("{insert} ON CONFLICT DO NOTHING"),
                    kind: Binds::Upsert { round, fresh: None },
                    ..upsert(&MEMBERS, &page.members_added, None)
                }
            }
        });
    }
    if !page.sign_in_activity.is_empty() {
        let sql = match backend {
            // JSON, not columns: `json_to_recordset` is estimated at 100 rows, so each user
            // is found through the primary key; a known 1,000-element array can make a
            // mid-sized connection's update a hash join over all its users.
            Backend::Postgres => format!(
                "UPDATE users AS u SET last_sign_in_at = x.last_sign_in_at, \
                 last_non_interactive_sign_in_at = x.last_non_interactive_sign_in_at \
                 FROM json_to_recordset({p2}::json) AS x(id text, last_sign_in_at timestamp, \
                 last_non_interactive_sign_in_at timestamp) \
                 WHERE u.connection_id = {p1} AND u.id = x.id AND \
                 (u.last_sign_in_at, u.last_non_interactive_sign_in_at) IS DISTINCT FROM \
                 (x.last_sign_in_at, x.last_non_interactive_sign_in_at)"
            ),
            // The JSON is parsed once into a materialized table; each user is found by its
            // primary key and its values looked up in that small table (a scan of it per
            // user: statements stay small, see SQLITE_ACTIVITY_ROWS).
            Backend::Sqlite => format!(
                "WITH x AS MATERIALIZED (SELECT value ->> 'id' AS id, \
                 replace(value ->> 'last_sign_in_at', 'T', ' ') AS a, \
                 replace(value ->> 'last_non_interactive_sign_in_at', 'T', ' ') AS b \
                 FROM json_each({p2})) \
                 UPDATE users SET \
                 last_sign_in_at = (SELECT a FROM x WHERE x.id = users.id), \
                 last_non_interactive_sign_in_at = (SELECT b FROM x WHERE x.id = users.id) \
                 WHERE connection_id = {p1} AND id IN (SELECT id FROM x)"
            ),
        };
        out.push(Statement {
            sql,
            rows: &page.sign_in_activity,
            kind: Binds::List,
            columns: None,
            // SQLite's statement compares each of its users with each of its rows: it takes
            // them Graph's page (120) at a time, however many a write carries.
            max_rows: match backend {
                Backend::Postgres => usize::MAX,
                Backend::Sqlite => SQLITE_ACTIVITY_ROWS,
            },
        });
    }
    if !page.devices.is_empty() {
        out.push(upsert(&DEVICES, &page.devices, None));
    }
    if !page.sign_ins.is_empty() {
        out.push(upsert(&SIGN_INS, &page.sign_ins, None));
    }
    if !page.audits.is_empty() {
        out.push(upsert(&AUDITS, &page.audits, None));
    }
    if !page.alerts.is_empty() {
        out.push(upsert(&ALERTS, &page.alerts, None));
    }
    out
}

/// The most users one SQLite `signInActivity` statement updates (see `statements`).
const SQLITE_ACTIVITY_ROWS: usize = 120;

/// The tables a round of a resource writes (on PostgreSQL their partitions are indexed
/// when a full round ends).
pub(crate) fn loaded_tables(resource: &str) -> &'static [&'static str] {
    match resource {
        "users" => &["users"],
        "groups" => &["groups", "group_members"],
        "devices" => &["managed_devices"],
        "sign_ins" => &["sign_ins"],
        "directory_audits" => &["directory_audits"],
        "alerts" => &["security_alerts"],
        _ => &[],
    }
}

/// The tables a full round of a resource sweeps (rows whose `seen_round` is older): those
/// of the resources listed whole (audit records are kept, not swept).
pub(crate) fn sweep_tables(resource: &str) -> &'static [&'static str] {
    match resource {
        "users" | "groups" | "devices" => loaded_tables(resource),
        _ => &[],
    }
}

/// The most plain `INSERT`s a page write tries, each in its own savepoint: PostgreSQL keeps
/// the ids of 64 subtransactions per transaction in shared memory, and past that every
/// other session's visibility checks get slower.
const MAX_FRESH_TRIES: usize = 48;

/// The fewest rows a chunk tried as a plain `INSERT` first has: for a few rows (a groups
/// page's groups, about ten) the savepoint's two round trips cost more than the upsert's
/// speculative insertion saves.
const MIN_FRESH_ROWS: usize = 100;

/// Runs a page's statements, chunk by chunk. On PostgreSQL an upsert's chunk of at least
/// [`MIN_FRESH_ROWS`] rows is first tried as a plain `INSERT` in a savepoint: rows that are
/// all new (a first full round, new members, new sign-ins) then skip the upsert's
/// speculative insertion, a quarter of the cost of 1.1M membership edges. The first chunk with a row already stored rolls back to
/// the savepoint and goes as the upsert, as do that statement's later chunks. A row another
/// page is inserting at the same moment makes the `INSERT` wait for it, as the upsert
/// would, and then fail over the same way.
macro_rules! run_statements {
    ($c:expr, $connection_id:expr, $statements:expr) => {{
        let mut n = 0usize;
        let mut tries = 0usize;
        for st in $statements {
            let mut next = 0;
            let mut fresh = match &st.kind {
                Binds::Upsert { round, fresh, .. } => fresh.as_deref().map(|sql| (sql, *round)),
                _ => None,
            };
            while let Some(chunk) = next_chunk_of(st.columns, st.rows, st.max_rows, &mut next)? {
                if let Some((insert, round)) = fresh
                    && tries < MAX_FRESH_TRIES
                    && chunk.rows() >= MIN_FRESH_ROWS
                {
                    tries += 1;
                    let tried = ::diesel_async::AsyncConnection::transaction::<
                        _,
                        diesel::result::Error,
                        _,
                    >(&mut *$c, async |c| {
                        let q = prepared(insert)
                            .bind(Bind::Text($connection_id))
                            .bind(Bind::BigInt(round));
                        bind_rows(q, &chunk).execute(c).await
                    })
                    .await;
                    match tried {
                        Ok(k) => {
                            n += k;
                            continue;
                        }
                        Err(diesel::result::Error::DatabaseError(
                            diesel::result::DatabaseErrorKind::UniqueViolation,
                            _,
                        )) => fresh = None,
                        Err(e) => Err(e)?,
                    }
                }
                let q = prepared(st.sql.as_str()).bind(Bind::Text($connection_id));
                let q = match &st.kind {
                    Binds::Upsert { round, .. } => bind_rows(q.bind(Bind::BigInt(*round)), &chunk),
                    Binds::List => bind_rows(q, &chunk),
                    Binds::Mark(at, round) => bind_rows(q, &chunk)
                        .bind(Bind::Timestamp(*at))
                        .bind(Bind::BigInt(*round)),
                };
                n += q.execute($c).await?;
            }
        }
        n
    }};
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

/// How many users a full round's sweep looks up at a time.
const SWEEP_BATCH: i64 = 1000;

/// Deletes the membership edges of the users a full users round did not see, and only
/// theirs: an edge to a user created after this round passed it may have come from a
/// groups round. The unseen users are read a batch at a time through the users' primary
/// key (one pass over the connection's users) and each one's edges found through the
/// member index, so no statement scans the edges: a single `DELETE … IN (SELECT …)` was
/// planned as a scan of all the connection's edges when the statistics were stale (1.7 s at
/// 100,000 users).
macro_rules! delete_edges_of_unseen_users {
    ($c:expr, $backend:expr, $cursor:expr) => {{
        let (p1, p2, p3, p4) = (
            p($backend, 1),
            p($backend, 2),
            p($backend, 3),
            p($backend, 4),
        );
        let select = format!(
            "SELECT id FROM users WHERE connection_id = {p1} AND seen_round <> {p2} \
             AND id > {p3} ORDER BY id LIMIT {p4}"
        );
        let delete = format!(
            "DELETE FROM group_members WHERE connection_id = {p1} AND member_type = 'user' \
             AND member_id IN {}",
            ids_in($backend, &p2)
        );
        let mut n = 0;
        let mut after = String::new();
        loop {
            let ids: Vec<IdRow> = diesel::sql_query(select.as_str())
                .bind::<Text, _>(&$cursor.connection_id)
                .bind::<BigInt, _>($cursor.round)
                .bind::<Text, _>(&after)
                .bind::<BigInt, _>(SWEEP_BATCH)
                .load($c)
                .await?;
            let Some(last) = ids.last() else { break };
            after = last.id.clone();
            let ids: Vec<String> = ids.into_iter().map(|r| r.id).collect();
            let json = serde_json::to_string(&ids)
                .map_err(|e| Error::Database(format!("encoding ids: {e}")))?;
            n += diesel::sql_query(delete.as_str())
                .bind::<Text, _>(&$cursor.connection_id)
                .bind::<Text, _>(json)
                .execute($c)
                .await?;
        }
        Ok::<usize, Error>(n)
    }};
}

/// The most page writes of one resource a writer keeps in flight with
/// [`Db::write_page_after`]: it starts a page's write only once the write
/// `PAGES_IN_FLIGHT` pages before it has landed.
pub const PAGES_IN_FLIGHT: usize = 2;

/// Advisory locks per resource: one more than [`PAGES_IN_FLIGHT`], since page `k` takes its
/// own while the oldest page in flight still checks that the page before it has ended.
const TURNS: i64 = PAGES_IN_FLIGHT as i64 + 1;

/// Waits for, and holds to the end of the transaction, advisory lock `pages` mod [`TURNS`]
/// of `turn` (a connection and resource). PostgreSQL only.
///
/// With `relaxed` (a page's first statement), the same round trip lets the transaction's
/// commit skip waiting for the WAL flush (`synchronous_commit = off`, for this transaction
/// only): a database crash can then lose the last fraction of a second of pages, but never
/// a page without its cursor, so the next run simply syncs them again. It never corrupts
/// or half-applies anything.
macro_rules! take_turn {
    ($c:expr, $turn:expr, $pages:expr) => {
        take_turn!(@ $c, $turn, $pages, "SELECT pg_advisory_xact_lock(hashtext($1), $2)")
    };
    ($c:expr, $turn:expr, $pages:expr,relaxed) => {
        take_turn!(@ $c, $turn, $pages,
            "SELECT pg_advisory_xact_lock(hashtext($1), $2), \
             set_config('synchronous_commit', 'off', true)")
    };
    (@ $c:expr, $turn:expr, $pages:expr, $sql:expr) => {
        prepared($sql)
            .bind(Bind::Text($turn))
            .bind(Bind::Integer(($pages).rem_euclid(TURNS) as i32))
            .execute($c)
            .await?
    };
}

/// Takes, to the end of the transaction, the lock on a connection's membership edges that
/// keeps the two resources that delete edges from deadlocking each other: groups pages and
/// the groups sweep share it, so they still run side by side; a users page that deletes
/// users (and so their edges) and the users sweep hold it alone. Taken before the first
/// row lock, it is a wait and never a deadlock (a deadlock costs PostgreSQL's one-second
/// `deadlock_timeout` before it is resolved). PostgreSQL only.
macro_rules! lock_edges {
    ($c:expr, $connection_id:expr, $alone:expr) => {
        prepared(if $alone {
            "SELECT pg_advisory_xact_lock(hashtext($1))"
        } else {
            "SELECT pg_advisory_xact_lock_shared(hashtext($1))"
        })
        .bind(Bind::Text(&format!("{}:edges", $connection_id)))
        .execute($c)
        .await?
    };
}

/// How a page write locks its connection's edges (see `lock_edges!`): `Some(true)` alone,
/// `Some(false)` shared, `None` not at all.
fn edges_lock(page: &PageWrite) -> Option<bool> {
    if !page.users_deleted.is_empty() {
        Some(true)
    } else if !page.groups_deleted.is_empty()
        || !page.members_added.is_empty()
        || !page.members_removed.is_empty()
    {
        Some(false)
    } else {
        None
    }
}

/// Why a page write that waited for the page before it wrote nothing.
const PREVIOUS_NOT_WRITTEN: &str = "the page before this one has not been written";

/// The order of a page write among its resource's pages, for a writer that keeps the next
/// page's write going while the one before it commits (see [`Db::write_page_after`]).
#[derive(Debug)]
pub struct PageOrder {
    /// The cursor written with the page before this one, when that write may not have
    /// committed yet; `None` when it has (or this is a round's first page).
    pub previous: Option<Cursor>,
    /// Told once this write holds its turn: only then may the next page's write start.
    pub started: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Db {
    /// Applies one page of a sync and moves the resource's cursor past it, in one
    /// transaction: after a crash, the stored data and the cursor agree. Returns the rows
    /// the database changed (unchanged rows are not counted on PostgreSQL).
    pub async fn write_page(
        &self,
        page: &PageWrite,
        cursor: &Cursor,
        at: NaiveDateTime,
    ) -> Result<usize, Error> {
        let order = PageOrder {
            previous: None,
            started: None,
        };
        Ok(self
            .write_page_after(page, cursor, at, order)
            .await?
            .unwrap_or(0))
    }

    /// [`Db::write_page`] for a writer with two pages of one resource in flight: this
    /// page's rows are written while the page before it (`order.previous`) commits, and
    /// this page commits only after it, and only if it did. So pages still commit in
    /// order, each with its cursor, and a crash leaves a prefix of them.
    ///
    /// On PostgreSQL each write of a resource holds one of three transaction-scoped
    /// advisory locks (by its page number) from its start; before it writes its cursor it
    /// waits for the previous page's, then checks that the stored cursor is that page's.
    /// A wait for that lock is seen by PostgreSQL's deadlock detector like any row lock, so
    /// two pages that need each other's rows end in a detected deadlock, and one goes
    /// again. On SQLite writes take turns anyway.
    ///
    /// Returns `None`, having written nothing, when the previous page had not committed
    /// (it failed, or was rolled back to go again): write this page again once it has. A
    /// page that deletes or updates rows in place ([`PageWrite::changes_rows_in_place`])
    /// must not be started beside an uncommitted page that inserts rows: its statements
    /// would not see them.
    pub async fn write_page_after(
        &self,
        page: &PageWrite,
        cursor: &Cursor,
        at: NaiveDateTime,
        order: PageOrder,
    ) -> Result<Option<usize>, Error> {
        let backend = self.backend();
        let keyed;
        let first_load = cursor.round == 1 && cursor.full_round;
        let edge_writes = match backend {
            Backend::Sqlite => Edges::Table,
            // The first full round of groups, or a page without edges: no key needed.
            Backend::Postgres if first_load || page.members_added.is_empty() => Edges::FirstLoad,
            Backend::Postgres => {
                keyed = self.keyed_edges(&cursor.connection_id).await?;
                Edges::Keyed(&keyed)
            }
        };
        let statements = statements(backend, page, cursor.round, at, edge_writes);
        let started = std::sync::Mutex::new(order.started);
        let previous = order.previous.as_ref();
        let turn = format!("{}:{}", cursor.connection_id, cursor.resource);
        let edges = edges_lock(page);
        // Pages of two resources may touch the same edges in another order (a user's
        // removal and its groups' changes): PostgreSQL then rolls one page back whole,
        // and it goes again.
        let written = on_contention(|| async {
            let _writer = self.writer().await;
            let mut conn = self.conn().await?;
            let (statements, started, turn) = (&statements, &started, turn.as_str());
            write_transaction!(&mut conn, async move |c| {
                if backend == Backend::Postgres {
                    take_turn!(&mut *c, turn, cursor.pages, relaxed);
                    if let Some(alone) = edges {
                        lock_edges!(&mut *c, &cursor.connection_id, alone);
                    }
                }
                if let Some(tx) = started.lock().ok().and_then(|mut s| s.take()) {
                    let _ = tx.send(());
                }
                let id = cursor.connection_id.as_str();
                let n = run_statements!(&mut *c, id, statements);
                if let Some(previous) = previous {
                    if backend == Backend::Postgres {
                        take_turn!(&mut *c, turn, previous.pages);
                    }
                    type Mark = (i64, i64, Option<String>, Option<String>);
                    let stored: Option<Mark> = sync_cursors::table
                        .filter(sync_cursors::connection_id.eq(&cursor.connection_id))
                        .filter(sync_cursors::resource.eq(&cursor.resource))
                        .select((
                            sync_cursors::round,
                            sync_cursors::pages,
                            sync_cursors::run_id,
                            sync_cursors::next_link,
                        ))
                        .first(c)
                        .await
                        .optional()?;
                    let expected = (
                        previous.round,
                        previous.pages,
                        previous.run_id.clone(),
                        previous.next_link.clone(),
                    );
                    if stored.as_ref() != Some(&expected) {
                        return Err(Error::Conflict(PREVIOUS_NOT_WRITTEN.into()));
                    }
                }
                save_cursor!(c, cursor).await?;
                Ok::<_, Error>(n)
            })
        })
        .await;
        match written {
            Ok(n) => Ok(Some(n)),
            Err(Error::Conflict(m)) if m == PREVIOUS_NOT_WRITTEN => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Ends a full round of `resource`: deletes the connection's rows of that resource the
    /// round did not see (`seen_round` older than `cursor.round`) and stores the cursor, in
    /// one transaction. Returns how many rows went.
    pub async fn finish_full_round(&self, cursor: &Cursor) -> Result<usize, Error> {
        let tables = sweep_tables(&cursor.resource);
        let backend = self.backend();
        let _writer = self.writer().await;
        // The sweep deletes edges too: it can race a page of another resource.
        let n = on_contention(|| async {
            let mut conn = self.conn().await?;
            write_transaction!(&mut conn, async move |c| {
                let mut n = 0;
                // A resource's first round (rounds count from 1, and its cursor is deleted
                // only with its rows) wrote every row there is: nothing to sweep, and no
                // lock that would make the other resource's pages wait.
                let sweeps = cursor.round > 1;
                let tables: &[&str] = if sweeps { tables } else { &[] };
                let touches_edges =
                    sweeps && (cursor.resource == "users" || tables.contains(&"group_members"));
                if backend == Backend::Postgres && touches_edges {
                    lock_edges!(&mut *c, &cursor.connection_id, cursor.resource == "users");
                }
                if cursor.resource == "users" && sweeps {
                    n += delete_edges_of_unseen_users!(&mut *c, backend, cursor)?;
                }
                for table in tables {
                    let sql = format!(
                        "DELETE FROM {table} WHERE connection_id = {} AND seen_round <> {}",
                        p(backend, 1),
                        p(backend, 2)
                    );
                    n += diesel::sql_query(sql)
                        .bind::<Text, _>(&cursor.connection_id)
                        .bind::<BigInt, _>(cursor.round)
                        .execute(c)
                        .await?;
                }
                save_cursor!(c, cursor).await?;
                Ok::<_, Error>(n)
            })
        })
        .await?;
        // A full round is a load: on PostgreSQL the partitions it wrote get the indexes they
        // still lack (a connection's first load writes rows only) and fresh planner
        // statistics (stale ones make the planner pick a hash join over all of a
        // connection's rows for the small, id-keyed statements that follow: each
        // signInActivity page took 50-85 ms instead of 3 ms at 100,000 users). The round is
        // committed either way: a failure here leaves reads slower, and the next full round
        // tries again.
        let tables = loaded_tables(&cursor.resource);
        if let Err(e) = self.finish_load(&cursor.connection_id, tables).await {
            tracing::warn!(resource = %cursor.resource, error = %e, "could not index or analyze a loaded partition");
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_sql_filters_unchanged_rows() {
        let upsert_sql = |spec, backend| {
            let (insert, on_conflict) = insert_sql(spec, backend, None);
            format!("{insert} {on_conflict}")
        };
        let pg = upsert_sql(&MEMBERS, Backend::Postgres);
        assert_eq!(
            pg,
            "INSERT INTO group_members (connection_id, seen_round, group_id, member_id, member_type) \
             SELECT $1, $2, x.group_id, x.member_id, x.member_type FROM unnest($3::text[], \
             $4::text[], $5::text[]) AS x(group_id, member_id, member_type) ON CONFLICT (connection_id, \
             group_id, member_id) DO UPDATE SET member_type = excluded.member_type, seen_round = \
             excluded.seen_round WHERE (group_members.member_type, group_members.seen_round) IS \
             DISTINCT FROM (excluded.member_type, excluded.seen_round)"
        );
        // Values arrive as text and are cast to their column's type.
        let (insert, _) = insert_sql(&SIGN_INS, Backend::Postgres, None);
        assert!(
            insert.contains("SELECT $1, x.id, x.created_at::timestamp, x.user_id,"),
            "{insert}"
        );
        assert!(insert.contains("x.status_code::bigint, x.raw FROM unnest($3::text[], "));
        let lite = upsert_sql(&SIGN_INS, Backend::Sqlite);
        assert!(lite.contains("FROM json_each(?3) WHERE true"), "{lite}");
        assert!(
            lite.contains("replace(value ->> 'created_at', 'T', ' ')"),
            "{lite}"
        );
        assert!(
            lite.ends_with("ON CONFLICT (connection_id, id) DO NOTHING"),
            "{lite}"
        );
    }

    #[test]
    fn big_pages_go_as_several_json_arrays_of_whole_rows() {
        let mut next = 0;
        assert!(
            next_chunk(&Vec::<String>::new(), usize::MAX, &mut next)
                .unwrap()
                .is_none()
        );
        let ids: Vec<String> = (0..20_000).map(|i| format!("id-{i:08}-\u{e9}\"")).collect();
        let mut back = Vec::new();
        let mut chunks = 0;
        while let Some(c) = next_chunk(&ids, usize::MAX, &mut next).unwrap() {
            assert!(c.len() < CHUNK_BYTES + 64, "{}", c.len());
            back.extend(serde_json::from_str::<Vec<String>>(&c).unwrap());
            chunks += 1;
        }
        assert!(chunks > 2, "{chunks} chunks");
        assert_eq!(back, ids);
        // Pairs go as two-element arrays.
        let pairs = vec![("g".to_owned(), "m".to_owned())];
        let mut next = 0;
        assert_eq!(
            next_chunk(&pairs, usize::MAX, &mut next)
                .unwrap()
                .as_deref(),
            Some(r#"[["g","m"]]"#)
        );
        // A statement that takes at most so many rows gets them in chunks of that many.
        let (first, mut next) = (ids[..250].to_vec(), 0);
        let mut sizes = Vec::new();
        while let Some(c) = next_chunk(&first, 120, &mut next).unwrap() {
            sizes.push(serde_json::from_str::<Vec<String>>(&c).unwrap().len());
        }
        assert_eq!(sizes, [120, 120, 10]);
    }
}
