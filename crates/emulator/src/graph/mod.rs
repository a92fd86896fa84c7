//! Microsoft Graph v1.0.

use actix_web::web;

/// Throttling buckets per app and tenant.
#[derive(Debug, Default)]
pub(crate) struct Throttle {}

pub(crate) fn configure(_cfg: &mut web::ServiceConfig) {}
