//! `POST /{tenant}/oauth2/v2.0/token`: client credentials, authorization code with PKCE,
//! and rotating refresh tokens; access, ID and refresh tokens as Entra ID issues them.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::client_auth::{Audience, authenticate};
use super::error::{AadError, Trace, app_not_found, consent_required, missing_parameter};
use super::scopes::{self, Scopes};
use super::sessions::{CODE_LIFETIME, RefreshStatus};
use super::{Authority, client_request_id};
use crate::jwt::{AccessTokenSpec, derived_guid, issue_access_token};
use crate::model::resources;
use crate::state::State;

/// A form-encoded request body (the first value of each name).
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// Parses `application/x-www-form-urlencoded` bytes.
    pub(crate) fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of a parameter, if present and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn require(&self, name: &str) -> Result<&str, AadError> {
        self.get(name).ok_or_else(|| missing_parameter(name))
    }
}

pub(crate) async fn post_token(
    state: web::Data<State>,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let trace = Trace::new(client_request_id(&req));
    let form = Form::parse(&body);
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    match token(&state, &path, &form, authorization) {
        Ok(answer) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store, no-cache"))
            .insert_header(("Pragma", "no-cache"))
            .json(answer),
        Err(e) => e.json(&state.https_url, &trace),
    }
}

fn token(
    state: &State,
    segment: &str,
    form: &Form,
    authorization: Option<&str>,
) -> Result<Value, AadError> {
    let authority = Authority::resolve(&state.read(), segment).map_err(|mut e| {
        e.error = "invalid_request";
        e
    })?;
    let grant_type = form.require("grant_type")?;
    match grant_type {
        "client_credentials" => client_credentials(state, segment, &authority, form, authorization),
        "authorization_code" => authorization_code(state, segment, &authority, form, authorization),
        "refresh_token" => refresh_token(state, segment, &authority, form, authorization),
        other => Err(AadError::new(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

fn client_credentials(
    state: &State,
    segment: &str,
    authority: &Authority,
    form: &Form,
    authorization: Option<&str>,
) -> Result<Value, AadError> {
    let Some(tenant_id) = authority.tenant_id() else {
        return Err(AadError::new(
            "invalid_request",
            900_023,
            format!(
                "Specified tenant identifier '{segment}' is neither a valid DNS name, nor a valid external domain. The client credentials flow needs a tenant id or domain."
            ),
        ));
    };
    let scope = form.require("scope")?;
    let audience = Audience {
        tenant: tenant_id,
        segment,
    };
    let (client_id, _) = authenticate(state, form, authorization, &audience, true)?;
    let parsed = scopes::parse(scope)?;
    let resource = parsed
        .single_resource(scope)?
        .ok_or_else(|| super::error::invalid_scope(scope))?;
    if parsed.resources[resource].iter().any(|p| p != ".default") {
        return Err(AadError::new(
            "invalid_scope",
            1_002_012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    }
    let world = state.read();
    let tenant = world
        .tenant(tenant_id)
        .ok_or_else(|| super::error::tenant_not_found(tenant_id))?;
    let grant = tenant
        .grants
        .get(&client_id)
        .ok_or_else(|| app_not_found(&client_id, &tenant.display_name))?;
    let roles = if resource == resources::GRAPH {
        grant.roles.iter().cloned().collect()
    } else {
        Vec::new()
    };
    let spec = AccessTokenSpec {
        issuer_base: state.https_url.clone(),
        tenant_id: tenant.id.clone(),
        client_id,
        audience: resource.to_owned(),
        roles,
        scopes: Vec::new(),
        user: None,
        lifetime: state.faults().token_lifetime,
        skew_secs: 0,
    };
    let (access_token, expires_in) = issue_access_token(&state.signer, &spec);
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access_token,
    }))
}

fn code_error(code: u32, message: &str) -> AadError {
    AadError::new("invalid_grant", code, message)
}

fn authorization_code(
    state: &State,
    segment: &str,
    authority: &Authority,
    form: &Form,
    authorization: Option<&str>,
) -> Result<Value, AadError> {
    let code_value = form.require("code")?;
    let redirect_uri = form.require("redirect_uri")?;
    let audience = Audience {
        tenant: authority.tenant_id().unwrap_or(segment),
        segment,
    };
    let (client_id, _) = authenticate(state, form, authorization, &audience, false)?;
    let code = {
        let sessions = state
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.codes.get(code_value).cloned()
    };
    let expired = "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.";
    let Some(code) = code else {
        return Err(code_error(70008, expired));
    };
    if code.redeemed {
        return Err(code_error(
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        ));
    }
    if code.issued + CODE_LIFETIME < Utc::now() || code.client_id != client_id {
        return Err(code_error(70008, expired));
    }
    if authority.tenant_id().is_some_and(|t| t != code.tenant_id) {
        return Err(code_error(
            700_005,
            "Provided Authorization Code is intended to use against other tenant, thus rejected.",
        ));
    }
    if code.redirect_uri != redirect_uri {
        return Err(AadError::new(
            "invalid_grant",
            500_112,
            format!(
                "The reply address '{redirect_uri}' does not match the reply address '{}' provided when requesting Authorization code.",
                code.redirect_uri
            ),
        ));
    }
    if let Some((challenge, method)) = &code.challenge {
        let verifier = form.require("code_verifier")?;
        let computed = if method == "plain" {
            verifier.to_owned()
        } else {
            B64.encode(ring::digest::digest(
                &ring::digest::SHA256,
                verifier.as_bytes(),
            ))
        };
        if &computed != challenge {
            return Err(code_error(
                501_481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        }
    }
    // The code's OpenID Connect scopes (`openid`, `offline_access`...) carry over even when
    // the redemption names only resource scopes, as libraries do.
    let mut requested = match form.get("scope") {
        Some(s) => scopes::parse(s)?,
        None => code.scopes.clone(),
    };
    requested.oidc.extend(code.scopes.oidc.iter().cloned());
    let answer = issue_user_tokens(
        state,
        &UserTokenRequest {
            tenant_id: &code.tenant_id,
            client_id: &client_id,
            user_id: &code.user_id,
            scopes: &requested,
            nonce: code.nonce.as_deref(),
            keep_refresh_scopes: None,
        },
    )?;
    let mut sessions = state
        .sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match sessions.codes.get_mut(code_value) {
        Some(c) if !c.redeemed => c.redeemed = true,
        _ => {
            return Err(code_error(
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
    }
    Ok(answer)
}

fn refresh_token(
    state: &State,
    segment: &str,
    authority: &Authority,
    form: &Form,
    authorization: Option<&str>,
) -> Result<Value, AadError> {
    let token_value = form.require("refresh_token")?;
    let audience = Audience {
        tenant: authority.tenant_id().unwrap_or(segment),
        segment,
    };
    let (client_id, _) = authenticate(state, form, authorization, &audience, false)?;
    let grant = {
        let mut sessions = state
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(grant) = sessions.refresh_tokens.get_mut(token_value) else {
            return Err(code_error(
                9_002_313,
                "Invalid request. Request is malformed or invalid: the refresh token is not one this service issued.",
            ));
        };
        if grant.client_id != client_id
            || authority.tenant_id().is_some_and(|t| t != grant.tenant_id)
        {
            return Err(code_error(
                70000,
                "Provided grant is invalid or malformed: the refresh token was issued to another client or tenant.",
            ));
        }
        let why = match grant.status {
            RefreshStatus::Used => Some(
                "has been redeemed already (refresh tokens rotate: use the one returned with it)",
            ),
            RefreshStatus::Revoked => Some("has been revoked"),
            RefreshStatus::Active if grant.expires <= Utc::now() => {
                Some("was inactive for 90.00:00:00")
            }
            RefreshStatus::Active => None,
        };
        if let Some(why) = why {
            return Err(code_error(
                700_082,
                &format!(
                    "The refresh token has expired due to inactivity. The token was issued on {} and {why}.",
                    grant.issued.format("%Y-%m-%dT%H:%M:%S%.3fZ")
                ),
            ));
        }
        grant.clone()
    };
    let mut requested = match form.get("scope") {
        Some(s) => scopes::parse(s)?,
        None => grant.scopes.clone(),
    };
    requested.oidc.extend(grant.scopes.oidc.iter().cloned());
    let answer = issue_user_tokens(
        state,
        &UserTokenRequest {
            tenant_id: &grant.tenant_id,
            client_id: &client_id,
            user_id: &grant.user_id,
            scopes: &requested,
            nonce: None,
            keep_refresh_scopes: Some(&grant.scopes),
        },
    )?;
    let mut sessions = state
        .sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match sessions.refresh_tokens.get_mut(token_value) {
        Some(g) if g.status == RefreshStatus::Active => g.status = RefreshStatus::Used,
        _ => {
            return Err(code_error(
                700_082,
                "The refresh token has expired due to inactivity: it was redeemed or revoked while this request ran.",
            ));
        }
    }
    Ok(answer)
}

/// What a user token answer is issued for.
struct UserTokenRequest<'a> {
    tenant_id: &'a str,
    client_id: &'a str,
    user_id: &'a str,
    scopes: &'a Scopes,
    nonce: Option<&'a str>,
    /// For a refresh: the scopes the original grant covered, which the new refresh token
    /// keeps even when this request narrows them.
    keep_refresh_scopes: Option<&'a Scopes>,
}

/// Checks the user, the app's presence and consent in the tenant, and issues the access
/// token (one resource), ID token (`openid`) and refresh token (`offline_access`).
fn issue_user_tokens(state: &State, req: &UserTokenRequest<'_>) -> Result<Value, AadError> {
    let scope_text = req.scopes.to_qualified().join(" ");
    let resource = req.scopes.single_resource(&scope_text)?;
    let world = state.read();
    let tenant = world
        .tenant(req.tenant_id)
        .ok_or_else(|| super::error::tenant_not_found(req.tenant_id))?;
    let app = world
        .apps
        .get(req.client_id)
        .ok_or_else(|| app_not_found(req.client_id, &tenant.display_name))?;
    let grant = tenant
        .grants
        .get(req.client_id)
        .ok_or_else(|| app_not_found(req.client_id, &tenant.display_name))?;
    let user = tenant
        .dir
        .live_user(req.user_id)
        .map(|i| &tenant.dir.users[i as usize])
        .ok_or_else(|| super::error::user_not_found(req.user_id, &tenant.display_name))?;
    if !user.account_enabled {
        return Err(super::error::user_disabled());
    }
    let consented = |resource: &str, perm: &str| {
        let qualified = format!("{resource}/{perm}");
        grant.scopes.contains(&qualified)
            || (resource == resources::GRAPH && grant.scopes.contains(perm))
    };
    let missing_oidc = req.scopes.oidc.iter().any(|s| !grant.scopes.contains(s));
    let resource = resource.unwrap_or(resources::GRAPH);
    let asked = req
        .scopes
        .resources
        .get(resource)
        .cloned()
        .unwrap_or_default();
    // Every permission asked for must be consented. The token then carries every permission
    // consented for the resource, not only those asked for: Entra ID's scope parameter picks
    // the resource and triggers consent, it does not filter.
    let all_consented: Vec<String> = grant
        .scopes
        .iter()
        .filter_map(|s| {
            if let Some(p) = s.strip_prefix(&format!("{resource}/")) {
                Some(p.to_owned())
            } else if resource == resources::GRAPH
                && !s.contains('/')
                && !scopes::OIDC_SCOPES.contains(&s.as_str())
            {
                Some(s.clone())
            } else {
                None
            }
        })
        .collect();
    let unconsented = asked
        .iter()
        .any(|perm| perm != ".default" && !consented(resource, perm));
    if unconsented || missing_oidc || (!asked.is_empty() && all_consented.is_empty()) {
        return Err(consent_required(req.client_id, &app.display_name));
    }
    let mut permissions = all_consented;
    permissions.sort();
    permissions.dedup();
    let mut scp = permissions.clone();
    if resource == resources::GRAPH {
        scp.extend(
            req.scopes
                .oidc
                .iter()
                .filter(|s| *s != "offline_access")
                .cloned(),
        );
    }
    let lifetime = state.faults().token_lifetime;
    let identity = (
        user.id.clone(),
        user.user_principal_name.clone(),
        user.display_name.clone(),
    );
    let (access_token, expires_in) = issue_access_token(
        &state.signer,
        &AccessTokenSpec {
            issuer_base: state.https_url.clone(),
            tenant_id: tenant.id.clone(),
            client_id: req.client_id.to_owned(),
            audience: resource.to_owned(),
            roles: Vec::new(),
            scopes: scp,
            user: Some(identity),
            lifetime,
            skew_secs: 0,
        },
    );
    let mut granted: Vec<String> = permissions
        .iter()
        .map(|p| format!("{resource}/{p}"))
        .collect();
    granted.extend(req.scopes.oidc.iter().cloned());
    let mut answer = Map::new();
    answer.insert("token_type".into(), json!("Bearer"));
    answer.insert("scope".into(), json!(granted.join(" ")));
    answer.insert("expires_in".into(), json!(expires_in));
    answer.insert("ext_expires_in".into(), json!(expires_in));
    answer.insert("access_token".into(), json!(access_token));
    if req.scopes.oidc.contains("openid") {
        let now = Utc::now().timestamp();
        let mut c = Map::new();
        c.insert("aud".into(), json!(req.client_id));
        c.insert(
            "iss".into(),
            json!(format!("{}/{}/v2.0", state.https_url, tenant.id)),
        );
        c.insert("iat".into(), json!(now));
        c.insert("nbf".into(), json!(now));
        c.insert("exp".into(), json!(now + 3600));
        c.insert("name".into(), json!(user.display_name));
        c.insert("oid".into(), json!(user.id));
        c.insert("preferred_username".into(), json!(user.user_principal_name));
        if req.scopes.oidc.contains("email")
            && let Some(mail) = &user.mail
        {
            c.insert("email".into(), json!(mail));
        }
        c.insert(
            "sub".into(),
            json!(derived_guid(&format!("sub:{}:{}", user.id, req.client_id))),
        );
        c.insert("tid".into(), json!(tenant.id));
        c.insert("uti".into(), json!(crate::rng::random_token(16)));
        c.insert("ver".into(), json!("2.0"));
        if let Some(nonce) = req.nonce {
            c.insert("nonce".into(), json!(nonce));
        }
        answer.insert("id_token".into(), json!(state.signer.sign(&c)));
    }
    let client_info = json!({"uid": user.id, "utid": tenant.id}).to_string();
    answer.insert("client_info".into(), json!(B64.encode(client_info)));
    let offline = req.scopes.oidc.contains("offline_access");
    if offline || req.keep_refresh_scopes.is_some() {
        let kept = req.keep_refresh_scopes.unwrap_or(req.scopes).clone();
        let (tenant_id, user_id) = (tenant.id.clone(), user.id.clone());
        drop(world);
        let refresh = state
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .issue_refresh_token(&tenant_id, req.client_id, &user_id, kept);
        answer.insert("refresh_token".into(), json!(refresh));
    }
    Ok(Value::Object(answer))
}
