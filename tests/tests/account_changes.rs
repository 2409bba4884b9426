//! Changing the address of an account and deleting it, end to end: the daemon, its outbox
//! worker, a real SMTP server (aiosmtpd) and the links in the messages it received.

use std::time::Duration;

use latchkey_e2e::random_email;
use latchkey_e2e::smtp::{path_of, query_param, with_mail, SmtpServer};
use latchkey_e2e::stack::{Auth, Session, PASSWORD};
use serde_json::json;

const MAIL_WAIT: Duration = Duration::from_secs(20);

fn verify(auth: &Auth, s: &Session) {
    auth.db.execute(&format!(
        r#"update "user" set "emailVerified" = true where "id" = '{}'"#,
        s.user_id()
    ));
}

fn email_of(auth: &Auth, user_id: &str) -> (String, bool) {
    let rows = auth.db.query(
        r#"select "email", "emailVerified" from "user" where "id" = $1"#,
        &[&user_id],
    );
    (rows[0].get(0), rows[0].get(1))
}

fn audit_count(auth: &Auth, event: &str) -> i64 {
    auth.db.count(&format!(
        r#"select count(*) from "latchkey_audit" where "event" = '{event}'"#
    ))
}

/// The link's path with its `callbackURL` left out (to get the JSON answers).
fn without_callback(link: &str) -> String {
    let token = query_param(link, "token").expect("token in link");
    let path = path_of(link);
    let base = path.split('?').next().unwrap_or_default();
    format!("{base}?token={token}")
}

#[test]
fn a_verified_user_changes_address_in_two_steps() {
    let smtp = SmtpServer::start();
    let auth = Auth::start_with(|s| with_mail(&smtp)(s).env("LATCHKEY_CHANGE_EMAIL", "true"));
    let alice = auth.new_user();
    let bob = auth.new_user();
    verify(&auth, &alice);
    let old = alice.email();
    let new = random_email();

    let resp = auth
        .browser()
        .post("/api/auth/change-email")
        .bearer(&alice.bearer)
        .json(&json!({"newEmail": new.to_uppercase(), "callbackURL": "/email-changed"}))
        .send();
    resp.expect(200);
    assert_eq!(resp.json(), json!({"status": true}));
    assert_eq!(email_of(&auth, &alice.user_id()), (old.clone(), true));

    // Step 1: the old address agrees.
    let first = smtp.wait_for(&old, MAIL_WAIT);
    assert_eq!(
        first.subject,
        "Confirm the new email address of your Acme account"
    );
    assert!(first.text.contains(&new), "the new address is named");
    let link1 = first.link("/api/auth/verify-email");
    assert!(link1.ends_with("&callbackURL=%2Femail-changed"), "{link1}");
    assert!(
        smtp.messages_to(&new).is_empty(),
        "nothing to the new one yet"
    );
    let resp = auth.client().get(&path_of(&link1)).send();
    resp.expect(302);
    assert_eq!(resp.header("location"), Some("/email-changed"));
    assert!(
        resp.set_cookies().is_empty(),
        "no session from a confirmation"
    );
    assert_eq!(email_of(&auth, &alice.user_id()), (old.clone(), true));

    // Step 2: the new address proves itself; only now the row changes.
    let second = smtp.wait_for(&new, MAIL_WAIT);
    assert_eq!(second.subject, "Verify your email address for Acme");
    let link2 = second.link("/api/auth/verify-email");
    assert_ne!(link1, link2);
    // Another user's session cannot finish it.
    let resp = auth
        .client()
        .get(&path_of(&link2))
        .bearer(&bob.bearer)
        .send();
    resp.expect(302);
    assert_eq!(
        resp.header("location"),
        Some("/email-changed?error=INVALID_USER")
    );
    auth.client()
        .get(&without_callback(&link2))
        .bearer(&bob.bearer)
        .send()
        .expect_error(401, "INVALID_USER");
    assert_eq!(email_of(&auth, &alice.user_id()), (old.clone(), true));

    let resp = auth
        .client()
        .get(&path_of(&link2))
        .bearer(&alice.bearer)
        .send();
    resp.expect(302);
    assert_eq!(resp.header("location"), Some("/email-changed"));
    assert_eq!(
        resp.header("set-auth-token"),
        Some(alice.bearer.as_str()),
        "the same session, re-issued"
    );
    assert_eq!(email_of(&auth, &alice.user_id()), (new.clone(), true));

    // Both links are dead now, and the addresses swapped places for sign-in.
    for link in [&link1, &link2] {
        let resp = auth.client().get(&path_of(link)).send();
        assert_eq!(
            resp.header("location"),
            Some("/email-changed?error=INVALID_TOKEN"),
            "{link}"
        );
        auth.client()
            .get(&without_callback(link))
            .send()
            .expect_error(401, "INVALID_TOKEN");
    }
    auth.sign_in_resp(&old, PASSWORD)
        .expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    auth.sign_in(&new, PASSWORD);
    let jwt = auth.jwt(&alice);
    let claims = latchkey_e2e::jwt::decode(&jwt).payload;
    assert_eq!(claims["email"], new.as_str());
    for event in [
        "email_change_requested",
        "email_change_confirmed",
        "email_changed",
    ] {
        assert_eq!(audit_count(&auth, event), 1, "{event}");
    }
    // Exactly the two messages, however long we wait.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(smtp.messages_to(&old).len(), 1);
    assert_eq!(smtp.messages_to(&new).len(), 1);
}

#[test]
fn change_email_refusals_and_the_one_step_flow() {
    let smtp = SmtpServer::start();
    let auth = Auth::start_with(|s| {
        with_mail(&smtp)(s)
            .env("LATCHKEY_CHANGE_EMAIL", "true")
            .env("LATCHKEY_RATE_LIMIT", "on")
    });
    let alice = auth.new_user();
    let bob = auth.new_user();
    let post = |s: &Session, body: serde_json::Value| {
        auth.browser()
            .post("/api/auth/change-email")
            .bearer(&s.bearer)
            .json(&body)
            .send()
    };

    let resp = post(&alice, json!({"newEmail": alice.email().to_uppercase()}));
    resp.expect(400);
    assert_eq!(resp.json(), json!({"message": "Email is the same"}));
    post(&alice, json!({"newEmail": "not an address"})).expect_error(400, "VALIDATION_ERROR");
    post(
        &alice,
        json!({"newEmail": random_email(), "callbackURL": "https://evil.example/x"}),
    )
    .expect_error(403, "INVALID_CALLBACK_URL");

    // An address with an account: the same answer, nothing sent, nothing changed.
    std::thread::sleep(Duration::from_secs(10)); // a fresh rate-limit window
    let resp = post(&bob, json!({"newEmail": alice.email()}));
    resp.expect(200);
    assert_eq!(resp.json(), json!({"status": true}));

    // An unverified user: one link, to the new address; emailVerified stays false, as in
    // Better-Auth (verification is its own step).
    let new = random_email();
    post(&alice, json!({"newEmail": new})).expect(200);
    let mail = smtp.wait_for(&new, MAIL_WAIT);
    let link = mail.link("/api/auth/verify-email");
    assert!(link.ends_with("&callbackURL=%2F"), "{link}");
    let resp = auth.client().get(&without_callback(&link)).send();
    resp.expect(200);
    let body = resp.json();
    assert_eq!(body["status"], true);
    assert_eq!(body["user"]["email"], new.as_str());
    assert_eq!(body["user"]["emailVerified"], false);
    assert!(resp.set_cookies().is_empty(), "no session without one");
    assert_eq!(email_of(&auth, &alice.user_id()), (new.clone(), false));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        smtp.messages_to(&alice.email()).is_empty() && smtp.messages_to(&bob.email()).is_empty(),
        "the taken address got nothing, and neither did its owner"
    );

    // The new address was registered by someone else before the link was opened.
    std::thread::sleep(Duration::from_secs(10));
    let carol = auth.new_user();
    let wanted = random_email();
    post(&carol, json!({"newEmail": wanted, "callbackURL": "/done"})).expect(200);
    let link = smtp
        .wait_for(&wanted, MAIL_WAIT)
        .link("/api/auth/verify-email");
    auth.sign_up("Squatter", &wanted, PASSWORD);
    auth.client()
        .get(&without_callback(&link))
        .send()
        .expect_error(422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL");
    let resp = auth.client().get(&path_of(&link)).send();
    assert_eq!(
        resp.header("location"),
        Some("/done?error=USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")
    );
    assert_eq!(email_of(&auth, &carol.user_id()).0, carol.email());

    // Three per ten seconds, counted before the session is looked at.
    std::thread::sleep(Duration::from_secs(10));
    for _ in 0..3 {
        auth.browser()
            .post("/api/auth/change-email")
            .json(&json!({"newEmail": random_email()}))
            .send()
            .expect(401);
    }
    let resp = post(&bob, json!({"newEmail": random_email()}));
    resp.expect(429);
    assert_eq!(resp.header("x-retry-after"), Some("10"));
}

#[test]
fn change_email_is_off_unless_enabled_and_needs_mail() {
    let smtp = SmtpServer::start();
    let off = Auth::start_with(with_mail(&smtp));
    let alice = off.new_user();
    off.browser()
        .post("/api/auth/change-email")
        .bearer(&alice.bearer)
        .json(&json!({"newEmail": random_email()}))
        .send()
        .expect_error(400, "CHANGE_EMAIL_DISABLED");
    let no_mail = Auth::start_with(|s| s.env("LATCHKEY_CHANGE_EMAIL", "true"));
    let bob = no_mail.new_user();
    let resp = no_mail
        .browser()
        .post("/api/auth/change-email")
        .bearer(&bob.bearer)
        .json(&json!({"newEmail": random_email()}))
        .send();
    resp.expect(400);
    assert_eq!(
        resp.json(),
        json!({"message": "Verification email isn't enabled"})
    );
    no_mail
        .browser()
        .post("/api/auth/change-email")
        .json(&json!({"newEmail": random_email()}))
        .send()
        .expect(401);
}

#[test]
fn delete_user_with_a_mailed_confirmation() {
    let smtp = SmtpServer::start();
    let auth = Auth::start_with(|s| with_mail(&smtp)(s).env("LATCHKEY_DELETE_USER", "true"));
    let alice = auth.new_user();
    let other_device = auth.sign_in(&alice.email(), PASSWORD);
    let bob = auth.new_user();
    let delete = |s: &Session, body: serde_json::Value| {
        auth.browser()
            .post("/api/auth/delete-user")
            .bearer(&s.bearer)
            .json(&body)
            .send()
    };

    delete(&alice, json!({"password": "wrong password!"})).expect_error(400, "INVALID_PASSWORD");
    delete(&alice, json!({"callbackURL": "https://evil.example/"}))
        .expect_error(403, "INVALID_CALLBACK_URL");
    // The right password does not skip the mail.
    let resp = delete(
        &alice,
        json!({"callbackURL": "/goodbye", "password": PASSWORD}),
    );
    resp.expect(200);
    assert_eq!(
        resp.json(),
        json!({"success": true, "message": "Verification email sent"})
    );
    let rows = auth.db.query(
        r#"select "identifier", "value", extract(epoch from "expiresAt" - "createdAt")::float8
           from "verification" where "identifier" like 'delete-account-%'"#,
        &[],
    );
    assert_eq!(rows.len(), 1);
    let identifier: String = rows[0].get(0);
    let token = identifier.trim_start_matches("delete-account-").to_string();
    assert_eq!(token.len(), 32);
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
    assert_eq!(rows[0].get::<_, String>(1), alice.user_id());
    assert_eq!(rows[0].get::<_, f64>(2), 86_400.0);

    let mail = smtp.wait_for(&alice.email(), MAIL_WAIT);
    assert_eq!(mail.subject, "Confirm the deletion of your Acme account");
    let link = mail.link("/api/auth/delete-user/callback");
    assert_eq!(
        link,
        format!(
            "{}/api/auth/delete-user/callback?token={token}&callbackURL=%2Fgoodbye",
            auth.url()
        )
    );
    let path = path_of(&link);

    // Signed out, signed in as someone else, a wrong token, an untrusted callback: refused,
    // and the row is still there.
    auth.client()
        .get(&path)
        .send()
        .expect_error(404, "FAILED_TO_GET_USER_INFO");
    auth.client()
        .get(&path)
        .bearer(&bob.bearer)
        .send()
        .expect_error(404, "INVALID_TOKEN");
    auth.client()
        .get("/api/auth/delete-user/callback?token=0000&callbackURL=%2Fgoodbye")
        .bearer(&alice.bearer)
        .send()
        .expect_error(404, "INVALID_TOKEN");
    auth.client()
        .get(&format!(
            "/api/auth/delete-user/callback?token={token}&callbackURL=https%3A%2F%2Fevil.example"
        ))
        .bearer(&alice.bearer)
        .send()
        .expect_error(403, "INVALID_CALLBACK_URL");
    assert_eq!(
        auth.db.count(
            r#"select count(*) from "verification" where "identifier" like 'delete-account-%'"#
        ),
        1
    );
    assert_eq!(auth.db.count(r#"select count(*) from "user""#), 2);

    let resp = auth.client().get(&path).bearer(&alice.bearer).send();
    resp.expect(302);
    assert_eq!(resp.header("location"), Some("/goodbye"));
    let removed: Vec<String> = resp
        .set_cookies()
        .iter()
        .filter(|c| c.is_removal())
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(
        removed,
        [
            "better-auth.session_token",
            "better-auth.session_data",
            "better-auth.dont_remember"
        ]
    );
    let id = alice.user_id();
    for (table, column) in [
        ("user", "id"),
        ("session", "userId"),
        ("account", "userId"),
        ("verification", "value"),
    ] {
        let n = auth.db.query(
            &format!(r#"select count(*) from "{table}" where "{column}" = $1"#),
            &[&id],
        )[0]
        .get::<_, i64>(0);
        assert_eq!(n, 0, "{table} rows of the deleted user");
    }
    let resp = auth
        .client()
        .get("/api/auth/get-session")
        .bearer(&other_device.bearer)
        .send();
    resp.expect(200);
    assert_eq!(
        resp.json(),
        serde_json::Value::Null,
        "the other device is out"
    );
    assert_eq!(audit_count(&auth, "user_deletion_requested"), 1);
    assert_eq!(audit_count(&auth, "user_deleted"), 1);
    // Bob is untouched.
    auth.client()
        .get("/api/auth/get-session")
        .bearer(&bob.bearer)
        .send()
        .expect(200);
}

#[test]
fn delete_user_with_the_token_in_the_body() {
    let smtp = SmtpServer::start();
    let auth = Auth::start_with(|s| with_mail(&smtp)(s).env("LATCHKEY_DELETE_USER", "true"));
    let carol = auth.new_user();
    let dave = auth.new_user();
    let delete = |s: &Session, body: serde_json::Value| {
        auth.browser()
            .post("/api/auth/delete-user")
            .bearer(&s.bearer)
            .json(&body)
            .send()
    };
    let token_of = |s: &Session| {
        delete(s, json!({})).expect(200);
        let link = smtp
            .wait_for(&s.email(), MAIL_WAIT)
            .link("/api/auth/delete-user/callback");
        query_param(&link, "token").unwrap()
    };
    // Someone else's token is used up, and deletes nobody.
    let carols = token_of(&carol);
    delete(&dave, json!({"token": carols})).expect_error(404, "INVALID_TOKEN");
    assert_eq!(auth.db.count(r#"select count(*) from "verification""#), 0);
    assert_eq!(auth.db.count(r#"select count(*) from "user""#), 2);

    let daves = token_of(&dave);
    let resp = delete(&dave, json!({"token": daves}));
    resp.expect(200);
    assert_eq!(
        resp.json(),
        json!({"success": true, "message": "User deleted"})
    );
    assert_eq!(
        resp.set_cookies().iter().filter(|c| c.is_removal()).count(),
        3
    );
    assert_eq!(auth.db.count(r#"select count(*) from "user""#), 1);
    auth.sign_in_resp(&dave.email(), PASSWORD)
        .expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
}

#[test]
fn delete_user_without_mail_takes_a_fresh_session_or_the_password() {
    let auth = Auth::start_with(|s| s.env("LATCHKEY_DELETE_USER", "true"));
    let fresh = auth.new_user();
    let stale = auth.new_user();
    auth.db.execute(&format!(
        r#"update "session" set "createdAt" = now() - interval '2 days' where "userId" = '{}'"#,
        stale.user_id()
    ));
    let delete = |s: &Session, body: serde_json::Value| {
        auth.browser()
            .post("/api/auth/delete-user")
            .bearer(&s.bearer)
            .json(&body)
            .send()
    };
    delete(&stale, json!({})).expect_error(400, "SESSION_EXPIRED");
    delete(&stale, json!({"password": "wrong password!"})).expect_error(400, "INVALID_PASSWORD");
    delete(&stale, json!({"password": PASSWORD})).expect(200);
    let resp = delete(&fresh, json!({}));
    resp.expect(200);
    assert_eq!(
        resp.json(),
        json!({"success": true, "message": "User deleted"})
    );
    assert_eq!(auth.db.count(r#"select count(*) from "user""#), 0);
    assert_eq!(auth.db.count(r#"select count(*) from "session""#), 0);
    auth.browser()
        .post("/api/auth/delete-user")
        .json(&json!({}))
        .send()
        .expect(401);
}

#[test]
fn delete_user_is_off_unless_enabled() {
    let auth = Auth::start();
    let alice = auth.new_user();
    let resp = auth
        .browser()
        .post("/api/auth/delete-user")
        .bearer(&alice.bearer)
        .json(&json!({"password": PASSWORD}))
        .send();
    resp.expect(404);
    assert!(resp.text().is_empty());
    auth.client()
        .get("/api/auth/delete-user/callback?token=x")
        .bearer(&alice.bearer)
        .send()
        .expect_error(404, "NOT_FOUND");
    assert_eq!(auth.db.count(r#"select count(*) from "user""#), 1);
}
