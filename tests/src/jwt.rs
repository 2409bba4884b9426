//! Building and inspecting JWTs in tests: decode, verify against a JWKS, forge (unknown key,
//! `alg: none`, HS256 confusion, tampering), and recover the auth daemon's signing key from
//! the `jwks` table as Better-Auth stores it (docs/compatibility.md#key-encryption).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("bad base64url {s:?}: {e}"))
}

/// Header, payload and raw signature of a compact JWS.
pub struct Decoded {
    pub header: Value,
    pub payload: Value,
    pub signature: Vec<u8>,
    pub signing_input: String,
}

pub fn decode(token: &str) -> Decoded {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {token}");
    let header = serde_json::from_slice(&b64url_decode(parts[0])).expect("header JSON");
    let payload = serde_json::from_slice(&b64url_decode(parts[1])).expect("payload JSON");
    Decoded {
        header,
        payload,
        signature: b64url_decode(parts[2]),
        signing_input: format!("{}.{}", parts[0], parts[1]),
    }
}

fn encode_parts(header: &Value, payload: &Value) -> String {
    format!(
        "{}.{}",
        b64url(&serde_json::to_vec(header).unwrap()),
        b64url(&serde_json::to_vec(payload).unwrap())
    )
}

/// An EdDSA JWS signed with `key`.
pub fn sign_eddsa(header: &Value, payload: &Value, key: &SigningKey) -> String {
    let input = encode_parts(header, payload);
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64url(&sig.to_bytes()))
}

/// An HS256 JWS with `key` as the HMAC key.
pub fn sign_hs256(header: &Value, payload: &Value, key: &[u8]) -> String {
    let input = encode_parts(header, payload);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64url(&mac.finalize().into_bytes()))
}

/// `alg: none`, empty signature.
pub fn unsigned(payload: &Value) -> String {
    format!(
        "{}.",
        encode_parts(&json!({"alg": "none", "typ": "JWT"}), payload)
    )
}

/// Same header and signature, payload changed by `edit`.
pub fn tamper(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
    edit(&mut payload);
    format!(
        "{}.{}.{}",
        parts[0],
        b64url(&serde_json::to_vec(&payload).unwrap()),
        parts[2]
    )
}

/// A fresh random Ed25519 key.
pub fn random_key() -> SigningKey {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
    SigningKey::from_bytes(&seed)
}

/// The Ed25519 public key of a JWK `{"kty":"OKP","crv":"Ed25519","x":…}`.
pub fn jwk_verifying_key(jwk: &Value) -> VerifyingKey {
    assert_eq!(jwk["kty"], "OKP", "not an OKP key: {jwk}");
    assert_eq!(jwk["crv"], "Ed25519", "not an Ed25519 key: {jwk}");
    let x = b64url_decode(jwk["x"].as_str().expect("x"));
    VerifyingKey::from_bytes(&x.try_into().expect("x is 32 bytes")).expect("valid point")
}

/// Verifies an EdDSA token against a JWKS document (`{"keys":[…]}`) by `kid`; returns the
/// decoded token. Panics on any failure.
pub fn verify_with_jwks(token: &str, jwks: &Value) -> Decoded {
    let d = decode(token);
    assert_eq!(d.header["alg"], "EdDSA", "header: {}", d.header);
    let kid = d.header["kid"].as_str().expect("kid in header");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} not in JWKS {jwks}"));
    let key = jwk_verifying_key(jwk);
    let sig = ed25519_dalek::Signature::from_slice(&d.signature).expect("64-byte signature");
    key.verify(d.signing_input.as_bytes(), &sig)
        .expect("signature does not verify");
    d
}

pub fn hex_decode(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Decrypts a `jwks."privateKey"` column value (a JSON string of hex `nonce‖ct‖tag`,
/// optionally `$ba$<version>$`-enveloped) with SHA-256(secret) as XChaCha20-Poly1305 key.
/// Returns the private JWK.
pub fn decrypt_private_key(column: &str, secret: &str) -> Value {
    let inner: String = serde_json::from_str(column)
        .unwrap_or_else(|e| panic!("privateKey is not a JSON string ({e}): {column:.40}…"));
    let hex = match inner.strip_prefix("$ba$") {
        Some(rest) => rest.split_once('$').expect("$ba$<v>$<hex>").1.to_string(),
        None => inner,
    };
    let blob = hex_decode(&hex);
    assert!(blob.len() > 24 + 16, "privateKey blob too short");
    let key = Sha256::digest(secret.as_bytes());
    let cipher = XChaCha20Poly1305::new_from_slice(&key).unwrap();
    let plain = cipher
        .decrypt(XNonce::from_slice(&blob[..24]), &blob[24..])
        .expect("privateKey does not decrypt with SHA-256(secret)");
    serde_json::from_slice(&plain).expect("decrypted privateKey is not JSON")
}

/// The signing key of a private Ed25519 JWK (`d`).
pub fn jwk_signing_key(jwk: &Value) -> SigningKey {
    let d = b64url_decode(jwk["d"].as_str().expect("d in private JWK"));
    SigningKey::from_bytes(&d.try_into().expect("d is 32 bytes"))
}

/// The newest key of the `jwks` table: (kid, public JWK, signing key), decrypted with
/// `secret`. Also checks that the private key matches the stored public key.
pub fn signing_key_from_db(db: &crate::TestDb, secret: &str) -> (String, Value, SigningKey) {
    let rows = db.query(
        r#"SELECT id, "publicKey", "privateKey" FROM jwks ORDER BY "createdAt" DESC LIMIT 1"#,
        &[],
    );
    assert!(!rows.is_empty(), "jwks table is empty");
    let kid: String = rows[0].get(0);
    let public: Value = serde_json::from_str(rows[0].get::<_, &str>(1)).expect("publicKey JSON");
    let private = decrypt_private_key(rows[0].get(2), secret);
    let key = jwk_signing_key(&private);
    assert_eq!(
        b64url(key.verifying_key().as_bytes()),
        public["x"].as_str().unwrap(),
        "private key does not match the public key"
    );
    (kid, public, key)
}

/// The Better-Auth cookie signature: base64 (standard, padded) HMAC-SHA256(secret, value).
pub fn cookie_signature(secret: &str, value: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(value.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEF-test-secret";

    #[test]
    fn spec_vector_private_key_decrypts() {
        let column = "\"eaaf5d46ce2cab4f29def6c227821100bb4f7f4a880322f362234d030aff08d1adb9728721beca6989443099378d066a33cebf25bbcc2c79b6d254c47feffff8a45555d470030231936b49e19810881c962d29e843e422cb3117d805fa14f72b668435e49b5800cbc4bc427217a22566c50257b60372f97572e010643e1c1acca9769718d34c8cdc6b3c3a0caba20a0c7e6a562fc06c35521569fa80c85636239b70ccddda8aa09e5f\"";
        let jwk = decrypt_private_key(column, SECRET);
        assert_eq!(jwk["d"], "e8_CjvxnDjYmz_-_SqnlfedgAGRGmxqLsDFB67-bwjc");
        let key = jwk_signing_key(&jwk);
        assert_eq!(
            b64url(key.verifying_key().as_bytes()),
            "3rvshQ0BMRdlNe8WymvOmKnF6SOIQoUZoiBmUdKKrpY"
        );
    }

    #[test]
    fn spec_vector_cookie_signature() {
        assert_eq!(
            cookie_signature(SECRET, "GeIE8Fb3RZ1BeznnCyL1FhIsrvR2RFSw"),
            "jbtBibwm1GqeLTDgWKBCL1cPAkSMzwJ+Ea0eMfC11/M="
        );
    }

    #[test]
    fn forged_tokens_round_trip() {
        let key = random_key();
        let jwk = json!({"kty":"OKP","crv":"Ed25519","x": b64url(key.verifying_key().as_bytes()),"kid":"k1"});
        let t = sign_eddsa(
            &json!({"alg":"EdDSA","kid":"k1"}),
            &json!({"sub":"u"}),
            &key,
        );
        verify_with_jwks(&t, &json!({"keys":[jwk]}));
        let bad = tamper(&t, |p| p["sub"] = json!("v"));
        assert!(
            std::panic::catch_unwind(|| verify_with_jwks(&bad, &json!({"keys":[jwk]}))).is_err()
        );
    }
}
