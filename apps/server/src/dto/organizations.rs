//! Organizations and their API keys (admin endpoints).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::utc;

/// Create an organization.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOrganizationRequest {
    /// A unique name, 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100, example = "Contoso Ltd")]
    pub(crate) name: String,
}

/// An organization.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrganizationResponse {
    /// Its id.
    pub(crate) id: String,
    /// Its unique name.
    pub(crate) name: String,
    /// When it was created.
    pub(crate) created_at: DateTime<Utc>,
}

impl From<tenantlink_store::Organization> for OrganizationResponse {
    fn from(o: tenantlink_store::Organization) -> Self {
        Self {
            id: o.id,
            name: o.name,
            created_at: utc(o.created_at),
        }
    }
}

/// Organizations.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrganizationList {
    /// Every organization, by name.
    pub(crate) items: Vec<OrganizationResponse>,
}

/// Issue an API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKeyRequest {
    /// A label for people, 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100, example = "billing service")]
    pub(crate) name: String,
    /// When the key stops working (RFC 3339, in the future); never if absent.
    #[serde(default)]
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

/// An API key (without its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyResponse {
    /// The key's id (also the middle part of the key).
    pub(crate) id: String,
    /// The organization it acts for.
    pub(crate) organization_id: String,
    /// Its label.
    pub(crate) name: String,
    /// When it was made.
    pub(crate) created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub(crate) revoked_at: Option<DateTime<Utc>>,
    /// When it was last used (to the minute).
    pub(crate) last_used_at: Option<DateTime<Utc>>,
}

impl From<tenantlink_store::ApiKey> for ApiKeyResponse {
    fn from(k: tenantlink_store::ApiKey) -> Self {
        Self {
            id: k.id,
            organization_id: k.organization_id,
            name: k.name,
            created_at: utc(k.created_at),
            expires_at: k.expires_at.map(utc),
            revoked_at: k.revoked_at.map(utc),
            last_used_at: k.last_used_at.map(utc),
        }
    }
}

/// A new API key: `key` is shown this once and cannot be read again.
#[derive(Serialize, ToSchema)]
pub(crate) struct IssuedApiKeyResponse {
    /// The key to send as `Authorization: Bearer <key>`. Store it now.
    pub(crate) key: String,
    /// The key's details.
    #[serde(flatten)]
    pub(crate) details: ApiKeyResponse,
}

/// An organization's keys.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyList {
    /// Newest first, revoked and expired ones included.
    pub(crate) items: Vec<ApiKeyResponse>,
}
