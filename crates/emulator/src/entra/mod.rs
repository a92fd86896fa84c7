//! Entra ID (Microsoft identity platform v2.0): discovery, token endpoint, authorize,
//! admin consent.

use actix_web::web;

/// Authorization codes, refresh tokens and other sign-in state.
#[derive(Debug, Default)]
pub(crate) struct Sessions {}

pub(crate) fn configure(_cfg: &mut web::ServiceConfig) {}
