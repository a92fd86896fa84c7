//! Delegated sign-in (authorization code with PKCE) and admin consent with the platform's
//! multi-tenant app, and their callback. The state and PKCE verifier stay server-side in
//! `oauth_states` (the state hashed, the verifier encrypted), bound to the organization and
//! connection, valid 10 minutes and used once; the callback needs no API key because the
//! state authenticates it.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret as _, SecretString};
use tenantlink_identity::{
    AdminConsentCallback, AdminConsentRequest, AuthorizationCallback, AuthorizeRequest, ClientAuth,
    CodeFlow, CodeFlowConfig, MemoryPendingStore, MemoryRefreshTokenStore, PendingAuthorization,
    PendingKind, RefreshTokenStore as _, check_admin_consent,
};
use tenantlink_store::{DelegatedToken, OAuthState};
use utoipa::OpenApi;

use super::connections::rejected;
use crate::auth::{OrgAuth, hex_sha256};
use crate::dto::connections::{
    AuthorizeUrlResponse, CallbackQuery, CallbackResponse, ConsentUrlResponse, StartQuery,
};
use crate::error::{ApiError, ErrorBody};
use crate::openapi::html_escape;
use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(start_microsoft_sign_in, start_microsoft_consent, microsoft_callback))]
pub(crate) struct Api;

/// How long a started sign-in or consent waits for its callback.
const STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// The callback's path under the public URL.
pub(crate) const CALLBACK_PATH: &str = "/v1/oauth/microsoft/callback";

const SIGN_IN: &str = "sign_in";
const ADMIN_CONSENT: &str = "admin_consent";

/// The platform's multi-tenant app, or 409 `delegated_not_configured`.
fn delegated_app(state: &AppState) -> Result<(&str, &SecretString), ApiError> {
    state
        .settings
        .delegated_app
        .as_ref()
        .map(|(id, secret)| (id.as_str(), secret))
        .ok_or_else(|| ApiError::Conflict {
            code: "delegated_not_configured",
            message: format!(
                "delegated sign-in and admin consent need the platform's multi-tenant app: set MICROSOFT_CLIENT_ID and MICROSOFT_CLIENT_SECRET, and register {} as its redirect URI",
                redirect_uri(state)
            ),
        })
}

fn redirect_uri(state: &AppState) -> String {
    format!(
        "{}{CALLBACK_PATH}",
        state.settings.public_url.trim_end_matches('/')
    )
}

/// The code flow of the platform's app; refresh tokens land in `refresh`, from which the
/// callback takes the one it stores encrypted.
fn code_flow(
    state: &AppState,
    refresh: Arc<MemoryRefreshTokenStore>,
) -> Result<CodeFlow, ApiError> {
    let (client_id, secret) = delegated_app(state)?;
    CodeFlow::new(
        &state.identity,
        CodeFlowConfig {
            client_id: client_id.to_owned(),
            auth: Some(ClientAuth::Secret(secret.clone())),
            redirect_uri: redirect_uri(state),
            max_pending_age: STATE_TTL,
        },
        Arc::new(MemoryPendingStore::default()),
        refresh,
    )
    .map_err(ApiError::internal)
}

fn check_hint(hint: Option<&String>) -> Result<Option<String>, ApiError> {
    match hint {
        Some(h) if h.is_empty() || h.chars().count() > 256 || h.chars().any(char::is_control) => {
            Err(ApiError::bad_request(
                "invalid_login_hint",
                "login_hint must be 1 to 256 printable characters",
            ))
        }
        other => Ok(other.cloned()),
    }
}

/// Keeps a pending request server-side, bound to the organization and connection.
async fn keep_pending(
    state: &AppState,
    organization_id: &str,
    connection_id: &str,
    kind: &str,
    pending: &PendingAuthorization,
) -> Result<(), ApiError> {
    let verifier = state
        .ring
        .encrypt(pending.code_verifier.expose_secret().as_bytes())
        .map_err(ApiError::internal)?;
    let created_at = pending.created_at.naive_utc();
    let ttl = chrono::Duration::from_std(STATE_TTL).map_err(ApiError::internal)?;
    state
        .db
        .put_oauth_state(&OAuthState {
            state_hash: hex_sha256(pending.state.expose_secret()),
            organization_id: organization_id.to_owned(),
            connection_id: connection_id.to_owned(),
            kind: kind.to_owned(),
            verifier_ciphertext: verifier.into_bytes(),
            key_id: state.ring.primary_id().to_string(),
            tenant: pending.tenant.clone(),
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            scopes: pending.scopes.join(" "),
            created_at,
            expires_at: created_at + ttl,
        })
        .await?;
    Ok(())
}

/// The connection to start a flow for: this organization's, not disconnected.
async fn startable(
    state: &AppState,
    organization_id: &str,
    connection_id: &str,
) -> Result<tenantlink_store::Connection, ApiError> {
    let connection = state.db.connection(organization_id, connection_id).await?;
    if connection.status == "disconnected" {
        return Err(ApiError::Conflict {
            code: "connection_disconnected",
            message: format!(
                "connection {connection_id} is disconnected: give it a new secret first (PUT /v1/connections/{connection_id}/secret)"
            ),
        });
    }
    Ok(connection)
}

/// `url` with `login_hint` appended (percent-encoded), when given.
fn with_hint(url: String, hint: Option<&str>) -> String {
    let Some(hint) = hint else { return url };
    let encoded: String = hint
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}login_hint={encoded}")
}

/// Starts a delegated sign-in to the connection's tenant with the platform's multi-tenant
/// app: the URL to send the user to (or a 302 to it with `redirect=true`).
#[utoipa::path(get, path = "/v1/connections/{connection_id}/connect/microsoft", tag = "connections",
    params(("connection_id" = String, Path, description = "The connection"), StartQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Send the user to `authorize_url`", body = AuthorizeUrlResponse),
        (status = 302, description = "With `redirect=true`: to Entra ID's authorize page"),
        (status = 400, description = "Malformed query or login_hint", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection in this organization", body = ErrorBody),
        (status = 409, description = "The platform's app is not configured (`delegated_not_configured`), or the connection is disconnected", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn start_microsoft_sign_in(
    auth: OrgAuth,
    state: web::Data<AppState>,
    connection_id: web::Path<String>,
    query: Result<web::Query<StartQuery>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    // The connection first: another organization's id is 404 whatever else is wrong.
    let connection = startable(&state, &auth.organization_id, &connection_id).await?;
    let query = query.map_err(rejected)?;
    delegated_app(&state)?;
    let login_hint = check_hint(query.login_hint.as_ref())?;
    let flow = code_flow(&state, Arc::default())?;
    let start = flow
        .start(&AuthorizeRequest {
            tenant: connection.tenant_id.clone(),
            scopes: vec![state.identity.cloud().graph_scope()],
            login_hint,
            prompt: None,
        })
        .map_err(ApiError::internal)?;
    keep_pending(
        &state,
        &auth.organization_id,
        &connection.id,
        SIGN_IN,
        &start.pending,
    )
    .await?;
    Ok(send_to(query.redirect, start.url, |authorize_url| {
        AuthorizeUrlResponse { authorize_url }
    }))
}

/// Starts an admin consent of the platform's multi-tenant app in the connection's tenant:
/// the URL to send the tenant's administrator to (or a 302 to it with `redirect=true`).
#[utoipa::path(get, path = "/v1/connections/{connection_id}/consent/microsoft", tag = "connections",
    params(("connection_id" = String, Path, description = "The connection"), StartQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Send the administrator to `consent_url`", body = ConsentUrlResponse),
        (status = 302, description = "With `redirect=true`: to Entra ID's admin consent page"),
        (status = 400, description = "Malformed query or login_hint", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No such connection in this organization", body = ErrorBody),
        (status = 409, description = "The platform's app is not configured (`delegated_not_configured`), or the connection is disconnected", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn start_microsoft_consent(
    auth: OrgAuth,
    state: web::Data<AppState>,
    connection_id: web::Path<String>,
    query: Result<web::Query<StartQuery>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let connection = startable(&state, &auth.organization_id, &connection_id).await?;
    let query = query.map_err(rejected)?;
    let (client_id, _) = delegated_app(&state)?;
    let login_hint = check_hint(query.login_hint.as_ref())?;
    let start = state
        .identity
        .admin_consent_start(&AdminConsentRequest {
            tenant: connection.tenant_id.clone(),
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri(&state),
        })
        .map_err(ApiError::internal)?;
    keep_pending(
        &state,
        &auth.organization_id,
        &connection.id,
        ADMIN_CONSENT,
        &start.pending,
    )
    .await?;
    let url = with_hint(start.url, login_hint.as_deref());
    Ok(send_to(query.redirect, url, |consent_url| {
        ConsentUrlResponse { consent_url }
    }))
}

/// A 302 to `url` when `redirect` is true, else 200 with `url` in the body `answer` makes.
fn send_to<B: serde::Serialize>(
    redirect: Option<bool>,
    url: String,
    answer: impl FnOnce(String) -> B,
) -> HttpResponse {
    if redirect == Some(true) {
        HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .finish()
    } else {
        HttpResponse::Ok().json(answer(url))
    }
}

fn invalid_state() -> ApiError {
    ApiError::bad_request(
        "invalid_state",
        "the state is unknown, already used or expired: start the sign-in again",
    )
}

/// Text from the query, cut to a readable length, for an error message.
fn short(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(500).collect()
}

/// An error of the callback in the API's words.
fn callback_error(e: tenantlink_identity::Error) -> ApiError {
    use tenantlink_identity::Error as I;
    match &e {
        I::StateMismatch | I::StateReplayed | I::StateExpired => invalid_state(),
        I::AuthorizationDenied { error, description } => ApiError::bad_request(
            "authorization_denied",
            format!("Entra ID: {}: {}", short(error), short(description)),
        ),
        I::InvalidAuthorizationCode(_) | I::PkceMismatch(_) => {
            ApiError::bad_request("invalid_code", e.to_string())
        }
        I::ConsentRequired(_) | I::InteractionRequired(_) => {
            ApiError::bad_request("consent_required", e.to_string())
        }
        I::Network(_) => ApiError::Upstream {
            code: "entra_unreachable",
            message: "cannot reach Entra ID to redeem the code; start the sign-in again".into(),
        },
        _ => ApiError::Upstream {
            code: "entra_error",
            message: e.to_string(),
        },
    }
}

/// Where Entra ID sends the browser back after a delegated sign-in or an admin consent.
/// No API key: the single-use state authenticates the request. Answers JSON, or a small
/// HTML page when the client accepts `text/html`.
#[utoipa::path(get, path = "/v1/oauth/microsoft/callback", tag = "connections",
    params(CallbackQuery),
    responses(
        (status = 200, description = "Connected (JSON, or HTML for a browser)", body = CallbackResponse),
        (status = 400, description = "Unknown, used or expired state (`invalid_state`); Entra ID's error (`authorization_denied`, with its description); a bad code", body = ErrorBody),
        (status = 409, description = "The platform's app is not configured", body = ErrorBody),
        (status = 502, description = "Entra ID could not be reached or failed", body = ErrorBody),
    ))]
pub(crate) async fn microsoft_callback(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let raw_state = match query.state.as_deref() {
        Some(s) if !s.is_empty() && s.len() <= 512 => s.to_owned(),
        _ => {
            return Err(match &query.error {
                Some(error) => ApiError::bad_request(
                    "authorization_denied",
                    format!(
                        "Entra ID: {}: {}",
                        short(error),
                        short(query.error_description.as_deref().unwrap_or_default())
                    ),
                ),
                None => invalid_state(),
            });
        }
    };
    let now = chrono::Utc::now().naive_utc();
    let row = state
        .db
        .take_oauth_state(&hex_sha256(&raw_state), now)
        .await?
        .ok_or_else(invalid_state)?;
    let verifier = std::str::from_utf8(&row.verifier_ciphertext)
        .map_err(ApiError::internal)
        .and_then(|t| state.ring.decrypt(t).map_err(ApiError::internal))?;
    let verifier = String::from_utf8(verifier.plaintext.expose_secret().to_vec())
        .map_err(ApiError::internal)?;
    let kind = if row.kind == ADMIN_CONSENT {
        PendingKind::AdminConsent
    } else {
        PendingKind::SignIn
    };
    let pending = PendingAuthorization {
        kind,
        state: SecretString::from(raw_state.clone()),
        code_verifier: SecretString::from(verifier),
        tenant: row.tenant.clone(),
        client_id: row.client_id.clone(),
        redirect_uri: row.redirect_uri.clone(),
        scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
        created_at: row.created_at.and_utc(),
    };
    let answer = match kind {
        PendingKind::SignIn => {
            let refresh = Arc::new(MemoryRefreshTokenStore::default());
            let flow = code_flow(&state, refresh.clone())?;
            let signed_in = flow
                .redeem(
                    pending,
                    &AuthorizationCallback {
                        code: query.code.map(SecretString::from),
                        state: Some(raw_state),
                        error: query.error,
                        error_description: query.error_description,
                    },
                )
                .await
                .map_err(callback_error)?;
            if !signed_in
                .account
                .tenant_id
                .eq_ignore_ascii_case(&row.tenant)
            {
                return Err(ApiError::bad_request(
                    "tenant_mismatch",
                    "the account signed in to another tenant than the connection's",
                ));
            }
            let token = refresh
                .load(&signed_in.account, &row.client_id)
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| ApiError::Upstream {
                    code: "entra_error",
                    message: "Entra ID returned no refresh token (offline_access)".into(),
                })?;
            let ciphertext = state
                .ring
                .encrypt(token.expose_secret().as_bytes())
                .map_err(ApiError::internal)?;
            state
                .db
                .put_delegated_token(&DelegatedToken {
                    connection_id: row.connection_id.clone(),
                    principal: signed_in.account.object_id.clone(),
                    token_ciphertext: ciphertext.into_bytes(),
                    key_id: state.ring.primary_id().to_string(),
                    expires_at: None,
                    updated_at: now,
                })
                .await?;
            CallbackResponse {
                connected: true,
                kind: "delegated".into(),
                connection_id: row.connection_id,
                tenant_id: signed_in.account.tenant_id,
                username: signed_in.username,
            }
        }
        PendingKind::AdminConsent => {
            let granted = check_admin_consent(
                &pending,
                &AdminConsentCallback {
                    tenant: query.tenant,
                    state: Some(raw_state),
                    admin_consent: query
                        .admin_consent
                        .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                    error: query.error,
                    error_description: query.error_description,
                },
                STATE_TTL,
            )
            .map_err(callback_error)?;
            state
                .db
                .set_connection_consented(&row.organization_id, &row.connection_id, now)
                .await?;
            CallbackResponse {
                connected: true,
                kind: ADMIN_CONSENT.into(),
                connection_id: row.connection_id,
                tenant_id: granted.tenant_id,
                username: None,
            }
        }
    };
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    Ok(if wants_html {
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(callback_page(&answer))
    } else {
        HttpResponse::Ok().json(answer)
    })
}

fn callback_page(answer: &CallbackResponse) -> String {
    let what = if answer.kind == ADMIN_CONSENT {
        "Administrator consent recorded".to_owned()
    } else {
        format!(
            "Microsoft account {}connected",
            answer
                .username
                .as_deref()
                .map(|u| format!("{} ", html_escape(u)))
                .unwrap_or_default()
        )
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Connected</title></head>\
         <body style=\"font-family:system-ui,sans-serif;margin:3rem\"><h1>{what}</h1>\
         <p>Tenant {}. You can close this window.</p></body></html>",
        html_escape(&answer.tenant_id)
    )
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test, web};
    use serde_json::{Value, json};
    use tenantlink_store::testing::TestDb;

    use super::super::connections::test_http::call;
    use crate::testing;

    /// A redirect URI the emulator's apps have registered. The emulator knows no way to
    /// register the server's own callback URL, so the test points the pending request
    /// there (in the authorize URL and the stored row alike); everything else is the
    /// server's flow.
    const EMULATOR_REDIRECT: &str = "http://localhost/callback";

    /// `url` with its `redirect_uri` replaced, plus a `login_hint` (the emulator signs
    /// that user in without a page).
    fn for_emulator(url: &str, user: &str) -> String {
        let mut parsed = reqwest::Url::parse(url).unwrap();
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| k != "login_hint")
            .map(|(k, v)| {
                if k == "redirect_uri" {
                    (k, EMULATOR_REDIRECT.to_owned())
                } else {
                    (k, v)
                }
            })
            .collect();
        parsed
            .query_pairs_mut()
            .clear()
            .extend_pairs(pairs)
            .append_pair("login_hint", user);
        parsed.into()
    }

    /// Follows an Entra ID URL: the path and query of the callback it redirects to.
    async fn follow(http: &reqwest::Client, url: &str) -> String {
        let res = http.get(url).send().await.unwrap();
        assert_eq!(
            res.status(),
            302,
            "{}",
            res.text().await.unwrap_or_default()
        );
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let query = location
            .strip_prefix(EMULATOR_REDIRECT)
            .unwrap_or_else(|| panic!("{location}"));
        format!(
            "{CALLBACK_PATH}{query}",
            CALLBACK_PATH = super::CALLBACK_PATH
        )
    }

    #[actix_web::test]
    async fn admin_consent_then_delegated_sign_in_end_to_end() {
        let emulator = testing::emulator(21);
        let tenant = emulator.tenants()[0].clone();
        let platform_app = emulator.multi_tenant_app().clone();
        let user = tenant.users[0].clone();
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).unwrap(),
            )
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        for db in TestDb::all().await {
            let backend = db.backend();
            let mut settings = testing::settings();
            settings.delegated_app = Some((
                platform_app.client_id.clone(),
                platform_app.client_secret.clone().into(),
            ));
            let (state, _stop) =
                testing::state(db.db.clone(), testing::emulator_cloud(&emulator), settings);
            let app = test::init_service(
                App::new().configure(crate::app::configure(web::Data::new(state))),
            )
            .await;
            let (org, key) = testing::org_with_key(&db.db, "Contoso").await;
            let (_, other_key) = testing::org_with_key(&db.db, "Fabrikam").await;
            let mut answers: Vec<String> = Vec::new();
            let (status, created, _) = call!(
                &app,
                "POST",
                "/v1/connections",
                &key,
                Some(json!({
                    "tenant_id": tenant.tenant_id,
                    "client_id": tenant.connector_app.client_id,
                    "client_secret": tenant.connector_app.client_secret,
                })),
            )
            .await;
            assert_eq!(status, 201, "{created}");
            let id = created["id"].as_str().unwrap().to_owned();
            let point_at_emulator = async || {
                db.db
                    .execute_admin(&format!(
                        "UPDATE oauth_states SET redirect_uri = '{EMULATOR_REDIRECT}'"
                    ))
                    .await
                    .unwrap();
            };

            // Another organization cannot start either flow on this connection.
            for path in ["connect", "consent"] {
                let uri = format!("/v1/connections/{id}/{path}/microsoft");
                assert_eq!(call!(&app, "GET", &uri, &other_key, None).await.0, 404);
            }
            let (status, body, _) = call!(
                &app,
                "GET",
                &format!("/v1/connections/{id}/connect/microsoft?login_hint="),
                &key,
                None
            )
            .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_login_hint"))
            );

            // Admin consent.
            let (status, body, text) = call!(
                &app,
                "GET",
                &format!("/v1/connections/{id}/consent/microsoft"),
                &key,
                None
            )
            .await;
            assert_eq!(status, 200, "{body}");
            answers.push(text);
            let consent_url = body["consent_url"].as_str().unwrap();
            assert!(consent_url.contains("/adminconsent?"), "{consent_url}");
            point_at_emulator().await;
            let callback = follow(&http, &for_emulator(consent_url, &user)).await;
            let (status, done, text) = call!(&app, "GET", &callback, "none", None).await;
            assert_eq!(status, 200, "{done}");
            answers.push(text);
            assert_eq!(
                (done["kind"].as_str(), done["connection_id"].as_str()),
                (Some("admin_consent"), Some(id.as_str()))
            );
            // Used once.
            let (status, body, _) = call!(&app, "GET", &callback, "none", None).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_state"))
            );

            // Delegated sign-in: the authorize URL, PKCE, the callback, a stored token.
            let (status, body, text) = call!(
                &app,
                "GET",
                &format!("/v1/connections/{id}/connect/microsoft"),
                &key,
                None
            )
            .await;
            assert_eq!(status, 200, "{body}");
            answers.push(text);
            let authorize_url = body["authorize_url"].as_str().unwrap();
            assert!(
                authorize_url.contains("code_challenge_method=S256"),
                "{authorize_url}"
            );
            assert!(!authorize_url.contains("code_verifier"));
            point_at_emulator().await;
            let callback = follow(&http, &for_emulator(authorize_url, &user)).await;
            // A forged state is refused and does not use up the real one.
            let forged = callback.replace("state=", "state=x");
            let (status, body, _) = call!(&app, "GET", &forged, "none", None).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_state"))
            );
            let req = test::TestRequest::get()
                .uri(&callback)
                .insert_header(("accept", "text/html"))
                .to_request();
            let res = test::call_service(&app, req).await;
            assert_eq!(res.status(), 200);
            let page = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
            assert!(page.contains("connected"), "{page}");
            answers.push(page);
            let tokens = db.db.delegated_tokens(&id).await.unwrap();
            assert_eq!(tokens.len(), 1, "{backend:?}");
            // A replay of the callback is refused.
            let (status, body, _) = call!(&app, "GET", &callback, "none", None).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_state"))
            );

            let (_, got, text) =
                call!(&app, "GET", &format!("/v1/connections/{id}"), &key, None).await;
            answers.push(text);
            assert_eq!(got["delegated_accounts"], 1);
            assert!(got["consented_at"].is_string(), "{got}");

            // Entra ID's own error comes back as 400 with its description.
            let (_, body, _) = call!(
                &app,
                "GET",
                &format!("/v1/connections/{id}/connect/microsoft?redirect=true"),
                &key,
                None
            )
            .await;
            assert_eq!(body, Value::Null);
            let res = test::call_service(
                &app,
                test::TestRequest::get()
                    .uri(&format!(
                        "/v1/connections/{id}/connect/microsoft?redirect=true"
                    ))
                    .insert_header(("authorization", format!("Bearer {key}")))
                    .to_request(),
            )
            .await;
            assert_eq!(res.status(), 302);
            let location = res
                .headers()
                .get("location")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let state = reqwest::Url::parse(&location)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "state")
                .unwrap()
                .1
                .into_owned();
            let (status, body, _) = call!(
                &app,
                "GET",
                &format!(
                    "{}?error=access_denied&error_description=The+user+declined&state={state}",
                    super::CALLBACK_PATH
                ),
                "none",
                None
            )
            .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("authorization_denied")),
                "{body}"
            );
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("The user declined")
            );
            let (status, _, _) = call!(&app, "GET", super::CALLBACK_PATH, "none", None).await;
            assert_eq!(status, 400);

            // Disconnecting erases the delegated token.
            assert_eq!(
                call!(&app, "DELETE", &format!("/v1/connections/{id}"), &key, None)
                    .await
                    .0,
                204
            );
            assert!(db.db.delegated_tokens(&id).await.unwrap().is_empty());
            let (status, body, _) = call!(
                &app,
                "GET",
                &format!("/v1/connections/{id}/connect/microsoft"),
                &key,
                None
            )
            .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (409, Some("connection_disconnected"))
            );

            // No answer held a secret, a token or a ciphertext.
            for text in &answers {
                assert!(!text.contains(&platform_app.client_secret), "{text}");
                assert!(
                    !text.contains(&tenant.connector_app.client_secret),
                    "{text}"
                );
                assert!(!text.contains("gAAAAA") && !text.contains("eyJ"), "{text}");
                assert!(
                    !text.contains("refresh_token") && !text.contains("access_token"),
                    "{text}"
                );
            }
            let _ = org;
        }
    }

    #[actix_web::test]
    async fn delegated_routes_say_what_to_configure() {
        let db = TestDb::sqlite().await;
        let (state, _stop) =
            testing::state(db.db.clone(), testing::offline_cloud(), testing::settings());
        let app =
            test::init_service(App::new().configure(crate::app::configure(web::Data::new(state))))
                .await;
        let (org, key) = testing::org_with_key(&db.db, "Contoso").await;
        let connection = db
            .db
            .create_connection(tenantlink_store::NewConnection {
                organization_id: org,
                tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
                client_id: "00000000-0000-0000-0000-000000000001".into(),
                auth_kind: tenantlink_store::AuthKind::ClientSecret,
                secret: Some((b"ciphertext".to_vec(), "key".into())),
                secret_expires_at: None,
                granted_permissions: vec![],
                missing_permissions: vec![],
            })
            .await
            .unwrap();
        for path in ["connect", "consent"] {
            let uri = format!("/v1/connections/{}/{path}/microsoft", connection.id);
            let (status, body, _) = call!(&app, "GET", &uri, &key, None).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (409, Some("delegated_not_configured"))
            );
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("MICROSOFT_CLIENT_ID")
            );
        }
    }
}
