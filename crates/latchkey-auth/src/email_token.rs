//! The stateless tokens of Better-Auth's email links (docs/compatibility.md#verification-tokens):
//! `{"alg":"HS256"}` . claims . HMAC-SHA256 with the secret. One format serves three links:
//! verify an address, confirm an email change from the old address, and verify the new one;
//! the `updateTo` and `requestType` claims tell them apart. Both servers sign and accept the
//! same tokens, so a link mailed by one is finished on the other.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// Malformed, forged, or missing a claim its kind needs.
    Invalid,
    Expired,
}

/// What a token asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Verify `email` (sign-up, resend, sign-in).
    Verify,
    /// Step 1 of a change by a verified user: the old address's owner agrees to `update_to`.
    ChangeConfirmation { update_to: String },
    /// The last step: the owner of `update_to` proves it; the user row changes now.
    ChangeVerification { update_to: String },
    /// `updateTo` without a `requestType`: tokens of Better-Auth before 1.7, which changed the
    /// address at once and sent a fresh verification.
    LegacyChange { update_to: String },
}

impl Purpose {
    fn request_type(&self) -> Option<&'static str> {
        match self {
            Purpose::ChangeConfirmation { .. } => Some("change-email-confirmation"),
            Purpose::ChangeVerification { .. } => Some("change-email-verification"),
            Purpose::Verify | Purpose::LegacyChange { .. } => None,
        }
    }

    fn update_to(&self) -> Option<&str> {
        match self {
            Purpose::Verify => None,
            Purpose::ChangeConfirmation { update_to }
            | Purpose::ChangeVerification { update_to }
            | Purpose::LegacyChange { update_to } => Some(update_to),
        }
    }
}

/// The claims of a token that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    /// The address the token was issued for: for a change, the user's address at the time.
    pub(crate) email: String,
    pub(crate) user_id: String,
    pub(crate) purpose: Purpose,
}

/// A token for `claims`, valid for `ttl` seconds from now.
pub(crate) fn sign(secret: &SecretString, claims: &Claims, ttl: i64) -> String {
    let iat = Utc::now().timestamp();
    sign_at(secret, claims, iat, iat + ttl)
}

fn sign_at(secret: &SecretString, claims: &Claims, iat: i64, exp: i64) -> String {
    // Key order as Better-Auth writes it (serde_json's map keeps insertion order only with
    // preserve_order, so the payload is assembled by hand).
    let mut payload = format!(r#"{{"email":{}"#, Value::from(claims.email.to_lowercase()));
    if let Some(to) = claims.purpose.update_to() {
        payload.push_str(&format!(
            r#","updateTo":{}"#,
            Value::from(to.to_lowercase())
        ));
    }
    if let Some(kind) = claims.purpose.request_type() {
        payload.push_str(&format!(r#","requestType":{}"#, Value::from(kind)));
    }
    payload.push_str(&format!(
        r#","userId":{},"iat":{iat},"exp":{exp}}}"#,
        Value::from(claims.user_id.as_str())
    ));
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
        URL_SAFE_NO_PAD.encode(payload.as_bytes())
    );
    let sig = mac(secret, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn mac(secret: &SecretString, data: &[u8]) -> Vec<u8> {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
        // HMAC takes keys of any length; unreachable.
        return Vec::new();
    };
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// The claims of `token` once its signature, `exp` and `nbf` check out (jose's checks, which
/// Better-Auth uses).
pub(crate) fn verify(secret: &SecretString, token: &str) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Invalid);
    };
    let header: Value = decode_json(h)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") || header.get("crit").is_some() {
        return Err(TokenError::Invalid);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| TokenError::Invalid)?;
    let expected = mac(secret, format!("{h}.{p}").as_bytes());
    if expected.is_empty() || !bool::from(expected.as_slice().ct_eq(&sig)) {
        return Err(TokenError::Invalid);
    }
    let claims: Value = decode_json(p)?;
    let now = Utc::now().timestamp() as f64;
    match claims.get("exp") {
        None => {}
        Some(exp) => match exp.as_f64() {
            Some(exp) if now < exp => {}
            Some(_) => return Err(TokenError::Expired),
            None => return Err(TokenError::Invalid),
        },
    }
    if let Some(nbf) = claims.get("nbf") {
        match nbf.as_f64() {
            Some(nbf) if nbf <= now => {}
            _ => return Err(TokenError::Invalid),
        }
    }
    let text = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenError::Invalid),
    };
    let (Some(email), Some(user_id)) = (text("email")?, text("userId")?) else {
        return Err(TokenError::Invalid);
    };
    let purpose = match (text("updateTo")?, text("requestType")?) {
        (None, None) => Purpose::Verify,
        (Some(update_to), None) => Purpose::LegacyChange { update_to },
        (Some(update_to), Some(kind)) => match kind.as_str() {
            "change-email-confirmation" => Purpose::ChangeConfirmation { update_to },
            "change-email-verification" => Purpose::ChangeVerification { update_to },
            _ => return Err(TokenError::Invalid),
        },
        // A request type without an address to change to: no flow issues these.
        (None, Some(_)) => return Err(TokenError::Invalid),
    };
    Ok(Claims {
        email,
        user_id,
        purpose,
    })
}

fn decode_json(part: &str) -> Result<Value, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretString {
        SecretString::from("0123456789abcdefghijklmnopqrstuvwxyzABCDEF-test-secret".to_string())
    }

    fn verify_claims(email: &str, user: &str) -> Claims {
        Claims {
            email: email.into(),
            user_id: user.into(),
            purpose: Purpose::Verify,
        }
    }

    fn payload(token: &str) -> String {
        let p = token.split('.').nth(1).unwrap();
        String::from_utf8(URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    }

    #[test]
    fn verification_tokens_round_trip_and_fail_closed() {
        let t = sign(&secret(), &verify_claims("Bob@Example.com", "u1"), 3600);
        assert_eq!(
            verify(&secret(), &t),
            Ok(verify_claims("bob@example.com", "u1"))
        );
        let header = t.split('.').next().unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(header).unwrap(),
            br#"{"alg":"HS256"}"#
        );
        let other_secret = SecretString::from("x".repeat(40));
        assert_eq!(verify(&other_secret, &t), Err(TokenError::Invalid));
        let now = Utc::now().timestamp();
        let old = sign_at(
            &secret(),
            &verify_claims("a@b.c", "u"),
            now - 7200,
            now - 3600,
        );
        assert_eq!(verify(&secret(), &old), Err(TokenError::Expired));
        assert_eq!(verify(&secret(), "garbage"), Err(TokenError::Invalid));
        let mut forged: Vec<&str> = t.split('.').collect();
        let body = URL_SAFE_NO_PAD
            .encode(br#"{"email":"eve@x.y","userId":"u1","iat":1,"exp":99999999999}"#);
        forged[1] = &body;
        assert_eq!(
            verify(&secret(), &forged.join(".")),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn change_tokens_keep_better_auths_key_order() {
        let claims = Claims {
            email: "carol@example.com".into(),
            user_id: "U1".into(),
            purpose: Purpose::ChangeConfirmation {
                update_to: "Carol-New@Example.com".into(),
            },
        };
        let t = sign_at(&secret(), &claims, 10, 99_999_999_999);
        assert_eq!(
            payload(&t),
            r#"{"email":"carol@example.com","updateTo":"carol-new@example.com","requestType":"change-email-confirmation","userId":"U1","iat":10,"exp":99999999999}"#
        );
        let back = verify(&secret(), &t).unwrap();
        assert_eq!(
            back.purpose,
            Purpose::ChangeConfirmation {
                update_to: "carol-new@example.com".into()
            }
        );
        let legacy = Claims {
            purpose: Purpose::LegacyChange {
                update_to: "n@example.com".into(),
            },
            ..claims
        };
        let t = sign(&secret(), &legacy, 60);
        assert!(!payload(&t).contains("requestType"));
        assert_eq!(verify(&secret(), &t).unwrap().purpose, legacy.purpose);
    }

    #[test]
    fn claims_of_the_wrong_type_are_refused() {
        for body in [
            r#"{"email":1,"userId":"u"}"#,
            r#"{"email":"a@b.c"}"#,
            r#"{"email":"a@b.c","userId":"u","requestType":"change-email-verification"}"#,
            r#"{"email":"a@b.c","userId":"u","updateTo":"n@b.c","requestType":"delete"}"#,
            r#"{"email":"a@b.c","userId":"u","updateTo":7}"#,
            r#"{"email":"a@b.c","userId":"u","exp":"soon"}"#,
        ] {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
                URL_SAFE_NO_PAD.encode(body)
            );
            let sig = URL_SAFE_NO_PAD.encode(mac(&secret(), input.as_bytes()));
            assert_eq!(
                verify(&secret(), &format!("{input}.{sig}")),
                Err(TokenError::Invalid),
                "{body}"
            );
        }
    }
}
