//! The vault's error vocabulary. No variant carries a key, a token or a plaintext.

/// What went wrong in the vault.
///
/// Every message says what happened and, where there is one, what to do, without
/// repeating the key, passphrase, token or plaintext involved.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A key string is not url-safe base64.
    #[error(
        "the key is not url-safe base64; a Fernet key is 44 characters such as `tenantlink vault generate-key` prints"
    )]
    KeyNotBase64,
    /// A key decodes to the wrong number of bytes.
    #[error(
        "the key decodes to {actual} bytes; a Fernet key is exactly 32 bytes (44 url-safe base64 characters)"
    )]
    KeyLength {
        /// How many bytes the key decoded to.
        actual: usize,
    },
    /// A passphrase was given without a salt.
    #[error(
        "a passphrase needs a salt to derive a key from; set the salt (CREDENTIAL_ENCRYPTION_SALT) or use a Fernet key instead"
    )]
    SaltRequired,
    /// A passphrase is empty.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// PBKDF2 was asked for fewer iterations than the floor.
    #[error("PBKDF2 needs at least {minimum} iterations, {requested} were asked for")]
    TooFewIterations {
        /// The iterations requested.
        requested: u32,
        /// The floor, [`crate::MIN_PBKDF2_ITERATIONS`].
        minimum: u32,
    },
    /// The token is not url-safe base64.
    #[error("the token is not url-safe base64")]
    TokenNotBase64,
    /// The token is too short to hold a version, timestamp, IV and HMAC.
    #[error("the token is too short to be a Fernet token ({len} bytes)")]
    TokenTooShort {
        /// Decoded length in bytes.
        len: usize,
    },
    /// The token's version byte is not 0x80.
    #[error("the token has version {version:#04x}; only Fernet version 0x80 is supported")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// No key in the ring verifies the token's HMAC.
    #[error(
        "no key in the ring verifies this token: it was written under another key or it was altered (keys tried: {keys_tried})"
    )]
    WrongKeyOrTampered {
        /// How many keys were tried.
        keys_tried: usize,
    },
    /// The token's timestamp lies beyond the allowed clock skew.
    #[error(
        "the token's timestamp is {ahead_secs} s in the future (more than the {max_skew_secs} s clock skew allowed)"
    )]
    FromFuture {
        /// Seconds ahead of now.
        ahead_secs: u64,
        /// Allowed skew in seconds.
        max_skew_secs: u64,
    },
    /// The token is older than the TTL the caller gave.
    #[error("the token expired: it is {age_secs} s old and the TTL is {ttl_secs} s")]
    Expired {
        /// Age of the token in seconds.
        age_secs: u64,
        /// The TTL asked for.
        ttl_secs: u64,
    },
    /// The ciphertext is not a whole number of AES blocks.
    #[error(
        "the token's ciphertext is {len} bytes, not a positive multiple of the 16-byte AES block"
    )]
    CiphertextLength {
        /// Ciphertext length in bytes.
        len: usize,
    },
    /// The ciphertext decrypted to invalid PKCS#7 padding.
    #[error("the token's ciphertext has invalid padding")]
    BadPadding,
    /// The configuration is not usable.
    #[error("invalid vault configuration: {0}")]
    Config(String),
    /// The system random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
}

/// The vault's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
