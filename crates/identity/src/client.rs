//! The identity client (cloud, HTTP, shared token cache) and app-only credentials with a
//! client secret or a certificate, as `azure_core` `TokenCredential`s.

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use secrecy::{ExposeSecret as _, SecretString};

use crate::cache::{CacheKey, TokenCache, TokenCacheConfig};
use crate::certificate::ClientCertificate;
use crate::cloud::{CloudConfig, validate_tenant};
use crate::error::Error;
use crate::http::{TokenResponse, post_token};
use crate::options::IdentityClientOptions;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How an app proves who it is.
#[derive(Clone)]
pub enum ClientAuth {
    /// A client secret.
    Secret(SecretString),
    /// A certificate: each request carries a fresh client assertion signed with its key.
    Certificate(Arc<ClientCertificate>),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([REDACTED])"),
            Self::Certificate(cert) => f.debug_tuple("Certificate").field(cert).finish(),
        }
    }
}

impl ClientAuth {
    /// Adds the client authentication fields to a token request and calls `send` with it.
    pub(crate) async fn send(
        &self,
        http: &reqwest::Client,
        endpoint: &str,
        client_id: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, Error> {
        let mut full: Vec<(&str, &str)> = form.to_vec();
        full.push(("client_id", client_id));
        match self {
            Self::Secret(secret) => {
                full.push(("client_secret", secret.expose_secret()));
                post_token(http, endpoint, &full).await
            }
            Self::Certificate(cert) => {
                let assertion = cert.client_assertion(client_id, endpoint)?;
                full.push(("client_assertion_type", JWT_BEARER));
                full.push(("client_assertion", assertion.expose_secret()));
                post_token(http, endpoint, &full).await
            }
        }
    }
}

/// Configuration of an app-only credential in one tenant.
#[derive(Debug, Clone)]
pub struct AppCredentialConfig {
    /// The tenant id or verified domain.
    pub tenant_id: String,
    /// The application (client) id.
    pub client_id: String,
    /// The app's secret or certificate.
    pub auth: ClientAuth,
}

impl AppCredentialConfig {
    /// Checks the tenant and client id.
    pub fn validate(&self) -> Result<(), Error> {
        validate_tenant(&self.tenant_id)?;
        if self.tenant_id == "common" || self.tenant_id == "organizations" {
            return Err(Error::Config(
                "app-only tokens need a tenant id or domain, not `common` or `organizations`"
                    .into(),
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(Error::Config("the client id is empty".into()));
        }
        if let ClientAuth::Secret(secret) = &self.auth
            && secret.expose_secret().is_empty()
        {
            return Err(Error::Config("the client secret is empty".into()));
        }
        Ok(())
    }
}

pub(crate) struct ClientInner {
    pub(crate) cloud: CloudConfig,
    pub(crate) http: reqwest::Client,
    pub(crate) cache: Arc<TokenCache>,
}

/// Entry point: a cloud, an HTTP client and a token cache shared by every credential made
/// from it. Cheap to clone.
#[derive(Clone)]
pub struct IdentityClient {
    pub(crate) inner: Arc<ClientInner>,
}

impl std::fmt::Debug for IdentityClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityClient")
            .field("authority_host", &self.inner.cloud.authority_host)
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

impl IdentityClient {
    /// A client for a cloud with a default-sized token cache.
    pub fn new(
        cloud: impl Into<CloudConfig>,
        options: &IdentityClientOptions,
    ) -> Result<Self, Error> {
        Self::with_cache(
            cloud,
            options,
            Arc::new(TokenCache::new(TokenCacheConfig::default())?),
        )
    }

    /// A client that shares an existing token cache.
    pub fn with_cache(
        cloud: impl Into<CloudConfig>,
        options: &IdentityClientOptions,
        cache: Arc<TokenCache>,
    ) -> Result<Self, Error> {
        let cloud = cloud.into();
        cloud.validate()?;
        let http = options.build_client()?;
        Ok(Self {
            inner: Arc::new(ClientInner { cloud, http, cache }),
        })
    }

    /// The cloud's endpoints.
    pub fn cloud(&self) -> &CloudConfig {
        &self.inner.cloud
    }

    /// The shared token cache.
    pub fn cache(&self) -> &Arc<TokenCache> {
        &self.inner.cache
    }

    /// An app-only (client credentials) credential for one tenant.
    pub fn app_credential(&self, config: AppCredentialConfig) -> Result<AppCredential, Error> {
        config.validate()?;
        Ok(AppCredential {
            endpoint: self.inner.cloud.token_endpoint(&config.tenant_id),
            client: self.clone(),
            config,
        })
    }

    /// An `azure_core` transport sending through this client's HTTP client (same TLS stack
    /// and roots), for `azure_identity` credentials and other Azure SDK clients.
    pub fn azure_core_transport(&self) -> crate::transport::AzureCoreTransport {
        crate::transport::AzureCoreTransport::new(self.inner.http.clone())
    }

    /// Forgets every cached token of a tenant.
    pub fn forget_tenant(&self, tenant_id: &str) {
        self.inner.cache.remove_tenant(tenant_id);
    }
}

/// An app-only credential (client credentials grant) for one tenant, with a secret or a
/// certificate. Tokens are cached and refreshed before they expire.
///
/// Debug shows the tenant and client id, never the secret.
#[derive(Clone)]
pub struct AppCredential {
    client: IdentityClient,
    config: AppCredentialConfig,
    endpoint: String,
}

impl std::fmt::Debug for AppCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredential")
            .field("tenant_id", &self.config.tenant_id)
            .field("client_id", &self.config.client_id)
            .field("auth", &self.config.auth)
            .finish_non_exhaustive()
    }
}

impl AppCredential {
    /// The tenant this credential signs in to.
    pub fn tenant_id(&self) -> &str {
        &self.config.tenant_id
    }

    /// The app's client id.
    pub fn client_id(&self) -> &str {
        &self.config.client_id
    }

    /// A token for `scopes` (one resource, e.g. `https://graph.microsoft.com/.default`),
    /// from the cache when it is fresh.
    pub async fn token(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        if scopes.is_empty() {
            return Err(Error::Config("at least one scope is required".into()));
        }
        let key = CacheKey::new(&self.config.tenant_id, &self.config.client_id, None, scopes);
        self.client
            .inner
            .cache
            .get_or_fetch(&key, || self.fetch(scopes))
            .await
    }

    async fn fetch(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        let scope = scopes.join(" ");
        tracing::debug!(tenant = %self.config.tenant_id, client = %self.config.client_id, %scope, "client credentials request");
        let res = self
            .config
            .auth
            .send(
                &self.client.inner.http,
                &self.endpoint,
                &self.config.client_id,
                &[("grant_type", "client_credentials"), ("scope", &scope)],
            )
            .await?;
        access_token(res.access_token, res.expires_in)
    }
}

/// The longest lifetime believed from a token endpoint's `expires_in` (one day; Entra ID
/// issues 60-90 minute access tokens).
pub(crate) const MAX_TOKEN_LIFETIME_SECS: i64 = 24 * 60 * 60;

/// The lifetime given to a token whose `expires_in` is zero or negative: short, so it is
/// used for the request at hand and then fetched again.
pub(crate) const MIN_TOKEN_LIFETIME_SECS: i64 = 10;

/// A server-supplied `expires_in`, bounded to
/// [`MIN_TOKEN_LIFETIME_SECS`]..=[`MAX_TOKEN_LIFETIME_SECS`].
pub(crate) fn clamp_lifetime(expires_in: i64) -> i64 {
    if expires_in <= 0 {
        MIN_TOKEN_LIFETIME_SECS
    } else {
        expires_in.min(MAX_TOKEN_LIFETIME_SECS)
    }
}

/// An `AccessToken` expiring `expires_in` seconds from now, the lifetime bounded by
/// [`clamp_lifetime`].
pub(crate) fn access_token(token: String, expires_in: i64) -> Result<AccessToken, Error> {
    access_token_at(token, expires_in, chrono::Utc::now().timestamp())
}

fn access_token_at(token: String, expires_in: i64, now: i64) -> Result<AccessToken, Error> {
    let out_of_range =
        || Error::InvalidResponse(format!("expires_in {expires_in} is out of range"));
    let exp = now
        .checked_add(clamp_lifetime(expires_in))
        .ok_or_else(out_of_range)?;
    let expires_on = OffsetDateTime::from_unix_timestamp(exp).map_err(|_| out_of_range())?;
    Ok(AccessToken::new(token, expires_on))
}

#[async_trait::async_trait]
impl TokenCredential for AppCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(self.token(scopes).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_expires_in_is_clamped_without_overflow() {
        let now = chrono::Utc::now().timestamp();
        for (expires_in, lifetime) in [
            (i64::MAX, MAX_TOKEN_LIFETIME_SECS),
            (i64::MAX - 1, MAX_TOKEN_LIFETIME_SECS),
            (10_i64.pow(15), MAX_TOKEN_LIFETIME_SECS),
            (3600, 3600),
            (1, 1),
            (0, MIN_TOKEN_LIFETIME_SECS),
            (-1, MIN_TOKEN_LIFETIME_SECS),
            (i64::MIN, MIN_TOKEN_LIFETIME_SECS),
        ] {
            let token = access_token_at("t".into(), expires_in, now).unwrap();
            assert_eq!(
                token.expires_on.unix_timestamp(),
                now + lifetime,
                "expires_in {expires_in}"
            );
        }
        // A clock at the end of time is an error, not a panic or a wrap.
        assert!(matches!(
            access_token_at("t".into(), 3600, i64::MAX),
            Err(Error::InvalidResponse(_))
        ));
        // The public entry point, with the real clock.
        let token = access_token("t".into(), i64::MAX).unwrap();
        assert!(token.expires_on.unix_timestamp() <= now + MAX_TOKEN_LIFETIME_SECS + 5);
    }
}
