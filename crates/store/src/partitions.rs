//! PostgreSQL's per-connection partitions of the synced tables: added with a connection,
//! indexed when a first load ends, dropped after a purge. The partitions and their indexes
//! are defined once, by SQL functions of migration `2026-12-08-000001_partition_synced_tables`;
//! this module only calls them. SQLite has no partitions: every call is a no-op there.

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Text};
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
    /// keeping every index up to date row by row) and refreshes the planner's statistics
    /// of those partitions.
    pub(crate) async fn finish_load(
        &self,
        connection_id: &str,
        tables: &[&str],
    ) -> Result<(), Error> {
        let Some(Conn::Postgres(mut c)) = self.pg_conn().await? else {
            return Ok(());
        };
        for table in tables {
            call(&mut c, "tenantlink_finish_load", table, connection_id).await?;
        }
        Ok(())
    }

    /// Drops `connection_id`'s (emptied) partitions once the connection is gone: each is
    /// detached concurrently (no lock that stops other connections' queries), then
    /// dropped. Best effort: a partition left behind is empty and holds nobody's data.
    pub(crate) async fn drop_partitions(&self, connection_id: &str) {
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
