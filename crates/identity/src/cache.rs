//! The token cache: keyed by tenant, client, account and scopes; refreshed before expiry;
//! one refresh at a time per key; bounded in size.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::AccessToken;

use crate::error::Error;

/// When a refresh fails, the old token is served only if it still has this long to live
/// (seconds), so a caller never gets a token that expires before its request arrives.
const MIN_FALLBACK_LIFE_SECS: i64 = 30;

/// What a cached token is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The tenant id (or domain) the token was issued in.
    pub tenant_id: String,
    /// The app's client id.
    pub client_id: String,
    /// The signed-in user's object id for delegated tokens; `None` for app-only tokens.
    pub account: Option<String>,
    /// The scopes, sorted and space separated.
    pub scopes: String,
}

impl CacheKey {
    /// A key; the scopes are sorted so their order does not matter.
    pub fn new(tenant_id: &str, client_id: &str, account: Option<&str>, scopes: &[&str]) -> Self {
        let mut sorted: Vec<&str> = scopes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        Self {
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            account: account.map(str::to_owned),
            scopes: sorted.join(" "),
        }
    }
}

/// Counters, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Answers served from the cache.
    pub hits: u64,
    /// Tokens fetched from Entra ID (first fetches and refreshes).
    pub fetches: u64,
    /// Entries evicted to stay within capacity.
    pub evictions: u64,
}

/// How the cache behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCacheConfig {
    /// At most this many keys are kept; beyond it, expired then least recently used entries
    /// are evicted.
    pub capacity: usize,
    /// Refresh this long before expiry, or a quarter of the token's lifetime if that is
    /// shorter (short-lived tokens).
    pub refresh_margin: Duration,
}

impl Default for TokenCacheConfig {
    fn default() -> Self {
        Self {
            capacity: 1024,
            refresh_margin: Duration::from_secs(300),
        }
    }
}

impl TokenCacheConfig {
    /// Checks the capacity is at least one.
    pub fn validate(&self) -> Result<(), Error> {
        if self.capacity == 0 {
            return Err(Error::Config(
                "the token cache capacity must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// One key's token; its async mutex makes refreshes single-flight.
#[derive(Default)]
struct Slot {
    token: tokio::sync::Mutex<Option<Cached>>,
    /// Unix seconds the token expires at (0: none yet), readable without the async lock.
    expires_at: AtomicI64,
}

struct Cached {
    token: AccessToken,
    refresh_at: i64,
    expires_at: i64,
}

struct Entry {
    slot: Arc<Slot>,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<CacheKey, Entry>,
    clock: u64,
}

/// A bounded, single-flight access token cache. Share one with `Arc` across credentials.
///
/// Debug shows the number of entries and the counters, never a token.
pub struct TokenCache {
    config: TokenCacheConfig,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    fetches: AtomicU64,
    evictions: AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.len())
            .field("capacity", &self.config.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(TokenCacheConfig::default()).unwrap_or_else(|_| unreachable!())
    }
}

impl TokenCache {
    /// A cache with this configuration.
    pub fn new(config: TokenCacheConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            config,
            inner: Mutex::new(Inner::default()),
            hits: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        })
    }

    /// How many keys are cached.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            fetches: self.fetches.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    /// Forgets one key.
    pub fn remove(&self, key: &CacheKey) {
        self.lock().entries.remove(key);
    }

    /// Forgets every token of a tenant (sign-out, offboarding).
    pub fn remove_tenant(&self, tenant_id: &str) {
        self.lock().entries.retain(|k, _| k.tenant_id != tenant_id);
    }

    /// Forgets every token of one signed-in account in a tenant.
    pub fn remove_account(&self, tenant_id: &str, account: &str) {
        self.lock()
            .entries
            .retain(|k, _| !(k.tenant_id == tenant_id && k.account.as_deref() == Some(account)));
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The slot for a key, created (evicting if full) when missing.
    fn slot(&self, key: &CacheKey) -> Arc<Slot> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now_tick = inner.clock;
        if let Some(entry) = inner.entries.get_mut(key) {
            entry.last_used = now_tick;
            return entry.slot.clone();
        }
        if inner.entries.len() >= self.config.capacity {
            let now = chrono::Utc::now().timestamp();
            let before = inner.entries.len();
            inner.entries.retain(|_, e| {
                let exp = e.slot.expires_at.load(Ordering::Relaxed);
                exp == 0 || exp > now
            });
            while inner.entries.len() >= self.config.capacity {
                let Some(oldest) = inner
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                inner.entries.remove(&oldest);
            }
            let evicted = (before - inner.entries.len()) as u64;
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
        let slot = Arc::new(Slot::default());
        inner.entries.insert(
            key.clone(),
            Entry {
                slot: slot.clone(),
                last_used: now_tick,
            },
        );
        slot
    }

    /// The cached token for `key` if it is not due for refresh; otherwise `fetch` one. However
    /// many tasks ask at once, one fetch runs per key and the others wait for its token. If
    /// a refresh fails while the old token still has at least 30 seconds to live, the old
    /// token is returned; otherwise the error is.
    pub async fn get_or_fetch<F, Fut>(&self, key: &CacheKey, fetch: F) -> Result<AccessToken, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, Error>>,
    {
        let slot = self.slot(key);
        let mut guard = slot.token.lock().await;
        // Forgotten while this task waited (sign-out, `remove`): the token must not be served,
        // nor be the fallback of a failed fetch.
        if !self
            .lock()
            .entries
            .get(key)
            .is_some_and(|e| Arc::ptr_eq(&e.slot, &slot))
        {
            *guard = None;
        }
        let now = chrono::Utc::now().timestamp();
        if let Some(cached) = guard.as_ref()
            && now < cached.refresh_at
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(cached.token.clone());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = fetch().await;
        // The fetch may have taken up to the request timeout: judge what it returned, and the
        // old token, against the time now.
        let now = chrono::Utc::now().timestamp();
        match result {
            Ok(token) => {
                let expires_at = token.expires_on.unix_timestamp();
                let lifetime = expires_at.saturating_sub(now).max(0);
                let margin = i64::try_from(self.config.refresh_margin.as_secs())
                    .unwrap_or(i64::MAX)
                    .min(lifetime / 4);
                *guard = Some(Cached {
                    token: token.clone(),
                    refresh_at: expires_at.saturating_sub(margin),
                    expires_at,
                });
                slot.expires_at.store(expires_at, Ordering::Relaxed);
                Ok(token)
            }
            Err(error) => match guard.as_ref() {
                Some(old) if old.expires_at.saturating_sub(now) >= MIN_FALLBACK_LIFE_SECS => {
                    tracing::warn!(
                        tenant = %key.tenant_id,
                        client = %key.client_id,
                        error = %error,
                        "token refresh failed; using the cached token until it expires"
                    );
                    Ok(old.token.clone())
                }
                _ => Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::time::OffsetDateTime;

    fn token(value: &str, lifetime: i64) -> AccessToken {
        let exp = chrono::Utc::now().timestamp() + lifetime;
        AccessToken::new(
            value.to_owned(),
            OffsetDateTime::from_unix_timestamp(exp).unwrap(),
        )
    }

    #[tokio::test]
    async fn hits_bounds_and_debug() {
        let cache = TokenCache::new(TokenCacheConfig {
            capacity: 2,
            ..TokenCacheConfig::default()
        })
        .unwrap();
        let a = CacheKey::new("t", "c", None, &["b", "a"]);
        assert_eq!(a, CacheKey::new("t", "c", None, &["a", "b"]));
        let first = cache
            .get_or_fetch(&a, || async { Ok(token("secret-token-1", 3600)) })
            .await
            .unwrap();
        let again = cache
            .get_or_fetch(&a, || async { Ok(token("secret-token-2", 3600)) })
            .await
            .unwrap();
        assert_eq!(first.token.secret(), again.token.secret());
        for tenant in ["u", "v"] {
            let key = CacheKey::new(tenant, "c", None, &["a"]);
            cache
                .get_or_fetch(&key, || async { Ok(token("x", 3600)) })
                .await
                .unwrap();
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.stats().evictions, 1);
        assert_eq!(cache.stats().hits, 1);
        let debug = format!("{cache:?}");
        assert!(!debug.contains("secret-token"), "{debug}");
        cache.remove_tenant("u");
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn short_tokens_refresh_early_and_failures_keep_the_old_one() {
        let cache = TokenCache::default();
        let key = CacheKey::new("t", "c", None, &["a"]);
        // A 20 s token is refreshed 5 s before expiry: still fresh now.
        cache
            .get_or_fetch(&key, || async { Ok(token("one", 20)) })
            .await
            .unwrap();
        let t = cache
            .get_or_fetch(&key, || async { Ok(token("two", 20)) })
            .await
            .unwrap();
        assert_eq!(t.token.secret(), "one");
    }

    /// Puts a token due for refresh (refresh time in the past) in the cache.
    async fn put_due(cache: &TokenCache, key: &CacheKey, value: &str, lifetime: i64) {
        let t = token(value, lifetime);
        let expires_at = t.expires_on.unix_timestamp();
        let slot = cache.slot(key);
        *slot.token.lock().await = Some(Cached {
            token: t,
            refresh_at: 0,
            expires_at,
        });
        slot.expires_at.store(expires_at, Ordering::Relaxed);
    }

    fn failure() -> Error {
        Error::Store("refresh failed".into())
    }

    #[tokio::test]
    async fn failed_refresh_serves_the_old_token_only_with_time_left() {
        let cache = TokenCache::default();
        let key = CacheKey::new("t", "c", None, &["a"]);

        // An hour left: the old token is served.
        put_due(&cache, &key, "old-hour", 3600).await;
        let t = cache
            .get_or_fetch(&key, || async { Err(failure()) })
            .await
            .unwrap();
        assert_eq!(t.token.secret(), "old-hour");

        // Under the 30 s minimum: the error.
        put_due(&cache, &key, "old-short", 20).await;
        assert!(matches!(
            cache.get_or_fetch(&key, || async { Err(failure()) }).await,
            Err(Error::Store(_))
        ));

        // 31 s left when the fetch starts, under 30 s when it fails: the time is read again
        // after the fetch, so the error.
        put_due(&cache, &key, "old-31", 31).await;
        let slow_failure = || async {
            tokio::time::sleep(Duration::from_millis(2100)).await;
            Err(failure())
        };
        assert!(matches!(
            cache.get_or_fetch(&key, slow_failure).await,
            Err(Error::Store(_))
        ));
    }

    #[tokio::test]
    async fn huge_refresh_margin_does_not_wrap() {
        let cache = TokenCache::new(TokenCacheConfig {
            capacity: 4,
            refresh_margin: Duration::MAX,
        })
        .unwrap();
        let key = CacheKey::new("t", "c", None, &["a"]);
        let t = cache
            .get_or_fetch(&key, || async { Ok(token("one", 3600)) })
            .await
            .unwrap();
        let expires_at = t.expires_on.unix_timestamp();
        let slot = cache.slot(&key);
        let guard = slot.token.lock().await;
        let cached = guard.as_ref().unwrap();
        // The margin is capped at a quarter of the lifetime, never negative.
        assert!(cached.refresh_at < expires_at);
        assert!((expires_at - 905..=expires_at - 895).contains(&cached.refresh_at));
    }

    #[tokio::test]
    async fn a_token_forgotten_while_waiting_is_not_served() {
        let cache = Arc::new(TokenCache::default());
        let key = CacheKey::new("t", "c", Some("user"), &["a"]);
        cache
            .get_or_fetch(&key, || async { Ok(token("before-sign-out", 3600)) })
            .await
            .unwrap();
        // A fetch holds the slot; a caller waits behind it; the account is signed out.
        let slot = cache.slot(&key);
        let held = slot.token.lock().await;
        let waiter = tokio::spawn({
            let (cache, key) = (cache.clone(), key.clone());
            async move {
                cache
                    .get_or_fetch(&key, || async { Err(Error::NotSignedIn) })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        cache.remove_account("t", "user");
        drop(held);
        assert!(matches!(waiter.await.unwrap(), Err(Error::NotSignedIn)));
    }
}
