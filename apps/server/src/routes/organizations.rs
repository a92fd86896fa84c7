//! Admin endpoints: organizations and their API keys.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use crate::auth::{AdminAuth, OrgAuth, issue_key};
use crate::dto::organizations::{
    ApiKeyList, ApiKeyResponse, CreateApiKeyRequest, CreateOrganizationRequest,
    IssuedApiKeyResponse, OrganizationList, OrganizationResponse,
};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    create_organization,
    list_organizations,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    get_own_organization
))]
pub(crate) struct Api;

fn check_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be 1 to 100 printable characters",
        ));
    }
    Ok(name)
}

/// Creates an organization.
#[utoipa::path(post, path = "/v1/organizations", tag = "admin",
    request_body = CreateOrganizationRequest,
    security(("admin_key" = [])),
    responses(
        (status = 201, description = "Created", body = OrganizationResponse),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 401, description = "Not the admin key", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ))]
pub(crate) async fn create_organization(
    _admin: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<CreateOrganizationRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = check_name(&body.name)?;
    let org = state
        .db
        .create_organization(name)
        .await
        .map_err(|e| match e {
            tenantlink_store::Error::Conflict(_) => ApiError::Conflict {
                code: "organization_exists",
                message: format!("an organization named {name:?} exists"),
            },
            other => other.into(),
        })?;
    Ok(HttpResponse::Created().json(OrganizationResponse::from(org)))
}

/// Lists organizations.
#[utoipa::path(get, path = "/v1/organizations", tag = "admin",
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "Organizations", body = OrganizationList),
        (status = 401, description = "Not the admin key", body = ErrorBody),
    ))]
pub(crate) async fn list_organizations(
    _admin: AdminAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<OrganizationList>, ApiError> {
    let items = state.db.organizations().await?;
    Ok(web::Json(OrganizationList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Issues an API key for an organization. The key is in this answer only.
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/api-keys", tag = "admin",
    params(("organization_id" = String, Path, description = "The organization")),
    request_body = CreateApiKeyRequest,
    security(("admin_key" = [])),
    responses(
        (status = 201, description = "Issued; `key` is shown once", body = IssuedApiKeyResponse),
        (status = 400, description = "Invalid name or expiry", body = ErrorBody),
        (status = 401, description = "Not the admin key", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
    ))]
pub(crate) async fn create_api_key(
    _admin: AdminAuth,
    state: web::Data<AppState>,
    organization_id: web::Path<String>,
    body: web::Json<CreateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = check_name(&body.name)?;
    if body.expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            "expires_at must be in the future",
        ));
    }
    let issued = issue_key()?;
    let stored = state
        .db
        .create_api_key(&tenantlink_store::NewApiKey {
            id: issued.id.clone(),
            organization_id: organization_id.into_inner(),
            name: name.to_owned(),
            secret_hash: issued.secret_hash.clone(),
            expires_at: body.expires_at.map(|t| t.naive_utc()),
        })
        .await?;
    Ok(HttpResponse::Created().json(IssuedApiKeyResponse {
        key: issued.key,
        details: stored.into(),
    }))
}

/// Lists an organization's API keys (never their secrets).
#[utoipa::path(get, path = "/v1/organizations/{organization_id}/api-keys", tag = "admin",
    params(("organization_id" = String, Path, description = "The organization")),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "Keys", body = ApiKeyList),
        (status = 401, description = "Not the admin key", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
    ))]
pub(crate) async fn list_api_keys(
    _admin: AdminAuth,
    state: web::Data<AppState>,
    organization_id: web::Path<String>,
) -> Result<web::Json<ApiKeyList>, ApiError> {
    state.db.organization(&organization_id).await?;
    let keys = state.db.api_keys(&organization_id).await?;
    Ok(web::Json(ApiKeyList {
        items: keys.into_iter().map(ApiKeyResponse::from).collect(),
    }))
}

/// Revokes an API key at once.
#[utoipa::path(delete, path = "/v1/organizations/{organization_id}/api-keys/{key_id}", tag = "admin",
    params(
        ("organization_id" = String, Path, description = "The organization"),
        ("key_id" = String, Path, description = "The key's id"),
    ),
    security(("admin_key" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not the admin key", body = ErrorBody),
        (status = 404, description = "No such key in this organization", body = ErrorBody),
    ))]
pub(crate) async fn revoke_api_key(
    _admin: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (organization_id, key_id) = path.into_inner();
    state.db.revoke_api_key(&organization_id, &key_id).await?;
    state.limits.keys.forget(&key_id);
    Ok(HttpResponse::NoContent().finish())
}

/// The calling key's organization.
#[utoipa::path(get, path = "/v1/organization", tag = "organization",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The caller's organization", body = OrganizationResponse),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn get_own_organization(
    auth: OrgAuth,
    state: web::Data<AppState>,
) -> Result<web::Json<OrganizationResponse>, ApiError> {
    let org = state.db.organization(&auth.organization_id).await?;
    Ok(web::Json(org.into()))
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test, web};
    use tenantlink_store::testing::TestDb;

    use crate::testing::{self, ADMIN_KEY};

    #[actix_web::test]
    async fn admin_makes_an_organization_and_a_key_that_works_until_revoked() {
        for db in TestDb::all().await {
            let (state, _stop) =
                testing::state(db.db.clone(), testing::offline_cloud(), testing::settings());
            let app = test::init_service(
                App::new().configure(crate::app::configure(web::Data::new(state))),
            )
            .await;
            let admin = ("authorization", format!("Bearer {ADMIN_KEY}"));
            let req = test::TestRequest::post()
                .uri("/v1/organizations")
                .insert_header(admin.clone())
                .set_json(serde_json::json!({"name": "Fabrikam"}))
                .to_request();
            let org: serde_json::Value = test::call_and_read_body_json(&app, req).await;
            let org_id = org["id"].as_str().unwrap().to_owned();
            let req = test::TestRequest::post()
                .uri(&format!("/v1/organizations/{org_id}/api-keys"))
                .insert_header(admin.clone())
                .set_json(serde_json::json!({"name": "ci"}))
                .to_request();
            let key: serde_json::Value = test::call_and_read_body_json(&app, req).await;
            let secret = key["key"].as_str().unwrap().to_owned();
            let me = |k: String| {
                test::TestRequest::get()
                    .uri("/v1/organization")
                    .insert_header(("authorization", format!("Bearer {k}")))
                    .to_request()
            };
            let res = test::call_service(&app, me(secret.clone())).await;
            assert_eq!(res.status(), 200);
            // The listing never shows the key.
            let req = test::TestRequest::get()
                .uri(&format!("/v1/organizations/{org_id}/api-keys"))
                .insert_header(admin.clone())
                .to_request();
            let body = test::call_and_read_body(&app, req).await;
            assert!(!String::from_utf8_lossy(&body).contains(&secret[40..]));
            // A wrong secret for a real key id, and a non-admin on admin routes, are 401.
            let res = test::call_service(&app, me(format!("{}x", &secret))).await;
            assert_eq!(res.status(), 401);
            let req = test::TestRequest::get()
                .uri("/v1/organizations")
                .insert_header(("authorization", format!("Bearer {secret}")))
                .to_request();
            assert_eq!(test::call_service(&app, req).await.status(), 401);
            let req = test::TestRequest::delete()
                .uri(&format!(
                    "/v1/organizations/{org_id}/api-keys/{}",
                    key["id"].as_str().unwrap()
                ))
                .insert_header(admin.clone())
                .to_request();
            assert_eq!(test::call_service(&app, req).await.status(), 204);
            let res = test::call_service(&app, me(secret.clone())).await;
            assert_eq!(res.status(), 401, "{:?}", db.db.backend());
        }
    }
}
