//! Reverse-proxy mode: verified requests are forwarded to the upstream with identity headers;
//! bodies stream both ways.

use std::net::SocketAddr;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, HOST};
use http::{Method, Request, Response, Uri, Version};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use latchkey_core::http::{Body, BoxError, HttpResponse};
use latchkey_core::http_client::{ClientBuilder, HttpsClient};
use latchkey_core::ConfigError;
use latchkey_jwt::Claims;

use crate::config::Upstream;
use crate::error::ApiError;

/// RFC 9110 §7.6.1 connection-specific headers, plus the non-standard ones still seen.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The `Allow` header of a 405 for CONNECT or TRACE: what the proxy forwards.
pub(crate) const PROXY_ALLOW: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

pub(crate) struct Proxy {
    client: HttpsClient<Body>,
    upstream: Upstream,
    timeout: Duration,
    max_body: u64,
    /// Whether clients reach us over TLS, for `X-Forwarded-Proto`.
    https: bool,
}

impl Proxy {
    pub(crate) fn new(
        upstream: Upstream,
        timeout: Duration,
        max_body: u64,
        https: bool,
    ) -> Result<Self, ConfigError> {
        // The upstream usually sits beside us on plain http.
        let client = ClientBuilder::new()
            .allow_http(true)
            .connect_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| ConfigError::new("LATCHKEY_UPSTREAM", e.to_string()))?;
        Ok(Self {
            client,
            upstream,
            timeout,
            max_body,
            https,
        })
    }

    /// Forwards a request. `claims` is `None` only for a CORS preflight passed through
    /// unauthenticated (`LATCHKEY_UPSTREAM_CORS=pass`): it goes without identity headers.
    pub(crate) async fn forward(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        claims: Option<&Claims>,
    ) -> Result<HttpResponse, ApiError> {
        let (mut parts, body) = req.into_parts();
        check_target(&parts.method, &parts.uri)?;
        if parts.headers.contains_key(http::header::TRANSFER_ENCODING) {
            // With both, Content-Length is stale (RFC 9112 §6.3); the body is re-framed anyway.
            parts.headers.remove(CONTENT_LENGTH);
        }
        if self.max_body > 0 && content_length(&parts.headers).is_some_and(|n| n > self.max_body) {
            return Err(ApiError::PayloadTooLarge);
        }
        let uri = upstream_uri(&self.upstream, &parts.uri)?;
        let host = parts.headers.get(HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        prepare_headers(&mut parts.headers, peer, host, self.https, claims);
        parts.uri = uri;
        // The client pool speaks HTTP/1.1 to the upstream whatever the client used with us.
        parts.version = Version::HTTP_11;
        // Errors of the client's body are marked, so that they are not taken for the
        // upstream's: the request breaks off either way, but only one is the client's fault.
        let body = body.map_err(|e| BoxError::from(ClientBodyError(e)));
        let body: Body = if self.max_body > 0 {
            Limited::new(body, self.max_body as usize).boxed()
        } else {
            body.boxed()
        };
        let request = Request::from_parts(parts, body);

        let response = match tokio::time::timeout(self.timeout, self.client.request(request)).await
        {
            Err(_) => return Err(ApiError::GatewayTimeout),
            Ok(Err(e)) => {
                if caused_by::<LengthLimitError>(&e) {
                    return Err(ApiError::PayloadTooLarge);
                }
                if caused_by::<ClientBodyError>(&e) {
                    // A malformed chunk, a body shorter than its Content-Length then a close:
                    // the client's doing, nothing wrong with the upstream.
                    tracing::debug!(
                        "client request body failed: {}",
                        latchkey_core::error_chain(&e)
                    );
                    return Err(ApiError::InvalidBody);
                }
                tracing::warn!(
                    "upstream request failed: {}",
                    latchkey_core::error_chain(&e)
                );
                return Err(ApiError::BadGateway);
            }
            Ok(Ok(resp)) => resp,
        };
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(
            parts,
            body.map_err(BoxError::from).boxed(),
        ))
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Rewrites a client's request headers for the upstream. Anything the client sent that
/// looks like one of our identity headers is dropped, so the upstream can trust them. Without
/// `claims` (an unauthenticated preflight) no identity header is added, and credentials
/// (`Authorization`, `Cookie`; browsers never send them on a preflight) are dropped too, so
/// that nothing unverified reaches the upstream looking authenticated.
pub(crate) fn prepare_headers(
    headers: &mut HeaderMap,
    peer: SocketAddr,
    host: Option<HeaderValue>,
    https: bool,
    claims: Option<&Claims>,
) {
    strip_hop_by_hop(headers);
    // CGI-style upstreams (WSGI, Rack) map `_` and `-` to the same variable, so
    // `X_Auth_User_Id` must go too; `Forwarded` and `X-Real-IP` would let a client claim an
    // address the upstream may trust.
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let normal = name.as_str().replace('_', "-");
            normal.starts_with("x-auth-") || normal == "forwarded" || normal == "x-real-ip"
        })
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(&name);
    }
    headers.remove(HOST);

    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {}", peer.ip()),
        _ => peer.ip().to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", value);
    }
    headers.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    match host {
        Some(host) => {
            headers.insert("x-forwarded-host", host);
        }
        None => {
            headers.remove("x-forwarded-host");
        }
    }
    match claims {
        Some(claims) => {
            for (name, value) in identity_headers(claims, true) {
                headers.insert(name, value);
            }
        }
        None => {
            headers.remove(http::header::AUTHORIZATION);
            headers.remove(http::header::COOKIE);
        }
    }
}

/// The identity headers for a verified token. Every one is always present, empty when the
/// token has no such claim or its value cannot be a header value (a name with a newline, say),
/// so that nothing a client might smuggle in can fill a gap. The user id always fits (a token
/// whose `sub` does not is refused before this point). `X-Auth-User-Email-Verified` is never
/// empty: `true` only for an `emailVerified` claim that is the JSON boolean `true`, `false`
/// otherwise (absent, `false`, or not a boolean).
pub(crate) fn identity_headers(claims: &Claims, with_name: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::with_capacity(5);
    let mut add = |name: &'static str, value: Option<&str>| {
        let value = value
            .and_then(|v| HeaderValue::from_str(v).ok())
            .unwrap_or_else(|| HeaderValue::from_static(""));
        out.push((HeaderName::from_static(name), value));
    };
    add("x-auth-user-id", Some(&claims.sub));
    add("x-auth-user-email", claims.email.as_deref());
    let verified = if email_verified(claims) {
        "true"
    } else {
        "false"
    };
    add("x-auth-user-email-verified", Some(verified));
    add("x-auth-session-id", claims.sid.as_deref());
    if with_name {
        add("x-auth-user-name", claims.name.as_deref());
    }
    out
}

/// Is the token's `emailVerified` claim exactly `true`? An absent claim, or one that is not a
/// JSON boolean (`"true"`, `1`), is not.
pub(crate) fn email_verified(claims: &Claims) -> bool {
    claims.email_verified == Some(true)
}

/// The upstream's URI for a request target that [`check_target`] let through: the
/// upstream's scheme and authority, `LATCHKEY_UPSTREAM`'s path prefix, then the target's path
/// and query exactly as sent. The path is `Uri::path`, the very string that was checked (it
/// reads `/` for a target with an empty path, such as `?x` or `://h?`, which would otherwise
/// be forwarded as the bare prefix; found by fuzz/fuzz_targets/proxy_path.rs).
pub(crate) fn upstream_uri(upstream: &Upstream, target: &Uri) -> Result<Uri, ApiError> {
    let query = target.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!(
        "{}://{}{}{}{query}",
        upstream.scheme,
        upstream.authority,
        upstream.prefix,
        target.path()
    )
    .parse()
    .map_err(|_| ApiError::NotFound)
}

/// Refuses what must not reach the upstream: CONNECT and TRACE (TRACK), and any request
/// target but an origin-form path that [`path_is_safe`] accepts (`*` and authority-form
/// included). The path is forwarded exactly as sent, so the upstream's own decoding cannot
/// differ from what was checked in a way that matters: whatever it decodes, it finds no dot
/// segment and no separator that was not a literal `/` here.
pub(crate) fn check_target(method: &Method, uri: &Uri) -> Result<(), ApiError> {
    let name = method.as_str();
    if ["CONNECT", "TRACE", "TRACK"]
        .iter()
        .any(|m| name.eq_ignore_ascii_case(m))
    {
        return Err(ApiError::MethodNotAllowed(PROXY_ALLOW));
    }
    if !path_is_safe(uri.path()) {
        // The upstream would resolve `..` (or take `%2f`, `\` for `/`) and could leave
        // LATCHKEY_UPSTREAM's prefix.
        return Err(ApiError::InvalidPath);
    }
    Ok(())
}

/// Layers of percent-encoding looked through: `%252e` is `%2e` after one, `.` after two. A
/// path still changing after that many is refused.
const DECODE_LAYERS: usize = 4;

/// Is `path` (origin-form, as sent) free of everything an upstream could resolve to a
/// different place than it reads? Checked on the path as sent and on each layer of
/// percent-decoding of it (an upstream, or a framework behind it, may decode more than once):
/// * it starts with `/`, has no backslash (a separator to Windows, IIS and some frameworks);
/// * no encoded slash or backslash (`%2f`, `%5c`, any case): refused even inside a segment
///   (`/files/a%2Fb`), since an upstream that decodes before routing would see two segments;
/// * no dot segment: a segment that, cut at its first `;` (Tomcat's path parameters,
///   `..;/`), `?` or `#` (in a decoded layer, `..%3F` and `..%23`: an upstream that decodes
///   and then parses the result as a URL ends the path there) and stripped of trailing
///   spaces and tabs (Windows), is nothing but dots, `.` and `..` as well as `...`; the
///   fullwidth and other Unicode dot look-alikes that NFKC folds to `.` count as dots;
/// * no control character (`%00` truncates paths in C code) and no overlong UTF-8 (`%c0%ae`
///   is a `.` to lenient decoders).
///
/// Everything else is allowed and forwarded untouched: `%20`, `%41`, `%3b`, `..` inside a
/// name (`a..b`), `.well-known`, a query string with anything in it.
pub(crate) fn path_is_safe(path: &str) -> bool {
    if !path.starts_with('/') {
        return false;
    }
    let mut layer = path.as_bytes().to_vec();
    for _ in 0..=DECODE_LAYERS {
        if !layer_is_safe(&layer) {
            return false;
        }
        let decoded = percent_decode(&layer);
        if decoded == layer {
            return true;
        }
        layer = decoded;
    }
    false
}

fn layer_is_safe(bytes: &[u8]) -> bool {
    if bytes.contains(&b'\\') || bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return false;
    }
    if has_overlong_utf8(bytes) {
        return false;
    }
    let lower = bytes.to_ascii_lowercase();
    if lower.windows(3).any(|w| w == b"%2f" || w == b"%5c") {
        return false;
    }
    !bytes.split(|&b| b == b'/').any(is_dot_segment)
}

/// The UTF-8 forms of characters that Unicode normalisation (NFKC) turns into `.`: U+2024
/// ONE DOT LEADER, U+FE52 SMALL FULL STOP, U+FF0E FULLWIDTH FULL STOP.
const DOT_LOOKALIKES: &[&[u8]] = &[b"\xe2\x80\xa4", b"\xef\xb9\x92", b"\xef\xbc\x8e"];

fn is_dot_segment(segment: &[u8]) -> bool {
    let cut = segment
        .split(|&b| matches!(b, b';' | b'?' | b'#'))
        .next()
        .unwrap_or_default();
    let mut rest = cut;
    while let [head @ .., b' ' | b'\t'] = rest {
        rest = head;
    }
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix(b".") {
            rest = tail;
        } else if let Some(tail) = DOT_LOOKALIKES.iter().find_map(|d| rest.strip_prefix(*d)) {
            rest = tail;
        } else {
            return false;
        }
    }
    true
}

/// Bytes no valid UTF-8 contains that old decoders took for ASCII: `C0`/`C1` leads (two-byte
/// overlong forms, `%c0%ae` = `.`, `%c0%af` = `/`), `E0 80..9F` and `F0 80..8F`.
fn has_overlong_utf8(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| b == 0xc0 || b == 0xc1)
        || bytes
            .windows(2)
            .any(|w| matches!(w, [0xe0, 0x80..=0x9f] | [0xf0, 0x80..=0x8f]))
}

/// One layer of `%XX` decoding; a `%` not followed by two hex digits stays as it is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in Connection are connection-specific too (RFC 9110 §7.6.1).
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// An error reading the client's request body (bad chunked framing, a connection closed
/// before `Content-Length` bytes), as opposed to one of the upstream connection.
#[derive(Debug)]
struct ClientBodyError(hyper::Error);

impl std::fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reading the client's request body")
    }
}

impl std::error::Error for ClientBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Is an error of type `T` anywhere in the chain of `e`?
fn caused_by<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<T>() {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn claims(name: &str) -> Claims {
        Claims {
            sub: "user1".into(),
            email: Some("bob@example.com".into()),
            name: Some(name.into()),
            email_verified: Some(true),
            sid: Some("sess1".into()),
            exp: 0,
            iat: None,
            all: Map::new(),
        }
    }

    #[test]
    fn incoming_identity_and_hop_by_hop_headers_are_stripped() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("X-Auth-User-Id", "admin"),
            ("x-auth-user-role", "root"),
            ("X-AUTH-Anything", "x"),
            ("X-Auth-User-Email-Verified", "true"),
            ("x_auth_user_email_verified", "true"),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic eA=="),
            ("authorization", "Bearer abc"),
            ("host", "api.example.com"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("x-authorization-note", "kept"),
        ] {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_static(v),
            );
        }
        let host = h.get(HOST).cloned();
        prepare_headers(
            &mut h,
            "192.0.2.7:5555".parse().unwrap(),
            host,
            false,
            Some(&claims("Bob")),
        );
        for gone in [
            "x-auth-user-role",
            "x-auth-anything",
            "connection",
            "x-secret-hop",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
            "te",
            "proxy-authorization",
            "host",
        ] {
            assert!(!h.contains_key(gone), "{gone} should be stripped");
        }
        assert!(!h.contains_key("x_auth_user_email_verified"));
        assert_eq!(h.get_all("x-auth-user-id").iter().count(), 1);
        assert_eq!(h.get_all("x-auth-user-email-verified").iter().count(), 1);
        assert_eq!(h["x-auth-user-id"], "user1");
        assert_eq!(h["x-auth-user-email"], "bob@example.com");
        assert_eq!(h["x-auth-session-id"], "sess1");
        assert_eq!(h["x-auth-user-name"], "Bob");
        assert_eq!(h["x-auth-user-email-verified"], "true");
        assert_eq!(h["authorization"], "Bearer abc");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example.com");
        assert_eq!(h["x-authorization-note"], "kept");
    }

    #[test]
    fn unrepresentable_values_become_empty_not_absent() {
        let headers = identity_headers(&claims("Zoë\r\nX-Evil: 1"), true);
        assert_eq!(headers.len(), 5);
        let name = headers
            .iter()
            .find(|(n, _)| n == "x-auth-user-name")
            .unwrap();
        assert_eq!(name.1, "");
        let headers = identity_headers(&claims("Bob"), false);
        assert_eq!(headers.len(), 4);
    }

    /// `true` only for the JSON boolean `true`; a client-sent value can never fill it, since
    /// it is always present.
    #[test]
    fn email_verified_header_is_true_or_false() {
        let header = |c: &Claims| {
            identity_headers(c, false)
                .into_iter()
                .find(|(n, _)| n == "x-auth-user-email-verified")
                .map(|(_, v)| v)
                .unwrap()
        };
        let mut c = claims("Bob");
        assert_eq!(header(&c), "true");
        c.email_verified = Some(false);
        assert_eq!(header(&c), "false");
        c.email_verified = None;
        assert_eq!(header(&c), "false");
        // latchkey-jwt reads a non-boolean claim (`"true"`, `1`) as absent; the raw claim in
        // `all` is never consulted.
        c.all
            .insert("emailVerified".into(), serde_json::json!("true"));
        assert!(!email_verified(&c));
        assert_eq!(header(&c), "false");
    }

    #[test]
    fn underscore_and_forwarding_spoofs_are_stripped() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x_auth_user_id", "admin"),
            ("X_Auth-User-Email", "a@b"),
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
        ] {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_static(v),
            );
        }
        let mut c = claims("Bob");
        c.sid = None;
        prepare_headers(
            &mut h,
            "192.0.2.7:5555".parse().unwrap(),
            None,
            false,
            Some(&c),
        );
        for gone in [
            "x_auth_user_id",
            "x_auth-user-email",
            "forwarded",
            "x-real-ip",
        ] {
            assert!(!h.contains_key(gone), "{gone} should be stripped");
        }
        assert_eq!(h["x-auth-session-id"], "");
    }

    #[test]
    fn unauthenticated_preflights_carry_no_identity_nor_credentials() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-auth-user-id", "admin"),
            ("x_auth_session_id", "s"),
            ("authorization", "Bearer abc"),
            ("cookie", "a=b"),
            ("origin", "https://app.example"),
            ("access-control-request-method", "PUT"),
        ] {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_static(v),
            );
        }
        prepare_headers(&mut h, "192.0.2.7:5555".parse().unwrap(), None, false, None);
        assert!(
            !h.keys()
                .any(|k| k.as_str().replace('_', "-").starts_with("x-auth-")),
            "{h:?}"
        );
        assert!(!h.contains_key("authorization") && !h.contains_key("cookie"));
        assert_eq!(h["origin"], "https://app.example");
        assert_eq!(h["access-control-request-method"], "PUT");
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
    }

    #[test]
    fn paths_that_could_leave_the_prefix_are_refused() {
        for bad in [
            // dot segments, literal and percent-encoded in any case and mix
            "/../admin",
            "/a/./b",
            "/a/..",
            "/a/.",
            "/..",
            "/.",
            "/a/%2e%2E/b",
            "/%2e%2e/admin",
            "/.%2e/admin",
            "/%2e./admin",
            "/%2E/admin",
            // with path parameters (Tomcat: `..;/`)
            "/..;/admin",
            "/..;jsessionid=x/admin",
            "/.;/admin",
            "/%2e%2e;x/admin",
            "/..%3b/admin",
            // a decoded `?` or `#` ends the path for an upstream that re-parses it as a URL
            // (fuzz finding: `/..%23` became `/app/..#`, which resolves to `/`)
            "/..%23",
            "/..%23/admin",
            "/a/.%2e%3Fx=1",
            "/..%3f/admin",
            "/%2e%252e%2523",
            // encoded separators, with or without dots
            "/..%2fadmin",
            "/..%2Fadmin",
            "/%2e%2e%2fadmin",
            "/a%2f..%2f..%2fadmin",
            "/..%5cadmin",
            "/..%5Cadmin",
            "/files/a%2Fb",
            "/files/a%5cb",
            // backslashes
            "/..\\admin",
            "/a\\b",
            // double (and deeper) encoding
            "/%252e%252e/admin",
            "/%252e%252e%252fadmin",
            "/a%252Fb",
            "/%25252e%25252e/admin",
            "/%%32f",
            // Windows trailing dots and spaces, and dot runs
            "/.../admin",
            "/..%20/admin",
            "/..%09/admin",
            "/.. ;/admin",
            // control characters and overlong or look-alike dots
            "/..%00/admin",
            "/a%00.html",
            "/a%0d%0aX-Injected:%201",
            "/%c0%ae%c0%ae/admin",
            "/%c0%af",
            "/%e0%80%ae%e0%80%ae/admin",
            "/%ef%bc%8e%ef%bc%8e/admin",
            "/\u{ff0e}\u{ff0e}/admin",
            "/%e2%80%a4%e2%80%a4/admin",
            // not an origin-form path
            "*",
            "",
            "admin",
            // decoding that does not settle
            "/%2525252525252e",
        ] {
            assert!(!path_is_safe(bad), "{bad:?} accepted");
        }
        for ok in [
            "/",
            "/a/b",
            "/a..b/c",
            "/..a/b",
            "/a../b",
            "/.well-known/x",
            "/.hidden",
            "/a%3Fb",
            "/a%23b/..x%3f",
            "/a/...b",
            "/a%20b/c",
            "/%41%42",
            "/a;x=1/b",
            "/a%3bb",
            "/caf%C3%A9",
            "/%E2%82%AC",
            "/100%25",
            "/50%",
            "/%zz",
            "//double//slashes",
            "/a/b/",
        ] {
            assert!(path_is_safe(ok), "{ok:?} refused");
        }
    }

    #[test]
    fn methods_and_targets() {
        let target = |t: &str| t.parse::<Uri>().unwrap();
        for m in ["CONNECT", "TRACE", "TRACK", "connect", "trace"] {
            let m = Method::from_bytes(m.as_bytes()).unwrap();
            assert_eq!(
                check_target(&m, &target("/x")),
                Err(ApiError::MethodNotAllowed(PROXY_ALLOW)),
                "{m}"
            );
        }
        assert_eq!(
            check_target(&Method::OPTIONS, &target("*")),
            Err(ApiError::InvalidPath)
        );
        assert_eq!(
            check_target(&Method::GET, &target("example.com:443")),
            Err(ApiError::InvalidPath)
        );
        assert_eq!(
            check_target(&Method::GET, &target("http://other.example/../x")),
            Err(ApiError::InvalidPath)
        );
        for m in [Method::GET, Method::POST, Method::DELETE, Method::OPTIONS] {
            assert_eq!(check_target(&m, &target("/x?y=../../z&w=%2f")), Ok(()));
        }
        let propfind = Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(check_target(&propfind, &target("/dav/")), Ok(()));
    }

    /// The forwarded path is the checked one, below the prefix, with the query as sent.
    #[test]
    fn upstream_uri_forwards_the_checked_path() {
        let upstream = Upstream {
            scheme: "http".into(),
            authority: "up.example:8080".into(),
            prefix: "/app".into(),
        };
        for (target, path, query) in [
            ("/x/y?a=%2f&b", "/app/x/y", Some("a=%2f&b")),
            ("/", "/app/", None),
            ("/caf%C3%A9?", "/app/caf%C3%A9", Some("")),
            ("http://other.example/x?q", "/app/x", Some("q")),
            // Fuzz finding: an empty path (checked as "/") went out as the bare prefix.
            ("://-?", "/app/", Some("")),
        ] {
            let uri: Uri = target.parse().unwrap();
            assert_eq!(check_target(&Method::GET, &uri), Ok(()), "{target}");
            let built = upstream_uri(&upstream, &uri).unwrap();
            assert_eq!(built.authority().unwrap().as_str(), "up.example:8080");
            assert_eq!((built.path(), built.query()), (path, query), "{target}");
        }
    }
}
