//! A request as the handlers see it: head, bounded body, path parameters, and typed request
//! bodies ([`FromBody`]) checked with Better-Auth's validation messages
//! (`[body.email] Invalid input: expected string, ...`; docs/compatibility.md#http-conventions).

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::error::AuthError;

/// Which body encodings an endpoint takes (a column of the route table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyRule {
    /// The body is not read at all (GET endpoints).
    Ignored,
    Json,
    /// JSON or `application/x-www-form-urlencoded` (sign-in and sign-up, as in Better-Auth).
    JsonOrForm,
}

pub(crate) struct Req {
    /// Path below `/api/auth`, e.g. `/sign-in/email`.
    pub(crate) path: String,
    /// Values of the route pattern's `:name` segments.
    pub(crate) params: Vec<(&'static str, String)>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) body_rule: BodyRule,
    pub(crate) peer: SocketAddr,
}

/// A request body as one endpoint takes it. `read` pulls every field through [`Fields`], which
/// records each problem and hands back a placeholder; the value is only used when no problem
/// was recorded, so implementations never see a half-valid body.
pub(crate) trait FromBody: Sized {
    fn read(f: &mut Fields<'_>) -> Self;
}

/// Endpoints that take no body ignore whatever was sent, as Better-Auth does.
impl FromBody for () {
    fn read(_: &mut Fields<'_>) -> Self {}
}

impl Req {
    /// The typed body, or the 400/415 Better-Auth gives for it.
    pub(crate) fn body<B: FromBody>(&self) -> Result<B, AuthError> {
        if self.body_rule == BodyRule::Ignored {
            return Ok(B::read(&mut Fields::new(&Map::new())));
        }
        let map = self.body_object(self.body_rule == BodyRule::JsonOrForm)?;
        let mut fields = Fields::new(&map);
        let body = B::read(&mut fields);
        fields.finish()?;
        Ok(body)
    }

    /// A path parameter by its name in the route pattern.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// All `Cookie` fields joined: HTTP/2 clients may send one field per cookie (RFC 9113 §8.2.3).
    pub(crate) fn cookie_header(&self) -> Option<String> {
        let parts: Vec<&str> = self
            .headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn query_flag(&self, name: &str) -> bool {
        matches!(self.query(name), Some("true" | "1" | ""))
    }

    /// The client IP as Better-Auth records it: `X-Forwarded-For` when it holds exactly one
    /// valid address, else empty. The socket address is deliberately not used (docs/compatibility.md#schema).
    pub(crate) fn client_ip(&self) -> String {
        self.header("x-forwarded-for")
            .filter(|v| !v.contains(','))
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_string())
            .unwrap_or_default()
    }

    pub(crate) fn user_agent(&self) -> String {
        self.header("user-agent").unwrap_or_default().to_string()
    }

    /// The body as a JSON object. `form_ok` also admits `application/x-www-form-urlencoded`
    /// (sign-in and sign-up only, as in Better-Auth). An empty body is an empty object, so that
    /// missing fields are reported by field.
    fn body_object(&self, form_ok: bool) -> Result<Map<String, Value>, AuthError> {
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
pub(crate) struct Fields<'a> {
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
    pub(crate) fn new(map: &'a Map<String, Value>) -> Self {
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

    /// A required string; `""` (and a recorded problem) when absent or not a string.
    pub(crate) fn string(&mut self, name: &str) -> String {
        match self.map.get(name) {
            Some(Value::String(s)) => self.stored(name, s),
            _ => {
                self.wrong(name, "string");
                String::new()
            }
        }
    }

    /// A string that goes into the database: Postgres `text` cannot hold NUL (a 500 from the
    /// server, SQLSTATE 22021), so it is refused here, where it is the client's mistake.
    fn stored(&mut self, name: &str, s: &str) -> String {
        if s.contains('\0') {
            self.issues.push(format!(
                "[body.{name}] Invalid input: must not contain NUL characters"
            ));
        }
        s.to_string()
    }

    /// A required string that is a secret (a password): never `Debug`-printed, wiped on drop.
    /// Only its hash is stored, so any character is allowed, as in Better-Auth.
    pub(crate) fn secret(&mut self, name: &str) -> SecretString {
        match self.map.get(name) {
            Some(Value::String(s)) => SecretString::from(s.clone()),
            _ => {
                self.wrong(name, "string");
                SecretString::from(String::new())
            }
        }
    }

    /// An optional JSON object (its members are read by the caller); anything else is a
    /// recorded problem.
    pub(crate) fn opt_object(&mut self, name: &str) -> Option<Map<String, Value>> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o.clone()),
            Some(_) => {
                self.wrong(name, "object");
                None
            }
        }
    }

    /// An optional list of strings: absent or null → empty.
    pub(crate) fn opt_strings(&mut self, name: &str) -> Vec<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(_) => {
                self.wrong(name, "array of strings");
                Vec::new()
            }
        }
    }

    /// Names of keys other than `known`: for Better-Auth's strict bodies.
    pub(crate) fn unknown_keys(&self, known: &[&str]) -> bool {
        self.map.keys().any(|k| !known.contains(&k.as_str()))
    }

    /// Records a problem with the whole body, in zod's words.
    pub(crate) fn invalid_body(&mut self) {
        self.issue("[body] Invalid input".to_string());
    }

    /// Records a problem found by the caller (a nested field, a limit).
    pub(crate) fn issue(&mut self, message: String) {
        self.issues.push(message);
    }

    /// An optional secret: absent or null → `None`.
    pub(crate) fn opt_secret(&mut self, name: &str) -> Option<SecretString> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(_) => Some(self.secret(name)),
        }
    }

    /// Is the key present at all (even as `null`)?
    pub(crate) fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Absent → `None`, `null` → `Some(None)`, a string → `Some(Some(..))`: for fields where
    /// `null` means "clear it".
    pub(crate) fn nullable_string(&mut self, name: &str) -> Option<Option<String>> {
        match self.map.get(name) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(_) => self.opt_string(name).map(Some),
        }
    }

    /// Absent or null → `None`; a string → `Some`.
    pub(crate) fn opt_string(&mut self, name: &str) -> Option<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(self.stored(name, s)),
            Some(_) => {
                self.wrong(name, "string");
                None
            }
        }
    }

    pub(crate) fn opt_bool(&mut self, name: &str) -> Option<bool> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.wrong(name, "boolean");
                None
            }
        }
    }

    /// A required email address (zod's `email()` check).
    pub(crate) fn email(&mut self, name: &str) -> String {
        let Some(Value::String(value)) = self.map.get(name) else {
            return self.string(name);
        };
        if !looks_like_email(value) {
            self.issues
                .push(format!("[body.{name}] Invalid email address"));
        }
        value.clone()
    }

    fn finish(self) -> Result<(), AuthError> {
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
pub(crate) fn looks_like_email(s: &str) -> bool {
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
    fn nul_characters_are_refused_except_in_secrets() {
        let body = json!({"name": "a\u{0}b", "image": "x\u{0}", "password": "p\u{0}w"});
        let map = body.as_object().unwrap();
        let mut f = Fields::new(map);
        f.string("name");
        f.opt_string("image");
        f.secret("password");
        assert_eq!(
            f.finish().unwrap_err().to_string(),
            "[body.name] Invalid input: must not contain NUL characters; \
             [body.image] Invalid input: must not contain NUL characters"
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
