//! Delta query for users and groups (`/users/delta`, `/groups/delta`), as Microsoft
//! documents it in "Use delta query to track changes in Microsoft Graph data", "user: delta",
//! "group: delta" and "Get incremental changes to groups".
//!
//! A round starts with an initial request (every live object) or a `$deltatoken` (objects
//! whose `version` is above the token's). Pages are linked by `@odata.nextLink` with an opaque
//! `$skiptoken`; the last page carries `@odata.deltaLink` with an opaque `$deltatoken` holding
//! the tenant's change counter at the start of the round, so changes made while a round is
//! being paged are replayed by the next round rather than lost. Tokens are HMAC-signed JSON:
//! a tampered, foreign or expired token gets `400 syncStateNotFound`; a token older than the
//! tenant's `delta_floor` gets `410 Gone` with a `Location` to start over.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::{GraphRequest, GraphResponse, graph_error};
use crate::json;
use crate::model::{Directory, Member, MemberKind, ObjState};
use crate::state::State;

/// Page size when the client sends no `Prefer: odata.maxpagesize` (Graph's default page size
/// for directory objects).
const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest page Graph serves for directory objects (`$top` accepts 1 to 999).
const MAX_PAGE_SIZE: usize = 999;

const USERS_PERMISSIONS: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const GROUPS_PERMISSIONS: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// `GET /users/delta`.
pub(crate) fn users(state: &State, caller: &Caller, req: &GraphRequest) -> GraphResponse {
    if let Err(denied) = caller.require(USERS_PERMISSIONS) {
        return denied;
    }
    run(state, caller, req, Kind::Users)
}

/// `GET /groups/delta`.
pub(crate) fn groups(state: &State, caller: &Caller, req: &GraphRequest) -> GraphResponse {
    if let Err(denied) = caller.require(GROUPS_PERMISSIONS) {
        return denied;
    }
    run(state, caller, req, Kind::Groups)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    #[serde(rename = "u")]
    Users,
    #[serde(rename = "g")]
    Groups,
}

impl Kind {
    fn segment(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Groups => "groups",
        }
    }
}

/// What a `$skiptoken` or `$deltatoken` carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Token {
    /// `s` (skiptoken, a page of a round) or `d` (deltatoken, the start of the next round).
    p: char,
    /// Users or groups.
    k: Kind,
    /// The tenant id.
    t: String,
    /// `$select`ed properties, canonical names; `None`: the default set.
    s: Option<Vec<String>>,
    /// `$filter=id eq '…' or …`: the only objects tracked; `None`: all.
    #[serde(default)]
    q: Option<Vec<String>>,
    /// Whether `members@delta` (groups) or `manager@delta` (users) is tracked.
    n: bool,
    /// Initial round (every live object) rather than changes since `f`.
    i: bool,
    /// Changes since this version (deltatoken: the next round's start).
    f: u64,
    /// The version when this round started (skiptoken only).
    u: u64,
    /// Resume at this object index (skiptoken only).
    c: u32,
    /// Resume after this member key within object `c` (skiptoken only).
    m: Option<(u8, u32)>,
    /// Page size.
    z: usize,
    /// Issued at, unix seconds.
    at: i64,
}

fn signing_key(state: &State) -> ring::hmac::Key {
    let mut material = b"tenantlink-emulator delta state token\0".to_vec();
    material.extend_from_slice(&state.config.seed.to_le_bytes());
    material.extend_from_slice(state.https_url.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA256, &material);
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, digest.as_ref())
}

fn encode(state: &State, token: &Token) -> String {
    let mut bytes = serde_json::to_vec(token).expect("a token serializes");
    let tag = ring::hmac::sign(&signing_key(state), &bytes);
    bytes.extend_from_slice(tag.as_ref());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode(state: &State, text: &str) -> Option<Token> {
    let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
    let split = bytes.len().checked_sub(32)?;
    let (payload, tag) = bytes.split_at(split);
    ring::hmac::verify(&signing_key(state), payload, tag).ok()?;
    serde_json::from_slice(payload).ok()
}

fn sync_state_not_found() -> GraphResponse {
    graph_error(
        400,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    )
}

fn unsupported(message: &str) -> GraphResponse {
    graph_error(400, "Request_UnsupportedQuery", message)
}

/// The page size asked for with `Prefer: odata.maxpagesize=N`, clamped to what Graph serves.
fn preferred_page_size(req: &GraphRequest) -> Option<usize> {
    let prefer = req.header("prefer")?;
    prefer.split(',').find_map(|part| {
        let (name, value) = part.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("odata.maxpagesize") {
            return None;
        }
        let n: usize = value.trim().trim_matches('"').parse().ok()?;
        Some(n.clamp(1, MAX_PAGE_SIZE))
    })
}

/// The properties a `$select` may name, canonical spelling.
fn selectable(dir: &Directory, kind: Kind) -> Vec<String> {
    let mut names: Vec<String> = match kind {
        Kind::Users => json::USER_DEFAULT_PROPERTIES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        Kind::Groups => json::GROUP_DEFAULT_PROPERTIES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    };
    let sample = match kind {
        Kind::Users => dir.users.first().map(json::user),
        Kind::Groups => dir.groups.first().map(json::group),
    };
    for key in sample
        .into_iter()
        .flat_map(|m| m.into_iter().map(|(k, _)| k))
    {
        if !names.contains(&key) {
            names.push(key);
        }
    }
    names.push(match kind {
        Kind::Users => "manager".to_owned(),
        Kind::Groups => "members".to_owned(),
    });
    names
}

/// What the initial request (or a deltaLink request that changes it) asks to track.
struct Options {
    /// `$select`ed properties, canonical names; `None`: the default set.
    select: Option<Vec<String>>,
    /// Whether `members@delta` (groups) or `manager@delta` (users) is tracked.
    tracks: bool,
    /// Objects named by `$filter=id eq '…'`; `None`: all.
    ids: Option<Vec<String>>,
}

/// The most objects a `$filter` may name (documented limit of 50).
const MAX_FILTER_IDS: usize = 50;

/// Parses the only `$filter` delta supports on users and groups: `id eq '…'` joined by `or`.
fn parse_filter(filter: &str) -> Option<Vec<String>> {
    let mut ids = Vec::new();
    let lower = filter.to_ascii_lowercase();
    let mut rest = filter.trim();
    let mut rest_lower = lower.trim();
    loop {
        let after_id = rest_lower.strip_prefix("id")?.trim_start();
        let after_eq = after_id.strip_prefix("eq")?.trim_start();
        let offset = rest_lower.len() - after_eq.len();
        let value = rest[offset..].strip_prefix('\'')?;
        let end = value.find('\'')?;
        ids.push(value[..end].to_owned());
        let consumed = rest.len() - value.len() + end + 1;
        rest = rest[consumed..].trim_start();
        rest_lower = rest_lower[consumed..].trim_start();
        if rest.is_empty() {
            return Some(ids);
        }
        let next = rest_lower.strip_prefix("or ")?;
        let skip = rest_lower.len() - next.len();
        rest = rest[skip..].trim_start();
        rest_lower = rest_lower[skip..].trim_start();
    }
}

/// Parses `$select` (and `$expand=members` for groups) and `$filter` of an initial request or
/// of a deltaLink request that changes what is tracked.
fn parse_options(
    dir: &Directory,
    kind: Kind,
    req: &GraphRequest,
) -> Result<Options, GraphResponse> {
    for option in ["$orderby", "$top", "$search", "$count"] {
        if req.query(option).is_some() {
            return Err(unsupported(&format!(
                "The query option '{option}' is not supported with delta queries on {}.",
                kind.segment()
            )));
        }
    }
    let ids = match req.query("$filter") {
        None => None,
        Some(filter) => match parse_filter(filter) {
            Some(ids) if ids.len() <= MAX_FILTER_IDS => Some(ids),
            Some(_) => {
                return Err(unsupported(&format!(
                    "A delta $filter may name at most {MAX_FILTER_IDS} objects."
                )));
            }
            None => {
                return Err(unsupported(
                    "The only $filter delta queries support is on the object id: id eq '{value}', joined by 'or'.",
                ));
            }
        },
    };
    let relationship = match kind {
        Kind::Users => "manager",
        Kind::Groups => "members",
    };
    let mut expanded = false;
    if let Some(expand) = req.query("$expand") {
        let expand = expand.trim();
        if kind == Kind::Groups && expand.eq_ignore_ascii_case("members") {
            expanded = true;
        } else {
            return Err(unsupported(&format!(
                "The query option '$expand={expand}' is not supported with delta queries on {}.",
                kind.segment()
            )));
        }
    }
    let Some(select) = req.query("$select") else {
        // The default set tracks group members (not a user's manager).
        return Ok(Options {
            select: None,
            tracks: kind == Kind::Groups,
            ids,
        });
    };
    let known = selectable(dir, kind);
    let mut chosen: Vec<String> = Vec::new();
    let mut tracks = expanded;
    for name in select.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if kind == Kind::Users && name.eq_ignore_ascii_case("signInActivity") {
            return Err(unsupported(
                "The property 'signInActivity' is not supported with delta queries on users.",
            ));
        }
        let Some(canonical) = known.iter().find(|k| k.eq_ignore_ascii_case(name)) else {
            let entity = match kind {
                Kind::Users => "user",
                Kind::Groups => "group",
            };
            return Err(graph_error(
                400,
                "Request_BadRequest",
                &format!(
                    "Could not find a property named '{name}' on type 'microsoft.graph.{entity}'."
                ),
            ));
        };
        if canonical == relationship {
            tracks = true;
        } else if !chosen.contains(canonical) {
            chosen.push(canonical.clone());
        }
    }
    Ok(Options {
        select: Some(chosen),
        tracks,
        ids,
    })
}

/// Where a round is and what it returns.
struct Round {
    kind: Kind,
    select: Option<Vec<String>>,
    tracks: bool,
    ids: Option<Vec<String>>,
    initial: bool,
    since: u64,
    upto: u64,
    cursor: u32,
    member_after: Option<(u8, u32)>,
    page_size: usize,
}

impl Round {
    /// Whether `$filter` lets this object through.
    fn admits(&self, id: &str) -> bool {
        self.ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|i| i.eq_ignore_ascii_case(id)))
    }
}

fn run(state: &State, caller: &Caller, req: &GraphRequest, kind: Kind) -> GraphResponse {
    let world = state.read();
    let tenant = &world.tenants[caller.tenant_pos];
    let dir = &tenant.dir;
    let faults = state.faults();
    let now = chrono::Utc::now().timestamp();
    let prefer_size = preferred_page_size(req);
    let skiptoken = req.query("$skiptoken");
    let deltatoken = req.query("$deltatoken").filter(|t| !t.is_empty());
    let changes_options = ["$select", "$filter", "$expand"]
        .iter()
        .any(|o| req.query(o).is_some());

    let round = if let Some(text) = skiptoken {
        if changes_options {
            return unsupported(
                "Delta queries with both $select and $skiptoken are not supported.",
            );
        }
        let Some(token) = decode(state, text).filter(|t| t.p == 's' && t.k == kind) else {
            return sync_state_not_found();
        };
        if token.t != tenant.id {
            return sync_state_not_found();
        }
        let age = u64::try_from(now - token.at).unwrap_or(0);
        if age > faults.page_token_lifetime.as_secs() {
            return graph_error(
                400,
                "Directory_ExpiredPageToken",
                "The specified page token value has expired and can no longer be included in your request.",
            );
        }
        if token.u < dir.delta_floor || (!token.i && token.f < dir.delta_floor) {
            return resync_required(req, kind, token.s.as_deref(), token.n);
        }
        Round {
            kind,
            select: token.s,
            tracks: token.n,
            ids: token.q,
            initial: token.i,
            since: token.f,
            upto: token.u,
            cursor: token.c,
            member_after: token.m,
            page_size: prefer_size.unwrap_or(token.z),
        }
    } else if let Some(text) = deltatoken {
        if text.eq_ignore_ascii_case("latest") {
            // `$deltatoken=latest`: no data, a deltaLink at the current version.
            let options = match parse_options(dir, kind, req) {
                Ok(options) => options,
                Err(response) => return response,
            };
            let token = Token {
                p: 'd',
                k: kind,
                t: tenant.id.clone(),
                s: options.select.clone(),
                q: options.ids,
                n: options.tracks,
                i: false,
                f: dir.version,
                u: dir.version,
                c: 0,
                m: None,
                z: prefer_size.unwrap_or(DEFAULT_PAGE_SIZE),
                at: now,
            };
            return GraphResponse::ok(json!({
                "@odata.context": context(req, kind, options.select.as_deref()),
                "@odata.deltaLink": link(req, kind, "$deltatoken", &encode(state, &token)),
                "value": [],
            }));
        }
        let Some(token) = decode(state, text).filter(|t| t.p == 'd' && t.k == kind) else {
            return sync_state_not_found();
        };
        if token.t != tenant.id {
            return sync_state_not_found();
        }
        let age = u64::try_from(now - token.at).unwrap_or(0);
        if age > faults.delta_token_lifetime.as_secs() {
            return sync_state_not_found();
        }
        if token.f < dir.delta_floor {
            return resync_required(req, kind, token.s.as_deref(), token.n);
        }
        // Query options on a deltaLink change what is tracked from now on.
        let options = if changes_options {
            match parse_options(dir, kind, req) {
                Ok(options) => options,
                Err(response) => return response,
            }
        } else {
            Options {
                select: token.s,
                tracks: token.n,
                ids: token.q,
            }
        };
        Round {
            kind,
            select: options.select,
            tracks: options.tracks,
            ids: options.ids,
            initial: false,
            since: token.f,
            upto: dir.version,
            cursor: 0,
            member_after: None,
            page_size: prefer_size.unwrap_or(token.z),
        }
    } else {
        let options = match parse_options(dir, kind, req) {
            Ok(options) => options,
            Err(response) => return response,
        };
        Round {
            kind,
            select: options.select,
            tracks: options.tracks,
            ids: options.ids,
            initial: true,
            since: 0,
            upto: dir.version,
            cursor: 0,
            member_after: None,
            page_size: prefer_size.unwrap_or(DEFAULT_PAGE_SIZE),
        }
    };
    page(state, req, dir, &tenant.id, round)
}

/// `410 Gone` with a `Location` that starts a full synchronization (documented under
/// "Synchronization reset").
fn resync_required(
    req: &GraphRequest,
    kind: Kind,
    select: Option<&[String]>,
    tracks: bool,
) -> GraphResponse {
    let mut location = format!("{}/{}/delta", req.base_url, kind.segment());
    if let Some(select) = select {
        let mut names = select.to_vec();
        if tracks {
            names.push(
                match kind {
                    Kind::Users => "manager",
                    Kind::Groups => "members",
                }
                .to_owned(),
            );
        }
        let names: Vec<String> = names
            .iter()
            .map(|n| form_urlencoded::byte_serialize(n.as_bytes()).collect())
            .collect();
        location.push_str("?$select=");
        location.push_str(&names.join(","));
    }
    graph_error(
        410,
        "resyncRequired",
        "A resync is required: the delta token is no longer valid for this tenant. Restart with a full synchronization.",
    )
    .with_header("Location", location)
}

fn context(req: &GraphRequest, kind: Kind, select: Option<&[String]>) -> String {
    match select {
        Some(names) if !names.is_empty() => format!(
            "{}/$metadata#{}({})",
            req.base_url,
            kind.segment(),
            names.join(",")
        ),
        _ => format!("{}/$metadata#{}", req.base_url, kind.segment()),
    }
}

/// A nextLink or deltaLink. Tokens are base64url, so they need no escaping, and the `$` of the
/// parameter stays literal as in Graph's own links.
fn link(req: &GraphRequest, kind: Kind, param: &str, token: &str) -> String {
    format!("{}/{}/delta?{param}={token}", req.base_url, kind.segment())
}

fn member_key(member: Member) -> (u8, u32) {
    let kind = match member.kind {
        MemberKind::User => 0,
        MemberKind::Group => 1,
    };
    (kind, member.idx)
}

/// One object of a delta page: its properties and, for a group, the `members@delta`
/// entries this page carries (added, or removed when `false`).
#[derive(Debug)]
struct Item {
    object: Value,
    members: Vec<(Member, bool)>,
}

impl Item {
    fn plain(object: Value) -> Self {
        Self {
            object,
            members: Vec::new(),
        }
    }
}

const MEMBERS_DELTA: &str = "members@delta";

/// A delta page's body, written straight from the directory: the same JSON as a
/// `serde_json` value of it (keys in the same sorted order), without building one.
struct PageJson<'a> {
    context: String,
    /// `@odata.nextLink` or `@odata.deltaLink`, and the link.
    link: (&'static str, String),
    items: &'a [Item],
    dir: &'a Directory,
}

impl Serialize for PageJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("@odata.context", &self.context)?;
        map.serialize_entry(self.link.0, &self.link.1)?;
        let items: Vec<ItemJson<'_>> = self
            .items
            .iter()
            .map(|item| ItemJson {
                item,
                dir: self.dir,
            })
            .collect();
        map.serialize_entry("value", &items)?;
        map.end()
    }
}

struct ItemJson<'a> {
    item: &'a Item,
    dir: &'a Directory,
}

impl Serialize for ItemJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(object) = &self.item.object else {
            return self.item.object.serialize(s);
        };
        if self.item.members.is_empty() {
            return object.serialize(s);
        }
        let members: Vec<MemberJson<'_>> = self
            .item
            .members
            .iter()
            .map(|&(member, added)| MemberJson {
                odata_type: member.kind.odata_type(),
                id: self.dir.member_id(member),
                added,
            })
            .collect();
        // `members@delta` in its sorted place among the object's keys.
        let mut map = s.serialize_map(Some(object.len() + 1))?;
        let mut pending = Some(members);
        for (key, value) in object {
            if key.as_str() > MEMBERS_DELTA
                && let Some(members) = pending.take()
            {
                map.serialize_entry(MEMBERS_DELTA, &members)?;
            }
            map.serialize_entry(key, value)?;
        }
        if let Some(members) = pending {
            map.serialize_entry(MEMBERS_DELTA, &members)?;
        }
        map.end()
    }
}

/// One `members@delta` entry: `{"@odata.type", "@removed": {"reason": "deleted"}, "id"}`.
struct MemberJson<'a> {
    odata_type: &'static str,
    id: &'a str,
    added: bool,
}

impl Serialize for MemberJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Reason {
            reason: &'static str,
        }
        let mut map = s.serialize_map(Some(if self.added { 2 } else { 3 }))?;
        map.serialize_entry("@odata.type", self.odata_type)?;
        if !self.added {
            map.serialize_entry("@removed", &Reason { reason: "deleted" })?;
        }
        map.serialize_entry("id", self.id)?;
        map.end()
    }
}

/// Net membership changes since a version, per group: each member once (its last change),
/// ordered by member key so that a page cursor survives concurrent changes.
fn membership_changes(dir: &Directory, since: u64) -> HashMap<u32, Vec<(Member, bool)>> {
    let start = dir.membership_log.partition_point(|e| e.version <= since);
    let mut last: HashMap<u32, HashMap<Member, bool>> = HashMap::new();
    for event in &dir.membership_log[start..] {
        last.entry(event.group)
            .or_default()
            .insert(event.member, event.added);
    }
    last.into_iter()
        .map(|(group, members)| {
            let mut list: Vec<(Member, bool)> = members.into_iter().collect();
            list.sort_by_key(|(m, _)| member_key(*m));
            (group, list)
        })
        .collect()
}

fn removed(id: &str, state: ObjState) -> Value {
    let reason = if state == ObjState::HardDeleted {
        "deleted"
    } else {
        "changed"
    };
    json!({"id": id, "@removed": {"reason": reason}})
}

/// The selected properties of `full` (moved, not copied), and its id.
fn pick(
    mut full: Map<String, Value>,
    select: Option<&[String]>,
    defaults: &[&str],
) -> Map<String, Value> {
    let mut out = Map::new();
    let id = full.remove("id").unwrap_or(Value::Null);
    match select {
        Some(names) => {
            for name in names {
                let value = full.remove(name.as_str()).unwrap_or_else(|| {
                    // Selected twice, or `id`: the value already went.
                    out.get(name.as_str()).cloned().unwrap_or(Value::Null)
                });
                out.insert(name.clone(), value);
            }
        }
        None => {
            for name in defaults {
                if let Some(v) = full.remove(*name) {
                    out.insert((*name).to_owned(), v);
                }
            }
        }
    }
    out.insert("id".into(), id);
    out
}

fn user_item(dir: &Directory, idx: usize, round: &Round) -> Value {
    let user = &dir.users[idx];
    if user.state != ObjState::Active {
        return removed(&user.id, user.state);
    }
    // Only what `pick` keeps is built.
    let keep = |k: &str| {
        k == "id"
            || match round.select.as_deref() {
                Some(names) => names.iter().any(|n| n == k),
                None => json::USER_DEFAULT_PROPERTIES.contains(&k),
            }
    };
    let mut out = pick(
        json::user_properties(user, keep),
        round.select.as_deref(),
        json::USER_DEFAULT_PROPERTIES,
    );
    if round.tracks {
        let manager: Vec<Value> = user
            .manager
            .filter(|&m| dir.users[m as usize].state == ObjState::Active)
            .map(|m| {
                json!({
                    "@odata.type": MemberKind::User.odata_type(),
                    "id": dir.users[m as usize].id,
                })
            })
            .into_iter()
            .collect();
        out.insert("manager@delta".into(), Value::Array(manager));
    }
    Value::Object(out)
}

fn page(
    state: &State,
    req: &GraphRequest,
    dir: &Directory,
    tenant_id: &str,
    round: Round,
) -> GraphResponse {
    let size = round.page_size.max(1);
    let (items, next) = match round.kind {
        Kind::Users => {
            let (users, next) = users_page(dir, &round, size);
            let items = users.into_iter().map(Item::plain).collect::<Vec<_>>();
            (items, next)
        }
        Kind::Groups => groups_page(dir, &round, size),
    };
    let now = chrono::Utc::now().timestamp();
    let (name, token) = match next {
        Some((cursor, member_after)) => (
            "@odata.nextLink",
            link(
                req,
                round.kind,
                "$skiptoken",
                &encode(
                    state,
                    &Token {
                        p: 's',
                        k: round.kind,
                        t: tenant_id.to_owned(),
                        s: round.select.clone(),
                        q: round.ids.clone(),
                        n: round.tracks,
                        i: round.initial,
                        f: round.since,
                        u: round.upto,
                        c: cursor,
                        m: member_after,
                        z: size,
                        at: now,
                    },
                ),
            ),
        ),
        None => (
            "@odata.deltaLink",
            link(
                req,
                round.kind,
                "$deltatoken",
                &encode(
                    state,
                    &Token {
                        p: 'd',
                        k: round.kind,
                        t: tenant_id.to_owned(),
                        s: round.select.clone(),
                        q: round.ids.clone(),
                        n: round.tracks,
                        i: false,
                        f: round.upto,
                        u: round.upto,
                        c: 0,
                        m: None,
                        z: size,
                        at: now,
                    },
                ),
            ),
        ),
    };
    let body = PageJson {
        context: context(req, round.kind, round.select.as_deref()),
        link: (name, token),
        items: &items,
        dir,
    };
    let mut response = GraphResponse::ok_written(&body);
    if preferred_page_size(req).is_some() {
        response = response.with_header("Preference-Applied", format!("odata.maxpagesize={size}"));
    }
    response
}

type Cursor = (u32, Option<(u8, u32)>);

fn users_page(dir: &Directory, round: &Round, size: usize) -> (Vec<Value>, Option<Cursor>) {
    let wanted = |idx: usize| {
        let user = &dir.users[idx];
        let changed = if round.initial {
            user.state == ObjState::Active
        } else {
            user.version > round.since
        };
        changed && round.admits(&user.id)
    };
    let mut value = Vec::new();
    let mut idx = round.cursor as usize;
    while idx < dir.users.len() {
        if wanted(idx) {
            if value.len() == size {
                return (value, Some((to_u32(idx), None)));
            }
            value.push(user_item(dir, idx, round));
        }
        idx += 1;
    }
    (value, None)
}

fn to_u32(idx: usize) -> u32 {
    u32::try_from(idx).expect("fewer than 2^32 objects")
}

/// A page of groups: at most `size` group objects and `size` `members@delta` entries; a group
/// whose member list does not fit is repeated on the next page with the next slice.
fn groups_page(dir: &Directory, round: &Round, size: usize) -> (Vec<Item>, Option<Cursor>) {
    let changes = if round.initial || !round.tracks {
        HashMap::new()
    } else {
        membership_changes(dir, round.since)
    };
    let mut value = Vec::new();
    let mut members_left = size;
    let mut idx = round.cursor as usize;
    let mut after = round.member_after;
    while idx < dir.groups.len() {
        let group = &dir.groups[idx];
        let group_no = to_u32(idx);
        let wanted = round.admits(&group.id)
            && if round.initial {
                group.state == ObjState::Active
            } else {
                group.version > round.since
                    || (group.state == ObjState::Active && changes.contains_key(&group_no))
            };
        if !wanted {
            idx += 1;
            after = None;
            continue;
        }
        if group.state != ObjState::Active {
            if value.len() == size {
                return (value, Some((group_no, None)));
            }
            value.push(Item::plain(removed(&group.id, group.state)));
            idx += 1;
            after = None;
            continue;
        }
        // Members still to send for this group, after the cursor.
        let pending: Vec<(Member, bool)> = if !round.tracks {
            Vec::new()
        } else if round.initial {
            let mut live: Vec<Member> = group
                .members
                .iter()
                .copied()
                .filter(|&m| dir.member_live(m))
                .collect();
            live.sort_by_key(|m| member_key(*m));
            live.into_iter().map(|m| (m, true)).collect()
        } else {
            changes.get(&group_no).cloned().unwrap_or_default()
        };
        let pending: Vec<(Member, bool)> = pending
            .into_iter()
            .filter(|(m, _)| after.is_none_or(|a| member_key(*m) > a))
            .collect();
        if value.len() == size || (!pending.is_empty() && members_left == 0) {
            return (value, Some((group_no, after)));
        }
        let item = pick(
            json::group(group),
            round.select.as_deref(),
            json::GROUP_DEFAULT_PROPERTIES,
        );
        let take = pending.len().min(members_left);
        members_left -= take;
        value.push(Item {
            object: Value::Object(item),
            members: pending[..take].to_vec(),
        });
        if take < pending.len() {
            let last = member_key(pending[take - 1].0);
            return (value, Some((group_no, Some(last))));
        }
        idx += 1;
        after = None;
    }
    (value, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> crate::model::User {
        crate::model::User::new(id.into(), id.into(), format!("{id}@t.onmicrosoft.com"))
    }

    fn group(id: &str) -> crate::model::Group {
        crate::model::Group {
            id: id.into(),
            display_name: id.into(),
            description: None,
            mail: None,
            mail_enabled: false,
            mail_nickname: id.into(),
            security_enabled: true,
            group_types: vec![],
            visibility: None,
            created_date_time: chrono::Utc::now(),
            members: vec![],
            extra: Map::new(),
            state: ObjState::Active,
            deleted_date_time: None,
            version: 0,
        }
    }

    fn round(initial: bool, since: u64, cursor: Cursor, size: usize) -> Round {
        Round {
            kind: Kind::Groups,
            select: None,
            tracks: true,
            ids: None,
            initial,
            since,
            upto: 0,
            cursor: cursor.0,
            member_after: cursor.1,
            page_size: size,
        }
    }

    /// The items as JSON values, as a page sends them.
    fn values(dir: &Directory, items: &[Item]) -> Vec<Value> {
        items
            .iter()
            .map(|item| serde_json::to_value(ItemJson { item, dir }).unwrap())
            .collect()
    }

    fn member_ids(dir: &Directory, items: &[Item]) -> Vec<String> {
        values(dir, items)
            .iter()
            .flat_map(|i| i["members@delta"].as_array().cloned().unwrap_or_default())
            .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// A page written straight from the directory is byte for byte the page built as a
    /// `serde_json` value (as the emulator answered before).
    #[test]
    fn a_page_is_the_same_json_as_its_value() {
        let mut dir = Directory::default();
        let users: Vec<u32> = (0..5)
            .map(|i| dir.push_user(user(&format!("u{i}"))))
            .collect();
        let g = dir.push_group(group("group-0001"));
        let inner = dir.push_group(group("group-0002"));
        for (i, &u) in users.iter().enumerate() {
            let member = Member {
                kind: MemberKind::User,
                idx: u,
            };
            dir.add_member(g, member);
            if i % 2 == 0 {
                dir.remove_member(g, member);
            }
        }
        dir.add_member(
            g,
            Member {
                kind: MemberKind::Group,
                idx: inner,
            },
        );
        let (items, _) = groups_page(&dir, &round(false, 0, (0, None), 100), 100);
        assert!(items.iter().any(|i| !i.members.is_empty()));
        assert!(items.iter().any(|i| i.members.iter().any(|m| !m.1)));
        let as_value = |item: &Item| {
            let mut object = item.object.clone();
            if !item.members.is_empty() {
                let entries: Vec<Value> = item
                    .members
                    .iter()
                    .map(|&(m, added)| {
                        let mut entry = json!({
                            "@odata.type": m.kind.odata_type(),
                            "id": dir.member_id(m),
                        });
                        if !added {
                            entry["@removed"] = json!({"reason": "deleted"});
                        }
                        entry
                    })
                    .collect();
                object["members@delta"] = Value::Array(entries);
            }
            object
        };
        let page = PageJson {
            context: "https://graph/v1.0/$metadata#groups".into(),
            link: (
                "@odata.nextLink",
                "https://graph/v1.0/groups/delta?$skiptoken=x".into(),
            ),
            items: &items,
            dir: &dir,
        };
        let value = json!({
            "@odata.context": page.context,
            "@odata.nextLink": page.link.1,
            "value": items.iter().map(as_value).collect::<Vec<_>>(),
        });
        assert_eq!(
            String::from_utf8(serde_json::to_vec(&page).unwrap()).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
    }

    /// A member removed before the cursor while a round is paged must not make the round
    /// skip another member.
    #[test]
    fn member_slices_survive_changes_between_pages() {
        let mut dir = Directory::default();
        let users: Vec<u32> = (0..10)
            .map(|i| dir.push_user(user(&format!("u{i}"))))
            .collect();
        let g = dir.push_group(group("group-0001"));
        for &u in &users {
            dir.add_member(
                g,
                Member {
                    kind: MemberKind::User,
                    idx: u,
                },
            );
        }
        let (first, next) = groups_page(&dir, &round(true, 0, (0, None), 3), 3);
        assert_eq!(member_ids(&dir, &first), ["u0", "u1", "u2"]);
        let next = next.expect("more pages");
        dir.remove_member(
            g,
            Member {
                kind: MemberKind::User,
                idx: users[1],
            },
        );
        let mut seen = member_ids(&dir, &first);
        let mut cursor = Some(next);
        while let Some(c) = cursor {
            let (items, after) = groups_page(&dir, &round(true, 0, c, 3), 3);
            assert!(
                items.iter().all(|i| i.object["id"] == "group-0001"),
                "the group repeats"
            );
            seen.extend(member_ids(&dir, &items));
            cursor = after;
        }
        let expected: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
        assert_eq!(seen, expected, "nothing skipped, nothing repeated");

        // Changes since a version: net per member, removals marked.
        let since = dir.version;
        dir.remove_member(
            g,
            Member {
                kind: MemberKind::User,
                idx: users[2],
            },
        );
        dir.add_member(
            g,
            Member {
                kind: MemberKind::User,
                idx: users[1],
            },
        );
        dir.remove_member(
            g,
            Member {
                kind: MemberKind::User,
                idx: users[1],
            },
        );
        let (items, next) = groups_page(&dir, &round(false, since, (0, None), 100), 100);
        assert!(next.is_none());
        let changes = values(&dir, &items)[0]["members@delta"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|m| m["@removed"]["reason"] == "deleted"));
    }

    #[test]
    fn filter_names_objects_by_id() {
        assert_eq!(
            parse_filter("id eq 'a-1' or ID EQ 'b-2'"),
            Some(vec!["a-1".to_owned(), "b-2".to_owned()])
        );
        assert_eq!(parse_filter(" id eq 'x' "), Some(vec!["x".to_owned()]));
        assert_eq!(parse_filter("displayName eq 'x'"), None);
        assert_eq!(parse_filter("id eq 'x' and id eq 'y'"), None);
        assert_eq!(parse_filter("id eq x"), None);
    }

    #[test]
    fn resync_points_at_a_fresh_round() {
        let req = GraphRequest {
            method: "GET".into(),
            path: "/groups/delta".into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            base_url: "https://127.0.0.1:1/v1.0".into(),
        };
        let answer = resync_required(&req, Kind::Groups, Some(&["displayName".to_owned()]), true);
        assert_eq!(answer.status, 410);
        let location = answer
            .headers
            .iter()
            .find(|(k, _)| k == "Location")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            location,
            Some("https://127.0.0.1:1/v1.0/groups/delta?$select=displayName,members")
        );
    }

    #[test]
    fn page_size_preference_is_read_and_clamped() {
        let mut req = GraphRequest {
            method: "GET".into(),
            path: "/users/delta".into(),
            query: Vec::new(),
            headers: vec![(
                "prefer".into(),
                "return=minimal, odata.maxpagesize=5".into(),
            )],
            body: None,
            base_url: "https://127.0.0.1/v1.0".into(),
        };
        assert_eq!(preferred_page_size(&req), Some(5));
        req.headers = vec![("prefer".into(), "odata.maxpagesize=100000".into())];
        assert_eq!(preferred_page_size(&req), Some(MAX_PAGE_SIZE));
        req.headers.clear();
        assert_eq!(preferred_page_size(&req), None);
    }
}
