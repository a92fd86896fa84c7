//! The route table: every endpoint of the API, in one place.

mod audit;
mod connections;
mod data;
mod microsoft;
mod oauth;
mod ops;
mod organizations;
mod sync;

use actix_web::web;

/// Each module's part of the OpenAPI document, merged by `openapi::document`.
pub(crate) fn openapi_parts() -> Vec<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi as _;
    vec![
        ops::Api::openapi(),
        organizations::Api::openapi(),
        data::Api::openapi(),
        sync::Api::openapi(),
        connections::Api::openapi(),
        microsoft::Api::openapi(),
        oauth::Api::openapi(),
        audit::Api::openapi(),
    ]
}

/// Registers every route.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    // Operations.
    cfg.route("/health", web::get().to(ops::health))
        .route("/ready", web::get().to(ops::ready))
        .route("/metrics", web::get().to(ops::metrics))
        .route("/openapi.json", web::get().to(ops::openapi_json))
        .route("/docs", web::get().to(ops::docs));

    // Admin: organizations and their API keys.
    cfg.route(
        "/v1/organizations",
        web::post().to(organizations::create_organization),
    )
    .route(
        "/v1/organizations",
        web::get().to(organizations::list_organizations),
    )
    .route(
        "/v1/organizations/{organization_id}/api-keys",
        web::post().to(organizations::create_api_key),
    )
    .route(
        "/v1/organizations/{organization_id}/api-keys",
        web::get().to(organizations::list_api_keys),
    )
    .route(
        "/v1/organizations/{organization_id}/api-keys/{key_id}",
        web::delete().to(organizations::revoke_api_key),
    );

    // The calling organization.
    cfg.route(
        "/v1/organization",
        web::get().to(organizations::get_own_organization),
    );

    // A connection's synced data.
    cfg.route(
        "/v1/connections/{connection_id}/users",
        web::get().to(data::list_users),
    )
    .route(
        "/v1/connections/{connection_id}/users/{user_id}",
        web::get().to(data::get_user),
    )
    .route(
        "/v1/connections/{connection_id}/users/{user_id}/groups",
        web::get().to(data::list_user_groups),
    )
    .route(
        "/v1/connections/{connection_id}/groups",
        web::get().to(data::list_groups),
    )
    .route(
        "/v1/connections/{connection_id}/groups/{group_id}",
        web::get().to(data::get_group),
    )
    .route(
        "/v1/connections/{connection_id}/groups/{group_id}/members",
        web::get().to(data::list_group_members),
    )
    .route(
        "/v1/connections/{connection_id}/devices",
        web::get().to(data::list_devices),
    )
    .route(
        "/v1/connections/{connection_id}/sign-ins",
        web::get().to(data::list_sign_ins),
    )
    .route(
        "/v1/connections/{connection_id}/directory-audits",
        web::get().to(data::list_directory_audits),
    )
    .route(
        "/v1/connections/{connection_id}/alerts",
        web::get().to(data::list_alerts),
    );

    // Sync runs.
    cfg.route(
        "/v1/connections/{connection_id}/sync",
        web::post().to(sync::start_sync),
    )
    .route(
        "/v1/connections/{connection_id}/sync-runs",
        web::get().to(sync::list_sync_runs),
    )
    .route("/v1/sync-runs/{id}", web::get().to(sync::get_sync_run))
    .route(
        "/v1/microsoft/sync",
        web::post().to(sync::start_microsoft_sync),
    );

    // Connections of the calling organization.
    cfg.route(
        "/v1/connections",
        web::post().to(connections::create_connection),
    )
    .route(
        "/v1/connections",
        web::get().to(connections::list_connections),
    )
    .route(
        "/v1/connections/{connection_id}",
        web::get().to(connections::get_connection),
    )
    .route(
        "/v1/connections/{connection_id}",
        web::delete().to(connections::delete_connection),
    )
    .route(
        "/v1/connections/{connection_id}/secret",
        web::put().to(connections::replace_connection_secret),
    )
    .route(
        "/v1/connections/{connection_id}/connect/microsoft",
        web::get().to(oauth::start_microsoft_sign_in),
    )
    .route(
        "/v1/connections/{connection_id}/consent/microsoft",
        web::get().to(oauth::start_microsoft_consent),
    )
    // Entra ID's callback (no API key: the state authenticates it).
    .route(
        oauth::CALLBACK_PATH,
        web::get().to(oauth::microsoft_callback),
    );

    // The seed platform's routes: one Microsoft connection per organization.
    cfg.route(
        "/v1/microsoft/setup",
        web::post().to(microsoft::setup_microsoft),
    )
    .route(
        "/v1/microsoft/status",
        web::get().to(microsoft::microsoft_status),
    )
    .route(
        "/v1/microsoft/disconnect",
        web::delete().to(microsoft::disconnect_microsoft),
    );

    // The calling organization's audit trail.
    cfg.route("/v1/audit", web::get().to(audit::list_audit_events));
}
