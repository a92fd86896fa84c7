//! Intune managed devices (`/deviceManagement/managedDevices`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Extra;

/// An Intune managed device (`microsoft.graph.managedDevice`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedDevice {
    /// Intune device id.
    pub id: String,
    /// Device name.
    #[serde(default)]
    pub device_name: Option<String>,
    /// The primary user's id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The primary user's UPN.
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// `Windows`, `iOS`, `Android`, `macOS`...
    #[serde(default)]
    pub operating_system: Option<String>,
    /// OS version.
    #[serde(default)]
    pub os_version: Option<String>,
    /// `compliant`, `noncompliant`, `inGracePeriod`, `unknown`...
    #[serde(default)]
    pub compliance_state: Option<String>,
    /// `company`, `personal` or `unknown`.
    #[serde(default)]
    pub managed_device_owner_type: Option<String>,
    /// Whether storage is encrypted.
    #[serde(default)]
    pub is_encrypted: Option<bool>,
    /// `True`, `False` or `Unknown` (a string in Graph).
    #[serde(default)]
    pub jail_broken: Option<String>,
    /// Manufacturer.
    #[serde(default)]
    pub manufacturer: Option<String>,
    /// Model.
    #[serde(default)]
    pub model: Option<String>,
    /// Serial number.
    #[serde(default)]
    pub serial_number: Option<String>,
    /// The Entra device id.
    #[serde(default, rename = "azureADDeviceId")]
    pub azure_ad_device_id: Option<String>,
    /// When it enrolled.
    #[serde(default)]
    pub enrolled_date_time: Option<DateTime<Utc>>,
    /// Last check-in with Intune.
    #[serde(default)]
    pub last_sync_date_time: Option<DateTime<Utc>>,
    /// Everything else Graph sent.
    #[serde(flatten)]
    pub extra: Extra,
}
