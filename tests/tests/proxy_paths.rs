//! latchkey-api's reverse proxy and request targets that could leave `LATCHKEY_UPSTREAM`'s
//! path prefix (`http://upstream/app`): dot segments in every encoding, encoded slashes and
//! backslashes, `*`, CONNECT and TRACE. Sent byte for byte over raw sockets (an HTTP client
//! library would normalise them first); the echo upstream records what reaches it.

use latchkey_e2e::http::{raw_exchange, raw_exchange_then_close, raw_status};
use latchkey_e2e::stack::{Api, Auth};
use latchkey_e2e::Upstream;
use serde_json::Value;

struct Fixture {
    api: Api,
    upstream: Upstream,
    token: String,
    _auth: Auth,
}

fn fixture() -> Fixture {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);
    let upstream = Upstream::start();
    let api = Api::start_with(&auth.url(), |s| {
        s.env("LATCHKEY_UPSTREAM", format!("{}/app", upstream.url()))
    });
    Fixture {
        api,
        upstream,
        token,
        _auth: auth,
    }
}

/// Status, headers (lower-cased head) and body of one raw request.
fn send(f: &Fixture, method: &str, target: &str) -> (Option<u16>, String, Vec<u8>) {
    let head = format!(
        "{method} {target} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {}\r\n\
         connection: close\r\n\r\n",
        f.token
    );
    let raw = raw_exchange(f.api.daemon.port(), &head, Vec::new());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(&raw[split..])
    } else {
        raw[split..].to_vec()
    };
    (raw_status(&raw), head, body)
}

/// The payload of a chunked body (as far as it goes).
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        rest = &rest[eol + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
    out
}

fn json_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v["code"].as_str().map(str::to_string)
}

#[test]
fn paths_that_could_leave_the_prefix_never_reach_the_upstream() {
    let f = fixture();
    // Positive control, and what the upstream sees for a normal path.
    let (status, _, body) = send(&f, "GET", "/ok/a%20b?q=../x");
    assert_eq!(status, Some(200), "{}", String::from_utf8_lossy(&body));
    assert_eq!(f.upstream.received().len(), 1);
    assert_eq!(f.upstream.received()[0].target, "/app/ok/a%20b?q=../x");

    let refused = [
        "/../secret",
        "/a/../../secret",
        "/..",
        "/.",
        "/a/.",
        "/./secret",
        "/..;/secret",
        "/..;x=1/secret",
        "/.;/secret",
        "/..%3b/secret",
        "/..%2fsecret",
        "/..%2Fsecret",
        "/%2e%2e/secret",
        "/%2E%2E/secret",
        "/.%2e/secret",
        "/%2e./secret",
        "/%2e%2e%2fsecret",
        "/%2e%2e%5csecret",
        "/..%5csecret",
        "/..%5Csecret",
        "/a%2f..%2f..%2fsecret",
        "/%252e%252e/secret",
        "/%252e%252e%252fsecret",
        "/.../secret",
        "/..%20/secret",
        "/..%00/secret",
        "/%c0%ae%c0%ae/secret",
        "/%e0%80%ae%e0%80%ae/secret",
        "/%ef%bc%8e%ef%bc%8e/secret",
        // Encoded slashes and backslashes inside a segment are refused too (the upstream
        // might decode before routing and see two segments).
        "/files/a%2Fb",
        "/files/a%2fb",
        "/files/a%5Cb",
        "/files/a%252Fb",
        // Literal backslashes (a separator to Windows, IIS and some frameworks).
        "/..\\secret",
        "/a\\..\\..\\secret",
        "/a\\b",
    ];
    for target in refused {
        let (status, head, body) = send(&f, "GET", target);
        assert_eq!(
            status,
            Some(400),
            "{target}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(
            json_code(&body).as_deref(),
            Some("INVALID_PATH"),
            "{target}: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("x-request-id:"), "{head}");
    }
    // Other methods take the same path check.
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"] {
        let (status, _, body) = send(&f, method, "/..;/secret");
        assert_eq!(status, Some(400), "{method}");
        assert_eq!(
            json_code(&body).as_deref(),
            Some("INVALID_PATH"),
            "{method}"
        );
    }
    assert_eq!(
        f.upstream.received().len(),
        1,
        "a refused target reached the upstream: {:?}",
        f.upstream.received()
    );
}

#[test]
fn asterisk_connect_and_trace_are_not_proxied() {
    let f = fixture();
    let (status, _, body) = send(&f, "OPTIONS", "*");
    assert_eq!(status, Some(400), "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_code(&body).as_deref(), Some("INVALID_PATH"));

    for (method, target) in [
        ("CONNECT", "127.0.0.1:22"),
        ("CONNECT", "/app"),
        ("TRACE", "/x"),
        ("TRACK", "/x"),
    ] {
        let (status, head, body) = send(&f, method, target);
        assert_eq!(
            status,
            Some(405),
            "{method} {target}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(json_code(&body).as_deref(), Some("METHOD_NOT_ALLOWED"));
        assert!(head.contains("allow: get, head, post"), "{head}");
    }
    assert!(
        f.upstream.received().is_empty(),
        "reached the upstream: {:?}",
        f.upstream.received()
    );
}

/// What does pass: names with dots in them, encoded characters other than separators,
/// dots in the query; all forwarded exactly as sent under the prefix.
#[test]
fn ordinary_paths_are_forwarded_as_sent() {
    let f = fixture();
    let cases = [
        "/",
        "/a..b/c",
        "/.well-known/openid-configuration",
        "/a/...b",
        "/files/a%20b",
        "/%41%42",
        "/a;v=1/b",
        "/caf%C3%A9",
        "/100%25",
        "/x?path=../../etc/passwd&s=%2F",
        "//twice",
    ];
    for target in cases {
        let (status, _, body) = send(&f, "GET", target);
        assert_eq!(
            status,
            Some(200),
            "{target}: {}",
            String::from_utf8_lossy(&body)
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["target"], format!("/app{target}"), "{target}");
    }
    assert_eq!(f.upstream.received().len(), cases.len());
}

/// The body of a chunked or plain response, from its raw bytes.
fn body_of(raw: &[u8]) -> Vec<u8> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        dechunk(&raw[split..])
    } else {
        raw[split..].to_vec()
    }
}

/// A malformed body from the client is the client's error: 400 `INVALID_BODY`, logged below
/// WARN, never a 502 "upstream request failed". A real upstream failure still is one.
#[test]
fn malformed_client_bodies_are_400_not_502() {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);
    let upstream = Upstream::start();
    let api = Api::start_with(&auth.url(), |s| {
        s.env("LATCHKEY_UPSTREAM", upstream.url())
            .env("LATCHKEY_LOG", "info,latchkey_api=debug")
    });
    let port = api.daemon.port();
    let head = |framing: &str| {
        format!(
            "POST /upload HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n\
             content-type: application/octet-stream\r\n{framing}\r\n"
        )
    };
    let chunked = head("transfer-encoding: chunked\r\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "chunk size not hex",
            raw_exchange(
                port,
                &chunked,
                b"5\r\nhello\r\nZZ\r\nxx\r\n0\r\n\r\n".to_vec(),
            ),
        ),
        (
            "chunk size overflowing",
            raw_exchange(
                port,
                &chunked,
                b"5\r\nhello\r\nffffffffffffffffff\r\nxx\r\n0\r\n\r\n".to_vec(),
            ),
        ),
        (
            "chunk data not followed by CRLF",
            raw_exchange(
                port,
                &chunked,
                b"5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n".to_vec(),
            ),
        ),
        (
            "chunked body cut off by a close",
            raw_exchange_then_close(port, &chunked, b"5\r\nhello\r\n10\r\nonly-a-bit".to_vec()),
        ),
        (
            "body shorter than its Content-Length, then a close",
            raw_exchange_then_close(
                port,
                &head("content-length: 100\r\n"),
                b"only ten b".to_vec(),
            ),
        ),
    ];
    for (what, raw) in &cases {
        assert_eq!(
            raw_status(raw),
            Some(400),
            "{what}: {}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(
            json_code(&body_of(raw)).as_deref(),
            Some("INVALID_BODY"),
            "{what}: {}",
            String::from_utf8_lossy(raw)
        );
    }
    let log = api.daemon.log();
    assert!(
        !log.contains("upstream request failed") && !log.contains("WARN"),
        "client errors logged as upstream failures:\n{log}"
    );
    assert!(log.contains("client request body failed"), "{log}");
    // A well-formed request still goes through on a new connection.
    let ok = raw_exchange(port, &head("content-length: 5\r\n"), b"hello".to_vec());
    assert_eq!(
        raw_status(&ok),
        Some(200),
        "{}",
        String::from_utf8_lossy(&ok)
    );
    drop(api);

    // An upstream that reads the request and hangs up without answering is the upstream's
    // failure: 502, and a WARN.
    let rude = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rude_port = rude.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader};
        for conn in rude.incoming() {
            let Ok(conn) = conn else { continue };
            let mut reader = BufReader::new(conn);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
        }
    });
    let api = Api::start_with(&auth.url(), |s| {
        s.env("LATCHKEY_UPSTREAM", format!("http://127.0.0.1:{rude_port}"))
    });
    let raw = raw_exchange(
        api.daemon.port(),
        &head("content-length: 5\r\nconnection: close\r\n"),
        b"hello".to_vec(),
    );
    assert_eq!(
        raw_status(&raw),
        Some(502),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(json_code(&body_of(&raw)).as_deref(), Some("BAD_GATEWAY"));
    let log = api.daemon.log();
    assert!(log.contains("upstream request failed"), "{log}");
}
