//! Entra ID's error answers: the JSON body of the token and discovery endpoints, the HTML
//! error page of the interactive endpoints and the parameters of a redirected error, all
//! carrying an `AADSTSnnnn:` description with trace and correlation ids.

use actix_web::HttpResponse;
use serde_json::json;

/// One AADSTS error.
#[derive(Debug, Clone)]
pub(crate) struct AadError {
    /// The OAuth 2.0 `error` (`invalid_client`, `invalid_grant`...).
    pub(crate) error: &'static str,
    /// The AADSTS number.
    pub(crate) code: u32,
    /// The message after `AADSTSnnnn: `.
    pub(crate) message: String,
}

/// Ids and time that make one error answer traceable.
#[derive(Debug, Clone)]
pub(crate) struct Trace {
    trace_id: String,
    correlation_id: String,
    timestamp: String,
}

impl Trace {
    /// A new trace; the correlation id is the caller's `client-request-id` when it sent one,
    /// as Entra ID echoes it.
    pub(crate) fn new(client_request_id: Option<&str>) -> Self {
        Self {
            trace_id: crate::rng::random_guid(),
            correlation_id: client_request_id
                .filter(|id| !id.is_empty() && id.len() <= 64)
                .map_or_else(crate::rng::random_guid, str::to_owned),
            timestamp: chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string(),
        }
    }
}

impl AadError {
    /// An error with its OAuth 2.0 kind, AADSTS number and message.
    pub(crate) fn new(error: &'static str, code: u32, message: impl Into<String>) -> Self {
        Self {
            error,
            code,
            message: message.into(),
        }
    }

    /// 401 for client authentication failures, as Entra ID answers them; 400 otherwise.
    pub(crate) fn status(&self) -> u16 {
        if self.error == "invalid_client" {
            401
        } else {
            400
        }
    }

    /// `AADSTSnnnn: message` and the trace lines.
    pub(crate) fn description(&self, trace: &Trace) -> String {
        format!(
            "AADSTS{}: {}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
            self.code, self.message, trace.trace_id, trace.correlation_id, trace.timestamp
        )
    }

    /// The JSON error answer of the token and metadata endpoints.
    pub(crate) fn json(&self, base_url: &str, trace: &Trace) -> HttpResponse {
        let status = actix_web::http::StatusCode::from_u16(self.status())
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
        HttpResponse::build(status)
            .insert_header(("Cache-Control", "no-store, no-cache"))
            .insert_header(("x-ms-request-id", trace.trace_id.as_str()))
            .json(json!({
                "error": self.error,
                "error_description": self.description(trace),
                "error_codes": [self.code],
                "timestamp": trace.timestamp,
                "trace_id": trace.trace_id,
                "correlation_id": trace.correlation_id,
                "error_uri": format!("{base_url}/error?code={}", self.code),
            }))
    }

    /// The HTML page shown instead of redirecting (unknown app, unregistered redirect URI).
    pub(crate) fn page(&self, trace: &Trace) -> HttpResponse {
        let body = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Sign in to your account</title></head>\n<body>\n<h1>Sorry, but we're having trouble signing you in.</h1>\n<p id=\"error\">AADSTS{}: {}</p>\n<dl><dt>Error code</dt><dd id=\"error-code\">{}</dd><dt>Request Id</dt><dd>{}</dd><dt>Correlation Id</dt><dd>{}</dd><dt>Timestamp</dt><dd>{}</dd></dl>\n</body></html>\n",
            self.code,
            html_escape(&self.message),
            self.error,
            trace.trace_id,
            trace.correlation_id,
            trace.timestamp
        );
        HttpResponse::BadRequest()
            .content_type("text/html; charset=utf-8")
            .body(body)
    }

    /// The parameters of an error sent back to the redirect URI.
    pub(crate) fn redirect_params(&self, base_url: &str, trace: &Trace) -> Vec<(String, String)> {
        vec![
            ("error".into(), self.error.into()),
            ("error_description".into(), self.description(trace)),
            (
                "error_uri".into(),
                format!("{base_url}/error?code={}", self.code),
            ),
        ]
    }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// AADSTS90002: the tenant in the path does not exist.
pub(crate) fn tenant_not_found(tenant: &str) -> AadError {
    AadError::new(
        "invalid_tenant",
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

/// AADSTS900144: a required parameter is missing.
pub(crate) fn missing_parameter(name: &str) -> AadError {
    AadError::new(
        "invalid_request",
        900_144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// AADSTS700016: no such app, or it has no service principal in the tenant.
pub(crate) fn app_not_found(client_id: &str, tenant: &str) -> AadError {
    AadError::new(
        "unauthorized_client",
        700_016,
        format!(
            "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        ),
    )
}

/// AADSTS50011: the redirect URI is not one the app registered.
pub(crate) fn redirect_mismatch(redirect_uri: &str, client_id: &str) -> AadError {
    AadError::new(
        "invalid_request",
        50011,
        format!(
            "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this."
        ),
    )
}

/// AADSTS70011: a scope that is not valid.
pub(crate) fn invalid_scope(scope: &str) -> AadError {
    AadError::new(
        "invalid_scope",
        70011,
        format!(
            "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
        ),
    )
}

/// AADSTS65001: the user or admin has not consented.
pub(crate) fn consent_required(client_id: &str, app_name: &str) -> AadError {
    AadError::new(
        "invalid_grant",
        65001,
        format!(
            "The user or administrator has not consented to use the application with ID '{client_id}' named '{app_name}'. Send an interactive authorization request for this user and resource."
        ),
    )
}

/// AADSTS50057: the account is disabled.
pub(crate) fn user_disabled() -> AadError {
    AadError::new("invalid_grant", 50057, "The user account is disabled.")
}

/// AADSTS50034: no such user in the tenant.
pub(crate) fn user_not_found(upn: &str, tenant: &str) -> AadError {
    AadError::new(
        "invalid_grant",
        50034,
        format!(
            "The user account {upn} does not exist in the {tenant} directory. To sign into this application, the account must be added to the directory."
        ),
    )
}

/// What an AADSTS code the emulator answers means, for the `/error` page.
pub(crate) fn meaning(code: u32) -> Option<&'static str> {
    Some(match code {
        50011 => "The redirect URI in the request is not one registered on the application.",
        50013 => "The assertion is invalid (here: a client assertion whose jti was already used).",
        50027 => "The JWT is invalid or malformed.",
        50034 => "The user account does not exist in the directory.",
        50049 => "Unknown or invalid instance (authority host).",
        50057 => "The user account is disabled.",
        50058 => "A silent sign-in request was sent but no user is signed in.",
        54005 => "The authorization code was already redeemed.",
        65001 => "The user or administrator has not consented to use the application.",
        65004 => "The user declined to consent to access the app.",
        70000 => "The provided grant is invalid or malformed.",
        70003 => "The app requested an unsupported grant type.",
        70008 => "The authorization code or refresh token has expired or is not valid.",
        70011 => "The scope requested is not valid.",
        90002 => "The tenant was not found.",
        90094 => "The grant requires admin permission.",
        500_112 => "The redirect URI does not match the one of the authorization request.",
        501_481 => "The code verifier does not match the code challenge (PKCE).",
        501_491 => "The code challenge or its method is not valid.",
        700_005 => "The authorization code is for another tenant.",
        700_016 => "The application was not found in the directory.",
        700_021 => "The client assertion's issuer or subject is not the client id.",
        700_022 => "The scope names more than one resource.",
        700_023 => "The client assertion's audience is not this token endpoint.",
        700_024 => "The client assertion is not within its valid time range.",
        700_027 => "The client assertion failed signature validation.",
        700_054 => "The response_type is not enabled for the application.",
        700_082 => "The refresh token has expired, was already used or was revoked.",
        900_023 => "The tenant identifier is not valid for this request.",
        900_144 => "A required parameter is missing.",
        1_002_012 => "Client credential flows need a scope ending in /.default.",
        7_000_215 => "An invalid client secret was provided.",
        7_000_218 => "The request must contain client_assertion or client_secret.",
        7_000_222 => "The client secret has expired.",
        9_002_313 => "The request (here: the refresh token) is malformed or invalid.",
        _ => return None,
    })
}
