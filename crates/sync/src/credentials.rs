//! Connecting a tenant: the app credentials are verified against Entra ID before anything
//! is stored, the permissions the token lacks are reported, and the secret is stored as
//! vault ciphertext with the id of the key that wrote it. Also: the Graph client for a
//! stored connection, and re-encryption of every stored secret under the primary key.

use std::sync::Arc;

use chrono::NaiveDateTime;
use secrecy::{ExposeSecret, SecretString};
use tenantlink_graph::{GraphClient, GraphClientOptions};
use tenantlink_identity::{
    AppCredential, AppCredentialConfig, ClientAuth, ClientCertificate, IdentityClient,
};
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
    verify_credentials(
        identity,
        tenant_id,
        client_id,
        &AppSecret::Secret(secret.clone()),
    )
    .await
}

/// What an app signs in with, as its owner hands it over. Debug shows neither the secret
/// nor the private key.
#[derive(Clone)]
pub enum AppSecret {
    /// A client secret.
    Secret(SecretString),
    /// A certificate and its private key, both PEM.
    Certificate {
        /// The certificate (the first `CERTIFICATE` block is the app's).
        certificate_pem: String,
        /// The private key (`PRIVATE KEY` or `RSA PRIVATE KEY`).
        private_key_pem: SecretString,
    },
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([REDACTED])"),
            Self::Certificate { .. } => f.write_str("Certificate([REDACTED])"),
        }
    }
}

impl AppSecret {
    /// How a connection holding it signs in.
    pub fn auth_kind(&self) -> AuthKind {
        match self {
            Self::Secret(_) => AuthKind::ClientSecret,
            Self::Certificate { .. } => AuthKind::Certificate,
        }
    }

    /// The identity crate's form of it.
    pub fn client_auth(&self) -> Result<ClientAuth, Error> {
        Ok(match self {
            Self::Secret(secret) => ClientAuth::Secret(secret.clone()),
            Self::Certificate {
                certificate_pem,
                private_key_pem,
            } => ClientAuth::Certificate(Arc::new(ClientCertificate::from_pem(
                private_key_pem,
                certificate_pem,
            )?)),
        })
    }

    /// The plaintext the vault encrypts: the secret, or the key PEM then the certificate
    /// PEM (each found again by its PEM label).
    fn plaintext(&self) -> String {
        match self {
            Self::Secret(secret) => secret.expose_secret().to_owned(),
            Self::Certificate {
                certificate_pem,
                private_key_pem,
            } => format!(
                "{}\n{}",
                private_key_pem.expose_secret().trim(),
                certificate_pem.trim()
            ),
        }
    }
}

/// Gets an app-only Graph token with a secret or a certificate: proof the credentials
/// work. Nothing is stored. Returns what the token grants and lacks.
pub async fn verify_credentials(
    identity: &IdentityClient,
    tenant_id: &str,
    client_id: &str,
    secret: &AppSecret,
) -> Result<Permissions, Error> {
    let credential = identity.app_credential(AppCredentialConfig {
        tenant_id: tenant_id.to_owned(),
        client_id: client_id.to_owned(),
        auth: secret.client_auth()?,
    })?;
    let scope = identity.cloud().graph_scope();
    // A cached token proves nothing about this secret (the cache is keyed by tenant, app
    // and scopes): forget it first. Callers sharing the client with running syncs should
    // verify with a client of their own, so a sync cannot refill the cache meanwhile.
    identity.cache().remove(&tenantlink_identity::CacheKey::new(
        tenant_id,
        client_id,
        None,
        &[scope.as_str()],
    ));
    let token = credential.token(&[scope.as_str()]).await?;
    let jwt = token.token.secret();
    Ok(Permissions {
        granted: tenantlink_identity::granted_roles(jwt)?,
        missing: tenantlink_identity::missing_roles(jwt, REQUIRED_PERMISSIONS)?,
    })
}

/// Credentials for a new connection, or new credentials for an existing one.
#[derive(Debug)]
pub struct CredentialsRequest {
    /// The owning organization.
    pub organization_id: String,
    /// The connection whose credentials are replaced; `None` makes a new connection.
    pub connection_id: Option<String>,
    /// The Microsoft tenant id.
    pub tenant_id: String,
    /// The app (client) id.
    pub client_id: String,
    /// The secret or certificate.
    pub secret: AppSecret,
    /// When the secret expires, if the caller knows.
    pub secret_expires_at: Option<NaiveDateTime>,
}

/// Verifies the credentials against Entra ID, then stores them encrypted under the ring's
/// primary key: a new connection, or the replaced credentials of
/// `request.connection_id` (made `active` again, e.g. after a disconnection). Nothing is
/// stored when verification fails.
pub async fn store_credentials(
    db: &Db,
    ring: &KeyRing,
    identity: &IdentityClient,
    request: CredentialsRequest,
) -> Result<(Connection, Permissions), Error> {
    let permissions = verify_credentials(
        identity,
        &request.tenant_id,
        &request.client_id,
        &request.secret,
    )
    .await?;
    let ciphertext = ring.encrypt(request.secret.plaintext().as_bytes())?;
    let new = NewConnection {
        organization_id: request.organization_id,
        tenant_id: request.tenant_id,
        client_id: request.client_id,
        auth_kind: request.secret.auth_kind(),
        secret: Some((ciphertext.into_bytes(), ring.primary_id().to_string())),
        secret_expires_at: request.secret_expires_at,
        granted_permissions: permissions.granted.clone(),
        missing_permissions: permissions.missing.clone(),
    };
    let connection = match request.connection_id {
        Some(id) => db.replace_connection_credentials(&id, new).await?,
        None => db.create_connection(new).await?,
    };
    Ok((connection, permissions))
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

/// The app credential of a stored client-secret or certificate connection (its secret
/// decrypted in memory only).
pub fn app_credential(
    identity: &IdentityClient,
    ring: &KeyRing,
    connection: &Connection,
) -> Result<AppCredential, Error> {
    let kind = AuthKind::parse(&connection.auth_kind);
    if !matches!(kind, Some(AuthKind::ClientSecret | AuthKind::Certificate)) {
        return Err(Error::Invalid(format!(
            "connection {} signs in with {}; only client-secret and certificate connections sync app-only",
            connection.id, connection.auth_kind
        )));
    }
    let ciphertext = connection.secret_ciphertext.as_deref().ok_or_else(|| {
        Error::Invalid(format!(
            "connection {} has no stored secret (disconnected?): give it a new secret",
            connection.id
        ))
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
    let auth = if kind == Some(AuthKind::Certificate) {
        let pem = SecretString::from(secret);
        ClientAuth::Certificate(Arc::new(ClientCertificate::from_pem(
            &pem,
            pem.expose_secret(),
        )?))
    } else {
        ClientAuth::Secret(SecretString::from(secret))
    };
    Ok(identity.app_credential(AppCredentialConfig {
        tenant_id: connection.tenant_id.clone(),
        client_id: connection.client_id.clone(),
        auth,
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
