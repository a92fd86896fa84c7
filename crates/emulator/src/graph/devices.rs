//! Intune managed devices: list and get. Deleted devices are invisible.

use std::borrow::Cow;

use serde_json::json;

use super::auth::Caller;
use super::odata::{self, Fetched, OverMax, Resource};
use super::{GraphRequest, GraphResponse, graph_error};
use crate::model::Directory;
use crate::state::State;

/// intune-devices-manageddevice-list: application permission, least privileged first.
const DEVICE_READ: &[&str] = &[
    "DeviceManagementManagedDevices.Read.All",
    "DeviceManagementManagedDevices.ReadWrite.All",
];

/// The managedDevice properties of Graph v1.0.
const DEVICE_PROPERTIES: &[&str] = &[
    "id",
    "userId",
    "deviceName",
    "managedDeviceOwnerType",
    "enrolledDateTime",
    "lastSyncDateTime",
    "operatingSystem",
    "complianceState",
    "jailBroken",
    "managementAgent",
    "osVersion",
    "easActivated",
    "easDeviceId",
    "easActivationDateTime",
    "azureADRegistered",
    "deviceEnrollmentType",
    "activationLockBypassCode",
    "emailAddress",
    "azureADDeviceId",
    "deviceRegistrationState",
    "deviceCategoryDisplayName",
    "isSupervised",
    "exchangeLastSuccessfulSyncDateTime",
    "exchangeAccessState",
    "exchangeAccessStateReason",
    "remoteAssistanceSessionUrl",
    "remoteAssistanceSessionErrorDetails",
    "isEncrypted",
    "userPrincipalName",
    "model",
    "manufacturer",
    "imei",
    "complianceGracePeriodExpirationDateTime",
    "serialNumber",
    "phoneNumber",
    "androidSecurityPatchLevel",
    "userDisplayName",
    "configurationManagerClientEnabledFeatures",
    "wiFiMacAddress",
    "deviceHealthAttestationState",
    "subscriberCarrier",
    "meid",
    "totalStorageSpaceInBytes",
    "freeStorageSpaceInBytes",
    "managedDeviceName",
    "partnerReportedThreatState",
    "deviceActionResults",
];

/// Intune pages hold up to 1,000 devices; a larger `$top` is capped.
const DEVICES: Resource = Resource {
    type_name: "microsoft.graph.managedDevice",
    entity: "ManagedDevice",
    properties: DEVICE_PROPERTIES,
    default_top: 1000,
    max_top: 1000,
    over_max: OverMax::Clamp,
    expandable: &[],
    orderable: &[],
    directory: false,
};

fn device_extra(dir: &Directory, name: &str) -> Option<String> {
    dir.devices.iter().find_map(|d| {
        d.extra
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .cloned()
    })
}

fn fetched(dir: &Directory, idx: usize) -> Option<Fetched<'static>> {
    let d = dir.devices.get(idx)?;
    if d.deleted {
        return None;
    }
    Some(Fetched {
        object: Cow::Owned(crate::json::device(d)),
        id: d.id.clone(),
        defaults: &[],
        odata_type: Some("#microsoft.graph.managedDevice"),
    })
}

/// `GET /deviceManagement/managedDevices`.
pub(crate) fn list(state: &State, caller: &Caller, req: &GraphRequest) -> GraphResponse {
    if let Err(denied) = caller.require(DEVICE_READ) {
        return denied;
    }
    let lifetime = state.faults().page_token_lifetime;
    let world = state.read();
    let dir = &world.tenants[caller.tenant_pos].dir;
    let extra = |name: &str| device_extra(dir, name);
    let opts = match odata::parse(req, &DEVICES, &extra, &caller.tenant_id, lifetime) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let len = dir.devices.len();
    let fetch = |i: usize| fetched(dir, i);
    let count = opts.total(0..len, fetch);
    let start = opts.cursor.as_ref().map_or(0, |c| c.pos);
    let scan = opts.scan(start..len, fetch);
    drop(world);
    opts.answer(
        req,
        opts.context(req, "deviceManagement/managedDevices"),
        scan,
        count,
    )
}

/// `GET /deviceManagement/managedDevices/{id}`.
pub(crate) fn get(state: &State, caller: &Caller, req: &GraphRequest, id: &str) -> GraphResponse {
    if let Err(denied) = caller.require(DEVICE_READ) {
        return denied;
    }
    let lifetime = state.faults().page_token_lifetime;
    let world = state.read();
    let dir = &world.tenants[caller.tenant_pos].dir;
    let extra = |name: &str| device_extra(dir, name);
    let opts = match odata::parse(req, &DEVICES, &extra, &caller.tenant_id, lifetime) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let Some(f) = dir.device_idx(id).and_then(|i| fetched(dir, i as usize)) else {
        return graph_error(
            404,
            "ResourceNotFound",
            &format!("No managedDevice with id '{id}' was found."),
        );
    };
    let mut body = opts.project(f.object.into_owned(), f.defaults, f.odata_type);
    body["@odata.context"] = json!(format!(
        "{}/$entity",
        opts.context(req, "deviceManagement/managedDevices")
    ));
    GraphResponse::ok(body)
}
