//! Reading synced data, always within one connection: counts, whole tables in key order,
//! and transitive membership by a recursive query both backends run.

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;

use crate::db::with_conn;
use crate::models::{AlertRow, AuditRow, DeviceRow, GroupRow, MemberRow, SignInRow, UserRow};
use crate::schema::{
    directory_audits, group_members, groups, managed_devices, security_alerts, sign_ins, users,
};
use crate::{Db, Error};

/// Row counts of one connection's synced data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Users (including soft-deleted).
    pub users: i64,
    /// Groups (including soft-deleted).
    pub groups: i64,
    /// Direct membership edges.
    pub group_members: i64,
    /// Managed devices.
    pub devices: i64,
    /// Sign-in records.
    pub sign_ins: i64,
    /// Directory audit records.
    pub directory_audits: i64,
    /// Security alerts.
    pub alerts: i64,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

impl Db {
    /// Row counts of a connection.
    pub async fn counts(&self, connection_id: &str) -> Result<Counts, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| Counts {
            users: users::table
                .filter(users::connection_id.eq(connection_id))
                .count()
                .get_result(c)
                .await?,
            groups: groups::table
                .filter(groups::connection_id.eq(connection_id))
                .count()
                .get_result(c)
                .await?,
            group_members: group_members::table
                .filter(group_members::connection_id.eq(connection_id))
                .count()
                .get_result(c)
                .await?,
            devices: managed_devices::table
                .filter(managed_devices::connection_id.eq(connection_id))
                .count()
                .get_result(c)
                .await?,
            sign_ins: sign_ins::table
                .filter(sign_ins::connection_id.eq(connection_id))
                .count()
                .get_result(c)
                .await?,
            directory_audits: directory_audits::table
                .filter(directory_audits::connection_id.eq(connection_id))
                .count()
                .get_result(c)
                .await?,
            alerts: security_alerts::table
                .filter(security_alerts::connection_id.eq(connection_id))
                .count()
                .get_result(c)
                .await?,
        }))
    }

    /// Every user of a connection, by id.
    pub async fn users(&self, connection_id: &str) -> Result<Vec<UserRow>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| users::table
            .filter(users::connection_id.eq(connection_id))
            .order(users::id)
            .select(UserRow::as_select())
            .load(c)
            .await?))
    }

    /// One user of a connection.
    pub async fn user(&self, connection_id: &str, id: &str) -> Result<UserRow, Error> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| users::table
            .filter(users::connection_id.eq(connection_id))
            .filter(users::id.eq(id))
            .select(UserRow::as_select())
            .first(c)
            .await
            .map_err(|e| Error::or_not_found(e, "user", id)))
    }

    /// Every group of a connection, by id.
    pub async fn groups(&self, connection_id: &str) -> Result<Vec<GroupRow>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| groups::table
            .filter(groups::connection_id.eq(connection_id))
            .order(groups::id)
            .select(GroupRow::as_select())
            .load(c)
            .await?))
    }

    /// Every direct membership edge of a connection, by group then member.
    pub async fn group_members(&self, connection_id: &str) -> Result<Vec<MemberRow>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| group_members::table
            .filter(group_members::connection_id.eq(connection_id))
            .order((group_members::group_id, group_members::member_id))
            .select(MemberRow::as_select())
            .load(c)
            .await?))
    }

    /// Every managed device of a connection, by id.
    pub async fn devices(&self, connection_id: &str) -> Result<Vec<DeviceRow>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| managed_devices::table
            .filter(managed_devices::connection_id.eq(connection_id))
            .order(managed_devices::id)
            .select(DeviceRow::as_select())
            .load(c)
            .await?))
    }

    /// Every sign-in of a connection, by id.
    pub async fn sign_ins(&self, connection_id: &str) -> Result<Vec<SignInRow>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| sign_ins::table
            .filter(sign_ins::connection_id.eq(connection_id))
            .order(sign_ins::id)
            .select(SignInRow::as_select())
            .load(c)
            .await?))
    }

    /// Every directory audit of a connection, by id.
    pub async fn directory_audits(&self, connection_id: &str) -> Result<Vec<AuditRow>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| directory_audits::table
            .filter(directory_audits::connection_id.eq(connection_id))
            .order(directory_audits::id)
            .select(AuditRow::as_select())
            .load(c)
            .await?))
    }

    /// Every security alert of a connection, by id.
    pub async fn alerts(&self, connection_id: &str) -> Result<Vec<AlertRow>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| security_alerts::table
            .filter(security_alerts::connection_id.eq(connection_id))
            .order(security_alerts::id)
            .select(AlertRow::as_select())
            .load(c)
            .await?))
    }

    /// Ids of everything under `group_id`, through nested groups (cycles are safe), sorted.
    pub async fn transitive_members(
        &self,
        connection_id: &str,
        group_id: &str,
    ) -> Result<Vec<String>, Error> {
        let b = self.backend();
        let sql = format!(
            "WITH RECURSIVE under(id) AS ( \
               SELECT member_id FROM group_members WHERE connection_id = {c} AND group_id = {g} \
               UNION \
               SELECT m.member_id FROM group_members m JOIN under u ON m.group_id = u.id \
               WHERE m.connection_id = {c} \
             ) SELECT id FROM under ORDER BY id",
            c = b.param(1),
            g = b.param(2)
        );
        self.ids(sql, connection_id, group_id).await
    }

    /// Ids of every group `member_id` belongs to, directly or through nested groups, sorted.
    pub async fn transitive_groups(
        &self,
        connection_id: &str,
        member_id: &str,
    ) -> Result<Vec<String>, Error> {
        let b = self.backend();
        let sql = format!(
            "WITH RECURSIVE above(id) AS ( \
               SELECT group_id FROM group_members WHERE connection_id = {c} AND member_id = {m} \
               UNION \
               SELECT m.group_id FROM group_members m JOIN above a ON m.member_id = a.id \
               WHERE m.connection_id = {c} \
             ) SELECT id FROM above ORDER BY id",
            c = b.param(1),
            m = b.param(2)
        );
        self.ids(sql, connection_id, member_id).await
    }

    async fn ids(&self, sql: String, a: &str, b: &str) -> Result<Vec<String>, Error> {
        let mut conn = self.conn().await?;
        let rows: Vec<IdRow> = with_conn!(&mut conn, |c| diesel::sql_query(sql.as_str())
            .bind::<Text, _>(a)
            .bind::<Text, _>(b)
            .load(c)
            .await?);
        Ok(rows.into_iter().map(|r| r.id).collect())
    }
}
