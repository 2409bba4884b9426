//! A rolling deploy behind a load balancer: three latchkey-auth replicas behind nginx (keep-alive
//! upstream connections, retry on a failed connection, no active health checks), restarted one
//! after the other with SIGTERM while clients keep signing up and reading sessions. Not one
//! request may fail, and every sign-up that was answered 200 must be in the database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_e2e::nginx::Nginx;
use latchkey_e2e::stack::{Auth, PASSWORD};
use latchkey_e2e::{free_port, random_email, Client, Daemon};
use serde_json::json;

#[test]
fn rolling_restart_behind_nginx_loses_no_request() {
    let first = Auth::start_with(|s| s.env("LATCHKEY_SHUTDOWN_DELAY", "2"));
    let mut replicas: Vec<Daemon> = (0..2)
        .map(|_| {
            let mut spec = first.daemon.spec.clone();
            spec.port = free_port();
            Daemon::start(spec)
        })
        .collect();
    let mut ports = vec![first.daemon.port()];
    ports.extend(replicas.iter().map(Daemon::port));
    let nginx = Nginx::start(&ports);
    let session = {
        let r = Client::new(&nginx.url())
            .post("/api/auth/sign-up/email")
            .json(&json!({"name": "R", "email": random_email(), "password": PASSWORD}))
            .send();
        r.expect(200);
        latchkey_e2e::Session::from_resp(r)
    };

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (stop, answered, failures) = (stop.clone(), answered.clone(), failures.clone());
            let url = nginx.url();
            let bearer = session.bearer.clone();
            std::thread::spawn(move || {
                // One keep-alive client per thread, as a browser or a backend would hold.
                let client = Client::new(&url);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    if i % 2 == 0 {
                        let email = random_email();
                        let r = client
                            .post("/api/auth/sign-up/email")
                            .json(&json!({"name": "R", "email": email, "password": PASSWORD}))
                            .try_send();
                        match r {
                            Ok(r) if r.status == 200 => answered.lock().unwrap().push(email),
                            Ok(r) => failures.lock().unwrap().push(format!(
                                "sign-up {}: {}",
                                r.status,
                                r.text()
                            )),
                            Err(e) => failures.lock().unwrap().push(format!("sign-up: {e}")),
                        }
                    } else {
                        let r = client
                            .get("/api/auth/get-session")
                            .bearer(&bearer)
                            .try_send();
                        match r {
                            Ok(r) if r.status == 200 => {}
                            Ok(r) => failures.lock().unwrap().push(format!(
                                "get-session {}: {}",
                                r.status,
                                r.text()
                            )),
                            Err(e) => failures.lock().unwrap().push(format!("get-session: {e}")),
                        }
                    }
                }
                n
            })
        })
        .collect();

    // Let traffic flow, then restart each replica in turn, as a deploy would.
    std::thread::sleep(Duration::from_secs(1));
    let mut first = first;
    first.daemon.rolling_restart();
    for r in replicas.iter_mut() {
        std::thread::sleep(Duration::from_millis(500));
        r.rolling_restart();
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let requests: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();

    let failures = failures.lock().unwrap();
    let answered = answered.lock().unwrap();
    eprintln!(
        "{requests} requests through 3 rolling restarts, {} sign-ups answered, {} failures",
        answered.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed: {:?}\nnginx: {}",
        failures.len(),
        &failures[..failures.len().min(10)],
        nginx.error_log()
    );
    assert!(answered.len() > 10, "too little traffic to mean anything");
    for email in answered.iter() {
        let n = first
            .db
            .query(r#"select count(*) from "user" where email = $1"#, &[email])[0]
            .get::<_, i64>(0);
        assert_eq!(n, 1, "{email} was answered 200 but is not in the database");
    }
}
