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
    match (&callback.tenant, callback.admin_consent) {
        (Some(tenant), true) if !tenant.is_empty() => Ok(ConsentGranted {
            tenant_id: tenant.clone(),
        }),
        _ => Err(Error::AuthorizationDenied {
            error: "consent_not_granted".into(),
            description: "the callback does not say admin_consent=True for a tenant".into(),
        }),
    }
}
