//! The audit trail: append-only, hash-chained events (who did what to which thing, with
//! what outcome), appended in batches, listed per organization, and verified end to end.
//!
//! Each event's `hash` is the hex SHA-256 of the previous event's hash (its hex text) followed
//! by the event's canonical encoding (see [`event_hash`]). Appends take the single row of
//! `audit_chain_head` (locked `FOR UPDATE` on PostgreSQL; inside `BEGIN IMMEDIATE` and this
//! process's writer turn on SQLite), so the chain stays linear across processes; the head
//! assigns seqs, so they have no gaps. The store offers no update and no delete, and a
//! trigger refuses both.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
use diesel_async::RunQueryDsl;
use sha2::Digest as _;

use crate::db::{with_conn, write_transaction};
use crate::models::AuditEvent;
use crate::schema::audit_events;
use crate::{Backend, Db, Error};

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows per `INSERT` (11 binds each; well under both backends' bind limits).
const INSERT_CHUNK: usize = 500;

/// An event to append; the store assigns `seq` and the hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    /// When it happened (kept to the microsecond).
    pub at: NaiveDateTime,
    /// The organization it concerns; `None` for admin and system events.
    pub organization_id: Option<String>,
    /// Who: `key:<key id>`, `admin`, `worker:<instance>`, `system` or `anonymous`.
    pub actor: String,
    /// What: a route pattern with its method, or a named action (`sync.run`).
    pub action: String,
    /// Which things: `name=value` pairs separated by spaces.
    pub target: String,
    /// How it ended: an HTTP status, or `complete`, `partial`, `failed`.
    pub outcome: String,
    /// The request it came from, if any.
    pub request_id: Option<String>,
    /// A small JSON value; never a secret.
    pub detail: serde_json::Value,
}

/// What [`Db::audit_events`] lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only actions starting with this text (case-sensitive on both backends).
    pub action_prefix: Option<String>,
    /// Only events at or after this time.
    pub from: Option<NaiveDateTime>,
    /// Only events before this time.
    pub to: Option<NaiveDateTime>,
}

/// The result of [`Db::verify_audit_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerification {
    /// How many events were checked (all of them when the chain is intact).
    pub events_checked: u64,
    /// The first seq where the chain breaks, and why; `None` when intact.
    pub first_broken: Option<(i64, String)>,
}

impl AuditVerification {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Timestamps are hashed and stored to the microsecond (PostgreSQL's precision).
fn to_micros(at: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike as _;
    let nanos = at.nanosecond();
    at.with_nanosecond(nanos - nanos % 1_000).unwrap_or(at)
}

/// The hash of an event: hex SHA-256 of `prev_hash` (hex text) followed by the JSON array
/// `[seq, at, organization_id, actor, action, target, outcome, request_id, detail]`, with
/// `at` as `YYYY-MM-DDTHH:MM:SS.ffffff` and `null` for absent values. `detail` is hashed as
/// the stored text.
pub fn event_hash(event: &AuditEvent) -> String {
    let canonical = serde_json::json!([
        event.seq,
        event.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        event.organization_id,
        event.actor,
        event.action,
        event.target,
        event.outcome,
        event.request_id,
        event.detail,
    ]);
    let mut hasher = sha2::Sha256::new();
    hasher.update(event.prev_hash.as_bytes());
    hasher.update(canonical.to_string().as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(QueryableByName)]
struct Head {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    hash: String,
}

fn head_sql(backend: Backend, lock: bool) -> &'static str {
    match (backend, lock) {
        (Backend::Postgres, true) => {
            "SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE"
        }
        _ => "SELECT seq, hash FROM audit_chain_head WHERE id = 1",
    }
}

/// `INSERT INTO audit_events … VALUES (…), (…)` for `rows` rows.
fn insert_sql(backend: Backend, rows: usize) -> String {
    const COLUMNS: usize = 11;
    let mut sql = String::from(
        "INSERT INTO audit_events (seq, at, organization_id, actor, action, target, outcome, \
         request_id, detail, prev_hash, hash) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..COLUMNS {
            if col > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&backend.param(row * COLUMNS + col + 1));
        }
        sql.push(')');
    }
    sql
}

diesel::define_sql_function! {
    /// `substr(text, start, length)`, the same on both backends (characters, from 1).
    fn substr(x: Text, start: Integer, length: Integer) -> Text;
}

impl Db {
    /// Appends events in order as one transaction and returns them as stored (with seqs
    /// and hashes). An empty slice appends nothing.
    pub async fn append_audit(&self, events: &[NewAuditEvent]) -> Result<Vec<AuditEvent>, Error> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let events = events.to_vec();
        let backend = self.backend();
        let _writer = self.writer().await;
        let mut conn = self.conn().await?;
        write_transaction!(&mut conn, async move |c| {
            let head: Head = diesel::sql_query(head_sql(backend, true))
                .get_result(c)
                .await?;
            let mut prev = head.hash;
            let mut rows = Vec::with_capacity(events.len());
            for (i, e) in events.into_iter().enumerate() {
                let mut row = AuditEvent {
                    seq: head.seq + 1 + i64::try_from(i).unwrap_or(i64::MAX - head.seq - 1),
                    at: to_micros(e.at),
                    organization_id: e.organization_id,
                    actor: e.actor,
                    action: e.action,
                    target: e.target,
                    outcome: e.outcome,
                    request_id: e.request_id,
                    detail: e.detail.to_string(),
                    prev_hash: prev,
                    hash: String::new(),
                };
                row.hash = event_hash(&row);
                prev = row.hash.clone();
                rows.push(row);
            }
            // One multi-row INSERT per chunk (diesel's batch insert does not take Option
            // columns on SQLite).
            for chunk in rows.chunks(INSERT_CHUNK) {
                let mut query = diesel::sql_query(insert_sql(backend, chunk.len())).into_boxed();
                for r in chunk {
                    query = query
                        .bind::<BigInt, _>(r.seq)
                        .bind::<Timestamp, _>(r.at)
                        .bind::<Nullable<Text>, _>(r.organization_id.as_deref())
                        .bind::<Text, _>(r.actor.as_str())
                        .bind::<Text, _>(r.action.as_str())
                        .bind::<Text, _>(r.target.as_str())
                        .bind::<Text, _>(r.outcome.as_str())
                        .bind::<Nullable<Text>, _>(r.request_id.as_deref())
                        .bind::<Text, _>(r.detail.as_str())
                        .bind::<Text, _>(r.prev_hash.as_str())
                        .bind::<Text, _>(r.hash.as_str());
                }
                query.execute(c).await?;
            }
            let last = rows.last().map_or(head.seq, |r| r.seq);
            diesel::sql_query(format!(
                "UPDATE audit_chain_head SET seq = {}, hash = {} WHERE id = 1",
                backend.param(1),
                backend.param(2)
            ))
            .bind::<BigInt, _>(last)
            .bind::<Text, _>(&prev)
            .execute(c)
            .await?;
            Ok::<_, Error>(rows)
        })
    }

    /// Checks the whole chain, reading `batch_size` events at a time in seq order: seqs run
    /// 1, 2, 3… without gaps, each `prev_hash` is the previous event's hash, each hash is
    /// recomputed, and the last event is the one the chain head names. Events appended
    /// while this runs (after the head was read) are not checked.
    pub async fn verify_audit_chain(&self, batch_size: i64) -> Result<AuditVerification, Error> {
        let batch_size = batch_size.max(1);
        let backend = self.backend();
        let mut conn = self.conn().await?;
        let head: Head = with_conn!(&mut conn, |c| diesel::sql_query(head_sql(backend, false))
            .get_result(c)
            .await)?;
        let mut checked = 0u64;
        let mut last_seq = 0i64;
        let mut last_hash = GENESIS_HASH.to_owned();
        let broken = |seq: i64, reason: String, checked: u64| {
            Ok(AuditVerification {
                events_checked: checked,
                first_broken: Some((seq, reason)),
            })
        };
        loop {
            let batch: Vec<AuditEvent> = with_conn!(&mut conn, |c| audit_events::table
                .filter(audit_events::seq.gt(last_seq))
                .filter(audit_events::seq.le(head.seq))
                .order(audit_events::seq.asc())
                .limit(batch_size)
                .select(AuditEvent::as_select())
                .load(c)
                .await)?;
            if batch.is_empty() {
                break;
            }
            for event in batch {
                let expected = last_seq + 1;
                if event.seq != expected {
                    return broken(
                        expected,
                        format!(
                            "event {expected} is missing (the next stored is {})",
                            event.seq
                        ),
                        checked,
                    );
                }
                if event.prev_hash != last_hash {
                    return broken(
                        event.seq,
                        "prev_hash is not the previous event's hash".into(),
                        checked,
                    );
                }
                if event_hash(&event) != event.hash {
                    return broken(
                        event.seq,
                        "hash does not match the event's fields".into(),
                        checked,
                    );
                }
                checked += 1;
                last_seq = event.seq;
                last_hash = event.hash;
            }
        }
        if last_seq != head.seq {
            return broken(
                last_seq + 1,
                format!(
                    "the chain head names event {} but the events stop at {last_seq}",
                    head.seq
                ),
                checked,
            );
        }
        if last_hash != head.hash {
            return broken(
                last_seq,
                "the chain head's hash is not the last event's hash".into(),
                checked,
            );
        }
        Ok(AuditVerification {
            events_checked: checked,
            first_broken: None,
        })
    }

    /// Every organization's events in seq order, after `after_seq`, at most `limit`: for
    /// operators' exports and checks, never for an organization's request.
    pub async fn audit_chain_events(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| audit_events::table
            .filter(audit_events::seq.gt(after_seq))
            .order(audit_events::seq.asc())
            .limit(limit.max(0))
            .select(AuditEvent::as_select())
            .load(c)
            .await)?)
    }

    /// An organization's own events, newest first: those with a seq below `before_seq`
    /// (the cursor of the previous page), matching `filter`, at most `limit`.
    pub async fn audit_events(
        &self,
        organization_id: &str,
        filter: &AuditFilter,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, Error> {
        let prefix = filter.action_prefix.clone().filter(|p| !p.is_empty());
        let prefix_len = prefix
            .as_deref()
            .map_or(0, |p| i32::try_from(p.chars().count()).unwrap_or(i32::MAX));
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| {
            let mut query = audit_events::table
                .filter(audit_events::organization_id.eq(organization_id))
                .into_boxed();
            if let Some(prefix) = prefix.clone() {
                query = query.filter(substr(audit_events::action, 1, prefix_len).eq(prefix));
            }
            if let Some(from) = filter.from {
                query = query.filter(audit_events::at.ge(from));
            }
            if let Some(to) = filter.to {
                query = query.filter(audit_events::at.lt(to));
            }
            if let Some(before) = before_seq {
                query = query.filter(audit_events::seq.lt(before));
            }
            query
                .order(audit_events::seq.desc())
                .limit(limit.max(0))
                .select(AuditEvent::as_select())
                .load(c)
                .await
        })?)
    }
}
