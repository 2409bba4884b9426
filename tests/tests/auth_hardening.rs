//! Findings of an outside audit against latchkey-auth, each attacked over a real socket: NUL
//! characters in stored fields, and answers carrying credentials without `no-store`.

use latchkey_e2e::random_email;
use latchkey_e2e::stack::{Auth, PASSWORD};
use serde_json::json;

/// Postgres `text` cannot hold NUL; it used to surface as a 500 (SQLSTATE 22021).
#[test]
fn nul_characters_are_a_validation_error_not_a_500() {
    let auth = Auth::start();
    let email = random_email();
    let r = auth
        .client()
        .post("/api/auth/sign-up/email")
        .json(&json!({"name": "a\u{0}b", "email": email, "password": PASSWORD}))
        .send();
    r.expect_error(400, "VALIDATION_ERROR");
    assert!(r.text().contains("NUL"), "{}", r.text());
    assert_eq!(
        auth.db
            .query(r#"select count(*) from "user" where email = $1"#, &[&email])[0]
            .get::<_, i64>(0),
        0
    );
    let s = auth.new_user();
    for body in [json!({"image": "x\u{0}"}), json!({"name": "\u{0}"})] {
        auth.client()
            .post("/api/auth/update-user")
            .bearer(&s.bearer)
            .json(&body)
            .send()
            .expect_error(400, "VALIDATION_ERROR");
    }
    auth.client()
        .post("/api/auth/revoke-session")
        .bearer(&s.bearer)
        .json(&json!({"token": "\u{0}"}))
        .send()
        .expect_error(400, "VALIDATION_ERROR");
    // A password may hold any character: only its hash is stored.
    let odd = format!("{PASSWORD}\u{0}");
    auth.sign_up("N", &random_email(), &odd);
}

/// Sign-in, sign-up, /token and list-sessions answers carry session tokens or JWTs: no cache
/// on the way may keep them.
#[test]
fn answers_with_credentials_are_not_cacheable() {
    let auth = Auth::start();
    let email = random_email();
    let up = auth.sign_up_resp("C", &email, PASSWORD);
    up.expect(200);
    assert_eq!(up.header("cache-control"), Some("no-store"));
    let r = auth.sign_in_resp(&email, PASSWORD);
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let s = latchkey_e2e::Session::from_resp(r);
    for path in [
        "/api/auth/token",
        "/api/auth/list-sessions",
        "/api/auth/get-session",
    ] {
        let r = auth.client().get(path).bearer(&s.bearer).send();
        r.expect(200);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
}
