//! The control API under `/_emulator/`: not part of Microsoft's surface. Tests and demos use
//! it to change a tenant (so delta has something to report), set faults, and read the whole
//! state back as ground truth.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::ThrottleMode;
use crate::json::{self, PatchError};
use crate::model::{AuditRecord, Group, ManagedDevice, Member, MemberKind, ObjState, User};
use crate::rng::random_guid;
use crate::state::State;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(describe))
        .route("/faults", web::get().to(get_faults))
        .route("/faults", web::put().to(set_faults))
        .route("/faults", web::patch().to(set_faults))
        .route("/tenants/{tenant}/state", web::get().to(tenant_state))
        .route("/tenants/{tenant}/users", web::post().to(create_user))
        .route("/tenants/{tenant}/users/{id}", web::patch().to(update_user))
        .route(
            "/tenants/{tenant}/users/{id}",
            web::delete().to(|s, p, q| delete_object(Kind::User, s, p, q)),
        )
        .route(
            "/tenants/{tenant}/users/{id}/restore",
            web::post().to(|s, p| restore_object(Kind::User, s, p)),
        )
        .route("/tenants/{tenant}/groups", web::post().to(create_group))
        .route(
            "/tenants/{tenant}/groups/{id}",
            web::patch().to(update_group),
        )
        .route(
            "/tenants/{tenant}/groups/{id}",
            web::delete().to(|s, p, q| delete_object(Kind::Group, s, p, q)),
        )
        .route(
            "/tenants/{tenant}/groups/{id}/restore",
            web::post().to(|s, p| restore_object(Kind::Group, s, p)),
        )
        .route(
            "/tenants/{tenant}/groups/{id}/members",
            web::post().to(add_member),
        )
        .route(
            "/tenants/{tenant}/groups/{id}/members/{member}",
            web::delete().to(remove_member),
        )
        .route(
            "/tenants/{tenant}/managedDevices",
            web::post().to(create_device),
        )
        .route(
            "/tenants/{tenant}/managedDevices/{id}",
            web::patch().to(update_device),
        )
        .route(
            "/tenants/{tenant}/managedDevices/{id}",
            web::delete().to(delete_device),
        )
        .route("/tenants/{tenant}/signIns", web::post().to(create_sign_in))
        .route("/tenants/{tenant}/churn", web::post().to(churn))
        .route(
            "/tenants/{tenant}/apps/{client_id}/grant",
            web::put().to(set_grant),
        )
        .route("/tenants/{tenant}/tokens", web::post().to(mint_token))
        .route(
            "/tenants/{tenant}/revoke-sessions",
            web::post().to(revoke_sessions),
        )
        .route(
            "/apps/{client_id}/certificates",
            web::post().to(add_certificate),
        );
}

/// A control API error: `{"error": {"code", "message"}}` with a 4xx status.
fn error(status: u16, code: &str, message: impl Into<String>) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status).json(json!({"error": {"code": code, "message": message.into()}}))
}

fn no_tenant(tenant: &str) -> HttpResponse {
    error(404, "TenantNotFound", format!("no tenant `{tenant}`"))
}

/// Runs `f` on a tenant's directory under the write lock; 404 for an unknown tenant.
fn in_tenant(
    state: &State,
    tenant: &str,
    f: impl FnOnce(&mut crate::model::Directory) -> HttpResponse,
) -> HttpResponse {
    let mut world = state.write();
    match world.tenant_mut(tenant) {
        Some(t) => f(&mut t.dir),
        None => no_tenant(tenant),
    }
}

fn not_object() -> HttpResponse {
    error(400, "BadRequest", "the body must be a JSON object")
}

fn bad(err: PatchError) -> HttpResponse {
    error(400, "BadRequest", err.0)
}

async fn describe(state: web::Data<State>) -> HttpResponse {
    let world = state.read();
    let tenants: Vec<Value> = world
        .tenants
        .iter()
        .map(|t| {
            json!({
                "tenantId": t.id,
                "domain": t.domain,
                "users": t.dir.users.iter().filter(|u| u.state == ObjState::Active).count(),
                "groups": t.dir.groups.iter().filter(|g| g.state == ObjState::Active).count(),
                "managedDevices": t.dir.devices.iter().filter(|d| !d.deleted).count(),
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({"seed": state.config.seed, "tenants": tenants}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct FaultsRequest {
    rate_429: Option<f64>,
    rate_500: Option<f64>,
    rate_503: Option<f64>,
    drop_rate: Option<f64>,
    latency_ms: Option<u64>,
    token_lifetime_secs: Option<u64>,
    delta_token_lifetime_secs: Option<u64>,
    page_token_lifetime_secs: Option<u64>,
    throttling: Option<String>,
}

fn faults_json(state: &State) -> Value {
    let f = state.faults();
    json!({
        "rate_429": f.rate_429,
        "rate_500": f.rate_500,
        "rate_503": f.rate_503,
        "drop_rate": f.drop_rate,
        "latency_ms": f.latency.as_millis() as u64,
        "token_lifetime_secs": f.token_lifetime.as_secs(),
        "delta_token_lifetime_secs": f.delta_token_lifetime.as_secs(),
        "page_token_lifetime_secs": f.page_token_lifetime.as_secs(),
        "throttling": match f.throttling {
            ThrottleMode::Off => "off",
            ThrottleMode::Realistic => "realistic",
            ThrottleMode::Aggressive => "aggressive",
        },
    })
}

async fn get_faults(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(faults_json(&state))
}

async fn set_faults(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let req: FaultsRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => return error(400, "BadRequest", format!("invalid faults: {e}")),
    };
    for (name, rate) in [
        ("rate_429", req.rate_429),
        ("rate_500", req.rate_500),
        ("rate_503", req.rate_503),
        ("drop_rate", req.drop_rate),
    ] {
        if let Some(rate) = rate
            && !(0.0..=1.0).contains(&rate)
        {
            return error(
                400,
                "BadRequest",
                format!("`{name}` must be between 0 and 1"),
            );
        }
    }
    let throttling = match req.throttling.as_deref().map(ThrottleMode::named) {
        Some(None) => {
            return error(
                400,
                "BadRequest",
                "`throttling` is off, realistic or aggressive",
            );
        }
        Some(Some(mode)) => Some(mode),
        None => None,
    };
    if req.token_lifetime_secs == Some(0) {
        return error(
            400,
            "BadRequest",
            "`token_lifetime_secs` must be at least 1",
        );
    }
    {
        let mut f = state
            .faults
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.rate_429 = req.rate_429.unwrap_or(f.rate_429);
        f.rate_500 = req.rate_500.unwrap_or(f.rate_500);
        f.rate_503 = req.rate_503.unwrap_or(f.rate_503);
        f.drop_rate = req.drop_rate.unwrap_or(f.drop_rate);
        if let Some(ms) = req.latency_ms {
            f.latency = Duration::from_millis(ms);
        }
        if let Some(secs) = req.token_lifetime_secs {
            f.token_lifetime = Duration::from_secs(secs);
        }
        if let Some(secs) = req.delta_token_lifetime_secs {
            f.delta_token_lifetime = Duration::from_secs(secs);
        }
        if let Some(secs) = req.page_token_lifetime_secs {
            f.page_token_lifetime = Duration::from_secs(secs);
        }
        if let Some(mode) = throttling {
            f.throttling = mode;
        }
    }
    HttpResponse::Ok().json(faults_json(&state))
}

#[derive(Deserialize)]
struct StateQuery {
    #[serde(default)]
    include_audit: bool,
}

async fn tenant_state(
    state: web::Data<State>,
    path: web::Path<String>,
    query: web::Query<StateQuery>,
) -> HttpResponse {
    let world = state.read();
    match world.tenant(&path) {
        Some(t) => {
            let mut body = json::tenant_state(&t.dir, query.include_audit);
            body["tenantId"] = json!(t.id);
            body["domain"] = json!(t.domain);
            HttpResponse::Ok().json(body)
        }
        None => no_tenant(&path),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChurnRequest {
    /// Share of objects to change, 0 < fraction <= 1.
    fraction: f64,
    #[serde(default)]
    seed: u64,
}

/// `POST /_emulator/tenants/{tenant}/churn {"fraction": 0.01, "seed": 7}`: changes that
/// share of the tenant at once (see [`crate::churn::churn`]) and says what changed.
async fn churn(
    state: web::Data<State>,
    path: web::Path<String>,
    body: web::Json<ChurnRequest>,
) -> HttpResponse {
    if !(body.fraction > 0.0 && body.fraction <= 1.0) {
        return error(400, "BadRequest", "fraction must be in (0, 1]");
    }
    in_tenant(&state, &path, |dir| {
        let report = crate::churn::churn(dir, body.fraction, body.seed, Utc::now());
        HttpResponse::Ok().json(report)
    })
}

fn blank_user(id: String) -> User {
    User::new(id, String::new(), String::new())
}

async fn create_user(
    state: web::Data<State>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    let Some(patch) = body.as_object() else {
        return not_object();
    };
    in_tenant(&state, &path, |dir| {
        let id = patch
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(random_guid, str::to_owned);
        if dir.user_idx(&id).is_some() {
            return error(409, "Conflict", format!("a user with id {id} exists"));
        }
        let mut user = blank_user(id);
        if let Err(e) = json::apply_user(&mut user, patch, |m| dir.live_user(m)) {
            return bad(e);
        }
        if user.mail_nickname.is_empty() {
            user.mail_nickname = user
                .user_principal_name
                .split('@')
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        if dir.live_user(&user.user_principal_name).is_some() {
            return error(409, "Conflict", "another user has this userPrincipalName");
        }
        user.version = dir.bump();
        let idx = dir.push_user(user);
        HttpResponse::Created().json(Value::Object(json::user(&dir.users[idx as usize])))
    })
}

async fn update_user(
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> HttpResponse {
    let (tenant_id, id) = path.into_inner();
    let Some(patch) = body.as_object() else {
        return not_object();
    };
    in_tenant(&state, &tenant_id, |dir| {
        let Some(idx) = dir.live_user(&id) else {
            return error(
                404,
                "Request_ResourceNotFound",
                format!("no live user {id}"),
            );
        };
        let mut user = dir.users[idx as usize].clone();
        let old_upn = user.user_principal_name.clone();
        if let Err(e) = json::apply_user(&mut user, patch, |m| dir.live_user(m)) {
            return bad(e);
        }
        if user.manager == Some(idx) {
            return error(400, "BadRequest", "a user cannot manage themselves");
        }
        if !old_upn.eq_ignore_ascii_case(&user.user_principal_name)
            && dir.live_user(&user.user_principal_name).is_some()
        {
            return error(409, "Conflict", "another user has this userPrincipalName");
        }
        user.version = dir.bump();
        dir.users[idx as usize] = user;
        dir.reindex_upn(idx, &old_upn);
        HttpResponse::Ok().json(Value::Object(json::user(&dir.users[idx as usize])))
    })
}

/// Users and groups share their delete and restore semantics.
#[derive(Clone, Copy)]
enum Kind {
    User,
    Group,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
        }
    }

    fn find(self, dir: &crate::model::Directory, id: &str) -> Option<(u32, ObjState)> {
        match self {
            Self::User => dir.user_idx(id).map(|i| (i, dir.users[i as usize].state)),
            Self::Group => dir.group_idx(id).map(|i| (i, dir.groups[i as usize].state)),
        }
    }

    fn json(self, dir: &crate::model::Directory, idx: u32) -> Value {
        Value::Object(match self {
            Self::User => json::user(&dir.users[idx as usize]),
            Self::Group => json::group(&dir.groups[idx as usize]),
        })
    }
}

async fn delete_object(
    kind: Kind,
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    query: web::Query<DeleteQuery>,
) -> HttpResponse {
    let (tenant_id, id) = path.into_inner();
    let what = kind.name();
    in_tenant(&state, &tenant_id, |dir| {
        let Some((idx, current)) = kind.find(dir, &id) else {
            return error(404, "Request_ResourceNotFound", format!("no {what} {id}"));
        };
        let now = Utc::now();
        match (current, query.permanent, kind) {
            (ObjState::HardDeleted, _, _) | (ObjState::SoftDeleted, false, _) => {
                return error(
                    404,
                    "Request_ResourceNotFound",
                    format!("{what} {id} is already deleted"),
                );
            }
            (_, true, Kind::User) => dir.hard_delete_user(idx, now),
            (_, true, Kind::Group) => dir.hard_delete_group(idx, now),
            (ObjState::Active, false, Kind::User) => dir.soft_delete_user(idx, now),
            (ObjState::Active, false, Kind::Group) => dir.soft_delete_group(idx, now),
        }
        HttpResponse::NoContent().finish()
    })
}

async fn restore_object(
    kind: Kind,
    state: web::Data<State>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (tenant_id, id) = path.into_inner();
    in_tenant(&state, &tenant_id, |dir| {
        let restored = kind.find(dir, &id).filter(|&(idx, _)| match kind {
            Kind::User => dir.restore_user(idx),
            Kind::Group => dir.restore_group(idx),
        });
        match restored {
            Some((idx, _)) => HttpResponse::Ok().json(kind.json(dir, idx)),
            None => error(
                404,
                "Request_ResourceNotFound",
                format!("no soft-deleted {} {id}", kind.name()),
            ),
        }
    })
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    permanent: bool,
}

async fn create_group(
    state: web::Data<State>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    let Some(patch) = body.as_object() else {
        return not_object();
    };
    in_tenant(&state, &path, |dir| {
        let id = patch
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(random_guid, str::to_owned);
        if dir.group_idx(&id).is_some() {
            return error(409, "Conflict", format!("a group with id {id} exists"));
        }
        let mut group = Group {
            id,
            display_name: String::new(),
            description: None,
            mail: None,
            mail_enabled: false,
            mail_nickname: String::new(),
            security_enabled: true,
            group_types: Vec::new(),
            visibility: None,
            created_date_time: Utc::now(),
            members: Vec::new(),
            extra: Map::new(),
            state: ObjState::Active,
            deleted_date_time: None,
            version: 0,
        };
        if let Err(e) = json::apply_group(&mut group, patch) {
            return bad(e);
        }
        if group.mail_nickname.is_empty() {
            group.mail_nickname = group
                .display_name
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
        }
        // Members given at creation, as Graph's `members@odata.bind` would.
        let mut members = Vec::new();
        if let Some(ids) = patch.get("members").and_then(Value::as_array) {
            for id in ids {
                let Some(id) = id.as_str() else {
                    return error(400, "BadRequest", "`members` is an array of object ids");
                };
                match resolve_member(dir, id) {
                    Some(m) => members.push(m),
                    None => return error(400, "BadRequest", format!("no user or group {id}")),
                }
            }
        }
        group.version = dir.bump();
        let idx = dir.push_group(group);
        for member in members {
            dir.add_member(idx, member);
        }
        HttpResponse::Created().json(Value::Object(json::group(&dir.groups[idx as usize])))
    })
}

fn resolve_member(dir: &crate::model::Directory, id: &str) -> Option<Member> {
    dir.live_user(id)
        .map(|idx| Member {
            kind: MemberKind::User,
            idx,
        })
        .or_else(|| {
            dir.live_group(id).map(|idx| Member {
                kind: MemberKind::Group,
                idx,
            })
        })
}

async fn update_group(
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> HttpResponse {
    let (tenant_id, id) = path.into_inner();
    let Some(patch) = body.as_object() else {
        return not_object();
    };
    in_tenant(&state, &tenant_id, |dir| {
        let Some(idx) = dir.live_group(&id) else {
            return error(
                404,
                "Request_ResourceNotFound",
                format!("no live group {id}"),
            );
        };
        let mut group = dir.groups[idx as usize].clone();
        if let Err(e) = json::apply_group(&mut group, patch) {
            return bad(e);
        }
        group.version = dir.bump();
        dir.groups[idx as usize] = group;
        HttpResponse::Ok().json(Value::Object(json::group(&dir.groups[idx as usize])))
    })
}

async fn add_member(
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> HttpResponse {
    let (tenant_id, id) = path.into_inner();
    let Some(member_id) = body.get("id").and_then(Value::as_str) else {
        return error(
            400,
            "BadRequest",
            "the body is {\"id\": \"<user or group id>\"}",
        );
    };
    in_tenant(&state, &tenant_id, |dir| {
        let Some(group) = dir.live_group(&id) else {
            return error(
                404,
                "Request_ResourceNotFound",
                format!("no live group {id}"),
            );
        };
        let Some(member) = resolve_member(dir, member_id) else {
            return error(
                404,
                "Request_ResourceNotFound",
                format!("no user or group {member_id}"),
            );
        };
        if member.kind == MemberKind::Group
            && (member.idx == group
                || dir.transitive_members_of(member.idx).contains(&Member {
                    kind: MemberKind::Group,
                    idx: group,
                }))
        {
            return error(400, "BadRequest", "that nesting would make a cycle");
        }
        if dir.add_member(group, member) {
            HttpResponse::NoContent().finish()
        } else {
            error(
                400,
                "BadRequest",
                "One or more added object references already exist for the following modified properties: 'members'.",
            )
        }
    })
}

async fn remove_member(
    state: web::Data<State>,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    let (tenant_id, id, member_id) = path.into_inner();
    in_tenant(&state, &tenant_id, |dir| {
        let Some(group) = dir.live_group(&id) else {
            return error(
                404,
                "Request_ResourceNotFound",
                format!("no live group {id}"),
            );
        };
        let member = resolve_member(dir, &member_id);
        match member {
            Some(member) if dir.remove_member(group, member) => HttpResponse::NoContent().finish(),
            _ => error(
                404,
                "Request_ResourceNotFound",
                format!("{member_id} is not a member of {id}"),
            ),
        }
    })
}

async fn create_device(
    state: web::Data<State>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    let Some(patch) = body.as_object() else {
        return not_object();
    };
    in_tenant(&state, &path, |dir| {
        let now = Utc::now();
        let mut device = ManagedDevice {
            id: patch
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(random_guid, str::to_owned),
            device_name: String::new(),
            user_id: None,
            user_principal_name: None,
            user_display_name: None,
            email_address: None,
            operating_system: "Windows".into(),
            os_version: "10.0.22631.3007".into(),
            compliance_state: "compliant".into(),
            managed_device_owner_type: "company".into(),
            management_agent: "mdm".into(),
            enrolled_date_time: now,
            last_sync_date_time: now,
            azure_ad_device_id: random_guid(),
            azure_ad_registered: true,
            device_enrollment_type: "windowsAzureADJoin".into(),
            manufacturer: "Contoso".into(),
            model: "Virtual".into(),
            serial_number: "SN0000000000".into(),
            is_encrypted: true,
            is_supervised: false,
            jail_broken: "False".into(),
            total_storage_space_in_bytes: 0,
            free_storage_space_in_bytes: 0,
            extra: Map::new(),
            deleted: false,
        };
        if dir.device_idx(&device.id).is_some() {
            return error(
                409,
                "Conflict",
                format!("a device with id {} exists", device.id),
            );
        }
        if let Err(e) = json::apply_device(&mut device, patch) {
            return bad(e);
        }
        let idx = dir.push_device(device);
        HttpResponse::Created().json(Value::Object(json::device(&dir.devices[idx as usize])))
    })
}

async fn update_device(
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> HttpResponse {
    let (tenant_id, id) = path.into_inner();
    let Some(patch) = body.as_object() else {
        return not_object();
    };
    in_tenant(&state, &tenant_id, |dir| {
        let Some(idx) = dir
            .device_idx(&id)
            .filter(|&i| !dir.devices[i as usize].deleted)
        else {
            return error(404, "ResourceNotFound", format!("no managed device {id}"));
        };
        let mut device = dir.devices[idx as usize].clone();
        if let Err(e) = json::apply_device(&mut device, patch) {
            return bad(e);
        }
        dir.devices[idx as usize] = device;
        HttpResponse::Ok().json(Value::Object(json::device(&dir.devices[idx as usize])))
    })
}

async fn delete_device(state: web::Data<State>, path: web::Path<(String, String)>) -> HttpResponse {
    let (tenant_id, id) = path.into_inner();
    in_tenant(&state, &tenant_id, |dir| match dir.device_idx(&id) {
        Some(idx) if !dir.devices[idx as usize].deleted => {
            dir.devices[idx as usize].deleted = true;
            HttpResponse::NoContent().finish()
        }
        _ => error(404, "ResourceNotFound", format!("no managed device {id}")),
    })
}

async fn create_sign_in(
    state: web::Data<State>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    let Some(patch) = body.as_object().cloned() else {
        return not_object();
    };
    in_tenant(&state, &path, |dir| {
        let Some(user_ref) = patch
            .get("userId")
            .or_else(|| patch.get("userPrincipalName"))
            .and_then(Value::as_str)
        else {
            return error(
                400,
                "BadRequest",
                "a sign-in needs a userId or userPrincipalName",
            );
        };
        let Some(uidx) = dir.user_idx(user_ref) else {
            return error(400, "BadRequest", format!("no user {user_ref}"));
        };
        let time = match patch.get("createdDateTime") {
            Some(v) => match v
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            {
                Some(t) => t.with_timezone(&Utc),
                None => return error(400, "BadRequest", "`createdDateTime` must be ISO 8601"),
            },
            None => Utc::now(),
        };
        let user = &dir.users[uidx as usize];
        let id = patch
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(random_guid, str::to_owned);
        let mut body = json!({
            "id": id,
            "createdDateTime": json::iso(time),
            "userDisplayName": user.display_name,
            "userPrincipalName": user.user_principal_name,
            "userId": user.id,
            "appId": "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
            "appDisplayName": "Microsoft Teams",
            "ipAddress": "203.0.113.7",
            "clientAppUsed": "Browser",
            "correlationId": random_guid(),
            "conditionalAccessStatus": "success",
            "isInteractive": true,
            "riskDetail": "none",
            "riskLevelAggregated": "none",
            "riskLevelDuringSignIn": "none",
            "riskState": "none",
            "riskEventTypes_v2": [],
            "resourceDisplayName": "Microsoft Teams",
            "resourceId": "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
            "status": {"errorCode": 0, "failureReason": "Other.", "additionalDetails": Value::Null},
            "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": "Windows10", "browser": "Edge 120.0.0", "isCompliant": true, "isManaged": true, "trustType": ""},
            "location": {"city": "Seattle", "state": "", "countryOrRegion": "United States", "geoCoordinates": Value::Null},
            "appliedConditionalAccessPolicies": [],
        });
        for (k, v) in patch {
            if k != "id" && k != "createdDateTime" {
                body[k] = v;
            }
        }
        let succeeded = body["status"]["errorCode"].as_i64() == Some(0);
        let interactive = body["isInteractive"].as_bool().unwrap_or(true);
        {
            let activity = &mut dir.users[uidx as usize].sign_in_activity;
            let newer = |cur: Option<chrono::DateTime<Utc>>| cur.is_none_or(|c| c < time);
            if interactive && newer(activity.last_sign_in) {
                activity.last_sign_in = Some(time);
                activity.last_sign_in_request_id = Some(id.clone());
            }
            if !interactive && newer(activity.last_non_interactive_sign_in) {
                activity.last_non_interactive_sign_in = Some(time);
            }
            if succeeded && newer(activity.last_successful_sign_in) {
                activity.last_successful_sign_in = Some(time);
            }
        }
        let record = AuditRecord {
            id,
            time,
            body: body.clone(),
        };
        let pos = dir.sign_ins.partition_point(|r| r.time <= time);
        dir.sign_ins.insert(pos, record);
        HttpResponse::Created().json(body)
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantRequest {
    roles: Vec<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

async fn set_grant(
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (tenant_id, client_id) = path.into_inner();
    let req: GrantRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(400, "BadRequest", format!("invalid grant: {e}")),
    };
    let mut world = state.write();
    if !world.apps.contains_key(&client_id) {
        return error(404, "AppNotFound", format!("no app {client_id}"));
    }
    let Some(tenant) = world.tenant_mut(&tenant_id) else {
        return no_tenant(&tenant_id);
    };
    let grant = tenant.grants.entry(client_id).or_default();
    grant.roles = req.roles.into_iter().collect();
    if let Some(scopes) = req.scopes {
        grant.scopes = scopes.into_iter().collect();
    }
    HttpResponse::Ok().json(json!({"roles": grant.roles, "scopes": grant.scopes}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    client_id: String,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    /// A user id or userPrincipalName for a delegated token.
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    lifetime_secs: Option<u64>,
    /// Seconds to shift the token's times by (negative: already expired).
    #[serde(default)]
    skew_secs: Option<i64>,
}

/// Mints an access token directly, for tests: `roles` default to what the tenant granted
/// the app; any lifetime or skew (an already expired token) can be asked for.
async fn mint_token(
    state: web::Data<State>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let req: MintRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(400, "BadRequest", format!("invalid token request: {e}")),
    };
    let world = state.read();
    let Some(tenant) = world.tenant(&path) else {
        return no_tenant(&path);
    };
    if !world.apps.contains_key(&req.client_id) {
        return error(404, "AppNotFound", format!("no app {}", req.client_id));
    }
    let grant = tenant
        .grants
        .get(&req.client_id)
        .cloned()
        .unwrap_or_default();
    let user = match &req.user {
        Some(u) => match tenant.dir.live_user(u) {
            Some(idx) => {
                let user = &tenant.dir.users[idx as usize];
                Some((
                    user.id.clone(),
                    user.user_principal_name.clone(),
                    user.display_name.clone(),
                ))
            }
            None => return error(404, "UserNotFound", format!("no live user {u}")),
        },
        None => None,
    };
    let spec = crate::jwt::AccessTokenSpec {
        issuer_base: state.https_url.clone(),
        tenant_id: tenant.id.clone(),
        client_id: req.client_id,
        audience: req
            .resource
            .unwrap_or_else(|| crate::model::resources::GRAPH.to_owned()),
        roles: req
            .roles
            .unwrap_or_else(|| grant.roles.iter().cloned().collect()),
        scopes: req
            .scopes
            .unwrap_or_else(|| grant.scopes.iter().cloned().collect()),
        user,
        lifetime: req
            .lifetime_secs
            .map_or_else(|| state.faults().token_lifetime, Duration::from_secs),
        skew_secs: req.skew_secs.unwrap_or(0),
    };
    let (token, expires_in) = crate::jwt::issue_access_token(&state.signer, &spec);
    HttpResponse::Ok()
        .json(json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    /// A user id or userPrincipalName; absent: every user of the tenant.
    #[serde(default)]
    user: Option<String>,
}

/// Revokes refresh tokens (all of a tenant's, or one user's), as an admin's "revoke
/// sessions" does: their next use is AADSTS700082.
async fn revoke_sessions(
    state: web::Data<State>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let req: RevokeRequest = if body.is_empty() {
        RevokeRequest { user: None }
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(400, "BadRequest", format!("invalid request: {e}")),
        }
    };
    match crate::entra::revoke_sessions(&state, &path, req.user.as_deref()) {
        Ok(revoked) => HttpResponse::Ok().json(json!({"revoked": revoked})),
        Err(e) => error(404, "NotFound", e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateRequest {
    /// The certificate, PEM (`-----BEGIN CERTIFICATE-----`), with an RSA key.
    pem: String,
}

/// Registers a certificate credential on an app; answers its thumbprints.
async fn add_certificate(
    state: web::Data<State>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let req: CertificateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                400,
                "BadRequest",
                format!("invalid certificate request: {e}"),
            );
        }
    };
    let cert = match crate::entra::credential_from_pem(&req.pem) {
        Ok(c) => c,
        Err(e) => return error(400, "BadRequest", e),
    };
    let mut world = state.write();
    let Some(app) = world.apps.get_mut(path.as_str()) else {
        return error(404, "AppNotFound", format!("no app {path}"));
    };
    let answer = json!({
        "x5t": cert.thumbprint_sha1,
        "x5t#S256": cert.thumbprint_sha256,
        "expires": json::iso(cert.expires),
    });
    app.certificates
        .retain(|c| c.thumbprint_sha256 != cert.thumbprint_sha256);
    app.certificates.push(cert);
    HttpResponse::Created().json(answer)
}
