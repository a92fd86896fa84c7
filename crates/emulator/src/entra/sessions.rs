//! Sign-in state: authorization codes, refresh tokens (rotating) and the ids of client
//! assertions already used.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::scopes::Scopes;

/// How long an authorization code may be redeemed (Microsoft: about ten minutes).
pub(crate) const CODE_LIFETIME: Duration = Duration::minutes(10);
/// How long a refresh token lives without use (Microsoft: 90 days).
pub(crate) const REFRESH_LIFETIME: Duration = Duration::days(90);

/// An issued authorization code and what it was issued for.
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) user_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: Scopes,
    /// `code_challenge` and its method (`S256` or `plain`).
    pub(crate) challenge: Option<(String, String)>,
    pub(crate) nonce: Option<String>,
    pub(crate) issued: DateTime<Utc>,
    pub(crate) redeemed: bool,
}

/// Whether a refresh token still works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshStatus {
    /// Usable once.
    Active,
    /// Redeemed (rotated away).
    Used,
    /// Revoked through the control API.
    Revoked,
}

/// An issued refresh token.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) user_id: String,
    pub(crate) scopes: Scopes,
    pub(crate) issued: DateTime<Utc>,
    pub(crate) expires: DateTime<Utc>,
    pub(crate) status: RefreshStatus,
}

/// Authorization codes, refresh tokens and used client-assertion ids.
#[derive(Default)]
pub(crate) struct Sessions {
    pub(crate) codes: HashMap<String, AuthCode>,
    pub(crate) refresh_tokens: HashMap<String, RefreshGrant>,
    /// `jti` of redeemed client assertions, with their `exp`.
    pub(crate) assertion_ids: HashMap<String, i64>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("codes", &self.codes.len())
            .field("refresh_tokens", &self.refresh_tokens.len())
            .field("assertion_ids", &self.assertion_ids.len())
            .finish()
    }
}

impl Sessions {
    /// Stores a new code and returns it; forgets codes too old to matter.
    pub(crate) fn issue_code(&mut self, code: AuthCode) -> String {
        let horizon = Utc::now() - Duration::hours(1);
        self.codes.retain(|_, c| c.issued > horizon);
        let value = format!("1.{}", crate::rng::random_token(96));
        self.codes.insert(value.clone(), code);
        value
    }

    /// Stores a new refresh token and returns it.
    pub(crate) fn issue_refresh_token(
        &mut self,
        tenant_id: &str,
        client_id: &str,
        user_id: &str,
        scopes: Scopes,
    ) -> String {
        let now = Utc::now();
        let value = format!("1.{}", crate::rng::random_token(144));
        self.refresh_tokens.insert(
            value.clone(),
            RefreshGrant {
                tenant_id: tenant_id.to_owned(),
                client_id: client_id.to_owned(),
                user_id: user_id.to_owned(),
                scopes,
                issued: now,
                expires: now + REFRESH_LIFETIME,
                status: RefreshStatus::Active,
            },
        );
        value
    }

    /// Records a client assertion's `jti`; false when it was used before.
    pub(crate) fn use_assertion_id(&mut self, jti: &str, exp: i64) -> bool {
        let now = Utc::now().timestamp();
        self.assertion_ids.retain(|_, e| *e + 600 > now);
        self.assertion_ids.insert(jti.to_owned(), exp).is_none()
    }

    /// Revokes the active refresh tokens of a tenant, or of one user in it.
    pub(crate) fn revoke(&mut self, tenant_id: &str, user_id: Option<&str>) -> usize {
        let mut count = 0;
        for grant in self.refresh_tokens.values_mut() {
            if grant.status == RefreshStatus::Active
                && grant.tenant_id == tenant_id
                && user_id.is_none_or(|u| u == grant.user_id)
            {
                grant.status = RefreshStatus::Revoked;
                count += 1;
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_is_per_tenant_and_user_and_assertion_ids_are_single_use() {
        let mut s = Sessions::default();
        let a = s.issue_refresh_token("t1", "app", "u1", Scopes::default());
        let b = s.issue_refresh_token("t1", "app", "u2", Scopes::default());
        let c = s.issue_refresh_token("t2", "app", "u1", Scopes::default());
        assert_ne!(a, b);
        assert_eq!(s.revoke("t1", Some("u1")), 1);
        assert_eq!(s.refresh_tokens[&a].status, RefreshStatus::Revoked);
        assert_eq!(s.refresh_tokens[&b].status, RefreshStatus::Active);
        assert_eq!(s.revoke("t1", None), 1);
        assert_eq!(s.refresh_tokens[&c].status, RefreshStatus::Active);
        assert_eq!(s.revoke("t1", None), 0);

        let exp = Utc::now().timestamp() + 60;
        assert!(s.use_assertion_id("app:j1", exp));
        assert!(!s.use_assertion_id("app:j1", exp));
        assert!(s.use_assertion_id("app:j2", exp));
        assert!(format!("{s:?}").contains("refresh_tokens: 3"));
        assert!(
            !format!("{s:?}").contains(&a),
            "Debug must not print tokens"
        );
    }
}
