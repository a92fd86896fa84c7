//! PostgreSQL's per-connection partitions of the synced tables: added with a connection,
//! indexed (the membership edges keyed too) when a first load ends, dropped after a purge.
//! The partitions and their indexes are defined once, by SQL functions of migrations
//! `2026-12-08-000001_partition_synced_tables` and
//! `2026-12-08-000002_key_membership_edges_after_load`; this module only calls them. SQLite has no partitions: every call is a no-op there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::{Backend, Conn};
use crate::{Db, Error};

/// The partitioned tables, in the order partitions are added.
pub(crate) const PARTITIONED: [&str; 7] = [
    "users",
    "groups",
    "group_members",
    "managed_devices",
    "sign_ins",
    "directory_audits",
    "security_alerts",
];

/// A connection's partition of a table, and whether it is attached.
#[derive(QueryableByName)]
struct Partition {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Bool)]
    attached: bool,
}

/// The connections whose partition of membership edges is known to have its key, each
/// with that partition's name. A key, once built, stays until its partition is dropped
/// with its connection (whose id is never used again).
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyedEdges(Arc<Mutex<HashMap<String, Arc<str>>>>);

impl KeyedEdges {
    fn get(&self, connection_id: &str) -> Option<Arc<str>> {
        self.0.lock().ok()?.get(connection_id).cloned()
    }

    fn insert(&self, connection_id: &str, partition: Arc<str>) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(connection_id.to_owned(), partition);
        }
    }

    fn remove(&self, connection_id: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(connection_id);
        }
    }
}

#[derive(QueryableByName)]
struct Suffix {
    #[diesel(sql_type = Text)]
    suffix: String,
}

#[derive(QueryableByName)]
struct Indexed {
    #[diesel(sql_type = Nullable<Text>)]
    partition: Option<String>,
}

async fn call(
    c: &mut AsyncPgConnection,
    function: &str,
    table: &str,
    connection_id: &str,
) -> Result<(), Error> {
    diesel::sql_query(format!("SELECT {function}($1, $2)"))
        .bind::<Text, _>(table)
        .bind::<Text, _>(connection_id)
        .execute(c)
        .await?;
    Ok(())
}

impl Db {
    async fn pg_conn(&self) -> Result<Option<Conn>, Error> {
        if self.backend() != Backend::Postgres {
            return Ok(None);
        }
        self.conn().await.map(Some)
    }

    /// Adds `connection_id`'s partition of every synced table that lacks it, each in a
    /// transaction of its own (attaching takes a lock on its parent that stops no reads or
    /// writes, and holding one parent's while waiting for another's could deadlock).
    pub(crate) async fn add_partitions(&self, connection_id: &str) -> Result<(), Error> {
        let Some(Conn::Postgres(mut c)) = self.pg_conn().await? else {
            return Ok(());
        };
        for table in PARTITIONED {
            call(&mut c, "tenantlink_add_partition", table, connection_id).await?;
        }
        Ok(())
    }

    /// Ends a load of `tables` for `connection_id`: builds the indexes its partitions still
    /// lack (a first load writes rows only; sorted builds afterwards cost a fraction of
    /// keeping every index up to date row by row), two at a time, each on a connection of
    /// its own, and refreshes the planner's statistics of those partitions.
    pub(crate) async fn finish_load(
        &self,
        connection_id: &str,
        tables: &[&str],
    ) -> Result<(), Error> {
        let Some(Conn::Postgres(mut c)) = self.pg_conn().await? else {
            return Ok(());
        };
        let mut builds: Vec<(&str, String)> = Vec::new();
        for table in tables {
            let indexes: Vec<Suffix> =
                diesel::sql_query("SELECT suffix FROM tenantlink_partition_indexes($1)")
                    .bind::<Text, _>(*table)
                    .load(&mut *c)
                    .await?;
            builds.extend(indexes.into_iter().map(|i| (*table, i.suffix)));
        }
        // Back to the pool: the builds take connections of their own.
        drop(c);
        // Taken from the end: the last table's first (the membership edges, after the
        // groups: the longest builds start first).
        let queue = Mutex::new(builds);
        let builder = || async {
            let Some(Conn::Postgres(mut c)) = self.pg_conn().await? else {
                return Ok(());
            };
            while let Some((table, suffix)) = queue.lock().ok().and_then(|mut q| q.pop()) {
                diesel::sql_query("SELECT tenantlink_build_index($1, $2, $3)")
                    .bind::<Text, _>(table)
                    .bind::<Text, _>(connection_id)
                    .bind::<Text, _>(&suffix)
                    .execute(&mut *c)
                    .await?;
            }
            Ok::<_, Error>(())
        };
        tokio::try_join!(builder(), builder())?;
        let Some(Conn::Postgres(mut c)) = self.pg_conn().await? else {
            return Ok(());
        };
        for table in tables {
            call(&mut c, "tenantlink_finish_load", table, connection_id).await?;
        }
        Ok(())
    }

    /// The name of `connection_id`'s partition of membership edges, once its key exists:
    /// built here, with the partition's other missing indexes, when it does not yet (a
    /// write after a first load that never finished, or that ended just before a crash).
    /// Asked of the database once per connection and process.
    pub(crate) async fn keyed_edges(&self, connection_id: &str) -> Result<Arc<str>, Error> {
        if let Some(partition) = self.keyed_edges.get(connection_id) {
            return Ok(partition);
        }
        let Some(Conn::Postgres(mut c)) = self.pg_conn().await? else {
            return Err(Error::Database(
                "membership edges have partitions on PostgreSQL only".into(),
            ));
        };
        let Indexed { partition } = diesel::sql_query(
            "SELECT tenantlink_index_partition('group_members', $1) AS partition",
        )
        .bind::<Text, _>(connection_id)
        .get_result::<Indexed>(&mut *c)
        .await?;
        let partition: Arc<str> = partition
            .ok_or_else(|| {
                Error::Database("the connection's partition of membership edges is missing".into())
            })?
            .into();
        self.keyed_edges.insert(connection_id, partition.clone());
        Ok(partition)
    }

    /// Drops `connection_id`'s (emptied) partitions once the connection is gone: each is
    /// detached concurrently (no lock that stops other connections' queries), then
    /// dropped. Best effort: a partition left behind is empty and holds nobody's data.
    pub(crate) async fn drop_partitions(&self, connection_id: &str) {
        self.keyed_edges.remove(connection_id);
        let Ok(Some(Conn::Postgres(mut c))) = self.pg_conn().await else {
            return;
        };
        for table in PARTITIONED {
            let dropped = async {
                let Partition { name, attached } = diesel::sql_query(
                    "SELECT p.name, EXISTS (SELECT 1 FROM pg_inherits \
                     WHERE inhrelid = to_regclass(quote_ident(p.name))) AS attached \
                     FROM (SELECT tenantlink_partition($1, $2) AS name) AS p",
                )
                .bind::<Text, _>(table)
                .bind::<Text, _>(connection_id)
                .get_result::<Partition>(&mut *c)
                .await?;
                // The name is a table name and an md5: nothing to escape.
                if attached {
                    diesel::sql_query(format!(
                        "ALTER TABLE {table} DETACH PARTITION \"{name}\" CONCURRENTLY"
                    ))
                    .execute(&mut *c)
                    .await?;
                }
                diesel::sql_query(format!("DROP TABLE IF EXISTS \"{name}\""))
                    .execute(&mut *c)
                    .await?;
                Ok::<_, Error>(())
            };
            if let Err(e) = dropped.await {
                tracing::warn!(table, error = %e, "could not drop a deleted connection's partition");
            }
        }
    }
}
