//! Reading an access token's claims (granted `roles`, `scp`, tenant, object id) without
//! verifying it.
//!
//! These functions decode the JWT payload and do **not** check its signature. That is fine
//! for what they are for: a token this crate just received from Entra ID over TLS, read to
//! report which permissions a tenant's administrator granted. Never use them to authenticate
//! a token someone else sent you.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::error::Error;

/// The claims of an Entra ID access token this crate reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TokenClaims {
    /// Tenant id.
    #[serde(default)]
    pub tid: Option<String>,
    /// Object id of the user or service principal.
    #[serde(default)]
    pub oid: Option<String>,
    /// Client id of the app the token was issued to (v1 tokens).
    #[serde(default)]
    pub appid: Option<String>,
    /// Client id of the app the token was issued to (v2 tokens).
    #[serde(default)]
    pub azp: Option<String>,
    /// Audience (the resource).
    #[serde(default)]
    pub aud: Option<String>,
    /// Granted application permissions.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Granted delegated permissions, space separated.
    #[serde(default)]
    pub scp: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    #[serde(default)]
    pub exp: Option<i64>,
    /// The signed-in user's name (ID tokens).
    #[serde(default)]
    pub preferred_username: Option<String>,
}

impl TokenClaims {
    /// Decodes a JWT's payload **without verifying its signature** (see the module docs).
    pub fn decode_unverified(jwt: &str) -> Result<Self, Error> {
        let payload = jwt
            .split('.')
            .nth(1)
            .ok_or_else(|| Error::MalformedToken("it has no payload part".into()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| Error::MalformedToken("its payload is not base64url".into()))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| Error::MalformedToken("its payload is not JSON claims".into()))
    }

    /// The delegated permissions as a list.
    pub fn scopes(&self) -> Vec<&str> {
        self.scp
            .as_deref()
            .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }
}

/// The application permissions (`roles`) granted in a token, read without verification.
pub fn granted_roles(token: &str) -> Result<Vec<String>, Error> {
    Ok(TokenClaims::decode_unverified(token)?.roles)
}

/// The `required` application permissions the token does not carry: what the tenant's
/// administrator has not granted. Read without verification (see the module docs).
pub fn missing_roles(token: &str, required: &[&str]) -> Result<Vec<String>, Error> {
    let granted = granted_roles(token)?;
    Ok(required
        .iter()
        .filter(|r| !granted.iter().any(|g| g.eq_ignore_ascii_case(r)))
        .map(|r| (*r).to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_roles_of_a_hand_made_token() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"tid":"t","roles":["User.Read.All"]}"#);
        let jwt = format!("e30.{payload}.sig");
        assert_eq!(
            missing_roles(&jwt, &["User.Read.All", "Group.Read.All"]).unwrap(),
            vec!["Group.Read.All"]
        );
        assert!(missing_roles("garbage", &["x"]).is_err());
    }
}
