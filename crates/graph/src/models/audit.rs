//! Identity and access reports: sign-ins and directory audits (`/auditLogs`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Extra;

/// A sign-in event (`microsoft.graph.signIn`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignIn {
    /// Event id.
    pub id: String,
    /// When it happened.
    #[serde(default)]
    pub created_date_time: Option<DateTime<Utc>>,
    /// The user's id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The user's UPN.
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// The user's display name.
    #[serde(default)]
    pub user_display_name: Option<String>,
    /// The application's id.
    #[serde(default)]
    pub app_id: Option<String>,
    /// The application's name.
    #[serde(default)]
    pub app_display_name: Option<String>,
    /// Client IP address.
    #[serde(default)]
    pub ip_address: Option<String>,
    /// Client app used (`Browser`, `Mobile Apps and Desktop clients`...).
    #[serde(default)]
    pub client_app_used: Option<String>,
    /// Whether it was interactive.
    #[serde(default)]
    pub is_interactive: Option<bool>,
    /// `success`, `failure`, `notApplied`...
    #[serde(default)]
    pub conditional_access_status: Option<String>,
    /// Risk level during sign-in.
    #[serde(default)]
    pub risk_level_during_sign_in: Option<String>,
    /// Outcome (`errorCode` 0 is success).
    #[serde(default)]
    pub status: Option<SignInStatus>,
    /// Everything else Graph sent (location, deviceDetail...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A sign-in's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInStatus {
    /// 0 on success, else the AADSTS error number.
    #[serde(default)]
    pub error_code: Option<i64>,
    /// Why it failed.
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// More detail.
    #[serde(default)]
    pub additional_details: Option<String>,
}

/// A directory audit record (`microsoft.graph.directoryAudit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryAudit {
    /// Record id.
    pub id: String,
    /// When it happened.
    #[serde(default)]
    pub activity_date_time: Option<DateTime<Utc>>,
    /// What happened, e.g. `Add member to group`.
    #[serde(default)]
    pub activity_display_name: Option<String>,
    /// Category, e.g. `UserManagement`.
    #[serde(default)]
    pub category: Option<String>,
    /// Correlation id.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// Service that logged it.
    #[serde(default)]
    pub logged_by_service: Option<String>,
    /// `Add`, `Update`, `Delete`...
    #[serde(default)]
    pub operation_type: Option<String>,
    /// `success` or `failure`.
    #[serde(default)]
    pub result: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub result_reason: Option<String>,
    /// Who did it (`user` or `app`), as sent.
    #[serde(default)]
    pub initiated_by: Option<serde_json::Value>,
    /// What it was done to, as sent.
    #[serde(default)]
    pub target_resources: Option<Vec<serde_json::Value>>,
    /// Everything else Graph sent.
    #[serde(flatten)]
    pub extra: Extra,
}
