//! OpenID Connect discovery (v2.0 metadata and signing keys) and the instance discovery
//! endpoint Microsoft's libraries call to validate an authority host.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::error::{AadError, Trace};
use super::{Authority, client_request_id};
use crate::state::State;

/// The v2.0 metadata document for an authority segment (`{tenantid}` placeholder in the
/// issuer of the multi-tenant ones, as Microsoft publishes it).
pub(crate) fn openid_configuration(base: &str, segment: &str, authority: &Authority) -> Value {
    let issuer_tenant = authority.tenant_id().unwrap_or("{tenantid}");
    let endpoint = |path: &str| format!("{base}/{segment}/{path}");
    json!({
        "token_endpoint": endpoint("oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": endpoint("discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{issuer_tenant}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": endpoint("oauth2/v2.0/authorize"),
        "device_authorization_endpoint": endpoint("oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": endpoint("oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
            "name", "tid", "ver", "at_hash", "c_hash", "email"
        ],
        "kerberos_endpoint": endpoint("kerberos"),
        "tenant_region_scope": if authority.tenant_id().is_some() { json!("EU") } else { Value::Null },
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    })
}

pub(crate) async fn get_openid_configuration(
    state: web::Data<State>,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let authority = Authority::resolve(&state.read(), &path);
    match authority {
        Ok(authority) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "max-age=86400, private"))
            .json(openid_configuration(&state.https_url, &path, &authority)),
        Err(e) => e.json(&state.https_url, &Trace::new(client_request_id(&req))),
    }
}

pub(crate) async fn get_keys(
    state: web::Data<State>,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let authority = Authority::resolve(&state.read(), &path);
    match authority {
        Ok(_) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "max-age=86400, private"))
            .json(state.signer.jwks()),
        Err(e) => e.json(&state.https_url, &Trace::new(client_request_id(&req))),
    }
}

/// `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=...`: this host is
/// the only (and preferred) alias of itself.
pub(crate) async fn get_instance_discovery(
    state: web::Data<State>,
    query: web::Query<Vec<(String, String)>>,
    req: HttpRequest,
) -> HttpResponse {
    let trace = Trace::new(client_request_id(&req));
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(endpoint) = param("authorization_endpoint") else {
        return super::error::missing_parameter("authorization_endpoint")
            .json(&state.https_url, &trace);
    };
    let Some(rest) = endpoint.strip_prefix(&format!("{}/", state.https_url)) else {
        return AadError::new("invalid_instance", 50049, "Unknown or invalid instance.")
            .json(&state.https_url, &trace);
    };
    let segment = rest.split('/').next().unwrap_or("common");
    let host = state.https_url.trim_start_matches("https://").to_owned();
    HttpResponse::Ok().json(json!({
        "tenant_discovery_endpoint": format!("{}/{segment}/v2.0/.well-known/openid-configuration", state.https_url),
        "api-version": param("api-version").unwrap_or("1.1"),
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": [host],
        }],
    }))
}

/// `GET /error?code=n`: where every error's `error_uri` points, as
/// `login.microsoftonline.com/error` does; names the code and the emulator's meaning of it.
pub(crate) async fn get_error_page(query: web::Query<Vec<(String, String)>>) -> HttpResponse {
    let code = query
        .iter()
        .find(|(k, _)| k == "code")
        .and_then(|(_, v)| v.parse::<u32>().ok());
    let meaning = code.and_then(super::error::meaning).unwrap_or(
        "This error code is not one the emulator answers; see Microsoft's AADSTS error code reference.",
    );
    let title = code.map_or_else(
        || "AADSTS error lookup".to_owned(),
        |c| format!("AADSTS{c}"),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1><p id=\"meaning\">{}</p></body></html>\n",
            super::error::html_escape(meaning)
        ))
}
