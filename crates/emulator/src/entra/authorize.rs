//! The interactive endpoints: `authorize` (a minimal sign-in page listing the tenant's
//! users; `login_hint` skips it), `adminconsent` (an admin grants a multi-tenant app its
//! application permissions) and `logout`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use super::error::{
    AadError, Trace, app_not_found, html_escape, missing_parameter, redirect_mismatch,
};
use super::scopes;
use super::sessions::AuthCode;
use super::{Authority, client_request_id};
use crate::model::{AppRegistration, ObjState, Tenant, User};
use crate::state::{State, WorldState};

/// How many users the sign-in page lists.
const PAGE_USERS: usize = 20;

type Query = web::Query<Vec<(String, String)>>;

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The same request with `extra` parameters replacing any of the same name.
fn with_params(path: &str, query: &[(String, String)], extra: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        if !extra.iter().any(|(e, _)| e == k) {
            s.append_pair(k, v);
        }
    }
    for (k, v) in extra {
        s.append_pair(k, v);
    }
    format!("{path}?{}", s.finish())
}

/// Sends parameters back to the redirect URI, in the query (default), the fragment or an
/// auto-submitted form (`response_mode=form_post`).
fn respond_to_client(redirect_uri: &str, mode: &str, params: &[(String, String)]) -> HttpResponse {
    if mode == "form_post" {
        let inputs: String = params
            .iter()
            .map(|(k, v)| {
                format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\"/>",
                    html_escape(k),
                    html_escape(v)
                )
            })
            .collect();
        return HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(format!(
                "<!DOCTYPE html>\n<html><head><title>Working...</title></head><body onload=\"document.forms[0].submit()\"><form method=\"POST\" name=\"hiddenform\" action=\"{}\">{inputs}<noscript><p>Script is disabled. Click Submit to continue.</p><input type=\"submit\" value=\"Submit\"/></noscript></form></body></html>\n",
                html_escape(redirect_uri)
            ));
    }
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    let encoded = s.finish();
    let location = if mode == "fragment" {
        format!("{redirect_uri}#{encoded}")
    } else if redirect_uri.contains('?') {
        format!("{redirect_uri}&{encoded}")
    } else {
        format!("{redirect_uri}?{encoded}")
    };
    HttpResponse::Found()
        .insert_header(("Location", location))
        .finish()
}

fn redirect_error(
    base_url: &str,
    redirect_uri: &str,
    mode: &str,
    state_param: Option<&str>,
    err: &AadError,
    trace: &Trace,
) -> HttpResponse {
    let mut params = err.redirect_params(base_url, trace);
    if let Some(s) = state_param {
        params.push(("state".into(), s.to_owned()));
    }
    respond_to_client(redirect_uri, mode, &params)
}

fn page(title: &str, body: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n{body}\n</body></html>\n"
        ))
}

/// The tenants an authority lets sign in.
fn tenants_of<'a>(world: &'a WorldState, authority: &Authority) -> Vec<&'a Tenant> {
    match authority.tenant_id() {
        Some(id) => world.tenant(id).into_iter().collect(),
        None => world.tenants.iter().collect(),
    }
}

fn signs_in(user: &User) -> bool {
    user.state == ObjState::Active && user.account_enabled && user.user_type == "Member"
}

/// A tenant's administrators: the first five users of its directory that are enabled
/// members (the seeded audit log has them act as admins).
fn admins(tenant: &Tenant) -> Vec<&User> {
    tenant
        .dir
        .users
        .iter()
        .take(5)
        .filter(|u| signs_in(u))
        .collect()
}

/// Finds the user a `login_hint` names: in the authority's tenant, or for `common` and
/// `organizations` in the tenant whose domain the hint has (else any tenant).
fn find_user<'a>(
    world: &'a WorldState,
    authority: &Authority,
    hint: &str,
) -> Result<(&'a Tenant, &'a User), AadError> {
    let candidates: Vec<&Tenant> = match authority.tenant_id() {
        Some(_) => tenants_of(world, authority),
        None => {
            let domain = hint.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
            match world.tenant(domain) {
                Some(t) => vec![t],
                None => world.tenants.iter().collect(),
            }
        }
    };
    for tenant in &candidates {
        if let Some(idx) = tenant.dir.live_user(hint) {
            let user = &tenant.dir.users[idx as usize];
            if !user.account_enabled {
                return Err(super::error::user_disabled());
            }
            return Ok((tenant, user));
        }
    }
    let name = candidates
        .first()
        .filter(|_| candidates.len() == 1)
        .map_or("this", |t| t.display_name.as_str());
    Err(super::error::user_not_found(hint, name))
}

/// Checks the app and redirect URI common to `authorize` and `adminconsent`; errors here
/// are shown as a page, never redirected.
fn client_and_redirect<'a>(
    world: &'a WorldState,
    authority: &Authority,
    query: &'a [(String, String)],
) -> Result<(&'a AppRegistration, &'a str), AadError> {
    let client_id = param(query, "client_id").ok_or_else(|| missing_parameter("client_id"))?;
    let tenant_name = authority
        .tenant_id()
        .and_then(|t| world.tenant(t))
        .map_or("common", |t| t.display_name.as_str());
    let app = world
        .apps
        .get(client_id)
        .ok_or_else(|| app_not_found(client_id, tenant_name))?;
    if let Some(tid) = authority.tenant_id()
        && !app.multi_tenant
        && app.home_tenant != tid
    {
        return Err(app_not_found(client_id, tenant_name));
    }
    let redirect_uri = match param(query, "redirect_uri") {
        Some(r) => r,
        None => app
            .redirect_uris
            .first()
            .map(String::as_str)
            .ok_or_else(|| missing_parameter("redirect_uri"))?,
    };
    if !app.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(redirect_mismatch(redirect_uri, client_id));
    }
    Ok((app, redirect_uri))
}

pub(crate) async fn get_authorize(
    state: web::Data<State>,
    path: web::Path<String>,
    query: Query,
    req: HttpRequest,
) -> HttpResponse {
    let trace = Trace::new(client_request_id(&req));
    let segment = path.into_inner();
    let world = state.read();
    let authority = match Authority::resolve(&world, &segment) {
        Ok(a) => a,
        Err(e) => return e.page(&trace),
    };
    let (app, redirect_uri) = match client_and_redirect(&world, &authority, &query) {
        Ok(v) => v,
        Err(e) => return e.page(&trace),
    };
    let state_param = param(&query, "state");
    let mode = param(&query, "response_mode").unwrap_or("query");
    let fail = |e: AadError| {
        redirect_error(
            &state.https_url,
            redirect_uri,
            mode,
            state_param,
            &e,
            &trace,
        )
    };
    match param(&query, "response_type") {
        Some("code") => {}
        None => return fail(missing_parameter("response_type")),
        Some(other) => {
            return fail(AadError::new(
                "unsupported_response_type",
                700_054,
                format!("response_type '{other}' is not enabled for the application."),
            ));
        }
    }
    let Some(scope) = param(&query, "scope") else {
        return fail(missing_parameter("scope"));
    };
    let parsed = match scopes::parse(scope) {
        Ok(p) if !p.resources.is_empty() || !p.oidc.is_empty() => p,
        Ok(_) => return fail(super::error::invalid_scope(scope)),
        Err(e) => return fail(e),
    };
    let challenge = match (
        param(&query, "code_challenge"),
        param(&query, "code_challenge_method"),
    ) {
        (None, None) => None,
        (None, Some(_)) => return fail(missing_parameter("code_challenge")),
        (Some(c), method) => {
            let method = method.unwrap_or("plain");
            if method != "S256" && method != "plain" {
                return fail(AadError::new(
                    "invalid_request",
                    501_491,
                    format!("Invalid code_challenge_method '{method}': use S256 (or plain)."),
                ));
            }
            if !(43..=128).contains(&c.len()) {
                return fail(AadError::new(
                    "invalid_request",
                    501_491,
                    "Invalid size of Code_Challenge parameter.",
                ));
            }
            Some((c.to_owned(), method.to_owned()))
        }
    };
    let prompt = param(&query, "prompt");
    let Some(hint) = param(&query, "login_hint") else {
        if prompt == Some("none") {
            return fail(AadError::new(
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in.",
            ));
        }
        return sign_in_page(&world, &authority, &segment, &query, &app.display_name);
    };
    let (tenant, user) = match find_user(&world, &authority, hint) {
        Ok(v) => v,
        Err(e) if prompt == Some("none") => return fail(e),
        Err(e) => return e.page(&trace),
    };
    if !app.multi_tenant && app.home_tenant != tenant.id {
        return app_not_found(&app.client_id, &tenant.display_name).page(&trace);
    }
    let code = AuthCode {
        tenant_id: tenant.id.clone(),
        client_id: app.client_id.clone(),
        user_id: user.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes: parsed,
        challenge,
        nonce: param(&query, "nonce").map(str::to_owned),
        issued: Utc::now(),
        redeemed: false,
    };
    let session_state = crate::jwt::derived_guid(&format!("session:{}:{}", tenant.id, user.id));
    let redirect_uri = redirect_uri.to_owned();
    let state_param = state_param.map(str::to_owned);
    drop(world);
    let code = state
        .sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .issue_code(code);
    let mut params = vec![("code".to_owned(), code)];
    if let Some(s) = state_param {
        params.push(("state".into(), s));
    }
    params.push(("session_state".into(), session_state));
    respond_to_client(&redirect_uri, mode, &params)
}

fn sign_in_page(
    world: &WorldState,
    authority: &Authority,
    segment: &str,
    query: &[(String, String)],
    app_name: &str,
) -> HttpResponse {
    let path = format!("/{segment}/oauth2/v2.0/authorize");
    let items: String = tenants_of(world, authority)
        .into_iter()
        .flat_map(|t| t.dir.users.iter().filter(|u| signs_in(u)))
        .take(PAGE_USERS)
        .map(|u| {
            let href = with_params(&path, query, &[("login_hint", &u.user_principal_name)]);
            format!(
                "<li><a class=\"user\" href=\"{}\" data-upn=\"{}\">{} ({})</a></li>\n",
                html_escape(&href),
                html_escape(&u.user_principal_name),
                html_escape(&u.display_name),
                html_escape(&u.user_principal_name)
            )
        })
        .collect();
    page(
        "Sign in to your account",
        &format!(
            "<h1>Pick an account</h1>\n<p>to continue to {}</p>\n<ul id=\"accounts\">\n{items}</ul>",
            html_escape(app_name)
        ),
    )
}

pub(crate) async fn get_admin_consent(
    state: web::Data<State>,
    path: web::Path<String>,
    query: Query,
    req: HttpRequest,
) -> HttpResponse {
    let trace = Trace::new(client_request_id(&req));
    let segment = path.into_inner();
    let mut world = state.write();
    let authority = match Authority::resolve(&world, &segment) {
        Ok(a) => a,
        Err(e) => return e.page(&trace),
    };
    let (app, redirect_uri) = match client_and_redirect(&world, &authority, &query) {
        Ok((app, r)) => (app.clone(), r.to_owned()),
        Err(e) => return e.page(&trace),
    };
    let state_param = param(&query, "state");
    if param(&query, "deny").is_some() {
        let mut params = AadError::new(
            "access_denied",
            65004,
            "User declined to consent to access the app.",
        )
        .redirect_params(&state.https_url, &trace);
        if let Some(s) = state_param {
            params.push(("state".into(), s.to_owned()));
        }
        return respond_to_client(&redirect_uri, "query", &params);
    }
    let Some(hint) = param(&query, "login_hint") else {
        let cancel = with_params(
            &format!("/{segment}/adminconsent"),
            &query,
            &[("deny", "1")],
        );
        let admins: String = tenants_of(&world, &authority)
            .into_iter()
            .flat_map(|t| admins(t).into_iter().map(move |u| (t, u)))
            .take(PAGE_USERS)
            .map(|(t, u)| {
                let accept = with_params(
                    &format!("/{segment}/adminconsent"),
                    &query,
                    &[("login_hint", &u.user_principal_name)],
                );
                format!(
                    "<li><a class=\"accept\" href=\"{}\">Accept as {} ({}, {})</a></li>\n",
                    html_escape(&accept),
                    html_escape(&u.display_name),
                    html_escape(&u.user_principal_name),
                    html_escape(&t.display_name)
                )
            })
            .collect();
        let roles: String = app
            .requested_roles
            .iter()
            .map(|r| format!("<li>{}</li>", html_escape(r)))
            .collect();
        return page(
            "Permissions requested",
            &format!(
                "<h1>Permissions requested</h1>\n<p>{} wants, for your whole organization:</p>\n<ul id=\"permissions\">{roles}</ul>\n<ul id=\"admins\">\n{admins}</ul>\n<p><a id=\"cancel\" href=\"{}\">Cancel</a></p>",
                html_escape(&app.display_name),
                html_escape(&cancel)
            ),
        );
    };
    let (tenant_id, is_admin) = match find_user(&world, &authority, hint) {
        Ok((tenant, user)) => (
            tenant.id.clone(),
            admins(tenant).iter().any(|a| a.id == user.id),
        ),
        Err(e) => return e.page(&trace),
    };
    if !is_admin {
        return AadError::new(
            "access_denied",
            90094,
            format!(
                "The grant requires admin permission: {hint} is not an administrator of the tenant."
            ),
        )
        .page(&trace);
    }
    if !app.multi_tenant && app.home_tenant != tenant_id {
        return app_not_found(&app.client_id, &tenant_id).page(&trace);
    }
    if let Some(tenant) = world.tenant_mut(&tenant_id) {
        let grant = tenant.grants.entry(app.client_id.clone()).or_default();
        grant.roles.extend(app.requested_roles.iter().cloned());
    }
    drop(world);
    let mut params = vec![("tenant".to_owned(), tenant_id)];
    if let Some(s) = state_param {
        params.push(("state".into(), s.to_owned()));
    }
    params.push(("admin_consent".into(), "True".into()));
    respond_to_client(&redirect_uri, "query", &params)
}

/// `GET /{tenant}/oauth2/v2.0/logout`: back to `post_logout_redirect_uri` when an app
/// registered it, otherwise a signed-out page.
pub(crate) async fn get_logout(state: web::Data<State>, query: Query) -> HttpResponse {
    let world = state.read();
    if let Some(target) = param(&query, "post_logout_redirect_uri") {
        let registered = world
            .apps
            .values()
            .filter(|a| param(&query, "client_id").is_none_or(|c| c == a.client_id))
            .any(|a| a.redirect_uris.iter().any(|r| r == target));
        if registered {
            let mut params = Vec::new();
            if let Some(s) = param(&query, "state") {
                params.push(("state".to_owned(), s.to_owned()));
            }
            if params.is_empty() {
                return HttpResponse::Found()
                    .insert_header(("Location", target.to_owned()))
                    .finish();
            }
            return respond_to_client(target, "query", &params);
        }
    }
    page("Sign out", "<h1>You signed out of your account</h1>")
}
