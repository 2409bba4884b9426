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
