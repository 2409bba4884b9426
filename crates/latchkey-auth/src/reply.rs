//! A successful answer under construction: JSON body, cookies and extra headers.

use http::header::{HeaderName, HeaderValue, ACCESS_CONTROL_EXPOSE_HEADERS, SET_COOKIE};
use http::StatusCode;
use latchkey_core::http::{self as h, HttpResponse};
use serde_json::Value;

pub struct Reply {
    status: StatusCode,
    body: Option<Value>,
    headers: Vec<(HeaderName, String)>,
    expose: Vec<&'static str>,
}

impl Reply {
    pub fn json(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            headers: Vec::new(),
            expose: Vec::new(),
        }
    }

    /// Raw bytes that are already JSON (the cached JWKS).
    pub fn raw_json(bytes: bytes::Bytes) -> HttpResponse {
        let mut resp = http::Response::new(h::full(bytes));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn cookie(mut self, set_cookie: String) -> Self {
        self.headers.push((SET_COOKIE, set_cookie));
        self
    }

    pub fn cookies(mut self, all: Vec<String>) -> Self {
        for c in all {
            self.headers.push((SET_COOKIE, c));
        }
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers
            .push((HeaderName::from_static(name), value.into()));
        self
    }

    /// Lists a header in `Access-Control-Expose-Headers` so browser clients can read it.
    pub fn expose(mut self, name: &'static str) -> Self {
        self.expose.push(name);
        self
    }

    pub fn into_response(self) -> HttpResponse {
        let mut resp = h::json(self.status, &self.body.unwrap_or(Value::Null));
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
            if let Ok(v) = HeaderValue::from_str(&self.expose.join(", ")) {
                headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v);
            }
        }
        resp
    }
}
