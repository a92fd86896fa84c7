//! Organizations, connections and delegated tokens, and the bookkeeping of which key wrote
//! each stored secret (for rotation). Every connection query is scoped by organization.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::{with_conn, write_transaction};
use crate::models::{Connection, DelegatedToken, Organization};
use crate::schema::{connections, delegated_tokens, oauth_states, organizations};
use crate::{Db, Error};

/// A new connection; the secret is ciphertext the caller made.
#[derive(Clone)]
pub struct NewConnection {
    /// The owning organization.
    pub organization_id: String,
    /// The Microsoft tenant id.
    pub tenant_id: String,
    /// The app (client) id.
    pub client_id: String,
    /// How it signs in.
    pub auth_kind: crate::AuthKind,
    /// The encrypted secret or certificate, and the id of the key that wrote it.
    pub secret: Option<(Vec<u8>, String)>,
    /// When the secret expires, if known.
    pub secret_expires_at: Option<NaiveDateTime>,
    /// Permissions the verifying token carried.
    pub granted_permissions: Vec<String>,
    /// Permissions the sync needs that the token lacked.
    pub missing_permissions: Vec<String>,
}

impl std::fmt::Debug for NewConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewConnection")
            .field("organization_id", &self.organization_id)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("auth_kind", &self.auth_kind)
            .field("secret_key_id", &self.secret.as_ref().map(|(_, k)| k))
            .finish_non_exhaustive()
    }
}

/// Where a stored secret lives, for re-encryption.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `connections.secret_ciphertext` of this connection.
    Connection(String),
    /// A delegated token: (connection id, principal).
    DelegatedToken(String, String),
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connection(id) => write!(f, "connection {id}"),
            Self::DelegatedToken(id, _) => write!(f, "delegated token of connection {id}"),
        }
    }
}

/// A stored secret: where, which key wrote it, the ciphertext. Debug hides the ciphertext.
#[derive(Clone)]
pub struct StoredSecret {
    /// Where it lives.
    pub at: SecretRef,
    /// The key id recorded with it.
    pub key_id: String,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecret")
            .field("at", &self.at)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Db {
    /// Creates an organization.
    pub async fn create_organization(&self, name: &str) -> Result<Organization, Error> {
        let org = Organization {
            id: new_id(),
            name: name.to_owned(),
            created_at: now(),
        };
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| diesel::insert_into(organizations::table)
            .values(&org)
            .execute(c)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict(_) => Error::Conflict(format!("organization {name:?} exists")),
                other => other,
            })?);
        Ok(org)
    }

    /// The organization named `name`, if any.
    pub async fn organization_by_name(&self, name: &str) -> Result<Option<Organization>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| organizations::table
            .filter(organizations::name.eq(name))
            .select(Organization::as_select())
            .first(c)
            .await
            .optional()?))
    }

    /// An organization by id.
    pub async fn organization(&self, id: &str) -> Result<Organization, Error> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| organizations::table
            .find(id)
            .select(Organization::as_select())
            .first(c)
            .await
            .map_err(|e| Error::or_not_found(e, "organization", id)))
    }

    /// Every organization, by name.
    pub async fn organizations(&self) -> Result<Vec<Organization>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| organizations::table
            .order(organizations::name)
            .select(Organization::as_select())
            .load(c)
            .await?))
    }

    /// Stores a new connection (status `active`).
    pub async fn create_connection(&self, new: NewConnection) -> Result<Connection, Error> {
        let at = now();
        let (ciphertext, key_id) = new.secret.map_or((None, None), |(c, k)| (Some(c), Some(k)));
        let row = Connection {
            id: new_id(),
            organization_id: new.organization_id,
            tenant_id: new.tenant_id,
            client_id: new.client_id,
            auth_kind: new.auth_kind.as_str().to_owned(),
            secret_ciphertext: ciphertext,
            secret_key_id: key_id,
            secret_expires_at: new.secret_expires_at,
            status: "active".into(),
            last_error: None,
            granted_permissions: new.granted_permissions.join(" "),
            missing_permissions: new.missing_permissions.join(" "),
            created_at: at,
            updated_at: at,
            consented_at: None,
        };
        // Its partitions first (PostgreSQL): a row written for the connection always has
        // one. If the insert fails, they go again.
        self.add_partitions(&row.id).await?;
        let mut conn = self.conn().await?;
        let inserted = with_conn!(&mut conn, |c| diesel::insert_into(connections::table)
            .values(&row)
            .execute(c)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict(_) => Error::Conflict(format!(
                    "this organization already connects tenant {} with app {}",
                    row.tenant_id, row.client_id
                )),
                other => other,
            }));
        if let Err(e) = inserted {
            drop(conn);
            self.drop_partitions(&row.id).await;
            return Err(e);
        }
        Ok(row)
    }

    /// A connection of `organization_id` (another organization's connection is
    /// [`Error::NotFound`]).
    pub async fn connection(&self, organization_id: &str, id: &str) -> Result<Connection, Error> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| connections::table
            .filter(connections::organization_id.eq(organization_id))
            .filter(connections::id.eq(id))
            .select(Connection::as_select())
            .first(c)
            .await
            .map_err(|e| Error::or_not_found(e, "connection", id)))
    }

    /// The connections of an organization, oldest first.
    pub async fn connections(&self, organization_id: &str) -> Result<Vec<Connection>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| connections::table
            .filter(connections::organization_id.eq(organization_id))
            .order((connections::created_at, connections::id))
            .select(Connection::as_select())
            .load(c)
            .await?))
    }

    /// Every connection of every organization (for operators' tools).
    pub async fn all_connections(&self) -> Result<Vec<Connection>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| connections::table
            .order((connections::created_at, connections::id))
            .select(Connection::as_select())
            .load(c)
            .await?))
    }

    /// Records a connection's status and last error.
    pub async fn set_connection_status(
        &self,
        organization_id: &str,
        id: &str,
        status: &str,
        last_error: Option<&str>,
    ) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        let n = with_conn!(&mut conn, |c| diesel::update(
            connections::table
                .filter(connections::organization_id.eq(organization_id))
                .filter(connections::id.eq(id))
        )
        .set((
            connections::status.eq(status),
            connections::last_error.eq(last_error),
            connections::updated_at.eq(now()),
        ))
        .execute(c)
        .await?);
        if n == 0 {
            return Err(Error::NotFound {
                entity: "connection",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// Replaces a connection's secret (rotation by its owner).
    pub async fn set_connection_secret(
        &self,
        organization_id: &str,
        id: &str,
        ciphertext: Vec<u8>,
        key_id: &str,
        expires_at: Option<NaiveDateTime>,
    ) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        let n = with_conn!(&mut conn, |c| diesel::update(
            connections::table
                .filter(connections::organization_id.eq(organization_id))
                .filter(connections::id.eq(id))
        )
        .set((
            connections::secret_ciphertext.eq(Some(ciphertext)),
            connections::secret_key_id.eq(Some(key_id)),
            connections::secret_expires_at.eq(expires_at),
            connections::updated_at.eq(now()),
        ))
        .execute(c)
        .await?);
        if n == 0 {
            return Err(Error::NotFound {
                entity: "connection",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// Deletes a connection with its credentials, tokens, runs, cursors and synced data.
    pub async fn delete_connection(&self, organization_id: &str, id: &str) -> Result<(), Error> {
        let backend = self.backend();
        let _writer = self.writer().await;
        let mut conn = self.conn().await?;
        let n = write_transaction!(&mut conn, async move |c| {
            // The connection row goes first: deleting it waits for any page being
            // written (its cursor row holds a key-share lock on the connection) and stops
            // later pages. The synced rows have no foreign key on PostgreSQL, so they are
            // deleted here, each statement seeing everything committed before it.
            let n = diesel::delete(
                connections::table
                    .filter(connections::organization_id.eq(organization_id))
                    .filter(connections::id.eq(id)),
            )
            .execute(c)
            .await?;
            if n > 0 {
                for table in crate::DATA_TABLES {
                    diesel::sql_query(format!(
                        "DELETE FROM {table} WHERE connection_id = {}",
                        backend.param(1)
                    ))
                    .bind::<diesel::sql_types::Text, _>(id)
                    .execute(c)
                    .await?;
                }
            }
            Ok::<_, Error>(n)
        })?;
        if n == 0 {
            return Err(Error::NotFound {
                entity: "connection",
                id: id.to_owned(),
            });
        }
        // Its partitions are empty now (PostgreSQL).
        self.drop_partitions(id).await;
        Ok(())
    }

    /// The connection of `organization_id` to `tenant_id` (any app), if any; tenant ids
    /// compare without case.
    pub async fn connection_by_tenant(
        &self,
        organization_id: &str,
        tenant_id: &str,
    ) -> Result<Option<Connection>, Error> {
        let all = self.connections(organization_id).await?;
        Ok(all
            .into_iter()
            .find(|c| c.tenant_id.eq_ignore_ascii_case(tenant_id)))
    }

    /// Replaces every credential of a connection of `new.organization_id` (tenant, app,
    /// kind, secret, permissions) and makes it `active` again with no last error: a
    /// rotated secret, a reconnection after [`Db::disconnect_connection`], or a new app.
    pub async fn replace_connection_credentials(
        &self,
        id: &str,
        new: NewConnection,
    ) -> Result<Connection, Error> {
        let (ciphertext, key_id) = new.secret.map_or((None, None), |(c, k)| (Some(c), Some(k)));
        let _writer = self.writer().await;
        let mut conn = self.conn().await?;
        let n = with_conn!(&mut conn, |c| diesel::update(
            connections::table
                .filter(connections::organization_id.eq(&new.organization_id))
                .filter(connections::id.eq(id))
        )
        .set((
            connections::tenant_id.eq(&new.tenant_id),
            connections::client_id.eq(&new.client_id),
            connections::auth_kind.eq(new.auth_kind.as_str()),
            connections::secret_ciphertext.eq(ciphertext),
            connections::secret_key_id.eq(key_id),
            connections::secret_expires_at.eq(new.secret_expires_at),
            connections::granted_permissions.eq(new.granted_permissions.join(" ")),
            connections::missing_permissions.eq(new.missing_permissions.join(" ")),
            connections::status.eq("active"),
            connections::last_error.eq(None::<String>),
            connections::updated_at.eq(now()),
        ))
        .execute(c)
        .await
        .map_err(|e| match Error::from(e) {
            Error::Conflict(_) => Error::Conflict(format!(
                "this organization already connects tenant {} with app {}",
                new.tenant_id, new.client_id
            )),
            other => other,
        })?);
        drop(conn);
        if n == 0 {
            return Err(Error::NotFound {
                entity: "connection",
                id: id.to_owned(),
            });
        }
        self.connection(&new.organization_id, id).await
    }

    /// Disconnects a connection of `organization_id`: erases its secret, its delegated
    /// tokens and its pending sign-ins, and marks it `disconnected`. Its runs, cursors and
    /// synced data stay (see [`Db::delete_connection`] to remove them too).
    pub async fn disconnect_connection(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Connection, Error> {
        let _writer = self.writer().await;
        let mut conn = self.conn().await?;
        let n = write_transaction!(&mut conn, async move |c| {
            let n = diesel::update(
                connections::table
                    .filter(connections::organization_id.eq(organization_id))
                    .filter(connections::id.eq(id)),
            )
            .set((
                connections::secret_ciphertext.eq(None::<Vec<u8>>),
                connections::secret_key_id.eq(None::<String>),
                connections::secret_expires_at.eq(None::<NaiveDateTime>),
                connections::status.eq("disconnected"),
                connections::last_error.eq(None::<String>),
                connections::updated_at.eq(now()),
            ))
            .execute(c)
            .await?;
            if n > 0 {
                diesel::delete(
                    delegated_tokens::table.filter(delegated_tokens::connection_id.eq(id)),
                )
                .execute(c)
                .await?;
                diesel::delete(oauth_states::table.filter(oauth_states::connection_id.eq(id)))
                    .execute(c)
                    .await?;
            }
            Ok::<_, Error>(n)
        })?;
        drop(conn);
        if n == 0 {
            return Err(Error::NotFound {
                entity: "connection",
                id: id.to_owned(),
            });
        }
        self.connection(organization_id, id).await
    }

    /// Records that an administrator of the connection's tenant granted the platform's app
    /// tenant-wide consent at `at`.
    pub async fn set_connection_consented(
        &self,
        organization_id: &str,
        id: &str,
        at: NaiveDateTime,
    ) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        let n = with_conn!(&mut conn, |c| diesel::update(
            connections::table
                .filter(connections::organization_id.eq(organization_id))
                .filter(connections::id.eq(id))
        )
        .set((
            connections::consented_at.eq(Some(at)),
            connections::updated_at.eq(now()),
        ))
        .execute(c)
        .await?);
        if n == 0 {
            return Err(Error::NotFound {
                entity: "connection",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// Stores (or replaces) a delegated token.
    pub async fn put_delegated_token(&self, token: &DelegatedToken) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| diesel::insert_into(delegated_tokens::table)
            .values(token)
            .on_conflict((delegated_tokens::connection_id, delegated_tokens::principal))
            .do_update()
            .set((
                delegated_tokens::token_ciphertext.eq(&token.token_ciphertext),
                delegated_tokens::key_id.eq(&token.key_id),
                delegated_tokens::expires_at.eq(token.expires_at),
                delegated_tokens::updated_at.eq(token.updated_at),
            ))
            .execute(c)
            .await?);
        Ok(())
    }

    /// The delegated tokens of a connection.
    pub async fn delegated_tokens(
        &self,
        connection_id: &str,
    ) -> Result<Vec<DelegatedToken>, Error> {
        let mut conn = self.conn().await?;
        Ok(with_conn!(&mut conn, |c| delegated_tokens::table
            .filter(delegated_tokens::connection_id.eq(connection_id))
            .order(delegated_tokens::principal)
            .select(DelegatedToken::as_select())
            .load(c)
            .await?))
    }

    /// How many stored secrets and tokens each key id protects, by key id.
    pub async fn secrets_per_key(&self) -> Result<Vec<(String, u64)>, Error> {
        let mut conn = self.conn().await?;
        let (a, b): (Vec<Option<String>>, Vec<String>) = with_conn!(&mut conn, |c| {
            let a = connections::table
                .filter(connections::secret_key_id.is_not_null())
                .select(connections::secret_key_id)
                .load(c)
                .await?;
            let b = delegated_tokens::table
                .select(delegated_tokens::key_id)
                .load(c)
                .await?;
            (a, b)
        });
        let mut counts = std::collections::BTreeMap::<String, u64>::new();
        for k in a.into_iter().flatten().chain(b) {
            *counts.entry(k).or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }

    /// Up to `limit` stored secrets not written by `key_id` (for re-encryption in batches).
    pub async fn secrets_not_under(
        &self,
        key_id: &str,
        limit: i64,
    ) -> Result<Vec<StoredSecret>, Error> {
        let mut conn = self.conn().await?;
        let (a, b) = with_conn!(&mut conn, |c| {
            let a: Vec<(String, Option<String>, Option<Vec<u8>>)> = connections::table
                .filter(connections::secret_key_id.ne(key_id))
                .order(connections::id)
                .limit(limit)
                .select((
                    connections::id,
                    connections::secret_key_id,
                    connections::secret_ciphertext,
                ))
                .load(c)
                .await?;
            let b: Vec<(String, String, String, Vec<u8>)> = delegated_tokens::table
                .filter(delegated_tokens::key_id.ne(key_id))
                .order((delegated_tokens::connection_id, delegated_tokens::principal))
                .limit(limit)
                .select((
                    delegated_tokens::connection_id,
                    delegated_tokens::principal,
                    delegated_tokens::key_id,
                    delegated_tokens::token_ciphertext,
                ))
                .load(c)
                .await?;
            (a, b)
        });
        let mut out: Vec<StoredSecret> = a
            .into_iter()
            .filter_map(|(id, key, ct)| {
                Some(StoredSecret {
                    at: SecretRef::Connection(id),
                    key_id: key?,
                    ciphertext: ct?,
                })
            })
            .collect();
        out.extend(
            b.into_iter()
                .map(|(id, principal, key_id, ciphertext)| StoredSecret {
                    at: SecretRef::DelegatedToken(id, principal),
                    key_id,
                    ciphertext,
                }),
        );
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out)
    }

    /// Replaces a stored secret's ciphertext, only if it is still `old` (a secret rotated
    /// meanwhile is left alone). Returns whether it was replaced.
    pub async fn replace_secret(
        &self,
        old: &StoredSecret,
        ciphertext: Vec<u8>,
        key_id: &str,
    ) -> Result<bool, Error> {
        let mut conn = self.conn().await?;
        let n = with_conn!(&mut conn, |c| match &old.at {
            SecretRef::Connection(id) => {
                diesel::update(
                    connections::table
                        .filter(connections::id.eq(id))
                        .filter(connections::secret_ciphertext.eq(&old.ciphertext)),
                )
                .set((
                    connections::secret_ciphertext.eq(Some(ciphertext)),
                    connections::secret_key_id.eq(Some(key_id)),
                ))
                .execute(c)
                .await?
            }
            SecretRef::DelegatedToken(id, principal) => {
                diesel::update(
                    delegated_tokens::table
                        .filter(delegated_tokens::connection_id.eq(id))
                        .filter(delegated_tokens::principal.eq(principal))
                        .filter(delegated_tokens::token_ciphertext.eq(&old.ciphertext)),
                )
                .set((
                    delegated_tokens::token_ciphertext.eq(ciphertext),
                    delegated_tokens::key_id.eq(key_id),
                ))
                .execute(c)
                .await?
            }
        });
        Ok(n == 1)
    }
}
