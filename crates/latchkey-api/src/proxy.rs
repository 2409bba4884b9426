//! Reverse-proxy mode: verified requests are forwarded to the upstream with identity headers;
//! bodies stream both ways.

use std::net::SocketAddr;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, HOST};
use http::{Request, Response, Uri, Version};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use latchkey_core::http::{Body, BoxError, HttpResponse};
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

pub struct Proxy {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    upstream: Upstream,
    timeout: Duration,
    max_body: u64,
    /// Whether clients reach us over TLS, for `X-Forwarded-Proto`.
    https: bool,
}

impl Proxy {
    pub fn new(
        upstream: Upstream,
        timeout: Duration,
        max_body: u64,
        https: bool,
    ) -> Result<Self, ConfigError> {
        let tls = latchkey_core::tls::https_client_config(None)
            .map_err(|e| ConfigError::new("LATCHKEY_UPSTREAM", e))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            upstream,
            timeout,
            max_body,
            https,
        })
    }

    pub async fn forward(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        claims: &Claims,
    ) -> Result<HttpResponse, ApiError> {
        let (mut parts, body) = req.into_parts();
        if self.max_body > 0 && content_length(&parts.headers).is_some_and(|n| n > self.max_body) {
            return Err(ApiError::PayloadTooLarge);
        }
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri: Uri = format!(
            "{}://{}{}{}",
            self.upstream.scheme, self.upstream.authority, self.upstream.prefix, path
        )
        .parse()
        .map_err(|_| ApiError::NotFound)?;
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
        let body: Body = if self.max_body > 0 {
            Limited::new(body, self.max_body as usize).boxed()
        } else {
            body.map_err(BoxError::from).boxed()
        };
        let request = Request::from_parts(parts, body);

        let response = match tokio::time::timeout(self.timeout, self.client.request(request)).await
        {
            Err(_) => return Err(ApiError::GatewayTimeout),
            Ok(Err(e)) => {
                if caused_by_length_limit(&e) {
                    return Err(ApiError::PayloadTooLarge);
                }
                tracing::warn!("upstream request failed: {}", error_chain(&e));
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
/// looks like one of our identity headers is dropped, so the upstream can trust them.
pub fn prepare_headers(
    headers: &mut HeaderMap,
    peer: SocketAddr,
    host: Option<HeaderValue>,
    https: bool,
    claims: &Claims,
) {
    strip_hop_by_hop(headers);
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-auth-"))
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
    for (name, value) in identity_headers(claims, true) {
        headers.insert(name, value);
    }
}

/// The identity headers for a verified token. Values that cannot be header values (non-ASCII
/// names, say) are left out rather than mangled; the user id always fits (Better-Auth ids are
/// alphanumeric) and a token whose `sub` does not is refused before this point.
pub fn identity_headers(claims: &Claims, with_name: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::with_capacity(4);
    let mut add = |name: &'static str, value: Option<&str>| {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            out.push((HeaderName::from_static(name), v));
        }
    };
    add("x-auth-user-id", Some(&claims.sub));
    add("x-auth-user-email", claims.email.as_deref());
    add("x-auth-session-id", claims.sid.as_deref());
    if with_name {
        add("x-auth-user-name", claims.name.as_deref());
    }
    out
}

pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
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

fn caused_by_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
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
            &claims("Bob"),
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
        assert_eq!(h.get_all("x-auth-user-id").iter().count(), 1);
        assert_eq!(h["x-auth-user-id"], "user1");
        assert_eq!(h["x-auth-user-email"], "bob@example.com");
        assert_eq!(h["x-auth-session-id"], "sess1");
        assert_eq!(h["x-auth-user-name"], "Bob");
        assert_eq!(h["authorization"], "Bearer abc");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example.com");
        assert_eq!(h["x-authorization-note"], "kept");
    }

    #[test]
    fn unrepresentable_values_are_left_out() {
        let headers = identity_headers(&claims("Zoë\r\nX-Evil: 1"), true);
        assert!(headers.iter().all(|(n, _)| n != "x-auth-user-name"));
        assert_eq!(headers.len(), 3);
        let headers = identity_headers(&claims("Bob"), false);
        assert_eq!(headers.len(), 3);
    }
}
