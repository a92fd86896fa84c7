#![doc = include_str!("../README.md")]

mod config;
mod error;
mod key;
mod ring;
mod self_test;
mod token;

pub use config::{KeySource, VaultConfig};
pub use error::{Error, Result};
pub use key::{DEFAULT_PBKDF2_ITERATIONS, FernetKey, KeyId, MIN_PBKDF2_ITERATIONS};
pub use ring::{Decrypted, KeyRing, Rotated};
pub use self_test::{Check, SelfTestReport, self_test};
pub use token::MAX_CLOCK_SKEW_SECS;

/// The secret types the vault hands out, re-exported so callers need not depend on `secrecy`.
pub use secrecy::{ExposeSecret, SecretSlice, SecretString};

#[cfg(test)]
mod spec_vectors;
#[cfg(test)]
mod tests;
