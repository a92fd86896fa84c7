#![doc = include_str!("../README.md")]

mod cache;
mod certificate;
mod claims;
mod client;
mod cloud;
mod error;
mod http;
mod options;

pub use cache::{CacheKey, CacheStats, TokenCache, TokenCacheConfig};
pub use certificate::ClientCertificate;
pub use claims::{TokenClaims, granted_roles, missing_roles};
pub use client::{AppCredential, AppCredentialConfig, ClientAuth, IdentityClient};
pub use cloud::{Cloud, CloudConfig};
pub use error::{AadDetails, Error};
pub use options::IdentityClientOptions;

/// Re-exported so callers need not name `secrecy` themselves.
pub use secrecy::{ExposeSecret, SecretSlice, SecretString};
