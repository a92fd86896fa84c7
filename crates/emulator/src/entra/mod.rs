//! Entra ID (Microsoft identity platform v2.0): discovery, token endpoint, authorize,
//! admin consent.

mod authorize;
mod certs;
mod client_auth;
mod discovery;
mod error;
mod scopes;
mod sessions;
mod token;

use actix_web::web;

pub(crate) use certs::credential_from_pem;
pub(crate) use sessions::Sessions;

use crate::state::{State, WorldState};
use error::AadError;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/error", web::get().to(discovery::get_error_page))
        .route(
            "/common/discovery/instance",
            web::get().to(discovery::get_instance_discovery),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            web::get().to(discovery::get_openid_configuration),
        )
        .route(
            "/{tenant}/discovery/v2.0/keys",
            web::get().to(discovery::get_keys),
        )
        .route(
            "/{tenant}/oauth2/v2.0/token",
            web::post().to(token::post_token),
        )
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            web::get().to(authorize::get_authorize),
        )
        .route(
            "/{tenant}/oauth2/v2.0/logout",
            web::get().to(authorize::get_logout),
        )
        .route(
            "/{tenant}/adminconsent",
            web::get().to(authorize::get_admin_consent),
        )
        .route(
            "/{tenant}/v2.0/adminconsent",
            web::get().to(authorize::get_admin_consent),
        );
}

/// Which tenants a path's `{tenant}` segment lets sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Authority {
    /// One tenant, by id (the path may have named its verified domain).
    Tenant(String),
    /// `common`: any tenant (work and school accounts here; there are no personal ones).
    Common,
    /// `organizations`: any tenant.
    Organizations,
}

impl Authority {
    /// Resolves the `{tenant}` path segment; an unknown tenant is AADSTS90002.
    pub(crate) fn resolve(world: &WorldState, segment: &str) -> Result<Self, AadError> {
        if segment.eq_ignore_ascii_case("common") {
            return Ok(Self::Common);
        }
        if segment.eq_ignore_ascii_case("organizations") {
            return Ok(Self::Organizations);
        }
        world
            .tenant(segment)
            .map(|t| Self::Tenant(t.id.clone()))
            .ok_or_else(|| error::tenant_not_found(segment))
    }

    /// The tenant id, for a single-tenant authority.
    pub(crate) fn tenant_id(&self) -> Option<&str> {
        match self {
            Self::Tenant(id) => Some(id),
            Self::Common | Self::Organizations => None,
        }
    }
}

/// The `client-request-id` header, echoed as the correlation id of errors.
pub(crate) fn client_request_id(req: &actix_web::HttpRequest) -> Option<&str> {
    req.headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
}

/// Revokes the refresh tokens of a tenant (or of one of its users); returns how many.
pub(crate) fn revoke_sessions(
    state: &State,
    tenant: &str,
    user: Option<&str>,
) -> Result<usize, String> {
    let (tenant_id, user_id) = {
        let world = state.read();
        let t = world
            .tenant(tenant)
            .ok_or_else(|| format!("no tenant `{tenant}`"))?;
        let user_id = match user {
            Some(u) => {
                let idx = t
                    .dir
                    .user_idx(u)
                    .ok_or_else(|| format!("no user `{u}` in {}", t.id))?;
                Some(t.dir.users[idx as usize].id.clone())
            }
            None => None,
        };
        (t.id.clone(), user_id)
    };
    Ok(state
        .sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .revoke(&tenant_id, user_id.as_deref()))
}
