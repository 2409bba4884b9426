//! `latchkey-api` and the `emailVerified` claim: the `X-Auth-User-Email-Verified` identity
//! header (forward-auth and proxy, a client's own copy never reaching the upstream), and
//! `LATCHKEY_REQUIRE_VERIFIED_EMAIL=true` refusing valid tokens of unverified users with
//! `403 EMAIL_NOT_VERIFIED` on every verifying path.

use latchkey_e2e::jwt;
use latchkey_e2e::stack::{Api, Auth, Session, PASSWORD};
use latchkey_e2e::{free_port, run_tool, Resp, Upstream};
use serde_json::{json, Value};

const HEADER: &str = "x-auth-user-email-verified";
const REQUIRE: &str = "LATCHKEY_REQUIRE_VERIFIED_EMAIL";

/// An auth daemon with two users: one as signed up (unverified: no verification happened),
/// one whose address was marked verified in the database and who signed in again, so that
/// the JWT of that fresh session carries `emailVerified: true`.
struct Users {
    auth: Auth,
    unverified: Session,
    unverified_jwt: String,
    verified: Session,
    verified_jwt: String,
}

fn users() -> Users {
    let auth = Auth::start();
    let unverified = auth.new_user();
    let unverified_jwt = auth.jwt(&unverified);
    let signed_up = auth.new_user();
    auth.db.query(
        r#"UPDATE "user" SET "emailVerified" = true WHERE id = $1"#,
        &[&signed_up.user_id()],
    );
    let verified = auth.sign_in(&signed_up.email(), PASSWORD);
    assert_eq!(verified.user["emailVerified"], true, "{}", verified.user);
    let verified_jwt = auth.jwt(&verified);
    // The real tokens say what the database says.
    assert_eq!(jwt::decode(&unverified_jwt).payload["emailVerified"], false);
    assert_eq!(jwt::decode(&verified_jwt).payload["emailVerified"], true);
    Users {
        auth,
        unverified,
        unverified_jwt,
        verified,
        verified_jwt,
    }
}

fn verify(api: &Api, token: &str) -> Resp {
    api.client().get("/auth/verify").bearer(token).send()
}

/// 403, `{"code":"EMAIL_NOT_VERIFIED","message":"Email not verified"}`, no challenge (the
/// token is valid) and no identity header.
fn assert_not_verified(r: &Resp, what: &str) {
    assert_eq!(r.status, 403, "{what}: body {}", r.text());
    assert_eq!(
        r.json(),
        json!({"code": "EMAIL_NOT_VERIFIED", "message": "Email not verified"}),
        "{what}"
    );
    assert!(
        r.header("www-authenticate").is_none(),
        "{what}: {:?}",
        r.headers
    );
    assert!(
        r.header("x-auth-user-id").is_none() && r.header(HEADER).is_none(),
        "{what}: identity headers on a refusal: {:?}",
        r.headers
    );
}

/// Tokens signed with the auth daemon's real key (recovered from the database) whose
/// `emailVerified` is something other than a boolean, or missing.
fn tokens_with_odd_claims(u: &Users) -> Vec<(&'static str, String)> {
    let (kid, _, key) = jwt::signing_key_from_db(&u.auth.db, &u.auth.secret);
    let header = json!({"alg": "EdDSA", "kid": kid});
    let now = jwt::now();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut p = jwt::decode(&u.unverified_jwt).payload;
        p["iat"] = json!(now);
        p["exp"] = json!(now + 900);
        edit(&mut p);
        jwt::sign_eddsa(&header, &p, &key)
    };
    vec![
        (
            "claim absent",
            with(&|p| {
                p.as_object_mut().unwrap().remove("emailVerified");
            }),
        ),
        ("claim null", with(&|p| p["emailVerified"] = Value::Null)),
        (
            "claim the string \"true\"",
            with(&|p| p["emailVerified"] = json!("true")),
        ),
        (
            "claim the number 1",
            with(&|p| p["emailVerified"] = json!(1)),
        ),
        (
            "claim [true]",
            with(&|p| p["emailVerified"] = json!([true])),
        ),
    ]
}

/// Positive control for [`tokens_with_odd_claims`]: the same key and payload with the JSON
/// boolean `true` counts as verified, so it is the claim's value that decides.
fn token_with_true_claim(u: &Users) -> String {
    let (kid, _, key) = jwt::signing_key_from_db(&u.auth.db, &u.auth.secret);
    let mut p = jwt::decode(&u.unverified_jwt).payload;
    let now = jwt::now();
    p["iat"] = json!(now);
    p["exp"] = json!(now + 900);
    p["emailVerified"] = json!(true);
    jwt::sign_eddsa(&json!({"alg": "EdDSA", "kid": kid}), &p, &key)
}

#[test]
fn forward_auth_reports_whether_the_email_is_verified() {
    let u = users();
    let api = Api::start(&u.auth);

    let r = verify(&api, &u.unverified_jwt);
    r.expect(200);
    assert_eq!(r.header(HEADER), Some("false"), "{:?}", r.headers);
    assert_eq!(
        r.header("x-auth-user-id"),
        Some(u.unverified.user_id().as_str())
    );
    assert_eq!(
        r.header("x-auth-user-email"),
        Some(u.unverified.email().as_str())
    );
    assert_eq!(r.headers_all(HEADER).len(), 1);

    let r = verify(&api, &u.verified_jwt);
    r.expect(200);
    assert_eq!(r.header(HEADER), Some("true"), "{:?}", r.headers);
    assert_eq!(
        r.header("x-auth-user-id"),
        Some(u.verified.user_id().as_str())
    );

    // A client's own header on the forward-auth request changes nothing in the answer.
    let r = api
        .client()
        .get("/auth/verify")
        .bearer(&u.unverified_jwt)
        .header("X-Auth-User-Email-Verified", "true")
        .send();
    r.expect(200);
    assert_eq!(r.headers_all(HEADER), ["false"], "{:?}", r.headers);

    // /api/me says the same in its body.
    assert_eq!(api.me(&u.unverified_jwt).json()["emailVerified"], false);
    assert_eq!(api.me(&u.verified_jwt).json()["emailVerified"], true);

    // Anything but the JSON boolean true is unverified.
    for (what, token) in tokens_with_odd_claims(&u) {
        let r = verify(&api, &token);
        r.expect(200);
        assert_eq!(r.header(HEADER), Some("false"), "{what}: {:?}", r.headers);
    }
    let r = verify(&api, &token_with_true_claim(&u));
    r.expect(200);
    assert_eq!(r.header(HEADER), Some("true"));

    // Flipping the claim in a real token breaks its signature: 401, no headers.
    let flipped = jwt::tamper(&u.unverified_jwt, |p| p["emailVerified"] = json!(true));
    let r = verify(&api, &flipped);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header(HEADER).is_none());
}

#[test]
fn proxy_sets_the_header_and_replaces_a_spoofed_one() {
    let u = users();
    let upstream = Upstream::start();
    let api = Api::start_with(&u.auth.url(), |s| {
        s.env("LATCHKEY_UPSTREAM", upstream.url())
    });

    for (token, want) in [(&u.unverified_jwt, "false"), (&u.verified_jwt, "true")] {
        let r = api
            .client()
            .get("/whoami")
            .bearer(token)
            .header("X-Auth-User-Email-Verified", "spoofed-true")
            .header("X_Auth_User_Email_Verified", "spoofed-true")
            .send();
        r.expect(200);
        assert_eq!(r.header("x-upstream"), Some("echo"));
        let h = &r.json()["headers"];
        assert_eq!(h[HEADER], want, "{h}");
        assert!(
            h.get("x_auth_user_email_verified").is_none(),
            "underscore spelling reached the upstream: {h}"
        );
    }
    let got = upstream.received();
    assert_eq!(got.len(), 2);
    for (req, want) in got.iter().zip(["false", "true"]) {
        let values: Vec<&str> = req
            .headers
            .iter()
            .filter(|(k, _)| k.replace('_', "-") == HEADER)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(values, [want], "{:?}", req.headers);
        assert!(
            req.headers.iter().all(|(_, v)| !v.starts_with("spoofed")),
            "{:?}",
            req.headers
        );
    }
    // The other identity headers are still there.
    assert_eq!(
        got[1].header("x-auth-user-id"),
        Some(u.verified.user_id().as_str())
    );
    assert_eq!(
        got[1].header("x-auth-user-email"),
        Some(u.verified.email().as_str())
    );

    // A token without the claim, or with a string for it: `false`.
    for (what, token) in tokens_with_odd_claims(&u) {
        let r = api
            .client()
            .get("/odd")
            .bearer(&token)
            .header("x-auth-user-email-verified", "true")
            .send();
        r.expect(200);
        assert_eq!(r.json()["headers"][HEADER], "false", "{what}");
    }
}

#[test]
fn required_verified_email_refuses_unverified_users_on_every_path() {
    let u = users();
    let upstream = Upstream::start();
    // Local mode for /api/me, proxy mode for the proxy; forward-auth on both.
    let local = Api::start_with(&u.auth.url(), |s| s.env(REQUIRE, "true"));
    let proxy = Api::start_with(&u.auth.url(), |s| {
        s.env(REQUIRE, "true")
            .env("LATCHKEY_UPSTREAM", upstream.url())
    });
    for api in [&local, &proxy] {
        let log = api.daemon.log();
        assert!(
            log.contains("latchkey-api listening") && log.contains("require_verified_email=true"),
            "the setting is not in the start-up line:\n{log}"
        );
    }

    // The unverified user: 403 everywhere, and the upstream never sees the request.
    assert_not_verified(&local.me(&u.unverified_jwt), "/api/me");
    assert_not_verified(&verify(&local, &u.unverified_jwt), "forward-auth");
    assert_not_verified(
        &verify(&proxy, &u.unverified_jwt),
        "forward-auth (proxy mode)",
    );
    let r = proxy
        .client()
        .post("/orders")
        .bearer(&u.unverified_jwt)
        .header("x-auth-user-email-verified", "true")
        .json(&json!({"item": 1}))
        .send();
    assert_not_verified(&r, "proxy");
    assert!(r.header("x-upstream").is_none());
    for (what, token) in tokens_with_odd_claims(&u) {
        assert_not_verified(&local.me(&token), what);
        assert_not_verified(&verify(&local, &token), what);
        assert_not_verified(&proxy.client().get("/x").bearer(&token).send(), what);
    }
    assert!(
        upstream.received().is_empty(),
        "an unverified user reached the upstream: {:?}",
        upstream.received()
    );

    // The verified user passes on each path.
    let r = local.me(&u.verified_jwt);
    r.expect(200);
    assert_eq!(r.json()["sub"], u.verified.user_id().as_str());
    let r = verify(&local, &u.verified_jwt);
    r.expect(200);
    assert_eq!(r.header(HEADER), Some("true"));
    verify(&proxy, &u.verified_jwt).expect(200);
    let r = proxy.client().get("/orders").bearer(&u.verified_jwt).send();
    r.expect(200);
    assert_eq!(r.json()["headers"][HEADER], "true");
    assert_eq!(
        r.json()["headers"]["x-auth-user-id"],
        u.verified.user_id().as_str()
    );
    local.me(&token_with_true_claim(&u)).expect(200);
    assert_eq!(upstream.received().len(), 1);

    // Invalid tokens are still a 401, whatever they claim: the 403 is only for good tokens.
    let r = local.client().get("/api/me").send();
    r.expect_error(401, "UNAUTHORIZED");
    let flipped = jwt::tamper(&u.unverified_jwt, |p| p["emailVerified"] = json!(true));
    let r = verify(&local, &flipped);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r
        .header("www-authenticate")
        .is_some_and(|w| w.contains("invalid_token")));
}

/// Off by default: the unverified user passes, with the header saying `false`.
#[test]
fn unverified_users_pass_by_default() {
    let u = users();
    let api = Api::start_with(&u.auth.url(), |s| s.env(REQUIRE, "false"));
    assert!(api.daemon.log().contains("require_verified_email=false"));
    api.me(&u.unverified_jwt).expect(200);
    let r = verify(&api, &u.unverified_jwt);
    r.expect(200);
    assert_eq!(r.header(HEADER), Some("false"));
    let api = Api::start(&u.auth);
    api.me(&u.unverified_jwt).expect(200);
}

/// With revocation on, a signed-out session is a 401 (sign in again), not a 403: the email
/// check comes after the token and its session are known good.
#[test]
fn a_revoked_session_is_401_before_the_email_check() {
    let u = users();
    let api = Api::start_with(&u.auth.url(), |s| {
        s.env(REQUIRE, "true")
            .env("LATCHKEY_REVOCATION", "session")
            .env("DATABASE_URL", &u.auth.db.url)
            .env("LATCHKEY_REVOCATION_CACHE_TTL", "0")
    });
    assert_not_verified(&api.me(&u.unverified_jwt), "live session");
    api.me(&u.verified_jwt).expect(200);
    u.auth
        .browser()
        .post("/api/auth/sign-out")
        .cookies(&u.unverified.jar)
        .json(&json!({}))
        .send()
        .expect(200);
    api.me(&u.unverified_jwt)
        .expect_error(401, "SESSION_REVOKED");
    verify(&api, &u.unverified_jwt).expect_error(401, "SESSION_REVOKED");
    api.me(&u.verified_jwt).expect(200);
}

#[test]
fn a_bad_value_stops_the_daemon_naming_the_setting() {
    let spec = Api::spec("http://127.0.0.1:3999", free_port()).env(REQUIRE, "maybe");
    let out = run_tool("latchkey-api", &["check-config"], &spec.env);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains(REQUIRE), "{out:?}");
    let spec = Api::spec("http://127.0.0.1:3999", free_port()).env(REQUIRE, "yes");
    run_tool("latchkey-api", &["check-config"], &spec.env).assert_success();
}
