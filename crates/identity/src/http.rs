//! Token endpoint requests: posting a form, reading a token answer or an AADSTS error.

use secrecy::SecretString;
use serde_json::Value;

use crate::error::{AadDetails, Error};

/// A successful token endpoint answer. Debug shows no token.
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) expires_in: i64,
    pub(crate) refresh_token: Option<SecretString>,
    pub(crate) scope: Option<String>,
    pub(crate) id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// POSTs a form to a token endpoint.
pub(crate) async fn post_token(
    http: &reqwest::Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> Result<TokenResponse, Error> {
    let refreshing = form
        .iter()
        .any(|(k, v)| *k == "grant_type" && *v == "refresh_token");
    let res = http
        .post(endpoint)
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| Error::Network(e.without_url()))?;
    let status = res.status().as_u16();
    let bytes = res
        .bytes()
        .await
        .map_err(|e| Error::Network(e.without_url()))?;
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    if !(200..300).contains(&status) {
        let details = body.as_ref().and_then(aad_details);
        tracing::debug!(status, details = ?details, "token endpoint refused the request");
        return Err(Error::from_aad(status, details, refreshing));
    }
    let body = body.ok_or_else(|| Error::InvalidResponse("the body is not JSON".into()))?;
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let access_token = text("access_token")
        .ok_or_else(|| Error::InvalidResponse("no access_token in the answer".into()))?;
    let expires_in = match body.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(3600);
    Ok(TokenResponse {
        access_token,
        expires_in,
        refresh_token: text("refresh_token").map(SecretString::from),
        scope: text("scope"),
        id_token: text("id_token"),
    })
}

/// Reads Entra ID's error shape.
fn aad_details(body: &Value) -> Option<AadDetails> {
    let error = body.get("error")?.as_str()?.to_owned();
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let mut error_codes: Vec<u64> = body
        .get("error_codes")
        .and_then(Value::as_array)
        .map(|codes| codes.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let description = text("error_description").unwrap_or_default();
    if error_codes.is_empty() {
        // Older answers only carry the code in the description's `AADSTSnnnn:` prefix.
        if let Some(code) = description
            .strip_prefix("AADSTS")
            .and_then(|rest| rest.split(':').next())
            .and_then(|code| code.parse().ok())
        {
            error_codes.push(code);
        }
    }
    Some(AadDetails {
        error,
        error_codes,
        description,
        trace_id: text("trace_id"),
        correlation_id: text("correlation_id"),
    })
}
