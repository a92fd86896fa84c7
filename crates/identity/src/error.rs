//! The crate's error type: Entra ID's AADSTS codes turned into variants a caller can act on.

use std::fmt;

/// What Entra ID said about a failed request, kept for support tickets.
///
/// Holds no secret: Entra ID's descriptions name apps and tenants, never credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AadDetails {
    /// The OAuth 2.0 `error` (`invalid_client`, `invalid_grant`, ...).
    pub error: String,
    /// The AADSTS codes (`error_codes`), e.g. `[7000215]`.
    pub error_codes: Vec<u64>,
    /// The `error_description` (starts with `AADSTSnnnn:`).
    pub description: String,
    /// The `trace_id` to quote to Microsoft support.
    pub trace_id: Option<String>,
    /// The `correlation_id` to quote to Microsoft support.
    pub correlation_id: Option<String>,
}

impl AadDetails {
    /// The first AADSTS code, if any.
    pub fn code(&self) -> Option<u64> {
        self.error_codes.first().copied()
    }
}

impl fmt::Display for AadDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code() {
            Some(code) => write!(f, "AADSTS{code}")?,
            None => write!(f, "{}", self.error)?,
        }
        if let Some(trace) = &self.trace_id {
            write!(f, ", trace id {trace}")?;
        }
        if let Some(correlation) = &self.correlation_id {
            write!(f, ", correlation id {correlation}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong signing in to Entra ID.
///
/// Every message says what to do next. No message and no `Debug` output contains a client
/// secret, token, code, PKCE verifier or client assertion.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is missing or malformed.
    #[error("invalid identity configuration: {0}")]
    Config(String),
    /// The client secret is wrong (AADSTS7000215).
    #[error(
        "Entra ID rejected the client secret ({0}): use the secret's value (not its id), or create a new client secret in the app registration"
    )]
    InvalidClientSecret(AadDetails),
    /// The client secret has expired (AADSTS7000222).
    #[error(
        "the client secret has expired ({0}): create a new client secret in the app registration and update the stored credential"
    )]
    ClientSecretExpired(AadDetails),
    /// The app is unknown in this tenant (AADSTS700016).
    #[error(
        "the application is not registered in this tenant ({0}): check the client id and tenant id, or have the tenant's administrator grant admin consent to the app"
    )]
    AppNotFoundInTenant(AadDetails),
    /// The tenant does not exist (AADSTS90002).
    #[error("the tenant was not found ({0}): check the tenant id or domain name")]
    TenantNotFound(AadDetails),
    /// The user or administrator has not consented (AADSTS65001).
    #[error(
        "consent is missing ({0}): have the tenant's administrator grant consent (admin consent URL) for the requested permissions"
    )]
    ConsentRequired(AadDetails),
    /// The scope is invalid (AADSTS70011, AADSTS1002012) or names several resources
    /// (AADSTS700022).
    #[error(
        "the requested scope is invalid ({0}): ask for one resource per token, as `<resource>/.default` for app-only tokens"
    )]
    InvalidScope(AadDetails),
    /// The refresh token has expired or was revoked (AADSTS700082 and other `invalid_grant`
    /// answers to a refresh).
    #[error(
        "the refresh token has expired or was revoked ({0}): sign the user in again with the authorization code flow"
    )]
    RefreshTokenExpired(AadDetails),
    /// The user must sign in again interactively: multi-factor authentication
    /// (AADSTS50076, AADSTS50079), a Conditional Access policy (AADSTS50158, AADSTS53003) or
    /// another `interaction_required` answer. The refresh token is kept: it works again once
    /// the user has satisfied the requirement.
    #[error(
        "the user must sign in again interactively ({0}): send them through the authorization code flow to complete multi-factor authentication or satisfy Conditional Access"
    )]
    InteractionRequired(AadDetails),
    /// The authorization code is invalid, expired or already redeemed (AADSTS70008,
    /// AADSTS54005).
    #[error(
        "the authorization code is invalid, expired or already used ({0}): start the sign-in again"
    )]
    InvalidAuthorizationCode(AadDetails),
    /// The PKCE verifier does not match the challenge (AADSTS501481).
    #[error(
        "the PKCE code verifier does not match the authorize request's challenge ({0}): redeem the code with the verifier of the same pending sign-in, or start the sign-in again"
    )]
    PkceMismatch(AadDetails),
    /// The client assertion was rejected (AADSTS700027, 700023, 700024, 700021): unknown
    /// certificate, wrong audience, expired, or wrong issuer.
    #[error(
        "Entra ID rejected the certificate client assertion ({0}): upload the certificate to the app registration and check the system clock"
    )]
    InvalidClientAssertion(AadDetails),
    /// The callback's `state` does not match any pending sign-in.
    #[error(
        "the callback's state does not match a pending sign-in: start the sign-in again (possible cross-site request forgery)"
    )]
    StateMismatch,
    /// The callback's `state` was already used.
    #[error("the callback's state was already used: start the sign-in again")]
    StateReplayed,
    /// The pending sign-in is too old.
    #[error("the pending sign-in has expired: start the sign-in again")]
    StateExpired,
    /// The user or administrator declined, or the authorize endpoint reported an error in the
    /// callback.
    #[error("sign-in was not completed ({error}: {description}): start the sign-in again")]
    AuthorizationDenied {
        /// The `error` parameter, e.g. `access_denied`.
        error: String,
        /// The `error_description` parameter.
        description: String,
    },
    /// No refresh token is stored for the account.
    #[error("no refresh token is stored for this account: sign the user in first")]
    NotSignedIn,
    /// The certificate or its private key cannot be used.
    #[error("invalid client certificate: {0}")]
    Certificate(String),
    /// A token is not a readable JWT.
    #[error("the token is not a readable JWT: {0}")]
    MalformedToken(String),
    /// Entra ID answered 2xx with something this crate cannot read.
    #[error(
        "Entra ID's answer could not be read ({0}): check the authority host points at Entra ID"
    )]
    InvalidResponse(String),
    /// A store (pending sign-ins, refresh tokens) failed.
    #[error("the token store failed: {0}")]
    Store(String),
    /// Entra ID could not be reached.
    #[error("cannot reach Entra ID: {0}: check the network and the authority host")]
    Network(#[source] reqwest::Error),
    /// Entra ID answered something this crate does not know how to act on.
    #[error(
        "Entra ID answered HTTP {status} ({}): see the description and quote the trace id to support",
        code.as_ref().map_or_else(|| "no error code".to_owned(), ToString::to_string)
    )]
    Unexpected {
        /// The HTTP status.
        status: u16,
        /// Entra ID's error details, when it sent them.
        code: Option<AadDetails>,
    },
}

impl Error {
    /// Entra ID's details (codes, trace and correlation ids) when the error came from it.
    pub fn aad_details(&self) -> Option<&AadDetails> {
        match self {
            Self::InvalidClientSecret(d)
            | Self::ClientSecretExpired(d)
            | Self::AppNotFoundInTenant(d)
            | Self::TenantNotFound(d)
            | Self::ConsentRequired(d)
            | Self::InvalidScope(d)
            | Self::RefreshTokenExpired(d)
            | Self::InteractionRequired(d)
            | Self::InvalidAuthorizationCode(d)
            | Self::PkceMismatch(d)
            | Self::InvalidClientAssertion(d) => Some(d),
            Self::Unexpected { code, .. } => code.as_ref(),
            _ => None,
        }
    }

    /// Maps an Entra ID error answer to a variant. `refreshing` says the request was a
    /// `refresh_token` grant, where an `invalid_grant` that is not a request for interaction
    /// (MFA, Conditional Access) means the refresh token is dead.
    pub(crate) fn from_aad(status: u16, details: Option<AadDetails>, refreshing: bool) -> Self {
        let Some(details) = details else {
            return Self::Unexpected { status, code: None };
        };
        match details.code() {
            Some(7_000_215) => Self::InvalidClientSecret(details),
            Some(7_000_222) => Self::ClientSecretExpired(details),
            Some(700_016) => Self::AppNotFoundInTenant(details),
            Some(90002) => Self::TenantNotFound(details),
            Some(65001) => Self::ConsentRequired(details),
            Some(70011 | 700_022 | 1_002_012) => Self::InvalidScope(details),
            Some(700_082) => Self::RefreshTokenExpired(details),
            Some(70008 | 54005) => Self::InvalidAuthorizationCode(details),
            Some(501_481) => Self::PkceMismatch(details),
            Some(700_021 | 700_023 | 700_024 | 700_027) => Self::InvalidClientAssertion(details),
            Some(50076 | 50079 | 50158 | 53003) => Self::InteractionRequired(details),
            _ if details.error == "interaction_required" => Self::InteractionRequired(details),
            _ if refreshing && details.error == "invalid_grant" => {
                Self::RefreshTokenExpired(details)
            }
            _ => Self::Unexpected {
                status,
                code: Some(details),
            },
        }
    }
}

impl From<Error> for azure_core::Error {
    fn from(error: Error) -> Self {
        azure_core::Error::new(azure_core::error::ErrorKind::Credential, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(error: &str, code: u64) -> Option<AadDetails> {
        Some(AadDetails {
            error: error.into(),
            error_codes: vec![code],
            description: format!("AADSTS{code}: test"),
            trace_id: Some("trace".into()),
            correlation_id: Some("corr".into()),
        })
    }

    #[test]
    fn codes_map_to_variants() {
        let map = |code| Error::from_aad(400, details("invalid_request", code), false);
        assert!(matches!(map(7_000_215), Error::InvalidClientSecret(_)));
        assert!(matches!(map(7_000_222), Error::ClientSecretExpired(_)));
        assert!(matches!(map(700_016), Error::AppNotFoundInTenant(_)));
        assert!(matches!(map(90002), Error::TenantNotFound(_)));
        assert!(matches!(map(65001), Error::ConsentRequired(_)));
        assert!(matches!(map(70011), Error::InvalidScope(_)));
        assert!(matches!(map(700_022), Error::InvalidScope(_)));
        assert!(matches!(map(700_082), Error::RefreshTokenExpired(_)));
        assert!(matches!(map(70008), Error::InvalidAuthorizationCode(_)));
        assert!(matches!(map(54005), Error::InvalidAuthorizationCode(_)));
        assert!(matches!(map(501_481), Error::PkceMismatch(_)));
        assert!(matches!(map(700_027), Error::InvalidClientAssertion(_)));
        let other = map(70003);
        assert!(matches!(other, Error::Unexpected { status: 400, .. }));
        assert!(
            other
                .to_string()
                .contains("AADSTS70003, trace id trace, correlation id corr")
        );
        assert!(matches!(
            Error::from_aad(400, details("invalid_grant", 9_002_313), true),
            Error::RefreshTokenExpired(_)
        ));
        // MFA and Conditional Access on a refresh ask for interaction; the token is not dead.
        for code in [50076, 50079, 50158, 53003] {
            for refreshing in [true, false] {
                let e = Error::from_aad(400, details("invalid_grant", code), refreshing);
                assert!(matches!(e, Error::InteractionRequired(_)), "{code}: {e:?}");
                assert!(e.to_string().contains("sign in again interactively"), "{e}");
                assert!(e.to_string().contains(&format!("AADSTS{code}")), "{e}");
                assert_eq!(e.aad_details().and_then(AadDetails::code), Some(code));
            }
        }
        assert!(matches!(
            Error::from_aad(400, details("interaction_required", 50_097), true),
            Error::InteractionRequired(_)
        ));
        assert!(matches!(
            Error::from_aad(400, details("invalid_grant", 700_082), true),
            Error::RefreshTokenExpired(_)
        ));
        assert!(matches!(
            Error::from_aad(502, None, false),
            Error::Unexpected {
                status: 502,
                code: None
            }
        ));
    }
}
