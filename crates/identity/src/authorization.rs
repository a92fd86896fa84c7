//! Pending interactive requests (sign-in and admin consent): random `state`, PKCE S256,
//! callback parsing, and the constant-time, single-use, expiring state check.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};

use crate::error::Error;

/// What a pending request is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingKind {
    /// A user sign-in (authorization code with PKCE).
    SignIn,
    /// An administrator's tenant-wide consent.
    AdminConsent,
}

/// A request sent to the authorize or admin consent endpoint and not answered yet. Keep it
/// server-side (a [`PendingStore`], or your own session storage), never in the browser.
///
/// Debug shows neither the state nor the PKCE verifier.
#[derive(Clone)]
pub struct PendingAuthorization {
    /// What it waits for.
    pub kind: PendingKind,
    /// The random `state` sent with the request.
    pub state: SecretString,
    /// The PKCE code verifier (43 characters of the unreserved set, 256 random bits).
    pub code_verifier: SecretString,
    /// The tenant segment used (`organizations`, `common`, a tenant id or domain).
    pub tenant: String,
    /// The app's client id.
    pub client_id: String,
    /// The redirect URI the answer comes back to.
    pub redirect_uri: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// When the request was made.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("kind", &self.kind)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl PendingAuthorization {
    /// A new pending request with a fresh random state and PKCE verifier.
    pub fn new(
        kind: PendingKind,
        tenant: &str,
        client_id: &str,
        redirect_uri: &str,
        scopes: Vec<String>,
    ) -> Result<Self, Error> {
        Ok(Self {
            kind,
            state: SecretString::from(random_url_safe(32)?),
            code_verifier: SecretString::from(random_url_safe(32)?),
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            created_at: Utc::now(),
        })
    }

    /// The PKCE S256 challenge: base64url(SHA-256(verifier)).
    pub fn code_challenge(&self) -> String {
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            self.code_verifier.expose_secret().as_bytes(),
        );
        URL_SAFE_NO_PAD.encode(digest)
    }

    /// Checks a callback's `state` against this request in constant time, and that the
    /// request is younger than `max_age`.
    pub fn check_state(&self, state: &str, max_age: Duration) -> Result<(), Error> {
        if !constant_time_eq(self.state.expose_secret(), state) {
            return Err(Error::StateMismatch);
        }
        let age = Utc::now().signed_duration_since(self.created_at);
        if age.num_milliseconds() < 0 || age.to_std().is_ok_and(|age| age > max_age) {
            return Err(Error::StateExpired);
        }
        Ok(())
    }
}

/// Compares two strings in time that depends only on their SHA-256 digests' length (it
/// hashes both first, so lengths do not leak either).
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    let da = ring::digest::digest(&ring::digest::SHA256, a.as_bytes());
    let db = ring::digest::digest(&ring::digest::SHA256, b.as_bytes());
    digests_eq(da.as_ref(), db.as_ref())
}

fn digests_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `n` random bytes, base64url without padding (only unreserved characters).
pub(crate) fn random_url_safe(n: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Error::Config(format!("no system randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Where pending requests wait for their callback. Implement it over your database or
/// session store; [`MemoryPendingStore`] keeps them in memory.
#[async_trait::async_trait]
pub trait PendingStore: Send + Sync + std::fmt::Debug {
    /// Keeps a pending request.
    async fn save(&self, pending: PendingAuthorization) -> Result<(), Error>;
    /// Removes and returns the pending request with this state (compare in constant time).
    /// A state that was already taken is [`Error::StateReplayed`]; an unknown one `Ok(None)`.
    async fn take(&self, state: &str) -> Result<Option<PendingAuthorization>, Error>;
}

/// An in-memory [`PendingStore`]: bounded, remembers used states to report replays.
///
/// It holds at most `capacity` pending requests. When full, requests older than `max_age`
/// (10 minutes by default) are dropped first; only if every kept request is younger is the
/// oldest one dropped. So sign-ins are safe from eviction as long as fewer than `capacity`
/// are started within `max_age`: size the capacity for that, and rate-limit the endpoint
/// that starts sign-ins (each start is unauthenticated).
pub struct MemoryPendingStore {
    capacity: usize,
    max_age: Duration,
    inner: Mutex<MemoryPending>,
}

#[derive(Default)]
struct MemoryPending {
    pending: VecDeque<PendingAuthorization>,
    used: VecDeque<[u8; 32]>,
}

impl std::fmt::Debug for MemoryPendingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryPendingStore")
            .field("pending", &inner.pending.len())
            .field("used", &inner.used.len())
            .finish()
    }
}

impl Default for MemoryPendingStore {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl MemoryPendingStore {
    /// A store keeping at most `capacity` pending requests (expired ones go first, then the
    /// oldest) and as many used states, with requests expiring after 10 minutes.
    pub fn new(capacity: usize) -> Self {
        Self::with_max_age(capacity, Duration::from_secs(600))
    }

    /// A store whose requests expire after `max_age` (use the flow's `max_pending_age`).
    pub fn with_max_age(capacity: usize, max_age: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            max_age,
            inner: Mutex::new(MemoryPending::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryPending> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn sha256(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref());
    out
}

#[async_trait::async_trait]
impl PendingStore for MemoryPendingStore {
    async fn save(&self, pending: PendingAuthorization) -> Result<(), Error> {
        let mut inner = self.lock();
        if inner.pending.len() >= self.capacity {
            let max_age = chrono::Duration::from_std(self.max_age).unwrap_or(chrono::Duration::MAX);
            let oldest_kept = Utc::now().checked_sub_signed(max_age);
            inner
                .pending
                .retain(|p| oldest_kept.is_none_or(|limit| p.created_at >= limit));
        }
        while inner.pending.len() >= self.capacity {
            inner.pending.pop_front();
        }
        inner.pending.push_back(pending);
        Ok(())
    }

    async fn take(&self, state: &str) -> Result<Option<PendingAuthorization>, Error> {
        let mut inner = self.lock();
        let digest = sha256(state);
        let mut found = None;
        for (i, p) in inner.pending.iter().enumerate() {
            if digests_eq(&sha256(p.state.expose_secret()), &digest) {
                found = Some(i);
            }
        }
        if let Some(i) = found {
            let pending = inner.pending.remove(i);
            while inner.used.len() >= self.capacity {
                inner.used.pop_front();
            }
            inner.used.push_back(digest);
            return Ok(pending);
        }
        let replayed = inner
            .used
            .iter()
            .fold(false, |seen, used| seen | digests_eq(used, &digest));
        if replayed {
            return Err(Error::StateReplayed);
        }
        Ok(None)
    }
}

/// Takes the pending request for a callback's state from a store and checks it: single use,
/// constant-time match, not older than `max_age`, of the expected kind.
pub(crate) async fn take_pending(
    store: &dyn PendingStore,
    state: Option<&str>,
    kind: PendingKind,
    max_age: Duration,
) -> Result<PendingAuthorization, Error> {
    let state = state.ok_or(Error::StateMismatch)?;
    let pending = store.take(state).await?.ok_or(Error::StateMismatch)?;
    if pending.kind != kind {
        return Err(Error::StateMismatch);
    }
    pending.check_state(state, max_age)?;
    Ok(pending)
}

/// The query parameters of a redirect (a full URL or just its query).
pub(crate) fn query_pairs(url_or_query: &str) -> Vec<(String, String)> {
    let query = match url_or_query.split_once('?') {
        Some((_, q)) => q,
        None => url_or_query,
    };
    let query = query.split('#').next().unwrap_or_default();
    reqwest::Url::parse(&format!("http://callback/?{query}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// The authorize endpoint's answer at the redirect URI. Debug hides the code.
#[derive(Clone, Default)]
pub struct AuthorizationCallback {
    /// The authorization code.
    pub code: Option<SecretString>,
    /// The state echoed back.
    pub state: Option<String>,
    /// An OAuth error, e.g. `access_denied`.
    pub error: Option<String>,
    /// The error's description.
    pub error_description: Option<String>,
}

impl std::fmt::Debug for AuthorizationCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationCallback")
            .field("code", &self.code.as_ref().map(|_| "[REDACTED]"))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish_non_exhaustive()
    }
}

impl AuthorizationCallback {
    /// Parses the redirect URL (or its query string).
    pub fn parse(url_or_query: &str) -> Self {
        let mut out = Self::default();
        for (k, v) in query_pairs(url_or_query) {
            match k.as_str() {
                "code" => out.code = Some(SecretString::from(v)),
                "state" => out.state = Some(v),
                "error" => out.error = Some(v),
                "error_description" => out.error_description = Some(v),
                _ => {}
            }
        }
        out
    }
}

/// The admin consent endpoint's answer at the redirect URI. Debug hides the state.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AdminConsentCallback {
    /// The tenant whose administrator answered.
    pub tenant: Option<String>,
    /// The state echoed back.
    pub state: Option<String>,
    /// `admin_consent=True`.
    pub admin_consent: bool,
    /// An OAuth error, e.g. `access_denied`.
    pub error: Option<String>,
    /// The error's description.
    pub error_description: Option<String>,
}

impl std::fmt::Debug for AdminConsentCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConsentCallback")
            .field("tenant", &self.tenant)
            .field("admin_consent", &self.admin_consent)
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish_non_exhaustive()
    }
}

impl AdminConsentCallback {
    /// Parses the redirect URL (or its query string).
    pub fn parse(url_or_query: &str) -> Self {
        let mut out = Self::default();
        for (k, v) in query_pairs(url_or_query) {
            match k.as_str() {
                "tenant" => out.tenant = Some(v),
                "state" => out.state = Some(v),
                "admin_consent" => out.admin_consent = v.eq_ignore_ascii_case("true"),
                "error" => out.error = Some(v),
                "error_description" => out.error_description = Some(v),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_checks() {
        let p = PendingAuthorization::new(
            PendingKind::SignIn,
            "common",
            "c",
            "http://localhost/cb",
            vec![],
        )
        .unwrap();
        let verifier = p.code_verifier.expose_secret().to_owned();
        assert!((43..=128).contains(&verifier.len()));
        assert!(
            verifier
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
        );
        assert_eq!(p.code_challenge().len(), 43);
        let state = p.state.expose_secret().to_owned();
        assert!(!format!("{p:?}").contains(&state));
        assert!(!format!("{p:?}").contains(&verifier));
        p.check_state(&state, Duration::from_secs(60)).unwrap();
        assert!(matches!(
            p.check_state("other", Duration::from_secs(60)),
            Err(Error::StateMismatch)
        ));
        let mut old = p.clone();
        old.created_at -= chrono::Duration::seconds(120);
        assert!(matches!(
            old.check_state(&state, Duration::from_secs(60)),
            Err(Error::StateExpired)
        ));

        let store = MemoryPendingStore::default();
        store.save(p).await.unwrap();
        let max = Duration::from_secs(60);
        assert!(matches!(
            take_pending(&store, Some("nope"), PendingKind::SignIn, max).await,
            Err(Error::StateMismatch)
        ));
        take_pending(&store, Some(&state), PendingKind::SignIn, max)
            .await
            .unwrap();
        assert!(matches!(
            take_pending(&store, Some(&state), PendingKind::SignIn, max).await,
            Err(Error::StateReplayed)
        ));

        let cb = AuthorizationCallback::parse("http://localhost/cb?code=abc&state=s%20t#frag");
        assert_eq!(cb.state.as_deref(), Some("s t"));
        assert!(!format!("{cb:?}").contains("abc"));
        let consent = AdminConsentCallback::parse("tenant=t1&state=x&admin_consent=True");
        assert!(consent.admin_consent);
    }

    #[tokio::test]
    async fn a_full_pending_store_drops_expired_requests_first() {
        let new = || {
            PendingAuthorization::new(
                PendingKind::SignIn,
                "common",
                "c",
                "http://localhost/cb",
                vec![],
            )
            .unwrap()
        };
        let store = MemoryPendingStore::with_max_age(3, Duration::from_secs(60));
        let legit = new();
        let legit_state = legit.state.expose_secret().to_owned();
        let mut stale = new();
        stale.created_at -= chrono::Duration::seconds(120);
        let stale_state = stale.state.expose_secret().to_owned();
        // An expired request was saved before the live one (FIFO would evict the live one
        // second).
        store.save(stale).await.unwrap();
        store.save(legit).await.unwrap();
        store.save(new()).await.unwrap();
        // Full: the expired one goes, the legitimate one stays.
        store.save(new()).await.unwrap();
        assert!(store.take(&stale_state).await.unwrap().is_none());
        assert!(store.take(&legit_state).await.unwrap().is_some());
        // Full of live requests: the oldest goes, the bound holds.
        for _ in 0..5 {
            store.save(new()).await.unwrap();
        }
        assert_eq!(store.lock().pending.len(), 3);
    }
}
