//! The signature algorithms latchkey can sign JWTs with, and their JWK forms as Better-Auth
//! (via `jose`'s `exportJWK`) stores them. EdDSA is the default; RS256 and ES256 exist for
//! verifiers that cannot do Ed25519. The Ed25519 and P-256 keys and every decoded private JWK
//! field wipe themselves on drop; ring's RSA key pair does not.
//!
//! RS256 signs with `ring` (constant-time, and every signature is checked against the public
//! key before it leaves). The `rsa` crate is not used: its private-key operation is not
//! constant-time (the Marvin attack, RUSTSEC-2023-0071, no fixed release), and signing is
//! what any client can ask for. Key generation, which ring cannot do, takes its probable
//! primes from `num-bigint-dig` (the generator the `rsa` crate itself uses) and is otherwise
//! the textbook construction below; it runs once per key, with nothing an attacker can time.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::Signer as _;
use num_bigint_dig::{BigUint, ModInverse, RandPrime};
use num_integer::Integer;
use num_traits::One;
use rand::RngCore;
use ring::rsa::{KeyPairComponents, PublicKeyComponents};
use ring::signature::{RsaKeyPair, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256};
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
    Rs256(Box<RsaKeyPair>),
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

/// Modulus size of new RSA keys, as Better-Auth's default (`modulusLength: 2048`).
const RSA_BITS: usize = 2048;

/// The unsigned big-endian bytes of a JWK integer, without the leading zero bytes that ring
/// refuses (a minimal encoding has none; some writers pad).
fn minimal(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Fails unless the key signs and its signature verifies under `(n, e)`: catches a stored
/// key whose public half does not belong to its private one before any token is signed.
fn self_test(key: &RsaKeyPair, n: &[u8], e: &[u8]) -> Result<(), AuthError> {
    let probe = b"latchkey RS256 key check";
    let sig = rsa_sign(key, probe)?;
    PublicKeyComponents { n, e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, probe, &sig)
        .map_err(|_| AuthError::internal("signing key's public half does not match"))
}

fn rsa_sign(key: &RsaKeyPair, input: &[u8]) -> Result<Vec<u8>, AuthError> {
    let mut sig = vec![0u8; key.public().modulus_len()];
    // PKCS#1 v1.5 is deterministic; ring takes the generator only for padding schemes that
    // need one. It checks the result against the public key (fault attacks) and fails then.
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input,
        &mut sig,
    )
    .map_err(|_| AuthError::internal("RSA signing failed"))?;
    Ok(sig)
}

/// The RSA private key fields of a JWK, as big-endian bytes.
struct RsaParts {
    n: Vec<u8>,
    e: Vec<u8>,
    d: Zeroizing<Vec<u8>>,
    p: Zeroizing<Vec<u8>>,
    q: Zeroizing<Vec<u8>>,
    dp: Zeroizing<Vec<u8>>,
    dq: Zeroizing<Vec<u8>>,
    qi: Zeroizing<Vec<u8>>,
}

impl RsaParts {
    fn key_pair(&self) -> Result<RsaKeyPair, AuthError> {
        let components = KeyPairComponents {
            public_key: PublicKeyComponents {
                n: minimal(&self.n),
                e: minimal(&self.e),
            },
            d: minimal(&self.d),
            p: minimal(&self.p),
            q: minimal(&self.q),
            dP: minimal(&self.dp),
            dQ: minimal(&self.dq),
            qInv: minimal(&self.qi),
        };
        let key = RsaKeyPair::from_components(&components)
            .map_err(|e| AuthError::internal(format!("RSA key invalid: {e}")))?;
        self_test(&key, minimal(&self.n), minimal(&self.e))?;
        Ok(key)
    }

    fn to_jwks(&self) -> Generated {
        let (n, e) = (b64(minimal(&self.n)), b64(minimal(&self.e)));
        let secret = |v: &[u8]| Zeroizing::new(b64(minimal(v)));
        let (d, p, q) = (secret(&self.d), secret(&self.p), secret(&self.q));
        let (dp, dq, qi) = (secret(&self.dp), secret(&self.dq), secret(&self.qi));
        // Field order as jose's exportJWK writes it.
        let private = Zeroizing::new(format!(
            r#"{{"kty":"RSA","n":"{n}","e":"{e}","d":"{}","p":"{}","q":"{}","dp":"{}","dq":"{}","qi":"{}"}}"#,
            d.as_str(),
            p.as_str(),
            q.as_str(),
            dp.as_str(),
            dq.as_str(),
            qi.as_str()
        ));
        Generated {
            public_jwk: json!({"kty": "RSA", "n": n, "e": e}).to_string(),
            private_jwk: private,
        }
    }
}

fn secret_bytes(n: &BigUint) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(n.to_bytes_be())
}

/// `d mod (p-1)`, `d mod (q-1)` and `q^-1 mod p`, for a stored JWK that lacks them.
fn crt_params(d: &BigUint, p: &BigUint, q: &BigUint) -> Option<(BigUint, BigUint, BigUint)> {
    let one = BigUint::one();
    if *p <= one || *q <= one {
        return None;
    }
    let dp = d % (p - &one);
    let dq = d % (q - &one);
    let qi = q.mod_inverse(p)?.to_biguint()?;
    Some((dp, dq, qi))
}

/// A new RSA key with `e = 65537`: two distinct `RSA_BITS / 2`-bit probable primes (top two
/// bits set, so `n` has exactly `RSA_BITS` bits; Miller-Rabin and Lucas tests), `p > q` as
/// OpenSSL and ring order them, `|p - q| > 2^(RSA_BITS/2 - 100)` and `d = e^-1 mod
/// lcm(p-1, q-1)` with `d > 2^(RSA_BITS/2)` (FIPS 186-5 A.1.1), and the CRT parameters.
fn generate_rsa() -> Result<RsaParts, AuthError> {
    let e = BigUint::from(65_537u32);
    let one = BigUint::one();
    let half = RSA_BITS / 2;
    // Each condition fails with negligible probability; the bound only keeps this finite.
    for _ in 0..64 {
        let a = Zeroizing::new(rand::rngs::OsRng.gen_prime(half));
        let b = Zeroizing::new(rand::rngs::OsRng.gen_prime(half));
        let (p, q) = match a.cmp(&b) {
            std::cmp::Ordering::Greater => (a, b),
            std::cmp::Ordering::Less => (b, a),
            std::cmp::Ordering::Equal => continue,
        };
        let n = &*p * &*q;
        if n.bits() != RSA_BITS || (&*p - &*q).bits() <= half - 100 {
            continue;
        }
        let p1 = Zeroizing::new(&*p - &one);
        let q1 = Zeroizing::new(&*q - &one);
        if !p1.gcd(&e).is_one() || !q1.gcd(&e).is_one() {
            continue;
        }
        let lambda = Zeroizing::new(p1.lcm(&q1));
        let Some(d) = (&e).mod_inverse(&*lambda).and_then(|d| d.to_biguint()) else {
            continue;
        };
        let d = Zeroizing::new(d);
        if d.bits() <= half {
            continue;
        }
        let Some((dp, dq, qi)) = crt_params(&d, &p, &q) else {
            continue;
        };
        let (dp, dq, qi) = (Zeroizing::new(dp), Zeroizing::new(dq), Zeroizing::new(qi));
        return Ok(RsaParts {
            n: n.to_bytes_be(),
            e: e.to_bytes_be(),
            d: secret_bytes(&d),
            p: secret_bytes(&p),
            q: secret_bytes(&q),
            dp: secret_bytes(&dp),
            dq: secret_bytes(&dq),
            qi: secret_bytes(&qi),
        });
    }
    Err(AuthError::internal("RSA key generation found no key"))
}

impl Signer {
    pub(crate) fn alg(&self) -> Alg {
        match self {
            Signer::Ed25519(_) => Alg::EdDsa,
            Signer::Es256(_) => Alg::Es256,
            Signer::Rs256(_) => Alg::Rs256,
        }
    }

    pub(crate) fn sign(&self, input: &[u8]) -> Result<Vec<u8>, AuthError> {
        match self {
            Signer::Ed25519(k) => Ok(k.sign(input).to_bytes().to_vec()),
            Signer::Es256(k) => {
                let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(k, input);
                Ok(sig.to_bytes().to_vec())
            }
            Signer::Rs256(k) => rsa_sign(k, input),
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
                let parts = generate_rsa()?;
                // The same checks a stored key gets when it is loaded.
                parts.key_pair()?;
                Ok(parts.to_jwks())
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
                let secret = |name: &str, text: Option<&Zeroizing<String>>| {
                    decode(name, text.map(|t| t.as_str()))
                };
                let (p, q) = (secret("p", jwk.p.as_ref())?, secret("q", jwk.q.as_ref())?);
                let (dp, dq, qi) = match (&jwk.dp, &jwk.dq, &jwk.qi) {
                    (Some(dp), Some(dq), Some(qi)) => (
                        decode("dp", Some(dp.as_str()))?,
                        decode("dq", Some(dq.as_str()))?,
                        decode("qi", Some(qi.as_str()))?,
                    ),
                    // jose always writes them; a hand-made JWK may carry only d, p and q.
                    _ => {
                        let big = |b: &[u8]| Zeroizing::new(BigUint::from_bytes_be(b));
                        let (d, p, q) = (big(&d), big(&p), big(&q));
                        let (dp, dq, qi) = crt_params(&d, &p, &q)
                            .ok_or_else(|| AuthError::internal("RSA key invalid: bad primes"))?;
                        let (dp, dq, qi) =
                            (Zeroizing::new(dp), Zeroizing::new(dq), Zeroizing::new(qi));
                        (secret_bytes(&dp), secret_bytes(&dq), secret_bytes(&qi))
                    }
                };
                let parts = RsaParts {
                    n: decode("n", jwk.n.as_deref())?.to_vec(),
                    e: decode("e", jwk.e.as_deref())?.to_vec(),
                    d,
                    p,
                    q,
                    dp,
                    dq,
                    qi,
                };
                Ok(Signer::Rs256(Box::new(parts.key_pair()?)))
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
    dp: Option<Zeroizing<String>>,
    dq: Option<Zeroizing<String>>,
    qi: Option<Zeroizing<String>>,
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
                assert_eq!(
                    twice.sign(b"x").unwrap(),
                    again.sign(b"x").unwrap(),
                    "{alg}"
                );
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

    /// A key as Better-Auth makes it (Node's `generateKeyPair("rsa", {modulusLength: 2048})`,
    /// exported by jose as a JWK): p > q, d modulo lcm(p-1, q-1).
    const NODE_RSA_JWK: &str = r#"{"kty":"RSA","n":"lTTG8vFlCtic7jwgO379QLSWwfB-pA5FvwxOS5S1E4fm8HCeTUCQ3rsrETnW_-suLBeM9TbbeC-WgLOhcuEtIseqBZ1zzTCyCeVZiBwyfiv7TW9Ark_qH9R6fpCtY-l2nIimljhEZiULaIgOyPEzvXUvmKtgu0_ozw_EZwoSb2a5YsL1UDDiTNXHdtI9Zt6XWGMzlPl5jhFfXXCG874m9_1c3srZYazx67pnML2tWjgZ_7iMdtOZl9aT7GmrTESPeOO5qjpXU2GboihqfbZBACqOSv3AKGgk6OmObdyGmrTXVlsZ_cQLYZ_c8rF1qjUDm9CJqABLiTxbwwlqjQhEjw","e":"AQAB","d":"SQxROMDJNMGvNw21xBscdxDS3DlXbw9Tw0CNloBEFL9M57tjLTQmmP0ujRzxr1KfRNP03VrRoSo_N1x6dwlaNTRmf6BCARvNln20Uyhm6hGzU4pbstuKJrI6lHtVgFxdBy75zALZLd8GElPGVUeNirx0JH0G-z2Yn8M65y1tsB7tlPJqgTcVjP8volfnLBvhae1QZhPoKRSHWPBTV3-b-C1SWlkyhaU8CxFhnId-xPiwMGITi0QGWN02XyIyQ3sIvn7iP2ojBUa559QL8XeNw6YDK_wbfny4t9N1tIq4yruVuiIri-5aeAiD-52sgC3TtVz1pyVkdzE1yz0Z5AVQqQ","p":"zdRShqH30wr90HqkOMpMhGRr7Jyvl-ZSbdSfYZ8zmmZNjCWIghhApGODI0CPgm7GwIwaXw9i4e7w-LT3Zu0cMShGqMpG-rRhDtI4E4jATK_cY7V41NAY6nKIau5lcw-kdGYO3keJ6T403FjdLyp9e-x4DLxTdWrEjDwNjaMQgWk","q":"uZMvv-L0Crh-IbsKn9xW_NuJkVgR-x2GkhkCpLD8kZbh7-o7XVkOJBSW5HdMaJE3V9bg6FuZcZZ-XDvuCYYGAaVxHg2fHIZp83MYY_dMbOr3RJk8LIGPwRs1qZ6aP2kOTOVT8nuQixQw13QrJ4HCxdt4bS-QvRPGcdWCyAty3zc","dp":"v09jzUNqRzxmIYp8bVSKvltgfLI9-1_WqcMAyQniOtZvqZ2RPeow2xqrXu649LDmBz2xnT192SXv0BrUAVTN6VrYIjawtoFF3TLDcFSg-CZVIFAiGRu6rN77sPgYT1PwtUfO9gdkRejN1Si7nQVPUQm_o4a_w9kTCo0ew9EWnFE","dq":"cIRFl1rMDRP_pgP6VSMLuxSBPJbhkBg-16ZCbAjDmqKZKxYiGF8-q7GwK6YJtf0WSTQH-dpQFwbgZpwPn8abLbRZ-ZbYujrlUq6eQz5WIFP2yKkASxvjRXpx9v4rF_dirEz_sS4qXalIU9ojsDiFF-ISCmGkqH-s-qgyO4h1hdE","qi":"r0qvoHohoIuwOjxPl1Dr-yFBjx8QrvzFOX3cO6SIr_aZrUE4z89s6qFfSBku74u3f0b3e-jwWsLtBcZL8kGktNVuU6Az499zhCfH7ksvdLfx5N8DFcItOqPHOsIYrHf8gcXQT227HfZ7llxMBIYs23w67q0PhqhazFLk3DtRmS4"}"#;
    /// The same modulus as the `rsa` crate (latchkey before ring) could have stored it: p < q,
    /// d modulo (p-1)(q-1), qi the inverse of the smaller prime.
    const SWAPPED_RSA_JWK: &str = r#"{"kty": "RSA", "n": "lTTG8vFlCtic7jwgO379QLSWwfB-pA5FvwxOS5S1E4fm8HCeTUCQ3rsrETnW_-suLBeM9TbbeC-WgLOhcuEtIseqBZ1zzTCyCeVZiBwyfiv7TW9Ark_qH9R6fpCtY-l2nIimljhEZiULaIgOyPEzvXUvmKtgu0_ozw_EZwoSb2a5YsL1UDDiTNXHdtI9Zt6XWGMzlPl5jhFfXXCG874m9_1c3srZYazx67pnML2tWjgZ_7iMdtOZl9aT7GmrTESPeOO5qjpXU2GboihqfbZBACqOSv3AKGgk6OmObdyGmrTXVlsZ_cQLYZ_c8rF1qjUDm9CJqABLiTxbwwlqjQhEjw", "e": "AQAB", "d": "k6a0sjl7ui39rivF4dqbF2sePTGWwRZ2osa0vEqenoNAX_OyU9RvCFrEFbndL0g2Wt-7V_Y_XUIKd7ZLMHnwxpg7gm7757Qmm3BhFzaAKSew-kH8CgN_Npx308OsMlEYVXNNFx77YPGLxpfNucAnaXcL8NK3WOWNB0sdGrJ259GGkpLB5tmX0awaQumZjDlsdiQrNi_bbjC3ENeTqUaZdZRCwdyvfdRQxOGRWPhf8hWw_sC2ES-pYhDV3ORPsAw3FBTbqJRDEZIGlkAFcExRdlF2KiB66dx1ZWkypPki27ygv55QKUMl_6WYjnI7_yg0n0z9hTNw_Inko_mkU0fCoQ", "p": "uZMvv-L0Crh-IbsKn9xW_NuJkVgR-x2GkhkCpLD8kZbh7-o7XVkOJBSW5HdMaJE3V9bg6FuZcZZ-XDvuCYYGAaVxHg2fHIZp83MYY_dMbOr3RJk8LIGPwRs1qZ6aP2kOTOVT8nuQixQw13QrJ4HCxdt4bS-QvRPGcdWCyAty3zc", "q": "zdRShqH30wr90HqkOMpMhGRr7Jyvl-ZSbdSfYZ8zmmZNjCWIghhApGODI0CPgm7GwIwaXw9i4e7w-LT3Zu0cMShGqMpG-rRhDtI4E4jATK_cY7V41NAY6nKIau5lcw-kdGYO3keJ6T403FjdLyp9e-x4DLxTdWrEjDwNjaMQgWk", "dp": "cIRFl1rMDRP_pgP6VSMLuxSBPJbhkBg-16ZCbAjDmqKZKxYiGF8-q7GwK6YJtf0WSTQH-dpQFwbgZpwPn8abLbRZ-ZbYujrlUq6eQz5WIFP2yKkASxvjRXpx9v4rF_dirEz_sS4qXalIU9ojsDiFF-ISCmGkqH-s-qgyO4h1hdE", "dq": "v09jzUNqRzxmIYp8bVSKvltgfLI9-1_WqcMAyQniOtZvqZ2RPeow2xqrXu649LDmBz2xnT192SXv0BrUAVTN6VrYIjawtoFF3TLDcFSg-CZVIFAiGRu6rN77sPgYT1PwtUfO9gdkRejN1Si7nQVPUQm_o4a_w9kTCo0ew9EWnFE", "qi": "G4hZfJSZb6AnMskcIoT_R-4biySplqzvb4aYOopd8i7neQ5hQz_TuUqLANxk3I1exONT50benGlGvml-Z1MMsyAYEA7tN2HOJYWX4Bnv-WOPIyzZaVSpgWvQno3R5L6ShY7aVpLZ09qVR4eLOQN9hJvhWEr1MT6gM6jrrpp92H4"}"#;

    fn field(jwk: &Map<String, Value>, name: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap()
    }

    fn verifies(public_jwk: &Map<String, Value>, msg: &[u8], sig: &[u8]) -> bool {
        PublicKeyComponents {
            n: field(public_jwk, "n"),
            e: field(public_jwk, "e"),
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, msg, sig)
        .is_ok()
    }

    #[test]
    fn generated_rsa_keys_have_better_auths_shape() {
        let g = Signer::generate(Alg::Rs256).unwrap();
        let private: Map<String, Value> = serde_json::from_str(&g.private_jwk).unwrap();
        let public: Map<String, Value> = serde_json::from_str(&g.public_jwk).unwrap();
        let names: Vec<&str> = private.keys().map(String::as_str).collect();
        assert_eq!(names, ["kty", "n", "e", "d", "p", "q", "dp", "dq", "qi"]);
        let names: Vec<&str> = public.keys().map(String::as_str).collect();
        assert_eq!(names, ["kty", "n", "e"]);
        assert_eq!(private["e"], "AQAB");
        assert_eq!((&private["n"], &private["e"]), (&public["n"], &public["e"]));
        let big = |name: &str| BigUint::from_bytes_be(&field(&private, name));
        let (n, e, d, p, q) = (big("n"), big("e"), big("d"), big("p"), big("q"));
        assert_eq!(n.bits(), 2048);
        assert_eq!((p.bits(), q.bits()), (1024, 1024));
        assert!(p > q);
        assert_eq!(&p * &q, n);
        let one = BigUint::one();
        let lambda = (&p - &one).lcm(&(&q - &one));
        assert_eq!((&d * &e) % &lambda, one);
        assert_eq!(big("dp"), &d % (&p - &one));
        assert_eq!(big("dq"), &d % (&q - &one));
        assert_eq!((big("qi") * &q) % &p, one);
        // Minimal encodings: no leading zero byte in any field.
        for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
            assert_ne!(field(&private, name)[0], 0, "{name}");
        }
        let signer = Signer::from_private_jwk(&PrivateJwk::parse(&g.private_jwk).unwrap()).unwrap();
        let sig = signer.sign(b"header.payload").unwrap();
        assert_eq!(sig.len(), 256);
        assert!(verifies(&public, b"header.payload", &sig));
        assert!(!verifies(&public, b"header.payloaf", &sig));
    }

    #[test]
    fn better_auth_and_legacy_rsa_keys_load_and_sign() {
        for jwk in [NODE_RSA_JWK, SWAPPED_RSA_JWK] {
            let map: Map<String, Value> = serde_json::from_str(jwk).unwrap();
            let signer = Signer::from_private_jwk(&PrivateJwk::parse(jwk).unwrap()).unwrap();
            assert_eq!(signer.alg(), Alg::Rs256);
            let sig = signer.sign(b"x").unwrap();
            assert!(verifies(&map, b"x", &sig));
            // PKCS#1 v1.5 is deterministic: both keys of the same modulus sign alike.
            let other = Signer::from_private_jwk(&PrivateJwk::parse(NODE_RSA_JWK).unwrap());
            assert_eq!(other.unwrap().sign(b"x").unwrap(), sig);
        }
    }

    #[test]
    fn rsa_jwk_without_crt_parameters_loads() {
        let mut map: Map<String, Value> = serde_json::from_str(NODE_RSA_JWK).unwrap();
        for name in ["dp", "dq", "qi"] {
            map.remove(name);
        }
        let jwk = PrivateJwk::parse(&Value::Object(map.clone()).to_string()).unwrap();
        let sig = Signer::from_private_jwk(&jwk).unwrap().sign(b"x").unwrap();
        assert!(verifies(&map, b"x", &sig));
    }

    #[test]
    fn inconsistent_rsa_keys_are_refused() {
        let good: Map<String, Value> = serde_json::from_str(NODE_RSA_JWK).unwrap();
        let other: Map<String, Value> = serde_json::from_str(SWAPPED_RSA_JWK).unwrap();
        let fresh = Signer::generate(Alg::Rs256).unwrap();
        let fresh: Map<String, Value> = serde_json::from_str(&fresh.private_jwk).unwrap();
        let variants: Vec<(&str, Value)> = vec![
            ("n", fresh["n"].clone()),
            ("e", Value::from("Aw")),
            ("e", Value::from("AQAD")),
            ("p", fresh["p"].clone()),
            ("dp", fresh["dp"].clone()),
            ("dq", fresh["dq"].clone()),
            ("qi", other["qi"].clone()),
            ("d", Value::from("AQAB")),
            ("n", Value::from("not base64!")),
        ];
        for (name, value) in variants {
            let mut jwk = good.clone();
            jwk.insert(name.into(), value.clone());
            let jwk = PrivateJwk::parse(&Value::Object(jwk).to_string()).unwrap();
            assert!(
                Signer::from_private_jwk(&jwk).is_err(),
                "{name} = {value} accepted"
            );
        }
    }

    #[test]
    fn leading_zero_bytes_in_rsa_fields_are_tolerated() {
        let mut map: Map<String, Value> = serde_json::from_str(NODE_RSA_JWK).unwrap();
        for name in ["n", "d", "p", "q", "qi"] {
            let mut padded = vec![0u8];
            padded.extend(field(&map, name));
            map.insert(name.into(), Value::from(URL_SAFE_NO_PAD.encode(padded)));
        }
        let jwk = PrivateJwk::parse(&Value::Object(map).to_string()).unwrap();
        assert!(Signer::from_private_jwk(&jwk).is_ok());
    }
}
