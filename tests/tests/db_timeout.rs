//! A database call that does not come back (a lock held elsewhere, a pooler waiting for a
//! server that fails its login) ends in a clear 503 after `LATCHKEY_DB_TIMEOUT`, never a
//! hang, and the daemon keeps serving once the database answers again.

use latchkey_e2e::stack::Auth;

#[test]
fn a_stuck_query_is_a_503_not_a_hang() {
    let auth = Auth::start_with(|s| s.env("LATCHKEY_DB_TIMEOUT", "1"));
    let s = auth.new_user();

    // Another transaction holds the session row: the sign-out's delete waits on the lock.
    let mut holder = auth.db.client();
    let mut tx = holder.transaction().unwrap();
    tx.execute(
        r#"select 1 from "session" where "token" = $1 for update"#,
        &[&s.token],
    )
    .unwrap();
    // The test client gives up after 30 s on its own: a hang fails the test.
    auth.client()
        .post("/api/auth/sign-out")
        .bearer(&s.bearer)
        .send()
        .expect_error(503, "SERVICE_UNAVAILABLE");
    let log = auth.daemon.log();
    assert!(log.contains("timed out after 1s"), "{log}");
    tx.rollback().unwrap();

    // Served again, on a fresh connection (the timed-out one left the pool).
    let other = auth.new_user();
    auth.client()
        .get("/api/auth/get-session")
        .bearer(&other.bearer)
        .send()
        .expect(200);
}

/// A quiet replica gives its pooled connections back (poolers and managed Postgres count each
/// against a small limit): after LATCHKEY_DB_IDLE_TIMEOUT without use they are closed.
#[test]
fn idle_pool_connections_are_released() {
    let auth = Auth::start_with(|mut s| {
        // Straight to Postgres in the pooler runs too: pg_stat_activity would show the
        // pooler's own server connections, which it keeps open by design.
        let url = s
            .env
            .iter()
            .find(|(k, _)| k == "DATABASE_URL")
            .map(|(_, v)| v.clone());
        let db = url
            .as_deref()
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or_default();
        let direct = latchkey_e2e::cluster().url(db);
        s.set_env("DATABASE_URL", direct);
        s.env("LATCHKEY_DB_IDLE_TIMEOUT", "2")
            // The key reload would use a connection every 30 s; keep it out of the way.
            .env("LATCHKEY_KEY_RELOAD_INTERVAL", "3600")
    });
    // Concurrent sign-ins open several pooled connections.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = auth.url();
            std::thread::spawn(move || {
                latchkey_e2e::Client::new(&url)
                    .post("/api/auth/sign-up/email")
                    .json(&serde_json::json!({
                        "name": "P",
                        "email": latchkey_e2e::random_email(),
                        "password": latchkey_e2e::stack::PASSWORD,
                    }))
                    .send()
                    .expect(200);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let open = || {
        auth.db.count(
            "select count(*) from pg_stat_activity
             where datname = current_database() and pid <> pg_backend_pid()",
        )
    };
    assert!(open() > 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while open() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} idle connections still open",
            open()
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    // And the daemon opens new ones when needed.
    auth.new_user();
}
