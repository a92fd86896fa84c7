//! Connections to Microsoft tenants: what a caller sends to connect one (never echoed) and
//! what the API shows of it (never a secret, its ciphertext or a token).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::utc;

/// Connect a tenant with an app's client secret, or with a certificate and its private key
/// (exactly one of the two). The credentials are verified with Entra ID before anything
/// is stored.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectRequest {
    /// The Microsoft tenant (directory) id, a GUID.
    #[schema(example = "72f988bf-86f1-41af-91ab-2d7cd011db47")]
    pub(crate) tenant_id: String,
    /// The app registration's application (client) id, a GUID.
    #[schema(example = "00000000-0000-0000-0000-000000000001")]
    pub(crate) client_id: String,
    /// The app's client secret (1 to 1024 characters).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1024)]
    pub(crate) client_secret: Option<String>,
    /// When the secret expires (RFC 3339, in the future), if you know.
    #[serde(default)]
    pub(crate) secret_expires_at: Option<DateTime<Utc>>,
    /// Instead of a secret: the app's certificate, PEM.
    #[serde(default)]
    #[schema(max_length = 16384)]
    pub(crate) certificate_pem: Option<String>,
    /// With `certificate_pem`: its private key, PEM (`PRIVATE KEY` or `RSA PRIVATE KEY`).
    #[serde(default)]
    #[schema(max_length = 16384)]
    pub(crate) private_key_pem: Option<String>,
}

impl std::fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("secret_expires_at", &self.secret_expires_at)
            .finish_non_exhaustive()
    }
}

/// The seed platform's setup: a tenant and an app with its client secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetupRequest {
    /// The Microsoft tenant (directory) id, a GUID.
    pub(crate) tenant_id: String,
    /// The app's application (client) id, a GUID.
    pub(crate) client_id: String,
    /// The app's client secret (1 to 1024 characters).
    #[schema(min_length = 1, max_length = 1024)]
    pub(crate) client_secret: String,
    /// When the secret expires (RFC 3339, in the future), if you know.
    #[serde(default)]
    pub(crate) secret_expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SetupRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupRequest")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A new client secret (or certificate) for a connection: verified with Entra ID, then
/// it replaces the stored one. Also reconnects a disconnected connection.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplaceSecretRequest {
    /// The new client secret (1 to 1024 characters).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1024)]
    pub(crate) client_secret: Option<String>,
    /// When it expires (RFC 3339, in the future), if you know.
    #[serde(default)]
    pub(crate) secret_expires_at: Option<DateTime<Utc>>,
    /// Instead of a secret: a certificate, PEM.
    #[serde(default)]
    #[schema(max_length = 16384)]
    pub(crate) certificate_pem: Option<String>,
    /// With `certificate_pem`: its private key, PEM.
    #[serde(default)]
    #[schema(max_length = 16384)]
    pub(crate) private_key_pem: Option<String>,
}

impl std::fmt::Debug for ReplaceSecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplaceSecretRequest")
            .field("secret_expires_at", &self.secret_expires_at)
            .finish_non_exhaustive()
    }
}

/// Where the sync of one resource stands.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResourceSyncResponse {
    /// `users`, `groups`, `devices`, `sign_ins`, `directory_audits`, `alerts`...
    pub(crate) resource: String,
    /// When its cursor last moved.
    pub(crate) last_synced_at: DateTime<Utc>,
    /// Whether a round is under way (it goes on from where it stopped).
    pub(crate) in_progress: bool,
    /// Completeness in the connection's latest run: `complete`, `partial`, `failed`, or
    /// absent when that run did not sync it.
    pub(crate) completeness: Option<String>,
    /// Why it was partial or failed in that run.
    pub(crate) reason: Option<String>,
}

/// The connection's latest sync run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LastRunResponse {
    /// The run's id.
    pub(crate) id: String,
    /// `full`, `incremental`, `users`...
    pub(crate) sync_type: String,
    /// `running`, `complete`, `partial` or `failed`.
    pub(crate) status: String,
    /// Started.
    pub(crate) started_at: DateTime<Utc>,
    /// Finished.
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub(crate) error: Option<String>,
}

/// A connection to a Microsoft tenant. Never shows the secret, its ciphertext or a token.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectionResponse {
    /// Its id.
    pub(crate) id: String,
    /// Whether it holds working credentials (false once disconnected).
    pub(crate) connected: bool,
    /// `active`, `error`, `disabled` or `disconnected`.
    pub(crate) status: String,
    /// The Microsoft tenant id.
    pub(crate) tenant_id: String,
    /// The app's client id.
    pub(crate) client_id: String,
    /// `client_secret`, `certificate` or `delegated`.
    pub(crate) auth_kind: String,
    /// When the secret expires, if known.
    pub(crate) secret_expires_at: Option<DateTime<Utc>>,
    /// Application permissions the app's token carried when last verified.
    pub(crate) granted_permissions: Vec<String>,
    /// Permissions a full sync needs that the token lacked (grant them and consent).
    pub(crate) missing_permissions: Vec<String>,
    /// The last error, for people.
    pub(crate) last_error: Option<String>,
    /// When an administrator granted the platform's app tenant-wide consent.
    pub(crate) consented_at: Option<DateTime<Utc>>,
    /// How many users signed in with delegated access.
    pub(crate) delegated_accounts: usize,
    /// The latest sync run, if any.
    pub(crate) last_run: Option<LastRunResponse>,
    /// The last sync of each resource ever synced.
    pub(crate) sync: Vec<ResourceSyncResponse>,
    /// Created.
    pub(crate) created_at: DateTime<Utc>,
    /// Last changed.
    pub(crate) updated_at: DateTime<Utc>,
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

impl ConnectionResponse {
    /// Maps a connection with its delegated token count, latest run and cursors.
    pub(crate) fn new(
        c: tenantlink_store::Connection,
        delegated_accounts: usize,
        last_run: Option<tenantlink_store::SyncRun>,
        cursors: Vec<tenantlink_store::Cursor>,
    ) -> Self {
        // The run's report is the sync engine's JSON; read leniently (a running run's
        // report may be partial).
        let report: serde_json::Value = last_run
            .as_ref()
            .and_then(|r| serde_json::from_str(&r.report).ok())
            .unwrap_or_default();
        let in_report = |resource: &str| {
            report["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["resource"].as_str() == Some(resource))
                .cloned()
        };
        let sync = cursors
            .into_iter()
            .map(|cursor| {
                let entry = in_report(&cursor.resource);
                ResourceSyncResponse {
                    last_synced_at: utc(cursor.updated_at),
                    in_progress: cursor.next_link.is_some() || cursor.run_id.is_some(),
                    completeness: entry
                        .as_ref()
                        .and_then(|e| e["status"].as_str().map(str::to_owned)),
                    reason: entry
                        .as_ref()
                        .and_then(|e| e["reason"].as_str().map(str::to_owned)),
                    resource: cursor.resource,
                }
            })
            .collect();
        let connected =
            c.status != "disconnected" && (c.secret_ciphertext.is_some() || delegated_accounts > 0);
        Self {
            connected,
            granted_permissions: words(&c.granted_permissions),
            missing_permissions: words(&c.missing_permissions),
            id: c.id,
            status: c.status,
            tenant_id: c.tenant_id,
            client_id: c.client_id,
            auth_kind: c.auth_kind,
            secret_expires_at: c.secret_expires_at.map(utc),
            last_error: c.last_error,
            consented_at: c.consented_at.map(utc),
            delegated_accounts,
            last_run: last_run.map(|r| LastRunResponse {
                id: r.id,
                sync_type: r.sync_type,
                status: r.status,
                started_at: utc(r.started_at),
                finished_at: r.finished_at.map(utc),
                error: r.error,
            }),
            sync,
            created_at: utc(c.created_at),
            updated_at: utc(c.updated_at),
        }
    }
}

/// An organization's connections.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectionList {
    /// Oldest first.
    pub(crate) items: Vec<ConnectionResponse>,
}

/// The seed platform's view: its one connection, or `{"connected": false}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum MicrosoftStatusResponse {
    /// The organization's connection.
    Connected(Box<ConnectionResponse>),
    /// No connection yet.
    NotConnected(NotConnected),
}

/// No connection.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotConnected {
    /// Always false.
    pub(crate) connected: bool,
}

/// Options of the start of a delegated sign-in or an admin consent.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StartQuery {
    /// Answer 302 to the URL instead of returning it as JSON (for a browser link).
    #[serde(default)]
    pub(crate) redirect: Option<bool>,
    /// Pre-fills the account to sign in with (max 256 characters).
    #[serde(default)]
    pub(crate) login_hint: Option<String>,
}

/// Where to send the user to sign in.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuthorizeUrlResponse {
    /// Entra ID's authorize URL (valid for 10 minutes, once).
    pub(crate) authorize_url: String,
}

/// Where to send the tenant's administrator to consent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConsentUrlResponse {
    /// Entra ID's admin consent URL (valid for 10 minutes, once).
    pub(crate) consent_url: String,
}

/// Purge the synced data too.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// Delete the connection with all its synced data, instead of disconnecting it.
    #[serde(default)]
    pub(crate) purge: Option<bool>,
}

/// What Entra ID sends back to the callback (sign-in or admin consent). Debug hides the
/// code and the state.
#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CallbackQuery {
    /// The authorization code (sign-in).
    #[serde(default)]
    pub(crate) code: Option<String>,
    /// The state the request was started with.
    #[serde(default)]
    pub(crate) state: Option<String>,
    /// `True` when an administrator consented.
    #[serde(default)]
    pub(crate) admin_consent: Option<String>,
    /// The tenant that consented.
    #[serde(default)]
    pub(crate) tenant: Option<String>,
    /// Entra ID's error, e.g. `access_denied`.
    #[serde(default)]
    pub(crate) error: Option<String>,
    /// Entra ID's description of the error.
    #[serde(default)]
    pub(crate) error_description: Option<String>,
}

impl std::fmt::Debug for CallbackQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackQuery")
            .field("admin_consent", &self.admin_consent)
            .field("tenant", &self.tenant)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// The callback succeeded.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CallbackResponse {
    /// Always true.
    pub(crate) connected: bool,
    /// `delegated` (a user signed in) or `admin_consent`.
    pub(crate) kind: String,
    /// The connection.
    pub(crate) connection_id: String,
    /// The tenant.
    pub(crate) tenant_id: String,
    /// Who signed in (delegated only), when Entra ID said.
    pub(crate) username: Option<String>,
}
