//! `latchkey-api`: bearer JWT verification against the auth daemon's JWKS (docs/compatibility.md#jwt-and-jwks).

use std::time::{Duration, Instant};

use latchkey_e2e::jwt;
use latchkey_e2e::stack::{Api, Auth, Session};
use latchkey_e2e::Resp;
use serde_json::{json, Value};

/// An auth daemon, an API daemon in front of it, a user and a real JWT.
struct Fixture {
    api: Api,
    auth: Auth,
    session: Session,
    token: String,
}

fn fixture() -> Fixture {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);
    let api = Api::start(&auth);
    Fixture {
        api,
        auth,
        session,
        token,
    }
}

fn assert_unauthorized(r: &Resp, what: &str, invalid_token: bool) {
    assert_eq!(r.status, 401, "{what}: body {}", r.text());
    let v = r.json();
    assert!(
        v["message"].is_string() && v["code"].is_string(),
        "{what}: body {v}"
    );
    let www = r
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(www.starts_with("Bearer"), "{what}: WWW-Authenticate: {www}");
    if invalid_token {
        assert!(
            www.contains("error=\"invalid_token\""),
            "{what}: WWW-Authenticate: {www}"
        );
    } else {
        // RFC 6750 §3.1: no error code when the request had no credentials.
        assert!(!www.contains("error="), "{what}: WWW-Authenticate: {www}");
    }
}

#[test]
fn me_with_a_valid_token() {
    let f = fixture();
    let r = f.api.me(&f.token);
    r.expect(200);
    let v = r.json();
    let claims = jwt::decode(&f.token).payload;
    assert_eq!(v["sub"], f.session.user["id"]);
    assert_eq!(v["email"], f.session.user["email"]);
    assert_eq!(v["name"], f.session.user["name"]);
    assert_eq!(v["emailVerified"], false);
    assert_eq!(v["sid"], claims["sid"]);
    assert_eq!(v["exp"], claims["exp"]);
    f.api.client().get("/healthz").send().expect(200);
    f.api.client().get("/readyz").send().expect(200);
}

#[test]
fn me_without_a_token() {
    let f = fixture();
    let r = f.api.client().get("/api/me").send();
    assert_unauthorized(&r, "no Authorization", false);
    // A session token is not a JWT.
    let r = f.api.me(&f.session.bearer);
    assert_unauthorized(&r, "session token as bearer", true);
}

#[test]
fn me_rejects_forged_and_stale_tokens() {
    let f = fixture();
    let real = jwt::decode(&f.token);
    let (kid, public_jwk, key) = jwt::signing_key_from_db(&f.auth.db, &f.auth.secret);
    assert_eq!(real.header["kid"], kid.as_str());
    let header = json!({"alg": "EdDSA", "kid": kid});
    let now = jwt::now();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut p = real.payload.clone();
        p["iat"] = json!(now);
        p["exp"] = json!(now + 900);
        edit(&mut p);
        p
    };

    // Positive control: our own signature with the recovered key is accepted.
    let good = jwt::sign_eddsa(&header, &with(&|_| {}), &key);
    f.api.me(&good).expect(200);

    let mut cases: Vec<(&str, String)> = vec![
        (
            "expired",
            jwt::sign_eddsa(
                &header,
                &with(&|p| {
                    p["iat"] = json!(now - 7200);
                    p["exp"] = json!(now - 3600);
                }),
                &key,
            ),
        ),
        (
            "wrong issuer",
            jwt::sign_eddsa(
                &header,
                &with(&|p| p["iss"] = json!("http://evil.example")),
                &key,
            ),
        ),
        (
            "wrong audience",
            jwt::sign_eddsa(
                &header,
                &with(&|p| p["aud"] = json!("http://other.example")),
                &key,
            ),
        ),
        (
            "tampered payload",
            jwt::tamper(&f.token, |p| p["sub"] = json!("someone-else")),
        ),
        (
            "unknown kid",
            jwt::sign_eddsa(
                &json!({"alg": "EdDSA", "kid": "no-such-key-0123456789abcdef"}),
                &with(&|_| {}),
                &jwt::random_key(),
            ),
        ),
        (
            "known kid, other key",
            jwt::sign_eddsa(&header, &with(&|_| {}), &jwt::random_key()),
        ),
        ("alg none", jwt::unsigned(&with(&|_| {}))),
        (
            "alg none with kid",
            format!(
                "{}.{}.",
                jwt::b64url(&serde_json::to_vec(&json!({"alg": "none", "kid": kid})).unwrap()),
                jwt::b64url(&serde_json::to_vec(&with(&|_| {})).unwrap())
            ),
        ),
        (
            "HS256 keyed with the public key bytes",
            jwt::sign_hs256(
                &json!({"alg": "HS256", "kid": kid}),
                &with(&|_| {}),
                &jwt::b64url_decode(public_jwk["x"].as_str().unwrap()),
            ),
        ),
        (
            "HS256 keyed with the JWK JSON",
            jwt::sign_hs256(
                &json!({"alg": "HS256", "kid": kid}),
                &with(&|_| {}),
                serde_json::to_string(&public_jwk).unwrap().as_bytes(),
            ),
        ),
        (
            "HS256 keyed with the auth secret",
            jwt::sign_hs256(
                &json!({"alg": "HS256", "kid": kid}),
                &with(&|_| {}),
                f.auth.secret.as_bytes(),
            ),
        ),
        ("garbage", "not.a.jwt".to_string()),
        (
            "truncated signature",
            f.token[..f.token.len() - 10].to_string(),
        ),
    ];
    cases.push((
        "not yet valid (iat and nbf in the future)",
        jwt::sign_eddsa(
            &header,
            &with(&|p| {
                p["iat"] = json!(now + 3600);
                p["nbf"] = json!(now + 3600);
                p["exp"] = json!(now + 7200);
            }),
            &key,
        ),
    ));
    for (what, token) in &cases {
        assert_unauthorized(&f.api.me(token), what, true);
    }
    // The real token still works after all that.
    f.api.me(&f.token).expect(200);
}

#[test]
fn forward_auth() {
    let f = fixture();
    let r = f.api.client().get("/auth/verify").bearer(&f.token).send();
    r.expect(200);
    assert_eq!(r.header("x-auth-user-id"), f.session.user["id"].as_str());
    assert_eq!(
        r.header("x-auth-user-email"),
        f.session.user["email"].as_str()
    );
    let r = f.api.client().get("/auth/verify").send();
    assert_unauthorized(&r, "forward-auth without token", false);
    assert!(r.header("x-auth-user-id").is_none());
    let bad = jwt::tamper(&f.token, |p| p["email"] = json!("admin@example.com"));
    let r = f.api.client().get("/auth/verify").bearer(&bad).send();
    assert_unauthorized(&r, "forward-auth tampered", true);
    assert!(r.header("x-auth-user-id").is_none());
}

#[test]
fn api_keeps_serving_when_the_auth_daemon_is_gone() {
    let mut f = fixture();
    f.api.me(&f.token).expect(200);
    f.auth.daemon.terminate_cleanly();
    for _ in 0..3 {
        f.api.me(&f.token).expect(200);
    }
    f.api.client().get("/readyz").send().expect(200);
    // A token with an unknown kid is still refused (the JWKS refetch fails).
    let forged = jwt::sign_eddsa(
        &json!({"alg": "EdDSA", "kid": "unknown"}),
        &jwt::decode(&f.token).payload,
        &jwt::random_key(),
    );
    assert_unauthorized(&f.api.me(&forged), "unknown kid, auth down", true);
}

#[test]
fn api_is_not_ready_without_a_key_set() {
    // Nobody listens on the auth URL.
    let dead = format!("http://127.0.0.1:{}", latchkey_e2e::free_port());
    let api = Api::start_with(&dead, |s| s);
    api.client().get("/healthz").send().expect(200);
    let r = api.client().get("/readyz").send();
    assert_eq!(r.status, 503, "readyz: {}", r.text());
}

#[test]
fn revocation_mode_rejects_tokens_of_signed_out_sessions() {
    let auth = Auth::start();
    let s = auth.new_user();
    let token = auth.jwt(&s);
    let other = auth.new_user();
    let other_token = auth.jwt(&other);
    let api = Api::start_with(&auth.url(), |spec| {
        spec.env("LATCHKEY_REVOCATION", "session")
            .env("DATABASE_URL", &auth.db.url)
            .env("LATCHKEY_REVOCATION_CACHE_TTL", "1")
    });
    api.me(&token).expect(200);
    auth.browser()
        .post("/api/auth/sign-out")
        .cookies(&s.jar)
        .json(&json!({}))
        .send()
        .expect(200);
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let r = api.me(&token);
        if r.status == 401 {
            assert_unauthorized(&r, "revoked session", true);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            Instant::now() < deadline,
            "token of a signed-out session still accepted 6 s later (TTL 1 s)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Other sessions are unaffected.
    api.me(&other_token).expect(200);
}
