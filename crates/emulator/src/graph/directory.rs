//! Users and groups: list, get, manager, memberOf, members (direct and transitive).
//! Only live objects are visible; tombstones are for delta alone.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::odata::{self, Fetched, OverMax, Resource};
use super::{GraphRequest, GraphResponse, graph_error};
use crate::json::{GROUP_DEFAULT_PROPERTIES, USER_DEFAULT_PROPERTIES};
use crate::model::{Directory, Member, MemberKind, ObjState};
use crate::state::State;

/// Application permissions that read users (user-list: least privileged first).
const USER_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadBasic.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// Permissions that read groups and memberships (group-list, group-list-members).
const GROUP_READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// `signInActivity` also needs the audit log permission (user resource, signInActivity).
const SIGN_IN_ACTIVITY_READ: &[&str] = &["AuditLog.Read.All"];

/// The largest page when `signInActivity` is selected or filtered (user-list).
const SIGN_IN_ACTIVITY_MAX_TOP: usize = 120;

/// The user properties Graph v1.0 documents (those the model has no field for answer null).
const USER_PROPERTIES: &[&str] = &[
    "id",
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
    "accountEnabled",
    "department",
    "companyName",
    "city",
    "country",
    "usageLocation",
    "employeeId",
    "mailNickname",
    "userType",
    "createdDateTime",
    "deletedDateTime",
    "signInActivity",
    "ageGroup",
    "assignedLicenses",
    "assignedPlans",
    "consentProvidedForMinor",
    "creationType",
    "employeeHireDate",
    "employeeLeaveDateTime",
    "employeeOrgData",
    "employeeType",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "faxNumber",
    "identities",
    "imAddresses",
    "isResourceAccount",
    "lastPasswordChangeDateTime",
    "legalAgeGroupClassification",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesExtensionAttributes",
    "onPremisesImmutableId",
    "onPremisesLastSyncDateTime",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "otherMails",
    "passwordPolicies",
    "postalCode",
    "preferredDataLocation",
    "provisionedPlans",
    "proxyAddresses",
    "securityIdentifier",
    "showInAddressList",
    "signInSessionsValidFromDateTime",
    "state",
    "streetAddress",
];

const USERS: Resource = Resource {
    type_name: "microsoft.graph.user",
    entity: "User",
    properties: USER_PROPERTIES,
    default_top: 100,
    max_top: 999,
    over_max: OverMax::Reject,
    expandable: &["manager"],
    orderable: &["displayName", "userPrincipalName", "createdDateTime"],
    directory: true,
};

const GROUPS: Resource = Resource {
    type_name: "microsoft.graph.group",
    entity: "Group",
    properties: GROUP_DEFAULT_PROPERTIES,
    default_top: 100,
    max_top: 999,
    over_max: OverMax::Reject,
    expandable: &[],
    orderable: &["displayName", "createdDateTime"],
    directory: true,
};

/// Members are users or groups: user properties, and group ones through `extra`.
const DIRECTORY_OBJECTS: Resource = Resource {
    type_name: "microsoft.graph.directoryObject",
    entity: "DirectoryObject",
    properties: USER_PROPERTIES,
    default_top: 100,
    max_top: 999,
    over_max: OverMax::Reject,
    expandable: &[],
    orderable: &[],
    directory: true,
};

fn not_found(what: &str) -> GraphResponse {
    graph_error(
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{what}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

/// A property set through the control API (kept in `extra`) on any user.
fn user_extra(dir: &Directory, name: &str) -> Option<String> {
    dir.users.iter().find_map(|u| {
        u.extra
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .cloned()
    })
}

fn group_extra(dir: &Directory, name: &str) -> Option<String> {
    GROUP_DEFAULT_PROPERTIES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(name))
        .map(|p| (*p).to_owned())
        .or_else(|| {
            dir.groups.iter().find_map(|g| {
                g.extra
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(name))
                    .cloned()
            })
        })
}

fn user_fetched(
    dir: &Directory,
    idx: usize,
    activity: bool,
    typed: bool,
) -> Option<Fetched<'static>> {
    user_fetched_only(dir, idx, activity, typed, None)
}

/// [`user_fetched`] with only the properties `only` names, when it names them (see
/// [`odata::Options::only_selected`]).
fn user_fetched_only(
    dir: &Directory,
    idx: usize,
    activity: bool,
    typed: bool,
    only: Option<&[String]>,
) -> Option<Fetched<'static>> {
    let u = dir.users.get(idx)?;
    if u.state != ObjState::Active {
        return None;
    }
    let mut object = match only {
        Some(names) => crate::json::user_properties(u, |k| names.iter().any(|n| n == k)),
        None => crate::json::user(u),
    };
    if activity {
        object.insert("signInActivity".into(), crate::json::sign_in_activity(u));
    }
    Some(Fetched {
        object: Cow::Owned(object),
        id: u.id.clone(),
        defaults: USER_DEFAULT_PROPERTIES,
        odata_type: typed.then_some(MemberKind::User.odata_type()),
    })
}

/// Adds `manager` to a user when `$expand=manager` asked for it (absent without one).
fn with_manager(
    dir: &Directory,
    opts: &odata::Options,
    f: Option<Fetched<'static>>,
) -> Option<Fetched<'static>> {
    let mut f = f?;
    let Some((_, select)) = &opts.expand else {
        return Some(f);
    };
    let manager = dir
        .user_idx(&f.id)
        .and_then(|i| dir.users[i as usize].manager)
        .and_then(|m| user_fetched(dir, m as usize, false, true));
    if let Some(m) = manager {
        let mut out = Map::new();
        out.insert(
            "@odata.type".into(),
            Value::String(MemberKind::User.odata_type().to_owned()),
        );
        let names: Vec<&str> = match select {
            Some(names) => names.iter().map(String::as_str).collect(),
            None => USER_DEFAULT_PROPERTIES.to_vec(),
        };
        for name in names {
            let v = m.object.get(name).cloned().unwrap_or(Value::Null);
            out.insert(name.to_owned(), v);
        }
        f.object
            .to_mut()
            .insert("manager".into(), Value::Object(out));
    }
    Some(f)
}

fn group_fetched(dir: &Directory, idx: usize, typed: bool) -> Option<Fetched<'static>> {
    let g = dir.groups.get(idx)?;
    if g.state != ObjState::Active {
        return None;
    }
    Some(Fetched {
        object: Cow::Owned(crate::json::group(g)),
        id: g.id.clone(),
        defaults: GROUP_DEFAULT_PROPERTIES,
        odata_type: typed.then_some(MemberKind::Group.odata_type()),
    })
}

fn member_fetched(dir: &Directory, member: Member, activity: bool) -> Option<Fetched<'static>> {
    match member.kind {
        MemberKind::User => user_fetched(dir, member.idx as usize, activity, true),
        MemberKind::Group => group_fetched(dir, member.idx as usize, true),
    }
}

/// Whether the caller asked for `signInActivity`; if so it needs `AuditLog.Read.All` too.
fn sign_in_activity(caller: &Caller, opts: &mut odata::Options) -> Result<bool, GraphResponse> {
    if !(opts.selects("signInActivity") || opts.filters_on("signInActivity")) {
        return Ok(false);
    }
    caller.require(SIGN_IN_ACTIVITY_READ)?;
    // "signInActivity supports $filter (eq, ne, not, ge, le) but not with any other
    // filterable properties" (user-list).
    if let Some(filter) = &opts.filter
        && filter.mentions("signInActivity")
        && filter.mentions_other_than("signInActivity")
    {
        return Err(graph_error(
            400,
            "Request_UnsupportedQuery",
            "Unsupported or invalid query filter clause specified for property 'signInActivity' of resource 'User'.",
        ));
    }
    opts.top = opts.top.min(SIGN_IN_ACTIVITY_MAX_TOP);
    Ok(true)
}

/// Where a page of a computed list resumes: the cursor's position, moved to its anchor if
/// the list changed since the skiptoken was issued.
fn resume(opts: &odata::Options, ids: impl Fn(usize) -> Option<String>, len: usize) -> usize {
    let Some(c) = &opts.cursor else {
        return 0;
    };
    if ids(c.pos).as_deref() == Some(c.anchor.as_str()) {
        return c.pos;
    }
    (0..len)
        .find(|&i| ids(i).as_deref() == Some(c.anchor.as_str()))
        .unwrap_or(c.pos)
}

macro_rules! try_graph {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return response,
        }
    };
}

/// `GET /users`.
pub(crate) fn list_users(state: &State, caller: &Caller, req: &GraphRequest) -> GraphResponse {
    try_graph!(caller.require(USER_READ));
    let lifetime = state.faults().page_token_lifetime;
    let world = state.read();
    let dir = &world.tenants[caller.tenant_pos].dir;
    let extra = |name: &str| user_extra(dir, name);
    let mut opts = try_graph!(odata::parse(
        req,
        &USERS,
        &extra,
        &caller.tenant_id,
        lifetime
    ));
    let activity = try_graph!(sign_in_activity(caller, &mut opts));
    let only = opts.only_selected();
    let fetch =
        |i: usize| with_manager(dir, &opts, user_fetched_only(dir, i, activity, false, only));
    let key = |i: usize, property: &str| {
        let u = dir.users.get(i).filter(|u| u.state == ObjState::Active)?;
        Some(match property {
            "displayName" => Some(u.display_name.clone()),
            "userPrincipalName" => Some(u.user_principal_name.clone()),
            _ => Some(crate::json::iso(u.created_date_time)),
        })
    };
    let id_at = |i: usize| Some(dir.users.get(i)?.id.clone());
    let (scan, count) = page(&opts, dir.users.len(), fetch, key, id_at);
    drop(world);
    opts.answer(req, opts.context(req, "users"), scan, count)
}

/// One page of a top-level collection (users, groups): in storage order from the cursor
/// (O(page)), or with `$orderby` in sorted order, resumed at the cursor's anchor.
fn page(
    opts: &odata::Options,
    len: usize,
    fetch: impl Fn(usize) -> Option<Fetched<'static>> + Copy,
    key: impl Fn(usize, &str) -> Option<Option<String>>,
    id_at: impl Fn(usize) -> Option<String>,
) -> (odata::Scan<'static>, Option<usize>) {
    match opts.ordered(len, key) {
        None => {
            let count = opts.total(0..len, fetch);
            let start = opts.cursor.as_ref().map_or(0, |c| c.pos);
            (opts.scan(start..len, fetch), count)
        }
        Some(order) => {
            let fetch = |p: usize| order.get(p).and_then(|&i| fetch(i));
            let count = opts.total(0..order.len(), fetch);
            let start = resume(opts, |p| order.get(p).and_then(|&i| id_at(i)), order.len());
            (opts.scan(start..order.len(), fetch), count)
        }
    }
}

/// `GET /users/{id | userPrincipalName}` (and `GET /users/$count`).
pub(crate) fn get_user(
    state: &State,
    caller: &Caller,
    req: &GraphRequest,
    id: &str,
) -> GraphResponse {
    try_graph!(caller.require(USER_READ));
    if id == "$count" {
        return count_users(state, caller, req);
    }
    let lifetime = state.faults().page_token_lifetime;
    let world = state.read();
    let dir = &world.tenants[caller.tenant_pos].dir;
    let extra = |name: &str| user_extra(dir, name);
    let mut opts = try_graph!(odata::parse(
        req,
        &USERS,
        &extra,
        &caller.tenant_id,
        lifetime
    ));
    let activity = try_graph!(sign_in_activity(caller, &mut opts));
    let Some(idx) = dir.live_user(id) else {
        return not_found(id);
    };
    let Some(f) = with_manager(dir, &opts, user_fetched(dir, idx as usize, activity, false)) else {
        return not_found(id);
    };
    let mut body = opts.project(f.object.into_owned(), f.defaults, None);
    body["@odata.context"] = json!(format!("{}/$entity", opts.context(req, "users")));
    GraphResponse::ok(body)
}

/// `GET /users/$count`: needs `ConsistencyLevel: eventual` (aad-advanced-queries).
fn count_users(state: &State, caller: &Caller, req: &GraphRequest) -> GraphResponse {
    if !odata::eventual(req) {
        return graph_error(
            400,
            "Request_BadRequest",
            "$count is not currently supported.",
        );
    }
    let lifetime = state.faults().page_token_lifetime;
    let world = state.read();
    let dir = &world.tenants[caller.tenant_pos].dir;
    let extra = |name: &str| user_extra(dir, name);
    let opts = try_graph!(odata::parse(
        req,
        &USERS,
        &extra,
        &caller.tenant_id,
        lifetime
    ));
    let activity = opts.filters_on("signInActivity");
    if activity {
        try_graph!(caller.require(SIGN_IN_ACTIVITY_READ));
    }
    let n = opts.count_matches(0..dir.users.len(), |i| {
        user_fetched(dir, i, activity, false)
    });
    GraphResponse::ok(json!(n))
}

/// `GET /users/{id}/manager`.
pub(crate) fn get_manager(
    state: &State,
    caller: &Caller,
    req: &GraphRequest,
    id: &str,
) -> GraphResponse {
    try_graph!(caller.require(USER_READ));
    let lifetime = state.faults().page_token_lifetime;
    let world = state.read();
    let dir = &world.tenants[caller.tenant_pos].dir;
    let extra = |name: &str| user_extra(dir, name);
    let opts = try_graph!(odata::parse(
        req,
        &USERS,
        &extra,
        &caller.tenant_id,
        lifetime
    ));
    let Some(idx) = dir.live_user(id) else {
        return not_found(id);
    };
    let manager = dir.users[idx as usize]
        .manager
        .and_then(|m| user_fetched(dir, m as usize, false, true));
    let Some(f) = manager else {
        return not_found("manager");
    };
    let mut body = opts.project(f.object.into_owned(), f.defaults, f.odata_type);
    body["@odata.context"] = json!(format!(
        "{}/$metadata#directoryObjects/$entity",
        req.base_url
    ));
    GraphResponse::ok(body)
}

/// `GET /users/{id}/memberOf` and `/transitiveMemberOf`: the groups, typed.
pub(crate) fn member_of(
    state: &State,
    caller: &Caller,
    req: &GraphRequest,
    id: &str,
    transitive: bool,
) -> GraphResponse {
    try_graph!(caller.require(GROUP_READ));
    let lifetime = state.faults().page_token_lifetime;
    let world = state.read();
    let dir = &world.tenants[caller.tenant_pos].dir;
    let extra = |name: &str| group_extra(dir, name);
    let opts = try_graph!(odata::parse(
        req,
        &GROUPS,
        &extra,
        &caller.tenant_id,
        lifetime
    ));
    let Some(idx) = dir.live_user(id) else {
        return not_found(id);
    };
    let member = Member {
        kind: MemberKind::User,
        idx,
    };
    let groups = if transitive {
        dir.transitive_groups_of(member)
    } else {
        dir.groups_of(member)
    };
    let fetch = |pos: usize| {
        groups
            .get(pos)
            .and_then(|&g| group_fetched(dir, g as usize, true))
    };
    let id_at = |pos: usize| groups.get(pos).map(|&g| dir.groups[g as usize].id.clone());
    let count = opts.total(0..groups.len(), fetch);
    let start = resume(&opts, id_at, groups.len());
    let scan = opts.scan(start..groups.len(), fetch);
    drop(world);
    opts.answer(req, opts.context(req, "directoryObjects"), scan, count)
}

/// `GET /groups`.
pub(crate) fn list_groups(state: &State, caller: &Caller, req: &GraphRequest) -> GraphResponse {
    try_graph!(caller.require(GROUP_READ));
    let lifetime = state.faults().page_token_lifetime;
    let world = state.read();
    let dir = &world.tenants[caller.tenant_pos].dir;
    let extra = |name: &str| group_extra(dir, name);
    let opts = try_graph!(odata::parse(
        req,
        &GROUPS,
        &extra,
        &caller.tenant_id,
        lifetime
    ));
    let fetch = |i: usize| group_fetched(dir, i, false);
    let key = |i: usize, property: &str| {
        let g = dir.groups.get(i).filter(|g| g.state == ObjState::Active)?;
        Some(match property {
            "displayName" => Some(g.display_name.clone()),
            _ => Some(crate::json::iso(g.created_date_time)),
        })
    };
    let id_at = |i: usize| Some(dir.groups.get(i)?.id.clone());
    let (scan, count) = page(&opts, dir.groups.len(), fetch, key, id_at);
    drop(world);
    opts.answer(req, opts.context(req, "groups"), scan, count)
}

/// `GET /groups/{id}` (and `GET /groups/$count`).
pub(crate) fn get_group(
    state: &State,
    caller: &Caller,
    req: &GraphRequest,
    id: &str,
) -> GraphResponse {
    try_graph!(caller.require(GROUP_READ));
    let lifetime = state.faults().page_token_lifetime;
    let world = state.read();
    let dir = &world.tenants[caller.tenant_pos].dir;
    let extra = |name: &str| group_extra(dir, name);
    let opts = try_graph!(odata::parse(
        req,
        &GROUPS,
        &extra,
        &caller.tenant_id,
        lifetime
    ));
    if id == "$count" {
        if !odata::eventual(req) {
            return graph_error(
                400,
                "Request_BadRequest",
                "$count is not currently supported.",
            );
        }
        let n = opts.count_matches(0..dir.groups.len(), |i| group_fetched(dir, i, false));
        return GraphResponse::ok(json!(n));
    }
    let Some(f) = dir
        .live_group(id)
        .and_then(|idx| group_fetched(dir, idx as usize, false))
    else {
        return not_found(id);
    };
    let mut body = opts.project(f.object.into_owned(), f.defaults, None);
    body["@odata.context"] = json!(format!("{}/$entity", opts.context(req, "groups")));
    GraphResponse::ok(body)
}

/// `GET /groups/{id}/members` and `/transitiveMembers`: users and groups, each typed and
/// with its type's default properties.
pub(crate) fn members(
    state: &State,
    caller: &Caller,
    req: &GraphRequest,
    id: &str,
    transitive: bool,
) -> GraphResponse {
    try_graph!(caller.require(GROUP_READ));
    let lifetime = state.faults().page_token_lifetime;
    let world = state.read();
    let dir = &world.tenants[caller.tenant_pos].dir;
    let extra = |name: &str| user_extra(dir, name).or_else(|| group_extra(dir, name));
    let mut opts = try_graph!(odata::parse(
        req,
        &DIRECTORY_OBJECTS,
        &extra,
        &caller.tenant_id,
        lifetime
    ));
    let activity = try_graph!(sign_in_activity(caller, &mut opts));
    let Some(gidx) = dir.live_group(id) else {
        return not_found(id);
    };
    let list: Vec<Member> = if transitive {
        dir.transitive_members_of(gidx)
    } else {
        dir.groups[gidx as usize]
            .members
            .iter()
            .copied()
            .filter(|&m| dir.member_live(m))
            .collect()
    };
    let fetch = |pos: usize| {
        list.get(pos)
            .and_then(|&m| member_fetched(dir, m, activity))
    };
    let id_at = |pos: usize| list.get(pos).map(|&m| dir.member_id(m).to_owned());
    let count = opts.total(0..list.len(), fetch);
    let start = resume(&opts, id_at, list.len());
    let scan = opts.scan(start..list.len(), fetch);
    drop(world);
    opts.answer(req, opts.context(req, "directoryObjects"), scan, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_defaults_are_known_properties() {
        for p in USER_DEFAULT_PROPERTIES {
            assert!(USER_PROPERTIES.contains(p), "{p}");
        }
    }
}
