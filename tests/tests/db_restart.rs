//! PostgreSQL restarting under the daemons (a failover, an upgrade, a crash): both recover on
//! their own, with no restart of theirs. This file has its own cluster (one per test process),
//! so restarting it disturbs no other test.

use std::thread;
use std::time::{Duration, Instant};

use latchkey_e2e::pg::cluster;
use latchkey_e2e::stack::{Api, Auth, PASSWORD};

fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not back within 20 s");
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn daemons_recover_from_a_postgres_restart() {
    let auth = Auth::start();
    // Revocation without a cache: every /api/me queries the database.
    let api = Api::start_with(&auth.url(), |s| {
        s.env("LATCHKEY_REVOCATION", "session")
            .env("DATABASE_URL", auth.db.url.clone())
            .env("LATCHKEY_REVOCATION_CACHE_TTL", "0")
    });
    api.wait_ready();
    let s = auth.new_user();
    let jwt = auth.jwt(&s);
    api.me(&jwt).expect(200);
    let email = s.user["email"].as_str().unwrap().to_string();

    // While Postgres is down: clear failures, never a hang (the pool gives up after 5 s; the
    // test client would fail the test on its own 30 s timeout).
    cluster().stop();
    let r = auth.client().get("/readyz").send();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["database"], false);
    let r = auth
        .client()
        .get("/api/auth/get-session")
        .bearer(&s.bearer)
        .send();
    r.expect_error(503, "SERVICE_UNAVAILABLE");
    // The revocation check fails closed, and the API says it is not ready (every checked
    // request would fail).
    api.me(&jwt)
        .expect_error(503, "REVOCATION_CHECK_UNAVAILABLE");
    let r = api.client().get("/readyz").send();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["database"], false);
    // The JWKS is served from memory, database or not.
    auth.client().get("/api/auth/jwks").send().expect(200);
    cluster().start_again();

    // Pooled connections died with the old server; requests may fail (503, never a hang or a
    // crash) until fresh ones are made, then everything works again.
    eventually("get-session", || {
        let r = auth
            .client()
            .get("/api/auth/get-session")
            .bearer(&s.bearer)
            .send();
        assert!(
            r.status == 200 || r.status == 503,
            "get-session during recovery: {} {}",
            r.status,
            r.text()
        );
        r.status == 200 && r.json()["session"].is_object()
    });
    eventually("revocation check", || {
        let r = api.me(&jwt);
        assert!(r.status == 200 || r.status == 503, "/api/me: {}", r.status);
        r.status == 200
    });
    assert_eq!(api.client().get("/readyz").send().json()["database"], true);
    auth.sign_in(&email, PASSWORD);
    // The daemons never restarted.
    let mut auth = auth;
    assert!(auth.daemon.is_running());
    let log = auth.daemon.log();
    assert_eq!(log.matches("latchkey-auth ready").count(), 1, "{log}");
}
