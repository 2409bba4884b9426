//! The state of one sign-in in flight, kept as Better-Auth keeps it: a `verification` row
//! `auth-state:<state>` (10 minutes) whose value is the JSON below, and a signed `state`
//! cookie (5 minutes) binding the flow to the browser that started it. Both must match on the
//! callback; the row is used up there. PKCE is always S256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::AuthError;
use crate::keys::KeyCipher;

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
    pub(crate) link: Option<Link>,
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
    /// The provider the flow was started for (latchkey's addition; Better-Auth's rows have
    /// none, and ignore it): a state cannot be finished at another provider's callback.
    #[serde(
        rename = "latchkeyProvider",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub(crate) provider: Option<String>,
}

/// `generateRandomString(n)` over `[A-Za-z0-9_-]`: the state, the PKCE verifier, the nonce.
pub(crate) fn random_token(len: usize) -> String {
    crate::ids::random_url_safe(len)
}

/// RFC 7636 S256: base64url-nopad(SHA-256(verifier)).
pub(crate) fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The `link` member of a link-social state: who asked, and their session, sealed so that the
/// row does not hand out a credential.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Link {
    #[serde(rename = "userId")]
    pub(crate) user_id: String,
    pub(crate) email: String,
    #[serde(rename = "encryptedSessionToken")]
    pub(crate) encrypted_session_token: String,
}

/// Better-Auth's purpose keys (`crypto/purpose.mjs`): HKDF-SHA256 of the secret with salt
/// `better-auth:oauth-encryption:v1` and info `better-auth:<purpose>:v1`, 32 bytes; the cipher
/// key is then SHA-256 of that output's lower-hex string, which is exactly what
/// [`KeyCipher::new`] does with a secret.
pub(crate) fn purpose_cipher(secret: &SecretString, purpose: &str) -> Result<KeyCipher, AuthError> {
    let mac = |key: &[u8], data: &[&[u8]]| {
        // HMAC takes keys of any length: the error case does not happen.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map_err(|_| AuthError::internal("HMAC key refused"))?;
        for d in data {
            m.update(d);
        }
        Ok::<_, AuthError>(m.finalize().into_bytes())
    };
    let prk = mac(
        b"better-auth:oauth-encryption:v1",
        &[secret.expose_secret().as_bytes()],
    )?;
    let info = format!("better-auth:{purpose}:v1");
    let okm = Zeroizing::new(hex::encode(mac(&prk, &[info.as_bytes(), &[1u8]])?));
    Ok(KeyCipher::new(&SecretString::from(
        okm.as_str().to_string(),
    )))
}

pub(crate) const LINK_PURPOSE: &str = "oauth-link-session-token";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purpose_keys_differ_by_purpose() {
        // The purpose key is deterministic per secret and purpose, and differs between them.
        let a = purpose_cipher(&SecretString::from("s".repeat(32)), LINK_PURPOSE).unwrap();
        let sealed = a.seal_hex(b"token").unwrap();
        assert_eq!(a.open_token(&sealed).as_str(), "token");
        let b = purpose_cipher(&SecretString::from("s".repeat(32)), "oauth-state-cookie").unwrap();
        assert_ne!(b.open_token(&sealed).as_str(), "token");
    }

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
            provider: None,
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
