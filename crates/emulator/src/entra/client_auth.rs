//! Client authentication at the token endpoint: a client secret in the body
//! (`client_secret_post`) or in HTTP Basic (`client_secret_basic`, URL-encoded id and
//! secret), or a certificate-signed client assertion (`private_key_jwt`, RFC 7523).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use serde_json::Value;

use super::error::{AadError, app_not_found, missing_parameter};
use super::token::Form;
use crate::state::State;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    /// A client secret.
    Secret,
    /// A client assertion signed with a registered certificate.
    Assertion,
    /// Nothing (a public client redeeming a code or refresh token).
    None,
}

/// Where the token request is addressed: its tenant and the URLs a client assertion's
/// `aud` may name.
#[derive(Debug, Clone)]
pub(crate) struct Audience<'a> {
    /// The tenant the token is for (id), or the path segment for `common`.
    pub(crate) tenant: &'a str,
    /// The path segment as called.
    pub(crate) segment: &'a str,
}

fn percent_decode(s: &str) -> String {
    let plus_as_space = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

fn invalid_basic() -> AadError {
    AadError::new(
        "invalid_client",
        7_000_215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
    )
}

/// Identifies and authenticates the client; `required` is false for grants a public client
/// may use. Returns the client id and how it authenticated.
pub(crate) fn authenticate(
    state: &State,
    form: &Form,
    authorization: Option<&str>,
    audience: &Audience<'_>,
    required: bool,
) -> Result<(String, Credential), AadError> {
    let basic = match authorization.and_then(|h| h.strip_prefix("Basic ")) {
        Some(encoded) => {
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(invalid_basic)?;
            let (id, secret) = decoded.split_once(':').ok_or_else(invalid_basic)?;
            Some((percent_decode(id), percent_decode(secret)))
        }
        None => None,
    };
    let assertion = form.get("client_assertion");
    let assertion_claims = match assertion {
        Some(a) => Some(crate::jwt::unverified_parts(a).map_err(|_| {
            AadError::new(
                "invalid_request",
                50027,
                "JWT token is invalid or malformed.",
            )
        })?),
        None => None,
    };
    let client_id = basic
        .as_ref()
        .map(|(id, _)| id.clone())
        .or_else(|| form.get("client_id").map(str::to_owned))
        .or_else(|| {
            assertion_claims
                .as_ref()
                .and_then(|(_, c)| c.get("iss").and_then(Value::as_str).map(str::to_owned))
        })
        .ok_or_else(|| missing_parameter("client_id"))?;
    if let (Some((id, _)), Some(body_id)) = (&basic, form.get("client_id"))
        && id != body_id
    {
        return Err(AadError::new(
            "invalid_request",
            900_144,
            "The client_id in the Authorization header does not match the client_id in the request body.",
        ));
    }
    let world = state.read();
    let display_tenant = world
        .tenant(audience.tenant)
        .map_or(audience.tenant, |t| t.display_name.as_str());
    let app = world
        .apps
        .get(&client_id)
        .ok_or_else(|| app_not_found(&client_id, display_tenant))?;
    let secret = basic
        .map(|(_, s)| s)
        .or_else(|| form.get("client_secret").map(str::to_owned));
    if let Some(secret) = secret {
        let Some(found) = app.secrets.iter().find(|s| s.value == secret) else {
            return Err(AadError::new(
                "invalid_client",
                7_000_215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            ));
        };
        if found.expires <= Utc::now() {
            return Err(AadError::new(
                "invalid_client",
                7_000_222,
                format!(
                    "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
                ),
            ));
        }
        return Ok((client_id, Credential::Secret));
    }
    if let (Some(token), Some((header, claims))) = (assertion, assertion_claims) {
        if form.get("client_assertion_type") != Some(JWT_BEARER) {
            return Err(AadError::new(
                "invalid_request",
                50027,
                format!("The client_assertion_type must be '{JWT_BEARER}'."),
            ));
        }
        let header_thumb = |name: &str| {
            header
                .get(name)
                .and_then(Value::as_str)
                .map(|s| s.trim_end_matches('=').to_owned())
        };
        let s256 = header_thumb("x5t#S256");
        let s1 = header_thumb("x5t");
        let cert = app.certificates.iter().find(|c| {
            s256.as_deref() == Some(c.thumbprint_sha256.as_str())
                || s1.as_deref() == Some(c.thumbprint_sha1.as_str())
        });
        let Some(cert) = cert else {
            return Err(AadError::new(
                "invalid_client",
                700_027,
                format!(
                    "Client assertion failed signature validation. (Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.)",
                    s256.or(s1).unwrap_or_default()
                ),
            ));
        };
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(AadError::new(
                "invalid_client",
                700_027,
                "Client assertion failed signature validation. (Reason - The algorithm is not RS256.)",
            ));
        }
        if cert.expires <= Utc::now() {
            return Err(AadError::new(
                "invalid_client",
                700_027,
                format!(
                    "The certificate with identifier used to sign the client assertion is expired on application '{client_id}'."
                ),
            ));
        }
        let parsed = super::certs::parse_der(&cert.der).map_err(|e| {
            AadError::new(
                "invalid_client",
                700_027,
                format!("Client assertion failed signature validation. ({e})"),
            )
        })?;
        let (signed, signature) = token.rsplit_once('.').unwrap_or((token, ""));
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature.trim_end_matches('='))
            .unwrap_or_default();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &parsed.rsa_public_key,
        )
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| {
            AadError::new(
                "invalid_client",
                700_027,
                "Client assertion failed signature validation. (Reason - The provided signature value did not match the expected signature value.)",
            )
        })?;
        let claim = |name: &str| claims.get(name).and_then(Value::as_str);
        if claim("iss") != Some(client_id.as_str()) || claim("sub") != Some(client_id.as_str()) {
            return Err(AadError::new(
                "invalid_client",
                700_021,
                "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials.",
            ));
        }
        let base = &state.https_url;
        let accepted = [
            format!("{base}/{}/oauth2/v2.0/token", audience.segment),
            format!("{base}/{}/oauth2/v2.0/token", audience.tenant),
            format!("{base}/{}/v2.0", audience.tenant),
        ];
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => accepted.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| accepted.iter().any(|x| x == a)),
            _ => false,
        };
        if !aud_ok {
            return Err(AadError::new(
                "invalid_client",
                700_023,
                format!(
                    "Client assertion audience claim does not match Realm issuer. Expected '{}'.",
                    accepted[0]
                ),
            ));
        }
        let now = Utc::now().timestamp();
        let exp = claims.get("exp").and_then(Value::as_i64);
        let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
        match exp {
            Some(exp) if exp + 300 >= now && nbf - 300 <= now => {}
            _ => {
                return Err(AadError::new(
                    "invalid_client",
                    700_024,
                    format!(
                        "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
                        Utc::now().to_rfc3339(),
                        nbf,
                        exp.map_or_else(|| "(none)".to_owned(), |e| e.to_string())
                    ),
                ));
            }
        }
        let Some(jti) = claim("jti") else {
            return Err(AadError::new(
                "invalid_client",
                50027,
                "JWT token is invalid or malformed: the client assertion has no 'jti' claim.",
            ));
        };
        let jti_key = format!("{client_id}:{jti}");
        drop(world);
        let fresh = state
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .use_assertion_id(&jti_key, exp.unwrap_or(now));
        if !fresh {
            return Err(AadError::new(
                "invalid_client",
                50013,
                format!(
                    "Assertion is invalid: the client assertion with jti '{jti}' was already used (replayed)."
                ),
            ));
        }
        return Ok((client_id, Credential::Assertion));
    }
    if required {
        return Err(AadError::new(
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    Ok((client_id, Credential::None))
}
