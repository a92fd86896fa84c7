//! API keys of organizations: made, listed, looked up to authenticate, revoked. The store
//! keeps a hash of each key's secret, never the key.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::with_conn;
use crate::models::ApiKey;
use crate::schema::api_keys;
use crate::{Db, Error};

/// A key to store: the caller made the id and hashed the secret. Debug leaves the hash out,
/// as [`ApiKey`]'s does.
#[derive(Clone)]
pub struct NewApiKey {
    /// The key's public id (part of the key the client sends).
    pub id: String,
    /// The organization the key acts for.
    pub organization_id: String,
    /// A label for people.
    pub name: String,
    /// Hex SHA-256 of the key's secret part.
    pub secret_hash: String,
    /// When the key stops working, if ever.
    pub expires_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("name", &self.name)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Stores a new key of an existing organization.
    pub async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, Error> {
        let row = ApiKey {
            id: key.id.clone(),
            organization_id: key.organization_id.clone(),
            name: key.name.clone(),
            secret_hash: key.secret_hash.clone(),
            created_at: crate::tenants::now(),
            expires_at: key.expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        // The organization must exist: its id comes from a URL.
        self.organization(&key.organization_id).await?;
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| diesel::insert_into(api_keys::table)
            .values(&row)
            .execute(c)
            .await)?;
        Ok(row)
    }

    /// A key by id, whatever its organization: for authentication only.
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| api_keys::table
            .find(id)
            .select(ApiKey::as_select())
            .first(c)
            .await
            .optional())?)
    }

    /// An organization's keys, newest first (revoked and expired ones included).
    pub async fn api_keys(&self, organization_id: &str) -> Result<Vec<ApiKey>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| api_keys::table
            .filter(api_keys::organization_id.eq(organization_id))
            .order((api_keys::created_at.desc(), api_keys::id))
            .select(ApiKey::as_select())
            .load(c)
            .await)?)
    }

    /// Revokes a key of the organization; revoking twice is fine.
    pub async fn revoke_api_key(&self, organization_id: &str, id: &str) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        let now = crate::tenants::now();
        let n = with_conn!(&mut conn, |c| diesel::update(
            api_keys::table
                .filter(api_keys::organization_id.eq(organization_id))
                .filter(api_keys::id.eq(id)),
        )
        .set(
            api_keys::revoked_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
            >("COALESCE(revoked_at, ")
            .bind::<diesel::sql_types::Timestamp, _>(now)
            .sql(")"))
        )
        .execute(c)
        .await)?;
        if n == 0 {
            return Err(Error::NotFound {
                entity: "api key",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// Records that a key was used, at most about once a minute per key.
    pub async fn touch_api_key(&self, id: &str, at: NaiveDateTime) -> Result<(), Error> {
        let stale = at - chrono::Duration::seconds(60);
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| diesel::update(
            api_keys::table.filter(api_keys::id.eq(id)).filter(
                api_keys::last_used_at
                    .is_null()
                    .or(api_keys::last_used_at.lt(stale))
            ),
        )
        .set(api_keys::last_used_at.eq(at))
        .execute(c)
        .await)?;
        Ok(())
    }
}
