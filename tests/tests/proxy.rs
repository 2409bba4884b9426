//! `latchkey-api` as a reverse proxy (`LATCHKEY_UPSTREAM`).

use std::io::Read;

use latchkey_e2e::jwt;
use latchkey_e2e::stack::{Api, Auth, Session};
use latchkey_e2e::Upstream;
use serde_json::json;
use sha2::Digest;

struct Fixture {
    api: Api,
    auth: Auth,
    upstream: Upstream,
    session: Session,
    token: String,
}

fn fixture() -> Fixture {
    fixture_with(|s| s)
}

fn fixture_with(f: impl FnOnce(latchkey_e2e::DaemonSpec) -> latchkey_e2e::DaemonSpec) -> Fixture {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);
    let upstream = Upstream::start();
    let api = Api::start_with(&auth.url(), |s| {
        f(s.env("LATCHKEY_UPSTREAM", upstream.url()))
    });
    Fixture {
        api,
        auth,
        upstream,
        session,
        token,
    }
}

#[test]
fn identity_headers_are_set_and_spoofed_ones_stripped() {
    let f = fixture();
    let r = f
        .api
        .client()
        .get("/some/path?x=1&y=two")
        .bearer(&f.token)
        .header("x-auth-user-id", "spoofed-id")
        .header("X-Auth-User-Email", "spoofed@example.com")
        .header("x-auth-admin", "true")
        .header("x-custom", "kept")
        .send();
    r.expect(200);
    assert_eq!(
        r.header("x-upstream"),
        Some("echo"),
        "answer must come from upstream"
    );
    let v = r.json();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["target"], "/some/path?x=1&y=two");
    let h = &v["headers"];
    assert_eq!(h["x-auth-user-id"], f.session.user["id"], "{h}");
    assert_eq!(h["x-auth-user-email"], f.session.user["email"], "{h}");
    let sid = jwt::decode(&f.token).payload["sid"].clone();
    assert_eq!(h["x-auth-session-id"], sid, "{h}");
    assert!(
        h.get("x-auth-admin").is_none(),
        "client X-Auth-* reached upstream: {h}"
    );
    assert_eq!(h["x-custom"], "kept");
    assert_eq!(h["x-auth-user-name"], f.session.user["name"], "{h}");
    let got = f.upstream.received();
    assert_eq!(got.len(), 1);
    for (k, v) in &got[0].headers {
        if k.starts_with("x-auth-") {
            assert!(
                !v.starts_with("spoofed"),
                "spoofed {k}: {v} reached upstream"
            );
        }
    }
    assert_eq!(
        got[0]
            .headers
            .iter()
            .filter(|(k, _)| k == "x-auth-user-id")
            .count(),
        1
    );
    let _ = &f.auth;
}

#[test]
fn request_bodies_stream_through() {
    // No body limit (LATCHKEY_MAX_BODY_BYTES=0): a 3 MiB body streams to the upstream.
    let f = fixture_with(|s| s.env("LATCHKEY_MAX_BODY_BYTES", "0"));
    // 3 MiB, chunked, never fully in memory on the client side.
    let len: usize = 3 * 1024 * 1024;
    let reader = std::io::repeat(b'z').take(len as u64);
    let r = f
        .api
        .client()
        .post("/upload")
        .bearer(&f.token)
        .body_reader("application/octet-stream", reader)
        .send();
    r.expect(200);
    let v = r.json();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["bodyLength"], len);
    let expected = sha2::Sha256::digest(vec![b'z'; len]);
    let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v["bodySha256"], hex);
    // Small JSON body with a content-length.
    let r = f
        .api
        .client()
        .post("/json")
        .bearer(&f.token)
        .json(&json!({"a": 1}))
        .send();
    r.expect(200);
    assert_eq!(r.json()["body"], r#"{"a":1}"#);
    assert_eq!(r.json()["headers"]["content-type"], "application/json");
}

#[test]
fn unauthenticated_requests_never_reach_the_upstream() {
    let f = fixture();
    let r = f.api.client().get("/secret").send();
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r
        .header("www-authenticate")
        .is_some_and(|w| w.starts_with("Bearer")));
    let bad = jwt::tamper(&f.token, |p| p["sub"] = json!("admin"));
    let r = f
        .api
        .client()
        .post("/secret")
        .bearer(&bad)
        .body("text/plain", "payload")
        .send();
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        f.upstream.received().is_empty(),
        "upstream was reached: {:?}",
        f.upstream.received()
    );
}

#[test]
fn bodies_over_the_limit_are_refused() {
    let f = fixture_with(|s| s.env("LATCHKEY_MAX_BODY_BYTES", "65536"));
    let body = vec![b'a'; 1024 * 1024];
    let head = format!(
        "POST /big HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        f.token,
        body.len()
    );
    let raw = latchkey_e2e::http::raw_exchange(f.api.daemon.port(), &head, body);
    assert_eq!(
        latchkey_e2e::http::raw_status(&raw),
        Some(413),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert!(
        f.upstream
            .received()
            .iter()
            .all(|r| r.body.len() < 1024 * 1024),
        "the whole oversized body reached the upstream"
    );
}

/// An upstream that is down answers 502; one that accepts but never answers, 504 after
/// `LATCHKEY_UPSTREAM_TIMEOUT`. Both as JSON errors, neither a hang.
#[test]
fn upstream_down_is_502_and_silent_upstream_is_504() {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);

    let closed = latchkey_e2e::free_port();
    let api = Api::start_with(&auth.url(), |s| {
        s.env("LATCHKEY_UPSTREAM", format!("http://127.0.0.1:{closed}"))
    });
    api.client()
        .get("/anything")
        .bearer(&token)
        .send()
        .expect_error(502, "BAD_GATEWAY");

    // Accepts connections, reads nothing, answers nothing.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for conn in silent.incoming().take(1) {
            conns.push(conn);
            std::thread::sleep(std::time::Duration::from_secs(5));
        }
    });
    let api = Api::start_with(&auth.url(), |s| {
        s.env(
            "LATCHKEY_UPSTREAM",
            format!("http://127.0.0.1:{silent_port}"),
        )
        .env("LATCHKEY_UPSTREAM_TIMEOUT", "1")
    });
    api.client()
        .get("/slow")
        .bearer(&token)
        .send()
        .expect_error(504, "GATEWAY_TIMEOUT");
    held.join().unwrap();
}

/// SIGTERM drains: a request already being served (here, waiting on a slow upstream) is
/// answered in full before the daemon exits, with status 0.
#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    use std::io::{BufRead, BufReader, Write};
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);

    let slow = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_port = slow.local_addr().unwrap().port();
    let (arrived_tx, arrived) = std::sync::mpsc::channel();
    let upstream = std::thread::spawn(move || {
        let (conn, _) = slow.accept().unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
        arrived_tx.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(1));
        let mut conn = conn;
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndone")
            .unwrap();
    });
    let mut api = Api::start_with(&auth.url(), |s| {
        s.env("LATCHKEY_UPSTREAM", format!("http://127.0.0.1:{slow_port}"))
    });
    let client = api.client();
    let request = std::thread::spawn(move || client.get("/slow").bearer(&token).send());
    arrived
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the request reached the upstream");
    api.daemon.terminate_cleanly();
    let r = request.join().unwrap();
    r.expect(200);
    assert_eq!(r.text(), "done");
    upstream.join().unwrap();
}
