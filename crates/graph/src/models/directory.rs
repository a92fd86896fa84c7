//! Directory objects: users, groups and the `@odata.type`-tagged objects of member lists.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Extra;

/// A user (`microsoft.graph.user`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Object id (GUID).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Sign-in name.
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// Given name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Surname.
    #[serde(default)]
    pub surname: Option<String>,
    /// Primary SMTP address.
    #[serde(default)]
    pub mail: Option<String>,
    /// Department.
    #[serde(default)]
    pub department: Option<String>,
    /// Job title.
    #[serde(default)]
    pub job_title: Option<String>,
    /// Office location.
    #[serde(default)]
    pub office_location: Option<String>,
    /// Mobile phone.
    #[serde(default)]
    pub mobile_phone: Option<String>,
    /// Whether the account can sign in.
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// `Member` or `Guest`.
    #[serde(default)]
    pub user_type: Option<String>,
    /// When the user was created.
    #[serde(default)]
    pub created_date_time: Option<DateTime<Utc>>,
    /// The manager, with `$expand=manager`.
    #[serde(default)]
    pub manager: Option<Box<DirectoryObject>>,
    /// Last sign-ins, when `signInActivity` is selected (needs `AuditLog.Read.All`).
    #[serde(default)]
    pub sign_in_activity: Option<SignInActivity>,
    /// Everything else Graph sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A user's `signInActivity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInActivity {
    /// Last interactive sign-in (successful or not).
    #[serde(default)]
    pub last_sign_in_date_time: Option<DateTime<Utc>>,
    /// Its request id.
    #[serde(default)]
    pub last_sign_in_request_id: Option<String>,
    /// Last non-interactive sign-in.
    #[serde(default)]
    pub last_non_interactive_sign_in_date_time: Option<DateTime<Utc>>,
    /// Its request id.
    #[serde(default)]
    pub last_non_interactive_sign_in_request_id: Option<String>,
    /// Last successful sign-in.
    #[serde(default)]
    pub last_successful_sign_in_date_time: Option<DateTime<Utc>>,
    /// Its request id.
    #[serde(default)]
    pub last_successful_sign_in_request_id: Option<String>,
    /// Everything else Graph sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A group (`microsoft.graph.group`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Object id (GUID).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// `Unified` for Microsoft 365 groups, `DynamicMembership` for dynamic ones.
    #[serde(default)]
    pub group_types: Option<Vec<String>>,
    /// Whether the group has a mailbox.
    #[serde(default)]
    pub mail_enabled: Option<bool>,
    /// Whether the group can grant access.
    #[serde(default)]
    pub security_enabled: Option<bool>,
    /// SMTP address.
    #[serde(default)]
    pub mail: Option<String>,
    /// Mail alias.
    #[serde(default)]
    pub mail_nickname: Option<String>,
    /// `Public`, `Private` or `HiddenMembership`.
    #[serde(default)]
    pub visibility: Option<String>,
    /// When the group was created.
    #[serde(default)]
    pub created_date_time: Option<DateTime<Utc>>,
    /// Everything else Graph sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// What a group is, derived from `groupTypes`, `mailEnabled` and `securityEnabled` as
/// "Compare groups" and the group resource type describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GroupKind {
    /// `groupTypes` has `Unified`.
    Microsoft365,
    /// Security enabled, not mail enabled.
    Security,
    /// Security and mail enabled.
    MailEnabledSecurity,
    /// Mail enabled, not security enabled.
    Distribution,
    /// None of the above (not expected from Graph).
    Unknown,
}

impl Group {
    /// The kind of group.
    pub fn kind(&self) -> GroupKind {
        let unified = self
            .group_types
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|t| t.eq_ignore_ascii_case("Unified"));
        let mail = self.mail_enabled.unwrap_or(false);
        let security = self.security_enabled.unwrap_or(false);
        match (unified, mail, security) {
            (true, _, _) => GroupKind::Microsoft365,
            (false, false, true) => GroupKind::Security,
            (false, true, true) => GroupKind::MailEnabledSecurity,
            (false, true, false) => GroupKind::Distribution,
            (false, false, false) => GroupKind::Unknown,
        }
    }

    /// Whether membership is rule-based (`DynamicMembership`).
    pub fn is_dynamic(&self) -> bool {
        self.group_types
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|t| t.eq_ignore_ascii_case("DynamicMembership"))
    }
}

/// The `@odata.type` of a directory object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ODataType {
    /// `#microsoft.graph.user`
    #[serde(rename = "#microsoft.graph.user")]
    User,
    /// `#microsoft.graph.group`
    #[serde(rename = "#microsoft.graph.group")]
    Group,
    /// `#microsoft.graph.device`
    #[serde(rename = "#microsoft.graph.device")]
    Device,
    /// `#microsoft.graph.servicePrincipal`
    #[serde(rename = "#microsoft.graph.servicePrincipal")]
    ServicePrincipal,
    /// `#microsoft.graph.orgContact`
    #[serde(rename = "#microsoft.graph.orgContact")]
    OrgContact,
    /// `#microsoft.graph.application`
    #[serde(rename = "#microsoft.graph.application")]
    Application,
    /// Any other type, as sent.
    #[serde(untagged)]
    Other(String),
}

/// A directory object as member lists, `memberOf` and `manager` return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    /// Object id.
    pub id: String,
    /// What it is.
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<ODataType>,
    /// Display name, when sent.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Everything else Graph sent (the user or group properties).
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(types: &[&str], mail: bool, security: bool) -> Group {
        serde_json::from_value(serde_json::json!({
            "id": "g", "groupTypes": types, "mailEnabled": mail, "securityEnabled": security
        }))
        .expect("group")
    }

    #[test]
    fn group_kinds() {
        assert_eq!(
            group(&["Unified"], true, false).kind(),
            GroupKind::Microsoft365
        );
        assert_eq!(group(&[], false, true).kind(), GroupKind::Security);
        assert_eq!(
            group(&[], true, true).kind(),
            GroupKind::MailEnabledSecurity
        );
        assert_eq!(group(&[], true, false).kind(), GroupKind::Distribution);
        assert!(group(&["Unified", "DynamicMembership"], true, false).is_dynamic());
    }

    #[test]
    fn odata_types_and_unknown_properties_kept() {
        let o: DirectoryObject = serde_json::from_value(serde_json::json!({
            "@odata.type": "#microsoft.graph.user", "id": "u", "mail": "a@b"
        }))
        .expect("object");
        assert_eq!(o.odata_type, Some(ODataType::User));
        assert_eq!(o.extra["mail"], "a@b");
        let o: DirectoryObject = serde_json::from_value(serde_json::json!({
            "@odata.type": "#microsoft.graph.thing", "id": "x"
        }))
        .expect("object");
        assert_eq!(
            o.odata_type,
            Some(ODataType::Other("#microsoft.graph.thing".into()))
        );
    }
}
