//! Rows as the store reads and writes them. Times are UTC (`NaiveDateTime` holds UTC in
//! both backends). Ciphertext is opaque bytes: the store never decrypts.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::schema::*;

/// An organization: a client of the platform, owner of connections.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = organizations)]
pub struct Organization {
    /// Random id (UUID v4).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// When it was created.
    pub created_at: NaiveDateTime,
}

/// How a connection signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// Client credentials with a client secret.
    ClientSecret,
    /// Client credentials with a certificate (the ciphertext holds the PEM key and
    /// certificate).
    Certificate,
    /// Delegated: refresh tokens in `delegated_tokens`.
    Delegated,
}

impl AuthKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecret => "client_secret",
            Self::Certificate => "certificate",
            Self::Delegated => "delegated",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "client_secret" => Self::ClientSecret,
            "certificate" => Self::Certificate,
            "delegated" => Self::Delegated,
            _ => return None,
        })
    }
}

/// One Microsoft tenant of an organization, with the app credentials to reach it. The
/// secret is ciphertext; Debug shows only its length and key id.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = connections)]
pub struct Connection {
    /// Random id (UUID v4).
    pub id: String,
    /// The owning organization.
    pub organization_id: String,
    /// The Microsoft tenant (directory) id.
    pub tenant_id: String,
    /// The app (client) id.
    pub client_id: String,
    /// `client_secret`, `certificate` or `delegated` (see [`AuthKind`]).
    pub auth_kind: String,
    /// The secret or certificate, encrypted by the caller (a Fernet token).
    pub secret_ciphertext: Option<Vec<u8>>,
    /// Id of the key that wrote `secret_ciphertext`.
    pub secret_key_id: Option<String>,
    /// When the secret expires, if known.
    pub secret_expires_at: Option<NaiveDateTime>,
    /// `active`, `error`, `disabled` or `disconnected` (by its owner: no credentials, the
    /// synced data kept).
    pub status: String,
    /// The last error, for people.
    pub last_error: Option<String>,
    /// Application permissions the last token carried, space-separated.
    pub granted_permissions: String,
    /// Permissions the sync needs that the token lacked, space-separated.
    pub missing_permissions: String,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
    /// When an administrator of the tenant last granted the platform's app tenant-wide
    /// consent, if ever.
    pub consented_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("auth_kind", &self.auth_kind)
            .field(
                "secret_ciphertext",
                &self
                    .secret_ciphertext
                    .as_ref()
                    .map(|c| format!("<{} bytes>", c.len())),
            )
            .field("secret_key_id", &self.secret_key_id)
            .field("secret_expires_at", &self.secret_expires_at)
            .field("status", &self.status)
            .field("last_error", &self.last_error)
            .field("granted_permissions", &self.granted_permissions)
            .field("missing_permissions", &self.missing_permissions)
            .field("consented_at", &self.consented_at)
            .finish_non_exhaustive()
    }
}

/// A delegated (user) refresh token, encrypted by the caller. Debug hides the ciphertext.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = delegated_tokens)]
pub struct DelegatedToken {
    /// The connection.
    pub connection_id: String,
    /// Whose token (object id or principal name).
    pub principal: String,
    /// The token, encrypted.
    pub token_ciphertext: Vec<u8>,
    /// Id of the key that wrote it.
    pub key_id: String,
    /// When the token expires, if known.
    pub expires_at: Option<NaiveDateTime>,
    /// Last written.
    pub updated_at: NaiveDateTime,
}

impl std::fmt::Debug for DelegatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegatedToken")
            .field("connection_id", &self.connection_id)
            .field("principal", &self.principal)
            .field(
                "token_ciphertext",
                &format!("<{} bytes>", self.token_ciphertext.len()),
            )
            .field("key_id", &self.key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One sync run of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = sync_runs)]
pub struct SyncRun {
    /// Random id (UUID v4).
    pub id: String,
    /// The connection synced.
    pub connection_id: String,
    /// `full`, `incremental`, `users`, `groups`, `devices` or `audit`.
    pub sync_type: String,
    /// `running`, `complete`, `partial` or `failed`.
    pub status: String,
    /// Started.
    pub started_at: NaiveDateTime,
    /// Last progress written (a `running` run not updated for long was interrupted).
    pub updated_at: NaiveDateTime,
    /// Finished.
    pub finished_at: Option<NaiveDateTime>,
    /// The run's report as JSON (per resource: completeness, counts, requests, retries).
    pub report: String,
    /// Why it failed, for people.
    pub error: Option<String>,
}

/// Where the sync of one resource of a connection stands. Debug hides the links' queries
/// (they hold Graph's skip and delta tokens).
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = sync_cursors, treat_none_as_null = true)]
pub struct Cursor {
    /// The connection.
    pub connection_id: String,
    /// `users`, `groups`, `devices`, `sign_ins`...
    pub resource: String,
    /// The round rows are stamped with (`seen_round`); a new full round increments it.
    pub round: i64,
    /// Whether the round in progress is a full one (ends with a sweep of rows not seen).
    pub full_round: bool,
    /// The run that owns the round in progress, if one is in progress.
    pub run_id: Option<String>,
    /// Where the round in progress goes on (the next page's link); `None` between rounds.
    pub next_link: Option<String>,
    /// The link that starts the next incremental round (delta resources).
    pub delta_link: Option<String>,
    /// Time cursor (audit data, devices): everything up to here is stored.
    pub time_cursor: Option<NaiveDateTime>,
    /// When the round in progress started.
    pub round_started_at: Option<NaiveDateTime>,
    /// Pages committed in the round in progress.
    pub pages: i64,
    /// Rows written in the round in progress.
    pub rows_written: i64,
    /// Last written.
    pub updated_at: NaiveDateTime,
}

fn link_without_query(link: &Option<String>) -> Option<String> {
    link.as_deref()
        .map(|l| l.split_once('?').map_or(l, |(base, _)| base).to_owned() + "?…")
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("connection_id", &self.connection_id)
            .field("resource", &self.resource)
            .field("round", &self.round)
            .field("full_round", &self.full_round)
            .field("run_id", &self.run_id)
            .field("next_link", &link_without_query(&self.next_link))
            .field("delta_link", &link_without_query(&self.delta_link))
            .field("time_cursor", &self.time_cursor)
            .field("pages", &self.pages)
            .field("rows_written", &self.rows_written)
            .finish_non_exhaustive()
    }
}

/// A user, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = users)]
pub struct UserRow {
    /// Object id.
    pub id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// User principal name.
    pub user_principal_name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Surname.
    pub surname: Option<String>,
    /// Primary SMTP address.
    pub mail: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Office.
    pub office_location: Option<String>,
    /// Mobile phone.
    pub mobile_phone: Option<String>,
    /// Whether the account can sign in.
    pub account_enabled: Option<bool>,
    /// `Member` or `Guest`.
    pub user_type: Option<String>,
    /// Created in the directory.
    pub created_at: Option<NaiveDateTime>,
    /// The manager's object id.
    pub manager_id: Option<String>,
    /// Last interactive sign-in (`signInActivity`).
    pub last_sign_in_at: Option<NaiveDateTime>,
    /// Last non-interactive sign-in (`signInActivity`).
    pub last_non_interactive_sign_in_at: Option<NaiveDateTime>,
    /// Soft-deleted (in the directory's recycle bin) since.
    pub deleted_at: Option<NaiveDateTime>,
}

/// A group, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = groups)]
pub struct GroupRow {
    /// Object id.
    pub id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// SMTP address.
    pub mail: Option<String>,
    /// Mail nickname.
    pub mail_nickname: Option<String>,
    /// `microsoft365`, `security`, `mail_enabled_security` or `distribution`.
    pub kind: String,
    /// `groupTypes`, comma-separated (`Unified`, `DynamicMembership`).
    pub group_types: String,
    /// Mail-enabled.
    pub mail_enabled: Option<bool>,
    /// Security-enabled.
    pub security_enabled: Option<bool>,
    /// `Public`, `Private`...
    pub visibility: Option<String>,
    /// Created.
    pub created_at: Option<NaiveDateTime>,
    /// Soft-deleted since.
    pub deleted_at: Option<NaiveDateTime>,
}

/// A direct membership edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = group_members)]
pub struct MemberRow {
    /// The group.
    pub group_id: String,
    /// The member's object id.
    pub member_id: String,
    /// `user`, `group`, `device`, `servicePrincipal`, `orgContact`...
    pub member_type: String,
}

/// An Intune managed device, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = managed_devices)]
pub struct DeviceRow {
    /// Device id.
    pub id: String,
    /// Name.
    pub device_name: Option<String>,
    /// The primary user's object id.
    pub user_id: Option<String>,
    /// The primary user's principal name.
    pub user_principal_name: Option<String>,
    /// Windows, iOS, Android, macOS...
    pub operating_system: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// `compliant`, `noncompliant`, `inGracePeriod`...
    pub compliance_state: Option<String>,
    /// `company` or `personal`.
    pub owner_type: Option<String>,
    /// Storage encrypted.
    pub is_encrypted: Option<bool>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// The Entra ID device id.
    pub azure_ad_device_id: Option<String>,
    /// Enrolled.
    pub enrolled_at: Option<NaiveDateTime>,
    /// Last check-in with Intune.
    pub last_sync_at: Option<NaiveDateTime>,
}

/// A sign-in record.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = sign_ins)]
pub struct SignInRow {
    /// Record id.
    pub id: String,
    /// When.
    pub created_at: NaiveDateTime,
    /// Who (object id).
    pub user_id: Option<String>,
    /// Who (principal name).
    pub user_principal_name: Option<String>,
    /// Into which app.
    pub app_display_name: Option<String>,
    /// From where.
    pub ip_address: Option<String>,
    /// `status.errorCode` (0: success).
    pub status_code: Option<i64>,
    /// The record as Graph sent it (JSON).
    pub raw: String,
}

/// A directory audit record.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = directory_audits)]
pub struct AuditRow {
    /// Record id.
    pub id: String,
    /// When.
    pub activity_at: NaiveDateTime,
    /// What.
    pub activity_display_name: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// `success`, `failure`...
    pub result: Option<String>,
    /// The record as Graph sent it (JSON).
    pub raw: String,
}

/// A security alert (alerts v2).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = security_alerts)]
pub struct AlertRow {
    /// Alert id.
    pub id: String,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Last updated.
    pub updated_at: Option<NaiveDateTime>,
    /// Title.
    pub title: Option<String>,
    /// `low`, `medium`, `high`...
    pub severity: Option<String>,
    /// `new`, `inProgress`, `resolved`...
    pub status: Option<String>,
    /// The alert as Graph sent it (JSON).
    pub raw: String,
}

/// `signInActivity` of one user (read apart from delta, which does not carry it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInActivityRow {
    /// The user.
    pub id: String,
    /// Last interactive sign-in.
    pub last_sign_in_at: Option<NaiveDateTime>,
    /// Last non-interactive sign-in.
    pub last_non_interactive_sign_in_at: Option<NaiveDateTime>,
}

/// An organization's API key as stored: a hash of its secret, never the key.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::api_keys)]
pub struct ApiKey {
    /// The key's public id.
    pub id: String,
    /// The organization it acts for.
    pub organization_id: String,
    /// A label for people.
    pub name: String,
    /// Hex SHA-256 of the key's secret part.
    pub secret_hash: String,
    /// When it was made.
    pub created_at: NaiveDateTime,
    /// When it stops working, if ever.
    pub expires_at: Option<NaiveDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<NaiveDateTime>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("name", &self.name)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// A sync asked for (over the API or by the scheduler) and the worker lease on it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = crate::schema::sync_jobs)]
pub struct SyncJob {
    /// Random id (UUID v4).
    pub id: String,
    /// The organization that owns the connection.
    pub organization_id: String,
    /// The connection to sync.
    pub connection_id: String,
    /// `full`, `incremental`, `users`, `groups`, `devices` or `audit`.
    pub sync_type: String,
    /// `queued`, `running`, `complete`, `partial` or `failed`.
    pub status: String,
    /// `api` or `schedule`.
    pub trigger: String,
    /// The API key that asked for it, if one did.
    pub requested_by: Option<String>,
    /// Times a worker claimed it.
    pub attempts: i32,
    /// Not claimed before this (a retry's backoff).
    pub not_before: NaiveDateTime,
    /// The worker holding it while running.
    pub lease_owner: Option<String>,
    /// When that worker's lease ends unless renewed.
    pub lease_expires_at: Option<NaiveDateTime>,
    /// The engine's `sync_runs` id once the run started.
    pub run_id: Option<String>,
    /// Progress while running (JSON: pages and rows per resource).
    pub progress: String,
    /// The engine's run report (JSON) once finished.
    pub report: Option<String>,
    /// Why it failed or was retried, for people.
    pub error: Option<String>,
    /// When it was asked for.
    pub created_at: NaiveDateTime,
    /// When a worker first took it.
    pub started_at: Option<NaiveDateTime>,
    /// When it finished.
    pub finished_at: Option<NaiveDateTime>,
    /// Last change.
    pub updated_at: NaiveDateTime,
}

/// A pending interactive request (delegated sign-in or admin consent), kept server-side
/// until its callback: the state as a hash, the PKCE verifier as ciphertext. Debug hides
/// both.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_states)]
pub struct OAuthState {
    /// Hex SHA-256 of the `state` sent to Entra ID.
    pub state_hash: String,
    /// The organization that started it.
    pub organization_id: String,
    /// The connection it is for.
    pub connection_id: String,
    /// `sign_in` or `admin_consent`.
    pub kind: String,
    /// The PKCE code verifier, encrypted by the caller.
    pub verifier_ciphertext: Vec<u8>,
    /// Id of the key that wrote `verifier_ciphertext`.
    pub key_id: String,
    /// The tenant segment of the request.
    pub tenant: String,
    /// The app asked for.
    pub client_id: String,
    /// Where the answer comes back.
    pub redirect_uri: String,
    /// Scopes asked for, space-separated.
    pub scopes: String,
    /// When it was made.
    pub created_at: NaiveDateTime,
    /// When it stops being accepted.
    pub expires_at: NaiveDateTime,
}

impl std::fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthState")
            .field("organization_id", &self.organization_id)
            .field("connection_id", &self.connection_id)
            .field("kind", &self.kind)
            .field("key_id", &self.key_id)
            .field("tenant", &self.tenant)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One event of the audit trail as stored, with its place in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::audit_events, treat_none_as_default_value = false)]
pub struct AuditEvent {
    /// Its position in the chain: 1, 2, 3… without gaps.
    pub seq: i64,
    /// When it happened (UTC, to the microsecond).
    pub at: NaiveDateTime,
    /// The organization it concerns; `None` for admin and system events.
    pub organization_id: Option<String>,
    /// Who: `key:<key id>`, `admin`, `worker:<instance>`, `system` or `anonymous`.
    pub actor: String,
    /// What: an API route (`GET /v1/connections/{connection_id}/users`) or a named action
    /// (`sync.run`).
    pub action: String,
    /// Which things: `name=value` pairs separated by spaces (path parameters, ids).
    pub target: String,
    /// How it ended: an HTTP status, or `complete`, `partial`, `failed`.
    pub outcome: String,
    /// The request it came from, if any.
    pub request_id: Option<String>,
    /// A small JSON object (never a secret).
    pub detail: String,
    /// The previous event's hash (64 zeros before the first event).
    pub prev_hash: String,
    /// Hex SHA-256 of `prev_hash` and this event's fields (see `audit::event_hash`).
    pub hash: String,
}
