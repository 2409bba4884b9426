use serde_json::{Map, Value};

/// The verified claims of a token. The typed fields are the ones Better-Auth puts in every
/// token that a resource server usually needs; `all` holds every claim as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// JSON `emailVerified`.
    pub email_verified: Option<bool>,
    /// The Better-Auth session id, when the issuer adds one.
    pub sid: Option<String>,
    /// `exp` in whole seconds (a fractional NumericDate is rounded down).
    pub exp: i64,
    /// `iat` in whole seconds (rounded down), if present.
    pub iat: Option<i64>,
    pub all: Map<String, Value>,
}

impl Claims {
    /// `None` when `sub` is missing or not a string. The time claims were checked (and
    /// converted) by the verifier already. Optional claims of the wrong type are treated as
    /// absent rather than failing the whole token.
    pub(crate) fn from_map(all: Map<String, Value>, exp: i64, iat: Option<i64>) -> Option<Self> {
        let sub = all.get("sub")?.as_str()?.to_string();
        let text = |k: &str| all.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Claims {
            email: text("email"),
            name: text("name"),
            email_verified: all.get("emailVerified").and_then(Value::as_bool),
            sid: text("sid"),
            sub,
            exp,
            iat,
            all,
        })
    }
}
