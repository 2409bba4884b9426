//! The auth daemon's one error type, and its one mapping to HTTP.

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;
use latchkey_core::http::{self as h, HttpResponse};
use serde_json::json;

use crate::password::HashError;
use crate::store::StoreError;

#[derive(Debug)]
pub(crate) enum AuthError {
    /// A client-facing error in Better-Auth's `{message, code}` shape.
    Api {
        status: StatusCode,
        code: Option<&'static str>,
        message: Cow<'static, str>,
    },
    /// Better-Auth answers unknown paths and wrong methods with an empty 404.
    NotFound,
    /// 401 for a genuine session cookie whose session has ended: like Better-Auth, the
    /// answer also clears the cookies (these `Set-Cookie` values).
    SessionEnded { clear_cookies: Vec<String> },
    /// Over a rate limit (429, `X-Retry-After`, a body without `code`;
    /// docs/compatibility.md#rate-limits).
    RateLimited { retry_after_secs: u64 },
    /// The database could not be reached in time.
    Unavailable(String),
    /// A bug or broken invariant; logged, never shown.
    Internal(String),
}

impl AuthError {
    pub(crate) fn api(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        AuthError::Api {
            status,
            code: Some(code),
            message: message.into(),
        }
    }

    pub(crate) fn internal(msg: impl Into<String>) -> Self {
        AuthError::Internal(msg.into())
    }

    pub(crate) fn unauthorized() -> Self {
        Self::api(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Unauthorized")
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::api(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn forbidden(code: &'static str, message: &'static str) -> Self {
        Self::api(StatusCode::FORBIDDEN, code, message)
    }

    pub(crate) fn into_response(self) -> HttpResponse {
        match self {
            AuthError::Api {
                status,
                code: Some(code),
                message,
            } => h::json(status, &json!({"message": message, "code": code})),
            AuthError::Api {
                status,
                code: None,
                message,
            } => h::json(status, &json!({ "message": message })),
            AuthError::NotFound => h::status_only(StatusCode::NOT_FOUND),
            AuthError::SessionEnded { clear_cookies } => {
                let mut resp = AuthError::unauthorized().into_response();
                for cookie in clear_cookies {
                    if let Ok(v) = http::HeaderValue::from_str(&cookie) {
                        resp.headers_mut().append(http::header::SET_COOKIE, v);
                    }
                }
                resp
            }
            AuthError::RateLimited { retry_after_secs } => {
                let mut resp = h::json(
                    StatusCode::TOO_MANY_REQUESTS,
                    &json!({"message": "Too many requests. Please try again later."}),
                );
                resp.headers_mut()
                    .insert("x-retry-after", http::HeaderValue::from(retry_after_secs));
                resp
            }
            AuthError::Unavailable(detail) => {
                tracing::warn!("database unavailable: {detail}");
                h::json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"message": "Service temporarily unavailable", "code": "SERVICE_UNAVAILABLE"}),
                )
            }
            AuthError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                h::json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"message": "Internal server error", "code": "INTERNAL_SERVER_ERROR"}),
                )
            }
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Api { message, .. } => f.write_str(message),
            AuthError::NotFound => f.write_str("not found"),
            AuthError::SessionEnded { .. } => f.write_str("Unauthorized"),
            AuthError::RateLimited { .. } => f.write_str("rate limited"),
            AuthError::Unavailable(d) => write!(f, "database unavailable: {d}"),
            AuthError::Internal(d) => f.write_str(d),
        }
    }
}

impl std::error::Error for AuthError {}

/// A store error that reaches a handler unhandled: the database being away is a 503, the rest
/// (a unique violation nobody expected included) is a bug.
impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => AuthError::Unavailable(detail),
            unexpected => AuthError::Internal(unexpected.to_string()),
        }
    }
}

impl From<latchkey_core::sql::DbError> for AuthError {
    fn from(e: latchkey_core::sql::DbError) -> Self {
        StoreError::from(e).into()
    }
}

impl From<HashError> for AuthError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => AuthError::api(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_BUSY",
                "Too many sign-ins in progress; try again shortly",
            ),
            HashError::UnknownFormat => {
                AuthError::internal("stored password hash has an unknown format")
            }
            HashError::Internal(d) => AuthError::Internal(d),
        }
    }
}
