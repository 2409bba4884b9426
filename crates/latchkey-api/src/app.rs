//! The router: a `match` on method and path, the authentication every protected route
//! shares, and the one exit every response leaves through (CORS, `X-Request-Id`, access log).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION, ORIGIN};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use latchkey_core::cors::{strip_cors_headers, Cors, BASE_ALLOW_HEADERS};
use latchkey_core::http::{empty, json, HttpResponse};
use latchkey_core::server::{Draining, RequestId};
use latchkey_core::sql::Db;
use latchkey_core::ConfigError;
use latchkey_jwt::{Claims, Verifier, VerifierConfig, VerifyError};
use serde_json::json as j;

use crate::config::{Config, Revocation, UpstreamCors};
use crate::error::ApiError;
use crate::proxy::{email_verified, identity_headers, Proxy};
use crate::revocation::SessionCheck;

/// Methods a browser may use cross-origin: everything in proxy mode, reads otherwise.
const PROXY_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
const LOCAL_METHODS: &str = "GET, HEAD, OPTIONS";
/// Response headers a page may read besides the CORS-safelisted ones: the 401 challenge,
/// the 503's retry hint and the id to quote in a bug report.
const EXPOSE_HEADERS: &str = "www-authenticate, retry-after, x-request-id";
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct App {
    verifier: Verifier,
    sessions: Option<SessionCheck>,
    proxy: Option<Proxy>,
    /// `None` with `LATCHKEY_CORS=off` or no origin to allow.
    cors: Option<Cors>,
    upstream_cors: UpstreamCors,
    /// `LATCHKEY_REQUIRE_VERIFIED_EMAIL`.
    require_verified_email: bool,
    /// Listener TLS, built here so `check-config` proves the files load.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Set by the server on SIGTERM: readiness fails while connections drain.
    pub draining: Draining,
    pub metrics: Arc<latchkey_core::metrics::Metrics>,
    telemetry: crate::telemetry::ApiMetrics,
}

/// Whose CORS headers a response carries when it reaches the exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CorsBy {
    /// Our own answer: gets the grant for the request's origin.
    Latchkey,
    /// A preflight answered by [`Cors::preflight`], grant included.
    Preflight,
    /// The upstream's answer: its `Access-Control-*` headers are replaced by ours
    /// (`LATCHKEY_UPSTREAM_CORS=answer`) or left exactly as they are (`pass`).
    Upstream,
}

impl App {
    /// Builds everything that can be checked without the network: no connection is opened.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let mut vc = VerifierConfig::new(&config.jwks_url, &config.issuer, &config.audience);
        vc.refresh_interval = config.jwks_refresh;
        vc.max_lifetime = Some(config.jwt_max_lifetime);
        vc.extra_roots = config.jwks_ca_file.clone();
        vc.cache_size = config.jwt_cache_size;
        let verifier = Verifier::new(vc).map_err(|e| {
            let setting = if config.jwks_ca_file.is_some() {
                "LATCHKEY_JWKS_CA_FILE"
            } else {
                "LATCHKEY_JWKS_URL"
            };
            ConfigError::new(setting, e.to_string())
        })?;
        let mut metrics = latchkey_core::metrics::Metrics::new();
        let telemetry = crate::telemetry::ApiMetrics::register(metrics.registry_mut());
        let sessions = match &config.revocation {
            Revocation::Off => None,
            Revocation::Session {
                database_url,
                cache_ttl,
                db_timeout,
                statements,
            } => Some(SessionCheck::new(
                Db::new(latchkey_core::db::pool(database_url, 8)?, *db_timeout)
                    .with_statements(*statements),
                *cache_ttl,
                telemetry.clone(),
            )),
        };
        let tls = match &config.tls {
            Some(files) => Some(latchkey_core::tls::server_config(files)?),
            None => None,
        };
        let proxy = match &config.upstream {
            Some(upstream) => Some(Proxy::new(
                upstream.clone(),
                config.upstream_timeout,
                config.max_body_bytes,
                tls.is_some(),
            )?),
            None => None,
        };
        let cors = if config.cors.is_on() {
            let methods = if proxy.is_some() {
                PROXY_METHODS
            } else {
                LOCAL_METHODS
            };
            let allow_headers = BASE_ALLOW_HEADERS
                .iter()
                .copied()
                .chain(config.cors.extra_allow_headers.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(", ");
            let cors = Cors::new(
                config.cors.origins.clone(),
                methods,
                &allow_headers,
                EXPOSE_HEADERS,
            )
            .map_err(|e| ConfigError::new("LATCHKEY_CORS_ALLOW_HEADERS", e.to_string()))?;
            Some(cors)
        } else {
            None
        };
        Ok(Self {
            verifier,
            sessions,
            proxy,
            cors,
            upstream_cors: config.upstream_cors,
            require_verified_email: config.require_verified_email,
            tls,
            draining: Draining::default(),
            metrics: Arc::new(metrics),
            telemetry,
        })
    }

    /// Ready when a key set is loaded, the revocation database answers (when revocation is
    /// on: every checked request would fail otherwise) and the daemon is not draining.
    async fn readiness(&self) -> HttpResponse {
        let keys = self.verifier.is_ready();
        let database = match &self.sessions {
            Some(sessions) => Some(sessions.ping().await),
            None => None,
        };
        let draining = self.draining.is_draining();
        let ready = keys && database != Some(false) && !draining;
        let mut body = j!({
            "status": if ready { "ready" } else { "not ready" },
            "keys": keys,
            "draining": draining,
        });
        if let Some(db) = database {
            body["database"] = j!(db);
        }
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json(status, &body)
    }

    /// `check-config --connect`: the revocation database, if configured, answers.
    pub async fn check_connections(&self) -> Result<(), String> {
        match &self.sessions {
            Some(sessions) => sessions.connect().await,
            None => Ok(()),
        }
    }

    /// Reads the verifier's state into the gauges (before a scrape).
    pub fn refresh_metrics(&self) {
        self.telemetry.refresh(&self.verifier);
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The origins CORS allows; `None` when CORS is off.
    pub fn cors_origins(&self) -> Option<Vec<String>> {
        self.cors
            .as_ref()
            .map(|c| c.origins().iter().map(str::to_string).collect())
    }

    /// The one exit: every response, errors and proxied ones included, gets its CORS headers,
    /// its `X-Request-Id` and an access log line here.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
        let started = Instant::now();
        let id = RequestId::of(&req);
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let origin = req.headers().get(ORIGIN).cloned();
        let (mut resp, by) = match self.route(req, peer).await {
            Ok(pair) => pair,
            Err(e) => {
                if let ApiError::Token(t) = e {
                    self.telemetry.rejected(t.code());
                }
                if e.status().is_server_error() {
                    tracing::warn!(%method, path, code = e.code(), "request failed");
                } else {
                    tracing::debug!(%method, path, code = e.code(), "request refused");
                }
                (e.into_response(), CorsBy::Latchkey)
            }
        };
        if let Some(cors) = &self.cors {
            match (by, self.upstream_cors) {
                (CorsBy::Preflight, _) | (CorsBy::Upstream, UpstreamCors::Pass) => {}
                (CorsBy::Latchkey, _) => cors.decorate(origin.as_ref(), &mut resp),
                (CorsBy::Upstream, UpstreamCors::Answer) => {
                    strip_cors_headers(resp.headers_mut());
                    cors.decorate(origin.as_ref(), &mut resp);
                }
            }
        }
        if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
            resp.headers_mut().insert(X_REQUEST_ID, value);
        }
        let route = match path.as_str() {
            "/healthz" => "/healthz",
            "/readyz" => "/readyz",
            "/auth/verify" => "/auth/verify",
            "/api/me" => "/api/me",
            _ if self.proxy.is_some() => "proxy",
            _ => "unmatched",
        };
        self.metrics
            .observe_request(route, &method, resp.status(), started.elapsed());
        tracing::debug!(
            target: "access",
            %id,
            %method,
            path,
            status = resp.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            %peer,
            "request"
        );
        resp
    }

    /// Is `path` one latchkey answers CORS for? `/api/me` (local mode), `/auth/verify`, and
    /// in proxy mode every proxied path.
    fn has_cors(&self, path: &str) -> bool {
        match path {
            "/healthz" | "/readyz" => false,
            "/auth/verify" => true,
            "/api/me" => true,
            _ => self.proxy.is_some(),
        }
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<(HttpResponse, CorsBy), ApiError> {
        if Cors::is_preflight(req.method(), req.headers()) {
            // Browsers send preflights without credentials: they are answered (or passed on)
            // before authentication, never refused with a 401.
            let path = req.uri().path();
            let proxied = !matches!(path, "/healthz" | "/readyz" | "/auth/verify");
            match (&self.proxy, &self.cors) {
                (Some(proxy), _) if proxied && self.upstream_cors == UpstreamCors::Pass => {
                    let resp = proxy.forward(req, peer, None).await?;
                    return Ok((resp, CorsBy::Upstream));
                }
                (_, Some(cors)) if self.has_cors(path) => {
                    return Ok((cors.preflight(req.headers()), CorsBy::Preflight));
                }
                _ => {}
            }
        }
        let readable = matches!(*req.method(), Method::GET | Method::HEAD);
        let ours = |resp| Ok((resp, CorsBy::Latchkey));
        match req.uri().path() {
            "/healthz" if readable => ours(json(StatusCode::OK, &j!({"status": "ok"}))),
            "/readyz" if readable => ours(self.readiness().await),
            "/healthz" | "/readyz" => Err(ApiError::MethodNotAllowed("GET, HEAD")),
            // Proxies forward the original method (Traefik), so any method is accepted.
            "/auth/verify" => ours(self.forward_auth(req.headers()).await?),
            _ => match &self.proxy {
                Some(proxy) => {
                    let claims = self.authenticate(req.headers()).await?;
                    let resp = proxy.forward(req, peer, Some(&claims)).await?;
                    Ok((resp, CorsBy::Upstream))
                }
                None if req.uri().path() == "/api/me" => {
                    if !readable {
                        return Err(ApiError::MethodNotAllowed("GET, HEAD"));
                    }
                    let c = self.authenticate(req.headers()).await?;
                    ours(json(
                        StatusCode::OK,
                        &j!({
                            "sub": c.sub,
                            "email": c.email,
                            "name": c.name,
                            "emailVerified": c.email_verified,
                            "sid": c.sid,
                            "exp": c.exp,
                        }),
                    ))
                }
                None => Err(ApiError::NotFound),
            },
        }
    }

    async fn forward_auth(&self, headers: &HeaderMap) -> Result<HttpResponse, ApiError> {
        // Only for the log: which request the proxy is asking about. Untrusted, so escaped
        // (Debug) and truncated.
        let original = |name: &str| {
            headers.get(name).map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .chars()
                    .take(200)
                    .collect::<String>()
            })
        };
        let method = original("x-forwarded-method");
        let uri = original("x-original-uri").or_else(|| original("x-forwarded-uri"));
        let result = self.authenticate(headers).await;
        tracing::debug!(
            ?method,
            ?uri,
            allowed = result.is_ok(),
            "forward-auth decision"
        );
        let claims = result?;
        let mut resp = Response::new(empty());
        for (name, value) in identity_headers(&claims, false) {
            resp.headers_mut().insert(name, value);
        }
        Ok(resp)
    }

    /// Bearer token → verified claims, plus the session check when revocation is on, plus
    /// the verified-email requirement when it is on. Every verifying path (`/api/me`,
    /// `/auth/verify`, the proxy) goes through here.
    ///
    /// The verified-token cache (`LATCHKEY_JWT_CACHE_SIZE`) lives inside `verify` and covers
    /// the signature and the claims only: everything after it (the `sub` check, the session
    /// check, the verified-email rule) runs on every request, cache hit or not.
    pub(crate) async fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, ApiError> {
        let token = bearer_token(headers).map_err(ApiError::Token)?;
        let claims = self.verifier.verify(token).await.map_err(ApiError::Token)?;
        // The id goes out as X-Auth-User-Id; one that cannot be a header value is refused
        // rather than forwarded without an identity.
        if claims.sub.is_empty() || HeaderValue::from_str(&claims.sub).is_err() {
            return Err(ApiError::Token(VerifyError::Malformed));
        }
        if let Some(sessions) = &self.sessions {
            sessions.check(claims.sid.as_deref()).await?;
        }
        // After the token and its session are known good: a revoked session is a 401 (sign
        // in again), not a 403. Absent or non-boolean counts as unverified.
        if self.require_verified_email && !email_verified(&claims) {
            return Err(ApiError::EmailNotVerified);
        }
        Ok(claims)
    }
}

/// `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1). Other schemes
/// count as no token, so the client gets a plain challenge.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, VerifyError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(VerifyError::Missing);
    };
    if values.next().is_some() {
        return Err(VerifyError::Malformed);
    }
    let value = value.to_str().map_err(|_| VerifyError::Malformed)?.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(VerifyError::Missing);
    }
    let token = rest.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(VerifyError::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_extraction() {
        assert_eq!(bearer_token(&auth(&[])), Err(VerifyError::Missing));
        assert_eq!(
            bearer_token(&auth(&["Basic dTpw"])),
            Err(VerifyError::Missing)
        );
        assert_eq!(
            bearer_token(&auth(&["Bearer"])),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            bearer_token(&auth(&["Bearer   "])),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            bearer_token(&auth(&["Bearer a b"])),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            bearer_token(&auth(&["Bearer a", "Bearer b"])),
            Err(VerifyError::Malformed)
        );
        assert_eq!(bearer_token(&auth(&["bearer x.y.z"])), Ok("x.y.z"));
        assert_eq!(bearer_token(&auth(&["BEARER  x.y.z "])), Ok("x.y.z"));
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert_eq!(bearer_token(&h), Err(VerifyError::Malformed));
    }
}
