//! The auth daemon's HTTP API as a client uses it (docs/compatibility.md#sessions, docs/compatibility.md#cookies, docs/compatibility.md#bearer-tokens, docs/compatibility.md#endpoints).

use latchkey_e2e::jwt;
use latchkey_e2e::stack::{Auth, Session, PASSWORD, SESSION_COOKIE, TRUSTED_ORIGIN};
use latchkey_e2e::{random_email, CookieJar};
use serde_json::{json, Value};

fn get_session_cookie(auth: &Auth, jar: &CookieJar) -> latchkey_e2e::Resp {
    auth.client()
        .get("/api/auth/get-session")
        .cookies(jar)
        .send()
}

fn get_session_bearer(auth: &Auth, bearer: &str) -> latchkey_e2e::Resp {
    auth.client()
        .get("/api/auth/get-session")
        .bearer(bearer)
        .send()
}

fn assert_user_shape(user: &Value, email: &str, name: &str) {
    assert_eq!(user["email"], email, "user: {user}");
    assert_eq!(user["name"], name, "user: {user}");
    assert_eq!(user["emailVerified"], false, "user: {user}");
    assert_eq!(user["id"].as_str().map(str::len), Some(32), "user: {user}");
    for k in ["createdAt", "updatedAt"] {
        let s = user[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} missing: {user}"));
        // JS toISOString: YYYY-MM-DDTHH:MM:SS.mmmZ
        assert_eq!(s.len(), 24, "{k} = {s}");
        assert!(s.ends_with('Z') && s.as_bytes()[19] == b'.', "{k} = {s}");
    }
}

#[test]
fn health_and_ok_endpoints() {
    let auth = Auth::start();
    let c = auth.client();
    c.get("/healthz").send().expect(200);
    c.get("/readyz").send().expect(200);
    let r = c.get("/api/auth/ok").send();
    r.expect(200);
    assert_eq!(r.json(), json!({"ok": true}));
}

#[test]
fn sign_up_opens_a_session_with_cookie_and_bearer() {
    let auth = Auth::start();
    let email = random_email();
    let mixed = email.replacen("user", "USER", 1);
    let r = auth.sign_up_resp("Alice", &mixed, PASSWORD);
    r.expect(200);
    let body = r.json();
    let token = body["token"].as_str().expect("token");
    assert_eq!(token.len(), 32, "token {token}");
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_user_shape(&body["user"], &email, "Alice");

    // set-auth-token = token.signature (not URI-encoded) and exposed for CORS.
    let bearer = r.header("set-auth-token").expect("set-auth-token");
    let (t, sig) = bearer.rsplit_once('.').unwrap();
    assert_eq!(t, token);
    assert_eq!(sig, jwt::cookie_signature(&auth.secret, token));
    assert!(r
        .headers_all("access-control-expose-headers")
        .iter()
        .any(|v| v.contains("set-auth-token")));

    // Session cookie: same value, percent-encoded, exact attributes (docs/compatibility.md#cookies).
    let c = r.set_cookie(SESSION_COOKIE).expect("session cookie");
    assert_eq!(c.decoded_value(), bearer);
    assert!(!c.value.contains('+') && !c.value.contains('/') && !c.value.contains('='));
    assert_eq!(c.max_age(), Some(604800), "{}", c.raw);
    assert!(
        c.raw
            .ends_with("; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax"),
        "{}",
        c.raw
    );

    // Rows as Better-Auth writes them (docs/compatibility.md#schema, docs/compatibility.md#passwords).
    let rows = auth.db.query(
        r#"SELECT u.id, u.email, a."providerId", a."accountId", a.password, s.token, s."ipAddress"
           FROM "user" u JOIN account a ON a."userId" = u.id JOIN session s ON s."userId" = u.id"#,
        &[],
    );
    assert_eq!(rows.len(), 1);
    let (id, em, provider, account_id, hash, stoken, ip): (
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
    ) = (
        rows[0].get(0),
        rows[0].get(1),
        rows[0].get(2),
        rows[0].get(3),
        rows[0].get(4),
        rows[0].get(5),
        rows[0].get(6),
    );
    assert_eq!(em, email);
    assert_eq!(provider, "credential");
    assert_eq!(account_id, id);
    assert_eq!(stoken, token);
    assert_eq!(ip.as_deref(), Some(""));
    // Default scheme: Argon2id (PHC string); Better-Auth's scrypt format is opt-in.
    assert!(hash.starts_with("$argon2id$"), "hash {hash}");
}

#[test]
fn scrypt_hashes_in_better_auth_format_when_configured() {
    let auth = Auth::start_with(|s| s.env("LATCHKEY_PASSWORD_HASH", "scrypt"));
    let s = auth.new_user();
    let rows = auth.db.query(
        r#"SELECT password FROM account WHERE "userId" = $1"#,
        &[&s.user_id()],
    );
    let hash: String = rows[0].get(0);
    let (salt, key) = hash.split_once(':').expect("salt:key");
    assert_eq!((salt.len(), key.len()), (32, 128), "hash {hash}");
    assert!(hash
        .chars()
        .all(|c| c == ':' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
    auth.sign_in(&s.email(), PASSWORD);
    auth.sign_in_resp(&s.email(), "not the password")
        .expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
}

#[test]
fn sign_up_rejects_duplicates_and_bad_input() {
    let auth = Auth::start();
    let email = random_email();
    auth.sign_up("Bob", &email, PASSWORD);
    auth.sign_up_resp("Bob again", &email.to_uppercase(), PASSWORD)
        .expect_error(422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL");
    auth.sign_up_resp("Short", &random_email(), "short")
        .expect_error(400, "PASSWORD_TOO_SHORT");
    auth.sign_up_resp("Long", &random_email(), &"x".repeat(129))
        .expect_error(400, "PASSWORD_TOO_LONG");
    auth.sign_up_resp("Bad", "not-an-email", PASSWORD)
        .expect_error(400, "VALIDATION_ERROR");
    auth.client()
        .post("/api/auth/sign-up/email")
        .json(&json!({"email": random_email(), "password": PASSWORD}))
        .send()
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(auth.db.count(r#"SELECT count(*) FROM "user""#), 1);
}

#[test]
fn sign_in_failures_are_indistinguishable() {
    let auth = Auth::start();
    let s = auth.new_user();
    let wrong = auth.sign_in_resp(&s.email(), "wrong password!");
    let unknown = auth.sign_in_resp(&random_email(), PASSWORD);
    wrong.expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    unknown.expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(
        wrong.json(),
        json!({"message": "Invalid email or password", "code": "INVALID_EMAIL_OR_PASSWORD"})
    );
    assert!(wrong.set_cookies().is_empty() && unknown.set_cookies().is_empty());
}

#[test]
fn sign_in_is_case_insensitive_and_opens_a_new_session() {
    let auth = Auth::start();
    let s = auth.new_user();
    let r = auth.sign_in_resp(&s.email().to_uppercase(), PASSWORD);
    r.expect(200);
    let body = r.json();
    assert_eq!(body["redirect"], false);
    assert_eq!(body["user"]["id"], s.user["id"]);
    assert_ne!(body["token"], s.token.as_str());
    assert!(r.set_cookie(SESSION_COOKIE).is_some());
    assert_eq!(auth.db.count("SELECT count(*) FROM session"), 2);
}

#[test]
fn get_session_without_a_session_is_null() {
    let auth = Auth::start();
    let r = auth.client().get("/api/auth/get-session").send();
    r.expect(200);
    assert_eq!(r.json(), Value::Null);
    assert!(r.header("set-auth-jwt").is_none());
    // A forged cookie (bad signature) is no session either.
    let s = auth.new_user();
    let mut jar = CookieJar::new();
    let forged = format!(
        "{}.{}",
        s.token,
        jwt::cookie_signature("some-other-secret-that-is-long-enough", &s.token)
    );
    jar.set(SESSION_COOKIE, &latchkey_e2e::http::percent_encode(&forged));
    let r = get_session_cookie(&auth, &jar);
    r.expect(200);
    assert_eq!(r.json(), Value::Null);
    // So is a bearer with a bad signature.
    let r = get_session_bearer(&auth, &forged);
    assert_eq!(r.json(), Value::Null);
}

#[test]
fn get_session_with_cookie_returns_session_user_and_jwt() {
    let auth = Auth::start();
    let s = auth.new_user();
    let r = get_session_cookie(&auth, &s.jar);
    r.expect(200);
    let body = r.json();
    assert_eq!(body["user"], s.user);
    assert_eq!(body["session"]["token"], s.token.as_str());
    assert_eq!(body["session"]["userId"], s.user["id"]);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let jwt_header = r.header("set-auth-jwt").expect("set-auth-jwt header");
    assert!(r
        .headers_all("access-control-expose-headers")
        .iter()
        .any(|v| v.contains("set-auth-jwt")));
    let d = jwt::verify_with_jwks(jwt_header, &auth.jwks());
    assert_eq!(d.payload["sub"], s.user["id"]);
    assert_eq!(d.payload["sid"], body["session"]["id"]);
}

#[test]
fn bearer_sessions_signed_and_raw() {
    let auth = Auth::start();
    let s = auth.new_user();
    let r = get_session_bearer(&auth, &s.bearer);
    r.expect(200);
    assert_eq!(r.json()["user"]["id"], s.user["id"]);
    // A raw unsigned token (no '.') is refused by default (LATCHKEY_REQUIRE_SIGNED_BEARER)...
    assert_eq!(get_session_bearer(&auth, &s.token).json(), Value::Null);
    // ...and accepted as by Better-Auth when it is off (docs/compatibility.md#bearer-tokens).
    let lenient = Auth::start_with(|s| s.env("LATCHKEY_REQUIRE_SIGNED_BEARER", "false"));
    let raw = lenient.new_user();
    let r = get_session_bearer(&lenient, &raw.token);
    assert_eq!(r.json()["user"]["id"], raw.user["id"]);
    // Scheme is case-insensitive.
    let r = auth
        .client()
        .get("/api/auth/get-session")
        .header("authorization", &format!("bearer {}", s.bearer))
        .send();
    assert_eq!(r.json()["user"]["id"], s.user["id"]);
}

#[test]
fn token_endpoint_issues_eddsa_jwts() {
    let auth = Auth::start();
    let s = auth.new_user();
    auth.client()
        .get("/api/auth/token")
        .send()
        .expect_error(401, "UNAUTHORIZED");
    let token = auth.jwt(&s);
    // Also with the cookie.
    let r = auth.client().get("/api/auth/token").cookies(&s.jar).send();
    r.expect(200);

    let d = jwt::verify_with_jwks(&token, &auth.jwks());
    assert_eq!(
        d.header,
        json!({"alg": "EdDSA", "kid": d.header["kid"]}),
        "no typ"
    );
    let p = &d.payload;
    let origin = auth.url();
    assert_eq!(p["sub"], s.user["id"]);
    assert_eq!(p["id"], s.user["id"]);
    assert_eq!(p["email"], s.user["email"]);
    assert_eq!(p["name"], s.user["name"]);
    assert_eq!(p["emailVerified"], false);
    assert_eq!(p["iss"], origin.as_str());
    assert_eq!(p["aud"], origin.as_str());
    let (iat, exp) = (p["iat"].as_i64().unwrap(), p["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 900);
    assert!((iat - jwt::now()).abs() < 60);
    let sid: String = auth
        .db
        .query("SELECT id FROM session WHERE token = $1", &[&s.token])[0]
        .get(0);
    assert_eq!(p["sid"], sid.as_str());
}

#[test]
fn jwks_is_served_at_both_paths() {
    let auth = Auth::start();
    let s = auth.new_user();
    let _ = auth.jwt(&s); // makes sure a key exists
    let a = auth.jwks();
    let r = auth.client().get("/.well-known/jwks.json").send();
    r.expect(200);
    assert_eq!(a, r.json());
    let keys = a["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{a}");
    let k = &keys[0];
    assert_eq!(k["alg"], "EdDSA");
    assert_eq!(k["crv"], "Ed25519");
    assert_eq!(k["kty"], "OKP");
    assert!(k.get("d").is_none(), "private part in JWKS!");
    let kid: String = auth.db.query("SELECT id FROM jwks", &[])[0].get(0);
    assert_eq!(k["kid"], kid.as_str());
}

/// Better-Auth's listing, every session's token shown, with LATCHKEY_LIST_SESSION_TOKENS=all.
#[test]
fn list_sessions_with_every_token() {
    let open = Auth::start_with(|s| s.env("LATCHKEY_LIST_SESSION_TOKENS", "all"));
    let a = open.new_user();
    let b = open.sign_in(&a.email(), PASSWORD);
    let r = open
        .client()
        .get("/api/auth/list-sessions")
        .bearer(&a.bearer)
        .send();
    r.expect(200);
    let shown: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["token"].as_str().unwrap().to_string())
        .collect();
    assert!(
        shown.contains(&a.token) && shown.contains(&b.token),
        "{shown:?}"
    );
}

#[test]
fn list_and_revoke_sessions() {
    let auth = Auth::start();
    let s1 = auth.new_user();
    let s2 = auth.sign_in(&s1.email(), PASSWORD);
    let s3 = auth.sign_in(&s1.email(), PASSWORD);
    let list = |s: &Session| {
        let r = auth
            .client()
            .get("/api/auth/list-sessions")
            .bearer(&s.bearer)
            .send();
        r.expect(200);
        r.json().as_array().unwrap().clone()
    };
    let all = list(&s1);
    assert_eq!(all.len(), 3);
    // Only the caller's own token is shown; other devices' sessions show their id instead, so
    // one stolen session does not hand out the others (LATCHKEY_LIST_SESSION_TOKENS=current).
    let tokens: Vec<&str> = all.iter().map(|x| x["token"].as_str().unwrap()).collect();
    assert!(tokens.contains(&s1.token.as_str()));
    for other in [&s2, &s3] {
        assert!(!tokens.contains(&other.token.as_str()), "{tokens:?}");
    }
    let stand_ins = all
        .iter()
        .filter(|x| x["token"] != s1.token.as_str() && x["id"] == x["token"])
        .count();
    assert_eq!(stand_ins, 2, "{all:?}");
    let ids: Vec<&str> = all.iter().map(|x| x["id"].as_str().unwrap()).collect();
    auth.client()
        .get("/api/auth/list-sessions")
        .send()
        .expect_error(401, "UNAUTHORIZED");

    // Revoke another session by its token (cookie auth → Origin needed).
    let r = auth
        .browser()
        .post("/api/auth/revoke-session")
        .cookies(&s1.jar)
        .json(&json!({"token": s2.token}))
        .send();
    r.expect(200);
    assert_eq!(r.json(), json!({"status": true}));
    assert_eq!(get_session_bearer(&auth, &s2.bearer).json(), Value::Null);
    assert_eq!(list(&s1).len(), 2);
    // ...or by what list-sessions showed for it (its id), as the official client would.
    let s3_id = auth
        .db
        .query(r#"select id from "session" where token = $1"#, &[&s3.token])[0]
        .get::<_, String>(0);
    assert!(ids.contains(&s3_id.as_str()));
    auth.client()
        .post("/api/auth/revoke-session")
        .bearer(&s1.bearer)
        .json(&json!({"token": s3_id}))
        .send()
        .expect(200);
    assert_eq!(get_session_bearer(&auth, &s3.bearer).json(), Value::Null);
    assert_eq!(list(&s1).len(), 1);

    // Someone else's token: 200, nothing happens.
    let other = auth.new_user();
    let r = auth
        .client()
        .post("/api/auth/revoke-session")
        .bearer(&s1.bearer)
        .json(&json!({"token": other.token}))
        .send();
    r.expect(200);
    assert_eq!(
        get_session_bearer(&auth, &other.bearer).json()["user"]["id"],
        other.user["id"]
    );

    // Revoke the others, then all.
    let s4 = auth.sign_in(&s1.email(), PASSWORD);
    assert_eq!(list(&s1).len(), 2);
    let r = auth
        .client()
        .post("/api/auth/revoke-other-sessions")
        .bearer(&s1.bearer)
        .json(&json!({}))
        .send();
    r.expect(200);
    assert_eq!(r.json(), json!({"status": true}));
    assert_eq!(list(&s1).len(), 1);
    assert_eq!(get_session_bearer(&auth, &s4.bearer).json(), Value::Null);

    let r = auth
        .client()
        .post("/api/auth/revoke-sessions")
        .bearer(&s1.bearer)
        .send();
    r.expect(200);
    assert_eq!(r.json(), json!({"status": true}));
    assert_eq!(get_session_bearer(&auth, &s1.bearer).json(), Value::Null);
    assert_eq!(
        auth.db.count(&format!(
            "SELECT count(*) FROM session WHERE \"userId\" = '{}'",
            s1.user_id()
        )),
        0
    );
}

#[test]
fn update_user() {
    let auth = Auth::start();
    let s = auth.new_user();
    let r = auth
        .browser()
        .post("/api/auth/update-user")
        .cookies(&s.jar)
        .json(&json!({"name": "Renamed", "image": "https://example.com/a.png"}))
        .send();
    r.expect(200);
    assert_eq!(r.json(), json!({"status": true}));
    let body = get_session_bearer(&auth, &s.bearer).json();
    assert_eq!(body["user"]["name"], "Renamed");
    assert_eq!(body["user"]["image"], "https://example.com/a.png");
    // The next JWT carries the new name.
    let d = jwt::decode(&auth.jwt(&s));
    assert_eq!(d.payload["name"], "Renamed");

    auth.client()
        .post("/api/auth/update-user")
        .bearer(&s.bearer)
        .json(&json!({"email": "new@example.com"}))
        .send()
        .expect_error(400, "EMAIL_CAN_NOT_BE_UPDATED");
    let r = auth
        .client()
        .post("/api/auth/update-user")
        .bearer(&s.bearer)
        .json(&json!({}))
        .send();
    r.expect(400);
    assert_eq!(r.json()["message"], "No fields to update");
    auth.client()
        .post("/api/auth/update-user")
        .json(&json!({"name": "x"}))
        .send()
        .expect_error(401, "UNAUTHORIZED");
}

#[test]
fn change_password() {
    let auth = Auth::start();
    let s = auth.new_user();
    let other = auth.sign_in(&s.email(), PASSWORD);
    let new_pw = "an even better password";
    auth.client()
        .post("/api/auth/change-password")
        .bearer(&s.bearer)
        .json(&json!({"currentPassword": "wrong password", "newPassword": new_pw}))
        .send()
        .expect_error(400, "INVALID_PASSWORD");
    auth.client()
        .post("/api/auth/change-password")
        .bearer(&s.bearer)
        .json(&json!({"currentPassword": PASSWORD, "newPassword": "short"}))
        .send()
        .expect_error(400, "PASSWORD_TOO_SHORT");

    let r = auth
        .client()
        .post("/api/auth/change-password")
        .bearer(&s.bearer)
        .json(&json!({"currentPassword": PASSWORD, "newPassword": new_pw}))
        .send();
    r.expect(200);
    assert_eq!(r.json()["token"], Value::Null);
    assert_eq!(r.json()["user"]["id"], s.user["id"]);
    auth.sign_in_resp(&s.email(), PASSWORD)
        .expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    let fresh = auth.sign_in(&s.email(), new_pw);
    // Other sessions survive without revokeOtherSessions.
    assert_eq!(
        get_session_bearer(&auth, &other.bearer).json()["user"]["id"],
        s.user["id"]
    );

    // With revokeOtherSessions: every session (the current one too) is replaced.
    let third = "the third password here";
    let r = auth
        .browser()
        .post("/api/auth/change-password")
        .cookies(&fresh.jar)
        .json(
            &json!({"currentPassword": new_pw, "newPassword": third, "revokeOtherSessions": true}),
        )
        .send();
    r.expect(200);
    let body = r.json();
    let new_token = body["token"].as_str().expect("new token");
    assert_ne!(new_token, fresh.token);
    let new_bearer = r.header("set-auth-token").expect("set-auth-token");
    assert!(r.set_cookie(SESSION_COOKIE).is_some());
    for old in [&s, &other, &fresh] {
        assert_eq!(get_session_bearer(&auth, &old.bearer).json(), Value::Null);
    }
    assert_eq!(
        get_session_bearer(&auth, new_bearer).json()["user"]["id"],
        s.user["id"]
    );
    assert_eq!(auth.db.count("SELECT count(*) FROM session"), 1);
}

#[test]
fn sign_out_deletes_the_session_and_expires_cookies() {
    let auth = Auth::start();
    let s = auth.new_user();
    let r = auth
        .browser()
        .post("/api/auth/sign-out")
        .cookies(&s.jar)
        .json(&json!({}))
        .send();
    r.expect(200);
    assert_eq!(r.json(), json!({"success": true}));
    let cookies = r.set_cookies();
    for name in [
        SESSION_COOKIE,
        "better-auth.session_data",
        "better-auth.dont_remember",
    ] {
        let c = cookies
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name} not expired: {cookies:?}"));
        assert!(c.is_removal(), "{}", c.raw);
        assert_eq!(c.max_age(), Some(0), "{}", c.raw);
    }
    let mut jar = s.jar.clone();
    jar.update(&r);
    assert!(jar.get(SESSION_COOKIE).is_none());
    assert_eq!(get_session_cookie(&auth, &s.jar).json(), Value::Null);
    assert_eq!(get_session_bearer(&auth, &s.bearer).json(), Value::Null);
    assert_eq!(auth.db.count("SELECT count(*) FROM session"), 0);
    // Without a session: still 200.
    let r = auth.client().post("/api/auth/sign-out").send();
    r.expect(200);
    assert_eq!(r.json(), json!({"success": true}));
}

#[test]
fn origin_checks() {
    let auth = Auth::start();
    let s = auth.new_user();
    let post = |origin: Option<&str>| {
        let mut req = auth
            .client()
            .post("/api/auth/update-user")
            .cookies(&s.jar)
            .json(&json!({"name": "N"}));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    post(None).expect_error(403, "MISSING_OR_NULL_ORIGIN");
    post(Some("null")).expect_error(403, "MISSING_OR_NULL_ORIGIN");
    post(Some("http://evil.example")).expect_error(403, "INVALID_ORIGIN");
    post(Some(&auth.url())).expect(200);
    post(Some(TRUSTED_ORIGIN)).expect(200);
    // Referer works in place of Origin.
    auth.client()
        .post("/api/auth/update-user")
        .cookies(&s.jar)
        .header("referer", &format!("{}/some/page", auth.url()))
        .json(&json!({"name": "N"}))
        .send()
        .expect(200);
    // Bearer requests carry no cookie: no origin needed.
    auth.client()
        .post("/api/auth/update-user")
        .bearer(&s.bearer)
        .json(&json!({"name": "M"}))
        .send()
        .expect(200);

    // Sign-in with Sec-Fetch-* headers (browsers, Node fetch) needs a trusted Origin.
    let sign_in = |headers: &[(&str, &str)]| {
        let mut req = auth
            .client()
            .post("/api/auth/sign-in/email")
            .json(&json!({"email": s.email(), "password": PASSWORD}));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    sign_in(&[("sec-fetch-mode", "cors")]).expect_error(403, "MISSING_OR_NULL_ORIGIN");
    sign_in(&[
        ("sec-fetch-mode", "cors"),
        ("origin", "http://evil.example"),
    ])
    .expect_error(403, "INVALID_ORIGIN");
    sign_in(&[
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-mode", "navigate"),
    ])
    .expect_error(403, "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED");
    sign_in(&[("sec-fetch-mode", "cors"), ("origin", &auth.url())]).expect(200);
    sign_in(&[("origin", "http://evil.example")]).expect_error(403, "INVALID_ORIGIN");
    sign_in(&[]).expect(200);
}

#[test]
fn bad_requests() {
    let auth = Auth::start();
    let c = auth.client();
    let r = c
        .post("/api/auth/sign-in/email")
        .body("application/json", "{\"email\": ")
        .send();
    r.expect_error(400, "BAD_REQUEST");
    let r = c
        .post("/api/auth/sign-in/email")
        .body("text/plain", "hello")
        .send();
    r.expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    // A body over the limit, declared up front: 413 (read concurrently, since the server may
    // answer before it has read everything).
    let body = format!(
        "{{\"email\":\"a@example.com\",\"password\":\"{}\"}}",
        "x".repeat(4 * 1024 * 1024)
    );
    let head = format!(
        "POST /api/auth/sign-in/email HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let raw = latchkey_e2e::http::raw_exchange(auth.daemon.port(), &head, body.into_bytes());
    assert_eq!(
        latchkey_e2e::http::raw_status(&raw),
        Some(413),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    // Same, streamed without a length (chunked).
    let chunk = format!("{:x}\r\n{}\r\n", 256 * 1024, "x".repeat(256 * 1024));
    let chunked: String = chunk.repeat(16) + "0\r\n\r\n";
    let head = "POST /api/auth/sign-up/email HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let raw = latchkey_e2e::http::raw_exchange(auth.daemon.port(), head, chunked.into_bytes());
    assert_eq!(
        latchkey_e2e::http::raw_status(&raw),
        Some(413),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    for (method, path) in [
        ("GET", "/api/auth/nope"),
        ("GET", "/api/auth/sign-in/email"),
        ("GET", "/api/auth/ok/"),
        ("GET", "/nope"),
        ("DELETE", "/api/auth/get-session"),
    ] {
        let r = c.request(method, path).send();
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        assert!(r.body.is_empty(), "{method} {path}: body {:?}", r.text());
    }
    c.post("/api/auth/get-session")
        .send()
        .expect_error(405, "METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED");
    // Form-encoded sign-in is allowed (docs/compatibility.md#http-conventions).
    let s = auth.new_user();
    let form = format!(
        "email={}&password={}",
        s.email().replace('@', "%40"),
        PASSWORD.replace(' ', "+")
    );
    c.post("/api/auth/sign-in/email")
        .body("application/x-www-form-urlencoded", form)
        .send()
        .expect(200);
}

#[test]
fn get_session_refreshes_after_update_age_and_drops_expired_sessions() {
    let auth = Auth::start();
    let s = auth.new_user();
    // Pretend the session was last refreshed two days ago (expires in 5 d): refresh due.
    auth.db.execute(&format!(
        r#"UPDATE session SET "expiresAt" = now() + interval '5 days' WHERE token = '{}'"#,
        s.token
    ));
    let r = get_session_cookie(&auth, &s.jar);
    r.expect(200);
    let c = r
        .set_cookie(SESSION_COOKIE)
        .expect("refreshed session cookie");
    assert_eq!(c.max_age(), Some(604800));
    assert!(r.header("set-auth-token").is_some());
    let days: f64 = auth.db.query(
        r#"SELECT (extract(epoch FROM "expiresAt" - now()) / 86400)::float8 FROM session WHERE token = $1"#,
        &[&s.token],
    )[0]
        .get(0);
    assert!(days > 6.9, "expiresAt not bumped to 7 days: {days}");
    // A fresh session is not refreshed.
    let r = get_session_cookie(&auth, &s.jar);
    assert!(r.set_cookie(SESSION_COOKIE).is_none(), "{:?}", r.headers);

    // Expired: null, the three cookies cleared, and the row deleted.
    auth.db.execute(&format!(
        r#"UPDATE session SET "expiresAt" = now() - interval '1 minute' WHERE token = '{}'"#,
        s.token
    ));
    let r = get_session_cookie(&auth, &s.jar);
    r.expect(200);
    assert_eq!(r.json(), Value::Null);
    let names: Vec<String> = r
        .set_cookies()
        .into_iter()
        .filter(|c| c.is_removal())
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names,
        [
            SESSION_COOKIE,
            "better-auth.session_data",
            "better-auth.dont_remember"
        ]
    );
    assert_eq!(auth.db.count("SELECT count(*) FROM session"), 0);
}

#[test]
fn list_sessions_requires_a_fresh_session() {
    let auth = Auth::start();
    let s = auth.new_user();
    auth.db.execute(&format!(
        r#"UPDATE session SET "createdAt" = now() - interval '2 days' WHERE token = '{}'"#,
        s.token
    ));
    auth.client()
        .get("/api/auth/list-sessions")
        .bearer(&s.bearer)
        .send()
        .expect_error(403, "SESSION_NOT_FRESH");
}

#[test]
fn remember_me_false_gives_a_browser_session_cookie() {
    let auth = Auth::start();
    let s = auth.new_user();
    let r = auth
        .client()
        .post("/api/auth/sign-in/email")
        .json(&json!({"email": s.email(), "password": PASSWORD, "rememberMe": false}))
        .send();
    r.expect(200);
    let c = r.set_cookie(SESSION_COOKIE).expect("session cookie");
    assert_eq!(c.max_age(), None, "{}", c.raw);
    let dr = r
        .set_cookie("better-auth.dont_remember")
        .expect("dont_remember cookie");
    let v = dr.decoded_value();
    let (val, sig) = v.rsplit_once('.').unwrap();
    assert_eq!(val, "true");
    assert_eq!(sig, jwt::cookie_signature(&auth.secret, "true"));
    let token = r.json()["token"].as_str().unwrap().to_string();
    let hours: f64 = auth.db.query(
        r#"SELECT (extract(epoch FROM "expiresAt" - now()) / 3600)::float8 FROM session WHERE token = $1"#,
        &[&token],
    )[0]
        .get(0);
    assert!((23.0..=24.1).contains(&hours), "expiresAt in {hours} h");
}

#[test]
fn sign_in_records_client_ip_and_user_agent_and_honours_callback_url() {
    let auth = Auth::start();
    let s = auth.new_user();
    let r = auth
        .client()
        .post("/api/auth/sign-in/email")
        .header("x-forwarded-for", "203.0.113.7")
        .header("user-agent", "e2e-agent/1.0")
        .json(&json!({"email": s.email(), "password": PASSWORD, "callbackURL": "/dashboard"}))
        .send();
    r.expect(200);
    let body = r.json();
    assert_eq!(body["redirect"], true);
    assert_eq!(body["url"], "/dashboard");
    assert_eq!(r.header("location"), Some("/dashboard"));
    let token = body["token"].as_str().unwrap().to_string();
    let row = &auth.db.query(
        r#"SELECT "ipAddress", "userAgent" FROM session WHERE token = $1"#,
        &[&token],
    )[0];
    assert_eq!(
        row.get::<_, Option<String>>(0).as_deref(),
        Some("203.0.113.7")
    );
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("e2e-agent/1.0")
    );
    // Two hops: no trusted proxies configured, so no IP.
    let r = auth
        .client()
        .post("/api/auth/sign-in/email")
        .header("x-forwarded-for", "203.0.113.7, 10.0.0.1")
        .json(&json!({"email": s.email(), "password": PASSWORD}))
        .send();
    let token = r.json()["token"].as_str().unwrap().to_string();
    let ip: Option<String> = auth.db.query(
        r#"SELECT "ipAddress" FROM session WHERE token = $1"#,
        &[&token],
    )[0]
    .get(0);
    assert_eq!(ip.as_deref(), Some(""));
    // An untrusted absolute callbackURL is refused.
    auth.client()
        .post("/api/auth/sign-in/email")
        .json(&json!({"email": s.email(), "password": PASSWORD, "callbackURL": "https://evil.example/x"}))
        .send()
        .expect_error(403, "INVALID_CALLBACK_URL");
}

#[test]
fn rate_limit_when_enabled() {
    let auth = Auth::start_with(|s| {
        s.env("LATCHKEY_RATE_LIMIT", "on")
            // A long window: a slow machine must not see the window reset mid-test.
            .env("LATCHKEY_RATE_LIMIT_WINDOW", "600")
    });
    let email = random_email();
    // 3 per 10 s on /sign-in*: three attempts answered, the fourth refused.
    for _ in 0..3 {
        auth.sign_in_resp(&email, PASSWORD)
            .expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    }
    let r = auth.sign_in_resp(&email, PASSWORD);
    r.expect(429);
    assert_eq!(
        r.json()["message"],
        "Too many requests. Please try again later."
    );
    let retry: u64 = r
        .header("x-retry-after")
        .expect("X-Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=600).contains(&retry), "X-Retry-After: {retry}");
    // Other endpoints are not affected.
    auth.client().get("/api/auth/ok").send().expect(200);
}

/// Replicas share one Postgres; the limit is one limit across all of them.
#[test]
fn rate_limit_is_shared_by_replicas() {
    let auth = Auth::start_with(|s| {
        s.env("LATCHKEY_RATE_LIMIT", "on")
            // A long window: a slow machine must not see the window reset mid-test.
            .env("LATCHKEY_RATE_LIMIT_WINDOW", "600")
    });
    let mut spec = auth.daemon.spec.clone();
    spec.port = latchkey_e2e::free_port();
    let replica = latchkey_e2e::daemon::Daemon::start(spec);
    let email = random_email();
    let attempt = |url: &str| {
        latchkey_e2e::http::Client::new(url)
            .post("/api/auth/sign-in/email")
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
    };
    attempt(&auth.url()).expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    attempt(&replica.url()).expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    attempt(&auth.url()).expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    attempt(&replica.url()).expect(429);
    attempt(&auth.url()).expect(429);
}

/// Behind a trusted proxy each client gets its own bucket; from anyone else the header is
/// ignored, so a client cannot dodge the limit by inventing addresses.
#[test]
fn rate_limit_keys_on_forwarded_for_only_from_trusted_proxies() {
    let attempt = |auth: &Auth, xff: &str| {
        auth.client()
            .post("/api/auth/sign-in/email")
            .header("x-forwarded-for", xff)
            .json(&json!({"email": random_email(), "password": PASSWORD}))
            .send()
    };
    let untrusted = Auth::start_with(|s| {
        s.env("LATCHKEY_RATE_LIMIT", "on")
            // A long window: a slow machine must not see the window reset mid-test.
            .env("LATCHKEY_RATE_LIMIT_WINDOW", "600")
    });
    for i in 0..3 {
        attempt(&untrusted, &format!("198.51.100.{i}")).expect(401);
    }
    attempt(&untrusted, "198.51.100.99").expect(429);
    // The operator is told why, once.
    let log = untrusted.daemon.log();
    assert_eq!(
        log.matches("LATCHKEY_TRUSTED_PROXIES is empty").count(),
        1,
        "{log}"
    );

    let proxied = Auth::start_with(|s| {
        s.env("LATCHKEY_RATE_LIMIT", "on")
            .env("LATCHKEY_RATE_LIMIT_WINDOW", "600")
            .env("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32")
    });
    for _ in 0..3 {
        attempt(&proxied, "198.51.100.1").expect(401);
    }
    attempt(&proxied, "198.51.100.1").expect(429);
    attempt(&proxied, "198.51.100.2").expect(401);
}

#[test]
fn list_accounts_verify_password_update_session() {
    let auth = Auth::start();
    let s = auth.new_user();
    let c = auth.client();

    let r = c.get("/api/auth/list-accounts").bearer(&s.bearer).send();
    r.expect(200);
    let accounts = r.json();
    assert_eq!(accounts.as_array().map(Vec::len), Some(1), "{accounts}");
    let account = &accounts[0];
    assert_eq!(account["providerId"], "credential");
    assert_eq!(account["accountId"], s.user["id"]);
    assert_eq!(account["userId"], s.user["id"]);
    assert_eq!(account["scopes"], json!([]));
    assert!(account.get("password").is_none(), "{account}");
    c.get("/api/auth/list-accounts")
        .send()
        .expect_error(401, "UNAUTHORIZED");

    let verify = |password: &str| {
        c.post("/api/auth/verify-password")
            .bearer(&s.bearer)
            .json(&json!({ "password": password }))
            .send()
    };
    let ok = verify(PASSWORD);
    ok.expect(200);
    assert_eq!(ok.json(), json!({"status": true}));
    verify("not the password").expect_error(400, "INVALID_PASSWORD");

    let r = c
        .post("/api/auth/update-session")
        .bearer(&s.bearer)
        .json(&json!({}))
        .send();
    r.expect(400);
    assert_eq!(r.json(), json!({"message": "No fields to update"}));
}

/// A genuine cookie whose session is gone gets 401 and, like Better-Auth, its cookies cleared.
#[test]
fn ended_session_cookie_is_cleared_on_401() {
    let auth = Auth::start();
    let s = auth.new_user();
    auth.db.execute(&format!(
        r#"delete from "session" where "token" = '{}'"#,
        s.token
    ));
    let r = auth.client().get("/api/auth/token").cookies(&s.jar).send();
    r.expect_error(401, "UNAUTHORIZED");
    let cleared = r
        .set_cookie(SESSION_COOKIE)
        .expect("session cookie cleared");
    assert!(cleared.is_removal());
    assert_eq!(r.headers_all("set-cookie").len(), 3);
}

#[test]
fn array_body_is_a_validation_error() {
    let auth = Auth::start();
    auth.client()
        .post("/api/auth/sign-up/email")
        .json(&json!([]))
        .send()
        .expect_error(400, "VALIDATION_ERROR");
}

/// More sign-ins than the hasher can take: the overflow waits at most
/// LATCHKEY_HASH_QUEUE_TIMEOUT, then gets 503 SERVER_BUSY instead of queueing without end;
/// sessions keep being served meanwhile.
#[test]
fn hash_queue_overflow_is_a_503_and_sessions_keep_working() {
    let auth = Auth::start_with(|s| {
        s.env("LATCHKEY_HASH_CONCURRENCY", "1")
            .env("LATCHKEY_HASH_QUEUE_TIMEOUT", "1")
    });
    let s = auth.new_user();
    let url = auth.url();
    // 150 unknown-email sign-ins at once: one hash at a time, each some tens of ms, so well
    // over a second of queued work.
    let flood: Vec<_> = (0..150)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                latchkey_e2e::http::Client::new(&url)
                    .post("/api/auth/sign-in/email")
                    .json(&json!({"email": format!("nobody{i}@example.com"), "password": PASSWORD}))
                    .send()
            })
        })
        .collect();
    // While it runs, a session lookup needs no hash and is answered.
    let r = auth
        .client()
        .get("/api/auth/get-session")
        .bearer(&s.bearer)
        .send();
    r.expect(200);
    assert!(r.json()["session"].is_object());
    let (mut busy, mut refused) = (0, 0);
    for t in flood {
        let r = t.join().unwrap();
        match r.status {
            503 => {
                assert_eq!(r.json()["code"], "SERVER_BUSY", "{}", r.text());
                busy += 1;
            }
            401 => refused += 1,
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert!(busy > 0, "no request was turned away ({refused} answered)");
    assert!(refused > 0, "the hasher answered none");
}
