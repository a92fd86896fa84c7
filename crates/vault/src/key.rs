//! Fernet keys: parsing, generation, PBKDF2 derivation from a passphrase, and key identifiers.

use std::fmt;
use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hmac::Mac as _;
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// The fewest PBKDF2-HMAC-SHA256 iterations [`FernetKey::derive`] accepts.
pub const MIN_PBKDF2_ITERATIONS: u32 = 100_000;

/// The iterations used when none are configured (the same as the platform tenantlink replaces).
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = MIN_PBKDF2_ITERATIONS;

/// A short, non-secret identifier of a key, so callers can record which key wrote a value.
///
/// It is the first 6 bytes of `HMAC-SHA256(key, "tenantlink key id v1")`, as 12 hex digits:
/// stable for a key, different across keys, and of no help in recovering the key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// The identifier as text (12 lowercase hex digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// One Fernet key: a 128-bit HMAC-SHA256 signing key and a 128-bit AES encryption key.
///
/// The key material is zeroized when the value is dropped, and neither `Debug` nor any
/// error ever shows it: `Debug` prints the [`KeyId`] only.
#[derive(Clone)]
pub struct FernetKey {
    pub(crate) material: Zeroizing<[u8; 32]>,
    pub(crate) fernet: fernet::Fernet,
    id: KeyId,
}

impl FernetKey {
    /// Generates a new random key from the operating system's random number generator.
    pub fn generate() -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(bytes.as_mut()).map_err(|_| Error::Random)?;
        Ok(Self::from_bytes(bytes))
    }

    /// Parses a Fernet key: url-safe base64 of 32 bytes (padding optional).
    pub fn from_base64(encoded: &str) -> Result<Self> {
        let trimmed = encoded.trim().trim_end_matches('=');
        let decoded = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(trimmed)
                .map_err(|_| Error::KeyNotBase64)?,
        );
        if decoded.len() != 32 {
            return Err(Error::KeyLength {
                actual: decoded.len(),
            });
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&decoded);
        Ok(Self::from_bytes(bytes))
    }

    /// Derives a key from a passphrase and salt with PBKDF2-HMAC-SHA256.
    ///
    /// The 32 derived bytes are the Fernet key, exactly as Python's
    /// `base64.urlsafe_b64encode(PBKDF2HMAC(SHA256(), 32, salt, iterations).derive(passphrase))`
    /// gives it. `iterations` must be at least [`MIN_PBKDF2_ITERATIONS`]. Derivation is slow on
    /// purpose: do it once, when the key ring is built.
    pub fn derive(passphrase: &SecretString, salt: &[u8], iterations: u32) -> Result<Self> {
        if iterations < MIN_PBKDF2_ITERATIONS {
            return Err(Error::TooFewIterations {
                requested: iterations,
                minimum: MIN_PBKDF2_ITERATIONS,
            });
        }
        if passphrase.expose_secret().is_empty() {
            return Err(Error::EmptyPassphrase);
        }
        if salt.is_empty() {
            return Err(Error::SaltRequired);
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        pbkdf2_hmac_sha256(
            passphrase.expose_secret().as_bytes(),
            salt,
            iterations,
            bytes.as_mut(),
        );
        Ok(Self::from_bytes(bytes))
    }

    /// The key as url-safe base64 with padding (the standard Fernet key form), kept secret.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(URL_SAFE.encode(self.material.as_ref()))
    }

    /// This key's non-secret identifier.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    pub(crate) fn signing_key(&self) -> &[u8] {
        &self.material[..16]
    }

    pub(crate) fn encryption_key(&self) -> &[u8] {
        &self.material[16..]
    }

    fn from_bytes(material: Zeroizing<[u8; 32]>) -> Self {
        let mut encoded = Zeroizing::new(URL_SAFE.encode(material.as_ref()));
        let fernet = fernet::Fernet::new(&encoded).expect("32 bytes always make a Fernet key");
        encoded.zeroize();
        let id = key_id(material.as_ref());
        Self {
            material,
            fernet,
            id,
        }
    }
}

impl fmt::Debug for FernetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FernetKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn key_id(material: &[u8]) -> KeyId {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(material)
        .expect("HMAC accepts keys of any length");
    mac.update(b"tenantlink key id v1");
    let digest = mac.finalize().into_bytes();
    let mut id = String::with_capacity(12);
    for byte in &digest[..6] {
        id.push_str(&format!("{byte:02x}"));
    }
    KeyId(id)
}

/// PBKDF2-HMAC-SHA256 without the iteration floor, for the key derivation and its test vectors.
pub(crate) fn pbkdf2_hmac_sha256(secret: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        secret,
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 7914, section 11: the PBKDF2-HMAC-SHA256 test vectors.
    #[test]
    fn pbkdf2_matches_rfc7914_vectors() {
        let mut out = [0u8; 64];
        pbkdf2_hmac_sha256(b"passwd", b"salt", 1, &mut out);
        assert_eq!(
            hex(&out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
             49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        );
        pbkdf2_hmac_sha256(b"Password", b"NaCl", 80_000, &mut out);
        assert_eq!(
            hex(&out),
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56\
             a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"
        );
    }

    /// The widely published PBKDF2-HMAC-SHA256 vector (P="password", S="salt", c=4096, 32 bytes).
    #[test]
    fn pbkdf2_matches_published_4096_vector() {
        let mut out = [0u8; 32];
        pbkdf2_hmac_sha256(b"password", b"salt", 4096, &mut out);
        assert_eq!(
            hex(&out),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }

    #[test]
    fn derive_enforces_floor_and_inputs() {
        let pass = SecretString::from("correct horse battery staple");
        assert_eq!(
            FernetKey::derive(&pass, b"salt", 99_999).unwrap_err(),
            Error::TooFewIterations {
                requested: 99_999,
                minimum: 100_000
            }
        );
        assert_eq!(
            FernetKey::derive(&pass, b"", 100_000).unwrap_err(),
            Error::SaltRequired
        );
        assert_eq!(
            FernetKey::derive(&SecretString::from(""), b"salt", 100_000).unwrap_err(),
            Error::EmptyPassphrase
        );
    }

    #[test]
    fn derive_is_deterministic_and_salted() {
        let pass = SecretString::from("correct horse battery staple");
        let a = FernetKey::derive(&pass, b"salt-a", 100_000).unwrap();
        let b = FernetKey::derive(&pass, b"salt-a", 100_000).unwrap();
        let c = FernetKey::derive(&pass, b"salt-b", 100_000).unwrap();
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert_eq!(a.to_base64().expose_secret(), b.to_base64().expose_secret());
    }

    #[test]
    fn base64_round_trip_and_errors() {
        let key = FernetKey::generate().unwrap();
        let encoded = key.to_base64();
        assert_eq!(encoded.expose_secret().len(), 44);
        let again = FernetKey::from_base64(encoded.expose_secret()).unwrap();
        assert_eq!(again.id(), key.id());
        // Padding is optional, surrounding whitespace is ignored.
        let unpadded = encoded.expose_secret().trim_end_matches('=').to_owned();
        assert_eq!(
            FernetKey::from_base64(&format!(" {unpadded}\n"))
                .unwrap()
                .id(),
            key.id()
        );
        assert_eq!(
            FernetKey::from_base64("not base64 at all!").unwrap_err(),
            Error::KeyNotBase64
        );
        assert_eq!(
            FernetKey::from_base64(&URL_SAFE.encode([7u8; 31])).unwrap_err(),
            Error::KeyLength { actual: 31 }
        );
    }

    #[test]
    fn key_ids_are_short_stable_and_distinct() {
        let a = FernetKey::generate().unwrap();
        let b = FernetKey::generate().unwrap();
        assert_eq!(a.id().as_str().len(), 12);
        assert!(a.id().as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.id(), b.id());
        assert_eq!(a.clone().id(), a.id());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = FernetKey::generate().unwrap();
        let debug = format!("{key:?}");
        let encoded = key.to_base64();
        let encoded = encoded.expose_secret();
        assert!(debug.contains(key.id().as_str()));
        assert!(!debug.contains(encoded));
        assert!(!debug.contains(encoded.trim_end_matches('=')));
        assert!(!debug.contains(&hex(key.signing_key())));
        assert!(!debug.contains(&hex(key.encryption_key())));
        assert!(!format!("{:?}", key.to_base64()).contains(encoded));
    }
}
