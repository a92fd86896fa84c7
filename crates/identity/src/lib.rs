#![doc = include_str!("../README.md")]

mod authorization;
mod cache;
mod certificate;
mod claims;
mod client;
mod cloud;
mod code_flow;
mod consent;
mod error;
mod http;
mod options;
mod transport;

pub use authorization::{
    AdminConsentCallback, AuthorizationCallback, MemoryPendingStore, PendingAuthorization,
    PendingKind, PendingStore,
};
pub use cache::{CacheKey, CacheStats, TokenCache, TokenCacheConfig};
pub use certificate::ClientCertificate;
pub use claims::{TokenClaims, granted_roles, missing_roles};
pub use client::{AppCredential, AppCredentialConfig, ClientAuth, IdentityClient};
pub use cloud::{Cloud, CloudConfig};
pub use code_flow::{
    AccountId, AuthorizationStart, AuthorizeRequest, CodeFlow, CodeFlowConfig, DelegatedCredential,
    MemoryRefreshTokenStore, RefreshTokenStore, SignedIn,
};
pub use consent::{AdminConsentRequest, ConsentGranted, check_admin_consent};
pub use error::{AadDetails, Error};
pub use options::IdentityClientOptions;
pub use transport::AzureCoreTransport;

/// Re-exported so callers need not name `secrecy` themselves.
pub use secrecy::{ExposeSecret, SecretSlice, SecretString};
