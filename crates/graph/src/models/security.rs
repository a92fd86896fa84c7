//! Security alerts (`/security/alerts_v2`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Extra;

/// A security alert (`microsoft.graph.security.alert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Alert id.
    pub id: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// `informational`, `low`, `medium`, `high`, `unknownFutureValue`.
    #[serde(default)]
    pub severity: Option<String>,
    /// `new`, `inProgress`, `resolved`...
    #[serde(default)]
    pub status: Option<String>,
    /// Category (MITRE tactic).
    #[serde(default)]
    pub category: Option<String>,
    /// The product that raised it.
    #[serde(default)]
    pub service_source: Option<String>,
    /// The detection technology.
    #[serde(default)]
    pub detection_source: Option<String>,
    /// `truePositive`, `falsePositive`...
    #[serde(default)]
    pub classification: Option<String>,
    /// The incident it belongs to.
    #[serde(default)]
    pub incident_id: Option<String>,
    /// When it was created.
    #[serde(default)]
    pub created_date_time: Option<DateTime<Utc>>,
    /// Last update.
    #[serde(default)]
    pub last_update_date_time: Option<DateTime<Utc>>,
    /// Evidence, as sent.
    #[serde(default)]
    pub evidence: Option<Vec<serde_json::Value>>,
    /// Everything else Graph sent.
    #[serde(flatten)]
    pub extra: Extra,
}
