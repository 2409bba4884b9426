//! Every way a request can fail, and its one HTTP rendering.

use http::header::{HeaderValue, ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
use http::StatusCode;
use latchkey_core::http::{json, HttpResponse};
use latchkey_jwt::VerifyError;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// The bearer token was missing or refused.
    Token(VerifyError),
    /// Revocation is on and the token carries no `sid` to check.
    NoSessionId,
    /// Revocation is on and the session no longer exists or has expired.
    SessionRevoked,
    /// Revocation is on and the database could not answer: fail closed.
    RevocationUnavailable,
    /// `LATCHKEY_REQUIRE_VERIFIED_EMAIL` is on and the valid token's `emailVerified` claim is
    /// not `true` (false, absent or not a boolean).
    EmailNotVerified,
    NotFound,
    MethodNotAllowed(&'static str),
    /// Proxy mode: a request target that could resolve outside `LATCHKEY_UPSTREAM`'s path
    /// (dot segments in any encoding, encoded slashes or backslashes, `*`, ...).
    InvalidPath,
    /// Proxy mode: the client's request body broke off or was malformed (bad chunked
    /// framing, fewer bytes than its `Content-Length`).
    InvalidBody,
    PayloadTooLarge,
    BadGateway,
    GatewayTimeout,
}

#[derive(Serialize)]
struct ErrorBody {
    message: &'static str,
    code: &'static str,
}

pub(crate) const REALM: &str = "latchkey";

impl ApiError {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::Token(VerifyError::NoKeys) | Self::RevocationUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Token(_) | Self::NoSessionId | Self::SessionRevoked => StatusCode::UNAUTHORIZED,
            Self::EmailNotVerified => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidPath | Self::InvalidBody => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Token(e) => e.code(),
            Self::NoSessionId => "NO_SESSION_ID",
            Self::SessionRevoked => "SESSION_REVOKED",
            Self::RevocationUnavailable => "REVOCATION_CHECK_UNAVAILABLE",
            Self::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            Self::InvalidPath => "INVALID_PATH",
            Self::InvalidBody => "INVALID_BODY",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::BadGateway => "BAD_GATEWAY",
            Self::GatewayTimeout => "GATEWAY_TIMEOUT",
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Token(e) => e.description(),
            Self::NoSessionId => "The access token has no session id",
            Self::SessionRevoked => "The session has ended",
            Self::RevocationUnavailable => "Session revocation check unavailable",
            Self::EmailNotVerified => "Email not verified",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed(_) => "Method not allowed",
            Self::InvalidPath => {
                "Request path refused: dot segments, encoded slashes and backslashes are not proxied"
            }
            Self::InvalidBody => "The request body is malformed or incomplete",
            Self::PayloadTooLarge => "Request body too large",
            Self::BadGateway => "Upstream unavailable",
            Self::GatewayTimeout => "Upstream timed out",
        }
    }

    pub(crate) fn into_response(self) -> HttpResponse {
        let mut resp = json(
            self.status(),
            &ErrorBody {
                message: self.message(),
                code: self.code(),
            },
        );
        let headers = resp.headers_mut();
        if let Some(challenge) = self.challenge() {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(WWW_AUTHENTICATE, value);
            }
        }
        match self {
            Self::MethodNotAllowed(allow) => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            Self::Token(VerifyError::NoKeys) | Self::RevocationUnavailable => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        resp
    }

    /// The RFC 6750 challenge for a 401: no error attribute when no token was presented
    /// (§3.1), `invalid_token` with a description otherwise.
    pub(crate) fn challenge(self) -> Option<String> {
        if self.status() != StatusCode::UNAUTHORIZED {
            return None;
        }
        if self == Self::Token(VerifyError::Missing) {
            return Some(format!("Bearer realm=\"{REALM}\""));
        }
        Some(format!(
            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{}\"",
            quoted_string_safe(self.message())
        ))
    }
}

/// RFC 6750 §3 limits error_description to printable ASCII without `"` and `\`; our
/// messages already are, this keeps it true if one ever changes.
fn quoted_string_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn www_authenticate_follows_rfc6750() {
        assert_eq!(
            ApiError::Token(VerifyError::Missing).challenge().as_deref(),
            Some("Bearer realm=\"latchkey\"")
        );
        assert_eq!(
            ApiError::Token(VerifyError::Expired).challenge().as_deref(),
            Some(
                "Bearer realm=\"latchkey\", error=\"invalid_token\", \
                 error_description=\"The access token expired\""
            )
        );
        assert!(ApiError::SessionRevoked
            .challenge()
            .is_some_and(|c| c.contains("invalid_token")));
        assert_eq!(ApiError::RevocationUnavailable.challenge(), None);
        assert_eq!(ApiError::Token(VerifyError::NoKeys).challenge(), None);
        assert_eq!(quoted_string_safe("a\"b\\c\u{e9}"), "a?b?c?");
    }

    #[tokio::test]
    async fn error_bodies_are_json() {
        let resp = ApiError::Token(VerifyError::BadSignature).into_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().contains_key(WWW_AUTHENTICATE));
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "INVALID_SIGNATURE");
        assert_eq!(v["message"], "The access token signature is invalid");
        let resp = ApiError::NotFound.into_response();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"{"message":"Not found","code":"NOT_FOUND"}"#);
        // A valid token of a user who may not pass: 403, and no challenge (RFC 6750 §3.1
        // reserves that for a token that is missing or invalid).
        let resp = ApiError::EmailNotVerified.into_response();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(!resp.headers().contains_key(WWW_AUTHENTICATE));
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &body[..],
            br#"{"message":"Email not verified","code":"EMAIL_NOT_VERIFIED"}"#
        );
    }
}
