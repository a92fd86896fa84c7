//! The connector's errors, in Microsoft Graph's vocabulary.

use std::time::Duration;

/// What can go wrong talking to Microsoft Graph. No variant carries a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The options are not usable.
    #[error("invalid Graph client options: {0}")]
    Config(String),
    /// The credential could not produce an access token.
    #[error("could not get an access token: {0}")]
    Credential(String),
    /// Graph kept throttling (429) until the retry budget ran out. The listing is not
    /// complete; nothing short is handed back.
    #[error("throttled by Microsoft Graph (retry after {retry_after:?}); retry budget exhausted")]
    Throttled {
        /// The last `Retry-After` Graph gave, if any.
        retry_after: Option<Duration>,
    },
    /// 401: the token was refused.
    #[error("unauthorized (401): {message}")]
    Unauthorized {
        /// Graph's message.
        message: String,
    },
    /// 403: the app lacks a permission.
    #[error("forbidden (403): the endpoint needs {permission}: {message}")]
    Forbidden {
        /// The application permission the endpoint needs (the least privileged one).
        permission: String,
        /// Graph's message.
        message: String,
    },
    /// 404: no such object.
    #[error("not found (404): {message}")]
    NotFound {
        /// Graph's message.
        message: String,
    },
    /// 400 (or another 4xx not listed here) with Graph's error code.
    #[error("bad request ({status}) {code}: {message}")]
    BadRequest {
        /// The HTTP status.
        status: u16,
        /// Graph's error code, e.g. `Request_UnsupportedQuery`.
        code: String,
        /// Graph's message.
        message: String,
    },
    /// The delta state is gone (410 `resyncRequired`, 400 `syncStateNotFound`, an expired
    /// delta token): start a full synchronization again.
    #[error("resync required ({code}): start delta again from scratch")]
    ResyncRequired {
        /// Graph's error code.
        code: String,
    },
    /// 400 `Directory_ExpiredPageToken`: a `$skiptoken` outlived its lifetime; restart the
    /// listing.
    #[error("the page token expired; restart the listing")]
    PageTokenExpired,
    /// A 5xx that did not recover within the retry policy.
    #[error("Microsoft Graph server error {status}: {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// Graph's message, if any.
        message: String,
    },
    /// The connection failed or timed out (after retries, for idempotent requests).
    #[error("network error: {0}")]
    Network(String),
    /// A link to follow (`@odata.nextLink`, a stored deltaLink) does not point under the
    /// client's base URL (same scheme, host, port and path prefix); it was not requested, so
    /// the token never left for it. Holds the link without its query.
    #[error("refused to follow a link outside the Graph base URL: {0}")]
    UntrustedLink(String),
    /// The answer was not the JSON expected.
    #[error("could not decode Graph's answer: {0}")]
    Decode(String),
}

impl Error {
    /// Whether the caller should restart from scratch (delta or paging state lost).
    pub fn needs_restart(&self) -> bool {
        matches!(self, Self::ResyncRequired { .. } | Self::PageTokenExpired)
    }
}
