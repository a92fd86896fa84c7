//! Directory objects as Microsoft Graph's JSON (every property; `$select` picks from it),
//! and the reverse for the control API: Graph-shaped JSON applied to a model object.
//! Properties the model has no field for are kept in `extra` and returned as given.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::model::{Directory, Group, ManagedDevice, ObjState, User};

/// An instant as Graph writes it: `2024-01-31T12:34:56Z`.
pub fn iso(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_time(time: Option<DateTime<Utc>>) -> Value {
    time.map_or(Value::Null, |t| Value::String(iso(t)))
}

/// The properties Graph returns for a user when no `$select` is given.
pub const USER_DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Every property of a user (without `signInActivity`, which costs extra and is only
/// returned when selected, and without `manager`, a navigation property).
pub fn user(u: &User) -> Map<String, Value> {
    user_properties(u, |_| true)
}

/// The properties of [`user`] that `keep` names, and only those are built: a listing that
/// selects two of them does not build (and drop) the other twenty for every user.
pub fn user_properties(u: &User, keep: impl Fn(&str) -> bool) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: &dyn Fn() -> Value| {
        if keep(k) {
            m.insert(k.to_owned(), v());
        }
    };
    put("id", &|| json!(u.id));
    put("businessPhones", &|| json!(u.business_phones));
    put("displayName", &|| json!(u.display_name));
    put("givenName", &|| json!(u.given_name));
    put("jobTitle", &|| json!(u.job_title));
    put("mail", &|| json!(u.mail));
    put("mobilePhone", &|| json!(u.mobile_phone));
    put("officeLocation", &|| json!(u.office_location));
    put("preferredLanguage", &|| json!(u.preferred_language));
    put("surname", &|| json!(u.surname));
    put("userPrincipalName", &|| json!(u.user_principal_name));
    put("accountEnabled", &|| json!(u.account_enabled));
    put("department", &|| json!(u.department));
    put("companyName", &|| json!(u.company_name));
    put("city", &|| json!(u.city));
    put("country", &|| json!(u.country));
    put("usageLocation", &|| json!(u.usage_location));
    put("employeeId", &|| json!(u.employee_id));
    put("mailNickname", &|| json!(u.mail_nickname));
    put("userType", &|| json!(u.user_type));
    put("createdDateTime", &|| json!(iso(u.created_date_time)));
    put("deletedDateTime", &|| opt_time(u.deleted_date_time));
    for (k, v) in &u.extra {
        if keep(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

/// A user's `signInActivity`.
pub fn sign_in_activity(u: &User) -> Value {
    let a = &u.sign_in_activity;
    json!({
        "lastSignInDateTime": opt_time(a.last_sign_in),
        "lastSignInRequestId": a.last_sign_in_request_id,
        "lastNonInteractiveSignInDateTime": opt_time(a.last_non_interactive_sign_in),
        "lastNonInteractiveSignInRequestId": a.last_sign_in_request_id,
        "lastSuccessfulSignInDateTime": opt_time(a.last_successful_sign_in),
        "lastSuccessfulSignInRequestId": a.last_sign_in_request_id,
    })
}

/// The properties Graph returns for a group when no `$select` is given (a subset of all).
pub const GROUP_DEFAULT_PROPERTIES: &[&str] = &[
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "creationOptions",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "securityEnabled",
    "securityIdentifier",
    "theme",
    "visibility",
    "onPremisesProvisioningErrors",
];

/// Every property of a group (members are a navigation property, not here).
pub fn group(g: &Group) -> Map<String, Value> {
    let mut m = Map::with_capacity(32);
    m.insert("id".into(), json!(g.id));
    m.insert("deletedDateTime".into(), opt_time(g.deleted_date_time));
    m.insert("classification".into(), Value::Null);
    m.insert("createdDateTime".into(), json!(iso(g.created_date_time)));
    m.insert("creationOptions".into(), json!([]));
    m.insert("description".into(), json!(g.description));
    m.insert("displayName".into(), json!(g.display_name));
    m.insert("expirationDateTime".into(), Value::Null);
    m.insert("groupTypes".into(), json!(g.group_types));
    m.insert("isAssignableToRole".into(), Value::Null);
    m.insert("mail".into(), json!(g.mail));
    m.insert("mailEnabled".into(), json!(g.mail_enabled));
    m.insert("mailNickname".into(), json!(g.mail_nickname));
    m.insert("membershipRule".into(), Value::Null);
    m.insert("membershipRuleProcessingState".into(), Value::Null);
    m.insert("onPremisesDomainName".into(), Value::Null);
    m.insert("onPremisesLastSyncDateTime".into(), Value::Null);
    m.insert("onPremisesSamAccountName".into(), Value::Null);
    m.insert("onPremisesSecurityIdentifier".into(), Value::Null);
    m.insert("onPremisesSyncEnabled".into(), Value::Null);
    m.insert("preferredDataLocation".into(), Value::Null);
    m.insert("preferredLanguage".into(), Value::Null);
    m.insert(
        "proxyAddresses".into(),
        json!(
            g.mail
                .iter()
                .map(|m| format!("SMTP:{m}"))
                .collect::<Vec<_>>()
        ),
    );
    m.insert("renewedDateTime".into(), json!(iso(g.created_date_time)));
    m.insert("resourceBehaviorOptions".into(), json!([]));
    m.insert("resourceProvisioningOptions".into(), json!([]));
    m.insert("securityEnabled".into(), json!(g.security_enabled));
    m.insert(
        "securityIdentifier".into(),
        json!(format!("S-1-12-1-{}", &g.id[..8])),
    );
    m.insert("theme".into(), Value::Null);
    m.insert("visibility".into(), json!(g.visibility));
    m.insert("onPremisesProvisioningErrors".into(), json!([]));
    for (k, v) in &g.extra {
        m.insert(k.clone(), v.clone());
    }
    m
}

/// Every property of an Intune managed device.
pub fn device(d: &ManagedDevice) -> Map<String, Value> {
    let mut m = Map::with_capacity(40);
    m.insert("id".into(), json!(d.id));
    m.insert("userId".into(), json!(d.user_id));
    m.insert("deviceName".into(), json!(d.device_name));
    m.insert(
        "managedDeviceOwnerType".into(),
        json!(d.managed_device_owner_type),
    );
    m.insert("enrolledDateTime".into(), json!(iso(d.enrolled_date_time)));
    m.insert("lastSyncDateTime".into(), json!(iso(d.last_sync_date_time)));
    m.insert("operatingSystem".into(), json!(d.operating_system));
    m.insert("complianceState".into(), json!(d.compliance_state));
    m.insert("jailBroken".into(), json!(d.jail_broken));
    m.insert("managementAgent".into(), json!(d.management_agent));
    m.insert("osVersion".into(), json!(d.os_version));
    m.insert("easActivated".into(), json!(false));
    m.insert("easDeviceId".into(), json!(""));
    m.insert(
        "easActivationDateTime".into(),
        json!("0001-01-01T00:00:00Z"),
    );
    m.insert("azureADRegistered".into(), json!(d.azure_ad_registered));
    m.insert(
        "deviceEnrollmentType".into(),
        json!(d.device_enrollment_type),
    );
    m.insert("activationLockBypassCode".into(), Value::Null);
    m.insert(
        "emailAddress".into(),
        json!(d.email_address.clone().unwrap_or_default()),
    );
    m.insert("azureADDeviceId".into(), json!(d.azure_ad_device_id));
    m.insert("deviceRegistrationState".into(), json!("registered"));
    m.insert("deviceCategoryDisplayName".into(), json!("Unknown"));
    m.insert("isSupervised".into(), json!(d.is_supervised));
    m.insert(
        "exchangeLastSuccessfulSyncDateTime".into(),
        json!("0001-01-01T00:00:00Z"),
    );
    m.insert("exchangeAccessState".into(), json!("none"));
    m.insert("exchangeAccessStateReason".into(), json!("none"));
    m.insert("remoteAssistanceSessionUrl".into(), Value::Null);
    m.insert("remoteAssistanceSessionErrorDetails".into(), Value::Null);
    m.insert("isEncrypted".into(), json!(d.is_encrypted));
    m.insert(
        "userPrincipalName".into(),
        json!(d.user_principal_name.clone().unwrap_or_default()),
    );
    m.insert("model".into(), json!(d.model));
    m.insert("manufacturer".into(), json!(d.manufacturer));
    m.insert("imei".into(), json!(""));
    m.insert(
        "complianceGracePeriodExpirationDateTime".into(),
        json!("9999-12-31T23:59:59Z"),
    );
    m.insert("serialNumber".into(), json!(d.serial_number));
    m.insert("phoneNumber".into(), json!(""));
    m.insert("androidSecurityPatchLevel".into(), json!(""));
    m.insert(
        "userDisplayName".into(),
        json!(d.user_display_name.clone().unwrap_or_default()),
    );
    m.insert(
        "configurationManagerClientEnabledFeatures".into(),
        Value::Null,
    );
    m.insert("wiFiMacAddress".into(), json!(""));
    m.insert("deviceHealthAttestationState".into(), Value::Null);
    m.insert("subscriberCarrier".into(), json!(""));
    m.insert("meid".into(), json!(""));
    m.insert(
        "totalStorageSpaceInBytes".into(),
        json!(d.total_storage_space_in_bytes),
    );
    m.insert(
        "freeStorageSpaceInBytes".into(),
        json!(d.free_storage_space_in_bytes),
    );
    m.insert(
        "managedDeviceName".into(),
        json!(format!("{}_{}", d.device_name, &d.id[..8])),
    );
    m.insert("partnerReportedThreatState".into(), json!("unknown"));
    m.insert("deviceActionResults".into(), json!([]));
    for (k, v) in &d.extra {
        m.insert(k.clone(), v.clone());
    }
    m
}

/// The whole tenant as the control API's ground truth: every user, group (with direct
/// member ids), device and audit record, live and deleted, with their state.
pub fn tenant_state(dir: &Directory, include_audit: bool) -> Value {
    let state_name = |s: ObjState| match s {
        ObjState::Active => "active",
        ObjState::SoftDeleted => "softDeleted",
        ObjState::HardDeleted => "hardDeleted",
    };
    let users: Vec<Value> = dir
        .users
        .iter()
        .map(|u| {
            let mut m = user(u);
            m.insert("signInActivity".into(), sign_in_activity(u));
            m.insert(
                "managerId".into(),
                json!(u.manager.map(|i| dir.users[i as usize].id.clone())),
            );
            m.insert("_state".into(), json!(state_name(u.state)));
            Value::Object(m)
        })
        .collect();
    let groups: Vec<Value> = dir
        .groups
        .iter()
        .map(|g| {
            let mut m = group(g);
            let members: Vec<Value> = g
                .members
                .iter()
                .filter(|&&mem| dir.member_live(mem))
                .map(|&mem| json!({"id": dir.member_id(mem), "@odata.type": mem.kind.odata_type()}))
                .collect();
            m.insert("members".into(), json!(members));
            m.insert("_state".into(), json!(state_name(g.state)));
            Value::Object(m)
        })
        .collect();
    let devices: Vec<Value> = dir
        .devices
        .iter()
        .map(|d| {
            let mut m = device(d);
            m.insert(
                "_state".into(),
                json!(if d.deleted { "deleted" } else { "active" }),
            );
            Value::Object(m)
        })
        .collect();
    let mut out = json!({
        "users": users,
        "groups": groups,
        "managedDevices": devices,
        "counts": {
            "signIns": dir.sign_ins.len(),
            "directoryAudits": dir.directory_audits.len(),
            "alerts": dir.alerts.len(),
        },
        "version": dir.version,
    });
    if include_audit {
        let bodies = |records: &[crate::model::AuditRecord]| -> Vec<Value> {
            records.iter().map(|r| r.body.clone()).collect()
        };
        out["signIns"] = json!(bodies(&dir.sign_ins));
        out["directoryAudits"] = json!(bodies(&dir.directory_audits));
        out["alerts"] = json!(bodies(&dir.alerts));
    }
    out
}

/// An error in Graph-shaped JSON handed to the control API.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(pub String);

fn string(v: &Value, key: &str) -> Result<String, PatchError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| PatchError(format!("`{key}` must be a string")))
}

fn opt_string(v: &Value, key: &str) -> Result<Option<String>, PatchError> {
    if v.is_null() {
        Ok(None)
    } else {
        string(v, key).map(Some)
    }
}

fn boolean(v: &Value, key: &str) -> Result<bool, PatchError> {
    v.as_bool()
        .ok_or_else(|| PatchError(format!("`{key}` must be true or false")))
}

fn time(v: &Value, key: &str) -> Result<DateTime<Utc>, PatchError> {
    let s = string(v, key)?;
    DateTime::parse_from_rfc3339(&s)
        .map(Into::into)
        .map_err(|_| PatchError(format!("`{key}` must be an ISO 8601 date-time")))
}

fn strings(v: &Value, key: &str) -> Result<Vec<String>, PatchError> {
    v.as_array()
        .ok_or_else(|| PatchError(format!("`{key}` must be an array of strings")))?
        .iter()
        .map(|s| string(s, key))
        .collect()
}

/// Applies Graph-shaped properties to a user. `managerId` sets the manager (resolved by the
/// caller through `resolve_manager`); unknown properties go to `extra`.
pub fn apply_user(
    u: &mut User,
    patch: &Map<String, Value>,
    resolve_manager: impl Fn(&str) -> Option<u32>,
) -> Result<(), PatchError> {
    for (k, v) in patch {
        match k.as_str() {
            "id" => {}
            "displayName" => u.display_name = string(v, k)?,
            "givenName" => u.given_name = opt_string(v, k)?,
            "surname" => u.surname = opt_string(v, k)?,
            "userPrincipalName" => u.user_principal_name = string(v, k)?,
            "mail" => u.mail = opt_string(v, k)?,
            "mailNickname" => u.mail_nickname = string(v, k)?,
            "jobTitle" => u.job_title = opt_string(v, k)?,
            "department" => u.department = opt_string(v, k)?,
            "officeLocation" => u.office_location = opt_string(v, k)?,
            "companyName" => u.company_name = opt_string(v, k)?,
            "city" => u.city = opt_string(v, k)?,
            "country" => u.country = opt_string(v, k)?,
            "usageLocation" => u.usage_location = opt_string(v, k)?,
            "mobilePhone" => u.mobile_phone = opt_string(v, k)?,
            "businessPhones" => u.business_phones = strings(v, k)?,
            "employeeId" => u.employee_id = opt_string(v, k)?,
            "preferredLanguage" => u.preferred_language = opt_string(v, k)?,
            "accountEnabled" => u.account_enabled = boolean(v, k)?,
            "userType" => u.user_type = string(v, k)?,
            "createdDateTime" => u.created_date_time = time(v, k)?,
            "managerId" => {
                u.manager = match v {
                    Value::Null => None,
                    _ => Some(
                        resolve_manager(&string(v, k)?)
                            .ok_or_else(|| PatchError("`managerId` is not a user".into()))?,
                    ),
                }
            }
            "signInActivity" => {
                let get = |name: &str| -> Result<Option<DateTime<Utc>>, PatchError> {
                    match v.get(name) {
                        None | Some(Value::Null) => Ok(None),
                        Some(t) => time(t, name).map(Some),
                    }
                };
                u.sign_in_activity.last_sign_in = get("lastSignInDateTime")?;
                u.sign_in_activity.last_non_interactive_sign_in =
                    get("lastNonInteractiveSignInDateTime")?;
                u.sign_in_activity.last_successful_sign_in =
                    get("lastSuccessfulSignInDateTime")?.or(u.sign_in_activity.last_sign_in);
            }
            _ => {
                u.extra.insert(k.clone(), v.clone());
            }
        }
    }
    if u.display_name.trim().is_empty() || u.user_principal_name.trim().is_empty() {
        return Err(PatchError(
            "a user needs a displayName and a userPrincipalName".into(),
        ));
    }
    Ok(())
}

/// Applies Graph-shaped properties to a group; unknown properties go to `extra`.
pub fn apply_group(g: &mut Group, patch: &Map<String, Value>) -> Result<(), PatchError> {
    for (k, v) in patch {
        match k.as_str() {
            "id" | "members" => {}
            "displayName" => g.display_name = string(v, k)?,
            "description" => g.description = opt_string(v, k)?,
            "mail" => g.mail = opt_string(v, k)?,
            "mailEnabled" => g.mail_enabled = boolean(v, k)?,
            "mailNickname" => g.mail_nickname = string(v, k)?,
            "securityEnabled" => g.security_enabled = boolean(v, k)?,
            "groupTypes" => g.group_types = strings(v, k)?,
            "visibility" => g.visibility = opt_string(v, k)?,
            "createdDateTime" => g.created_date_time = time(v, k)?,
            _ => {
                g.extra.insert(k.clone(), v.clone());
            }
        }
    }
    if g.display_name.trim().is_empty() {
        return Err(PatchError("a group needs a displayName".into()));
    }
    Ok(())
}

/// Applies Graph-shaped properties to a managed device; unknown properties go to `extra`.
pub fn apply_device(d: &mut ManagedDevice, patch: &Map<String, Value>) -> Result<(), PatchError> {
    for (k, v) in patch {
        match k.as_str() {
            "id" => {}
            "deviceName" => d.device_name = string(v, k)?,
            "userId" => d.user_id = opt_string(v, k)?,
            "userPrincipalName" => d.user_principal_name = opt_string(v, k)?,
            "userDisplayName" => d.user_display_name = opt_string(v, k)?,
            "emailAddress" => d.email_address = opt_string(v, k)?,
            "operatingSystem" => d.operating_system = string(v, k)?,
            "osVersion" => d.os_version = string(v, k)?,
            "complianceState" => d.compliance_state = string(v, k)?,
            "managedDeviceOwnerType" => d.managed_device_owner_type = string(v, k)?,
            "enrolledDateTime" => d.enrolled_date_time = time(v, k)?,
            "lastSyncDateTime" => d.last_sync_date_time = time(v, k)?,
            "azureADDeviceId" => d.azure_ad_device_id = string(v, k)?,
            "manufacturer" => d.manufacturer = string(v, k)?,
            "model" => d.model = string(v, k)?,
            "serialNumber" => d.serial_number = string(v, k)?,
            "isEncrypted" => d.is_encrypted = boolean(v, k)?,
            _ => {
                d.extra.insert(k.clone(), v.clone());
            }
        }
    }
    if d.device_name.trim().is_empty() {
        return Err(PatchError("a managed device needs a deviceName".into()));
    }
    Ok(())
}
