//! latchkey-auth as a browser app on another origin meets it, over real sockets: the CORS
//! preflight matrix and actual responses, the cookie-policy settings' exact `Set-Cookie` lines
//! (and that cookies are read back under the same names), the request id, and the IPv6 /64
//! rate-limit bucket behind a trusted proxy.

use latchkey_e2e::stack::{Auth, PASSWORD, TRUSTED_ORIGIN};
use latchkey_e2e::{random_email, Resp};
use serde_json::json;

fn preflight(auth: &Auth, path: &str, origin: &str) -> Resp {
    auth.client()
        .request("OPTIONS", path)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .send()
}

fn cors_headers(r: &Resp) -> Vec<String> {
    let mut names: Vec<String> = r
        .headers
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| k.starts_with("access-control-"))
        .collect();
    names.sort();
    names
}

/// A trusted origin's preflight is granted with credentials, its own origin echoed (never `*`).
#[test]
fn preflight_matrix() {
    let auth = Auth::start_with(|s| {
        s.env(
            "BETTER_AUTH_TRUSTED_ORIGINS",
            format!("{TRUSTED_ORIGIN}, https://*.example.test"),
        )
    });
    for (origin, granted) in [
        (TRUSTED_ORIGIN, true),
        ("https://app.example.test", true),
        ("https://deep.app.example.test", true),
        (auth.url().as_str(), true),
        ("https://example.test", false),
        ("https://example.test.evil.com", false),
        ("http://app.example.test", false),
        ("http://evil.example", false),
        ("null", false),
    ] {
        for path in [
            "/api/auth/sign-in/email",
            "/api/auth/get-session",
            "/api/auth/nope",
        ] {
            let r = preflight(&auth, path, origin);
            assert_eq!(r.status, 204, "{origin} {path}: {}", r.text());
            assert!(r.text().is_empty());
            if granted {
                assert_eq!(r.header("access-control-allow-origin"), Some(origin));
                assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
                let methods = r.header("access-control-allow-methods").unwrap_or("");
                assert!(
                    methods.contains("POST") && methods.contains("GET"),
                    "{methods}"
                );
                let headers = r.header("access-control-allow-headers").unwrap_or("");
                assert!(
                    headers.contains("content-type") && headers.contains("authorization"),
                    "{headers}"
                );
                assert_eq!(r.header("access-control-max-age"), Some("600"));
            } else {
                assert!(cors_headers(&r).is_empty(), "{origin}: {:?}", r.headers);
            }
            assert!(
                r.headers_all("vary").iter().any(|v| v.contains("origin")),
                "{:?}",
                r.headers
            );
        }
    }
    // An OPTIONS that is not a preflight is not a CORS matter: Better-Auth's 404.
    auth.client()
        .request("OPTIONS", "/api/auth/sign-in/email")
        .header("origin", TRUSTED_ORIGIN)
        .send()
        .expect(404);
}

/// Actual responses, successes and errors alike, carry the grant for a trusted origin and
/// expose the headers the Better-Auth client reads; an untrusted origin gets no CORS header.
#[test]
fn actual_responses_carry_the_grant() {
    // Access log lines are debug-level (target `access`), off by default.
    let auth = Auth::start_with(|s| s.env("LATCHKEY_LOG", "info,access=debug"));
    let s = auth.new_user();
    let get_session = |origin: &str| {
        auth.client()
            .get("/api/auth/get-session")
            .header("origin", origin)
            .bearer(&s.bearer)
            .send()
    };
    let r = get_session(TRUSTED_ORIGIN);
    r.expect(200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(TRUSTED_ORIGIN)
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("set-auth-token, set-auth-jwt")
    );
    assert!(r.header("set-auth-jwt").is_some());
    assert!(r.headers_all("vary").iter().any(|v| v.contains("origin")));

    let r = get_session("http://evil.example");
    r.expect(200);
    assert!(cors_headers(&r).is_empty(), "{:?}", r.headers);

    // Errors and 404s pass the same exit.
    let r = auth
        .client()
        .post("/api/auth/sign-in/email")
        .header("origin", TRUSTED_ORIGIN)
        .json(&json!({"email": random_email(), "password": PASSWORD}))
        .send();
    r.expect_error(401, "INVALID_EMAIL_OR_PASSWORD");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(TRUSTED_ORIGIN)
    );
    let r = auth
        .client()
        .get("/api/auth/nope")
        .header("origin", TRUSTED_ORIGIN)
        .send();
    r.expect(404);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(TRUSTED_ORIGIN)
    );
    // A body over the cap is refused before any route sees it, through the same exit.
    let big = auth
        .client()
        .post("/api/auth/sign-up/email")
        .header("origin", TRUSTED_ORIGIN)
        .body("application/json", vec![b' '; 70 * 1024])
        .send();
    big.expect(413);
    assert_eq!(
        big.header("access-control-allow-origin"),
        Some(TRUSTED_ORIGIN)
    );
    assert!(big.header("x-request-id").is_some(), "{:?}", big.headers);

    // Every response names its request, and the access log line says the same id.
    let id = r.header("x-request-id").expect("X-Request-Id").to_string();
    let log = auth.daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&id) && l.contains("/api/auth/nope") && l.contains("404")),
        "no access log line for {id}:\n{log}"
    );
    let other = auth.client().get("/api/auth/ok").send();
    assert_ne!(other.header("x-request-id"), Some(id.as_str()));
}

/// `LATCHKEY_CORS=off`, for a reverse proxy that does CORS itself: no header of ours, and a
/// preflight is Better-Auth's 404 again.
#[test]
fn cors_off() {
    let auth = Auth::start_with(|s| s.env("LATCHKEY_CORS", "off"));
    let r = preflight(&auth, "/api/auth/sign-in/email", TRUSTED_ORIGIN);
    r.expect(404);
    assert!(cors_headers(&r).is_empty());
    let s = auth.new_user();
    let r = auth
        .client()
        .get("/api/auth/get-session")
        .header("origin", TRUSTED_ORIGIN)
        .bearer(&s.bearer)
        .send();
    r.expect(200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // Better-Auth's own expose header stays, as without CORS there.
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("set-auth-jwt")
    );
}

fn sign_up_cookies(auth: &Auth) -> (Vec<String>, String) {
    let r = auth
        .client()
        .post("/api/auth/sign-up/email")
        .json(&json!({"name": "C", "email": random_email(), "password": PASSWORD}))
        .send();
    r.expect(200);
    let lines: Vec<String> = r
        .headers_all("set-cookie")
        .iter()
        .map(|s| s.to_string())
        .collect();
    (
        lines,
        r.json()["token"].as_str().unwrap_or_default().to_string(),
    )
}

/// Settings, the cookie name they give, and its attributes after the value.
type CookieCase<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);

/// Each cookie-policy setting gives exactly Better-Auth's `Set-Cookie` line, and the cookie
/// is read back under the name it was set with (and only under it).
#[test]
fn cookie_policy_settings() {
    let cases: &[CookieCase] = &[
        (
            &[],
            "better-auth.session_token",
            "Max-Age=604800; Path=/; HttpOnly; SameSite=Lax",
        ),
        (
            &[("LATCHKEY_COOKIE_PREFIX", "myapp")],
            "myapp.session_token",
            "Max-Age=604800; Path=/; HttpOnly; SameSite=Lax",
        ),
        (
            &[("LATCHKEY_SECURE_COOKIES", "true")],
            "__Secure-better-auth.session_token",
            "Max-Age=604800; Path=/; HttpOnly; Secure; SameSite=Lax",
        ),
        (
            &[("LATCHKEY_COOKIE_DOMAIN", "example.test")],
            "better-auth.session_token",
            "Max-Age=604800; Domain=example.test; Path=/; HttpOnly; SameSite=Lax",
        ),
        (
            &[("LATCHKEY_COOKIE_SAME_SITE", "none")],
            "better-auth.session_token",
            "Max-Age=604800; Path=/; HttpOnly; Secure; SameSite=None",
        ),
        (
            &[("LATCHKEY_COOKIE_SAME_SITE", "strict")],
            "better-auth.session_token",
            "Max-Age=604800; Path=/; HttpOnly; SameSite=Strict",
        ),
        (
            &[
                ("LATCHKEY_SECURE_COOKIES", "true"),
                ("LATCHKEY_COOKIE_PREFIX", "myapp"),
                ("LATCHKEY_COOKIE_DOMAIN", ".example.test"),
                ("LATCHKEY_COOKIE_SAME_SITE", "none"),
            ],
            "__Secure-myapp.session_token",
            "Max-Age=604800; Domain=.example.test; Path=/; HttpOnly; Secure; SameSite=None",
        ),
    ];
    for (env, name, attributes) in cases {
        let auth = Auth::start_with(|mut s| {
            for (k, v) in *env {
                s = s.env(k, *v);
            }
            s
        });
        let (lines, token) = sign_up_cookies(&auth);
        assert_eq!(lines.len(), 1, "{env:?}: {lines:?}");
        let (pair, attrs) = lines[0].split_once("; ").unwrap_or_default();
        assert_eq!(attrs, *attributes, "{env:?}");
        let (got_name, value) = pair.split_once('=').unwrap_or_default();
        assert_eq!(got_name, *name, "{env:?}");

        // Read back under that name; under the default name it is not a session.
        let with_cookie = |cookie: String| {
            auth.client()
                .get("/api/auth/get-session")
                .header("cookie", &cookie)
                .send()
                .json()
        };
        assert_eq!(
            with_cookie(format!("{name}={value}"))["session"]["token"],
            token.as_str(),
            "{env:?}"
        );
        if *name != "better-auth.session_token" {
            assert!(with_cookie(format!("better-auth.session_token={value}")).is_null());
        }

        // Sign-out expires all three cookies with the same attributes.
        let r = auth
            .client()
            .post("/api/auth/sign-out")
            .header("cookie", &format!("{name}={value}"))
            .header("origin", &auth.url())
            .send();
        r.expect(200);
        let prefix = name.trim_end_matches("session_token");
        let expired: Vec<&str> = r.headers_all("set-cookie");
        let removal_attrs = attributes.replace("Max-Age=604800", "Max-Age=0");
        for short in ["session_token", "session_data", "dont_remember"] {
            let want = format!("{prefix}{short}=; {removal_attrs}");
            assert!(
                expired.contains(&want.as_str()),
                "{want} not in {expired:?}"
            );
        }
    }
}

/// Regression: the limiter keyed on the full address, so one IPv6 /64 (one subscriber) got
/// a fresh limit per address. Behind a trusted proxy, `::1`, `::2`, `::3` of one /64 share
/// the limit of 3 and `::4` is refused; another /64 is not affected.
#[test]
fn ipv6_clients_share_a_bucket_per_64() {
    let auth = Auth::start_with(|s| {
        s.env("LATCHKEY_RATE_LIMIT", "on")
            .env("LATCHKEY_RATE_LIMIT_WINDOW", "600")
            .env("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32")
    });
    let attempt = |xff: &str| {
        auth.client()
            .post("/api/auth/sign-in/email")
            .header("x-forwarded-for", xff)
            .json(&json!({"email": random_email(), "password": PASSWORD}))
            .send()
    };
    for host in 1..=3 {
        attempt(&format!("2001:db8::{host}")).expect(401);
    }
    attempt("2001:db8::4").expect(429);
    attempt("2001:db8:0:1::4").expect(401);
}
