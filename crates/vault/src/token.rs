//! The Fernet token format: sealing a plaintext, reading a token's timestamp, and telling
//! why a token that failed to decrypt failed.
//!
//! Layout (Fernet specification): `0x80 ‖ timestamp (u64, big-endian) ‖ IV (16) ‖
//! AES-128-CBC(PKCS#7) ciphertext ‖ HMAC-SHA256 (32)`, url-safe base64 with padding.

use aes::cipher::{BlockEncryptMut as _, KeyIvInit as _, block_padding::Pkcs7};
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hmac::Mac as _;

use crate::error::Error;
use crate::key::FernetKey;

/// The Fernet version byte.
pub(crate) const VERSION: u8 = 0x80;
/// How far in the future a token's timestamp may lie (the specification's clock skew).
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;
/// version + timestamp + IV + HMAC.
const OVERHEAD: usize = 1 + 8 + 16 + 32;

/// Builds a token from its parts. `iv` must be 16 random bytes except in test vectors.
pub(crate) fn seal(key: &FernetKey, plaintext: &[u8], timestamp: u64, iv: &[u8; 16]) -> String {
    let ciphertext = cbc::Encryptor::<aes::Aes128>::new_from_slices(key.encryption_key(), iv)
        .expect("AES-128 key and IV are 16 bytes")
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut token = Vec::with_capacity(OVERHEAD + ciphertext.len());
    token.push(VERSION);
    token.extend_from_slice(&timestamp.to_be_bytes());
    token.extend_from_slice(iv);
    token.extend_from_slice(&ciphertext);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.signing_key())
        .expect("HMAC accepts a 16-byte key");
    mac.update(&token);
    token.extend_from_slice(&mac.finalize().into_bytes());
    URL_SAFE.encode(&token)
}

/// Reads the timestamp of a well-formed token (the first 12 base64 characters hold
/// the version and timestamp).
pub(crate) fn timestamp(token: &str) -> Option<u64> {
    let head = URL_SAFE_NO_PAD.decode(token.get(..12)?).ok()?;
    (head[0] == VERSION).then(|| u64::from_be_bytes(head[1..9].try_into().expect("8 bytes")))
}

/// The first key whose HMAC verifies the decoded token, in constant time per key.
fn verifies<'k>(data: &[u8], keys: &[&'k FernetKey]) -> Option<&'k FernetKey> {
    if data.len() < OVERHEAD {
        return None;
    }
    let (message, tag) = data.split_at(data.len() - 32);
    keys.iter().copied().find(|key| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.signing_key())
            .expect("HMAC accepts a 16-byte key");
        mac.update(message);
        mac.verify_slice(tag).is_ok()
    })
}

/// The key of `keys` that verifies `token`'s HMAC, without decrypting it.
pub(crate) fn verifying_key<'k>(
    token: &str,
    keys: impl Iterator<Item = &'k FernetKey>,
) -> Option<&'k FernetKey> {
    let data = decode(token).ok()?;
    let keys: Vec<&FernetKey> = keys.collect();
    verifies(&data, &keys)
}

fn decode(token: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| Error::TokenNotBase64)
}

/// Explains why no key in `keys` decrypted `token` at `now` with `ttl`. Called only after
/// decryption failed, so the fast path pays nothing for precise errors.
pub(crate) fn diagnose<'k>(
    token: &str,
    keys: impl Iterator<Item = &'k FernetKey>,
    ttl: Option<u64>,
    now: u64,
) -> Error {
    let data = match decode(token) {
        Ok(data) => data,
        Err(err) => return err,
    };
    if data.len() < OVERHEAD {
        return Error::TokenTooShort { len: data.len() };
    }
    if data[0] != VERSION {
        return Error::UnsupportedVersion { version: data[0] };
    }
    let (message, _) = data.split_at(data.len() - 32);
    let keys: Vec<&FernetKey> = keys.collect();
    if verifies(&data, &keys).is_none() {
        return Error::WrongKeyOrTampered {
            keys_tried: keys.len(),
        };
    }
    let stamp = u64::from_be_bytes(data[1..9].try_into().expect("8 bytes"));
    if stamp > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Error::FromFuture {
            ahead_secs: stamp - now,
            max_skew_secs: MAX_CLOCK_SKEW_SECS,
        };
    }
    if let Some(ttl) = ttl
        && stamp.saturating_add(ttl) < now
    {
        return Error::Expired {
            age_secs: now - stamp,
            ttl_secs: ttl,
        };
    }
    let ciphertext_len = message.len() - 25;
    if ciphertext_len == 0 || ciphertext_len % 16 != 0 {
        return Error::CiphertextLength {
            len: ciphertext_len,
        };
    }
    Error::BadPadding
}
