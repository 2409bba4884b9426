//! Turning a JWKS document into verification keys, and fetching it.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use latchkey_core::http_client::{ClientBuilder, HttpsClient};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Error;

/// A JWKS document is a handful of keys; anything bigger is not one.
pub(crate) const MAX_JWKS_BYTES: usize = 1024 * 1024;

pub(crate) type HttpClient = HttpsClient<Empty<Bytes>>;

/// One usable key and the single algorithm it may verify. Pinning the algorithm per key is
/// what defeats alg confusion: a token's header cannot pick a different one.
pub(crate) struct Key {
    pub alg: Algorithm,
    pub key: DecodingKey,
    /// SHA-256 of the JWK as published. A cached verification is only served while the key
    /// set holds its `kid` with this same fingerprint: a key replaced under the same `kid` is
    /// a different key.
    pub fingerprint: [u8; 32],
}

pub(crate) struct KeySet {
    pub keys: HashMap<String, Key>,
    pub generation: u64,
}

/// Plain http is allowed (local and private-network setups; `Verifier::new` warns about it
/// for other hosts).
pub(crate) fn client(
    extra_roots: Option<&std::path::Path>,
    connect_timeout: Duration,
) -> Result<HttpClient, Error> {
    ClientBuilder::new()
        .extra_roots(extra_roots)
        .allow_http(true)
        .connect_timeout(Some(connect_timeout))
        .build()
        .map_err(|e| Error::Config(e.to_string()))
}

pub(crate) async fn fetch(client: &HttpClient, uri: &http::Uri) -> Result<Bytes, Error> {
    let request = http::Request::get(uri.clone())
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::new())
        .map_err(|e| Error::Config(e.to_string()))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| Error::Fetch(latchkey_core::error_chain(&e)))?;
    if response.status() != http::StatusCode::OK {
        return Err(Error::Status(response.status().as_u16()));
    }
    match Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
    {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Error::TooLarge),
        Err(e) => Err(Error::Fetch(e.to_string())),
    }
}

/// Keys that cannot be used (unknown kty or curve, no kid, encryption keys, HMAC secrets)
/// are skipped so that one exotic entry does not take down verification. A document whose
/// `keys` are all unusable (or empty) is a valid, empty key set: the issuer publishes nothing
/// we may verify with.
pub(crate) fn parse(body: &[u8]) -> Result<HashMap<String, Key>, Error> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|_| Error::Invalid("not JSON".to_string()))?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Invalid("no \"keys\" array".to_string()))?;
    let mut keys = HashMap::new();
    for entry in entries {
        match usable_key(entry) {
            Some((kid, key)) => {
                keys.insert(kid, key);
            }
            None => {
                let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("-");
                tracing::debug!(kid, "skipping unusable JWKS entry");
            }
        }
    }
    Ok(keys)
}

fn usable_key(entry: &Value) -> Option<(String, Key)> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
    let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty())?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let implied = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        // Symmetric keys never belong in a public key set; other curves we do not verify.
        _ => return None,
    };
    let declared = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(_) => return None,
    };
    if declared.is_some_and(|d| d != implied) {
        return None;
    }
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    // `Value`'s Display is its compact JSON in document order (infallible).
    let fingerprint = Sha256::digest(entry.to_string().as_bytes()).into();
    Some((
        kid,
        Key {
            alg: implied,
            key,
            fingerprint,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_entries_are_skipped() {
        let doc = br#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac","alg":"HS256"},
            {"kty":"weird","kid":"w"},
            {"kty":"OKP","crv":"X25519","x":"3rvshQ0BMRdlNe8WymvOmKnF6SOIQoUZoiBmUdKKrpY","kid":"x"},
            {"kty":"OKP","crv":"Ed25519","x":"3rvshQ0BMRdlNe8WymvOmKnF6SOIQoUZoiBmUdKKrpY","kid":"mismatch","alg":"ES256"},
            {"kty":"OKP","crv":"Ed25519","x":"3rvshQ0BMRdlNe8WymvOmKnF6SOIQoUZoiBmUdKKrpY"},
            {"alg":"EdDSA","crv":"Ed25519","x":"3rvshQ0BMRdlNe8WymvOmKnF6SOIQoUZoiBmUdKKrpY","kty":"OKP","kid":"good"}
        ]}"#;
        let keys = parse(doc).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys["good"].alg, Algorithm::EdDSA);
    }

    #[test]
    fn fingerprints_tell_keys_under_one_kid_apart() {
        let a = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"3rvshQ0BMRdlNe8WymvOmKnF6SOIQoUZoiBmUdKKrpY","kid":"k"}]}"#;
        let b = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k"}]}"#;
        let (a1, a2, b) = (parse(a).unwrap(), parse(a).unwrap(), parse(b).unwrap());
        assert_eq!(a1["k"].fingerprint, a2["k"].fingerprint);
        assert_ne!(a1["k"].fingerprint, b["k"].fingerprint);
    }

    #[test]
    fn documents_without_usable_keys_are_empty_sets_and_others_errors() {
        assert!(parse(br#"{"keys":[]}"#).unwrap().is_empty());
        assert!(
            parse(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"hmac"}]}"#)
                .unwrap()
                .is_empty()
        );
        assert!(matches!(parse(b"[]"), Err(Error::Invalid(_))));
        assert!(matches!(parse(br#"{"keys":{}}"#), Err(Error::Invalid(_))));
        assert!(matches!(parse(b"<html>"), Err(Error::Invalid(_))));
    }
}
