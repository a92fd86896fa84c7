//! Connecting a tenant: the app credentials are verified against Entra ID before anything
//! is stored, the permissions the token lacks are reported, and the secret is stored as
//! vault ciphertext with the id of the key that wrote it. Also: the Graph client for a
//! stored connection, and re-encryption of every stored secret under the primary key.

use std::sync::Arc;

use chrono::NaiveDateTime;
use secrecy::{ExposeSecret, SecretString};
use tenantlink_graph::{GraphClient, GraphClientOptions};
use tenantlink_identity::{AppCredential, AppCredentialConfig, ClientAuth, IdentityClient};
use tenantlink_store::{AuthKind, Connection, Db, NewConnection};
use tenantlink_vault::KeyRing;

use crate::Error;

/// The application permissions a full sync reads with, least privileged first.
pub const REQUIRED_PERMISSIONS: &[&str] = &[
    "User.Read.All",
    "GroupMember.Read.All",
    "DeviceManagementManagedDevices.Read.All",
    "AuditLog.Read.All",
    "SecurityAlert.Read.All",
];

/// What connecting a tenant needs. The secret is never shown by Debug.
#[derive(Debug)]
pub struct ConnectRequest {
    /// The owning organization.
    pub organization_id: String,
    /// The Microsoft tenant id (or a verified domain).
    pub tenant_id: String,
    /// The app (client) id.
    pub client_id: String,
    /// The client secret.
    pub secret: SecretString,
    /// When the secret expires, if the caller knows.
    pub secret_expires_at: Option<NaiveDateTime>,
}

/// What the verifying token said about permissions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Permissions {
    /// Application permissions (`roles`) the token carried.
    pub granted: Vec<String>,
    /// Of [`REQUIRED_PERMISSIONS`], those it did not carry.
    pub missing: Vec<String>,
}

/// Gets an app-only Graph token with `secret`: proof the credentials work. Nothing is
/// stored. Returns what the token grants and lacks.
pub async fn verify_app(
    identity: &IdentityClient,
    tenant_id: &str,
    client_id: &str,
    secret: &SecretString,
) -> Result<Permissions, Error> {
    let credential = identity.app_credential(AppCredentialConfig {
        tenant_id: tenant_id.to_owned(),
        client_id: client_id.to_owned(),
        auth: ClientAuth::Secret(secret.clone()),
    })?;
    let scope = identity.cloud().graph_scope();
    let token = credential.token(&[scope.as_str()]).await?;
    let jwt = token.token.secret();
    Ok(Permissions {
        granted: tenantlink_identity::granted_roles(jwt)?,
        missing: tenantlink_identity::missing_roles(jwt, REQUIRED_PERMISSIONS)?,
    })
}

/// Verifies the credentials, then stores the connection with its secret encrypted under
/// the ring's primary key. Nothing is stored when verification fails.
pub async fn connect_tenant(
    db: &Db,
    ring: &KeyRing,
    identity: &IdentityClient,
    request: ConnectRequest,
) -> Result<(Connection, Permissions), Error> {
    let permissions = verify_app(
        identity,
        &request.tenant_id,
        &request.client_id,
        &request.secret,
    )
    .await?;
    let ciphertext = ring.encrypt(request.secret.expose_secret().as_bytes())?;
    let connection = db
        .create_connection(NewConnection {
            organization_id: request.organization_id,
            tenant_id: request.tenant_id,
            client_id: request.client_id,
            auth_kind: AuthKind::ClientSecret,
            secret: Some((ciphertext.into_bytes(), ring.primary_id().to_string())),
            secret_expires_at: request.secret_expires_at,
            granted_permissions: permissions.granted.clone(),
            missing_permissions: permissions.missing.clone(),
        })
        .await?;
    Ok((connection, permissions))
}

/// The app credential of a stored client-secret connection (its secret decrypted in
/// memory only).
pub fn app_credential(
    identity: &IdentityClient,
    ring: &KeyRing,
    connection: &Connection,
) -> Result<AppCredential, Error> {
    if AuthKind::parse(&connection.auth_kind) != Some(AuthKind::ClientSecret) {
        return Err(Error::Invalid(format!(
            "connection {} signs in with {}; only client-secret connections sync app-only",
            connection.id, connection.auth_kind
        )));
    }
    let ciphertext = connection.secret_ciphertext.as_deref().ok_or_else(|| {
        Error::Invalid(format!("connection {} has no stored secret", connection.id))
    })?;
    let token = std::str::from_utf8(ciphertext).map_err(|_| {
        Error::Invalid(format!(
            "the stored secret of connection {} is not a vault token",
            connection.id
        ))
    })?;
    let secret = ring.decrypt(token)?;
    let secret = std::str::from_utf8(secret.plaintext.expose_secret())
        .map_err(|_| Error::Invalid("the stored secret is not UTF-8".into()))?
        .to_owned();
    Ok(identity.app_credential(AppCredentialConfig {
        tenant_id: connection.tenant_id.clone(),
        client_id: connection.client_id.clone(),
        auth: ClientAuth::Secret(SecretString::from(secret)),
    })?)
}

/// A Graph client signed in as a stored connection's app. `options.page_size` defaults to
/// each endpoint's maximum when unset, which syncs fastest.
pub fn graph_client(
    identity: &IdentityClient,
    ring: &KeyRing,
    connection: &Connection,
    options: GraphClientOptions,
) -> Result<GraphClient, Error> {
    let credential = app_credential(identity, ring, connection)?;
    Ok(GraphClient::new(Arc::new(credential), options)?)
}

/// What [`rewrap`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RewrapReport {
    /// Secrets and tokens re-encrypted under the primary key.
    pub rewrapped: u64,
    /// Rows changed by someone else meanwhile (left as they are; they were written under
    /// the primary key by then).
    pub changed_meanwhile: u64,
    /// Stored secrets per key id, after the rewrap.
    pub per_key: Vec<(String, u64)>,
}

/// Re-encrypts every stored secret and delegated token not under the ring's primary key,
/// `batch` rows at a time. Each row is replaced only if it still holds the ciphertext read
/// (compare-and-swap), so syncs and secret rotations can run meanwhile. Timestamps are kept.
pub async fn rewrap(
    db: &Db,
    ring: &KeyRing,
    batch: i64,
    mut on_batch: impl FnMut(u64),
) -> Result<RewrapReport, Error> {
    if batch < 1 {
        return Err(Error::Invalid("the batch size must be at least 1".into()));
    }
    let primary = ring.primary_id().to_string();
    let mut report = RewrapReport::default();
    let mut seen_changed = std::collections::HashSet::new();
    loop {
        let secrets = db.secrets_not_under(&primary, batch).await?;
        let fresh: Vec<_> = secrets
            .into_iter()
            .filter(|s| !seen_changed.contains(&s.ciphertext))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for secret in fresh {
            let token = std::str::from_utf8(&secret.ciphertext)
                .map_err(|_| Error::Invalid(format!("{:?} is not a vault token", secret.at)))?;
            let rotated = ring.rotate(token)?;
            if db
                .replace_secret(&secret, rotated.token.into_bytes(), &primary)
                .await?
            {
                report.rewrapped += 1;
            } else {
                report.changed_meanwhile += 1;
                seen_changed.insert(secret.ciphertext);
            }
        }
        on_batch(report.rewrapped);
    }
    report.per_key = db.secrets_per_key().await?;
    Ok(report)
}
