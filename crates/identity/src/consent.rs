//! Admin consent for multi-tenant apps: the `/adminconsent` URL and its callback.

use crate::authorization::{
    AdminConsentCallback, PendingAuthorization, PendingKind, PendingStore, take_pending,
};
use crate::client::IdentityClient;
use crate::cloud::validate_tenant;
use crate::code_flow::AuthorizationStart;
use crate::error::Error;
use secrecy::ExposeSecret as _;
use std::time::Duration;

/// What to ask an administrator for.
#[derive(Debug, Clone)]
pub struct AdminConsentRequest {
    /// `organizations`, `common`, or the customer's tenant id or domain.
    pub tenant: String,
    /// The multi-tenant app's client id.
    pub client_id: String,
    /// A redirect URI registered on the app.
    pub redirect_uri: String,
}

/// An administrator granted consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentGranted {
    /// The tenant that now has the app.
    pub tenant_id: String,
}

impl IdentityClient {
    /// An admin consent URL with a random state, and the pending request to keep.
    pub fn admin_consent_start(
        &self,
        request: &AdminConsentRequest,
    ) -> Result<AuthorizationStart, Error> {
        validate_tenant(&request.tenant)?;
        if request.client_id.trim().is_empty() {
            return Err(Error::Config("the client id is empty".into()));
        }
        let pending = PendingAuthorization::new(
            PendingKind::AdminConsent,
            &request.tenant,
            &request.client_id,
            &request.redirect_uri,
            Vec::new(),
        )?;
        let url = reqwest::Url::parse_with_params(
            &self.inner.cloud.admin_consent_endpoint(&request.tenant),
            &[
                ("client_id", request.client_id.as_str()),
                ("redirect_uri", request.redirect_uri.as_str()),
                ("state", pending.state.expose_secret()),
            ],
        )
        .map_err(|e| Error::Config(format!("cannot build the admin consent URL: {e}")))?;
        Ok(AuthorizationStart {
            url: url.into(),
            pending,
        })
    }

    /// [`admin_consent_start`](Self::admin_consent_start), keeping the pending request in a
    /// store for [`complete_admin_consent`](Self::complete_admin_consent).
    pub async fn admin_consent_url(
        &self,
        request: &AdminConsentRequest,
        store: &dyn PendingStore,
    ) -> Result<String, Error> {
        let start = self.admin_consent_start(request)?;
        store.save(start.pending).await?;
        Ok(start.url)
    }

    /// Handles an admin consent callback whose pending request is in `store`.
    pub async fn complete_admin_consent(
        &self,
        callback_url: &str,
        store: &dyn PendingStore,
        max_age: Duration,
    ) -> Result<ConsentGranted, Error> {
        let callback = AdminConsentCallback::parse(callback_url);
        let pending = take_pending(
            store,
            callback.state.as_deref(),
            PendingKind::AdminConsent,
            max_age,
        )
        .await?;
        check_admin_consent(&pending, &callback, max_age)
    }
}

/// Checks an admin consent callback against the pending request the caller kept: state in
/// constant time, age, then `admin_consent=True` and a tenant, or the error it reports.
pub fn check_admin_consent(
    pending: &PendingAuthorization,
    callback: &AdminConsentCallback,
    max_age: Duration,
) -> Result<ConsentGranted, Error> {
    if pending.kind != PendingKind::AdminConsent {
        return Err(Error::StateMismatch);
    }
    pending.check_state(callback.state.as_deref().unwrap_or_default(), max_age)?;
    if let Some(error) = &callback.error {
        return Err(Error::AuthorizationDenied {
            error: error.clone(),
            description: callback.error_description.clone().unwrap_or_default(),
        });
    }
    let tenant = match (&callback.tenant, callback.admin_consent) {
        (Some(tenant), true) if !tenant.is_empty() => tenant,
        _ => {
            return Err(Error::AuthorizationDenied {
                error: "consent_not_granted".into(),
                description: "the callback does not say admin_consent=True for a tenant".into(),
            });
        }
    };
    validate_tenant(tenant).map_err(|_| tenant_mismatch())?;
    let requested = pending.tenant.as_str();
    let any_tenant = ["common", "organizations"]
        .iter()
        .any(|t| requested.eq_ignore_ascii_case(t));
    if !any_tenant {
        // A tenant id must come back as itself. A domain comes back as its tenant id, which
        // cannot be matched offline: then the answer must at least be a tenant id.
        let matches = if is_tenant_id(requested) {
            tenant.eq_ignore_ascii_case(requested)
        } else {
            is_tenant_id(tenant) || tenant.eq_ignore_ascii_case(requested)
        };
        if !matches {
            return Err(tenant_mismatch());
        }
    }
    Ok(ConsentGranted {
        tenant_id: tenant.clone(),
    })
}

fn tenant_mismatch() -> Error {
    Error::AuthorizationDenied {
        error: "tenant_mismatch".into(),
        description:
            "the callback's tenant is not a valid tenant or not the one consent was asked for"
                .into(),
    }
}

/// Whether `s` has the shape of a tenant id (a GUID, 8-4-4-4-12 hex digits).
fn is_tenant_id(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const OTHER: &str = "11111111-2222-3333-4444-555555555555";

    fn check(requested: &str, tenant: &str) -> Result<ConsentGranted, Error> {
        let pending = PendingAuthorization::new(
            PendingKind::AdminConsent,
            requested,
            "client",
            "http://localhost/cb",
            Vec::new(),
        )
        .unwrap();
        let callback = AdminConsentCallback {
            tenant: Some(tenant.to_owned()),
            state: Some(pending.state.expose_secret().to_owned()),
            admin_consent: true,
            error: None,
            error_description: None,
        };
        check_admin_consent(&pending, &callback, Duration::from_secs(60))
    }

    fn mismatch(result: Result<ConsentGranted, Error>) -> bool {
        matches!(result, Err(Error::AuthorizationDenied { error, .. }) if error == "tenant_mismatch")
    }

    #[test]
    fn admin_consent_tenant_is_validated_and_matched() {
        assert_eq!(check("organizations", TENANT).unwrap().tenant_id, TENANT);
        assert_eq!(check("common", OTHER).unwrap().tenant_id, OTHER);
        assert_eq!(check(TENANT, TENANT).unwrap().tenant_id, TENANT);
        assert_eq!(
            check(TENANT, &TENANT.to_uppercase()).unwrap().tenant_id,
            TENANT.to_uppercase()
        );
        // A specific tenant id must come back unchanged.
        assert!(mismatch(check(TENANT, OTHER)));
        assert!(mismatch(check(TENANT, "contoso.onmicrosoft.com")));
        // A domain comes back as a tenant id, or as itself; not as another domain.
        assert_eq!(
            check("contoso.onmicrosoft.com", TENANT).unwrap().tenant_id,
            TENANT
        );
        assert!(mismatch(check("contoso.onmicrosoft.com", "evil.example")));
        // Never a path-climbing or malformed tenant, even for `organizations`.
        for bad in ["..", ".", "a/b", "x?y", "x#y", "%2e%2e"] {
            assert!(mismatch(check("organizations", bad)), "{bad}");
        }
        assert!(is_tenant_id(TENANT));
        assert!(!is_tenant_id("t-1"));
    }
}
