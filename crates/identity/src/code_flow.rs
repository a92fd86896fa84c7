//! Delegated access: the authorization code flow with PKCE, refresh-token rotation into a
//! caller-supplied store, and sign-out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use secrecy::{ExposeSecret as _, SecretString};

use crate::authorization::{
    AuthorizationCallback, PendingAuthorization, PendingKind, PendingStore, take_pending,
};
use crate::cache::CacheKey;
use crate::claims::TokenClaims;
use crate::client::{ClientAuth, IdentityClient, access_token};
use crate::cloud::validate_tenant;
use crate::error::Error;
use crate::http::{TokenResponse, post_token};

/// Scopes every sign-in asks for, so the answer identifies the user and carries a refresh
/// token.
const BASE_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// Configuration of the code flow for one app.
#[derive(Debug, Clone)]
pub struct CodeFlowConfig {
    /// The application (client) id.
    pub client_id: String,
    /// The app's secret or certificate; `None` for a public client (PKCE only).
    pub auth: Option<ClientAuth>,
    /// The redirect URI registered on the app, where the callback arrives.
    pub redirect_uri: String,
    /// How long a pending sign-in stays valid.
    pub max_pending_age: Duration,
}

impl CodeFlowConfig {
    /// Checks the client id, the redirect URI and the pending age.
    pub fn validate(&self) -> Result<(), Error> {
        if self.client_id.trim().is_empty() {
            return Err(Error::Config("the client id is empty".into()));
        }
        let url = reqwest::Url::parse(&self.redirect_uri)
            .map_err(|e| Error::Config(format!("the redirect URI is not a URL: {e}")))?;
        if url.fragment().is_some() {
            return Err(Error::Config(
                "the redirect URI must have no fragment".into(),
            ));
        }
        if self.max_pending_age.is_zero() {
            return Err(Error::Config(
                "max_pending_age must be greater than zero".into(),
            ));
        }
        Ok(())
    }
}

/// What to ask the user for.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeRequest {
    /// `organizations`, `common`, or a tenant id or domain.
    pub tenant: String,
    /// Delegated scopes, e.g. `https://graph.microsoft.com/User.Read`; `openid profile
    /// offline_access` are added.
    pub scopes: Vec<String>,
    /// Pre-fills (or, with the emulator, picks) the account.
    pub login_hint: Option<String>,
    /// `login`, `consent`, `select_account` or `none`.
    pub prompt: Option<String>,
}

/// An authorize URL to send the browser to, and the pending request to keep server-side.
///
/// Debug shows the URL without its query (which carries the `state` and the PKCE
/// challenge).
#[derive(Clone)]
pub struct AuthorizationStart {
    /// Where to redirect the user.
    pub url: String,
    /// What to keep until the callback.
    pub pending: PendingAuthorization,
}

impl std::fmt::Debug for AuthorizationStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationStart")
            .field("url", &url_without_query(&self.url))
            .field("pending", &self.pending)
            .finish()
    }
}

/// A URL cut before its query and fragment, for Debug output and logs.
pub(crate) fn url_without_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// A signed-in account: its tenant and object id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId {
    /// The user's home tenant for this sign-in (`tid`).
    pub tenant_id: String,
    /// The user's object id (`oid`).
    pub object_id: String,
}

/// The result of a sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Who signed in.
    pub account: AccountId,
    /// Their user name (`preferred_username`), when the ID token had it.
    pub username: Option<String>,
    /// A delegated access token.
    pub access_token: AccessToken,
    /// The scopes granted.
    pub scopes: Vec<String>,
}

/// Where refresh tokens live between requests. Each rotation hands the new refresh token to
/// [`save`](RefreshTokenStore::save), so a server can keep it encrypted; the old one stops
/// working at Entra ID.
#[async_trait::async_trait]
pub trait RefreshTokenStore: Send + Sync + std::fmt::Debug {
    /// The account's refresh token for this app, if any.
    async fn load(
        &self,
        account: &AccountId,
        client_id: &str,
    ) -> Result<Option<SecretString>, Error>;
    /// Replaces the account's refresh token for this app.
    async fn save(
        &self,
        account: &AccountId,
        client_id: &str,
        refresh_token: SecretString,
    ) -> Result<(), Error>;
    /// Forgets the account's refresh token for this app.
    async fn remove(&self, account: &AccountId, client_id: &str) -> Result<(), Error>;
    /// Forgets every refresh token of a tenant.
    async fn remove_tenant(&self, tenant_id: &str) -> Result<(), Error>;
}

/// An in-memory [`RefreshTokenStore`] (tests, single-process tools).
#[derive(Default)]
pub struct MemoryRefreshTokenStore {
    tokens: Mutex<HashMap<(AccountId, String), SecretString>>,
}

impl std::fmt::Debug for MemoryRefreshTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRefreshTokenStore")
            .field("accounts", &self.lock().len())
            .finish()
    }
}

impl MemoryRefreshTokenStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(AccountId, String), SecretString>> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl RefreshTokenStore for MemoryRefreshTokenStore {
    async fn load(
        &self,
        account: &AccountId,
        client_id: &str,
    ) -> Result<Option<SecretString>, Error> {
        Ok(self
            .lock()
            .get(&(account.clone(), client_id.to_owned()))
            .cloned())
    }
    async fn save(
        &self,
        account: &AccountId,
        client_id: &str,
        refresh_token: SecretString,
    ) -> Result<(), Error> {
        self.lock()
            .insert((account.clone(), client_id.to_owned()), refresh_token);
        Ok(())
    }
    async fn remove(&self, account: &AccountId, client_id: &str) -> Result<(), Error> {
        self.lock().remove(&(account.clone(), client_id.to_owned()));
        Ok(())
    }
    async fn remove_tenant(&self, tenant_id: &str) -> Result<(), Error> {
        self.lock().retain(|(a, _), _| a.tenant_id != tenant_id);
        Ok(())
    }
}

/// The authorization code flow for one app: authorize URL, callback, code redemption,
/// refresh with rotation, sign-out. Cheap to clone.
#[derive(Clone)]
pub struct CodeFlow {
    client: IdentityClient,
    config: CodeFlowConfig,
    pending: Arc<dyn PendingStore>,
    refresh: Arc<dyn RefreshTokenStore>,
    account_locks: Arc<AccountLocks>,
    /// Refreshes hold it shared, [`CodeFlow::sign_out_tenant`] exclusively: a tenant
    /// sign-out waits for every refresh in flight and no refresh starts during it.
    tenant_sign_out: Arc<tokio::sync::RwLock<()>>,
}

impl std::fmt::Debug for CodeFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeFlow")
            .field("config", &self.config)
            .field("pending", &self.pending)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl CodeFlow {
    /// A code flow keeping pending sign-ins in `pending` and refresh tokens in `refresh`.
    pub fn new(
        client: &IdentityClient,
        config: CodeFlowConfig,
        pending: Arc<dyn PendingStore>,
        refresh: Arc<dyn RefreshTokenStore>,
    ) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            client: client.clone(),
            config,
            pending,
            refresh,
            account_locks: Arc::default(),
            tenant_sign_out: Arc::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CodeFlowConfig {
        &self.config
    }

    /// An authorize URL and the pending request, which the caller keeps (see
    /// [`redeem`](Self::redeem)).
    pub fn start(&self, request: &AuthorizeRequest) -> Result<AuthorizationStart, Error> {
        validate_tenant(&request.tenant)?;
        let mut scopes: Vec<String> = request.scopes.clone();
        for base in BASE_SCOPES {
            if !scopes.iter().any(|s| s == base) {
                scopes.push(base.to_owned());
            }
        }
        let pending = PendingAuthorization::new(
            PendingKind::SignIn,
            &request.tenant,
            &self.config.client_id,
            &self.config.redirect_uri,
            scopes,
        )?;
        let challenge = pending.code_challenge();
        let scope = pending.scopes.join(" ");
        let mut params: Vec<(&str, &str)> = vec![
            ("client_id", &self.config.client_id),
            ("response_type", "code"),
            ("redirect_uri", &self.config.redirect_uri),
            ("response_mode", "query"),
            ("scope", &scope),
            ("state", pending.state.expose_secret()),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        if let Some(hint) = &request.login_hint {
            params.push(("login_hint", hint));
        }
        if let Some(prompt) = &request.prompt {
            params.push(("prompt", prompt));
        }
        let url = reqwest::Url::parse_with_params(
            &self.client.inner.cloud.authorize_endpoint(&request.tenant),
            &params,
        )
        .map_err(|e| Error::Config(format!("cannot build the authorize URL: {e}")))?;
        Ok(AuthorizationStart {
            url: url.into(),
            pending,
        })
    }

    /// An authorize URL; the pending request is kept in the [`PendingStore`] until
    /// [`complete`](Self::complete).
    pub async fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, Error> {
        let start = self.start(request)?;
        self.pending.save(start.pending).await?;
        Ok(start.url)
    }

    /// Handles the callback (the redirect URL or its query) of a sign-in begun with
    /// [`authorize_url`](Self::authorize_url): checks the state (known, single use, not
    /// expired), then redeems the code.
    pub async fn complete(&self, callback_url: &str) -> Result<SignedIn, Error> {
        let callback = AuthorizationCallback::parse(callback_url);
        let pending = take_pending(
            self.pending.as_ref(),
            callback.state.as_deref(),
            PendingKind::SignIn,
            self.config.max_pending_age,
        )
        .await?;
        self.redeem(pending, &callback).await
    }

    /// Checks a callback against a pending request the caller kept (constant-time state
    /// comparison, age), then redeems the code. Taking `pending` by value makes it single use.
    pub async fn redeem(
        &self,
        pending: PendingAuthorization,
        callback: &AuthorizationCallback,
    ) -> Result<SignedIn, Error> {
        if pending.kind != PendingKind::SignIn {
            return Err(Error::StateMismatch);
        }
        pending.check_state(
            callback.state.as_deref().unwrap_or_default(),
            self.config.max_pending_age,
        )?;
        if let Some(error) = &callback.error {
            return Err(Error::AuthorizationDenied {
                error: error.clone(),
                description: callback.error_description.clone().unwrap_or_default(),
            });
        }
        let code = callback
            .code
            .as_ref()
            .ok_or_else(|| Error::AuthorizationDenied {
                error: "missing_code".into(),
                description: "the callback carries no code".into(),
            })?;
        let scope = pending.scopes.join(" ");
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.expose_secret()),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.code_verifier.expose_secret()),
            ("scope", scope.as_str()),
        ];
        let endpoint = self.client.inner.cloud.token_endpoint(&pending.tenant);
        let res = self.send(&endpoint, &form).await?;
        let claims = identify(&res)?;
        let account = AccountId {
            tenant_id: claims.tid.clone().unwrap_or_default(),
            object_id: claims.oid.clone().unwrap_or_default(),
        };
        if let Some(rt) = res.refresh_token.clone() {
            self.refresh
                .save(&account, &self.config.client_id, rt)
                .await?;
        }
        let scopes: Vec<String> = res
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(SignedIn {
            account,
            username: claims.preferred_username,
            access_token: access_token(res.access_token, res.expires_in)?,
            scopes,
        })
    }

    /// A delegated token for a signed-in account, from the cache or by redeeming the stored
    /// refresh token (the rotated refresh token is saved). A refresh token Entra ID no
    /// longer accepts is removed (if it is still the stored one) and
    /// [`Error::RefreshTokenExpired`] returned; when Entra ID asks for multi-factor
    /// authentication or Conditional Access, [`Error::InteractionRequired`] is returned and the
    /// refresh token kept.
    pub async fn access_token(
        &self,
        account: &AccountId,
        scopes: &[&str],
    ) -> Result<AccessToken, Error> {
        let key = CacheKey::new(
            &account.tenant_id,
            &self.config.client_id,
            Some(&account.object_id),
            scopes,
        );
        self.client
            .inner
            .cache
            .get_or_fetch(&key, || self.refresh_now(account, scopes))
            .await
    }

    /// Redeems the stored refresh token now (bypassing the cache) and saves the new one.
    ///
    /// Runs under the account's lock, one refresh per account at a time (each use rotates the
    /// refresh token), and a [`sign_out`](Self::sign_out) waits for it. The rotated token is
    /// saved only if the stored token is still the one sent: an account signed out meanwhile
    /// stays signed out ([`Error::NotSignedIn`]), and a token another process rotated in is
    /// kept.
    pub async fn refresh_now(
        &self,
        account: &AccountId,
        scopes: &[&str],
    ) -> Result<AccessToken, Error> {
        let _tenant = self.tenant_sign_out.read().await;
        let _guard = self.lock_account(account).await;
        let rt = self
            .refresh
            .load(account, &self.config.client_id)
            .await?
            .ok_or(Error::NotSignedIn)?;
        let mut scope: Vec<&str> = scopes.to_vec();
        if !scope.contains(&"offline_access") {
            scope.push("offline_access");
        }
        let scope = scope.join(" ");
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.expose_secret()),
            ("scope", scope.as_str()),
        ];
        let endpoint = self.client.inner.cloud.token_endpoint(&account.tenant_id);
        match self.send(&endpoint, &form).await {
            Ok(res) => {
                if let Some(new) = res.refresh_token.clone() {
                    match self.stored_is(account, &rt).await? {
                        Stored::Same => {
                            self.refresh
                                .save(account, &self.config.client_id, new)
                                .await?;
                        }
                        Stored::Gone => return Err(Error::NotSignedIn),
                        Stored::Replaced => {
                            tracing::debug!(
                                tenant = %account.tenant_id,
                                "the refresh token was replaced during the refresh; keeping the stored one"
                            );
                        }
                    }
                }
                access_token(res.access_token, res.expires_in)
            }
            Err(error @ Error::RefreshTokenExpired(_)) => {
                if self.stored_is(account, &rt).await? == Stored::Same {
                    self.refresh.remove(account, &self.config.client_id).await?;
                }
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Whether the account's stored refresh token is still `sent`.
    async fn stored_is(&self, account: &AccountId, sent: &SecretString) -> Result<Stored, Error> {
        let current = self.refresh.load(account, &self.config.client_id).await?;
        Ok(match current {
            None => Stored::Gone,
            Some(current) if secrets_eq(&current, sent) => Stored::Same,
            Some(_) => Stored::Replaced,
        })
    }

    /// Takes the account's lock (waiting for an in-flight refresh or sign-out). The map entry
    /// is removed when the last holder or waiter lets go, never while it is held.
    async fn lock_account(&self, account: &AccountId) -> AccountGuard<'_> {
        let lock = {
            let mut locks = lock_map(&self.account_locks);
            locks.entry(account.clone()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        AccountGuard {
            locks: &self.account_locks,
            account: account.clone(),
            guard: Some(guard),
        }
    }

    /// A `TokenCredential` for a signed-in account.
    pub fn credential(&self, account: AccountId) -> DelegatedCredential {
        DelegatedCredential {
            flow: self.clone(),
            account,
        }
    }

    /// Forgets an account's refresh token and cached tokens. Waits for a refresh of the
    /// account in flight, then wins: the account stays signed out.
    pub async fn sign_out(&self, account: &AccountId) -> Result<(), Error> {
        let _guard = self.lock_account(account).await;
        self.refresh.remove(account, &self.config.client_id).await?;
        self.client
            .inner
            .cache
            .remove_account(&account.tenant_id, &account.object_id);
        Ok(())
    }

    /// Forgets every refresh token and cached token of a tenant. Waits for the refreshes in
    /// flight (of every tenant: tenant sign-outs are rare) and holds new ones back until it is
    /// done, so the tenant stays signed out.
    pub async fn sign_out_tenant(&self, tenant_id: &str) -> Result<(), Error> {
        let _exclusive = self.tenant_sign_out.write().await;
        self.refresh.remove_tenant(tenant_id).await?;
        self.client.inner.cache.remove_tenant(tenant_id);
        Ok(())
    }

    async fn send(&self, endpoint: &str, form: &[(&str, &str)]) -> Result<TokenResponse, Error> {
        match &self.config.auth {
            Some(auth) => {
                auth.send(
                    &self.client.inner.http,
                    endpoint,
                    &self.config.client_id,
                    form,
                )
                .await
            }
            None => {
                let mut full = form.to_vec();
                full.push(("client_id", &self.config.client_id));
                post_token(&self.client.inner.http, endpoint, &full).await
            }
        }
    }
}

/// What the store holds compared with the refresh token a refresh sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// The token sent.
    Same,
    /// Another token (rotated by another process, or a new sign-in).
    Replaced,
    /// Nothing: the account was signed out.
    Gone,
}

/// Compares two secrets without an early exit on the first difference.
fn secrets_eq(a: &SecretString, b: &SecretString) -> bool {
    let (a, b) = (a.expose_secret().as_bytes(), b.expose_secret().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type AccountLocks = Mutex<HashMap<AccountId, Arc<tokio::sync::Mutex<()>>>>;

fn lock_map(
    locks: &AccountLocks,
) -> std::sync::MutexGuard<'_, HashMap<AccountId, Arc<tokio::sync::Mutex<()>>>> {
    locks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A held account lock. On drop it releases the lock and removes the map entry if nobody
/// else holds or waits for it, so idle accounts do not accumulate.
struct AccountGuard<'a> {
    locks: &'a AccountLocks,
    account: AccountId,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for AccountGuard<'_> {
    fn drop(&mut self) {
        let mut locks = lock_map(self.locks);
        drop(self.guard.take());
        // Every clone of the Arc is made under the map's mutex: a count of one (the map's)
        // means no holder and no waiter.
        if locks
            .get(&self.account)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.account);
        }
    }
}

/// Who the token answer is about: the ID token's claims, else the access token's.
fn identify(res: &TokenResponse) -> Result<TokenClaims, Error> {
    let mut claims = TokenClaims::decode_unverified(&res.access_token).unwrap_or_default();
    if let Some(id) = res
        .id_token
        .as_deref()
        .and_then(|t| TokenClaims::decode_unverified(t).ok())
    {
        claims.tid = id.tid.or(claims.tid);
        claims.oid = id.oid.or(claims.oid);
        claims.preferred_username = id.preferred_username;
    }
    if claims.tid.is_none() || claims.oid.is_none() {
        return Err(Error::InvalidResponse(
            "the tokens do not name the tenant (tid) and user (oid)".into(),
        ));
    }
    Ok(claims)
}

/// A signed-in account's delegated tokens as a `TokenCredential`.
#[derive(Debug, Clone)]
pub struct DelegatedCredential {
    flow: CodeFlow,
    account: AccountId,
}

#[async_trait::async_trait]
impl TokenCredential for DelegatedCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(self.flow.access_token(&self.account, scopes).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorization::MemoryPendingStore;
    use crate::cloud::Cloud;
    use crate::options::IdentityClientOptions;

    fn client() -> IdentityClient {
        IdentityClient::new(
            Cloud::Custom {
                base_url: "https://127.0.0.1:9".into(),
            },
            &IdentityClientOptions::default(),
        )
        .unwrap()
    }

    fn code_flow(refresh: Arc<dyn RefreshTokenStore>) -> CodeFlow {
        CodeFlow::new(
            &client(),
            CodeFlowConfig {
                client_id: "client".into(),
                auth: None,
                redirect_uri: "http://localhost/cb".into(),
                max_pending_age: Duration::from_secs(600),
            },
            Arc::new(MemoryPendingStore::default()),
            refresh,
        )
        .unwrap()
    }

    #[test]
    fn authorization_start_debug_hides_state_and_challenge() {
        let flow = code_flow(Arc::new(MemoryRefreshTokenStore::default()));
        let start = flow
            .start(&AuthorizeRequest {
                tenant: "organizations".into(),
                scopes: vec!["https://graph.microsoft.com/User.Read".into()],
                login_hint: None,
                prompt: None,
            })
            .unwrap();
        let state = start.pending.state.expose_secret().to_owned();
        let challenge = start.pending.code_challenge();
        assert!(start.url.contains(&state) && start.url.contains(&challenge));
        let debug = format!("{start:?}");
        assert!(!debug.contains(&state), "{debug}");
        assert!(!debug.contains(&challenge), "{debug}");
        assert!(!debug.contains(start.pending.code_verifier.expose_secret()));
        assert!(
            debug.contains("https://127.0.0.1:9/organizations/oauth2/v2.0/authorize"),
            "{debug}"
        );

        let consent = client()
            .admin_consent_start(&crate::consent::AdminConsentRequest {
                tenant: "organizations".into(),
                client_id: "client".into(),
                redirect_uri: "http://localhost/cb".into(),
            })
            .unwrap();
        let state = consent.pending.state.expose_secret().to_owned();
        assert!(!format!("{consent:?}").contains(&state));

        let callback = crate::authorization::AdminConsentCallback::parse(&format!(
            "tenant=t1&state={state}&admin_consent=True"
        ));
        assert!(!format!("{callback:?}").contains(&state));
    }

    #[tokio::test]
    async fn account_locks_are_trimmed_when_idle_and_kept_while_held() {
        let flow = code_flow(Arc::new(MemoryRefreshTokenStore::default()));
        let account = AccountId {
            tenant_id: "t".into(),
            object_id: "o".into(),
        };
        let held = flow.lock_account(&account).await;
        let waiter = tokio::spawn({
            let (flow, account) = (flow.clone(), account.clone());
            async move {
                let _second = flow.lock_account(&account).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        assert_eq!(lock_map(&flow.account_locks).len(), 1);
        drop(held);
        // The waiter still has the entry: it was not removed under it.
        waiter.await.unwrap();
        assert!(lock_map(&flow.account_locks).is_empty());
    }
}
