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
    // Each daemon logs "applied migrations" only when it applied some: exactly one did.
    let appliers = replicas
        .iter()
        .filter(|d| d.log().contains("applied migrations"))
        .count();
    assert_eq!(appliers, 1, "migrations applied by {appliers} replicas");
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

/// The current signing key's id, or panics.
fn current_kid(db: &latchkey_e2e::TestDb) -> String {
    db.query(r#"select "id" from "jwks" where "expiresAt" is null"#, &[])[0].get(0)
}

#[test]
fn automatic_rotation_happens_once_per_interval_across_replicas() {
    const INTERVAL: u64 = 3;
    let (db, replicas) = start_together(3, |s| {
        s.env("LATCHKEY_KEY_ROTATION_INTERVAL", INTERVAL.to_string())
            .env("LATCHKEY_KEY_RELOAD_INTERVAL", "1")
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.count(r#"select count(*) from "jwks""#) < 2 {
        assert!(
            Instant::now() < deadline,
            "no automatic rotation within 20 s"
        );
        thread::sleep(Duration::from_millis(200));
    }
    // However many rotations have happened by now, no two keys were made closer together than
    // the interval: racing replicas rotated once, not once each.
    let too_close = db.count(&format!(
        r#"select count(*) from (
             select "createdAt" - lag("createdAt") over (order by "createdAt") as gap from "jwks"
           ) g where gap < interval '{INTERVAL} seconds'"#
    ));
    assert_eq!(too_close, 0, "replicas rotated more than once per interval");
    assert_eq!(
        db.count(r#"select count(*) from "jwks" where "expiresAt" is null"#),
        1,
        "exactly one current key"
    );
    // Retired keys stay published (grace period); each replica signs with the current key once
    // it has reloaded.
    for r in &replicas {
        let c = latchkey_e2e::http::Client::new(&r.url());
        let s = c
            .post("/api/auth/sign-up/email")
            .json(&serde_json::json!({
                "name": "R",
                "email": latchkey_e2e::random_email(),
                "password": latchkey_e2e::stack::PASSWORD,
            }))
            .send();
        s.expect(200);
        let bearer = s
            .header("set-auth-token")
            .expect("set-auth-token")
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let keys = c.get("/api/auth/jwks").send().json();
            let published = keys["keys"].as_array().map(Vec::len).unwrap_or(0);
            let token = c.get("/api/auth/token").bearer(&bearer).send().json()["token"]
                .as_str()
                .expect("token")
                .to_string();
            let kid = latchkey_e2e::jwt::decode(&token).header["kid"]
                .as_str()
                .unwrap()
                .to_string();
            if published >= 2 && kid == current_kid(&db) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica {} still signs with {kid} ({published} keys published)",
                r.url()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}
