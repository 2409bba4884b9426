//! CORS for browser apps on other origins (docs/compatibility.md#cors). Better-Auth has none
//! (its hosts add it); latchkey replaces the host, so both daemons answer it themselves.
//!
//! Credentials (cookies, `Authorization`) are always involved, so an allowed origin is echoed
//! back, never `*`, and an origin that is not trusted gets no CORS header at all: the browser
//! then refuses to hand the response to the page, and for a preflight, refuses to send the
//! request.

use http::header::{
    HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, Method, StatusCode};

use crate::http::{status_only, HttpResponse};
use crate::origins::OriginPatterns;

/// How long a browser may cache a preflight answer. Chromium caps it at 2 hours.
const MAX_AGE_SECS: u32 = 600;

/// What one daemon allows; built once at start-up from its configuration.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: OriginPatterns,
    allow_methods: HeaderValue,
    allow_headers: HeaderValue,
    expose_headers: HeaderValue,
}

/// The request headers any latchkey client needs: JSON bodies and bearer tokens.
pub const BASE_ALLOW_HEADERS: &[&str] = &["authorization", "content-type"];

impl Cors {
    /// `methods`, `allow_headers` and `expose_headers` are header lists (`a, b`); they come
    /// from code or a validated setting, so a value that is not a header value is an error
    /// at start-up.
    pub fn new(
        origins: OriginPatterns,
        methods: &str,
        allow_headers: &str,
        expose_headers: &str,
    ) -> Result<Self, http::header::InvalidHeaderValue> {
        Ok(Self {
            origins,
            allow_methods: HeaderValue::from_str(methods)?,
            allow_headers: HeaderValue::from_str(allow_headers)?,
            expose_headers: HeaderValue::from_str(expose_headers)?,
        })
    }

    pub fn origins(&self) -> &OriginPatterns {
        &self.origins
    }

    /// A preflight is an `OPTIONS` request with `Origin` and `Access-Control-Request-Method`;
    /// browsers send it without credentials, so it must be answered before authentication.
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS
            && headers.contains_key(ORIGIN)
            && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The request's `Origin` when it is allowed (what the response echoes back).
    pub fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let mut values = headers.get_all(ORIGIN).iter();
        let origin = values.next()?;
        if values.next().is_some() {
            return None;
        }
        let text = origin.to_str().ok()?;
        self.origins.allows_origin(text).then(|| origin.clone())
    }

    /// The answer to a preflight: `204`, with the CORS grant only for an allowed origin.
    pub fn preflight(&self, headers: &HeaderMap) -> HttpResponse {
        let mut resp = status_only(StatusCode::NO_CONTENT);
        let out = resp.headers_mut();
        for name in [
            "origin",
            "access-control-request-method",
            "access-control-request-headers",
        ] {
            out.append(VARY, HeaderValue::from_static(name));
        }
        if let Some(origin) = self.allowed_origin(headers) {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            out.insert(ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
            out.insert(ACCESS_CONTROL_ALLOW_HEADERS, self.allow_headers.clone());
            out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(MAX_AGE_SECS));
        }
        resp
    }

    /// Adds the CORS grant to an actual response for the request's `origin` (captured before
    /// the request was consumed; `None` when it had none). Responses from a disallowed origin
    /// lose any `Access-Control-*` header a handler or an upstream set, so that such an origin
    /// really gets none.
    pub fn decorate(&self, origin: Option<&HeaderValue>, resp: &mut HttpResponse) {
        let out = resp.headers_mut();
        out.append(VARY, HeaderValue::from_static("origin"));
        let Some(origin) = origin else {
            return;
        };
        let allowed = origin
            .to_str()
            .is_ok_and(|text| self.origins.allows_origin(text));
        if !allowed {
            strip_cors_headers(out);
            return;
        }
        out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        out.insert(ACCESS_CONTROL_EXPOSE_HEADERS, self.expose_headers.clone());
    }
}

/// Removes every `Access-Control-*` response header.
pub fn strip_cors_headers(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        Cors::new(
            OriginPatterns::new(["https://app.example.com", "https://*.example.org"]),
            "GET, POST",
            "authorization, content-type",
            "set-auth-token",
        )
        .unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn preflight_from_trusted_and_untrusted_origins() {
        let c = cors();
        let asked = headers(&[
            ("origin", "https://a.example.org"),
            ("access-control-request-method", "POST"),
        ]);
        assert!(Cors::is_preflight(&Method::OPTIONS, &asked));
        assert!(!Cors::is_preflight(&Method::GET, &asked));
        let r = c.preflight(&asked);
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://a.example.org"
        );
        assert_eq!(r.headers()["access-control-allow-credentials"], "true");
        assert_eq!(r.headers()["access-control-max-age"], "600");
        let evil = headers(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ]);
        let r = c.preflight(&evil);
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert!(!r
            .headers()
            .keys()
            .any(|k| k.as_str().starts_with("access-control-")));
    }

    #[test]
    fn actual_responses() {
        let c = cors();
        let mut resp = status_only(StatusCode::OK);
        resp.headers_mut()
            .insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("x"));
        c.decorate(
            Some(&HeaderValue::from_static("https://evil.example")),
            &mut resp,
        );
        assert!(!resp.headers().contains_key(ACCESS_CONTROL_EXPOSE_HEADERS));
        assert_eq!(resp.headers()[VARY], "origin");

        let mut resp = status_only(StatusCode::OK);
        c.decorate(
            Some(&HeaderValue::from_static("https://app.example.com")),
            &mut resp,
        );
        assert_eq!(
            resp.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        assert_eq!(
            resp.headers()[ACCESS_CONTROL_EXPOSE_HEADERS],
            "set-auth-token"
        );
    }
}
