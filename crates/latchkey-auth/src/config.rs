//! The auth daemon's configuration: one struct, loaded and validated once at start-up.

use std::net::SocketAddr;
use std::time::Duration;

use latchkey_core::config::TlsFiles;
use latchkey_core::server::ServerLimits;
use latchkey_core::{ConfigError, Source};
use secrecy::{ExposeSecret, SecretString};

use latchkey_core::origins::OriginPatterns;

use crate::cookies::{CookiePolicy, SameSite};
use crate::keys::KeyPolicy;
use crate::password::HashScheme;
use crate::ratelimit::{Cidr, Limit, RateLimitPolicy};
use crate::signing::Alg;

/// Better-Auth's minimum; it only warns, we refuse to start.
pub(crate) const MIN_SECRET_CHARS: usize = 32;

#[derive(Debug)]
pub(crate) struct AuthConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) tls: Option<TlsFiles>,
    /// Connection limits, timeouts and the drain delay (shared with latchkey-api).
    pub(crate) server: ServerLimits,
    /// Where `/metrics` is served (`LATCHKEY_METRICS_LISTEN`); off when unset.
    pub(crate) metrics_listen: Option<SocketAddr>,
    pub(crate) database_url: SecretString,
    pub(crate) secret: SecretString,
    /// Public URL of this daemon, e.g. `https://auth.example.com`.
    pub(crate) base_url: url::Url,
    /// Origin of `base_url`: the JWT issuer and audience, and a trusted origin.
    pub(crate) origin: String,
    pub(crate) trusted_origins: Vec<String>,
    /// Answer CORS for the trusted origins (`LATCHKEY_CORS`, on by default).
    pub(crate) cors: bool,
    pub(crate) cookies: CookiePolicy,
    /// Bearer tokens must carry the cookie signature (`set-auth-token`); Better-Auth's
    /// `requireSignature`, off there (`LATCHKEY_REQUIRE_SIGNED_BEARER`, on here).
    pub(crate) require_signed_bearer: bool,
    /// list-sessions shows the raw token of every session, as Better-Auth does
    /// (`LATCHKEY_LIST_SESSION_TOKENS=all`), or only of the caller's own (`current`, the
    /// default): the others' `token` is then their session id, which revoke-session takes.
    pub(crate) list_all_session_tokens: bool,
    pub(crate) session: SessionPolicy,
    pub(crate) jwt_ttl: Duration,
    pub(crate) keys: KeyPolicy,
    pub(crate) max_body_bytes: usize,
    pub(crate) hash_scheme: HashScheme,
    pub(crate) hash_concurrency: usize,
    /// How long a sign-in may wait for a hashing slot before a 503.
    pub(crate) hash_queue_timeout: Duration,
    pub(crate) db_pool_size: usize,
    /// Unnamed or prepared statements (`LATCHKEY_DB_STATEMENTS`).
    pub(crate) db_statements: latchkey_core::sql::Statements,
    /// Bound on every database call (`LATCHKEY_DB_TIMEOUT`); past it the answer is a 503.
    pub(crate) db_timeout: Duration,
    /// Pooled connections unused this long are closed (`LATCHKEY_DB_IDLE_TIMEOUT`; 0 keeps
    /// them).
    pub(crate) db_idle_timeout: Duration,
    /// Audit events older than this are purged (`LATCHKEY_AUDIT_RETENTION`, days; 0 keeps
    /// them).
    pub(crate) audit_retention: Duration,
    pub(crate) rate_limit: RateLimitPolicy,
    /// Mail transport, sender and templates (mail.rs).
    pub(crate) mail: crate::mail::MailConfig,
    /// Email verification and password reset (docs/compatibility.md#verification-tokens).
    pub(crate) email: EmailPolicy,
    /// Social sign-in (oauth/).
    pub(crate) social: SocialPolicy,
}

/// Better-Auth's `socialProviders` and `account` options.
#[derive(Debug, Clone)]
pub(crate) struct SocialPolicy {
    pub(crate) providers: Vec<crate::oauth::config::ProviderConfig>,
    /// `accountLinking.trustedProviders`: their unverified emails still link implicitly.
    pub(crate) trusted_providers: Vec<String>,
    /// `account.encryptOAuthTokens`, on by default here.
    pub(crate) encrypt_tokens: bool,
}

/// Better-Auth's `emailVerification` and `emailAndPassword` options, with its defaults.
#[derive(Debug, Clone)]
pub(crate) struct EmailPolicy {
    /// `requireEmailVerification`: no session before the address is verified.
    pub(crate) require_verification: bool,
    /// `sendOnSignUp` (defaults to `require_verification`).
    pub(crate) send_on_sign_up: bool,
    /// `sendOnSignIn`: an unverified sign-in with the right password gets a new link.
    pub(crate) send_on_sign_in: bool,
    /// `autoSignInAfterVerification`.
    pub(crate) auto_sign_in: bool,
    pub(crate) verification_expires_in: Duration,
    pub(crate) reset_expires_in: Duration,
    /// `revokeSessionsOnPasswordReset`.
    pub(crate) revoke_sessions_on_reset: bool,
    /// `user.changeEmail.enabled`.
    pub(crate) change_email: bool,
    /// `user.deleteUser.enabled`.
    pub(crate) delete_user: bool,
    /// `user.deleteUser.deleteTokenExpiresIn`.
    pub(crate) delete_expires_in: Duration,
}

#[derive(Debug, Clone)]
pub(crate) struct SessionPolicy {
    pub(crate) expires_in: Duration,
    /// A session is extended once it is this old (sliding refresh).
    pub(crate) update_age: Duration,
    /// Sessions younger than this count as fresh (needed by list-sessions).
    pub(crate) fresh_age: Duration,
}

const DAY: u64 = 86_400;
/// Upper bound for every duration setting: far beyond any sane value, far below overflow.
const TEN_YEARS: Duration = Duration::from_secs(3650 * DAY);

impl AuthConfig {
    pub(crate) fn load(src: &Source) -> Result<Self, ConfigError> {
        let listen = src.listen_or("LATCHKEY_LISTEN", "127.0.0.1:3000")?;
        let secret = src.secret("BETTER_AUTH_SECRET")?.ok_or_else(|| {
            ConfigError::new(
                "BETTER_AUTH_SECRET",
                "is required (set it, BETTER_AUTH_SECRET_FILE, or a systemd credential)",
            )
        })?;
        let chars = secret.expose_secret().chars().count();
        if chars < MIN_SECRET_CHARS {
            return Err(ConfigError::new(
                "BETTER_AUTH_SECRET",
                format!("must be at least {MIN_SECRET_CHARS} characters (got {chars})"),
            ));
        }
        let database_url = src.secret("DATABASE_URL")?.ok_or_else(|| {
            ConfigError::new("DATABASE_URL", "is required (postgres://user@host/db)")
        })?;

        let raw_url = src
            .get("BETTER_AUTH_URL")?
            .unwrap_or_else(|| format!("http://{listen}"));
        let base_url = url::Url::parse(raw_url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                ConfigError::new(
                    "BETTER_AUTH_URL",
                    format!("invalid URL {raw_url:?}: expected http(s)://host[:port]"),
                )
            })?;
        let origin = base_url.origin().ascii_serialization();
        let trusted_origins = src
            .get("BETTER_AUTH_TRUSTED_ORIGINS")?
            .map(|v| OriginPatterns::parse_list(&v))
            .unwrap_or_default();
        let cors = src.bool_or("LATCHKEY_CORS", true)?;
        let cookies = cookie_policy(src, &base_url)?;
        let require_signed_bearer = src.bool_or("LATCHKEY_REQUIRE_SIGNED_BEARER", true)?;
        let list_all_session_tokens = match src
            .get("LATCHKEY_LIST_SESSION_TOKENS")?
            .as_deref()
            .map(str::trim)
        {
            None | Some("current") => false,
            Some("all") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    "LATCHKEY_LIST_SESSION_TOKENS",
                    format!("invalid value {other:?}: expected current or all"),
                ))
            }
        };

        let session = SessionPolicy {
            expires_in: src.seconds_within(
                "LATCHKEY_SESSION_EXPIRES_IN",
                Duration::from_secs(7 * DAY),
                TEN_YEARS,
            )?,
            update_age: src.seconds_within(
                "LATCHKEY_SESSION_UPDATE_AGE",
                Duration::from_secs(DAY),
                TEN_YEARS,
            )?,
            fresh_age: src.seconds_within(
                "LATCHKEY_SESSION_FRESH_AGE",
                Duration::from_secs(DAY),
                TEN_YEARS,
            )?,
        };
        if session.expires_in.is_zero() {
            return Err(ConfigError::new(
                "LATCHKEY_SESSION_EXPIRES_IN",
                "must be positive",
            ));
        }
        let jwt_ttl = src.seconds_within(
            "LATCHKEY_JWT_EXPIRES_IN",
            Duration::from_secs(900),
            TEN_YEARS,
        )?;
        if jwt_ttl.is_zero() || jwt_ttl > Duration::from_secs(DAY) {
            return Err(ConfigError::new(
                "LATCHKEY_JWT_EXPIRES_IN",
                "must be between 1 second and 1 day: JWTs cannot be revoked, keep them short",
            ));
        }
        let rotation = src.seconds_within(
            "LATCHKEY_KEY_ROTATION_INTERVAL",
            Duration::from_secs(30 * DAY),
            TEN_YEARS,
        )?;
        let keys = KeyPolicy {
            rotation_interval: (!rotation.is_zero()).then_some(rotation),
            grace_period: src.seconds_within(
                "LATCHKEY_KEY_GRACE_PERIOD",
                Duration::from_secs(30 * DAY),
                TEN_YEARS,
            )?,
            reload_interval: src.seconds_within(
                "LATCHKEY_KEY_RELOAD_INTERVAL",
                Duration::from_secs(30),
                TEN_YEARS,
            )?,
            alg: src.parse_or("LATCHKEY_JWT_ALG", Alg::EdDsa)?,
        };
        if keys.reload_interval.is_zero() {
            return Err(ConfigError::new(
                "LATCHKEY_KEY_RELOAD_INTERVAL",
                "must be positive",
            ));
        }
        if keys.grace_period < jwt_ttl {
            return Err(ConfigError::new(
                "LATCHKEY_KEY_GRACE_PERIOD",
                "must be at least LATCHKEY_JWT_EXPIRES_IN, or tokens would outlive their key",
            ));
        }
        let hash_scheme = match src.get("LATCHKEY_PASSWORD_HASH")?.as_deref().map(str::trim) {
            None | Some("argon2id") => HashScheme::Argon2id,
            Some("scrypt") => HashScheme::Scrypt,
            Some(other) => {
                return Err(ConfigError::new(
                    "LATCHKEY_PASSWORD_HASH",
                    format!("invalid value {other:?}: expected argon2id or scrypt"),
                ))
            }
        };
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let hash_concurrency = src.parse_or("LATCHKEY_HASH_CONCURRENCY", cpus)?;
        if hash_concurrency == 0 {
            return Err(ConfigError::new(
                "LATCHKEY_HASH_CONCURRENCY",
                "must be at least 1",
            ));
        }
        let hash_queue_timeout = src.positive_seconds_within(
            "LATCHKEY_HASH_QUEUE_TIMEOUT",
            Duration::from_secs(10),
            Duration::from_secs(300),
        )?;
        let max_body_bytes = src.parse_or("LATCHKEY_MAX_BODY_BYTES", 64 * 1024)?;
        // Four queries in flight per core: enough to cover a network round trip to a managed
        // Postgres (about 100 µs of our CPU per request against 0.3-1 ms away), few enough
        // that a Postgres on the same cores does not crowd out our worker threads; 8 beat 16
        // here in throughput and tail latency on 2 cores (BENCHMARKS.md, pool size).
        let db_pool_size = src.parse_or("LATCHKEY_DB_POOL_SIZE", 4 * cpus)?;
        if db_pool_size == 0 {
            return Err(ConfigError::new(
                "LATCHKEY_DB_POOL_SIZE",
                "must be at least 1",
            ));
        }
        let db_statements = latchkey_core::sql::Statements::from_source(src)?;
        let db_timeout = src.positive_seconds_within(
            "LATCHKEY_DB_TIMEOUT",
            Duration::from_secs(5),
            Duration::from_secs(300),
        )?;
        let db_idle_timeout = src.seconds_within(
            "LATCHKEY_DB_IDLE_TIMEOUT",
            Duration::from_secs(300),
            TEN_YEARS,
        )?;
        let audit_retention = Duration::from_secs(
            src.parse_or::<u64>("LATCHKEY_AUDIT_RETENTION", 90)?
                .min(3650)
                * DAY,
        );
        let rate_limit = RateLimitPolicy {
            enabled: src.bool_or("LATCHKEY_RATE_LIMIT", true)?,
            credential: Limit {
                max: src
                    .parse_or::<u32>("LATCHKEY_RATE_LIMIT_MAX", 3)?
                    .min(1_000_000),
                window: src.seconds_within(
                    "LATCHKEY_RATE_LIMIT_WINDOW",
                    Duration::from_secs(10),
                    Duration::from_secs(DAY),
                )?,
            },
            // Better-Auth's rule for the endpoints that send mail.
            mail: Limit {
                max: 3,
                window: Duration::from_secs(60),
            },
            trusted_proxies: match src.get("LATCHKEY_TRUSTED_PROXIES")? {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::parse::<Cidr>)
                    .collect::<Result<_, _>>()
                    .map_err(|e| ConfigError::new("LATCHKEY_TRUSTED_PROXIES", e))?,
            },
        };
        if rate_limit.credential.max == 0 || rate_limit.credential.window.is_zero() {
            return Err(ConfigError::new(
                "LATCHKEY_RATE_LIMIT_MAX",
                "limit and window must be positive (use LATCHKEY_RATE_LIMIT=off to disable)",
            ));
        }
        let mail = crate::mail::MailConfig::load(src, &base_url)?;
        let require_verification = src.bool_or("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", false)?;
        let email = EmailPolicy {
            require_verification,
            send_on_sign_up: src.bool_or(
                "LATCHKEY_SEND_VERIFICATION_ON_SIGN_UP",
                require_verification,
            )?,
            send_on_sign_in: src.bool_or("LATCHKEY_SEND_VERIFICATION_ON_SIGN_IN", false)?,
            auto_sign_in: src.bool_or("LATCHKEY_AUTO_SIGN_IN_AFTER_VERIFICATION", false)?,
            verification_expires_in: src.seconds_within(
                "LATCHKEY_VERIFICATION_TOKEN_EXPIRES_IN",
                Duration::from_secs(3600),
                Duration::from_secs(30 * DAY),
            )?,
            reset_expires_in: src.seconds_within(
                "LATCHKEY_RESET_TOKEN_EXPIRES_IN",
                Duration::from_secs(3600),
                Duration::from_secs(30 * DAY),
            )?,
            revoke_sessions_on_reset: src
                .bool_or("LATCHKEY_REVOKE_SESSIONS_ON_PASSWORD_RESET", false)?,
            change_email: src.bool_or("LATCHKEY_CHANGE_EMAIL", false)?,
            delete_user: src.bool_or("LATCHKEY_DELETE_USER", false)?,
            delete_expires_in: src.seconds_within(
                "LATCHKEY_DELETE_TOKEN_EXPIRES_IN",
                Duration::from_secs(DAY),
                Duration::from_secs(30 * DAY),
            )?,
        };
        for (name, value) in [
            (
                "LATCHKEY_VERIFICATION_TOKEN_EXPIRES_IN",
                email.verification_expires_in,
            ),
            ("LATCHKEY_RESET_TOKEN_EXPIRES_IN", email.reset_expires_in),
            ("LATCHKEY_DELETE_TOKEN_EXPIRES_IN", email.delete_expires_in),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(name, "must be positive"));
            }
        }
        let social = SocialPolicy {
            providers: crate::oauth::config::load(src)?,
            trusted_providers: src
                .get("LATCHKEY_TRUSTED_PROVIDERS")?
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            encrypt_tokens: src.bool_or("LATCHKEY_ENCRYPT_OAUTH_TOKENS", true)?,
        };
        src.reject_unknown()?;
        Ok(AuthConfig {
            listen,
            tls: TlsFiles::from_source(src)?,
            server: ServerLimits::from_source(src)?,
            metrics_listen: match src.get("LATCHKEY_METRICS_LISTEN")? {
                Some(_) => Some(src.listen_or("LATCHKEY_METRICS_LISTEN", "")?),
                None => None,
            },
            database_url,
            secret,
            base_url,
            origin,
            trusted_origins,
            cors,
            cookies,
            require_signed_bearer,
            list_all_session_tokens,
            session,
            jwt_ttl,
            keys,
            max_body_bytes,
            hash_scheme,
            hash_concurrency,
            hash_queue_timeout,
            db_pool_size,
            db_statements,
            db_timeout,
            db_idle_timeout,
            audit_retention,
            rate_limit,
            mail,
            email,
            social,
        })
    }

    /// The trusted origins: this daemon's own plus `BETTER_AUTH_TRUSTED_ORIGINS`.
    pub(crate) fn origin_patterns(&self) -> OriginPatterns {
        OriginPatterns::new(std::iter::once(&self.origin).chain(&self.trusted_origins))
    }
}

/// Better-Auth's cookie options (docs/compatibility.md#cookies).
fn cookie_policy(src: &Source, base_url: &url::Url) -> Result<CookiePolicy, ConfigError> {
    let prefix = src
        .get("LATCHKEY_COOKIE_PREFIX")?
        .map(|p| p.trim().to_string())
        .unwrap_or_else(|| "better-auth".to_string());
    // A cookie name is an RFC 6265 token; `__Secure-` is ours to add.
    let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if prefix.is_empty() || !prefix.chars().all(token_char) || prefix.starts_with("__") {
        return Err(ConfigError::new(
            "LATCHKEY_COOKIE_PREFIX",
            format!("invalid prefix {prefix:?}: letters, digits and -._ only"),
        ));
    }
    let secure = src.bool_or("LATCHKEY_SECURE_COOKIES", base_url.scheme() == "https")?;
    let same_site = match src
        .get("LATCHKEY_COOKIE_SAME_SITE")?
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("lax") => SameSite::Lax,
        Some("strict") => SameSite::Strict,
        Some("none") => SameSite::None,
        Some(other) => {
            return Err(ConfigError::new(
                "LATCHKEY_COOKIE_SAME_SITE",
                format!("invalid value {other:?}: expected lax, strict or none"),
            ))
        }
    };
    let domain = match src.get("LATCHKEY_COOKIE_DOMAIN")? {
        None => None,
        Some(d) => {
            let d = d.trim().to_string();
            let host = d.strip_prefix('.').unwrap_or(&d);
            let valid = !host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !valid {
                return Err(ConfigError::new(
                    "LATCHKEY_COOKIE_DOMAIN",
                    format!("invalid domain {d:?}: expected a host name such as example.com"),
                ));
            }
            Some(d)
        }
    };
    Ok(CookiePolicy {
        prefix,
        secure,
        same_site,
        domain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthConfig::load(&Source::from_parts(env, toml::Table::new(), None))
    }

    const GOOD: [(&str, &str); 2] = [
        ("BETTER_AUTH_SECRET", "0123456789abcdefghijklmnopqrstuvwxyz"),
        ("DATABASE_URL", "postgres://u:pw@127.0.0.1/db"),
    ];

    #[test]
    fn defaults() {
        let c = load(&GOOD).unwrap();
        assert_eq!(c.origin, "http://127.0.0.1:3000");
        assert!(!c.cookies.secure);
        assert!(c.cors);
        assert_eq!(c.jwt_ttl, Duration::from_secs(900));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("0123456789abcdef") && !dbg.contains("pw@"),
            "{dbg}"
        );
    }

    #[test]
    fn short_secret_is_refused_by_name() {
        let err = load(&[("BETTER_AUTH_SECRET", "short"), GOOD[1]]).unwrap_err();
        assert_eq!(err.setting, "BETTER_AUTH_SECRET");
        assert!(!err.to_string().contains("short\""));
    }

    #[test]
    fn bad_settings_are_named() {
        let mut env = GOOD.to_vec();
        env.push(("BETTER_AUTH_URL", "ftp://x"));
        assert_eq!(load(&env).unwrap_err().setting, "BETTER_AUTH_URL");
        let mut env = GOOD.to_vec();
        env.push(("LATCHKEY_PASSWORD_HASH", "md5"));
        assert_eq!(load(&env).unwrap_err().setting, "LATCHKEY_PASSWORD_HASH");
        assert_eq!(load(&GOOD[..1]).unwrap_err().setting, "DATABASE_URL");
    }

    #[test]
    fn absurd_durations_are_refused_at_start_not_at_request_time() {
        let mut env = GOOD.to_vec();
        env.push(("LATCHKEY_SESSION_EXPIRES_IN", "10000000000000"));
        assert_eq!(
            load(&env).unwrap_err().setting,
            "LATCHKEY_SESSION_EXPIRES_IN"
        );
        let mut env = GOOD.to_vec();
        env.push(("LATCHKEY_RATE_LIMIT_WINDOW", "99999999999"));
        assert_eq!(
            load(&env).unwrap_err().setting,
            "LATCHKEY_RATE_LIMIT_WINDOW"
        );
    }

    #[test]
    fn cookie_settings() {
        let mut env = GOOD.to_vec();
        env.extend([
            ("LATCHKEY_COOKIE_PREFIX", "myapp"),
            ("LATCHKEY_COOKIE_SAME_SITE", "None"),
            ("LATCHKEY_COOKIE_DOMAIN", ".example.test"),
            ("LATCHKEY_SECURE_COOKIES", "true"),
        ]);
        let c = load(&env).unwrap().cookies;
        assert_eq!(
            (
                c.prefix.as_str(),
                c.secure,
                c.same_site,
                c.domain.as_deref()
            ),
            ("myapp", true, SameSite::None, Some(".example.test"))
        );
        for (name, bad) in [
            ("LATCHKEY_COOKIE_PREFIX", "a b"),
            ("LATCHKEY_COOKIE_PREFIX", "__Host-x"),
            ("LATCHKEY_COOKIE_SAME_SITE", "sometimes"),
            ("LATCHKEY_COOKIE_DOMAIN", "exa mple.com"),
            ("LATCHKEY_COOKIE_DOMAIN", "a..b"),
            ("LATCHKEY_CORS", "maybe"),
        ] {
            let mut env = GOOD.to_vec();
            env.push((name, bad));
            assert_eq!(load(&env).unwrap_err().setting, name, "{bad}");
        }
    }

    #[test]
    fn https_base_url_means_secure_cookies() {
        let mut env = GOOD.to_vec();
        env.push(("BETTER_AUTH_URL", "https://auth.example.com/"));
        let c = load(&env).unwrap();
        assert!(c.cookies.secure);
        assert_eq!(c.origin, "https://auth.example.com");
    }
}
