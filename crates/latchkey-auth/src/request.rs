//! A request as the handlers see it: head, bounded body, and typed access to body fields with
//! Better-Auth's validation messages (`[body.email] Invalid input: expected string, ...`).

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value};

use crate::error::AuthError;

pub struct Req {
    pub method: Method,
    /// Path below `/api/auth`, e.g. `/sign-in/email`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// All `Cookie` fields joined: HTTP/2 clients may send one field per cookie (RFC 9113 §8.2.3).
    pub fn cookie_header(&self) -> Option<String> {
        let parts: Vec<&str> = self
            .headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query_flag(&self, name: &str) -> bool {
        matches!(self.query(name), Some("true" | "1" | ""))
    }

    /// The client IP as Better-Auth records it: `X-Forwarded-For` when it holds exactly one
    /// valid address, else empty. The socket address is deliberately not used (spec §1.3).
    pub fn client_ip(&self) -> String {
        self.header("x-forwarded-for")
            .filter(|v| !v.contains(','))
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_string())
            .unwrap_or_default()
    }

    pub fn user_agent(&self) -> String {
        self.header("user-agent").unwrap_or_default().to_string()
    }

    /// The body as a JSON object. `form_ok` also admits `application/x-www-form-urlencoded`
    /// (sign-in and sign-up only, as in Better-Auth). An empty body is an empty object, so that
    /// missing fields are reported by field.
    pub fn body_object(&self, form_ok: bool) -> Result<Map<String, Value>, AuthError> {
        let ctype = self.header("content-type").map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        if self.body.is_empty() && ctype.is_none() {
            return Ok(Map::new());
        }
        match ctype.as_deref() {
            Some("application/json") => {
                if self.body.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Map::new());
                }
                match serde_json::from_slice::<Value>(&self.body) {
                    Ok(Value::Object(map)) => Ok(map),
                    Ok(other) => Err(AuthError::bad_request("VALIDATION_ERROR", {
                        let got = kind(Some(&other));
                        format!(
                            "[body] Invalid input: expected object, received {got}; \
                                 [body] Invalid input: expected record, received {got}"
                        )
                    })),
                    Err(_) => Err(AuthError::bad_request(
                        "BAD_REQUEST",
                        "Invalid JSON in request body",
                    )),
                }
            }
            Some("application/x-www-form-urlencoded") if form_ok => {
                Ok(url::form_urlencoded::parse(&self.body)
                    .map(|(k, v)| (k.into_owned(), form_value(&v)))
                    .collect())
            }
            other => {
                let shown = other.unwrap_or("");
                Err(AuthError::api(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UNSUPPORTED_MEDIA_TYPE",
                    format!(
                        "Content-Type \"{shown}\" is not allowed. Allowed types: {}",
                        if form_ok {
                            "application/x-www-form-urlencoded, application/json"
                        } else {
                            "application/json"
                        }
                    ),
                ))
            }
        }
    }
}

/// Form fields are strings; booleans arrive as "true"/"false".
fn form_value(v: &str) -> Value {
    match v {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        other => Value::String(other.to_string()),
    }
}

/// Collects every problem with a body before answering, as zod does.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    issues: Vec<String>,
}

fn kind(v: Option<&Value>) -> &'static str {
    match v {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            issues: Vec::new(),
        }
    }

    fn wrong(&mut self, name: &str, expected: &str) {
        let got = kind(self.map.get(name));
        self.issues.push(format!(
            "[body.{name}] Invalid input: expected {expected}, received {got}"
        ));
    }

    pub fn string(&mut self, name: &str) -> Option<String> {
        match self.map.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => {
                self.wrong(name, "string");
                None
            }
        }
    }

    /// Absent or null → `None`; a string → `Some`.
    pub fn opt_string(&mut self, name: &str) -> Option<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.wrong(name, "string");
                None
            }
        }
    }

    pub fn opt_bool(&mut self, name: &str) -> Option<bool> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.wrong(name, "boolean");
                None
            }
        }
    }

    pub fn email(&mut self, name: &str) -> Option<String> {
        let value = self.string(name)?;
        if looks_like_email(&value) {
            Some(value)
        } else {
            self.issues
                .push(format!("[body.{name}] Invalid email address"));
            None
        }
    }

    pub fn finish(self) -> Result<(), AuthError> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(AuthError::bad_request(
                "VALIDATION_ERROR",
                self.issues.join("; "),
            ))
        }
    }
}

/// A deliberately plain check, close to zod's: one `@`, a dotted domain, no spaces.
pub fn looks_like_email(s: &str) -> bool {
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn zod_style_messages() {
        let body = json!({"name": 1, "email": "nope"});
        let map = body.as_object().unwrap();
        let mut f = Fields::new(map);
        f.string("name");
        f.email("email");
        f.string("password");
        let err = f.finish().unwrap_err().to_string();
        assert_eq!(
            err,
            "[body.name] Invalid input: expected string, received number; [body.email] Invalid email address; [body.password] Invalid input: expected string, received undefined"
        );
    }

    #[test]
    fn emails() {
        assert!(looks_like_email("bob@example.com"));
        for bad in [
            "", "bob", "bob@", "@x.com", "a@b", "a b@c.d", "a@b@c.d", "a@.b.c", "a@b..c",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }
}
