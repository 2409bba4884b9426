//! `latchkey-api` CORS: preflights answered before authentication, the grant on every actual
//! response (errors included) for an allowed origin and nothing for another, and in proxy
//! mode either latchkey (`LATCHKEY_UPSTREAM_CORS=answer`) or the upstream (`pass`) owning it.

use latchkey_e2e::stack::{Api, Auth, TRUSTED_ORIGIN};
use latchkey_e2e::{DaemonSpec, Resp, Upstream};

/// What the tests' "seed" gives both daemons: one exact origin and one wildcard pattern.
const TRUSTED_LIST: &str = "http://trusted.example, https://*.example.test";
const UNTRUSTED: &str = "https://evil.example";
const WILDCARD_MATCH: &str = "https://app.example.test";
const WILDCARD_NEAR_MISS: &str = "https://example.test.evil.com";
const PROXY_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
const LOCAL_METHODS: &str = "GET, HEAD, OPTIONS";

fn with_trusted(s: DaemonSpec) -> DaemonSpec {
    s.env("BETTER_AUTH_TRUSTED_ORIGINS", TRUSTED_LIST)
}

fn preflight(api: &Api, path: &str, origin: &str) -> Resp {
    api.client()
        .request("OPTIONS", path)
        .header("origin", origin)
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
}

fn cors_headers(r: &Resp) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(k, _)| k.starts_with("access-control-"))
        .cloned()
        .collect()
}

fn assert_no_cors(r: &Resp, what: &str) {
    let found = cors_headers(r);
    assert!(found.is_empty(), "{what}: CORS headers {found:?}");
}

fn vary_has_origin(r: &Resp) -> bool {
    r.headers_all("vary")
        .iter()
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("origin"))
}

fn assert_preflight_granted(r: &Resp, origin: &str, methods: &str, what: &str) {
    assert_eq!(r.status, 204, "{what}: {r:?}");
    assert_eq!(
        r.headers_all("access-control-allow-origin"),
        [origin],
        "{what}"
    );
    assert_eq!(
        r.header("access-control-allow-credentials"),
        Some("true"),
        "{what}"
    );
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some(methods),
        "{what}"
    );
    let allow = r.header("access-control-allow-headers").unwrap_or_default();
    for h in ["authorization", "content-type"] {
        assert!(allow.contains(h), "{what}: allow-headers {allow:?}");
    }
    assert!(r.header("access-control-max-age").is_some(), "{what}");
    assert!(vary_has_origin(r), "{what}: {:?}", r.headers);
    assert!(r.header("x-request-id").is_some(), "{what}");
}

fn assert_preflight_refused(r: &Resp, what: &str) {
    assert_eq!(r.status, 204, "{what}: {r:?}");
    assert_no_cors(r, what);
}

/// The grant on an actual response: exactly one `Allow-Origin`, ours.
fn assert_granted(r: &Resp, origin: &str, what: &str) {
    assert_eq!(
        r.headers_all("access-control-allow-origin"),
        [origin],
        "{what}: {:?}",
        r.headers
    );
    assert_eq!(
        r.header("access-control-allow-credentials"),
        Some("true"),
        "{what}"
    );
    let expose = r
        .header("access-control-expose-headers")
        .unwrap_or_default();
    assert!(
        expose.contains("www-authenticate"),
        "{what}: expose {expose:?}"
    );
    assert!(vary_has_origin(r), "{what}: {:?}", r.headers);
    assert!(r.header("x-request-id").is_some(), "{what}");
}

fn get(api: &Api, path: &str, origin: Option<&str>, token: Option<&str>) -> Resp {
    let mut req = api.client().get(path);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    if let Some(t) = token {
        req = req.bearer(t);
    }
    req.send()
}

#[test]
fn preflights_are_answered_before_authentication_for_allowed_origins_only() {
    let auth = Auth::start();
    let api = Api::start_with(&auth.url(), with_trusted);

    let r = preflight(&api, "/api/me", TRUSTED_ORIGIN);
    assert_preflight_granted(&r, TRUSTED_ORIGIN, LOCAL_METHODS, "exact trusted origin");
    let r = preflight(&api, "/api/me", WILDCARD_MATCH);
    assert_preflight_granted(&r, WILDCARD_MATCH, LOCAL_METHODS, "wildcard match");
    let r = preflight(&api, "/auth/verify", TRUSTED_ORIGIN);
    assert_preflight_granted(&r, TRUSTED_ORIGIN, LOCAL_METHODS, "/auth/verify");

    for origin in [
        UNTRUSTED,
        WILDCARD_NEAR_MISS,
        "https://example.test",
        "http://app.example.test",
        "null",
    ] {
        assert_preflight_refused(&preflight(&api, "/api/me", origin), origin);
        assert_preflight_refused(&preflight(&api, "/auth/verify", origin), origin);
    }
    // Not a CORS route in local mode: routed as before, but still through the one exit.
    let r = preflight(&api, "/nowhere", TRUSTED_ORIGIN);
    assert_eq!(r.status, 404, "{r:?}");
    assert_granted(&r, TRUSTED_ORIGIN, "404 of a preflight elsewhere");
    // A non-preflight OPTIONS is no preflight: /api/me answers 405 as before.
    let r = api
        .client()
        .request("OPTIONS", "/api/me")
        .header("origin", TRUSTED_ORIGIN)
        .send();
    assert_eq!(r.status, 405, "{r:?}");
    assert_granted(
        &r,
        TRUSTED_ORIGIN,
        "405 of an OPTIONS without request method",
    );
}

#[test]
fn actual_responses_carry_the_grant_for_allowed_origins_only() {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);
    let api = Api::start_with(&auth.url(), with_trusted);

    for path in ["/api/me", "/auth/verify"] {
        for origin in [TRUSTED_ORIGIN, WILDCARD_MATCH] {
            let ok = get(&api, path, Some(origin), Some(&token));
            ok.expect(200);
            assert_granted(&ok, origin, &format!("200 {path} from {origin}"));
            let denied = get(&api, path, Some(origin), None);
            denied.expect(401);
            assert!(denied
                .header("www-authenticate")
                .is_some_and(|w| w.starts_with("Bearer")));
            assert_granted(&denied, origin, &format!("401 {path} from {origin}"));
        }
        for origin in [UNTRUSTED, WILDCARD_NEAR_MISS] {
            let ok = get(&api, path, Some(origin), Some(&token));
            ok.expect(200);
            assert_no_cors(&ok, &format!("200 {path} from {origin}"));
            assert!(vary_has_origin(&ok));
            let denied = get(&api, path, Some(origin), None);
            denied.expect(401);
            assert!(denied.header("www-authenticate").is_some());
            assert_no_cors(&denied, &format!("401 {path} from {origin}"));
        }
        let plain = get(&api, path, None, Some(&token));
        plain.expect(200);
        assert_no_cors(&plain, &format!("{path} without Origin"));
    }
    // Errors of every kind leave through the same exit.
    let r = api
        .client()
        .post("/api/me")
        .header("origin", TRUSTED_ORIGIN)
        .send();
    assert_eq!(r.status, 405);
    assert_granted(&r, TRUSTED_ORIGIN, "405");
    let r = get(&api, "/nowhere", Some(TRUSTED_ORIGIN), Some(&token));
    assert_eq!(r.status, 404);
    assert_granted(&r, TRUSTED_ORIGIN, "404");
    // Every response is named.
    let a = get(&api, "/healthz", None, None);
    let b = get(&api, "/healthz", None, None);
    let (a, b) = (a.header("x-request-id"), b.header("x-request-id"));
    assert!(a.is_some() && a != b, "{a:?} {b:?}");
}

#[test]
fn cors_off_no_origins_origin_override_and_extra_allow_headers() {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);

    // Off: no CORS header anywhere; the preflight is an OPTIONS like before (405 on /api/me).
    let off = Api::start_with(&auth.url(), |s| with_trusted(s).env("LATCHKEY_CORS", "off"));
    let r = preflight(&off, "/api/me", TRUSTED_ORIGIN);
    assert_eq!(r.status, 405, "{r:?}");
    assert_no_cors(&r, "preflight with CORS off");
    let r = get(&off, "/api/me", Some(TRUSTED_ORIGIN), Some(&token));
    r.expect(200);
    assert_no_cors(&r, "200 with CORS off");
    assert!(r.header("x-request-id").is_some());
    drop(off);

    // No origin configured anywhere: effectively off.
    let none = Api::start_with(&auth.url(), |s| s);
    let r = preflight(&none, "/api/me", TRUSTED_ORIGIN);
    assert_eq!(r.status, 405, "{r:?}");
    assert_no_cors(&r, "preflight without origins");
    drop(none);

    // LATCHKEY_CORS_ORIGINS replaces BETTER_AUTH_TRUSTED_ORIGINS; custom request headers.
    let only = "https://only.example";
    let api = Api::start_with(&auth.url(), |s| {
        with_trusted(s)
            .env("LATCHKEY_CORS_ORIGINS", only)
            .env("LATCHKEY_CORS_ALLOW_HEADERS", "X-Tenant, x-trace-id")
    });
    let r = preflight(&api, "/api/me", only);
    assert_preflight_granted(&r, only, LOCAL_METHODS, "LATCHKEY_CORS_ORIGINS");
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("authorization, content-type, x-tenant, x-trace-id")
    );
    for origin in [TRUSTED_ORIGIN, WILDCARD_MATCH] {
        assert_preflight_refused(&preflight(&api, "/api/me", origin), origin);
        let r = get(&api, "/api/me", Some(origin), Some(&token));
        r.expect(200);
        assert_no_cors(&r, origin);
    }
    assert_granted(
        &get(&api, "/api/me", Some(only), Some(&token)),
        only,
        "override",
    );
}

/// An upstream that does CORS its own way (answers everything with `*` and its own header).
fn cors_upstream() -> Upstream {
    Upstream::start_with_headers(&[
        (
            "access-control-allow-origin",
            "https://upstream-choice.example",
        ),
        ("access-control-expose-headers", "x-upstream-only"),
        ("vary", "x-upstream-vary"),
    ])
}

#[test]
fn proxy_answer_mode_keeps_preflights_and_cors_to_itself() {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);
    let upstream = cors_upstream();
    let api = Api::start_with(&auth.url(), |s| {
        with_trusted(s).env("LATCHKEY_UPSTREAM", upstream.url())
    });

    for path in ["/things/1", "/api/me"] {
        let r = preflight(&api, path, TRUSTED_ORIGIN);
        assert_preflight_granted(&r, TRUSTED_ORIGIN, PROXY_METHODS, path);
        assert!(r.header("x-upstream").is_none(), "answered by the upstream");
        assert_preflight_refused(&preflight(&api, path, UNTRUSTED), path);
    }
    let r = preflight(&api, "/auth/verify", WILDCARD_MATCH);
    assert_preflight_granted(&r, WILDCARD_MATCH, PROXY_METHODS, "/auth/verify");
    // OPTIONS that is not a preflight needs a token.
    for (what, req) in [
        ("no Origin", api.client().request("OPTIONS", "/things/1")),
        (
            "no request method",
            api.client()
                .request("OPTIONS", "/things/1")
                .header("origin", TRUSTED_ORIGIN),
        ),
        (
            "request method without Origin",
            api.client()
                .request("OPTIONS", "/things/1")
                .header("access-control-request-method", "PUT"),
        ),
    ] {
        let r = req.send();
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert!(r.header("www-authenticate").is_some(), "{what}");
    }
    assert!(
        upstream.received().is_empty(),
        "the upstream saw {:?}",
        upstream.received()
    );

    // Proxied answers carry latchkey's grant instead of the upstream's.
    let r = get(&api, "/things/1", Some(TRUSTED_ORIGIN), Some(&token));
    r.expect(200);
    assert_eq!(r.header("x-upstream"), Some("echo"));
    assert_granted(&r, TRUSTED_ORIGIN, "proxied 200");
    let expose = r
        .header("access-control-expose-headers")
        .unwrap_or_default();
    assert!(!expose.contains("x-upstream-only"), "{expose}");
    let r = get(&api, "/things/1", Some(UNTRUSTED), Some(&token));
    r.expect(200);
    assert_no_cors(&r, "proxied 200 to an untrusted origin");
    let r = get(&api, "/things/1", Some(TRUSTED_ORIGIN), None);
    r.expect(401);
    assert_granted(&r, TRUSTED_ORIGIN, "proxy 401");
    // With a token the non-preflight OPTIONS is proxied like any method.
    let r = api
        .client()
        .request("OPTIONS", "/things/1")
        .bearer(&token)
        .send();
    r.expect(200);
    assert_eq!(r.json()["method"], "OPTIONS");
    let got = upstream.received();
    assert_eq!(got.len(), 3, "{got:?}");
}

#[test]
fn proxy_pass_mode_forwards_preflights_unauthenticated_and_leaves_cors_to_the_upstream() {
    let auth = Auth::start();
    let session = auth.new_user();
    let token = auth.jwt(&session);
    let upstream = cors_upstream();
    let api = Api::start_with(&auth.url(), |s| {
        with_trusted(s)
            .env("LATCHKEY_UPSTREAM", upstream.url())
            .env("LATCHKEY_UPSTREAM_CORS", "pass")
    });
    let upstream_grant = ["https://upstream-choice.example"];

    // A preflight reaches the upstream without a token, and its answer comes back unchanged.
    for origin in [TRUSTED_ORIGIN, UNTRUSTED] {
        let r = api
            .client()
            .request("OPTIONS", "/things/1?x=1")
            .header("origin", origin)
            .header("access-control-request-method", "DELETE")
            .header("x-auth-user-id", "spoofed")
            .header("x_auth_user_email", "spoofed@example.com")
            .send();
        r.expect(200);
        assert_eq!(r.header("x-upstream"), Some("echo"), "{origin}");
        assert_eq!(
            r.headers_all("access-control-allow-origin"),
            upstream_grant,
            "{origin}"
        );
        assert_eq!(
            r.headers_all("access-control-expose-headers"),
            ["x-upstream-only"]
        );
        assert!(r.header("access-control-allow-credentials").is_none());
        assert_eq!(r.headers_all("vary"), ["x-upstream-vary"], "{origin}");
        let v = r.json();
        assert_eq!(v["method"], "OPTIONS");
        assert_eq!(v["target"], "/things/1?x=1");
        assert_eq!(v["headers"]["origin"], origin);
        assert_eq!(v["headers"]["access-control-request-method"], "DELETE");
    }
    // A token on a preflight is neither checked nor forwarded.
    let r = api
        .client()
        .request("OPTIONS", "/things/2")
        .header("origin", TRUSTED_ORIGIN)
        .header("access-control-request-method", "PUT")
        .bearer("not-a-jwt")
        .header("cookie", "session=x")
        .send();
    r.expect(200);
    assert_eq!(r.header("x-upstream"), Some("echo"));
    let got = upstream.received();
    assert_eq!(got.len(), 3, "{got:?}");
    for rec in &got {
        for (k, v) in &rec.headers {
            let normal = k.replace('_', "-");
            assert!(
                !normal.starts_with("x-auth-"),
                "identity header on a preflight: {k}: {v}"
            );
        }
        assert!(rec.header("authorization").is_none(), "{rec:?}");
        assert!(rec.header("cookie").is_none(), "{rec:?}");
    }

    // Any other OPTIONS still needs a token.
    for req in [
        api.client().request("OPTIONS", "/things/1"),
        api.client()
            .request("OPTIONS", "/things/1")
            .header("origin", TRUSTED_ORIGIN),
    ] {
        let r = req.send();
        assert_eq!(r.status, 401, "{r:?}");
        assert!(r.header("www-authenticate").is_some());
    }
    assert_eq!(upstream.received().len(), 3);

    // Actual proxied responses: the upstream's CORS headers as they were, nothing of ours.
    let r = get(&api, "/things/1", Some(TRUSTED_ORIGIN), Some(&token));
    r.expect(200);
    assert_eq!(r.headers_all("access-control-allow-origin"), upstream_grant);
    assert_eq!(
        r.headers_all("access-control-expose-headers"),
        ["x-upstream-only"]
    );
    assert_eq!(r.headers_all("vary"), ["x-upstream-vary"]);
    assert_eq!(r.json()["headers"]["x-auth-user-id"], session.user["id"]);
    // latchkey's own answers keep latchkey's CORS: a 401 on a proxied path, /auth/verify.
    let r = get(&api, "/things/1", Some(TRUSTED_ORIGIN), None);
    r.expect(401);
    assert_granted(&r, TRUSTED_ORIGIN, "latchkey's 401 in pass mode");
    let r = preflight(&api, "/auth/verify", TRUSTED_ORIGIN);
    assert_preflight_granted(&r, TRUSTED_ORIGIN, PROXY_METHODS, "/auth/verify");
    let r = get(&api, "/auth/verify", Some(TRUSTED_ORIGIN), Some(&token));
    r.expect(200);
    assert_granted(&r, TRUSTED_ORIGIN, "/auth/verify in pass mode");
    assert_eq!(upstream.received().len(), 4);
}
