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

/// Sign-in timing told accounts still on Better-Auth's scrypt hashes (about 3x the work of
/// argon2id) from unknown emails. With both schemes in the database, every sign-in computes
/// one verification per scheme: the daemon says so at start, and the CPU time it spends per
/// attempt is the same for an unknown email, an argon2id account and a scrypt account
/// (read from /proc, so the machine's other load does not count; bounds are wide).
#[test]
fn sign_in_work_does_not_tell_scrypt_accounts_from_unknown_emails() {
    let mut auth = Auth::start_with(|s| s.env("LATCHKEY_HASH_CONCURRENCY", "1"));
    let argon = auth.new_user();
    // An account written by Better-Auth (docs/compatibility.md#passwords test vector).
    auth.db.execute(
        r#"INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt")
             VALUES ('adfLqbvR6x8IZ7rlOyHBvgzyIB1ze5BC', 'Bob', 'bob@example.com', false, now(), now());
           INSERT INTO account (id, "accountId", "providerId", "userId", password, "createdAt", "updatedAt")
             VALUES ('acc0000000000000000000000000000a', 'adfLqbvR6x8IZ7rlOyHBvgzyIB1ze5BC', 'credential',
                     'adfLqbvR6x8IZ7rlOyHBvgzyIB1ze5BC',
                     'adb3fae70953259d7614bfa09ed21a8b:65f2f44a82ba2250db0f5a26dc34a598ab060c1ed25d68d5cbcee8db8a7943f903b39ecb37659feb68a111f761a76bd29d6571cad35775245ea2a1cee165c00a',
                     now(), now());"#,
    );
    auth.daemon.restart();
    let log = auth.daemon.log();
    assert!(log.contains("password schemes in use"), "{log}");

    let pid = auth.daemon.pid().expect("running");
    let cpu_ticks = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<u64> = after_name
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name.
        fields[11] + fields[12]
    };
    let per_attempt = |email: &str| {
        let before = cpu_ticks();
        for _ in 0..6 {
            auth.sign_in_resp(email, "not the password")
                .expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
        }
        (cpu_ticks() - before) as f64 / 6.0
    };
    let unknown = per_attempt(&latchkey_e2e::random_email());
    let scrypt = per_attempt("bob@example.com");
    let argon2 = per_attempt(&argon.email());
    eprintln!("CPU ticks per wrong sign-in: unknown {unknown}, scrypt {scrypt}, argon2id {argon2}");
    for (what, t) in [("scrypt account", scrypt), ("argon2id account", argon2)] {
        assert!(
            t < unknown * 1.6 && unknown < t * 1.6,
            "{what}: {t} ticks per attempt vs {unknown} for an unknown email"
        );
    }
}

/// The audit trail: each security event is a row (in the transaction of its change) and a
/// log line under `target: "audit"`; the client address is the one the rate limiter trusts;
/// no password or token appears in either.
#[test]
fn security_events_are_recorded_without_secrets() {
    let auth = Auth::start_with(|s| {
        s.env("LATCHKEY_RATE_LIMIT", "on")
            .env("LATCHKEY_RATE_LIMIT_WINDOW", "600")
            .env("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32")
    });
    let email = latchkey_e2e::random_email();
    let up = auth
        .client()
        .post("/api/auth/sign-up/email")
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({"name": "A", "email": email, "password": PASSWORD}))
        .send();
    up.expect(200);
    let s = latchkey_e2e::Session::from_resp(up);
    let user_id = s.user_id();
    // A wrong password, for the same account and from a spoofing client (the header is
    // believed only from the trusted proxy, which here is the test itself).
    auth.client()
        .post("/api/auth/sign-in/email")
        .header("x-forwarded-for", "198.51.100.8")
        .json(&json!({"email": email, "password": "not the password"}))
        .send()
        .expect(401);
    auth.client()
        .post("/api/auth/change-password")
        .bearer(&s.bearer)
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({"currentPassword": PASSWORD, "newPassword": "another password 1", "revokeOtherSessions": true}))
        .send()
        .expect(200);
    // Over the sign-in limit (3 per window for one address).
    for _ in 0..4 {
        auth.client()
            .post("/api/auth/sign-in/email")
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({"email": latchkey_e2e::random_email(), "password": "x"}))
            .send();
    }
    let rows = auth.db.query(
        r#"select "event", coalesce("userId", ''), coalesce("ip", ''), "detail"::text
           from "latchkey_audit" order by "at", "id""#,
        &[],
    );
    let events: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let has = |event: &str, user: &str, ip: &str| {
        events
            .iter()
            .any(|(e, u, i, _)| e == event && u == user && i == ip)
    };
    assert!(has("sign_up", &user_id, "198.51.100.7"), "{events:?}");
    assert!(
        has("sign_in_failed", &user_id, "198.51.100.8"),
        "{events:?}"
    );
    assert!(
        has("password_changed", &user_id, "198.51.100.7"),
        "{events:?}"
    );
    assert!(has("rate_limited", "", "203.0.113.9"), "{events:?}");
    assert!(
        events.iter().any(|(e, ..)| e == "key_created"),
        "{events:?}"
    );
    // Unknown emails are failures without a user: the same reason as a wrong password.
    assert!(events.iter().any(|(e, u, _, d)| e == "sign_in_failed"
        && u.is_empty()
        && d.contains("invalid_credentials")));

    let log = auth.daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains("audit:") && l.contains(r#"event="password_changed""#)),
        "{log}"
    );
    let everything = format!("{events:?}\n{log}");
    for secret in [
        PASSWORD,
        "another password 1",
        "not the password",
        &s.token,
        &s.bearer,
    ] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}

/// Audit events older than `LATCHKEY_AUDIT_RETENTION` are purged at start-up (and hourly
/// after): a daemon restarted more often than hourly used to never purge.
#[test]
fn old_audit_events_are_purged_at_start_up() {
    let db = latchkey_e2e::cluster().create_db();
    let spec = Auth::spec(&db, &"s".repeat(40), latchkey_e2e::free_port())
        .env("LATCHKEY_AUDIT_RETENTION", "90");
    latchkey_e2e::run_tool("latchkey-auth", &["migrate"], &spec.env).assert_success();
    db.execute(
        r#"insert into "latchkey_audit" ("id", "at", "event") values
           ('old-event', now() - interval '91 days', 'sign_in'),
           ('recent-event', now() - interval '89 days', 'sign_in')"#,
    );
    let _daemon = latchkey_e2e::Daemon::start(spec);
    let gone = |id: &str| {
        db.count(&format!(
            r#"select count(*) from "latchkey_audit" where "id" = '{id}'"#
        )) == 0
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !gone("old-event") {
        assert!(
            std::time::Instant::now() < deadline,
            "not purged at start-up"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !gone("recent-event"),
        "an event within the retention was purged"
    );
}
