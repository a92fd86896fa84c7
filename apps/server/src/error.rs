//! `ApiError`: every error the HTTP API answers, and the one place that picks its status
//! code. Bodies are `{"error": {"code": ..., "message": ...}}`; a 5xx also carries the
//! request id and logs its cause, which it never sends.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer of the API.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The request is malformed or a value is out of range (400).
    #[error("{message}")]
    BadRequest {
        /// Stable machine-readable code.
        code: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// No key, an unknown, revoked or expired key (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The thing does not exist for this caller (404). Another organization's ids get
    /// this too, so ids cannot be probed.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up.
        what: &'static str,
    },
    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict {
        /// Stable machine-readable code.
        code: &'static str,
        /// What conflicts.
        message: String,
    },
    /// Well-formed but refused, e.g. credentials Entra ID does not accept (422).
    #[error("{message}")]
    Unprocessable {
        /// Stable machine-readable code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// The body is larger than the server accepts (413).
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Too many requests for this key or organization (429, with `Retry-After`).
    #[error("too many requests: retry after {} s", retry_after.as_secs().max(1))]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// Microsoft (or the emulator) could not be reached or failed (502).
    #[error("{message}")]
    Upstream {
        /// Stable machine-readable code.
        code: &'static str,
        /// What failed, without secrets.
        message: String,
    },
    /// The database is unreachable or the service is shutting down (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure (500). The cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A 400 with a code and message.
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 500 whose cause is logged.
    pub(crate) fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(e.into())
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::Upstream { code, .. } => code,
            Self::Unauthorized(_) => "unauthorized",
            Self::NotFound { .. } => "not_found",
            Self::PayloadTooLarge { .. } => "body_too_large",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// The error.
    pub(crate) error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `invalid_limit`.
    pub(crate) code: String,
    /// What happened and what to do next.
    pub(crate) message: String,
    /// The request id (5xx only), to quote when reporting it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) request_id: Option<String>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let request_id = status
            .is_server_error()
            .then(crate::app::current_request_id)
            .flatten();
        if let Self::Internal(cause) = self {
            tracing::error!(request_id = request_id.as_deref().unwrap_or("-"), error = %cause, "internal error");
        }
        let mut response = HttpResponse::build(status);
        if let Self::RateLimited { retry_after } = self {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.insert_header((header::RETRY_AFTER, secs.max(1).to_string()));
        }
        if matches!(self, Self::Unauthorized(_)) {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tenantlink\""),
            ));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: match self {
                    Self::Internal(_) => {
                        "internal error: the server logged the cause under this request id".into()
                    }
                    other => other.to_string(),
                },
                request_id,
            },
        })
    }
}

impl From<tenantlink_store::Error> for ApiError {
    fn from(e: tenantlink_store::Error) -> Self {
        use tenantlink_store::Error as E;
        match e {
            E::NotFound { entity, .. } => Self::NotFound { what: entity },
            E::Page(e) => e.into(),
            E::Conflict(message) => Self::Conflict {
                code: "conflict",
                message,
            },
            E::Contention(message) => {
                tracing::warn!(error = %message, "transaction raced another");
                Self::Unavailable("the database is busy; retry shortly".into())
            }
            E::Unavailable(message) => {
                tracing::warn!(error = %message, "database unavailable");
                Self::Unavailable("the database is unavailable; retry shortly".into())
            }
            other => Self::internal(other),
        }
    }
}

impl From<tenantlink_store::PageError> for ApiError {
    fn from(e: tenantlink_store::PageError) -> Self {
        use tenantlink_store::PageError as P;
        let code = match e {
            P::Limit => "invalid_limit",
            P::Cursor => "invalid_cursor",
        };
        Self::bad_request(code, e.to_string())
    }
}

/// Turns actix's own extractor errors (bad JSON, bad query, too large) into our shape.
pub(crate) fn json_error(
    err: actix_web::error::JsonPayloadError,
    limit: usize,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => ApiError::PayloadTooLarge { limit },
        J::ContentType => ApiError::bad_request(
            "unsupported_content_type",
            "send the body as application/json",
        ),
        _ => ApiError::bad_request("invalid_json", err.to_string()),
    };
    api.into()
}

/// Turns query-string errors into our shape.
pub(crate) fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request("invalid_query", err.to_string()).into()
}

/// Turns path errors (e.g. a malformed id) into our shape.
pub(crate) fn path_error(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request("invalid_path", err.to_string()).into()
}
