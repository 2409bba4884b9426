//! Several auth replicas on one database, as deployments scale out: they start together
//! (migrations under a lock), agree on one signing key, and rotate it once per interval
//! between them (advisory lock with a re-check).

use std::thread;
use std::time::{Duration, Instant};

use latchkey_e2e::daemon::{Daemon, DaemonSpec};
use latchkey_e2e::stack::Auth;
use latchkey_e2e::{cluster, free_port, random_string};

/// Starts `n` auth daemons on one fresh database at the same moment.
fn start_together(
    n: usize,
    tweak: fn(DaemonSpec) -> DaemonSpec,
) -> (latchkey_e2e::TestDb, Vec<Daemon>) {
    let db = cluster().create_db();
    let secret = format!("e2e-{}", random_string(40));
    let specs: Vec<DaemonSpec> = (0..n)
        .map(|_| tweak(Auth::spec(&db, &secret, free_port())))
        .collect();
    let daemons = specs
        .into_iter()
        .map(|spec| thread::spawn(move || Daemon::start(spec)))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("a replica failed to start"))
        .collect();
    (db, daemons)
}

#[test]
fn replicas_starting_together_migrate_once_and_share_one_key() {
    let (db, replicas) = start_together(4, |s| s);
    assert_eq!(
        db.count(r#"select count(*) from "latchkey_schema_migrations""#),
        db.count(r#"select count(distinct "version") from "latchkey_schema_migrations""#)
    );
    assert_eq!(
        db.count(r#"select count(*) from "jwks""#),
        1,
        "one signing key, not one per replica"
    );
    let jwks: Vec<String> = replicas
        .iter()
        .map(|d| {
            latchkey_e2e::http::Client::new(&d.url())
                .get("/api/auth/jwks")
                .send()
                .text()
        })
        .collect();
    assert!(
        jwks.windows(2).all(|w| w[0] == w[1]),
        "replicas publish different key sets: {jwks:?}"
    );
}

#[test]
fn automatic_rotation_happens_once_per_interval_across_replicas() {
    let (db, replicas) = start_together(3, |s| {
        s.env("LATCHKEY_KEY_ROTATION_INTERVAL", "3")
            .env("LATCHKEY_KEY_RELOAD_INTERVAL", "1")
    });
    let first = db.count(r#"select count(*) from "jwks""#);
    assert_eq!(first, 1);
    // The first key reaches its age 3 s after creation; every replica checks each second.
    // Wait until a rotation has happened, then check that it happened once.
    let deadline = Instant::now() + Duration::from_secs(15);
    while db.count(r#"select count(*) from "jwks""#) < 2 {
        assert!(
            Instant::now() < deadline,
            "no automatic rotation within 15 s"
        );
        thread::sleep(Duration::from_millis(200));
    }
    thread::sleep(Duration::from_millis(1500));
    // Within 1.5 s of the first rotation (well under the 3 s interval), no replica rotated again.
    assert_eq!(
        db.count(r#"select count(*) from "jwks""#),
        2,
        "replicas rotated more than once for one interval"
    );
    assert_eq!(
        db.count(r#"select count(*) from "jwks" where "expiresAt" is null"#),
        1,
        "exactly one current key"
    );
    // The retired key stays published for the grace period; every replica signs with the new one
    // once it has reloaded.
    thread::sleep(Duration::from_millis(1200));
    let current: String =
        db.query(r#"select "id" from "jwks" where "expiresAt" is null"#, &[])[0].get(0);
    for r in &replicas {
        let c = latchkey_e2e::http::Client::new(&r.url());
        let keys = c.get("/api/auth/jwks").send().json();
        assert_eq!(keys["keys"].as_array().map(Vec::len), Some(2), "{keys}");
        let email = latchkey_e2e::random_email();
        let s = c
            .post("/api/auth/sign-up/email")
            .json(&serde_json::json!({"name": "R", "email": email, "password": latchkey_e2e::stack::PASSWORD}))
            .send();
        s.expect(200);
        let bearer = s
            .header("set-auth-token")
            .expect("set-auth-token")
            .to_string();
        let token = c.get("/api/auth/token").bearer(&bearer).send().json()["token"]
            .as_str()
            .expect("token")
            .to_string();
        let kid = latchkey_e2e::jwt::decode(&token).header["kid"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(kid, current, "replica {} signs with a stale key", r.url());
    }
}
