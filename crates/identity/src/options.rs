//! Client options: extra root certificates, timeouts, or a ready `reqwest::Client`.

use std::time::Duration;

use crate::error::Error;

/// How the crate talks HTTP to Entra ID.
///
/// HTTPS is rustls with Mozilla's root certificates (`webpki-roots`), so Microsoft's
/// endpoints are trusted out of the box. Roots listed here are trusted in addition: the
/// emulator's CA PEM in tests and demos, or a corporate TLS-inspecting proxy's CA.
#[derive(Clone)]
pub struct IdentityClientOptions {
    /// PEM root certificates to trust (one or more `CERTIFICATE` blocks each).
    pub root_certificates_pem: Vec<String>,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Use this client instead of building one (the fields above are then ignored).
    pub http_client: Option<reqwest::Client>,
}

impl Default for IdentityClientOptions {
    fn default() -> Self {
        Self {
            root_certificates_pem: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            http_client: None,
        }
    }
}

impl std::fmt::Debug for IdentityClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityClientOptions")
            .field("root_certificates", &self.root_certificates_pem.len())
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("http_client", &self.http_client.is_some())
            .finish()
    }
}

impl IdentityClientOptions {
    /// Checks the timeouts are non-zero and the certificates parse.
    pub fn validate(&self) -> Result<(), Error> {
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(Error::Config("timeouts must be greater than zero".into()));
        }
        for pem in &self.root_certificates_pem {
            reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| Error::Config(format!("a root certificate does not parse: {e}")))?;
        }
        Ok(())
    }

    /// The HTTP client these options describe. Redirects are never followed.
    pub(crate) fn build_client(&self) -> Result<reqwest::Client, Error> {
        self.validate()?;
        if let Some(client) = &self.http_client {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tenantlink-identity/", env!("CARGO_PKG_VERSION")));
        for pem in &self.root_certificates_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| Error::Config(format!("a root certificate does not parse: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))
    }
}
