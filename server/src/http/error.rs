//! [`ApiError`]: every failure of the HTTP API as `{"error": {"code", "message"}}`
//! with the right status. Internal details go to the log, never to clients.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::control::ControlError;
use crate::directory::DirectoryError;
use nscache::CacheError;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// For 429: when to retry.
    pub retry_after: Option<Duration>,
}

/// The body of every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong: a code for programs, a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`miss`, `forbidden`, `invalid`, ...).
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422 with a message.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 500; the details are logged, the client gets a generic message.
    pub fn internal(details: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %details, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error (see the server log)",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<CacheError> for ApiError {
    fn from(e: CacheError) -> Self {
        match e {
            CacheError::Unavailable(m) => {
                tracing::warn!(error = %m, "cache store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cache_unavailable",
                    "the cache store is unavailable; nothing was changed",
                )
            }
            CacheError::KeyTooLong(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "key_too_long", m)
            }
            CacheError::ValueTooLarge(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "value_too_large", m)
            }
            CacheError::ReplyTooLarge(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "reply_too_large", m)
            }
            CacheError::QuotaExceeded(m) => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "namespace_quota_exceeded",
                m,
            ),
            CacheError::InvalidName(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_name", m)
            }
            CacheError::InvalidArgument(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_argument", m)
            }
            CacheError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "key_not_found",
                "the key does not exist",
            ),
            CacheError::NotAnInteger => ApiError::new(
                StatusCode::CONFLICT,
                "not_an_integer",
                "the value is not an integer, or the result is out of range",
            ),
            e @ (CacheError::Internal(_) | CacheError::Component(_) | CacheError::Config(_)) => {
                ApiError::internal(e)
            }
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "sign in, or send an API token as `Authorization: Bearer ...`",
            ),
            ControlError::BadCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "wrong user name or password",
            ),
            ControlError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            ControlError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            ControlError::Invalid(m) => ApiError::invalid(m),
            ControlError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ControlError::RateLimited(wait) => ApiError {
                retry_after: Some(wait),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
            },
            ControlError::LoginBusy(wait) => ApiError {
                retry_after: Some(wait),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "login_busy", e.to_string())
            },
            ControlError::Cache(e) => e.into(),
            ControlError::Directory(DirectoryError::Unavailable(m)) => {
                tracing::warn!(error = %m, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is unavailable",
                )
            }
            ControlError::Directory(e) => ApiError::internal(e),
        }
    }
}

/// Whether reading the body failed because it paused longer than the body
/// timeout (see [`crate::edge::EdgeLimits::body_timeout`]).
fn body_timed_out(r: &JsonRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(r);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if body_timed_out(&r) {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body paused for too long",
            );
        }
        let code = match r.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
            _ => "bad_json",
        };
        ApiError::new(r.status(), code, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_query", r.body_text())
    }
}
