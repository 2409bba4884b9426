//! The signature algorithms latchkey can sign JWTs with, and their JWK forms as Better-Auth
//! (via `jose`'s `exportJWK`) stores them. EdDSA is the default; RS256 and ES256 exist for
//! verifiers that cannot do Ed25519. Every private key type here wipes itself on drop.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::Signer as _;
use rand::RngCore;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::BigUint;
use serde_json::json;
use zeroize::Zeroizing;

use crate::error::AuthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    EdDsa,
    Rs256,
    Es256,
}

impl Alg {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Alg::EdDsa => "EdDSA",
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }

    /// The `jwks.crv` column as Better-Auth fills it.
    pub(crate) fn crv(self) -> Option<&'static str> {
        match self {
            Alg::EdDsa => Some("Ed25519"),
            Alg::Es256 => Some("P-256"),
            Alg::Rs256 => None,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" => Ok(Alg::EdDsa),
            "RS256" => Ok(Alg::Rs256),
            "ES256" => Ok(Alg::Es256),
            other => Err(format!(
                "unsupported algorithm {other:?}: expected EdDSA, RS256 or ES256"
            )),
        }
    }
}

pub(crate) enum Signer {
    Ed25519(ed25519_dalek::SigningKey),
    Es256(p256::ecdsa::SigningKey),
    Rs256(Box<rsa::pkcs1v15::SigningKey<sha2::Sha256>>),
}

/// A new key: its public JWK and its private JWK (to be encrypted at rest; the signer is
/// made from it when the key set is reloaded).
pub(crate) struct Generated {
    pub(crate) public_jwk: String,
    pub(crate) private_jwk: Zeroizing<String>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn big(n: &BigUint) -> String {
    b64(&n.to_bytes_be())
}

impl Signer {
    pub(crate) fn alg(&self) -> Alg {
        match self {
            Signer::Ed25519(_) => Alg::EdDsa,
            Signer::Es256(_) => Alg::Es256,
            Signer::Rs256(_) => Alg::Rs256,
        }
    }

    pub(crate) fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Signer::Ed25519(k) => k.sign(input).to_bytes().to_vec(),
            Signer::Es256(k) => {
                let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(k, input);
                sig.to_bytes().to_vec()
            }
            Signer::Rs256(k) => {
                use rsa::signature::{RandomizedSigner, SignatureEncoding};
                // Randomised signing blinds the private-key operation (RUSTSEC-2023-0071);
                // the plain `sign` of rsa 0.9 does not, and anyone can request signatures.
                k.sign_with_rng(&mut rand::rngs::OsRng, input).to_vec()
            }
        }
    }

    /// Generates a key. RSA generation takes a while; call this off the async workers.
    pub(crate) fn generate(alg: Alg) -> Result<Generated, AuthError> {
        match alg {
            Alg::EdDsa => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(seed.as_mut_slice());
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                let x = b64(&key.verifying_key().to_bytes());
                let d = Zeroizing::new(b64(seed.as_slice()));
                Ok(Generated {
                    public_jwk: json!({"crv": "Ed25519", "x": x, "kty": "OKP"}).to_string(),
                    private_jwk: Zeroizing::new(format!(
                        r#"{{"crv":"Ed25519","d":"{}","x":"{x}","kty":"OKP"}}"#,
                        d.as_str()
                    )),
                })
            }
            Alg::Es256 => {
                let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
                let point = key.verifying_key().to_encoded_point(false);
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    return Err(AuthError::internal("P-256 public key without coordinates"));
                };
                let (x, y) = (b64(x), b64(y));
                let d = Zeroizing::new(b64(&key.to_bytes()));
                Ok(Generated {
                    public_jwk: json!({"kty": "EC", "x": x, "y": y, "crv": "P-256"}).to_string(),
                    private_jwk: Zeroizing::new(format!(
                        r#"{{"kty":"EC","x":"{x}","y":"{y}","crv":"P-256","d":"{}"}}"#,
                        d.as_str()
                    )),
                })
            }
            Alg::Rs256 => {
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                    .map_err(|e| AuthError::internal(format!("RSA key generation: {e}")))?;
                let (n, e) = (big(key.n()), big(key.e()));
                let primes = key.primes();
                let (Some(p), Some(q), Some(dp), Some(dq), Some(qi)) = (
                    primes.first(),
                    primes.get(1),
                    key.dp(),
                    key.dq(),
                    key.crt_coefficient(),
                ) else {
                    return Err(AuthError::internal("RSA key without CRT parameters"));
                };
                let secret = |n: &BigUint| Zeroizing::new(b64(&Zeroizing::new(n.to_bytes_be())));
                let (d, p, q) = (secret(key.d()), secret(p), secret(q));
                let (dp, dq, qi) = (secret(dp), secret(dq), secret(&qi));
                let private = Zeroizing::new(format!(
                    r#"{{"kty":"RSA","n":"{n}","e":"{e}","d":"{}","p":"{}","q":"{}","dp":"{}","dq":"{}","qi":"{}"}}"#,
                    d.as_str(),
                    p.as_str(),
                    q.as_str(),
                    dp.as_str(),
                    dq.as_str(),
                    qi.as_str()
                ));
                Ok(Generated {
                    public_jwk: json!({"kty": "RSA", "n": n, "e": e}).to_string(),
                    private_jwk: private,
                })
            }
        }
    }

    /// Rebuilds a signer from a decrypted private JWK, checking that its public half matches.
    pub(crate) fn from_private_jwk(jwk: &PrivateJwk) -> Result<Signer, AuthError> {
        let decode = |name: &str, text: Option<&str>| -> Result<Zeroizing<Vec<u8>>, AuthError> {
            URL_SAFE_NO_PAD
                .decode(text.unwrap_or_default())
                .map(Zeroizing::new)
                .map_err(|_| {
                    AuthError::internal(format!("signing key field {name:?} is not base64url"))
                })
        };
        let d = decode("d", Some(jwk.d.as_str()))?;
        let mismatch = || AuthError::internal("signing key's public half does not match");
        match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("OKP", Some("Ed25519")) => {
                let seed: &[u8; 32] = d
                    .as_slice()
                    .try_into()
                    .map_err(|_| AuthError::internal("Ed25519 'd' is not 32 bytes"))?;
                let key = ed25519_dalek::SigningKey::from_bytes(seed);
                if *decode("x", jwk.x.as_deref())? != key.verifying_key().to_bytes() {
                    return Err(mismatch());
                }
                Ok(Signer::Ed25519(key))
            }
            ("EC", Some("P-256")) => {
                let key = p256::ecdsa::SigningKey::from_slice(&d)
                    .map_err(|_| AuthError::internal("P-256 'd' is not a valid scalar"))?;
                let point = key.verifying_key().to_encoded_point(false);
                if point.x().map(|x| x.as_slice())
                    != Some(decode("x", jwk.x.as_deref())?.as_slice())
                {
                    return Err(mismatch());
                }
                Ok(Signer::Es256(key))
            }
            ("RSA", _) => {
                let num = |name: &str, text: Option<&str>| {
                    decode(name, text).map(|b| BigUint::from_bytes_be(&b))
                };
                let key = rsa::RsaPrivateKey::from_components(
                    num("n", jwk.n.as_deref())?,
                    num("e", jwk.e.as_deref())?,
                    BigUint::from_bytes_be(&d),
                    vec![
                        num("p", jwk.p.as_deref().map(String::as_str))?,
                        num("q", jwk.q.as_deref().map(String::as_str))?,
                    ],
                )
                .map_err(|e| AuthError::internal(format!("RSA key invalid: {e}")))?;
                key.validate()
                    .map_err(|e| AuthError::internal(format!("RSA key invalid: {e}")))?;
                Ok(Signer::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(key))))
            }
            _ => Err(AuthError::internal("unsupported signing key type")),
        }
    }
}

/// A decrypted private JWK. The private fields are wiped when it is dropped.
#[derive(serde::Deserialize)]
pub(crate) struct PrivateJwk {
    kty: String,
    crv: Option<String>,
    d: Zeroizing<String>,
    x: Option<String>,
    n: Option<String>,
    e: Option<String>,
    p: Option<Zeroizing<String>>,
    q: Option<Zeroizing<String>>,
}

impl PrivateJwk {
    pub(crate) fn parse(json: &str) -> Result<Self, AuthError> {
        serde_json::from_str(json)
            .map_err(|_| AuthError::internal("decrypted signing key is not a private JWK"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    #[test]
    fn every_alg_round_trips_through_its_private_jwk() {
        for alg in [Alg::EdDsa, Alg::Es256, Alg::Rs256] {
            let g = Signer::generate(alg).unwrap();
            let again =
                Signer::from_private_jwk(&PrivateJwk::parse(&g.private_jwk).unwrap()).unwrap();
            assert_eq!(again.alg(), alg);
            let public: Map<String, Value> = serde_json::from_str(&g.public_jwk).unwrap();
            assert!(public.get("d").is_none(), "{alg}: public JWK leaks d");
            // Deterministic schemes give the same signature from both copies.
            if alg != Alg::Es256 {
                let twice =
                    Signer::from_private_jwk(&PrivateJwk::parse(&g.private_jwk).unwrap()).unwrap();
                assert_eq!(twice.sign(b"x"), again.sign(b"x"), "{alg}");
            }
        }
    }

    #[test]
    fn mismatched_public_half_is_refused() {
        let g = Signer::generate(Alg::EdDsa).unwrap();
        let other = Signer::generate(Alg::EdDsa).unwrap();
        let mut jwk: Map<String, Value> = serde_json::from_str(&g.private_jwk).unwrap();
        let other_pub: Map<String, Value> = serde_json::from_str(&other.public_jwk).unwrap();
        jwk.insert("x".into(), other_pub["x"].clone());
        let jwk = PrivateJwk::parse(&Value::Object(jwk).to_string()).unwrap();
        assert!(Signer::from_private_jwk(&jwk).is_err());
    }
}
