//! What an outside audit attacked and found defended (issue 10, "What held up"), kept as
//! regression tests, each attacking the real daemons over real sockets: request smuggling
//! against both daemons (latchkey-api plain and as a proxy), the sign-in rate limit under
//! concurrency and against path variants, session fixation, and secrets in trace-level logs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Barrier;
use std::time::Duration;

use latchkey_e2e::http::percent_encode;
use latchkey_e2e::jwt;
use latchkey_e2e::stack::{Api, Auth, Session, PASSWORD, SESSION_COOKIE};
use latchkey_e2e::{random_string, CookieJar, Upstream};
use serde_json::{json, Value};

/// How long a read may wait for the next byte before the connection counts as left open.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What came back on one raw connection.
struct Exchange {
    /// The status of every response, in order (a status line at the start of a line).
    answers: Vec<u16>,
    /// Every `HTTP/1.x ` anywhere in the bytes: a response the framing did not account for
    /// shows here. (No body here holds that text: JSON escapes the CR LF after a version.)
    status_line_count: usize,
    /// The server closed the connection (EOF or reset) rather than leaving it open.
    closed: bool,
    raw: String,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "answers {:?} ({} status lines), closed by the server: {}, bytes:\n{}",
            self.answers, self.status_line_count, self.closed, self.raw
        )
    }
}

/// Writes `request` in one go on a fresh connection, then reads everything until the server
/// closes it or stays silent for [`READ_TIMEOUT`].
fn exchange(port: u16, request: &[u8]) -> Exchange {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    // A server that refuses early may close before all of it is written: that is an answer.
    let _ = stream.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                break true
            }
            Err(_) => break false,
        }
    };
    Exchange {
        answers: status_lines(&out),
        status_line_count: out
            .windows(9)
            .filter(|w| w.starts_with(b"HTTP/1.") && w[8] == b' ')
            .count(),
        closed,
        raw: String::from_utf8_lossy(&out).into_owned(),
    }
}

/// The statuses of the responses in `bytes`, read one after the other by their framing
/// (Content-Length, chunked, or up to the close). Stops at bytes that do not start a response.
fn status_lines(bytes: &[u8]) -> Vec<u16> {
    let mut statuses = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 12 && rest.starts_with(b"HTTP/1.") && rest[8] == b' ' {
        let Some(status) = std::str::from_utf8(&rest[9..12])
            .ok()
            .and_then(|s| s.parse().ok())
        else {
            break;
        };
        statuses.push(status);
        let Some(end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        rest = &rest[end + 4..];
        if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
            // Chunks until the zero-size one and its (empty) trailer.
            loop {
                let Some(eol) = find(rest, b"\r\n") else {
                    return statuses;
                };
                let size = std::str::from_utf8(&rest[..eol])
                    .ok()
                    .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok());
                let Some(size) = size else {
                    return statuses;
                };
                rest = &rest[(eol + 2 + size + 2).min(rest.len())..];
                if size == 0 {
                    break;
                }
            }
        } else if let Some(len) = header("content-length:").and_then(|v| v.parse::<usize>().ok()) {
            rest = &rest[len.min(rest.len())..];
        } else {
            break;
        }
    }
    statuses
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What a daemon must do with a request whose framing is ambiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Refused at the HTTP layer: a 400 (or nothing), then the connection is closed.
    Rejected,
    /// Transfer-Encoding wins over Content-Length (RFC 9112 §6.3): the outer request may be
    /// answered, once, and then the connection must be closed, since what follows is suspect.
    AnsweredOnceThenClosed,
}

/// The request smuggling variants: each sends `POST <outer>` with a body that holds, or is
/// followed by, a complete second request `GET <smuggled>`. A server that reads the framing
/// one way while a proxy in front reads it the other would answer that second request.
fn smuggling_variants(
    outer: &str,
    smuggled: &str,
    headers: &str,
) -> Vec<(&'static str, Expect, Vec<u8>)> {
    use Expect::*;
    let inner = format!("GET {smuggled} HTTP/1.1\r\nhost: x\r\n{headers}connection: close\r\n\r\n");
    let head = |version: &str, framing: &str| {
        format!("POST {outer} {version}\r\nhost: x\r\n{headers}content-type: application/json\r\n{framing}\r\n")
    };
    let build = |version: &str, framing: &str, body: &str| {
        let mut bytes = head(version, framing).into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        bytes
    };
    // CL.TE: the chunked body ends at once; Content-Length covers the smuggled request too.
    let cl_te_body = format!("0\r\n\r\n{inner}");
    let cl_full = cl_te_body.len();
    // TE.CL: the smuggled request is chunk data; Content-Length covers only the size line.
    let size_line = format!("{:x}\r\n", inner.len());
    let te_cl_body = format!("{size_line}{inner}\r\n0\r\n\r\n");
    let cl_size_line = size_line.len();
    let n = inner.len();
    vec![
        (
            "Content-Length then Transfer-Encoding: chunked (CL.TE)",
            AnsweredOnceThenClosed,
            build(
                "HTTP/1.1",
                &format!("content-length: {cl_full}\r\ntransfer-encoding: chunked\r\n"),
                &cl_te_body,
            ),
        ),
        (
            "Transfer-Encoding: chunked then Content-Length (CL.TE, reversed)",
            AnsweredOnceThenClosed,
            build(
                "HTTP/1.1",
                &format!("transfer-encoding: chunked\r\ncontent-length: {cl_full}\r\n"),
                &cl_te_body,
            ),
        ),
        (
            "Transfer-Encoding: chunked with a short Content-Length (TE.CL)",
            AnsweredOnceThenClosed,
            build(
                "HTTP/1.1",
                &format!("content-length: {cl_size_line}\r\ntransfer-encoding: chunked\r\n"),
                &te_cl_body,
            ),
        ),
        (
            "Transfer-Encoding: CHUNKED (case) with Content-Length",
            AnsweredOnceThenClosed,
            build(
                "HTTP/1.1",
                &format!("content-length: {cl_full}\r\ntransfer-encoding: CHUNKED\r\n"),
                &cl_te_body,
            ),
        ),
        (
            "two Content-Length headers, 0 then the body's length",
            Rejected,
            build(
                "HTTP/1.1",
                &format!("content-length: 0\r\ncontent-length: {n}\r\n"),
                &inner,
            ),
        ),
        (
            "two Content-Length headers, the body's length then 0",
            Rejected,
            build(
                "HTTP/1.1",
                &format!("content-length: {n}\r\ncontent-length: 0\r\n"),
                &inner,
            ),
        ),
        (
            "Content-Length: 0, <n> (a list)",
            Rejected,
            build("HTTP/1.1", &format!("content-length: 0, {n}\r\n"), &inner),
        ),
        (
            "Transfer-Encoding: chunked, identity",
            Rejected,
            build(
                "HTTP/1.1",
                &format!("content-length: {cl_full}\r\ntransfer-encoding: chunked, identity\r\n"),
                &cl_te_body,
            ),
        ),
        (
            "Transfer-Encoding: chunked and a second Transfer-Encoding: identity",
            Rejected,
            build(
                "HTTP/1.1",
                &format!(
                    "content-length: {cl_full}\r\ntransfer-encoding: chunked\r\ntransfer-encoding: identity\r\n"
                ),
                &cl_te_body,
            ),
        ),
        (
            "Transfer-Encoding : chunked (space before the colon)",
            Rejected,
            build(
                "HTTP/1.1",
                &format!("content-length: {cl_full}\r\ntransfer-encoding : chunked\r\n"),
                &cl_te_body,
            ),
        ),
        (
            "Transfer-Encoding: xchunked",
            Rejected,
            build(
                "HTTP/1.1",
                &format!("content-length: {cl_full}\r\ntransfer-encoding: xchunked\r\n"),
                &cl_te_body,
            ),
        ),
        (
            "Transfer-Encoding folded onto a continuation line (obs-fold)",
            Rejected,
            build(
                "HTTP/1.1",
                &format!("content-length: {cl_full}\r\ntransfer-encoding:\r\n chunked\r\n"),
                &cl_te_body,
            ),
        ),
        (
            "Transfer-Encoding: chunked on HTTP/1.0",
            Rejected,
            build(
                "HTTP/1.0",
                &format!("content-length: {cl_full}\r\ntransfer-encoding: chunked\r\n"),
                &cl_te_body,
            ),
        ),
    ]
}

/// A well-framed request followed on the same connection by a genuine second one: the way the
/// variants are read does see a second answer when there is one.
fn pipelined_control(outer: &str, second: &str, headers: &str) -> Vec<u8> {
    format!(
        "POST {outer} HTTP/1.1\r\nhost: x\r\n{headers}content-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}\
         GET {second} HTTP/1.1\r\nhost: x\r\n{headers}connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Sends every variant to `port` and checks that none got a second request answered.
/// `smuggled_status` is the status only the smuggled request could get (None if the outer
/// request can get it too; the caller then checks by other means).
fn attack_with_smuggling(
    daemon: &str,
    port: u16,
    outer: &str,
    smuggled: &str,
    headers: &str,
    smuggled_status: Option<u16>,
) {
    for (variant, expect, request) in smuggling_variants(outer, smuggled, headers) {
        let got = exchange(port, &request);
        eprintln!("{daemon}: {variant}: answers {:?}", got.answers);
        assert!(
            got.answers.len() <= 1 && got.status_line_count <= 1,
            "{daemon}: {variant}: a second request was answered on the connection: {got:?}"
        );
        if let Some(status) = smuggled_status {
            assert!(
                !got.answers.contains(&status),
                "{daemon}: {variant}: the smuggled request was answered: {got:?}"
            );
        }
        assert!(
            got.closed,
            "{daemon}: {variant}: the connection was left open after an ambiguous request: {got:?}"
        );
        if expect == Expect::Rejected {
            assert!(
                got.answers.iter().all(|s| *s == 400),
                "{daemon}: {variant}: not refused with a 400: {got:?}"
            );
        }
    }
}

#[test]
fn request_smuggling_is_refused_by_latchkey_auth() {
    let auth = Auth::start();
    let port = auth.daemon.port();
    // POST get-session reads its body and answers 405; only the smuggled GET /healthz is 200.
    let outer = "/api/auth/get-session";
    let control = exchange(port, &pipelined_control(outer, "/healthz", ""));
    assert_eq!(control.answers, vec![405, 200], "{control:?}");
    attack_with_smuggling("latchkey-auth", port, outer, "/healthz", "", Some(200));
    // Still serving.
    auth.client().get("/healthz").send().expect(200);
}

#[test]
fn request_smuggling_is_refused_by_latchkey_api() {
    let auth = Auth::start();
    let api = Api::start(&auth);
    let port = api.daemon.port();
    // POST /api/me is a 405; only the smuggled GET /healthz is 200.
    let outer = "/api/me";
    let control = exchange(port, &pipelined_control(outer, "/healthz", ""));
    assert_eq!(control.answers, vec![405, 200], "{control:?}");
    attack_with_smuggling("latchkey-api", port, outer, "/healthz", "", Some(200));
    api.client().get("/healthz").send().expect(200);
}

/// As a reverse proxy, latchkey-api must not let a smuggled request reach the upstream, nor
/// forward a request whose framing the upstream could read differently.
#[test]
fn request_smuggling_does_not_reach_the_upstream_of_latchkey_api() {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);
    let upstream = Upstream::start();
    let api = Api::start_with(&auth.url(), |s| s.env("LATCHKEY_UPSTREAM", upstream.url()));
    let port = api.daemon.port();
    // Both requests carry a valid token: a smuggled one would be forwarded if it were parsed.
    let headers = format!("authorization: Bearer {token}\r\n");
    let control = exchange(port, &pipelined_control("/outer", "/control", &headers));
    assert_eq!(control.answers, vec![200, 200], "{control:?}");
    let targets: Vec<String> = upstream.received().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/outer", "/control"]);

    attack_with_smuggling(
        "latchkey-api (proxy)",
        port,
        "/outer",
        "/smuggled",
        &headers,
        None,
    );
    let received = upstream.received();
    for r in &received {
        assert!(
            r.target == "/outer" || r.target == "/control",
            "a smuggled request reached the upstream: {} {} ({:?})",
            r.method,
            r.target,
            r.headers
        );
        assert!(
            !(r.header("content-length").is_some() && r.header("transfer-encoding").is_some()),
            "forwarded with both Content-Length and Transfer-Encoding: {:?}",
            r.headers
        );
    }
    // The variants that are answered once were forwarded once (Transfer-Encoding wins).
    let outer = received.iter().filter(|r| r.target == "/outer").count();
    assert_eq!(outer, 1 + 4, "{received:?}");
}

/// 30 sign-ins at once from one client: the counter is one atomic upsert, so exactly the
/// limit (3) reach the password check and the other 27 are refused.
#[test]
fn thirty_parallel_sign_ins_let_exactly_three_through() {
    let auth = Auth::start_with(|s| {
        s.env("LATCHKEY_RATE_LIMIT", "on")
            // A long window: a slow machine must not see the window reset mid-test.
            .env("LATCHKEY_RATE_LIMIT_WINDOW", "600")
    });
    let user = auth.new_user();
    let email = user.email();
    let barrier = Barrier::new(30);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..30)
            .map(|_| {
                let client = auth.client();
                let (barrier, email) = (&barrier, &email);
                scope.spawn(move || {
                    barrier.wait();
                    client
                        .post("/api/auth/sign-in/email")
                        .json(&json!({"email": email, "password": PASSWORD}))
                        .send()
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let count = |s: u16| statuses.iter().filter(|x| **x == s).count();
    assert_eq!(count(200), 3, "{statuses:?}");
    assert_eq!(count(429), 27, "{statuses:?}");
    // The three that got through signed in: three new sessions next to the sign-up's.
    let sessions = auth.db.query(
        r#"select count(*) from "session" where "userId" = $1"#,
        &[&user.user_id()],
    )[0]
    .get::<_, i64>(0);
    assert_eq!(sessions, 1 + 3);
}

/// One request on its own connection; its status (0 if there was no answer).
fn raw_sign_in(port: u16, target: &str, body: &Value) -> u16 {
    let body = body.to_string();
    let request = format!(
        "POST {target} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let got = exchange(port, request.as_bytes());
    assert!(got.answers.len() <= 1, "{target}: {got:?}");
    got.answers.first().copied().unwrap_or(0)
}

/// Once the sign-in limit is used up, no spelling of the path gets to the password check:
/// the router matches paths exactly (no normalising of case, slashes, dot segments or
/// percent-escapes), so a variant is either the endpoint itself, limited (429), or no
/// endpoint at all (404). Each is sent with the right password, so a bypass would be a 200.
#[test]
fn path_variants_do_not_bypass_the_sign_in_limit() {
    let auth = Auth::start_with(|s| {
        s.env("LATCHKEY_RATE_LIMIT", "on")
            .env("LATCHKEY_RATE_LIMIT_WINDOW", "600")
    });
    let port = auth.daemon.port();
    let user = auth.new_user();
    let right = json!({"email": user.email(), "password": PASSWORD});
    let wrong = json!({"email": user.email(), "password": "not the password"});
    for _ in 0..3 {
        assert_eq!(raw_sign_in(port, "/api/auth/sign-in/email", &wrong), 401);
    }
    assert_eq!(raw_sign_in(port, "/api/auth/sign-in/email", &right), 429);

    let absolute = format!("http://127.0.0.1:{port}/api/auth/sign-in/email");
    let variants: Vec<(&str, u16)> = vec![
        // The endpoint itself, however the target is written: limited.
        ("/api/auth/sign-in/email?x=1", 429),
        ("/api/auth/sign-in/email?", 429),
        (absolute.as_str(), 429),
        // Not the endpoint: no route.
        ("/api/auth/sign-in/email/", 404),
        ("//api/auth/sign-in/email", 404),
        ("/api/auth//sign-in/email", 404),
        ("/api/auth/Sign-In/Email", 404),
        ("/API/AUTH/SIGN-IN/EMAIL", 404),
        ("/api/auth/sign-in/%65mail", 404),
        ("/api/auth/sign-in%2Femail", 404),
        ("/api/auth/sign-in/./email", 404),
        ("/api/auth/x/../sign-in/email", 404),
        ("/api/auth/sign-in/email;x=1", 404),
    ];
    for (target, expected) in variants {
        let status = raw_sign_in(port, target, &right);
        assert_ne!(status, 200, "{target} signed in past the limit");
        assert_ne!(
            status, 401,
            "{target} reached the password check past the limit"
        );
        assert_eq!(status, expected, "{target}");
    }
    // Nothing but the sign-up opened a session.
    let sessions = auth.db.query(
        r#"select count(*) from "session" where "userId" = $1"#,
        &[&user.user_id()],
    )[0]
    .get::<_, i64>(0);
    assert_eq!(sessions, 1);
}

/// The session token of a sign-in answer's cookie (the part before the signature).
fn cookie_token(resp: &latchkey_e2e::Resp) -> String {
    let cookie = resp
        .set_cookie(SESSION_COOKIE)
        .unwrap_or_else(|| panic!("no session cookie set: {:?}", resp.headers));
    assert!(!cookie.is_removal(), "{}", cookie.raw);
    let value = cookie.decoded_value();
    let (token, _signature) = value.rsplit_once('.').expect("token.signature");
    token.to_string()
}

fn get_session(auth: &Auth, jar: &CookieJar) -> Value {
    let r = auth
        .client()
        .get("/api/auth/get-session")
        .cookies(jar)
        .send();
    r.expect(200);
    r.json()
}

/// Signs `victim` in from a browser that carries `planted` as its session cookie.
fn sign_in_with_planted_cookie(auth: &Auth, victim: &Session, planted: &str) -> Session {
    let mut jar = CookieJar::new();
    jar.set(SESSION_COOKIE, planted);
    let r = auth
        .browser()
        .post("/api/auth/sign-in/email")
        .cookies(&jar)
        .json(&json!({"email": victim.email(), "password": PASSWORD}))
        .send();
    r.expect(200);
    Session::from_resp(r)
}

/// A session cookie planted before sign-in (the attacker's own session, or a value the
/// attacker made up, even one signed correctly) is replaced by a fresh session, and the
/// planted value never becomes the victim's session.
#[test]
fn session_fixation_a_planted_cookie_is_not_kept() {
    let auth = Auth::start();
    let attacker = auth.new_user();
    let victim = auth.new_user();

    // The attacker's own valid session cookie.
    let planted = attacker
        .jar
        .get(SESSION_COOKIE)
        .expect("attacker cookie")
        .to_string();
    let s = sign_in_with_planted_cookie(&auth, &victim, &planted);
    let new_token = cookie_token(&s.resp);
    assert_ne!(new_token, attacker.token);
    assert_eq!(s.token, new_token);
    assert_eq!(s.user_id(), victim.user_id());
    // The planted session is still the attacker's, not upgraded to the victim.
    let v = get_session(&auth, &attacker.jar);
    assert_eq!(v["user"]["id"], attacker.user_id().as_str(), "{v}");
    assert_eq!(v["session"]["token"], attacker.token.as_str(), "{v}");
    let v = get_session(&auth, &s.jar);
    assert_eq!(v["user"]["id"], victim.user_id().as_str(), "{v}");

    // Made-up values: unsigned, signed with another secret, and signed with the real one
    // (the worst case: only the token is unknown to the server).
    let made_up = random_string(32);
    let planted_values = [
        made_up.clone(),
        format!(
            "{made_up}.{}",
            jwt::cookie_signature("some-other-secret-that-is-long-enough", &made_up)
        ),
        format!(
            "{made_up}.{}",
            jwt::cookie_signature(&auth.secret, &made_up)
        ),
    ];
    for planted in &planted_values {
        let wire = percent_encode(planted);
        let s = sign_in_with_planted_cookie(&auth, &victim, &wire);
        let new_token = cookie_token(&s.resp);
        assert_ne!(new_token, made_up, "planted {planted}");
        assert_eq!(s.token, new_token);
        // The planted value authenticates nothing, before or after the sign-in.
        let mut jar = CookieJar::new();
        jar.set(SESSION_COOKIE, &wire);
        assert_eq!(get_session(&auth, &jar), Value::Null, "planted {planted}");
        let r = auth.client().get("/api/auth/token").bearer(planted).send();
        assert_eq!(r.status, 401, "planted {planted} as bearer: {}", r.text());
    }
    assert_eq!(
        auth.db.query(
            r#"select count(*) from "session" where "token" = $1"#,
            &[&made_up]
        )[0]
        .get::<_, i64>(0),
        0,
        "a session was stored under the planted token"
    );
}

/// Both daemons at `LATCHKEY_LOG=trace` through sign-up, sign-in, get-session, a JWT and its
/// verification: no secret, password, session token, hash or JWT appears in their logs.
#[test]
fn no_secret_reaches_the_logs_at_trace_level() {
    let auth = Auth::start_with(|s| s.env("LATCHKEY_LOG", "trace"));
    let api = Api::start_with(&auth.url(), |s| s.env("LATCHKEY_LOG", "trace"));
    let up = auth.new_user();
    auth.sign_in_resp(&up.email(), "a wrong password")
        .expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    let s = auth.sign_in(&up.email(), PASSWORD);
    let v = get_session(&auth, &s.jar);
    assert_eq!(v["session"]["token"], s.token.as_str(), "{v}");
    let token = auth.jwt(&s);
    api.me(&token).expect(200);
    let hash: String = auth.db.query(
        r#"select "password" from "account" where "userId" = $1"#,
        &[&up.user_id()],
    )[0]
    .get(0);
    let jwt_signature = token.rsplit('.').next().unwrap().to_string();

    let logs = [
        ("auth log", auth.daemon.log()),
        ("api log", api.daemon.log()),
    ];
    // The level really was verbose: the access lines are debug, and latchkey-api's HTTP client
    // (hyper-util, fetching the JWKS) logs at trace.
    assert!(
        logs[0].1.contains(" DEBUG ") && logs[1].1.contains(" DEBUG "),
        "no debug lines: {logs:?}"
    );
    assert!(
        logs[1].1.contains(" TRACE "),
        "no trace lines: {}",
        logs[1].1
    );
    let secrets = [
        ("BETTER_AUTH_SECRET", auth.secret.as_str()),
        ("the password", PASSWORD),
        ("a wrong password", "a wrong password"),
        ("the sign-up session token", up.token.as_str()),
        ("the sign-in session token", s.token.as_str()),
        ("the signed bearer", s.bearer.as_str()),
        ("the JWT", token.as_str()),
        ("the JWT's signature", jwt_signature.as_str()),
        ("the password hash", hash.as_str()),
    ];
    for (what, text) in &logs {
        for (name, secret) in secrets {
            if let Some(i) = text.find(secret) {
                let line = text[..i].rsplit('\n').next().unwrap_or("");
                panic!("{what} contains {name}, in a line starting: {line:.200}");
            }
        }
    }
}
