//! Audit logs and security alerts: sign-ins, directory audits, alerts_v2. Records are kept
//! oldest first and served newest first; a time range in `$filter` is found by binary
//! search and a skiptoken resumes at its record, so a page costs what it serves.

use std::borrow::Cow;

use serde_json::json;

use super::auth::Caller;
use super::odata::{self, Bound, Fetched, OverMax, Resource};
use super::{GraphRequest, GraphResponse, graph_error};
use crate::model::AuditRecord;
use crate::state::State;

/// signin-list and directoryaudit-list: application permission.
const AUDIT_READ: &[&str] = &["AuditLog.Read.All"];

/// security-list-alerts_v2: application permission, least privileged first.
const ALERT_READ: &[&str] = &["SecurityAlert.Read.All", "SecurityAlert.ReadWrite.All"];

const SIGN_IN_PROPERTIES: &[&str] = &[
    "id",
    "createdDateTime",
    "userDisplayName",
    "userPrincipalName",
    "userId",
    "appId",
    "appDisplayName",
    "ipAddress",
    "clientAppUsed",
    "correlationId",
    "conditionalAccessStatus",
    "isInteractive",
    "riskDetail",
    "riskLevelAggregated",
    "riskLevelDuringSignIn",
    "riskState",
    "riskEventTypes",
    "riskEventTypes_v2",
    "resourceDisplayName",
    "resourceId",
    "status",
    "deviceDetail",
    "location",
    "appliedConditionalAccessPolicies",
];

const DIRECTORY_AUDIT_PROPERTIES: &[&str] = &[
    "id",
    "category",
    "correlationId",
    "result",
    "resultReason",
    "activityDisplayName",
    "activityDateTime",
    "loggedByService",
    "operationType",
    "initiatedBy",
    "targetResources",
    "additionalDetails",
];

const ALERT_PROPERTIES: &[&str] = &[
    "id",
    "providerAlertId",
    "incidentId",
    "status",
    "severity",
    "classification",
    "determination",
    "serviceSource",
    "detectionSource",
    "detectorId",
    "tenantId",
    "title",
    "description",
    "recommendedActions",
    "category",
    "assignedTo",
    "alertWebUrl",
    "incidentWebUrl",
    "actorDisplayName",
    "threatDisplayName",
    "threatFamilyName",
    "mitreTechniques",
    "createdDateTime",
    "lastUpdateDateTime",
    "resolvedDateTime",
    "firstActivityDateTime",
    "lastActivityDateTime",
    "comments",
    "evidence",
    "systemTags",
    "alertPolicyId",
    "additionalData",
];

/// signin-list: "The maximum and default page size is 1,000 objects".
const SIGN_INS: Resource = Resource {
    type_name: "microsoft.graph.signIn",
    entity: "SignIn",
    properties: SIGN_IN_PROPERTIES,
    default_top: 1000,
    max_top: 1000,
    over_max: OverMax::Reject,
    expandable: &[],
    orderable: &[],
    directory: false,
};

const DIRECTORY_AUDITS: Resource = Resource {
    type_name: "microsoft.graph.directoryAudit",
    entity: "DirectoryAudit",
    properties: DIRECTORY_AUDIT_PROPERTIES,
    default_top: 1000,
    max_top: 1000,
    over_max: OverMax::Reject,
    expandable: &[],
    orderable: &[],
    directory: false,
};

/// security-list-alerts_v2: pages of up to 2,000 alerts.
const ALERTS: Resource = Resource {
    type_name: "microsoft.graph.security.alert",
    entity: "Alert",
    properties: ALERT_PROPERTIES,
    default_top: 2000,
    max_top: 2000,
    over_max: OverMax::Clamp,
    expandable: &[],
    orderable: &[],
    directory: false,
};

/// Which log a request reads.
#[derive(Clone, Copy)]
enum Log {
    SignIns,
    DirectoryAudits,
    Alerts,
}

impl Log {
    fn resource(self) -> &'static Resource {
        match self {
            Self::SignIns => &SIGN_INS,
            Self::DirectoryAudits => &DIRECTORY_AUDITS,
            Self::Alerts => &ALERTS,
        }
    }

    fn time_property(self) -> &'static str {
        match self {
            Self::SignIns | Self::Alerts => "createdDateTime",
            Self::DirectoryAudits => "activityDateTime",
        }
    }

    fn set(self) -> &'static str {
        match self {
            Self::SignIns => "auditLogs/signIns",
            Self::DirectoryAudits => "auditLogs/directoryAudits",
            Self::Alerts => "security/alerts_v2",
        }
    }

    fn permissions(self) -> &'static [&'static str] {
        match self {
            Self::SignIns | Self::DirectoryAudits => AUDIT_READ,
            Self::Alerts => ALERT_READ,
        }
    }

    fn records(self, dir: &crate::model::Directory) -> &[AuditRecord] {
        match self {
            Self::SignIns => &dir.sign_ins,
            Self::DirectoryAudits => &dir.directory_audits,
            Self::Alerts => &dir.alerts,
        }
    }
}

/// `GET /auditLogs/signIns[/{id}]`.
pub(crate) fn sign_ins(
    state: &State,
    caller: &Caller,
    req: &GraphRequest,
    id: Option<&str>,
) -> GraphResponse {
    serve(state, caller, req, id, Log::SignIns)
}

/// `GET /auditLogs/directoryAudits[/{id}]`.
pub(crate) fn directory_audits(
    state: &State,
    caller: &Caller,
    req: &GraphRequest,
    id: Option<&str>,
) -> GraphResponse {
    serve(state, caller, req, id, Log::DirectoryAudits)
}

/// `GET /security/alerts_v2[/{id}]`.
pub(crate) fn alerts(
    state: &State,
    caller: &Caller,
    req: &GraphRequest,
    id: Option<&str>,
) -> GraphResponse {
    serve(state, caller, req, id, Log::Alerts)
}

fn fetched(records: &[AuditRecord], pos: usize) -> Option<Fetched<'_>> {
    let r = records.get(pos)?;
    Some(Fetched {
        object: r.body.as_object().map_or_else(Cow::default, Cow::Borrowed),
        id: r.id.clone(),
        defaults: &[],
        odata_type: None,
    })
}

/// The raw index range a time filter allows (records are sorted by time).
fn range(records: &[AuditRecord], lower: Option<Bound>, upper: Option<Bound>) -> (usize, usize) {
    let low = match lower {
        Some(Bound::Inclusive(t)) => records.partition_point(|r| r.time < t),
        Some(Bound::Exclusive(t)) => records.partition_point(|r| r.time <= t),
        None => 0,
    };
    let high = match upper {
        Some(Bound::Inclusive(t)) => records.partition_point(|r| r.time <= t),
        Some(Bound::Exclusive(t)) => records.partition_point(|r| r.time < t),
        None => records.len(),
    };
    (low, high.max(low))
}

fn serve(
    state: &State,
    caller: &Caller,
    req: &GraphRequest,
    id: Option<&str>,
    log: Log,
) -> GraphResponse {
    if let Err(denied) = caller.require(log.permissions()) {
        return denied;
    }
    let res = log.resource();
    let lifetime = state.faults().page_token_lifetime;
    let world = state.read();
    let records = log.records(&world.tenants[caller.tenant_pos].dir);
    let no_extra = |_: &str| None;
    let opts = match odata::parse(req, res, &no_extra, &caller.tenant_id, lifetime) {
        Ok(o) => o,
        Err(e) => return e,
    };
    if let Some(id) = id {
        let Some(f) = records
            .iter()
            .rposition(|r| r.id == id)
            .and_then(|p| fetched(records, p))
        else {
            return graph_error(
                404,
                "ResourceNotFound",
                &format!(
                    "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                ),
            );
        };
        let mut body = opts.project(f.object.into_owned(), f.defaults, f.odata_type);
        body["@odata.context"] = json!(format!("{}/$entity", opts.context(req, log.set())));
        return GraphResponse::ok(body);
    }
    let (lower, upper) = opts
        .filter
        .as_ref()
        .map_or((None, None), |f| f.time_bounds(log.time_property()));
    let (low, high) = range(records, lower, upper);
    let fetch = |p: usize| fetched(records, p);
    let count = opts.total((low..high).rev(), fetch);
    // Newest first: the cursor is the raw index of the next record to serve, realigned by
    // its id if records were inserted before it since.
    let end = match &opts.cursor {
        None => high,
        Some(c) => {
            let pos = if records.get(c.pos).is_some_and(|r| r.id == c.anchor) {
                c.pos
            } else {
                records
                    .iter()
                    .rposition(|r| r.id == c.anchor)
                    .unwrap_or(c.pos)
            };
            (pos + 1).min(high)
        }
    };
    // Written while the records are read: the page answers them without a copy.
    let scan = opts.scan((low..end.max(low)).rev(), fetch);
    opts.answer(req, opts.context(req, log.set()), scan, count)
}
