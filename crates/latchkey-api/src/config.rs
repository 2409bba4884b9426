//! The daemon's settings, read once from a [`Source`] and validated before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::header::HeaderName;
use latchkey_core::config::TlsFiles;
use latchkey_core::origins::OriginPatterns;
use latchkey_core::server::ServerLimits;
use latchkey_core::{ConfigError, Source};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    pub jwks_refresh: Duration,
    pub jwks_ca_file: Option<PathBuf>,
    /// Longest token lifetime (`exp − iat`) accepted; tokens without `iat` are refused.
    pub jwt_max_lifetime: Duration,
    /// `LATCHKEY_JWT_CACHE_SIZE`: entries of the verified-token cache (`0`: off).
    pub jwt_cache_size: usize,
    pub revocation: Revocation,
    pub upstream: Option<Upstream>,
    pub upstream_timeout: Duration,
    /// Cap on a proxied request body (0 = no cap). Local routes never read bodies.
    pub max_body_bytes: u64,
    pub tls: Option<TlsFiles>,
    /// Connection limits, timeouts and the drain delay (shared with latchkey-auth).
    pub server: ServerLimits,
    /// Where `/metrics` is served (`LATCHKEY_METRICS_LISTEN`); off when unset.
    pub metrics_listen: Option<SocketAddr>,
    pub cors: CorsSettings,
    /// Who answers CORS on proxied paths.
    pub upstream_cors: UpstreamCors,
    /// `LATCHKEY_REQUIRE_VERIFIED_EMAIL`: refuse (403 `EMAIL_NOT_VERIFIED`) a valid token
    /// whose `emailVerified` claim is not `true`, on every verifying path.
    pub require_verified_email: bool,
}

/// CORS for browser apps on other origins. It is off when disabled or when no origin is
/// configured (nothing could match).
#[derive(Debug, Clone)]
pub struct CorsSettings {
    /// `LATCHKEY_CORS`.
    pub enabled: bool,
    /// `LATCHKEY_CORS_ORIGINS`, else `BETTER_AUTH_TRUSTED_ORIGINS`.
    pub origins: OriginPatterns,
    /// `LATCHKEY_CORS_ALLOW_HEADERS`: request headers allowed besides
    /// [`latchkey_core::cors::BASE_ALLOW_HEADERS`], lower case.
    pub extra_allow_headers: Vec<String>,
}

impl CorsSettings {
    pub fn is_on(&self) -> bool {
        self.enabled && !self.origins.is_empty()
    }
}

/// `LATCHKEY_UPSTREAM_CORS`: in proxy mode, does latchkey answer CORS for proxied paths
/// (`answer`), or does the upstream (`pass`)?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamCors {
    /// Preflights are answered here; proxied responses get latchkey's CORS headers in place
    /// of any the upstream sent.
    Answer,
    /// Preflights are forwarded unauthenticated; proxied responses keep the upstream's
    /// CORS headers as they are.
    Pass,
}

/// `SecretString`'s `Debug` is redacted, so deriving `Debug` keeps the URL out of logs.
#[derive(Debug, Clone)]
pub enum Revocation {
    Off,
    Session {
        database_url: SecretString,
        cache_ttl: Duration,
        /// Bound on each session query (`LATCHKEY_DB_TIMEOUT`); past it the request is a 503.
        db_timeout: Duration,
        /// Unnamed or prepared statements (`LATCHKEY_DB_STATEMENTS`).
        statements: latchkey_core::sql::Statements,
    },
}

/// Where proxy mode forwards to: scheme and authority, plus a path prefix prepended to every
/// forwarded path (empty for an upstream URL without a path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub scheme: String,
    pub authority: String,
    pub prefix: String,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8000";
/// The auth daemon's own maximum `LATCHKEY_JWT_EXPIRES_IN`: one day.
const DEFAULT_JWT_MAX_LIFETIME: Duration = Duration::from_secs(86400);
/// A bound on the bound: a JWT meant to live longer than a year is not an access token.
const MAX_JWT_MAX_LIFETIME: Duration = Duration::from_secs(365 * 86400);
/// Verified tokens cached. An entry holds the token's parsed claims: about 3 KB for a
/// Better-Auth token of 645 bytes (measured by latchkey-jwt's `cost_of_a_verification...`
/// test), so about 30 MB when full, which takes 10000 distinct live tokens.
pub const DEFAULT_JWT_CACHE_SIZE: usize = 10_000;
/// A bound on the bound: a million entries is already about 3 GB at that size; more is
/// likelier a typo than a plan.
const MAX_JWT_CACHE_SIZE: usize = 1_000_000;

impl Config {
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        // The API never uses the secret, but a deployment that shares one file of settings
        // with the auth daemon must not get away with a weak one.
        if let Some(secret) = src.secret("BETTER_AUTH_SECRET")? {
            if secret.expose_secret().chars().count() < 32 {
                return Err(ConfigError::new(
                    "BETTER_AUTH_SECRET",
                    "must be at least 32 characters",
                ));
            }
        }

        let listen = src.listen_or("LATCHKEY_LISTEN", DEFAULT_LISTEN)?;
        let auth_origin = match src.get("BETTER_AUTH_URL")? {
            Some(raw) => Some(origin_of("BETTER_AUTH_URL", &raw)?),
            None => None,
        };
        let jwks_url = match (src.get("LATCHKEY_JWKS_URL")?, &auth_origin) {
            (Some(raw), _) => http_url("LATCHKEY_JWKS_URL", &raw)?,
            (None, Some(origin)) => format!("{origin}/api/auth/jwks"),
            (None, None) => return Err(missing_auth_url()),
        };
        let issuer = match (non_empty(src, "LATCHKEY_JWT_ISSUER")?, &auth_origin) {
            (Some(iss), _) => iss,
            (None, Some(origin)) => origin.clone(),
            (None, None) => return Err(missing_auth_url()),
        };
        // Better-Auth sets aud = iss = its origin, so that is the natural default either way.
        let audience = non_empty(src, "LATCHKEY_JWT_AUDIENCE")?
            .or_else(|| auth_origin.clone())
            .unwrap_or_else(|| issuer.clone());

        let jwks_refresh = src.seconds_or("LATCHKEY_JWKS_REFRESH", Duration::from_secs(300))?;
        if jwks_refresh.is_zero() {
            return Err(ConfigError::new(
                "LATCHKEY_JWKS_REFRESH",
                "must be at least 1 second",
            ));
        }
        let jwks_ca_file = src.get("LATCHKEY_JWKS_CA_FILE")?.map(PathBuf::from);
        if let Some(path) = &jwks_ca_file {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "LATCHKEY_JWKS_CA_FILE",
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }

        let jwt_max_lifetime = src.seconds_within(
            "LATCHKEY_JWT_MAX_LIFETIME",
            DEFAULT_JWT_MAX_LIFETIME,
            MAX_JWT_MAX_LIFETIME,
        )?;
        if jwt_max_lifetime.is_zero() {
            return Err(ConfigError::new(
                "LATCHKEY_JWT_MAX_LIFETIME",
                "must be at least 1 second",
            ));
        }

        let jwt_cache_size =
            src.parse_or::<usize>("LATCHKEY_JWT_CACHE_SIZE", DEFAULT_JWT_CACHE_SIZE)?;
        if jwt_cache_size > MAX_JWT_CACHE_SIZE {
            return Err(ConfigError::new(
                "LATCHKEY_JWT_CACHE_SIZE",
                format!("at most {MAX_JWT_CACHE_SIZE} entries (0 turns the cache off)"),
            ));
        }

        let revocation = match src.get("LATCHKEY_REVOCATION")?.as_deref().map(str::trim) {
            None | Some("off") => Revocation::Off,
            Some("session") => {
                let database_url = src.secret("DATABASE_URL")?.ok_or_else(|| {
                    ConfigError::new("DATABASE_URL", "required when LATCHKEY_REVOCATION=session")
                })?;
                let cache_ttl =
                    src.seconds_or("LATCHKEY_REVOCATION_CACHE_TTL", Duration::from_secs(5))?;
                let db_timeout = src.positive_seconds_within(
                    "LATCHKEY_DB_TIMEOUT",
                    Duration::from_secs(5),
                    Duration::from_secs(300),
                )?;
                Revocation::Session {
                    database_url,
                    cache_ttl,
                    db_timeout,
                    statements: latchkey_core::sql::Statements::from_source(src)?,
                }
            }
            Some(other) => {
                return Err(ConfigError::new(
                    "LATCHKEY_REVOCATION",
                    format!("invalid value {other:?}: expected off or session"),
                ))
            }
        };

        let upstream = match src.get("LATCHKEY_UPSTREAM")? {
            Some(raw) => Some(upstream("LATCHKEY_UPSTREAM", &raw)?),
            None => None,
        };
        let upstream_timeout =
            src.seconds_or("LATCHKEY_UPSTREAM_TIMEOUT", Duration::from_secs(30))?;
        if upstream_timeout.is_zero() {
            return Err(ConfigError::new(
                "LATCHKEY_UPSTREAM_TIMEOUT",
                "must be at least 1 second",
            ));
        }
        let max_body_bytes = src.parse_or::<u64>("LATCHKEY_MAX_BODY_BYTES", 65536)?;
        let tls = TlsFiles::from_source(src)?;
        let server = ServerLimits::from_source(src)?;
        let metrics_listen = match src.get("LATCHKEY_METRICS_LISTEN")? {
            Some(_) => Some(src.listen_or("LATCHKEY_METRICS_LISTEN", "")?),
            None => None,
        };
        let cors = cors_settings(src)?;
        let upstream_cors = match src.get("LATCHKEY_UPSTREAM_CORS")?.as_deref().map(str::trim) {
            None | Some("answer") => UpstreamCors::Answer,
            Some("pass") => UpstreamCors::Pass,
            Some(other) => {
                return Err(ConfigError::new(
                    "LATCHKEY_UPSTREAM_CORS",
                    format!("invalid value {other:?}: expected answer or pass"),
                ))
            }
        };
        let require_verified_email = src.bool_or("LATCHKEY_REQUIRE_VERIFIED_EMAIL", false)?;

        src.reject_unknown()?;
        Ok(Config {
            listen,
            jwks_url,
            issuer,
            audience,
            jwks_refresh,
            jwks_ca_file,
            jwt_max_lifetime,
            jwt_cache_size,
            revocation,
            upstream,
            upstream_timeout,
            max_body_bytes,
            tls,
            cors,
            upstream_cors,
            server,
            metrics_listen,
            require_verified_email,
        })
    }
}

fn cors_settings(src: &Source) -> Result<CorsSettings, ConfigError> {
    let enabled = src.bool_or("LATCHKEY_CORS", true)?;
    // The seed gives both daemons one environment, so the auth daemon's trusted origins are
    // the natural default; an explicit (even empty) list wins.
    let origins = match src.get("LATCHKEY_CORS_ORIGINS")? {
        Some(list) => list,
        None => src.get("BETTER_AUTH_TRUSTED_ORIGINS")?.unwrap_or_default(),
    };
    let origins = OriginPatterns::new(OriginPatterns::parse_list(&origins));
    let mut extra_allow_headers: Vec<String> = Vec::new();
    let raw = src.get("LATCHKEY_CORS_ALLOW_HEADERS")?.unwrap_or_default();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "*" {
            // With credentials a browser reads `*` as a header named "*", not a wildcard.
            return Err(ConfigError::new(
                "LATCHKEY_CORS_ALLOW_HEADERS",
                "\"*\" is no wildcard for requests with credentials: list the header names",
            ));
        }
        let name = HeaderName::from_bytes(entry.as_bytes()).map_err(|_| {
            ConfigError::new(
                "LATCHKEY_CORS_ALLOW_HEADERS",
                format!("{entry:?} is not a header name"),
            )
        })?;
        let name = name.as_str().to_string();
        let known = latchkey_core::cors::BASE_ALLOW_HEADERS.contains(&name.as_str());
        if !known && !extra_allow_headers.contains(&name) {
            extra_allow_headers.push(name);
        }
    }
    Ok(CorsSettings {
        enabled,
        origins,
        extra_allow_headers,
    })
}

fn missing_auth_url() -> ConfigError {
    ConfigError::new(
        "BETTER_AUTH_URL",
        "required unless both LATCHKEY_JWKS_URL and LATCHKEY_JWT_ISSUER are set",
    )
}

fn non_empty(src: &Source, name: &str) -> Result<Option<String>, ConfigError> {
    match src.get(name)? {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Err(ConfigError::new(name, "must not be empty")),
        Some(v) => Ok(Some(v.trim().to_string())),
    }
}

fn parse_http(name: &str, raw: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| ConfigError::new(name, format!("invalid URL {raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(
            name,
            format!("invalid URL {raw:?}: expected http:// or https://"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            name,
            "credentials in the URL are not supported",
        ));
    }
    Ok(url)
}

fn http_url(name: &str, raw: &str) -> Result<String, ConfigError> {
    parse_http(name, raw).map(String::from)
}

/// `scheme://host[:port]` as JavaScript's `URL.origin` gives it (default port dropped), which
/// is what Better-Auth puts in `iss` and `aud`.
fn origin_of(name: &str, raw: &str) -> Result<String, ConfigError> {
    Ok(parse_http(name, raw)?.origin().ascii_serialization())
}

fn upstream(name: &str, raw: &str) -> Result<Upstream, ConfigError> {
    let url = parse_http(name, raw)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(name, "must not have a query or fragment"));
    }
    let host = url.host_str().unwrap_or_default();
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    Ok(Upstream {
        scheme: url.scheme().to_string(),
        authority,
        prefix: url.path().trim_end_matches('/').to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(&Source::from_parts(env, toml::Table::new(), None))
    }

    fn setting_of(env: &[(&str, &str)]) -> String {
        load(env).unwrap_err().setting
    }

    const BA: (&str, &str) = ("BETTER_AUTH_URL", "http://127.0.0.1:3000/");

    #[test]
    fn defaults_follow_better_auth_url() {
        let c = load(&[BA]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(c.jwks_url, "http://127.0.0.1:3000/api/auth/jwks");
        assert_eq!(c.issuer, "http://127.0.0.1:3000");
        assert_eq!(c.audience, "http://127.0.0.1:3000");
        assert_eq!(c.jwks_refresh, Duration::from_secs(300));
        assert_eq!(c.jwt_max_lifetime, Duration::from_secs(86400));
        assert_eq!(c.jwt_cache_size, 10_000);
        assert!(matches!(c.revocation, Revocation::Off));
        assert!(c.upstream.is_none());
        assert_eq!(c.max_body_bytes, 65536);
        assert!(c.cors.enabled);
        assert!(c.cors.origins.is_empty());
        assert!(!c.cors.is_on(), "no origins: nothing to allow");
        assert_eq!(c.upstream_cors, UpstreamCors::Answer);
        assert!(!c.require_verified_email);
        let c = load(&[("BETTER_AUTH_URL", "https://auth.example.com:443/x/y")]).unwrap();
        assert_eq!(c.issuer, "https://auth.example.com");
    }

    #[test]
    fn auth_url_may_be_replaced_by_explicit_settings() {
        assert_eq!(setting_of(&[]), "BETTER_AUTH_URL");
        assert_eq!(
            setting_of(&[("LATCHKEY_JWKS_URL", "http://a/jwks")]),
            "BETTER_AUTH_URL"
        );
        let c = load(&[
            ("LATCHKEY_JWKS_URL", "http://a/jwks"),
            ("LATCHKEY_JWT_ISSUER", "https://issuer"),
        ])
        .unwrap();
        assert_eq!(c.audience, "https://issuer");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("BETTER_AUTH_URL", "localhost:3000")], "BETTER_AUTH_URL"),
            (&[("BETTER_AUTH_URL", "ftp://x")], "BETTER_AUTH_URL"),
            (&[BA, ("LATCHKEY_LISTEN", "8000")], "LATCHKEY_LISTEN"),
            (&[BA, ("LATCHKEY_JWKS_URL", "/jwks")], "LATCHKEY_JWKS_URL"),
            (&[BA, ("LATCHKEY_JWT_ISSUER", " ")], "LATCHKEY_JWT_ISSUER"),
            (
                &[BA, ("LATCHKEY_JWKS_REFRESH", "-1")],
                "LATCHKEY_JWKS_REFRESH",
            ),
            (
                &[BA, ("LATCHKEY_JWKS_REFRESH", "0")],
                "LATCHKEY_JWKS_REFRESH",
            ),
            (
                &[BA, ("LATCHKEY_JWT_MAX_LIFETIME", "0")],
                "LATCHKEY_JWT_MAX_LIFETIME",
            ),
            (
                &[BA, ("LATCHKEY_JWT_MAX_LIFETIME", "1d")],
                "LATCHKEY_JWT_MAX_LIFETIME",
            ),
            (
                &[BA, ("LATCHKEY_JWT_MAX_LIFETIME", "-900")],
                "LATCHKEY_JWT_MAX_LIFETIME",
            ),
            (
                &[BA, ("LATCHKEY_JWT_MAX_LIFETIME", "31536001")],
                "LATCHKEY_JWT_MAX_LIFETIME",
            ),
            (
                &[BA, ("LATCHKEY_JWKS_CA_FILE", "/nonexistent")],
                "LATCHKEY_JWKS_CA_FILE",
            ),
            (
                &[BA, ("LATCHKEY_REVOCATION", "sessions")],
                "LATCHKEY_REVOCATION",
            ),
            (&[BA, ("LATCHKEY_REVOCATION", "session")], "DATABASE_URL"),
            (
                &[
                    BA,
                    ("LATCHKEY_REVOCATION", "session"),
                    ("DATABASE_URL", "postgres://u@h/db"),
                    ("LATCHKEY_REVOCATION_CACHE_TTL", "5s"),
                ],
                "LATCHKEY_REVOCATION_CACHE_TTL",
            ),
            (&[BA, ("LATCHKEY_UPSTREAM", "unix:/x")], "LATCHKEY_UPSTREAM"),
            (
                &[BA, ("LATCHKEY_UPSTREAM", "http://h/?a=1")],
                "LATCHKEY_UPSTREAM",
            ),
            (
                &[BA, ("LATCHKEY_MAX_BODY_BYTES", "lots")],
                "LATCHKEY_MAX_BODY_BYTES",
            ),
            (&[BA, ("LATCHKEY_TLS_CERT", "/c.pem")], "LATCHKEY_TLS_KEY"),
            (&[BA, ("BETTER_AUTH_SECRET", "short")], "BETTER_AUTH_SECRET"),
            (&[BA, ("LATCHKEY_CORS", "maybe")], "LATCHKEY_CORS"),
            (
                &[BA, ("LATCHKEY_CORS_ALLOW_HEADERS", "x-ok, not a header")],
                "LATCHKEY_CORS_ALLOW_HEADERS",
            ),
            (
                &[BA, ("LATCHKEY_CORS_ALLOW_HEADERS", "*")],
                "LATCHKEY_CORS_ALLOW_HEADERS",
            ),
            (
                &[BA, ("LATCHKEY_UPSTREAM_CORS", "forward")],
                "LATCHKEY_UPSTREAM_CORS",
            ),
            (
                &[BA, ("LATCHKEY_REQUIRE_VERIFIED_EMAIL", "sometimes")],
                "LATCHKEY_REQUIRE_VERIFIED_EMAIL",
            ),
        ];
        for (env, setting) in cases {
            assert_eq!(&setting_of(env), setting, "{env:?}");
        }
    }

    #[test]
    fn require_verified_email() {
        for (raw, want) in [
            ("true", true),
            (" on ", true),
            ("1", true),
            ("false", false),
        ] {
            let c = load(&[BA, ("LATCHKEY_REQUIRE_VERIFIED_EMAIL", raw)]).unwrap();
            assert_eq!(c.require_verified_email, want, "{raw:?}");
        }
    }

    #[test]
    fn jwt_cache_size() {
        for (raw, want) in [
            ("0", 0),
            (" 1 ", 1),
            ("250000", 250_000),
            ("1000000", 1_000_000),
        ] {
            let c = load(&[BA, ("LATCHKEY_JWT_CACHE_SIZE", raw)]).unwrap();
            assert_eq!(c.jwt_cache_size, want, "{raw:?}");
        }
        for bad in ["-1", "10k", "", "1000001", "1e4"] {
            assert_eq!(
                setting_of(&[BA, ("LATCHKEY_JWT_CACHE_SIZE", bad)]),
                "LATCHKEY_JWT_CACHE_SIZE",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn jwt_max_lifetime() {
        let c = load(&[BA, ("LATCHKEY_JWT_MAX_LIFETIME", " 3600 ")]).unwrap();
        assert_eq!(c.jwt_max_lifetime, Duration::from_secs(3600));
        let c = load(&[BA, ("LATCHKEY_JWT_MAX_LIFETIME", "31536000")]).unwrap();
        assert_eq!(c.jwt_max_lifetime, Duration::from_secs(31536000));
    }

    #[test]
    fn revocation_and_upstream() {
        let c = load(&[
            BA,
            ("LATCHKEY_REVOCATION", "session"),
            ("DATABASE_URL", "postgres://u:hunter2hunter2@h/db"),
            ("LATCHKEY_UPSTREAM", "http://127.0.0.1:9000/app/"),
            ("BETTER_AUTH_SECRET", "0123456789abcdefghijklmnopqrstuvwxyz"),
        ])
        .unwrap();
        let Revocation::Session { cache_ttl, .. } = &c.revocation else {
            panic!("revocation on");
        };
        assert_eq!(*cache_ttl, Duration::from_secs(5));
        assert_eq!(
            c.upstream,
            Some(Upstream {
                scheme: "http".into(),
                authority: "127.0.0.1:9000".into(),
                prefix: "/app".into(),
            })
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn cors_origins_and_headers() {
        let trusted = (
            "BETTER_AUTH_TRUSTED_ORIGINS",
            "https://a.example, https://*.b.example",
        );
        let c = load(&[BA, trusted]).unwrap();
        assert!(c.cors.is_on());
        assert_eq!(
            c.cors.origins.iter().collect::<Vec<_>>(),
            ["https://a.example", "https://*.b.example"]
        );
        let c = load(&[BA, trusted, ("LATCHKEY_CORS_ORIGINS", "https://c.example/")]).unwrap();
        assert_eq!(
            c.cors.origins.iter().collect::<Vec<_>>(),
            ["https://c.example"]
        );
        let c = load(&[BA, trusted, ("LATCHKEY_CORS_ORIGINS", "")]).unwrap();
        assert!(!c.cors.is_on(), "an explicit empty list overrides");
        let c = load(&[BA, trusted, ("LATCHKEY_CORS", "off")]).unwrap();
        assert!(!c.cors.is_on());
        let c = load(&[
            BA,
            (
                "LATCHKEY_CORS_ALLOW_HEADERS",
                " X-Trace-Id, authorization,x-trace-id ,, x-b ",
            ),
            ("LATCHKEY_UPSTREAM_CORS", "pass"),
        ])
        .unwrap();
        assert_eq!(c.cors.extra_allow_headers, ["x-trace-id", "x-b"]);
        assert_eq!(c.upstream_cors, UpstreamCors::Pass);
    }
}
