//! Pending interactive requests (delegated sign-in, admin consent), kept server-side until
//! their callback: looked up by the hash of their state, used once, valid until they
//! expire. Every request is bound to an organization and one of its connections.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::with_conn;
use crate::models::OAuthState;
use crate::schema::{connections, oauth_states};
use crate::tenants::now;
use crate::{Db, Error};

impl Db {
    /// Keeps a pending request, after checking its connection belongs to its organization
    /// (else [`Error::NotFound`]). Expired requests of every organization are dropped on
    /// the way.
    pub async fn put_oauth_state(&self, state: &OAuthState) -> Result<(), Error> {
        let _writer = self.writer().await;
        let mut conn = self.conn().await?;
        let at = now();
        let owned: i64 = with_conn!(&mut conn, |c| {
            diesel::delete(oauth_states::table.filter(oauth_states::expires_at.le(at)))
                .execute(c)
                .await?;
            connections::table
                .filter(connections::organization_id.eq(&state.organization_id))
                .filter(connections::id.eq(&state.connection_id))
                .count()
                .get_result(c)
                .await?
        });
        if owned == 0 {
            return Err(Error::NotFound {
                entity: "connection",
                id: state.connection_id.clone(),
            });
        }
        with_conn!(&mut conn, |c| diesel::insert_into(oauth_states::table)
            .values(state)
            .execute(c)
            .await?);
        Ok(())
    }

    /// Takes the pending request whose state hashes to `state_hash`: it is deleted in the
    /// same statement, so a second call (a replay) finds nothing. `None` when it is
    /// unknown, already used, or expired at `at`.
    pub async fn take_oauth_state(
        &self,
        state_hash: &str,
        at: NaiveDateTime,
    ) -> Result<Option<OAuthState>, Error> {
        let _writer = self.writer().await;
        let mut conn = self.conn().await?;
        let taken = with_conn!(&mut conn, |c| diesel::delete(
            oauth_states::table.filter(oauth_states::state_hash.eq(state_hash))
        )
        .returning(OAuthState::as_returning())
        .get_result(c)
        .await
        .optional()?);
        Ok(taken.filter(|s| s.expires_at > at))
    }

    /// How many pending requests a connection has (for tests and operators).
    pub async fn oauth_states_of(&self, connection_id: &str) -> Result<i64, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| oauth_states::table
            .filter(oauth_states::connection_id.eq(connection_id))
            .count()
            .get_result(c)
            .await?))
    }
}
