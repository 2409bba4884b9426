//! Real-socket tests: a tiny hyper server serves the JWKS, tokens are signed with freshly
//! generated Ed25519 and P-256 keys.

// All of this file is test code, but clippy's allow-*-in-tests (clippy.toml) only recognises
// #[test] functions and #[cfg(test)] modules, not an integration test's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use latchkey_jwt::{Verifier, VerifierConfig, VerifyError};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

const ISS: &str = "http://127.0.0.1:3000";

struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    public: Vec<u8>,
}

fn ed25519(kid: &str) -> TestKey {
    let rng = SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    TestKey {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(doc.as_ref()),
        jwk: json!({"alg":"EdDSA","crv":"Ed25519","x":URL_SAFE_NO_PAD.encode(&public),"kty":"OKP","kid":kid}),
        public,
    }
}

fn es256(kid: &str) -> TestKey {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    TestKey {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(doc.as_ref()),
        jwk: json!({"kty":"EC","crv":"P-256","x":URL_SAFE_NO_PAD.encode(&public[1..33]),
                    "y":URL_SAFE_NO_PAD.encode(&public[33..]),"kid":kid}),
        public,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims() -> Value {
    json!({"iat":now(),"name":"Bob","email":"bob@example.com","emailVerified":false,
           "id":"u1","sub":"u1","sid":"s1","exp":now()+900,"iss":ISS,"aud":ISS})
}

fn sign(key: &TestKey, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.typ = None;
    encode(&header, claims, &key.encoding).unwrap()
}

/// A JWKS endpoint whose document can be changed, that counts its hits, can answer late
/// (the document is taken when the request arrives, sent after the delay) and can be stopped.
struct JwksServer {
    addr: SocketAddr,
    doc: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    delay: Arc<Mutex<Duration>>,
    task: JoinHandle<()>,
}

impl JwksServer {
    async fn start(keys: &[&TestKey]) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), keys).await
    }

    async fn start_on(addr: std::net::SocketAddr, keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let doc = Arc::new(Mutex::new(
            json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}),
        ));
        let hits = Arc::new(AtomicUsize::new(0));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let (d, h, w) = (doc.clone(), hits.clone(), delay.clone());
        let task = tokio::spawn(async move {
            // Connections live in the set, so aborting this task really takes the server down.
            let mut conns = JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (d, h, w) = (d.clone(), h.clone(), w.clone());
                conns.spawn(async move {
                    let svc = service_fn(move |_req| {
                        let body = d.lock().unwrap().to_string();
                        let wait = *w.lock().unwrap();
                        h.fetch_add(1, Ordering::SeqCst);
                        async move {
                            tokio::time::sleep(wait).await;
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(
                                body,
                            ))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            doc,
            hits,
            delay,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/api/auth/jwks", self.addr)
    }

    fn set_keys(&self, keys: &[&TestKey]) {
        *self.doc.lock().unwrap() =
            json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn set_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }
}

fn config(url: String) -> VerifierConfig {
    VerifierConfig::new(url, ISS, ISS)
}

async fn ready_verifier(server: &JwksServer) -> Verifier {
    let v = Verifier::new(config(server.url())).unwrap();
    v.refresh().await.unwrap();
    v
}

#[tokio::test]
async fn good_tokens_verify_for_both_algorithms() {
    let (ed, ec) = (ed25519("ed"), es256("ec"));
    let server = JwksServer::start(&[&ed, &ec]).await;
    let v = ready_verifier(&server).await;
    let c = v.verify(&sign(&ed, &claims())).await.unwrap();
    assert_eq!(c.sub, "u1");
    assert_eq!(c.email.as_deref(), Some("bob@example.com"));
    assert_eq!(c.name.as_deref(), Some("Bob"));
    assert_eq!(c.email_verified, Some(false));
    assert_eq!(c.sid.as_deref(), Some("s1"));
    assert_eq!(c.all["id"], "u1");
    assert!(v.verify(&sign(&ec, &claims())).await.is_ok());
    // aud may be an array containing ours.
    let mut cl = claims();
    cl["aud"] = json!(["other", ISS]);
    assert!(v.verify(&sign(&ed, &cl)).await.is_ok());
}

#[tokio::test]
async fn claim_checks() {
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let v = ready_verifier(&server).await;
    let check = |change: Value| {
        let mut cl = claims();
        for (k, val) in change.as_object().unwrap() {
            if val.is_null() {
                cl.as_object_mut().unwrap().remove(k);
            } else {
                cl[k] = val.clone();
            }
        }
        sign(&ed, &cl)
    };
    let cases = [
        (json!({"exp": now() - 60}), VerifyError::Expired),
        (json!({"exp": null}), VerifyError::InvalidTimeClaim),
        (json!({"exp": "tomorrow"}), VerifyError::InvalidTimeClaim),
        (json!({"iat": now() + 120}), VerifyError::NotYetValid),
        (json!({"iss": "http://evil"}), VerifyError::WrongIssuer),
        (json!({"iss": [ISS]}), VerifyError::WrongIssuer),
        (json!({"iss": null}), VerifyError::WrongIssuer),
        (json!({"aud": "http://other"}), VerifyError::WrongAudience),
        (json!({"aud": ["a", "b"]}), VerifyError::WrongAudience),
        (json!({"aud": null}), VerifyError::WrongAudience),
        (json!({"sub": null}), VerifyError::Malformed),
    ];
    for (change, want) in cases {
        assert_eq!(
            v.verify(&check(change.clone())).await.unwrap_err(),
            want,
            "{change}"
        );
    }
    // Within the leeway is fine.
    assert!(v
        .verify(&check(json!({"exp": now() - 5, "iat": now() + 5})))
        .await
        .is_ok());
}

#[tokio::test]
async fn tampering_and_algorithm_confusion_are_refused() {
    let (ed, ec) = (ed25519("ed"), es256("ec"));
    let server = JwksServer::start(&[&ed, &ec]).await;
    let v = ready_verifier(&server).await;
    let good = sign(&ed, &claims());
    let parts: Vec<&str> = good.split('.').collect();

    let mut cl = claims();
    cl["sub"] = json!("admin");
    let forged_payload = URL_SAFE_NO_PAD.encode(cl.to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(
        v.verify(&tampered).await.unwrap_err(),
        VerifyError::BadSignature
    );

    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"ed"}"#);
    let none = format!("{none_header}.{}.", parts[1]);
    assert_eq!(
        v.verify(&none).await.unwrap_err(),
        VerifyError::UnsupportedAlgorithm
    );

    // HS256 keyed with the public key: the classic confusion attack.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("ed".into());
    let hs = encode(&header, &claims(), &EncodingKey::from_secret(&ed.public)).unwrap();
    assert_eq!(
        v.verify(&hs).await.unwrap_err(),
        VerifyError::UnsupportedAlgorithm
    );
    let hs = encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(ed.jwk.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(
        v.verify(&hs).await.unwrap_err(),
        VerifyError::UnsupportedAlgorithm
    );

    // An ES256 signature presented under the Ed25519 key's kid, and vice versa.
    let mut cross = TestKey {
        kid: "ed".into(),
        ..es256("x")
    };
    cross.alg = Algorithm::ES256;
    assert_eq!(
        v.verify(&sign(&cross, &claims())).await.unwrap_err(),
        VerifyError::UnsupportedAlgorithm
    );

    for junk in ["", "a", "a.b", "a.b.c", "a.b.c.d", "....", "\u{1F600}.x.y"] {
        let err = v.verify(junk).await.unwrap_err();
        assert!(
            matches!(err, VerifyError::Malformed | VerifyError::Missing),
            "{junk:?}: {err:?}"
        );
    }
    // The signature covers the raw text, so a garbled payload fails the signature first.
    let garbled = format!("{}.!!.{}", parts[0], parts[2]);
    assert_eq!(
        v.verify(&garbled).await.unwrap_err(),
        VerifyError::BadSignature
    );
    let no_kid = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA"}"#),
        parts[1],
        parts[2]
    );
    assert_eq!(
        v.verify(&no_kid).await.unwrap_err(),
        VerifyError::UnknownKey
    );
    let crit = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"ed","crit":["b64"]}"#),
        parts[1],
        parts[2]
    );
    assert_eq!(v.verify(&crit).await.unwrap_err(), VerifyError::Malformed);

    let huge = format!("{}.{}.{}", parts[0], "A".repeat(9000), parts[2]);
    assert_eq!(v.verify(&huge).await.unwrap_err(), VerifyError::TooLarge);
}

#[tokio::test]
async fn unknown_kid_refetches_once_and_is_rate_limited() {
    let (ed, new) = (ed25519("ed"), ed25519("new"));
    let server = JwksServer::start(&[&ed]).await;
    let v = ready_verifier(&server).await;
    assert_eq!(server.hits(), 1);
    let token = sign(&new, &claims());

    // Many concurrent callers: one fetch.
    let results = futures_join(&v, &token, 20).await;
    assert!(results.iter().all(|r| *r == Err(VerifyError::UnknownKey)));
    assert_eq!(server.hits(), 2);

    // The key appears, but the refetch allowance is used up for 30 s.
    server.set_keys(&[&ed, &new]);
    assert_eq!(v.verify(&token).await.unwrap_err(), VerifyError::UnknownKey);
    assert_eq!(server.hits(), 2);
    // Known keys keep working meanwhile.
    assert!(v.verify(&sign(&ed, &claims())).await.is_ok());

    // With a short interval the rotated-in key is picked up by the refetch.
    let mut cfg = config(server.url());
    cfg.unknown_kid_min_interval = Duration::from_millis(100);
    let v = Verifier::new(cfg).unwrap();
    server.set_keys(&[&ed]);
    v.refresh().await.unwrap();
    assert_eq!(v.verify(&token).await.unwrap_err(), VerifyError::UnknownKey);
    server.set_keys(&[&ed, &new]);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(v.verify(&token).await.unwrap().sub, "u1");
}

async fn futures_join(v: &Verifier, token: &str, n: usize) -> Vec<Result<(), VerifyError>> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (v, t) = (v.clone(), token.to_string());
        set.spawn(async move { v.verify(&t).await.map(|_| ()) });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

#[tokio::test]
async fn last_good_key_set_survives_the_server_going_down() {
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let v = Verifier::new(config(server.url())).unwrap();
    assert!(!v.is_ready());
    // A verify before the first load fetches on demand (as for an unknown kid).
    assert!(v.verify(&sign(&ed, &claims())).await.is_ok());
    assert!(v.is_ready());

    server.task.abort();
    let _ = server.task.await;
    assert!(v.refresh().await.is_err());
    assert!(v.is_ready());
    assert_eq!(v.verify(&sign(&ed, &claims())).await.unwrap().sub, "u1");

    // A document that is not a JWKS does not replace the keys either.
    let other = JwksServer::start(&[]).await;
    let mut cfg = config(other.url());
    cfg.refresh_interval = Duration::from_secs(3600);
    let v = Verifier::new(cfg).unwrap();
    assert_eq!(v.refresh().await, Err(latchkey_jwt::Error::NoUsableKeys));
    assert!(!v.is_ready());
    other.set_keys(&[&ed]);
    v.refresh().await.unwrap();
    for junk in [json!([]), json!({"keys": "none"}), json!({"kid": "ed"})] {
        *other.doc.lock().unwrap() = junk.clone();
        assert!(
            matches!(v.refresh().await, Err(latchkey_jwt::Error::Invalid(_))),
            "{junk}"
        );
        assert!(v.is_ready());
        assert!(v.verify(&sign(&ed, &claims())).await.is_ok(), "{junk}");
    }
}

#[tokio::test]
async fn no_keys_when_the_server_was_never_reachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let v = Verifier::new(config(format!("http://{addr}/jwks"))).unwrap();
    let ed = ed25519("ed");
    assert_eq!(
        v.verify(&sign(&ed, &claims())).await.unwrap_err(),
        VerifyError::NoKeys
    );
    assert!(!v.is_ready());
    assert!(v.refresh().await.is_err());
}

#[tokio::test]
async fn refresher_retries_until_the_server_appears() {
    // The auth daemon is down when the verifier starts: nothing listens on the port yet.
    let reserved = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let v = Verifier::new(config(format!("http://{addr}/api/auth/jwks"))).unwrap();
    let task = v.spawn_refresher();
    tokio::task::yield_now().await;
    assert!(!v.is_ready());
    // It comes up later; the refresher's retries find it without any request asking.
    let ed = ed25519("ed");
    let server = JwksServer::start_on(addr, &[&ed]).await;
    while !v.is_ready() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.hits.load(Ordering::SeqCst) >= 1);
    assert!(v.verify(&sign(&ed, &claims())).await.is_ok());
    task.abort();
}

#[test]
fn bad_config_is_refused() {
    for url in ["", "ftp://x/jwks", "/api/auth/jwks", "not a url"] {
        assert!(Verifier::new(config(url.into())).is_err(), "{url}");
    }
    assert!(Verifier::new(VerifierConfig::new("http://x/jwks", "", ISS)).is_err());
}

// ---- Time claims, lifetime, key removal, header and encoding tricks ----

fn enc(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

/// A compact JWS over exactly these (already encoded) header and payload texts: the
/// signature is valid for whatever they contain, so only the verifier's parsing rules can
/// refuse the token.
fn sign_parts(key: &TestKey, head: &str, payload: &str) -> String {
    let input = format!("{head}.{payload}");
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding, key.alg).unwrap();
    format!("{input}.{sig}")
}

/// As [`sign_parts`], from JSON texts (which may hold duplicate keys).
fn sign_raw(key: &TestKey, header: &str, payload: &str) -> String {
    sign_parts(key, &enc(header), &enc(payload))
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

#[tokio::test]
async fn time_claims_must_be_json_numbers() {
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let v = ready_verifier(&server).await;
    let with = |name: &str, value: Value| {
        let mut c = claims();
        c[name] = value;
        sign(&ed, &c)
    };
    let future = now() + 3600;
    for name in ["nbf", "iat", "exp"] {
        for bad in [
            // The audit's case: a string nbf in the future was skipped, not refused.
            json!(future.to_string()),
            json!("0"),
            json!(""),
            json!(true),
            json!(false),
            json!(null),
            json!({}),
            json!({"$numberLong": future}),
            json!([]),
            json!([future]),
        ] {
            assert_eq!(
                v.verify(&with(name, bad.clone())).await.unwrap_err(),
                VerifyError::InvalidTimeClaim,
                "{name}: {bad}"
            );
        }
    }
    assert_eq!(
        v.verify(&sign(&ed, &without(claims(), "exp")))
            .await
            .unwrap_err(),
        VerifyError::InvalidTimeClaim
    );
    assert_eq!(VerifyError::InvalidTimeClaim.code(), "INVALID_TIME_CLAIM");

    // Any JSON number is a NumericDate: floats and exponents too, rounded down.
    let n = now();
    let c = v
        .verify(&with("exp", json!(n as f64 + 900.75)))
        .await
        .unwrap();
    assert_eq!(c.exp, n + 900);
    for (name, ok) in [
        ("iat", json!(n as f64 - 0.5)),
        ("iat", json!(0)),
        ("nbf", json!(n - 1)),
        ("nbf", json!(n as f64 - 0.1)),
        ("nbf", json!(-5)),
        ("exp", json!(1e12)),
    ] {
        assert!(
            v.verify(&with(name, ok.clone())).await.is_ok(),
            "{name}: {ok}"
        );
    }
    let raw = format!(r#"{{"sub":"u1","iss":"{ISS}","aud":"{ISS}","iat":{n}.0,"exp":4.1e9}}"#);
    let c = v
        .verify(&sign_raw(&ed, r#"{"alg":"EdDSA","kid":"ed"}"#, &raw))
        .await
        .unwrap();
    assert_eq!((c.exp, c.iat), (4_100_000_000, Some(n)));
    // ... and still gets its checks.
    for (name, value, want) in [
        ("nbf", json!(future), VerifyError::NotYetValid),
        ("nbf", json!(future as f64 + 0.5), VerifyError::NotYetValid),
        ("iat", json!(1e300), VerifyError::NotYetValid),
        ("nbf", json!(u64::MAX), VerifyError::NotYetValid),
        ("exp", json!((n - 60) as f64 + 0.5), VerifyError::Expired),
        ("exp", json!(-1), VerifyError::Expired),
        ("exp", json!(-1e300), VerifyError::Expired),
        ("exp", json!(i64::MIN), VerifyError::Expired),
    ] {
        assert_eq!(
            v.verify(&with(name, value.clone())).await.unwrap_err(),
            want,
            "{name}: {value}"
        );
    }
}

#[tokio::test]
async fn lifetime_is_bounded_when_configured() {
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let mut cfg = config(server.url());
    cfg.max_lifetime = Some(Duration::from_secs(86400));
    let v = Verifier::new(cfg).unwrap();
    v.refresh().await.unwrap();
    let n = now();
    let token = |iat: Option<Value>, exp: Value| {
        let mut c = claims();
        match iat {
            Some(iat) => c["iat"] = iat,
            None => c = without(c, "iat"),
        }
        c["exp"] = exp;
        sign(&ed, &c)
    };
    for (iat, exp) in [
        (json!(n), json!(n + 900)),
        (json!(n), json!(n + 86400)),
        (json!(n - 3600), json!(n - 3600 + 86400)),
        (json!(n as f64 + 0.5), json!(n as f64 + 86400.5)),
    ] {
        assert!(
            v.verify(&token(Some(iat.clone()), exp.clone()))
                .await
                .is_ok(),
            "iat {iat} exp {exp}"
        );
    }
    for (iat, exp) in [
        (json!(n), json!(n + 86401)),
        // The audit's case: exp = 2^63 - 1.
        (json!(n), json!(i64::MAX)),
        (json!(n), json!(u64::MAX)),
        (json!(n), json!(1e300)),
        // Backdating iat does not help: the lifetime is exp - iat.
        (json!(n - 365 * 86400), json!(n + 60)),
        (json!(i64::MIN), json!(n + 60)),
        (json!(-1e300), json!(n + 60)),
    ] {
        assert_eq!(
            v.verify(&token(Some(iat.clone()), exp.clone()))
                .await
                .unwrap_err(),
            VerifyError::LifetimeTooLong,
            "iat {iat} exp {exp}"
        );
    }
    assert_eq!(
        VerifyError::LifetimeTooLong.code(),
        "TOKEN_LIFETIME_TOO_LONG"
    );
    // Without iat the lifetime is unknown: refused.
    assert_eq!(
        v.verify(&token(None, json!(n + 900))).await.unwrap_err(),
        VerifyError::InvalidTimeClaim
    );
    assert_eq!(
        v.verify(&token(Some(json!(n.to_string())), json!(n + 900)))
            .await
            .unwrap_err(),
        VerifyError::InvalidTimeClaim
    );

    // The library default has no bound, and iat stays optional.
    let v = ready_verifier(&server).await;
    assert!(v.verify(&token(None, json!(n + 900))).await.is_ok());
    assert!(v
        .verify(&token(Some(json!(n)), json!(i64::MAX)))
        .await
        .is_ok());
}

#[tokio::test]
async fn a_key_gone_from_the_jwks_is_refused_after_the_next_refresh() {
    let (old, cur) = (ed25519("old"), ed25519("cur"));
    let server = JwksServer::start(&[&old, &cur]).await;
    let v = ready_verifier(&server).await;
    let (t_old, t_cur) = (sign(&old, &claims()), sign(&cur, &claims()));
    assert!(v.verify(&t_old).await.is_ok());
    assert!(v.verify(&t_cur).await.is_ok());

    // Revoked on the auth side: gone from the JWKS. A successful fetch replaces the set.
    server.set_keys(&[&cur]);
    v.refresh().await.unwrap();
    let hits = server.hits();
    for _ in 0..5 {
        assert_eq!(v.verify(&t_old).await.unwrap_err(), VerifyError::UnknownKey);
    }
    // The unknown-kid refetch asked the JWKS (once), which does not list it either.
    assert_eq!(server.hits(), hits + 1);
    assert!(v.verify(&t_cur).await.is_ok());

    // A JWKS without any usable key empties the set (fail closed) and readiness goes.
    server.set_keys(&[]);
    assert_eq!(v.refresh().await, Err(latchkey_jwt::Error::NoUsableKeys));
    assert!(!v.is_ready());
    assert_eq!(v.verify(&t_cur).await.unwrap_err(), VerifyError::NoKeys);
    server.set_keys(&[&cur]);
    v.refresh().await.unwrap();
    assert!(v.is_ready());
    assert!(v.verify(&t_cur).await.is_ok());
    assert_eq!(v.verify(&t_old).await.unwrap_err(), VerifyError::UnknownKey);
}

#[tokio::test]
async fn a_slow_stale_answer_does_not_bring_a_removed_key_back() {
    let (old, cur) = (ed25519("old"), ed25519("cur"));
    let server = JwksServer::start(&[&old, &cur]).await;
    let v = ready_verifier(&server).await;
    // Use up the unknown-kid refetch allowance (30 s), so that verify() below only reads the
    // loaded set and shows which answer won.
    let stranger = sign(&ed25519("stranger"), &claims());
    assert_eq!(
        v.verify(&stranger).await.unwrap_err(),
        VerifyError::UnknownKey
    );

    // A refresh that gets the document still listing `old`, and answers late...
    server.set_delay(Duration::from_millis(600));
    let hits = server.hits();
    let slow = {
        let v = v.clone();
        tokio::spawn(async move { v.refresh().await })
    };
    while server.hits() == hits {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ... and one that starts after it, sees `old` removed and answers first.
    server.set_keys(&[&cur]);
    server.set_delay(Duration::ZERO);
    v.refresh().await.unwrap();
    let t_old = sign(&old, &claims());
    assert_eq!(v.verify(&t_old).await.unwrap_err(), VerifyError::UnknownKey);
    // The stale answer arrives (a successful fetch), but is older than the set in use.
    slow.await.unwrap().unwrap();
    assert_eq!(v.verify(&t_old).await.unwrap_err(), VerifyError::UnknownKey);
    assert!(v.verify(&sign(&cur, &claims())).await.is_ok());
}

#[tokio::test]
async fn alg_none_in_any_case_and_foreign_algorithms_are_refused() {
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let v = ready_verifier(&server).await;
    let good = sign(&ed, &claims());
    let (_, payload_and_sig) = good.split_once('.').unwrap();
    let (payload, sig) = payload_and_sig.split_once('.').unwrap();
    for alg in [
        "none", "None", "NONE", "nOnE", "noNe", " none", "none ", "", "eddsa", "EDDSA", "Ed25519",
        "ed25519", "HS256", "hs256", "HS384", "HS512", "RS384", "RS512", "PS256", "ES256K",
        "ES384", "ES512", "es256", "rs256",
    ] {
        let head = enc(&json!({"alg": alg, "kid": "ed"}).to_string());
        for s in ["", sig, "AAAA"] {
            assert_eq!(
                v.verify(&format!("{head}.{payload}.{s}"))
                    .await
                    .unwrap_err(),
                VerifyError::UnsupportedAlgorithm,
                "alg {alg:?}, signature {s:?}"
            );
        }
        // Even signed with the real key over that header.
        let signed = sign_parts(&ed, &head, payload);
        assert_eq!(
            v.verify(&signed).await.unwrap_err(),
            VerifyError::UnsupportedAlgorithm,
            "alg {alg:?}"
        );
    }
    for header in [
        json!({"kid": "ed"}),
        json!({"alg": null, "kid": "ed"}),
        json!({"alg": ["EdDSA"], "kid": "ed"}),
        json!({"alg": {"name": "EdDSA"}, "kid": "ed"}),
        json!({"alg": 1, "kid": "ed"}),
    ] {
        let token = sign_parts(&ed, &enc(&header.to_string()), payload);
        assert_eq!(
            v.verify(&token).await.unwrap_err(),
            VerifyError::Malformed,
            "{header}"
        );
    }
}

#[tokio::test]
async fn keys_embedded_in_the_header_are_ignored_and_never_fetched() {
    let ed = ed25519("ed");
    let attacker = ed25519("evil");
    let server = JwksServer::start(&[&ed]).await;
    // The attacker's own JWKS endpoint, serving the attacker's key under both kids.
    let evil = JwksServer::start(&[&attacker]).await;
    {
        let mut as_ed = attacker.jwk.clone();
        as_ed["kid"] = json!("ed");
        *evil.doc.lock().unwrap() = json!({"keys": [attacker.jwk, as_ed]});
    }
    let v = ready_verifier(&server).await;
    let evil_url = evil.url();
    let mut evil_jwk_as_ed = attacker.jwk.clone();
    evil_jwk_as_ed["kid"] = json!("ed");
    let fake_cert = URL_SAFE_NO_PAD.encode(b"0\x82\x01\x0a not a certificate");
    let cases = [
        (
            json!({"alg":"EdDSA","kid":"ed","jwk": evil_jwk_as_ed}),
            VerifyError::BadSignature,
        ),
        (
            json!({"alg":"EdDSA","kid":"evil","jwk": attacker.jwk}),
            VerifyError::UnknownKey,
        ),
        (
            json!({"alg":"EdDSA","jwk": attacker.jwk}),
            VerifyError::UnknownKey,
        ),
        (
            json!({"alg":"EdDSA","kid":"ed","jku": evil_url}),
            VerifyError::BadSignature,
        ),
        (
            json!({"alg":"EdDSA","kid":"evil","jku": evil_url}),
            VerifyError::UnknownKey,
        ),
        (
            json!({"alg":"EdDSA","jku": evil_url}),
            VerifyError::UnknownKey,
        ),
        (
            json!({"alg":"EdDSA","kid":"ed","x5u": evil_url}),
            VerifyError::BadSignature,
        ),
        (
            json!({"alg":"EdDSA","kid":"evil","x5u": evil_url}),
            VerifyError::UnknownKey,
        ),
        (
            json!({"alg":"EdDSA","kid":"ed","x5c": [fake_cert], "x5t": "AAAA"}),
            VerifyError::BadSignature,
        ),
        (
            json!({"alg":"EdDSA","kid":"evil","x5c": [fake_cert], "x5t#S256": "AAAA"}),
            VerifyError::UnknownKey,
        ),
        (
            json!({"alg":"EdDSA","kid":"ed","jwk": "garbage","jku": 5,"x5c": {}}),
            VerifyError::BadSignature,
        ),
    ];
    for (header, want) in cases {
        let token = sign_raw(&attacker, &header.to_string(), &claims().to_string());
        assert_eq!(v.verify(&token).await.unwrap_err(), want, "{header}");
    }
    // Headers we do not use may hold anything, for a token the real key signed.
    let token = sign_raw(
        &ed,
        &json!({"alg":"EdDSA","kid":"ed","jku": evil_url,"x5u": evil_url,"jwk": attacker.jwk,
                "typ":"JWT","cty":"whatever"})
        .to_string(),
        &claims().to_string(),
    );
    assert!(v.verify(&token).await.is_ok());
    assert_eq!(evil.hits(), 0, "a URL from a token header was fetched");
    // The unknown kid was looked up in our JWKS, once (rate limited).
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn odd_kids_are_just_unknown_keys() {
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let v = ready_verifier(&server).await;
    let long = "e".repeat(500);
    let kids = [
        "../../../../etc/passwd",
        "/dev/null",
        "file:///etc/passwd",
        "http://127.0.0.1:1/jwks",
        "' OR '1'='1",
        "ed' --",
        "ed\"; DROP TABLE jwks; --",
        "ed' UNION SELECT 'ed",
        "ed\u{0}",
        "ed\n",
        "ed ",
        " ed",
        "ED",
        "Ed",
        "%65d",
        "ed/../ed",
        "./ed",
        "*",
        "",
        "\u{202e}de",
        "ｅｄ",
        long.as_str(),
    ];
    for kid in kids {
        // Signed with the real key: only the exact kid may find it.
        let token = sign_raw(
            &ed,
            &json!({"alg": "EdDSA", "kid": kid}).to_string(),
            &claims().to_string(),
        );
        assert_eq!(
            v.verify(&token).await.unwrap_err(),
            VerifyError::UnknownKey,
            "{kid:?}"
        );
    }
    assert_eq!(server.hits(), 2, "one rate-limited refetch for all of them");
    for kid in [
        json!(1),
        json!(["ed"]),
        json!({"kid": "ed"}),
        json!(null),
        json!(true),
    ] {
        let token = sign_raw(
            &ed,
            &json!({"alg": "EdDSA", "kid": kid}).to_string(),
            &claims().to_string(),
        );
        assert_eq!(
            v.verify(&token).await.unwrap_err(),
            VerifyError::Malformed,
            "{kid}"
        );
    }
    assert!(v.verify(&sign(&ed, &claims())).await.is_ok());
}

#[tokio::test]
async fn duplicate_json_keys_are_refused() {
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let v = ready_verifier(&server).await;
    let head = r#"{"alg":"EdDSA","kid":"ed"}"#;
    let n = now();
    let body = |extra: &str| {
        format!(
            r#"{{"sub":"u1","iss":"{ISS}","aud":"{ISS}","iat":{n},"exp":{}{extra}}}"#,
            n + 900
        )
    };
    assert!(v.verify(&sign_raw(&ed, head, &body(""))).await.is_ok());
    assert!(v
        .verify(&sign_raw(
            &ed,
            head,
            &body(r#","user":{"role":"a"},"r":[{"k":1},{"k":2}]"#)
        ))
        .await
        .is_ok());
    for header in [
        r#"{"alg":"EdDSA","kid":"ed","kid":"ed"}"#,
        r#"{"alg":"none","alg":"EdDSA","kid":"ed"}"#,
        r#"{"alg":"EdDSA","alg":"EdDSA","kid":"ed"}"#,
        r#"{"alg":"EdDSA","kid":"other","kid":"ed"}"#,
        r#"{"alg":"EdDSA","kid":"ed","\u006bid":"ed"}"#,
        r#"{"alg":"EdDSA","kid":"ed","typ":"JWT","typ":"JWT"}"#,
        r#"{"alg":"EdDSA","kid":"ed","jwk":{"x":1,"x":2}}"#,
    ] {
        assert_eq!(
            v.verify(&sign_raw(&ed, header, &body("")))
                .await
                .unwrap_err(),
            VerifyError::Malformed,
            "{header}"
        );
    }
    for extra in [
        r#","sub":"admin""#,
        r#","sub":"u1""#,
        r#","\u0073ub":"admin""#,
        r#","exp":1"#,
        r#","exp":99999999999"#,
        r#","iss":"http://evil""#,
        r#","aud":"http://evil""#,
        r#","user":{"role":"a","role":"admin"}"#,
        r#","roles":[{"r":1,"r":2}]"#,
    ] {
        assert_eq!(
            v.verify(&sign_raw(&ed, head, &body(extra)))
                .await
                .unwrap_err(),
            VerifyError::Malformed,
            "{extra}"
        );
    }
    // Not an object, or trailing data.
    for payload in ["[]", "\"u1\"", "null", &format!("{} {{}}", body(""))] {
        assert_eq!(
            v.verify(&sign_raw(&ed, head, payload)).await.unwrap_err(),
            VerifyError::Malformed,
            "{payload}"
        );
    }
}

/// The base64url text with its last character moved to the next one of the alphabet: the
/// same bytes to a lenient decoder (only the unused trailing bits change). Needs a length
/// that is not a multiple of 4.
fn bump_trailing_bits(part: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_ne!(part.len() % 4, 0, "{part}");
    let last = *part.as_bytes().last().unwrap();
    let i = ALPHABET.iter().position(|&c| c == last).unwrap();
    format!("{}{}", &part[..part.len() - 1], ALPHABET[i + 1] as char)
}

#[tokio::test]
async fn non_canonical_base64url_is_refused_even_when_signed() {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE};
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let v = ready_verifier(&server).await;
    // A payload whose encoding has `-` and `_` (`+` and `/` in standard base64) and a length
    // that is no multiple of 3 bytes (so that padding and trailing bits exist).
    let payload_bytes = (0..12)
        .map(|filler| {
            let mut c = claims();
            c["note"] = json!(format!("{}???>>>???>>>", "x".repeat(filler)));
            c.to_string().into_bytes()
        })
        .find(|b| {
            let e = URL_SAFE_NO_PAD.encode(b);
            b.len() % 3 != 0 && e.contains('-') && e.contains('_')
        })
        .unwrap();
    let header_bytes = br#"{"alg":"EdDSA","kid":"ed"}"#;
    assert_ne!(header_bytes.len() % 3, 0);
    let (head, payload) = (
        URL_SAFE_NO_PAD.encode(header_bytes),
        URL_SAFE_NO_PAD.encode(&payload_bytes),
    );
    let good = sign_parts(&ed, &head, &payload);
    assert!(v.verify(&good).await.is_ok());

    let variants = [
        (URL_SAFE.encode(header_bytes), payload.clone()),
        (head.clone(), URL_SAFE.encode(&payload_bytes)),
        (head.clone(), STANDARD_NO_PAD.encode(&payload_bytes)),
        (head.clone(), format!("{payload}=")),
        (format!("{head}="), payload.clone()),
        (head.clone(), bump_trailing_bits(&payload)),
        (bump_trailing_bits(&head), payload.clone()),
        (head.clone(), format!("{payload}\n")),
        (head.clone(), format!(" {payload}")),
        (format!("{}\n{}", &head[..8], &head[8..]), payload.clone()),
    ];
    for (h, p) in variants {
        assert_eq!(
            v.verify(&sign_parts(&ed, &h, &p)).await.unwrap_err(),
            VerifyError::Malformed,
            "{h}.{p}"
        );
    }
    // The signature part too (64 bytes: 86 characters, 2 of them in the last group).
    let (input, sig) = good.rsplit_once('.').unwrap();
    let sig_bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let mut sig_variants = vec![
        URL_SAFE.encode(&sig_bytes),
        bump_trailing_bits(sig),
        format!("{sig} "),
    ];
    let std = STANDARD_NO_PAD.encode(&sig_bytes);
    if std != sig {
        sig_variants.push(std);
    }
    for s in sig_variants {
        assert_eq!(
            v.verify(&format!("{input}.{s}")).await.unwrap_err(),
            VerifyError::Malformed,
            "{s}"
        );
    }
}

#[tokio::test]
async fn ed25519_signatures_with_unreduced_s_are_refused() {
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let v = ready_verifier(&server).await;
    let good = sign(&ed, &claims());
    assert!(v.verify(&good).await.is_ok());
    let (input, sig) = good.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    // (R, S + L) satisfies the verification equation as (R, S) does: the classic malleated
    // twin, which RFC 8032 §5.1.7 requires refusing (S must be < L).
    let mut twin = sig.clone();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = twin[32 + i] as u16 + L[i] as u16 + carry;
        twin[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    // S = L and S with the top bits set are out of range too.
    let mut s_is_l = sig.clone();
    s_is_l[32..].copy_from_slice(&L);
    let mut high = sig.clone();
    high[63] |= 0xe0;
    for bad in [twin, s_is_l, high] {
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bad));
        assert_eq!(
            v.verify(&token).await.unwrap_err(),
            VerifyError::BadSignature
        );
    }
}

// ---- The verified-token cache ----

fn cached_config(url: String, size: usize) -> VerifierConfig {
    let mut c = config(url);
    c.cache_size = size;
    c
}

async fn cached_verifier(server: &JwksServer, size: usize) -> Verifier {
    let v = Verifier::new(cached_config(server.url(), size)).unwrap();
    v.refresh().await.unwrap();
    v
}

/// Every token that differs from `token` in exactly one character (each position replaced by
/// another base64url character), separators left alone.
fn one_char_variants(token: &str) -> Vec<String> {
    token
        .char_indices()
        .filter(|(_, c)| *c != '.')
        .map(|(i, c)| {
            let other = if c == 'A' { 'B' } else { 'A' };
            let mut t = token.to_string();
            t.replace_range(i..i + 1, &other.to_string());
            t
        })
        .collect()
}

#[tokio::test]
async fn a_repeated_token_is_a_cache_hit_with_the_same_claims() {
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let v = cached_verifier(&server, 16).await;
    let token = sign(&ed, &claims());
    let first = v.verify(&token).await.unwrap();
    let second = v.verify(&token).await.unwrap();
    assert_eq!(first, second);
    let s = v.stats().cache;
    assert_eq!((s.capacity, s.entries, s.hits, s.misses), (16, 1, 1, 1));
    // Clones share the cache.
    assert_eq!(v.clone().verify(&token).await.unwrap(), first);
    assert_eq!(v.stats().cache.hits, 2);

    // Off by default: nothing counted, nothing held.
    let off = ready_verifier(&server).await;
    off.verify(&token).await.unwrap();
    off.verify(&token).await.unwrap();
    assert_eq!(off.stats().cache, latchkey_jwt::CacheStats::default());
    // Debug shows no token or digest.
    assert!(!format!("{v:?}").contains(&token[..20]));
}

#[tokio::test]
async fn forged_tokens_are_refused_before_and_after_the_genuine_one_is_cached() {
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let v = cached_verifier(&server, 1024).await;
    let token = sign(&ed, &claims());
    let variants = one_char_variants(&token);
    assert!(variants.len() > 100);
    for round in ["before", "after"] {
        for forged in &variants {
            let err = v.verify(forged).await.unwrap_err();
            assert_ne!(err, VerifyError::NoKeys, "{round}");
        }
        v.verify(&token).await.unwrap();
    }
    // A JWS with the genuine signature over another payload, and one with extra bytes.
    let mut cl = claims();
    cl["sub"] = json!("admin");
    let parts: Vec<&str> = token.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(cl.to_string()),
        parts[2]
    );
    assert_eq!(
        v.verify(&swapped).await.unwrap_err(),
        VerifyError::BadSignature
    );
    assert!(v.verify(&format!("{token}A")).await.is_err());
    assert!(v.verify(&format!(" {token}")).await.is_err());
    let s = v.stats().cache;
    // Only the genuine token was ever cached; it was verified once and hit once.
    assert_eq!((s.entries, s.hits), (1, 1));
    assert_eq!(s.misses, 2 * variants.len() as u64 + 1 + 3);
}

#[tokio::test]
async fn a_cached_token_is_refused_at_the_same_instant_as_a_fresh_one() {
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let mut c = cached_config(server.url(), 16);
    c.leeway = Duration::from_secs(1);
    let cached = Verifier::new(c.clone()).unwrap();
    cached.refresh().await.unwrap();
    c.cache_size = 0;
    let fresh = Verifier::new(c).unwrap();
    fresh.refresh().await.unwrap();

    // Valid until exp + 1 s of leeway: two to three seconds from now.
    let exp = now() + 1;
    let mut cl = claims();
    cl["exp"] = json!(exp);
    let token = sign(&ed, &cl);
    cached.verify(&token).await.unwrap();
    let mut compared = 0;
    loop {
        let before = now();
        let (a, b) = (
            cached.verify(&token).await.map(|c| c.sub),
            fresh.verify(&token).await.map(|c| c.sub),
        );
        if now() == before {
            // Both answers within one second: they must agree, and match the rule.
            assert_eq!(a, b, "at {before}, exp {exp}");
            if before <= exp + 1 {
                assert!(a.is_ok(), "at {before}, exp {exp}: {a:?}");
            } else {
                assert_eq!(a, Err(VerifyError::Expired));
                break;
            }
            compared += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(compared > 0);
    // Served from the cache while valid, and the expired entry is gone.
    let s = cached.stats().cache;
    assert!(s.hits >= 1, "{s:?}");
    assert_eq!(s.entries, 0);
    assert_eq!(cached.verify(&token).await, Err(VerifyError::Expired));
}

#[tokio::test]
async fn a_cached_token_of_a_key_gone_from_the_jwks_is_refused_after_the_refresh() {
    let (old, cur) = (ed25519("old"), ed25519("cur"));
    let server = JwksServer::start(&[&old, &cur]).await;
    let v = cached_verifier(&server, 16).await;
    let (t_old, t_cur) = (sign(&old, &claims()), sign(&cur, &claims()));
    for _ in 0..3 {
        v.verify(&t_old).await.unwrap();
        v.verify(&t_cur).await.unwrap();
    }
    assert_eq!(v.stats().cache.hits, 4);
    assert_eq!(v.stats().cache.entries, 2);

    server.set_keys(&[&cur]);
    v.refresh().await.unwrap();
    // The refresh itself dropped the entry of the removed key.
    assert_eq!(v.stats().cache.entries, 1);
    for _ in 0..3 {
        assert_eq!(v.verify(&t_old).await.unwrap_err(), VerifyError::UnknownKey);
    }
    v.verify(&t_cur).await.unwrap();

    // An empty key set refuses everything, cached or not.
    server.set_keys(&[]);
    assert_eq!(v.refresh().await, Err(latchkey_jwt::Error::NoUsableKeys));
    assert_eq!(v.stats().cache.entries, 0);
    assert_eq!(v.verify(&t_cur).await.unwrap_err(), VerifyError::NoKeys);
}

#[tokio::test]
async fn a_key_replaced_under_the_same_kid_is_not_served_from_the_cache() {
    let (first, second) = (ed25519("k"), ed25519("k"));
    let server = JwksServer::start(&[&first]).await;
    let v = cached_verifier(&server, 16).await;
    let token = sign(&first, &claims());
    v.verify(&token).await.unwrap();
    v.verify(&token).await.unwrap();
    server.set_keys(&[&second]);
    v.refresh().await.unwrap();
    // What a fresh verification says: the signature does not match the key now published.
    assert_eq!(
        v.verify(&token).await.unwrap_err(),
        VerifyError::BadSignature
    );
    assert!(v.verify(&sign(&second, &claims())).await.is_ok());
    // Republishing the same key material keeps the entries.
    let kept = sign(&second, &claims());
    v.verify(&kept).await.unwrap();
    let before = v.stats().cache;
    v.refresh().await.unwrap();
    v.verify(&kept).await.unwrap();
    assert_eq!(v.stats().cache.hits, before.hits + 1);
}

#[tokio::test]
async fn the_cache_is_bounded_under_a_flood_of_distinct_valid_tokens() {
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let v = cached_verifier(&server, 8).await;
    let hot = sign(&ed, &claims());
    v.verify(&hot).await.unwrap();
    for n in 0..200 {
        let mut cl = claims();
        cl["sub"] = json!(format!("flood-{n}"));
        let c = v.verify(&sign(&ed, &cl)).await.unwrap();
        assert_eq!(c.sub, format!("flood-{n}"));
        // A hot token stays cached: it is read more often than the hand comes round.
        assert_eq!(v.verify(&hot).await.unwrap().sub, "u1");
        assert!(v.stats().cache.entries <= 8);
    }
    let s = v.stats().cache;
    assert_eq!(s.entries, 8);
    assert_eq!(s.evictions, 201 - 8);
    assert_eq!(s.hits, 200);
}

/// CPU time this thread has run, in ns (`/proc/thread-self/schedstat`, first field): less
/// sensitive than wall time to other processes on a shared machine.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resident set size of this process, in KB (`/proc/self/status`).
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Wall and CPU µs per call of `n` calls of `f`.
async fn per_call<F: std::future::Future<Output = ()>>(
    n: usize,
    mut f: impl FnMut(usize) -> F,
) -> (f64, f64) {
    let (wall, cpu) = (std::time::Instant::now(), thread_cpu_ns());
    for i in 0..n {
        f(i).await;
    }
    let cpu_ns = thread_cpu_ns().saturating_sub(cpu) as f64;
    (
        wall.elapsed().as_secs_f64() * 1e6 / n as f64,
        cpu_ns / 1e3 / n as f64,
    )
}

/// The cost of a repeat token with the cache on and off, in-process (no HTTP), on one
/// thread: `cargo test --release -p latchkey-jwt --test verify -- --ignored --nocapture cost`.
#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement, not a test: run it in release mode"]
async fn cost_of_a_verification_with_and_without_the_cache() {
    const N: usize = 100_000;
    let ed = ed25519("ed");
    let server = JwksServer::start(&[&ed]).await;
    let off = ready_verifier(&server).await;
    let on = cached_verifier(&server, 10_000).await;
    // A token shaped like Better-Auth's: the user row as claims, plus the registered ones.
    let better_auth = |sub: &str| {
        let mut cl = claims();
        cl["sub"] = json!(sub);
        cl["id"] = json!(sub);
        cl["name"] = json!("Robert Example");
        cl["email"] = json!("robert.example@example.com");
        cl["image"] = Value::Null;
        cl["createdAt"] = json!("2026-11-26T10:00:00.000Z");
        cl["updatedAt"] = json!("2026-11-26T10:00:00.000Z");
        cl["sid"] = json!("Vd8iP0uDgpxV9XydQHomo3u5X9CQl3G0");
        cl
    };
    let token = sign(&ed, &better_auth("plCzYpFu1QcGYIpdpaj7BLVtKW9YODPe"));
    println!(
        "token: {} bytes; {N} calls per row; µs per verify, wall / CPU of this thread",
        token.len()
    );
    for round in 1..=3 {
        let (off_wall, off_cpu) = per_call(N, |_| async {
            off.verify(&token).await.unwrap();
        })
        .await;
        let (on_wall, on_cpu) = per_call(N, |_| async {
            on.verify(&token).await.unwrap();
        })
        .await;
        println!(
            "round {round}: same token: cache off {off_wall:.2} / {off_cpu:.2} µs, \
             cache on {on_wall:.2} / {on_cpu:.2} µs ({:.0}x less CPU)",
            off_cpu / on_cpu
        );
    }
    // The price of the cache when it never hits: 20000 distinct tokens through a fresh
    // cache of 10000 (all misses, 10000 evictions), alternating with the uncached verifier:
    // the difference is smaller than this machine's run-to-run noise, and a fixed order
    // once showed it as an 8 µs gap that alternating made disappear.
    let distinct: Vec<String> = (0..20_000)
        .map(|n| sign(&ed, &better_auth(&format!("user-{n:026}"))))
        .collect();
    for round in 1..=3 {
        let fresh_on = cached_verifier(&server, 10_000).await;
        let rss_before = rss_kb();
        let (on_wall, on_cpu) = per_call(distinct.len(), |i| {
            let (v, t) = (&fresh_on, &distinct[i]);
            async move {
                v.verify(t).await.unwrap();
            }
        })
        .await;
        let (off_wall, off_cpu) = per_call(distinct.len(), |i| {
            let (v, t) = (&off, &distinct[i]);
            async move {
                v.verify(t).await.unwrap();
            }
        })
        .await;
        let s = fresh_on.stats().cache;
        assert_eq!((s.hits, s.misses, s.evictions), (0, 20_000, 10_000));
        println!(
            "round {round}: 20000 distinct tokens, all misses: cache on {on_wall:.2} / {on_cpu:.2} µs, \
             cache off {off_wall:.2} / {off_cpu:.2} µs"
        );
        if round == 1 {
            // The first full cache in this process: what the RSS grew by is about its size.
            let grown = rss_kb().saturating_sub(rss_before);
            println!(
                "a full cache of {} entries: RSS grew by {grown} KB ({} bytes an entry)",
                s.entries,
                grown * 1024 / s.entries as u64
            );
        }
    }
}
