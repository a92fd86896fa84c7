//! Bearer token validation for Graph (signature, audience, issuer, tenant, lifetime) and
//! permission checks against the token's `roles` (app) or `scp` (delegated).

use std::collections::BTreeSet;

use super::{GraphRequest, GraphResponse, graph_error};
use crate::model::resources;
use crate::state::State;

/// Who is calling: the tenant, the app and what the token grants.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Position of the tenant in the world.
    pub(crate) tenant_pos: usize,
    /// Tenant id.
    pub(crate) tenant_id: String,
    /// The app (client id).
    pub(crate) client_id: String,
    /// Application permissions (`roles`).
    pub(crate) roles: BTreeSet<String>,
    /// Delegated permissions (`scp`).
    pub(crate) scopes: BTreeSet<String>,
    /// The signed-in user's object id for delegated tokens.
    pub(crate) user_oid: Option<String>,
}

impl Caller {
    /// Ok when the token grants any of `permissions` (as a role for app tokens, as a scope
    /// for delegated ones); otherwise Graph's 403.
    pub(crate) fn require(&self, permissions: &[&str]) -> Result<(), GraphResponse> {
        let granted = if self.user_oid.is_some() {
            &self.scopes
        } else {
            &self.roles
        };
        if permissions.iter().any(|p| granted.contains(*p)) {
            return Ok(());
        }
        Err(graph_error(
            403,
            "Authorization_RequestDenied",
            &format!(
                "Insufficient privileges to complete the operation. Requires one of: {}.",
                permissions.join(", ")
            ),
        ))
    }
}

fn unauthorized(message: &str) -> GraphResponse {
    graph_error(401, "InvalidAuthenticationToken", message).with_header(
        "WWW-Authenticate",
        r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#,
    )
}

/// Validates the bearer token of a Graph request.
pub(crate) fn authenticate(state: &State, req: &GraphRequest) -> Result<Caller, GraphResponse> {
    let Some(header) = req.header("authorization") else {
        return Err(unauthorized("Access token is empty."));
    };
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or_default();
    if token.is_empty() {
        return Err(unauthorized("Access token is empty."));
    }
    let claims = state.signer.verify(token).map_err(|e| {
        unauthorized(&format!(
            "IDX14100: JWT is not well formed or its signature is invalid ({e})."
        ))
    })?;
    let now = chrono::Utc::now().timestamp();
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    let nbf = claims
        .get("nbf")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    // Five minutes of clock skew, as Microsoft's validators allow.
    if exp + 300 < now || nbf - 300 > now {
        return Err(unauthorized(
            "Access token has expired or is not yet valid.",
        ));
    }
    let aud = claims
        .get("aud")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let graph_audiences = [
        resources::GRAPH,
        "https://graph.microsoft.com/",
        resources::GRAPH_APP_ID,
    ];
    if !graph_audiences.contains(&aud) {
        return Err(unauthorized(
            "Access token validation failure. Invalid audience.",
        ));
    }
    let tid = claims
        .get("tid")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let issuer = claims
        .get("iss")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if !issuer.ends_with(&format!("/{tid}/v2.0")) {
        return Err(unauthorized(
            "Access token validation failure. Invalid issuer.",
        ));
    }
    let world = state.read();
    let Some(tenant_pos) = world.tenant_pos(tid) else {
        return Err(unauthorized(
            "Access token validation failure. Invalid tenant.",
        ));
    };
    let client_id = claims
        .get("appid")
        .or_else(|| claims.get("azp"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let list = |name: &str| -> BTreeSet<String> {
        match claims.get(name) {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(s)) => s.split(' ').map(str::to_owned).collect(),
            _ => BTreeSet::new(),
        }
    };
    let user_oid =
        (claims.get("idtyp").and_then(serde_json::Value::as_str) == Some("user")).then(|| {
            claims
                .get("oid")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        });
    Ok(Caller {
        tenant_pos,
        tenant_id: world.tenants[tenant_pos].id.clone(),
        client_id,
        roles: list("roles"),
        scopes: list("scp"),
        user_oid,
    })
}
