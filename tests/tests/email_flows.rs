//! Email verification and password reset end to end: the daemon, its outbox worker, a real
//! SMTP server (aiosmtpd, tests/src/smtp.rs) and the links in the messages it received.

use std::time::{Duration, Instant};

use latchkey_e2e::daemon::Daemon;
use latchkey_e2e::smtp::{path_of, query_param, with_mail, SmtpServer};
use latchkey_e2e::stack::{Auth, PASSWORD, TRUSTED_ORIGIN};
use latchkey_e2e::{cluster, free_port, random_email, random_string, Client};
use serde_json::json;

const MAIL_WAIT: Duration = Duration::from_secs(20);

#[test]
fn sign_up_with_verification_required_then_the_link_signs_in() {
    let smtp = SmtpServer::start();
    let auth = Auth::start_with(|s| {
        with_mail(&smtp)(s)
            .env("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true")
            .env("LATCHKEY_AUTO_SIGN_IN_AFTER_VERIFICATION", "true")
    });
    let email = random_email();
    let resp = auth
        .browser()
        .post("/api/auth/sign-up/email")
        .json(&json!({"name": "Alice <b>", "email": email, "password": PASSWORD, "callbackURL": "/welcome"}))
        .send();
    resp.expect(200);
    let body = resp.json();
    assert_eq!(body["token"], serde_json::Value::Null);
    assert_eq!(body["user"]["emailVerified"], false);
    assert!(
        resp.set_cookies().is_empty(),
        "no session before verification"
    );
    assert!(resp.header("set-auth-token").is_none());
    assert_eq!(
        auth.db.count(r#"select count(*) from "session""#),
        0,
        "no session row"
    );
    assert_eq!(auth.db.count(r#"select count(*) from "verification""#), 0);

    // The right password answers 403 only after it checked out; a wrong one 401.
    auth.sign_in_resp(&email, "wrong password!")
        .expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    auth.sign_in_resp(&email, PASSWORD)
        .expect_error(403, "EMAIL_NOT_VERIFIED");
    // Both refusals are in the audit trail, each with its reason.
    let reasons = auth.db.query(
        r#"select "detail"->>'reason' from "latchkey_audit"
           where "event" = 'sign_in_failed' order by "at""#,
        &[],
    );
    let reasons: Vec<String> = reasons.iter().map(|r| r.get(0)).collect();
    assert_eq!(reasons, ["invalid_credentials", "email_not_verified"]);

    let mail = smtp.wait_for(&email, MAIL_WAIT);
    assert_eq!(mail.subject, "Verify your email address for Acme");
    assert!(mail.from.contains("no-reply@acme.example"), "{}", mail.from);
    assert!(
        mail.html.contains("Alice &lt;b&gt;"),
        "names are escaped in HTML"
    );
    let link = mail.link("/api/auth/verify-email");
    assert!(
        link.starts_with(&format!("{}/api/auth/verify-email?token=ey", auth.url())),
        "{link}"
    );
    assert_eq!(
        query_param(&link, "callbackURL").as_deref(),
        Some("/welcome")
    );
    assert!(link.ends_with("&callbackURL=%2Fwelcome"), "{link}");

    let resp = auth.client().get(&path_of(&link)).send();
    resp.expect(302);
    assert_eq!(
        resp.header("location"),
        Some("/welcome"),
        "relative stays relative"
    );
    assert!(resp.text().is_empty());
    assert!(resp.header("set-auth-token").is_some(), "auto sign-in");
    let user = auth.db.query(
        r#"select "emailVerified" from "user" where "email" = $1"#,
        &[&email],
    );
    assert!(user[0].get::<_, bool>(0));
    assert_eq!(auth.db.count(r#"select count(*) from "session""#), 1);
    assert_eq!(
        auth.db
            .count(r#"select count(*) from "latchkey_audit" where "event" = 'email_verified'"#),
        1
    );
    // A second click: already verified, still fine (stateless tokens stay valid until exp).
    let again = auth.client().get(&path_of(&link)).send();
    again.expect(302);
    assert_eq!(again.header("location"), Some("/welcome"));
    auth.sign_in(&email, PASSWORD);

    // The bodies of sent mail are gone from the outbox: they held a credential.
    assert_eq!(
        auth.db.count(
            r#"select count(*) from "latchkey_outbox" where "sentAt" is not null and "textBody" = ''"#
        ),
        1
    );
    // Exactly one message, however long we wait.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(smtp.messages_to(&email).len(), 1);
}

#[test]
fn verify_email_errors_and_untrusted_callbacks() {
    let smtp = SmtpServer::start();
    let auth = Auth::start_with(with_mail(&smtp));
    let alice = auth.new_user();
    let bob = auth.new_user();
    let resp = auth
        .browser()
        .post("/api/auth/send-verification-email")
        .json(&json!({"email": alice.email(), "callbackURL": "/done?x=1"}))
        .send();
    resp.expect(200);
    assert_eq!(resp.json(), json!({"status": true}));
    let link = smtp
        .wait_for(&alice.email(), MAIL_WAIT)
        .link("verify-email");
    let token = query_param(&link, "token").unwrap();

    // Untrusted callback: 403 before the token is looked at.
    auth.client()
        .get(&format!(
            "/api/auth/verify-email?token={token}&callbackURL=https%3A%2F%2Fevil.example%2F"
        ))
        .send()
        .expect_error(403, "INVALID_CALLBACK_URL");
    auth.client()
        .get("/api/auth/verify-email")
        .send()
        .expect_error(400, "VALIDATION_ERROR");
    // Forged: the signature of another secret.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[2] = "AAAA".into();
    let forged = parts.join(".");
    auth.client()
        .get(&format!("/api/auth/verify-email?token={forged}"))
        .send()
        .expect_error(401, "INVALID_TOKEN");
    let resp = auth
        .client()
        .get(&format!(
            "/api/auth/verify-email?token={forged}&callbackURL=%2Fdone%3Fx%3D1"
        ))
        .send();
    resp.expect(302);
    assert_eq!(
        resp.header("location"),
        Some("/done?x=1&error=INVALID_TOKEN")
    );
    // Expired and other-user tokens, signed with the daemon's secret.
    let now = chrono_now();
    let expired = sign(
        &auth.secret,
        &alice.email(),
        &alice.user_id(),
        now - 7200,
        now - 10,
    );
    auth.client()
        .get(&format!("/api/auth/verify-email?token={expired}"))
        .send()
        .expect_error(401, "TOKEN_EXPIRED");
    let resp = auth
        .client()
        .get(&format!(
            "/api/auth/verify-email?token={expired}&callbackURL=%2Fv"
        ))
        .send();
    assert_eq!(resp.header("location"), Some("/v?error=TOKEN_EXPIRED"));
    let other_user = sign(&auth.secret, &alice.email(), &bob.user_id(), now, now + 600);
    auth.client()
        .get(&format!("/api/auth/verify-email?token={other_user}"))
        .send()
        .expect_error(401, "INVALID_TOKEN");
    let nobody = sign(
        &auth.secret,
        "nobody@example.com",
        &bob.user_id(),
        now,
        now + 600,
    );
    auth.client()
        .get(&format!("/api/auth/verify-email?token={nobody}"))
        .send()
        .expect_error(401, "USER_NOT_FOUND");
    assert_eq!(
        auth.db
            .count(r#"select count(*) from "user" where "emailVerified""#),
        0,
        "no error verified anybody"
    );
    // The real link, as JSON without callbackURL.
    let resp = auth
        .client()
        .get(&format!("/api/auth/verify-email?token={token}"))
        .send();
    resp.expect(200);
    assert_eq!(resp.json(), json!({"status": true, "user": null}));
    assert!(
        resp.header("set-auth-token").is_none(),
        "auto sign-in is off"
    );

    // With a session: mismatch and already verified.
    auth.client()
        .post("/api/auth/send-verification-email")
        .bearer(&bob.bearer)
        .json(&json!({"email": alice.email()}))
        .send()
        .expect_error(400, "EMAIL_MISMATCH");
    auth.client()
        .post("/api/auth/send-verification-email")
        .bearer(&alice.bearer)
        .json(&json!({"email": alice.email()}))
        .send()
        .expect_error(400, "EMAIL_ALREADY_VERIFIED");
    auth.client()
        .post("/api/auth/send-verification-email")
        .json(&json!({"email": bob.email(), "callbackURL": "https://evil.example/x"}))
        .send()
        .expect_error(403, "INVALID_CALLBACK_URL");
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A verification token as Better-Auth signs it.
fn sign(secret: &str, email: &str, user_id: &str, iat: i64, exp: i64) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(
        format!(r#"{{"email":"{email}","userId":"{user_id}","iat":{iat},"exp":{exp}}}"#).as_bytes(),
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{head}.{payload}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{head}.{payload}.{sig}")
}

#[test]
fn password_reset_revokes_sessions_and_is_single_use() {
    let smtp = SmtpServer::start();
    let auth = Auth::start_with(|s| {
        with_mail(&smtp)(s).env("LATCHKEY_REVOKE_SESSIONS_ON_PASSWORD_RESET", "true")
    });
    let alice = auth.new_user();
    let other = auth.sign_in(&alice.email(), PASSWORD);
    let bob = auth.new_user();
    assert_eq!(auth.db.count(r#"select count(*) from "session""#), 3);

    auth.client()
        .post("/api/auth/request-password-reset")
        .json(&json!({"email": alice.email(), "redirectTo": "https://evil.example/reset"}))
        .send()
        .expect_error(403, "INVALID_REDIRECT_URL");
    let resp = auth
        .client()
        .post("/api/auth/request-password-reset")
        .json(&json!({"email": alice.email(), "redirectTo": "/reset?x=1"}))
        .send();
    resp.expect(200);
    assert_eq!(
        resp.json(),
        json!({"status": true, "message": "If this email exists in our system, check your email for the reset link"})
    );
    let rows = auth.db.query(
        r#"select "identifier", "value", extract(epoch from "expiresAt" - "createdAt")::float8 from "verification""#,
        &[],
    );
    assert_eq!(rows.len(), 1);
    let identifier: String = rows[0].get(0);
    let token = identifier
        .strip_prefix("reset-password:")
        .expect(&identifier)
        .to_string();
    assert_eq!(token.len(), 24);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(rows[0].get::<_, String>(1), alice.user_id());
    assert_eq!(rows[0].get::<_, f64>(2), 3600.0);

    let mail = smtp.wait_for(&alice.email(), MAIL_WAIT);
    assert_eq!(mail.subject, "Reset your Acme password");
    let link = mail.link("/api/auth/reset-password/");
    assert_eq!(
        link,
        format!(
            "{}/api/auth/reset-password/{token}?callbackURL=%2Freset%3Fx%3D1",
            auth.url()
        )
    );
    // The link redirects to the app, made absolute, the token added to its query.
    let resp = auth.client().get(&path_of(&link)).send();
    resp.expect(302);
    assert_eq!(
        resp.header("location").unwrap(),
        format!("{}/reset?x=1&token={token}", auth.url())
    );
    let resp = auth
        .client()
        .get("/api/auth/reset-password/nope?callbackURL=%2Freset")
        .send();
    assert_eq!(
        resp.header("location").unwrap(),
        format!("{}/reset?error=INVALID_TOKEN", auth.url())
    );
    auth.client()
        .get(&format!("/api/auth/reset-password/{token}"))
        .send()
        .expect_error(400, "VALIDATION_ERROR");
    auth.client()
        .get(&format!(
            "/api/auth/reset-password/{token}?callbackURL=https%3A%2F%2Fevil.example"
        ))
        .send()
        .expect_error(403, "INVALID_CALLBACK_URL");

    // Too short: refused without using up the token.
    auth.client()
        .post("/api/auth/reset-password")
        .json(&json!({"newPassword": "short", "token": token}))
        .send()
        .expect_error(400, "PASSWORD_TOO_SHORT");
    auth.client()
        .post("/api/auth/reset-password")
        .json(&json!({"newPassword": "a new password", "token": "forged-token-xxxxxxxxxxx"}))
        .send()
        .expect_error(400, "INVALID_TOKEN");
    let resp = auth
        .client()
        .post("/api/auth/reset-password")
        .json(&json!({"newPassword": "a new password", "token": token}))
        .send();
    resp.expect(200);
    assert_eq!(resp.json(), json!({"status": true}));
    assert!(resp.set_cookies().is_empty(), "no session from a reset");
    // Alice's sessions are gone, Bob's is not; the old password no longer works.
    assert_eq!(auth.db.count(r#"select count(*) from "session""#), 1);
    auth.client()
        .get("/api/auth/get-session")
        .bearer(&other.bearer)
        .send()
        .expect(200);
    assert_eq!(
        auth.client()
            .get("/api/auth/get-session")
            .bearer(&other.bearer)
            .send()
            .json(),
        serde_json::Value::Null
    );
    auth.client()
        .get("/api/auth/get-session")
        .bearer(&bob.bearer)
        .send()
        .expect(200);
    auth.sign_in_resp(&alice.email(), PASSWORD)
        .expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    auth.sign_in(&alice.email(), "a new password");
    // Reused: refused.
    auth.client()
        .post("/api/auth/reset-password")
        .json(&json!({"newPassword": "another password", "token": token}))
        .send()
        .expect_error(400, "INVALID_TOKEN");
    assert_eq!(auth.db.count(r#"select count(*) from "verification""#), 0);
    assert_eq!(
        auth.db.count(
            r#"select count(*) from "latchkey_audit" where "event" in ('password_reset_requested', 'password_reset')"#
        ),
        2
    );

    // An expired row is refused (the link redirects with an error, the reset is 400).
    let resp = auth
        .client()
        .post("/api/auth/request-password-reset")
        .json(&json!({"email": bob.email()}))
        .send();
    resp.expect(200);
    let link = smtp
        .wait_for(&bob.email(), MAIL_WAIT)
        .link("reset-password");
    assert!(link.ends_with("?callbackURL="), "{link}");
    auth.db
        .execute(r#"update "verification" set "expiresAt" = now() - interval '1 second'"#);
    let bob_token = link
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    auth.client()
        .post("/api/auth/reset-password")
        .json(&json!({"newPassword": "a new password", "token": bob_token}))
        .send()
        .expect_error(400, "INVALID_TOKEN");
    // Another user's token cannot reset Alice: it resets its own owner only.
    assert_eq!(smtp.messages().len(), 2);
}

#[test]
fn unknown_addresses_get_the_same_answer_and_no_mail() {
    let smtp = SmtpServer::start();
    let auth = Auth::start_with(with_mail(&smtp));
    let alice = auth.new_user();
    let ask = |email: &str| {
        auth.client()
            .post("/api/auth/request-password-reset")
            .json(&json!({"email": email}))
            .send()
    };
    let known = ask(&alice.email());
    let unknown = ask("nobody-here@example.com");
    known.expect(200);
    unknown.expect(200);
    assert_eq!(known.text(), unknown.text());
    let names = |r: &latchkey_e2e::Resp| {
        let mut h: Vec<String> = r
            .headers
            .iter()
            .map(|(k, _)| k.to_string())
            .filter(|k| k != "x-request-id" && k != "date")
            .collect();
        h.sort();
        h
    };
    assert_eq!(names(&known), names(&unknown));
    smtp.wait_for(&alice.email(), MAIL_WAIT);
    let unknown_verification = auth
        .client()
        .post("/api/auth/send-verification-email")
        .json(&json!({"email": "nobody-here@example.com"}))
        .send();
    unknown_verification.expect(200);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(smtp.messages().len(), 1, "only Alice got mail");
    // Nothing of the decoys is left behind.
    assert_eq!(auth.db.count(r#"select count(*) from "verification""#), 1);
    assert_eq!(
        auth.db.count(r#"select count(*) from "latchkey_outbox""#),
        1
    );
}

#[test]
fn without_a_transport_the_endpoints_answer_as_better_auth_without_callbacks() {
    let auth = Auth::start();
    let alice = auth.new_user();
    auth.client()
        .post("/api/auth/send-verification-email")
        .json(&json!({"email": alice.email()}))
        .send()
        .expect_error(400, "VERIFICATION_EMAIL_NOT_ENABLED");
    auth.client()
        .post("/api/auth/request-password-reset")
        .json(&json!({"email": alice.email()}))
        .send()
        .expect_error(400, "RESET_PASSWORD_DISABLED");
}

#[test]
fn mail_server_down_then_up_requests_stay_fast_and_the_message_arrives_once() {
    let mut smtp = SmtpServer::start();
    let auth = Auth::start_with(with_mail(&smtp));
    let alice = auth.new_user();
    smtp.down();
    let started = Instant::now();
    let resp = auth
        .client()
        .post("/api/auth/request-password-reset")
        .json(&json!({"email": alice.email()}))
        .send();
    resp.expect(200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the request waited for the mail server: {:?}",
        started.elapsed()
    );
    // The worker tries, fails and records it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while auth
        .db
        .count(r#"select count(*) from "latchkey_outbox" where "lastError" is not null"#)
        == 0
    {
        assert!(Instant::now() < deadline, "no failed attempt recorded");
        std::thread::sleep(Duration::from_millis(100));
    }
    smtp.up();
    let mail = smtp.wait_for(&alice.email(), Duration::from_secs(40));
    assert!(mail.text.contains("/api/auth/reset-password/"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.messages_to(&alice.email()).len(), 1, "exactly once");
    let rows = auth.db.query(
        r#"select "attempts", "sentAt" is not null from "latchkey_outbox""#,
        &[],
    );
    assert!(rows[0].get::<_, i32>(0) >= 2);
    assert!(rows[0].get::<_, bool>(1));
    assert!(auth.daemon.log().contains("mail not sent, will retry"));
}

#[test]
fn three_replicas_one_outbox_every_message_once() {
    let smtp = SmtpServer::start();
    let db = cluster().create_db();
    let secret = format!("e2e-{}", random_string(40));
    let replicas: Vec<Daemon> = (0..3)
        .map(|_| {
            let spec = with_mail(&smtp)(Auth::spec(&db, &secret, free_port()));
            std::thread::spawn(move || Daemon::start(spec))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("replica start"))
        .collect();
    // Queue messages through every replica, and some straight into the table (as if written
    // by a replica that died before sending).
    let mut emails = Vec::new();
    for (i, r) in replicas.iter().cycle().take(12).enumerate() {
        let email = random_email();
        let resp = Client::new(&r.url())
            .post("/api/auth/sign-up/email")
            .json(&json!({"name": format!("u{i}"), "email": email, "password": PASSWORD}))
            .send();
        resp.expect(200);
        let resp = Client::new(&r.url())
            .post("/api/auth/send-verification-email")
            .json(&json!({"email": email}))
            .send();
        resp.expect(200);
        emails.push(email);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while smtp.messages().len() < emails.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of {} messages",
            smtp.messages().len(),
            emails.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    for email in &emails {
        assert_eq!(smtp.messages_to(email).len(), 1, "{email}");
    }
    assert_eq!(smtp.messages().len(), emails.len());
    assert_eq!(
        db.count(r#"select count(*) from "latchkey_outbox" where "sentAt" is null"#),
        0
    );
    let _ = TRUSTED_ORIGIN;
}

/// How long request-password-reset takes for a known and an unknown address, alternating
/// (BENCHMARKS.md): `cargo test -p latchkey-e2e --test email_flows -- --ignored --nocapture`.
#[test]
#[ignore]
fn reset_timing_known_vs_unknown() {
    let smtp = SmtpServer::start();
    let auth = Auth::start_with(with_mail(&smtp));
    let alice = auth.new_user();
    let client = auth.client();
    let ask = |email: &str| {
        let started = Instant::now();
        let resp = client
            .post("/api/auth/request-password-reset")
            .json(&json!({"email": email}))
            .send();
        let took = started.elapsed();
        resp.expect(200);
        (took, resp.body)
    };
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    for _ in 0..20 {
        ask(&alice.email());
        ask("warm-up@example.com");
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let stranger = format!("stranger-{i}@example.com");
        let (a, body_a) = ask(&alice.email());
        let (b, body_b) = ask(&stranger);
        assert_eq!(body_a, body_b);
        known.push(a.as_secs_f64() * 1000.0);
        unknown.push(b.as_secs_f64() * 1000.0);
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        (mean, v[v.len() / 2], v[v.len() * 9 / 10])
    };
    let (km, k50, k90) = stats(&mut known);
    let (um, u50, u90) = stats(&mut unknown);
    println!("request-password-reset, {rounds} rounds alternating, ms (mean / median / p90):");
    println!("  known   {km:.2} / {k50:.2} / {k90:.2}");
    println!("  unknown {um:.2} / {u50:.2} / {u90:.2}");
}

/// The SMTP URL is a secret and plain SMTP is for loopback relays only: both checked at start.
#[test]
fn smtp_settings_are_checked_at_start_up() {
    let base = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut env = vec![
            ("BETTER_AUTH_SECRET".to_string(), "s".repeat(40)),
            (
                "DATABASE_URL".to_string(),
                "postgres://nobody@127.0.0.1:1/none".to_string(),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    };
    let check = |env: Vec<(String, String)>| {
        latchkey_e2e::run_tool("latchkey-auth", &["check-config"], &env)
    };
    let out = check(base(&[
        ("LATCHKEY_MAIL_TRANSPORT", "smtp"),
        (
            "LATCHKEY_SMTP_URL",
            "smtp://bob:hunter2@mail.example.com?tls=none",
        ),
    ]));
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("LATCHKEY_SMTP_URL") && out.stderr.contains("loopback"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains("hunter2"),
        "the password is never printed: {out:?}"
    );
    let out = check(base(&[("LATCHKEY_MAIL_TRANSPORT", "smtp")]));
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("LATCHKEY_SMTP_URL"), "{out:?}");
    let out = check(base(&[("LATCHKEY_MAIL_TRANSPORT", "carrier-pigeon")]));
    assert_eq!(out.code(), Some(2), "{out:?}");
    // From a file (LATCHKEY_SMTP_URL_FILE), as systemd credentials and secret stores hand it.
    let dir = std::env::temp_dir().join(format!("latchkey-smtp-{}", random_string(8)));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("smtp-url");
    std::fs::write(&file, "smtps://bob:hunter2@mail.example.com\n").unwrap();
    let out = check(base(&[
        ("LATCHKEY_MAIL_TRANSPORT", "smtp"),
        ("LATCHKEY_SMTP_URL_FILE", file.to_str().unwrap()),
        ("LATCHKEY_MAIL_FROM", "Acme <no-reply@acme.example>"),
    ]));
    out.assert_success();
    // Refused in the TOML file, like DATABASE_URL.
    let toml = dir.join("auth.toml");
    std::fs::write(
        &toml,
        "smtp_url = \"smtps://bob:hunter2@mail.example.com\"\n",
    )
    .unwrap();
    let out = latchkey_e2e::run_tool(
        "latchkey-auth",
        &["--config", toml.to_str().unwrap(), "check-config"],
        &base(&[]),
    );
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("LATCHKEY_SMTP_URL") && out.stderr.contains("secrets may not"),
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sign_in_resends_only_when_asked_and_duplicates_reveal_nothing() {
    let smtp = SmtpServer::start();
    let templates = std::env::temp_dir().join(format!("latchkey-templates-{}", random_string(8)));
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("verify-email.subject"),
        "Welcome to {{app_name}}, {{name}}\n",
    )
    .unwrap();
    std::fs::write(
        templates.join("verify-email.html"),
        "<p>Hi {{name}}: <a href=\"{{url}}\">go</a></p>",
    )
    .unwrap();
    let dir = templates.clone();
    let smtp_ref = &smtp;
    let auth = Auth::start_with(move |s| {
        with_mail(smtp_ref)(s)
            .env("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true")
            .env("LATCHKEY_SEND_VERIFICATION_ON_SIGN_UP", "false")
            .env("LATCHKEY_SEND_VERIFICATION_ON_SIGN_IN", "true")
            .env("LATCHKEY_MAIL_TEMPLATES", dir.to_str().unwrap())
    });
    let email = random_email();
    let first = auth.sign_up_resp("Zoe", &email, PASSWORD);
    first.expect(200);
    assert_eq!(first.json()["token"], serde_json::Value::Null);
    // A second sign-up with the address looks like a first one: a made-up user, no session.
    let again = auth.sign_up_resp("Mallory", &email, "another password");
    again.expect(200);
    let body = again.json();
    assert_eq!(body["token"], serde_json::Value::Null);
    assert_eq!(body["user"]["name"], "Mallory");
    assert_ne!(body["user"]["id"], first.json()["user"]["id"]);
    assert_eq!(auth.db.count(r#"select count(*) from "user""#), 1);
    assert!(again.set_cookies().is_empty());

    std::thread::sleep(Duration::from_millis(500));
    assert!(
        smtp.messages().is_empty(),
        "no mail on sign-up when not asked"
    );
    auth.sign_in_resp(&email, "wrong password!")
        .expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    std::thread::sleep(Duration::from_millis(500));
    assert!(smtp.messages().is_empty(), "a wrong password sends nothing");
    auth.sign_in_resp(&email, PASSWORD)
        .expect_error(403, "EMAIL_NOT_VERIFIED");
    let mail = smtp.wait_for(&email, MAIL_WAIT);
    assert_eq!(
        mail.subject, "Welcome to Acme, Zoe",
        "the operator's subject"
    );
    assert!(
        mail.html.starts_with("<p>Hi Zoe: <a href=\"http://"),
        "{}",
        mail.html
    );
    assert!(
        mail.text.contains("please confirm"),
        "the default text part"
    );
    let link = mail.link("verify-email");
    assert!(link.ends_with("&callbackURL=%2F"), "{link}");
    let resp = auth.client().get(&path_of(&link)).send();
    resp.expect(302);
    assert_eq!(resp.header("location"), Some("/"));
    auth.sign_in(&email, PASSWORD);
    let _ = std::fs::remove_dir_all(templates);
}

#[test]
fn mail_endpoints_are_limited_to_three_per_minute() {
    let smtp = SmtpServer::start();
    let auth = Auth::start_with(|s| with_mail(&smtp)(s).env("LATCHKEY_RATE_LIMIT", "on"));
    for path in [
        "/api/auth/request-password-reset",
        "/api/auth/send-verification-email",
    ] {
        for _ in 0..3 {
            auth.client()
                .post(path)
                .json(&json!({"email": "someone@example.com"}))
                .send()
                .expect(200);
        }
        let resp = auth
            .client()
            .post(path)
            .json(&json!({"email": "someone@example.com"}))
            .send();
        resp.expect(429);
        assert_eq!(resp.header("x-retry-after"), Some("60"), "{path}");
    }
    // verify-email and the reset link are not limited.
    for _ in 0..5 {
        auth.client()
            .get("/api/auth/verify-email?token=x")
            .send()
            .expect_error(401, "INVALID_TOKEN");
    }
}

#[test]
fn expired_verification_rows_are_purged() {
    let smtp = SmtpServer::start();
    let mut auth = Auth::start_with(with_mail(&smtp));
    auth.db.execute(
        r#"insert into "verification" ("id", "identifier", "value", "expiresAt")
           values ('old', 'reset-password:old', 'u', now() - interval '1 minute'),
                  ('live', 'reset-password:live', 'u', now() + interval '1 hour')"#,
    );
    // The worker purges when it starts, then hourly.
    auth.daemon.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while auth
        .db
        .count(r#"select count(*) from "verification" where "id" = 'old'"#)
        > 0
    {
        assert!(Instant::now() < deadline, "the expired row was not purged");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        auth.db
            .count(r#"select count(*) from "verification" where "id" = 'live'"#),
        1
    );
}
