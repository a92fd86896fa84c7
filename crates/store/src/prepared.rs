//! Raw SQL that the database prepares once per connection and then runs by name.
//!
//! diesel's `sql_query` marks itself unsafe to cache, so the database parses, analyses and
//! plans it on every run. A page write runs the same few statements thousands of times in a
//! full sync (a chunk of rows each): planning them took about 7% of PostgreSQL's CPU time
//! in a 100,000-user full sync. [`Prepared`] carries the same SQL text, whose placeholders
//! (`$n` on PostgreSQL, `?n` on SQLite) it binds by number, and lets diesel's statement
//! cache keep the prepared statement, keyed by that text.

use chrono::NaiveDateTime;
use diesel::QueryResult;
use diesel::backend::Backend as DieselBackend;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Array, BigInt, HasSqlType, Integer, Nullable, Text, Timestamp, Untyped};
use diesel::sqlite::Sqlite;

use crate::columns::TextArray;

/// One bind value of a [`Prepared`] statement.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bind<'q> {
    Text(&'q str),
    BigInt(i64),
    Integer(i32),
    Timestamp(NaiveDateTime),
    /// A column of rows as PostgreSQL's `text[]` (PostgreSQL only).
    TextArray(&'q TextArray),
}

/// `sql` with its binds: placeholder `$n` (PostgreSQL) or `?n` (SQLite) takes `binds[n - 1]`,
/// wherever and however often it occurs. The SQL must hold no other `$` or `?` followed by
/// a digit (our statements have no such string literals).
#[derive(Debug, Clone)]
pub(crate) struct Prepared<'q> {
    sql: &'q str,
    binds: Vec<Bind<'q>>,
}

/// Prepares `sql` (see [`Prepared`]); add its binds with [`Prepared::bind`].
pub(crate) fn prepared(sql: &str) -> Prepared<'_> {
    Prepared {
        sql,
        binds: Vec::new(),
    }
}

impl<'q> Prepared<'q> {
    /// Binds the next placeholder (`$1`, then `$2`, …).
    pub(crate) fn bind(mut self, value: Bind<'q>) -> Self {
        self.binds.push(value);
        self
    }

    /// Splits the SQL at its placeholders: the text before each one and its bind's index.
    fn pieces(&self) -> QueryResult<(Vec<(&'q str, usize)>, &'q str)> {
        let bytes = self.sql.as_bytes();
        let (mut pieces, mut start, mut i) = (Vec::new(), 0, 0);
        while i < bytes.len() {
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if matches!(bytes[i], b'$' | b'?') && digits > 0 {
                let n: usize = self.sql[i + 1..i + 1 + digits].parse().unwrap_or(0);
                if n == 0 || n > self.binds.len() {
                    return Err(diesel::result::Error::QueryBuilderError(
                        format!("placeholder {n} has no bind ({} bound)", self.binds.len()).into(),
                    ));
                }
                pieces.push((&self.sql[start..i], n - 1));
                i += 1 + digits;
                start = i;
            } else {
                i += 1;
            }
        }
        Ok((pieces, &self.sql[start..]))
    }
}

impl Prepared<'_> {
    /// Writes the SQL and its binds; `array` binds a [`Bind::TextArray`].
    fn walk<'b, DB>(
        &'b self,
        mut out: AstPass<'_, 'b, DB>,
        array: impl Fn(&mut AstPass<'_, 'b, DB>, &'b TextArray) -> QueryResult<()>,
    ) -> QueryResult<()>
    where
        DB: DieselBackend + HasSqlType<Text> + HasSqlType<BigInt> + HasSqlType<Integer>,
        DB: HasSqlType<Timestamp>,
        str: ToSql<Text, DB>,
        i64: ToSql<BigInt, DB>,
        i32: ToSql<Integer, DB>,
        NaiveDateTime: ToSql<Timestamp, DB>,
    {
        let (pieces, tail) = self.pieces()?;
        for (text, n) in pieces {
            out.push_sql(text);
            match &self.binds[n] {
                Bind::Text(v) => out.push_bind_param::<Text, str>(v)?,
                Bind::BigInt(v) => out.push_bind_param::<BigInt, i64>(v)?,
                Bind::Integer(v) => out.push_bind_param::<Integer, i32>(v)?,
                Bind::Timestamp(v) => out.push_bind_param::<Timestamp, NaiveDateTime>(v)?,
                Bind::TextArray(v) => array(&mut out, v)?,
            }
        }
        out.push_sql(tail);
        Ok(())
    }
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.walk(out, |out, v| {
            out.push_bind_param::<Array<Nullable<Text>>, TextArray>(v)
        })
    }
}

impl QueryFragment<Sqlite> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.walk(out, |_, _| {
            Err(diesel::result::Error::QueryBuilderError(
                "SQLite has no arrays: its rows go as JSON".into(),
            ))
        })
    }
}

/// No static id: diesel caches the statement by its SQL text and bind types.
impl QueryId for Prepared<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_binds_in_the_order_they_occur() {
        let q = prepared("UPDATE t SET a = $3, b = $2 WHERE c = $1 AND d IN ($3)")
            .bind(Bind::Text("c"))
            .bind(Bind::BigInt(2))
            .bind(Bind::Integer(3));
        let pg = diesel::debug_query::<Pg, _>(&q).to_string();
        assert!(
            pg.starts_with("UPDATE t SET a = $1, b = $2 WHERE c = $3 AND d IN ($4)"),
            "{pg}"
        );
        assert!(pg.contains(r#"binds: [3, 2, "c", 3]"#), "{pg}");
        let q = prepared("SELECT ?2, x ->> 'id' FROM json_each(?1)")
            .bind(Bind::Text("[]"))
            .bind(Bind::Integer(7));
        let lite = diesel::debug_query::<Sqlite, _>(&q).to_string();
        assert!(
            lite.starts_with("SELECT ?, x ->> 'id' FROM json_each(?)"),
            "{lite}"
        );
        assert!(lite.contains(r#"binds: [7, "[]"]"#), "{lite}");
    }

    #[test]
    fn a_placeholder_without_a_bind_is_an_error_not_a_panic() {
        let q = prepared("SELECT $1, $2").bind(Bind::Text("only one"));
        assert!(q.pieces().is_err());
        let q = prepared("SELECT $0").bind(Bind::Text("x"));
        assert!(q.pieces().is_err());
        // A `$` or `?` not followed by a digit is plain text.
        let q = prepared("SELECT '$', '?' || $1").bind(Bind::Text("x"));
        let (pieces, tail) = q.pieces().unwrap();
        assert_eq!(pieces, vec![("SELECT '$', '?' || ", 0)]);
        assert_eq!(tail, "");
    }
}
