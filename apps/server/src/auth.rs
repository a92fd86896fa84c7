//! Who is calling: the platform admin (the `TENANTLINK_ADMIN_KEY`) or an organization's API
//! key, and the per-key and per-organization rate limits that apply to it.
//!
//! Keys look like `tlk_<id>_<secret>`. The store keeps the id and a SHA-256 of the secret;
//! the key is shown once, when it is made. An organization's requests carry its id into
//! every query, so another organization's ids answer 404.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::{FromRequest, HttpMessage as _, HttpRequest, dev::Payload, web};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::error::ApiError;
use crate::state::AppState;

/// The prefix of every API key.
pub(crate) const KEY_PREFIX: &str = "tlk_";

/// The caller of a request, kept in the request's extensions for logs, audit and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The platform admin.
    Admin,
    /// An organization's key.
    Organization {
        /// The organization.
        organization_id: String,
        /// The key's id (never the key).
        key_id: String,
    },
}

/// An authenticated organization: every handler of organization data takes this and
/// passes `organization_id` into its store call.
#[derive(Debug, Clone)]
pub(crate) struct OrgAuth {
    /// The calling organization.
    pub(crate) organization_id: String,
    /// The key it used.
    pub(crate) key_id: String,
}

/// The platform admin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdminAuth;

/// A new key: the text to show once, and what to store.
pub(crate) struct IssuedKey {
    /// The whole key, `tlk_<id>_<secret>`.
    pub(crate) key: String,
    /// Its id.
    pub(crate) id: String,
    /// Hex SHA-256 of its secret part.
    pub(crate) secret_hash: String,
}

/// Makes a random key.
pub(crate) fn issue_key() -> Result<IssuedKey, ApiError> {
    use base64::Engine as _;
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).map_err(|e| ApiError::internal(e.to_string()))?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let id = uuid::Uuid::new_v4().simple().to_string();
    Ok(IssuedKey {
        key: format!("{KEY_PREFIX}{id}_{secret}"),
        secret_hash: hex_sha256(&secret),
        id,
    })
}

/// Hex SHA-256 of `text` (how API key secrets and OAuth states are stored).
pub(crate) fn hex_sha256(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("AppState is not registered"))
}

const MISSING: &str = "send an API key as `Authorization: Bearer tlk_…`";
const INVALID: &str = "the API key is unknown, revoked or expired";

async fn authenticate_org(req: HttpRequest) -> Result<OrgAuth, ApiError> {
    let state = state(&req)?;
    let token = bearer(&req).ok_or(ApiError::Unauthorized(MISSING))?;
    let (id, secret) = token
        .strip_prefix(KEY_PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .filter(|(id, secret)| id.len() == 32 && !secret.is_empty())
        .ok_or(ApiError::Unauthorized(INVALID))?;
    let key = match state.limits.keys.get(id) {
        Some(key) => key,
        None => {
            let key = state
                .db
                .api_key(id)
                .await?
                .ok_or(ApiError::Unauthorized(INVALID))?;
            state.limits.keys.put(key.clone());
            key
        }
    };
    let matches: bool = key
        .secret_hash
        .as_bytes()
        .ct_eq(hex_sha256(secret).as_bytes())
        .into();
    let now = chrono::Utc::now().naive_utc();
    if !matches || key.revoked_at.is_some() || key.expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::Unauthorized(INVALID));
    }
    state.limits.check(&key.organization_id, &key.id, &state)?;
    let touch = key
        .last_used_at
        .is_none_or(|t| now - t > chrono::Duration::seconds(60));
    if touch {
        state.limits.keys.put(tenantlink_store::ApiKey {
            last_used_at: Some(now),
            ..key.clone()
        });
    }
    let caller = OrgAuth {
        organization_id: key.organization_id,
        key_id: key.id,
    };
    req.extensions_mut().insert(Caller::Organization {
        organization_id: caller.organization_id.clone(),
        key_id: caller.key_id.clone(),
    });
    if touch {
        let db = state.db.clone();
        let id = caller.key_id.clone();
        actix_web::rt::spawn(async move {
            if let Err(e) = db.touch_api_key(&id, now).await {
                tracing::debug!(error = %e, "could not record key use");
            }
        });
    }
    Ok(caller)
}

impl FromRequest for OrgAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // actix drops the other extractors of a handler when one fails (a bad body, say);
        // the key lookup runs as its own task so a database call is never dropped half-way
        // (diesel-async's SQLite wrapper would then block a single-threaded worker).
        let task = actix_web::rt::spawn(authenticate_org(req.clone()));
        Box::pin(async move {
            task.await
                .map_err(|e| ApiError::internal(format!("the key lookup panicked: {e}")))?
        })
    }
}

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready((|| {
            let state = state(req)?;
            let token = bearer(req).ok_or(ApiError::Unauthorized(
                "send the admin key as `Authorization: Bearer …`",
            ))?;
            let given = crate::config::key_hash(token);
            if !bool::from(given.ct_eq(&state.settings.admin_key_hash)) {
                return Err(ApiError::Unauthorized("the admin key is not valid"));
            }
            req.extensions_mut().insert(Caller::Admin);
            Ok(AdminAuth)
        })())
    }
}

/// How long a looked-up key is trusted without asking the database again. A key revoked
/// through this process stops at once; through another process, within this time.
pub(crate) const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// Recently verified keys: id → (the stored key, when it was read). Saves a database
/// round trip per request; bounded by the number of live keys, and emptied of stale entries
/// with the rate limiter's buckets.
#[derive(Default)]
pub(crate) struct KeyCache {
    keys: std::sync::Mutex<
        std::collections::HashMap<String, (tenantlink_store::ApiKey, std::time::Instant)>,
    >,
}

impl KeyCache {
    /// The key, when read less than `KEY_CACHE_TTL` ago.
    fn get(&self, id: &str) -> Option<tenantlink_store::ApiKey> {
        let keys = self.keys.lock().ok()?;
        keys.get(id)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(key, _)| key.clone())
    }

    fn put(&self, key: tenantlink_store::ApiKey) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(key.id.clone(), (key, std::time::Instant::now()));
        }
    }

    /// Forgets a key (after it was revoked here).
    pub(crate) fn forget(&self, id: &str) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(id);
        }
    }

    fn shrink(&self) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
        }
    }
}

/// Token buckets per key and per organization (`governor`, GCRA), and the cache of
/// verified keys.
pub(crate) struct RateLimits {
    per_key: DefaultKeyedRateLimiter<String>,
    per_org: DefaultKeyedRateLimiter<String>,
    /// Keys verified recently.
    pub(crate) keys: KeyCache,
}

impl RateLimits {
    /// `per_key` and `per_org` requests per second, each with a burst of twice that.
    pub(crate) fn new(per_key: u32, per_org: u32) -> Self {
        let quota = |rate: u32| {
            let rate = std::num::NonZeroU32::new(rate.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
            let burst = rate
                .saturating_mul(std::num::NonZeroU32::new(2).unwrap_or(std::num::NonZeroU32::MIN));
            Quota::per_second(rate).allow_burst(burst)
        };
        Self {
            per_key: DefaultKeyedRateLimiter::keyed(quota(per_key)),
            per_org: DefaultKeyedRateLimiter::keyed(quota(per_org)),
            keys: KeyCache::default(),
        }
    }

    /// Takes one request from the key's and the organization's buckets, or says how long
    /// to wait.
    pub(crate) fn check(
        &self,
        organization_id: &str,
        key_id: &str,
        state: &AppState,
    ) -> Result<(), ApiError> {
        let now = DefaultClock::default().now();
        let wait = [
            self.per_key.check_key(&key_id.to_owned()),
            self.per_org.check_key(&organization_id.to_owned()),
        ]
        .into_iter()
        .filter_map(Result::err)
        .map(|not_until| not_until.wait_time_from(now))
        .max();
        match wait {
            None => Ok(()),
            Some(wait) => {
                state.metrics.rate_limited.inc();
                Err(ApiError::RateLimited {
                    retry_after: wait.max(Duration::from_millis(1)),
                })
            }
        }
    }

    /// Forgets buckets that are full again (call now and then to bound memory).
    pub(crate) fn shrink(&self) {
        self.per_key.retain_recent();
        self.per_org.retain_recent();
        self.keys.shrink();
    }
}
