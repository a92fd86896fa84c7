//! RS256 JSON Web Tokens: the emulator's signing key, its JWKS, signing and verification.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand_core::SeedableRng as _;
use ring::signature::{self, RsaKeyPair};
use rsa::pkcs8::EncodePrivateKey as _;
use serde_json::{Map, Value, json};

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// Not RS256 or not our key id.
    #[error("the token's header names an unknown algorithm or key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
}

/// The emulator's token signing key (RSA 2048, deterministic from the seed).
pub(crate) struct Signer {
    key_pair: RsaKeyPair,
    public: signature::RsaPublicKeyComponents<Vec<u8>>,
    kid: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Generates the key from the seed: the same seed gives the same key, so tokens survive a
    /// restart of an emulator with the same seed.
    pub(crate) fn from_seed(seed: u64) -> Self {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed ^ 0x7465_6e61_6e74_6c6b);
        let private = rsa::PrivateKey::new(&mut rng, 2048).expect("RSA key generation");
        let der = private.to_pkcs8_der().expect("PKCS#8 encoding");
        let key_pair = RsaKeyPair::from_pkcs8(der.as_bytes()).expect("ring reads the key");
        let public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(key_pair.public());
        let thumb = ring::digest::digest(&ring::digest::SHA256, &public.n);
        let kid = B64.encode(&thumb.as_ref()[..20]);
        Self {
            key_pair,
            public,
            kid,
        }
    }

    /// The key id (`kid`) in token headers and the JWKS.
    #[cfg(test)]
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document (`{"keys": [...]}`).
    pub(crate) fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "x5t": self.kid,
            "n": B64.encode(&self.public.n),
            "e": B64.encode(&self.public.e),
        }]})
    }

    /// Signs claims into a compact RS256 JWT.
    pub(crate) fn sign(&self, claims: &Map<String, Value>) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid, "x5t": self.kid});
        let mut input = String::with_capacity(1024);
        input.push_str(&B64.encode(header.to_string()));
        input.push('.');
        input.push_str(&B64.encode(Value::Object(claims.clone()).to_string()));
        let mut sig = vec![0u8; self.key_pair.public().modulus_len()];
        self.key_pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing");
        input.push('.');
        input.push_str(&B64.encode(sig));
        input
    }

    /// Verifies a token signed by this key and returns its claims. Time, audience and
    /// tenant checks are the caller's: they differ per service.
    pub(crate) fn verify(&self, token: &str) -> Result<Map<String, Value>, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Value = decode_json(h)?;
        if header["alg"] != "RS256" || header["kid"] != self.kid.as_str() {
            return Err(JwtError::UnknownKey);
        }
        let sig = B64.decode(s).map_err(|_| JwtError::Malformed)?;
        self.public
            .verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                &token.as_bytes()[..h.len() + 1 + c.len()],
                &sig,
            )
            .map_err(|_| JwtError::BadSignature)?;
        match decode_json(c)? {
            Value::Object(claims) => Ok(claims),
            _ => Err(JwtError::Malformed),
        }
    }
}

/// What goes into an access token.
#[derive(Debug, Clone)]
pub(crate) struct AccessTokenSpec {
    /// The emulator's HTTPS base URL (the issuer is `{base}/{tenant}/v2.0`).
    pub(crate) issuer_base: String,
    /// Tenant id (`tid`).
    pub(crate) tenant_id: String,
    /// Client id (`appid`, `azp`).
    pub(crate) client_id: String,
    /// Audience: the resource (`https://graph.microsoft.com`, ...).
    pub(crate) audience: String,
    /// Application permissions (`roles`), for app tokens.
    pub(crate) roles: Vec<String>,
    /// Delegated scopes (`scp`), for user tokens.
    pub(crate) scopes: Vec<String>,
    /// The signed-in user (object id, userPrincipalName, display name), for user tokens.
    pub(crate) user: Option<(String, String, String)>,
    /// Lifetime from now.
    pub(crate) lifetime: std::time::Duration,
    /// Shift of `iat`/`nbf`/`exp` (negative to mint an already expired token in tests).
    pub(crate) skew_secs: i64,
}

/// Signs an access token as Entra ID shapes them and returns it with its lifetime in seconds.
pub(crate) fn issue_access_token(signer: &Signer, spec: &AccessTokenSpec) -> (String, u64) {
    let now = chrono::Utc::now().timestamp() + spec.skew_secs;
    let lifetime = i64::try_from(spec.lifetime.as_secs()).unwrap_or(3600);
    let sp_oid = derived_guid(&format!("sp:{}:{}", spec.tenant_id, spec.client_id));
    let mut c = Map::new();
    c.insert("aud".into(), json!(spec.audience));
    c.insert(
        "iss".into(),
        json!(format!("{}/{}/v2.0", spec.issuer_base, spec.tenant_id)),
    );
    c.insert("iat".into(), json!(now));
    c.insert("nbf".into(), json!(now));
    c.insert("exp".into(), json!(now + lifetime));
    c.insert("tid".into(), json!(spec.tenant_id));
    c.insert("appid".into(), json!(spec.client_id));
    c.insert("azp".into(), json!(spec.client_id));
    c.insert("appidacr".into(), json!("1"));
    c.insert("azpacr".into(), json!("1"));
    c.insert(
        "idtyp".into(),
        json!(if spec.user.is_some() { "user" } else { "app" }),
    );
    c.insert("ver".into(), json!("2.0"));
    c.insert("uti".into(), json!(crate::rng::random_token(16)));
    match &spec.user {
        Some((oid, upn, name)) => {
            c.insert("oid".into(), json!(oid));
            c.insert(
                "sub".into(),
                json!(derived_guid(&format!("sub:{oid}:{}", spec.client_id))),
            );
            c.insert("upn".into(), json!(upn));
            c.insert("preferred_username".into(), json!(upn));
            c.insert("name".into(), json!(name));
            c.insert("scp".into(), json!(spec.scopes.join(" ")));
        }
        None => {
            c.insert("oid".into(), json!(sp_oid));
            c.insert("sub".into(), json!(sp_oid));
            c.insert("roles".into(), json!(spec.roles));
        }
    }
    (signer.sign(&c), u64::try_from(lifetime).unwrap_or(0))
}

/// A stable GUID derived from a string (service principal and subject ids).
pub(crate) fn derived_guid(input: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, input.as_bytes());
    let b = d.as_ref();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

/// Decodes one base64url JSON part of a JWT (no verification).
pub(crate) fn decode_json(part: &str) -> Result<Value, JwtError> {
    let bytes = B64
        .decode(part.trim_end_matches('='))
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// Reads the claims of a JWT without verifying it (for client assertions, whose key is
/// looked up from the claims first).
pub(crate) fn unverified_parts(token: &str) -> Result<(Value, Map<String, Value>), JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    match decode_json(c)? {
        Value::Object(claims) => Ok((decode_json(h)?, claims)),
        _ => Err(JwtError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reject_tampering() {
        let signer = Signer::from_seed(1);
        assert_eq!(signer.kid(), Signer::from_seed(1).kid());
        assert_ne!(signer.kid(), Signer::from_seed(2).kid());
        let mut claims = Map::new();
        claims.insert("tid".into(), json!("t"));
        let token = signer.sign(&claims);
        assert_eq!(signer.verify(&token).unwrap()["tid"], "t");
        let mut tampered = token.clone();
        tampered.insert(tampered.find('.').unwrap() + 2, 'x');
        assert!(signer.verify(&tampered).is_err());
        assert_eq!(
            Signer::from_seed(2).verify(&token).unwrap_err(),
            JwtError::UnknownKey
        );
        assert_eq!(signer.verify("a.b").unwrap_err(), JwtError::Malformed);
    }
}
