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
        (json!({"exp": null}), VerifyError::Malformed),
        (json!({"exp": "tomorrow"}), VerifyError::Malformed),
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
