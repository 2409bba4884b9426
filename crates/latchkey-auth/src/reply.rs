//! A successful answer under construction: JSON body, cookies and extra headers.

use http::header::{
    HeaderName, HeaderValue, ACCESS_CONTROL_EXPOSE_HEADERS, CACHE_CONTROL, SET_COOKIE,
};
use http::StatusCode;
use latchkey_core::http::{self as h, HttpResponse};
use serde_json::Value;

/// Better-Auth's bearer plugin hands the signed session token to clients in this header.
pub(crate) const SET_AUTH_TOKEN: HeaderName = HeaderName::from_static("set-auth-token");
/// Better-Auth's jwt plugin puts a fresh JWT on every get-session answer.
pub(crate) const SET_AUTH_JWT: HeaderName = HeaderName::from_static("set-auth-jwt");

pub(crate) struct Reply {
    status: StatusCode,
    body: Option<Value>,
    /// A page instead of JSON (the `/error` page).
    html: Option<String>,
    headers: Vec<(HeaderName, String)>,
    expose: Vec<HeaderName>,
}

impl Reply {
    pub(crate) fn json(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            html: None,
            headers: Vec::new(),
            expose: Vec::new(),
        }
    }

    /// A `text/html` page.
    pub(crate) fn html(page: String) -> Self {
        Self {
            status: StatusCode::OK,
            body: None,
            html: Some(page),
            headers: Vec::new(),
            expose: Vec::new(),
        }
    }

    /// A 302 to `location`: an empty body with `content-type: application/json`, as
    /// Better-Auth's redirects.
    pub(crate) fn redirect(location: String) -> Self {
        Self {
            status: StatusCode::FOUND,
            body: None,
            html: None,
            headers: vec![(http::header::LOCATION, location)],
            expose: Vec::new(),
        }
    }

    /// This reply (its cookies and headers) as a 302 to `location`, body dropped.
    pub(crate) fn into_redirect(mut self, location: &str) -> Self {
        self.status = StatusCode::FOUND;
        self.body = None;
        self.html = None;
        self.headers
            .push((http::header::LOCATION, location.to_string()));
        self
    }

    /// Raw bytes that are already JSON (the cached JWKS).
    pub(crate) fn raw_json(bytes: bytes::Bytes) -> HttpResponse {
        let mut resp = http::Response::new(h::full(bytes));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }

    pub(crate) fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn cookie(mut self, set_cookie: String) -> Self {
        self.headers.push((SET_COOKIE, set_cookie));
        self
    }

    pub(crate) fn cookies(mut self, all: Vec<String>) -> Self {
        for c in all {
            self.headers.push((SET_COOKIE, c));
        }
        self
    }

    /// Names are typed (`http::header::*` or this module's constants): a name is checked
    /// when it is written down, not when a request happens to reach it.
    pub(crate) fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// `Cache-Control: no-store`: for answers that carry credentials (session tokens, JWTs),
    /// which no cache on the way may keep. Better-Auth sets it on get-session only.
    pub(crate) fn no_store(self) -> Self {
        if self.headers.iter().any(|(n, _)| n == CACHE_CONTROL) {
            return self;
        }
        self.header(CACHE_CONTROL, "no-store")
    }

    /// Lists a header in `Access-Control-Expose-Headers`, as Better-Auth does for its own
    /// headers even without CORS.
    pub(crate) fn expose(mut self, name: HeaderName) -> Self {
        self.expose.push(name);
        self
    }

    pub(crate) fn into_response(self) -> HttpResponse {
        let mut resp = match (&self.body, self.html) {
            (Some(body), _) => h::json(self.status, body),
            (None, Some(page)) => {
                let mut resp = http::Response::new(h::full(page));
                *resp.status_mut() = self.status;
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                resp
            }
            (None, None) => {
                let mut resp = http::Response::new(h::full(bytes::Bytes::new()));
                *resp.status_mut() = self.status;
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                resp
            }
        };
        let headers = resp.headers_mut();
        for (name, value) in self.headers {
            match HeaderValue::from_str(&value) {
                Ok(v) => {
                    headers.append(name, v);
                }
                Err(_) => tracing::warn!("dropping unrepresentable {name} header"),
            }
        }
        if !self.expose.is_empty() {
            let names: Vec<&str> = self.expose.iter().map(HeaderName::as_str).collect();
            if let Ok(v) = HeaderValue::from_str(&names.join(", ")) {
                headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_with_capitals_do_not_panic() {
        // Regression: names used to go through `HeaderName::from_static`, which panics at
        // run time on upper-case input.
        let name = HeaderName::try_from("Cache-Control").unwrap();
        let resp = Reply::json(Value::Null)
            .header(name, "no-store")
            .expose(SET_AUTH_TOKEN)
            .expose(SET_AUTH_JWT)
            .into_response();
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert_eq!(
            resp.headers()["access-control-expose-headers"],
            "set-auth-token, set-auth-jwt"
        );
    }
}
