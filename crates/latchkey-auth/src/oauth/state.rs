//! The state of one sign-in in flight, kept as Better-Auth keeps it: a `verification` row
//! `auth-state:<state>` (10 minutes) whose value is the JSON below, and a signed `state`
//! cookie (5 minutes) binding the flow to the browser that started it. Both must match on the
//! callback; the row is used up there. PKCE is always S256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub(crate) const IDENTIFIER_PREFIX: &str = "auth-state:";
/// The row's lifetime (the cookie's is 300 s).
pub(crate) const ROW_TTL_SECS: i64 = 600;
pub(crate) const COOKIE_MAX_AGE: i64 = 300;
/// The state cookie's name after the prefix.
pub(crate) const COOKIE: &str = "state";

/// The row's JSON value, keys in Better-Auth's order; absent keys are left out. Unknown keys
/// (Better-Auth's `additionalData`, ...) are ignored when read.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FlowState {
    #[serde(rename = "callbackURL")]
    pub(crate) callback_url: String,
    #[serde(rename = "codeVerifier")]
    pub(crate) code_verifier: String,
    #[serde(rename = "errorURL", skip_serializing_if = "Option::is_none", default)]
    pub(crate) error_url: Option<String>,
    #[serde(
        rename = "newUserURL",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub(crate) new_user_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) link: Option<serde_json::Value>,
    /// Epoch milliseconds.
    #[serde(rename = "expiresAt")]
    pub(crate) expires_at: i64,
    #[serde(
        rename = "requestSignUp",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub(crate) request_sign_up: Option<bool>,
    #[serde(
        rename = "idTokenNonce",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub(crate) id_token_nonce: Option<String>,
    #[serde(rename = "oauthState", default)]
    pub(crate) oauth_state: Option<String>,
}

/// `generateRandomString(n)` over `[A-Za-z0-9_-]`: the state, the PKCE verifier, the nonce.
pub(crate) fn random_token(len: usize) -> String {
    crate::ids::random_url_safe(len)
}

/// RFC 7636 S256: base64url-nopad(SHA-256(verifier)).
pub(crate) fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn the_row_value_has_better_auths_shape() {
        let s = FlowState {
            callback_url: "/dash".into(),
            code_verifier: "v".into(),
            error_url: Some("/err".into()),
            new_user_url: None,
            link: None,
            expires_at: 1,
            request_sign_up: None,
            id_token_nonce: Some("n".into()),
            oauth_state: Some("s".into()),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"callbackURL":"/dash","codeVerifier":"v","errorURL":"/err","expiresAt":1,"idTokenNonce":"n","oauthState":"s"}"#
        );
        let back: FlowState = serde_json::from_str(
            r#"{"callbackURL":"/x","codeVerifier":"c","expiresAt":5,"additionalData":{"a":1},"oauthState":"s"}"#,
        )
        .unwrap();
        assert_eq!(back.callback_url, "/x");
        assert_eq!(back.oauth_state.as_deref(), Some("s"));
    }
}
