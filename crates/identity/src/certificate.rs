//! Certificate credentials: an RSA private key and its certificate, and the RS256 client
//! assertion (RFC 7523) Entra ID accepts in place of a client secret.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::RsaKeyPair;
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};

use crate::error::Error;

/// How long a client assertion is valid.
const ASSERTION_LIFETIME_SECS: i64 = 600;

/// An app's certificate and RSA private key. Debug shows only the thumbprint.
pub struct ClientCertificate {
    key: RsaKeyPair,
    x5t: String,
    x5t_s256: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.x5t_s256)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// From a PEM private key (`PRIVATE KEY`, PKCS#8, or `RSA PRIVATE KEY`, PKCS#1) and a PEM
    /// certificate (the first `CERTIFICATE` block is the app's).
    pub fn from_pem(private_key_pem: &SecretString, certificate_pem: &str) -> Result<Self, Error> {
        let key = private_key_pem.expose_secret();
        let (label, der) = if let Some(der) = pem_block(key, "PRIVATE KEY") {
            ("PRIVATE KEY", der)
        } else if let Some(der) = pem_block(key, "RSA PRIVATE KEY") {
            ("RSA PRIVATE KEY", der)
        } else {
            return Err(Error::Certificate(
                "the private key PEM has no PRIVATE KEY or RSA PRIVATE KEY block".into(),
            ));
        };
        let der = SecretSlice::from(der);
        let cert = pem_block(certificate_pem, "CERTIFICATE").ok_or_else(|| {
            Error::Certificate("the certificate PEM has no CERTIFICATE block".into())
        })?;
        if label == "PRIVATE KEY" {
            Self::from_der(&der, &cert)
        } else {
            let key = RsaKeyPair::from_der(der.expose_secret())
                .map_err(|e| Error::Certificate(format!("the PKCS#1 RSA key is unusable: {e}")))?;
            Ok(Self::with_key(key, &cert))
        }
    }

    /// From a PKCS#8 DER private key and a DER certificate.
    pub fn from_der(
        private_key_pkcs8: &SecretSlice<u8>,
        certificate_der: &[u8],
    ) -> Result<Self, Error> {
        let key = RsaKeyPair::from_pkcs8(private_key_pkcs8.expose_secret()).map_err(|e| {
            Error::Certificate(format!(
                "the private key is not a usable PKCS#8 RSA key: {e}"
            ))
        })?;
        if certificate_der.is_empty() {
            return Err(Error::Certificate("the certificate is empty".into()));
        }
        Ok(Self::with_key(key, certificate_der))
    }

    fn with_key(key: RsaKeyPair, certificate_der: &[u8]) -> Self {
        let s1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, certificate_der);
        let s256 = ring::digest::digest(&ring::digest::SHA256, certificate_der);
        Self {
            key,
            x5t: URL_SAFE_NO_PAD.encode(s1),
            x5t_s256: URL_SAFE_NO_PAD.encode(s256),
        }
    }

    /// The certificate's SHA-1 thumbprint, base64url (`x5t`).
    pub fn x5t(&self) -> &str {
        &self.x5t
    }

    /// The certificate's SHA-256 thumbprint, base64url (`x5t#S256`).
    pub fn x5t_s256(&self) -> &str {
        &self.x5t_s256
    }

    /// A client assertion for `client_id` at `token_endpoint`: RS256, header `x5t#S256` and
    /// `x5t`, claims `aud`, `iss`, `sub`, a random `jti`, `nbf`, `iat` and `exp` (10 minutes).
    pub fn client_assertion(
        &self,
        client_id: &str,
        token_endpoint: &str,
    ) -> Result<SecretString, Error> {
        let now = chrono::Utc::now().timestamp();
        let header = serde_json::json!({
            "alg": "RS256", "typ": "JWT", "x5t": self.x5t, "x5t#S256": self.x5t_s256,
        });
        let claims = serde_json::json!({
            "aud": token_endpoint, "iss": client_id, "sub": client_id, "jti": random_id()?,
            "nbf": now, "iat": now, "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::Certificate("signing the client assertion failed".into()))?;
        Ok(SecretString::from(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

/// A random UUID-shaped id.
fn random_id() -> Result<String, Error> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| Error::Certificate(format!("no system randomness: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// The DER bytes of the first PEM block with this label.
fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_and_ids() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_block(pem, "CERTIFICATE"), Some(vec![0, 1, 2, 3]));
        assert_eq!(pem_block(pem, "PRIVATE KEY"), None);
        let id = random_id().unwrap();
        assert_eq!(id.len(), 36);
        assert_ne!(id, random_id().unwrap());
        let bad =
            SecretString::from("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----");
        let err = ClientCertificate::from_pem(&bad, pem).unwrap_err();
        assert!(!format!("{err:?}").contains("AAAA"));
    }
}
