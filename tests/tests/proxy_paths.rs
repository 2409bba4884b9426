//! latchkey-api's reverse proxy and request targets that could leave `LATCHKEY_UPSTREAM`'s
//! path prefix (`http://upstream/app`): dot segments in every encoding, encoded slashes and
//! backslashes, `*`, CONNECT and TRACE. Sent byte for byte over raw sockets (an HTTP client
//! library would normalise them first); the echo upstream records what reaches it.

use latchkey_e2e::http::{raw_exchange, raw_status};
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
