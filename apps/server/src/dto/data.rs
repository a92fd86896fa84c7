//! A connection's synced data: the query parameters of its listings and the rows they
//! answer, one page at a time (`{"items": [...], "next_cursor": ...}`).

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::utc;
use crate::error::ApiError;
use tenantlink_store::{Listing, PageError, PageRequest, TimeRange};

/// Checks `limit` and `cursor` for a page of `listing`.
pub(crate) fn page_request(
    listing: Listing,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<PageRequest, ApiError> {
    let limit = match limit {
        None => None,
        Some(l) => Some(u32::try_from(l).map_err(|_| PageError::Limit)?),
    };
    Ok(PageRequest::new(listing, limit, cursor)?)
}

/// A search prefix: at most [`tenantlink_store::MAX_SEARCH_CHARS`] characters.
pub(crate) fn search(s: Option<String>) -> Result<Option<String>, ApiError> {
    match s {
        Some(s) if s.chars().count() > tenantlink_store::MAX_SEARCH_CHARS => {
            Err(ApiError::bad_request(
                "invalid_search",
                format!(
                    "search must be at most {} characters",
                    tenantlink_store::MAX_SEARCH_CHARS
                ),
            ))
        }
        other => Ok(other),
    }
}

/// A time range from the query: years 1 to 9999, `from` not after `to`.
pub(crate) fn time_range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<TimeRange, ApiError> {
    for t in [from, to].into_iter().flatten() {
        if !(1..=9999).contains(&t.year()) {
            return Err(ApiError::bad_request(
                "invalid_time",
                "times must be RFC 3339 between the years 1 and 9999",
            ));
        }
    }
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::bad_request(
            "invalid_range",
            "from must not be after to",
        ));
    }
    Ok(TimeRange {
        from: from.map(|t| t.naive_utc()),
        to: to.map(|t| t.naive_utc()),
    })
}

/// `Member` or `Guest`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub(crate) enum UserType {
    /// A member of the tenant.
    Member,
    /// A guest (B2B) user.
    Guest,
}

impl UserType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Member => "Member",
            Self::Guest => "Guest",
        }
    }
}

/// A group's kind.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum GroupKind {
    /// A security group.
    Security,
    /// A distribution list.
    Distribution,
    /// A Microsoft 365 (unified) group.
    Microsoft365,
    /// A mail-enabled security group.
    MailEnabledSecurity,
}

impl GroupKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Security => "security",
            Self::Distribution => "distribution",
            Self::Microsoft365 => "microsoft365",
            Self::MailEnabledSecurity => "mail_enabled_security",
        }
    }
}

/// Query of the users listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserListQuery {
    /// Rows per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Exact department.
    pub(crate) department: Option<String>,
    /// Whether the account can sign in.
    pub(crate) enabled: Option<bool>,
    /// `Member` or `Guest`.
    #[param(inline)]
    pub(crate) user_type: Option<UserType>,
    /// Case-insensitive prefix of the display name, given name, surname, user principal
    /// name or mail (at most 256 characters). Results are ordered by the matched value
    /// (a user matching in several fields by the least), then id; their cursors belong to
    /// the search.
    #[param(max_length = 256)]
    pub(crate) search: Option<String>,
}

/// Query of the groups listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct GroupListQuery {
    /// Rows per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// The group kind.
    #[param(inline)]
    pub(crate) kind: Option<GroupKind>,
    /// Case-insensitive prefix of the display name or mail (at most 256 characters).
    /// Results are ordered by the matched value, then id.
    #[param(max_length = 256)]
    pub(crate) search: Option<String>,
}

/// Query of membership listings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MembershipQuery {
    /// Rows per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Also through nested groups (default false: direct only).
    pub(crate) transitive: Option<bool>,
}

/// Query of the devices listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeviceListQuery {
    /// Rows per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Exact compliance state (`compliant`, `noncompliant`, `inGracePeriod`...).
    pub(crate) compliance_state: Option<String>,
    /// Exact operating system (`Windows`, `iOS`...).
    pub(crate) operating_system: Option<String>,
    /// The primary user's object id.
    pub(crate) user_id: Option<String>,
    /// Case-insensitive prefix of the device name (at most 256 characters). Results are
    /// ordered by device name, then id.
    #[param(max_length = 256)]
    pub(crate) search: Option<String>,
}

/// Query of the sign-ins listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SignInListQuery {
    /// Rows per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Not before (RFC 3339, inclusive).
    pub(crate) from: Option<DateTime<Utc>>,
    /// Before (RFC 3339, exclusive).
    pub(crate) to: Option<DateTime<Utc>>,
    /// Whose sign-ins (object id).
    pub(crate) user_id: Option<String>,
}

/// Query of the directory audits listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditListQuery {
    /// Rows per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Not before (RFC 3339, inclusive).
    pub(crate) from: Option<DateTime<Utc>>,
    /// Before (RFC 3339, exclusive).
    pub(crate) to: Option<DateTime<Utc>>,
    /// Exact category (`UserManagement`, `GroupManagement`...).
    pub(crate) category: Option<String>,
}

/// Query of the alerts listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertListQuery {
    /// Rows per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Created not before (RFC 3339, inclusive).
    pub(crate) from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339, exclusive).
    pub(crate) to: Option<DateTime<Utc>>,
    /// Exact severity (`low`, `medium`, `high`...).
    pub(crate) severity: Option<String>,
    /// Exact status (`new`, `inProgress`, `resolved`...).
    pub(crate) status: Option<String>,
}

/// A synced user.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserResponse {
    /// Object id.
    pub(crate) id: String,
    /// Display name.
    pub(crate) display_name: Option<String>,
    /// User principal name.
    pub(crate) user_principal_name: Option<String>,
    /// Given name.
    pub(crate) given_name: Option<String>,
    /// Surname.
    pub(crate) surname: Option<String>,
    /// Primary SMTP address.
    pub(crate) mail: Option<String>,
    /// Department.
    pub(crate) department: Option<String>,
    /// Job title.
    pub(crate) job_title: Option<String>,
    /// Office.
    pub(crate) office_location: Option<String>,
    /// Mobile phone.
    pub(crate) mobile_phone: Option<String>,
    /// Whether the account can sign in.
    pub(crate) account_enabled: Option<bool>,
    /// `Member` or `Guest`.
    pub(crate) user_type: Option<String>,
    /// Created in the directory.
    pub(crate) created_at: Option<DateTime<Utc>>,
    /// The manager's object id.
    pub(crate) manager_id: Option<String>,
    /// Last interactive sign-in.
    pub(crate) last_sign_in_at: Option<DateTime<Utc>>,
    /// Last non-interactive sign-in.
    pub(crate) last_non_interactive_sign_in_at: Option<DateTime<Utc>>,
    /// In the directory's recycle bin since.
    pub(crate) deleted_at: Option<DateTime<Utc>>,
}

impl From<tenantlink_store::UserRow> for UserResponse {
    fn from(u: tenantlink_store::UserRow) -> Self {
        Self {
            id: u.id,
            display_name: u.display_name,
            user_principal_name: u.user_principal_name,
            given_name: u.given_name,
            surname: u.surname,
            mail: u.mail,
            department: u.department,
            job_title: u.job_title,
            office_location: u.office_location,
            mobile_phone: u.mobile_phone,
            account_enabled: u.account_enabled,
            user_type: u.user_type,
            created_at: u.created_at.map(utc),
            manager_id: u.manager_id,
            last_sign_in_at: u.last_sign_in_at.map(utc),
            last_non_interactive_sign_in_at: u.last_non_interactive_sign_in_at.map(utc),
            deleted_at: u.deleted_at.map(utc),
        }
    }
}

/// A synced group.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupResponse {
    /// Object id.
    pub(crate) id: String,
    /// Display name.
    pub(crate) display_name: Option<String>,
    /// Description.
    pub(crate) description: Option<String>,
    /// SMTP address.
    pub(crate) mail: Option<String>,
    /// Mail nickname.
    pub(crate) mail_nickname: Option<String>,
    /// `security`, `distribution`, `microsoft365` or `mail_enabled_security`.
    pub(crate) kind: String,
    /// `groupTypes` (`Unified`, `DynamicMembership`).
    pub(crate) group_types: Vec<String>,
    /// Mail-enabled.
    pub(crate) mail_enabled: Option<bool>,
    /// Security-enabled.
    pub(crate) security_enabled: Option<bool>,
    /// `Public`, `Private`...
    pub(crate) visibility: Option<String>,
    /// Created.
    pub(crate) created_at: Option<DateTime<Utc>>,
    /// In the directory's recycle bin since.
    pub(crate) deleted_at: Option<DateTime<Utc>>,
}

impl From<tenantlink_store::GroupRow> for GroupResponse {
    fn from(g: tenantlink_store::GroupRow) -> Self {
        Self {
            id: g.id,
            display_name: g.display_name,
            description: g.description,
            mail: g.mail,
            mail_nickname: g.mail_nickname,
            kind: g.kind,
            group_types: g
                .group_types
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            mail_enabled: g.mail_enabled,
            security_enabled: g.security_enabled,
            visibility: g.visibility,
            created_at: g.created_at.map(utc),
            deleted_at: g.deleted_at.map(utc),
        }
    }
}

/// A group a user belongs to (names absent when the group is not synced).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserGroupResponse {
    /// The group's object id.
    pub(crate) id: String,
    /// Display name.
    pub(crate) display_name: Option<String>,
    /// SMTP address.
    pub(crate) mail: Option<String>,
    /// Group kind.
    pub(crate) kind: Option<String>,
}

impl From<tenantlink_store::GroupRef> for UserGroupResponse {
    fn from(g: tenantlink_store::GroupRef) -> Self {
        Self {
            id: g.id,
            display_name: g.display_name,
            mail: g.mail,
            kind: g.kind,
        }
    }
}

/// A member of a group.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberResponse {
    /// The member's object id.
    pub(crate) id: String,
    /// `user`, `group`, `device`, `servicePrincipal`, `orgContact`...
    pub(crate) member_type: String,
    /// Display name, when the member is a synced user or group.
    pub(crate) display_name: Option<String>,
    /// User principal name, when the member is a synced user.
    pub(crate) user_principal_name: Option<String>,
}

impl From<tenantlink_store::MemberEntry> for MemberResponse {
    fn from(m: tenantlink_store::MemberEntry) -> Self {
        Self {
            id: m.id,
            member_type: m.member_type,
            display_name: m.display_name,
            user_principal_name: m.user_principal_name,
        }
    }
}

/// An Intune managed device.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceResponse {
    /// Device id.
    pub(crate) id: String,
    /// Name.
    pub(crate) device_name: Option<String>,
    /// The primary user's object id.
    pub(crate) user_id: Option<String>,
    /// The primary user's principal name.
    pub(crate) user_principal_name: Option<String>,
    /// Windows, iOS, Android, macOS...
    pub(crate) operating_system: Option<String>,
    /// OS version.
    pub(crate) os_version: Option<String>,
    /// `compliant`, `noncompliant`, `inGracePeriod`...
    pub(crate) compliance_state: Option<String>,
    /// `company` or `personal`.
    pub(crate) owner_type: Option<String>,
    /// Storage encrypted.
    pub(crate) is_encrypted: Option<bool>,
    /// Manufacturer.
    pub(crate) manufacturer: Option<String>,
    /// Model.
    pub(crate) model: Option<String>,
    /// Serial number.
    pub(crate) serial_number: Option<String>,
    /// The Entra ID device id.
    pub(crate) azure_ad_device_id: Option<String>,
    /// Enrolled.
    pub(crate) enrolled_at: Option<DateTime<Utc>>,
    /// Last check-in with Intune.
    pub(crate) last_sync_at: Option<DateTime<Utc>>,
}

impl From<tenantlink_store::DeviceRow> for DeviceResponse {
    fn from(d: tenantlink_store::DeviceRow) -> Self {
        Self {
            id: d.id,
            device_name: d.device_name,
            user_id: d.user_id,
            user_principal_name: d.user_principal_name,
            operating_system: d.operating_system,
            os_version: d.os_version,
            compliance_state: d.compliance_state,
            owner_type: d.owner_type,
            is_encrypted: d.is_encrypted,
            manufacturer: d.manufacturer,
            model: d.model,
            serial_number: d.serial_number,
            azure_ad_device_id: d.azure_ad_device_id,
            enrolled_at: d.enrolled_at.map(utc),
            last_sync_at: d.last_sync_at.map(utc),
        }
    }
}

/// The record as Microsoft Graph sent it (`null` if it is not readable JSON).
fn details(raw: &str) -> serde_json::Value {
    serde_json::from_str(raw).unwrap_or(serde_json::Value::Null)
}

/// A sign-in record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SignInResponse {
    /// Record id.
    pub(crate) id: String,
    /// When.
    pub(crate) created_at: DateTime<Utc>,
    /// Who (object id).
    pub(crate) user_id: Option<String>,
    /// Who (principal name).
    pub(crate) user_principal_name: Option<String>,
    /// Into which app.
    pub(crate) app_display_name: Option<String>,
    /// From where.
    pub(crate) ip_address: Option<String>,
    /// `status.errorCode` (0: success).
    pub(crate) status_code: Option<i64>,
    /// The record as Microsoft Graph sent it.
    #[schema(value_type = Object)]
    pub(crate) details: serde_json::Value,
}

impl From<tenantlink_store::SignInRow> for SignInResponse {
    fn from(s: tenantlink_store::SignInRow) -> Self {
        Self {
            details: details(&s.raw),
            id: s.id,
            created_at: utc(s.created_at),
            user_id: s.user_id,
            user_principal_name: s.user_principal_name,
            app_display_name: s.app_display_name,
            ip_address: s.ip_address,
            status_code: s.status_code,
        }
    }
}

/// A directory audit record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditResponse {
    /// Record id.
    pub(crate) id: String,
    /// When.
    pub(crate) activity_at: DateTime<Utc>,
    /// What.
    pub(crate) activity_display_name: Option<String>,
    /// Category.
    pub(crate) category: Option<String>,
    /// `success`, `failure`...
    pub(crate) result: Option<String>,
    /// The record as Microsoft Graph sent it.
    #[schema(value_type = Object)]
    pub(crate) details: serde_json::Value,
}

impl From<tenantlink_store::AuditRow> for AuditResponse {
    fn from(a: tenantlink_store::AuditRow) -> Self {
        Self {
            details: details(&a.raw),
            id: a.id,
            activity_at: utc(a.activity_at),
            activity_display_name: a.activity_display_name,
            category: a.category,
            result: a.result,
        }
    }
}

/// A security alert.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertResponse {
    /// Alert id.
    pub(crate) id: String,
    /// Created.
    pub(crate) created_at: DateTime<Utc>,
    /// Last updated.
    pub(crate) updated_at: Option<DateTime<Utc>>,
    /// Title.
    pub(crate) title: Option<String>,
    /// `low`, `medium`, `high`...
    pub(crate) severity: Option<String>,
    /// `new`, `inProgress`, `resolved`...
    pub(crate) status: Option<String>,
    /// The alert as Microsoft Graph sent it.
    #[schema(value_type = Object)]
    pub(crate) details: serde_json::Value,
}

impl From<tenantlink_store::AlertRow> for AlertResponse {
    fn from(a: tenantlink_store::AlertRow) -> Self {
        Self {
            details: details(&a.raw),
            id: a.id,
            created_at: utc(a.created_at),
            updated_at: a.updated_at.map(utc),
            title: a.title,
            severity: a.severity,
            status: a.status,
        }
    }
}

macro_rules! page_type {
    ($(#[$doc:meta])* $name:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, Serialize, ToSchema)]
        pub(crate) struct $name {
            /// The rows of this page.
            pub(crate) items: Vec<$item>,
            /// Pass as `cursor` for the next page; `null` on the last page.
            pub(crate) next_cursor: Option<String>,
        }

        impl<T: Into<$item>> From<tenantlink_store::Page<T>> for $name {
            fn from(p: tenantlink_store::Page<T>) -> Self {
                Self {
                    items: p.items.into_iter().map(Into::into).collect(),
                    next_cursor: p.next_cursor,
                }
            }
        }
    };
}

page_type!(
    /// A page of users, by id.
    UserPage,
    UserResponse
);
page_type!(
    /// A page of groups, by id.
    GroupPage,
    GroupResponse
);
page_type!(
    /// A page of a user's groups, by id.
    UserGroupPage,
    UserGroupResponse
);
page_type!(
    /// A page of a group's members, by id.
    MemberPage,
    MemberResponse
);
page_type!(
    /// A page of devices, by id.
    DevicePage,
    DeviceResponse
);
page_type!(
    /// A page of sign-ins, newest first.
    SignInPage,
    SignInResponse
);
page_type!(
    /// A page of directory audits, newest first.
    AuditPage,
    AuditResponse
);
page_type!(
    /// A page of alerts, newest first.
    AlertPage,
    AlertResponse
);
