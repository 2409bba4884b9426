//! JWT header and claims parsing: `Verifier::verify` against a fixed key set, no network.
//!
//! Input: a first byte, then either a raw token string (first byte even) or, to reach the
//! claims checks past the signature, `HEADER\nCLAIMS` (JSON text, odd): the harness signs
//! `b64url(HEADER).b64url(CLAIMS)` with the Ed25519 key of kid `ed` and verifies the token.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, Verifier as _, VerifyingKey};
use latchkey_jwt::fuzzing::{b64url, strict_object, verifier_with_keys};
use latchkey_jwt::{Verifier, VerifierConfig, VerifyError};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const ISSUER: &str = "https://auth.example";
const LEEWAY: i64 = 10;
const MAX_LIFETIME: i64 = 86_400;

fn ed_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    verifier: Verifier,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let x = URL_SAFE_NO_PAD.encode(ed_key().verifying_key().to_bytes());
        // ES256 and RS256 public keys whose private halves nobody here has: a token that
        // verifies under them is a forgery.
        let jwks = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ed", "alg": "EdDSA"},
            {"kty": "EC", "crv": "P-256", "kid": "es",
             "x": "jDJCVICqYRquGSxXRDELWAmgIVCONOEVvTgFNOv-8PM",
             "y": "4H4-vv6trOtuniNU-cDa07VsjErS0m6WLQEUATAP-RQ"},
            {"kty": "RSA", "kid": "rs", "e": "AQAB",
             "n": "lTTG8vFlCtic7jwgO379QLSWwfB-pA5FvwxOS5S1E4fm8HCeTUCQ3rsrETnW_-suLBeM9TbbeC-WgLOhcuEtIseqBZ1zzTCyCeVZiBwyfiv7TW9Ark_qH9R6fpCtY-l2nIimljhEZiULaIgOyPEzvXUvmKtgu0_ozw_EZwoSb2a5YsL1UDDiTNXHdtI9Zt6XWGMzlPl5jhFfXXCG874m9_1c3srZYazx67pnML2tWjgZ_7iMdtOZl9aT7GmrTESPeOO5qjpXU2GboihqfbZBACqOSv3AKGgk6OmObdyGmrTXVlsZ_cQLYZ_c8rF1qjUDm9CJqABLiTxbwwlqjQhEjw"}
        ]});
        let mut config = VerifierConfig::new("http://127.0.0.1:9/jwks", ISSUER, ISSUER);
        config.leeway = Duration::from_secs(LEEWAY as u64);
        config.max_lifetime = Some(Duration::from_secs(MAX_LIFETIME as u64));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let verifier = runtime
            .block_on(async { verifier_with_keys(config, jwks.to_string().as_bytes()) })
            .unwrap();
        Fixture { runtime, verifier }
    })
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Everything an accepted token must be, checked from its text.
fn check_accepted(token: &str, claims: &latchkey_jwt::Claims) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "accepted a token of {} parts", parts.len());
    let header = strict_object(&b64url(parts[0]).expect("header base64")).expect("header JSON");
    let payload = strict_object(&b64url(parts[1]).expect("payload base64")).expect("claims JSON");
    assert!(b64url(parts[2]).is_some());
    assert!(!header.contains_key("crit"));
    let alg = header["alg"].as_str().expect("alg");
    let kid = header["kid"].as_str().expect("kid");
    assert_eq!(
        (kid, alg),
        ("ed", "EdDSA"),
        "a token verified under a key nobody holds"
    );
    // The signature really is the Ed25519 key's (checked by another implementation).
    let sig: [u8; 64] = b64url(parts[2])
        .unwrap()
        .try_into()
        .expect("64-byte signature");
    let public: VerifyingKey = ed_key().verifying_key();
    let input = &token[..parts[0].len() + 1 + parts[1].len()];
    assert!(public
        .verify(
            input.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&sig)
        )
        .is_ok());
    assert_eq!(claims.all, payload);
    assert_eq!(
        Some(claims.sub.as_str()),
        payload.get("sub").and_then(Value::as_str)
    );
    assert_eq!(payload.get("iss").and_then(Value::as_str), Some(ISSUER));
    match &payload["aud"] {
        Value::String(aud) => assert_eq!(aud, ISSUER),
        Value::Array(auds) => assert!(auds.iter().any(|a| a == ISSUER)),
        other => panic!("aud {other}"),
    }
    assert!(payload["exp"].is_number() && payload["iat"].is_number());
    let now = now();
    assert!(claims.exp >= now - LEEWAY - 2, "expired token accepted");
    let iat = claims.iat.expect("iat");
    assert!(iat <= now + LEEWAY + 2, "future iat accepted");
    assert!(claims.exp.saturating_sub(iat) <= MAX_LIFETIME);
    if let Some(nbf) = payload.get("nbf") {
        assert!(nbf.as_f64().unwrap() <= (now + LEEWAY + 2) as f64);
    }
}

/// The claims rules, for a token whose header and signature are good: is it acceptable?
fn claims_acceptable(claims: &serde_json::Map<String, Value>) -> Option<bool> {
    let now = now();
    let int = |name: &str| claims.get(name).map(|v| v.as_i64());
    let (Some(Some(exp)), Some(Some(iat))) = (int("exp"), int("iat")) else {
        return None; // floats, huge numbers, wrong types: no simple model, checked elsewhere
    };
    if matches!(int("nbf"), Some(None)) {
        return None;
    }
    // Stay clear of the boundaries, which the clock may cross between the two readings.
    let margin = 5;
    let near = |t: i64, edge: i64| (t - edge).abs() <= margin;
    if near(exp, now - LEEWAY) || near(iat, now + LEEWAY) || near(exp - iat, MAX_LIFETIME) {
        return None;
    }
    if let Some(Some(nbf)) = int("nbf") {
        if near(nbf, now + LEEWAY) {
            return None;
        }
    }
    let nbf_ok = int("nbf").flatten().is_none_or(|nbf| nbf <= now + LEEWAY);
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == ISSUER,
        Some(Value::Array(a)) => a.iter().any(|a| a == ISSUER),
        _ => false,
    };
    Some(
        exp >= now - LEEWAY
            && iat <= now + LEEWAY
            && nbf_ok
            && exp.saturating_sub(iat) <= MAX_LIFETIME
            && claims.get("iss").and_then(Value::as_str) == Some(ISSUER)
            && aud_ok
            && claims.get("sub").is_some_and(Value::is_string),
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fx = fixture();
    let verify = |token: &str| fx.runtime.block_on(fx.verifier.verify(token));

    if mode % 2 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else {
            return;
        };
        if let Ok(claims) = verify(token) {
            check_accepted(token, &claims);
        }
        return;
    }

    // Sign what the fuzzer wrote and check the verdict against the rules.
    let (header, claims) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&br#"{"alg":"EdDSA","kid":"ed"}"#[..], rest),
    };
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let sig = ed_key().sign(input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    let result = verify(&token);
    if let Ok(accepted) = &result {
        check_accepted(&token, accepted);
    }
    if token.len() > 8192 {
        assert_eq!(result, Err(VerifyError::TooLarge));
        return;
    }
    let good_header = strict_object(header).is_some_and(|h| {
        h.get("alg") == Some(&json!("EdDSA"))
            && h.get("kid") == Some(&json!("ed"))
            && !h.contains_key("crit")
    });
    if !good_header {
        assert!(
            result.is_err(),
            "bad header accepted: {}",
            String::from_utf8_lossy(header)
        );
        return;
    }
    // A genuine signature under a good header: never a key or signature error.
    assert!(
        !matches!(
            result,
            Err(VerifyError::BadSignature
                | VerifyError::UnknownKey
                | VerifyError::UnsupportedAlgorithm
                | VerifyError::NoKeys)
        ),
        "{result:?} for a genuine token"
    );
    match strict_object(claims) {
        None => assert_eq!(result, Err(VerifyError::Malformed)),
        Some(map) => {
            if let Some(ok) = claims_acceptable(&map) {
                assert_eq!(result.is_ok(), ok, "{result:?} for {}", Value::Object(map));
            }
        }
    }
});
