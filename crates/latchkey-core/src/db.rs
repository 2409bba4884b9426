//! The Postgres pool. TLS is used when the URL asks for it (`sslmode=require`, `verify-ca` or
//! `verify-full`, as managed services such as Neon need); rustls always verifies the server's
//! certificate (against `sslrootcert` when given, else the Mozilla roots) and sends SNI.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::config::SslMode;

use crate::config::ConfigError;

pub use deadpool_postgres::{Object as Client, Pool as DbPool, PoolError};

/// Builds the pool; connections are opened lazily, so this fails only on a bad URL or CA file.
pub fn pool(url: &SecretString, max_size: usize) -> Result<Pool, ConfigError> {
    let parsed = parse_url(url.expose_secret())?;
    let mut pg = parsed.config;
    if !parsed.tls {
        warn_if_plaintext_to_remote(&pg);
    }
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(Duration::from_secs(5));
    }
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = if parsed.tls {
        let tls =
            crate::tls::postgres_client_config(parsed.root_cert.as_deref(), parsed.verify_host)
                .map_err(|e| ConfigError::new("DATABASE_URL", e))?;
        Manager::from_config(pg, crate::pgtls::MakeRustls::new(tls), manager_config)
    } else {
        Manager::from_config(pg, tokio_postgres::NoTls, manager_config)
    };
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| ConfigError::new("DATABASE_URL", format!("cannot build pool: {e}")))
}

/// Plaintext is fine over a unix socket or loopback; elsewhere the password and every row cross
/// the network readable, so say so (libpq's `prefer` would at least try TLS).
fn warn_if_plaintext_to_remote(pg: &tokio_postgres::Config) {
    use tokio_postgres::config::Host;
    for host in pg.get_hosts() {
        if let Host::Tcp(name) = host {
            let local = name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !local {
                tracing::warn!(
                    "DATABASE_URL connects to {name} without TLS; add sslmode=verify-full"
                );
            }
        }
    }
}

struct ParsedUrl {
    config: tokio_postgres::Config,
    tls: bool,
    /// False for `sslmode=verify-ca`: the chain is checked, the host name is not.
    verify_host: bool,
    root_cert: Option<String>,
}

/// tokio-postgres knows `sslmode` disable/prefer/require only and rejects libpq's
/// `verify-ca`, `verify-full` and `sslrootcert`; those are taken out here, from the URL form
/// and the `key=value` form alike, and handled by us.
fn parse_url(raw: &str) -> Result<ParsedUrl, ConfigError> {
    // Never echo the URL: it usually holds a password.
    let bad = |why: &str| ConfigError::new("DATABASE_URL", why.to_string());
    let mut root_cert = None;
    let mut verify: Option<bool> = None;
    let mut take = |k: &str, v: &str| match (k, v) {
        ("sslmode", "verify-full") => {
            verify = Some(true);
            true
        }
        ("sslmode", "verify-ca") => {
            verify = Some(false);
            true
        }
        ("sslrootcert", path) => {
            root_cert = Some(path.to_string());
            true
        }
        _ => false,
    };
    let cleaned = if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        let mut url = url::Url::parse(raw).map_err(|_| bad("not a valid postgres:// URL"))?;
        let mut kept = Vec::new();
        for (k, v) in url.query_pairs() {
            if !take(&k, &v) {
                kept.push((k.into_owned(), v.into_owned()));
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        url.to_string()
    } else {
        let pairs = key_values(raw).map_err(|e| bad(&e))?;
        pairs
            .into_iter()
            .filter(|(k, v)| !take(k, v))
            .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut config: tokio_postgres::Config = cleaned
        .parse()
        .map_err(|e: tokio_postgres::Error| bad(&format!("invalid connection string: {e}")))?;
    if verify.is_some() {
        config.ssl_mode(SslMode::Require);
    }
    let tls = matches!(config.get_ssl_mode(), SslMode::Require);
    Ok(ParsedUrl {
        config,
        tls,
        // `require` is verified in full too: safer than libpq, which checks nothing then.
        verify_host: verify.unwrap_or(true),
        root_cert,
    })
}

/// libpq's `key=value` connection string: pairs separated by white space, values optionally
/// single-quoted with `\` escapes.
fn key_values(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("expected key=value, found {key:?} without a value"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(format!("unfinished escape in the value of {key}")),
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("unterminated quote in the value of {key}")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_tls_modes_are_understood() {
        let p =
            parse_url("postgres://u:p@db.example:5432/x?sslmode=verify-full&sslrootcert=/ca.pem")
                .unwrap();
        assert!(p.tls);
        assert_eq!(p.root_cert.as_deref(), Some("/ca.pem"));
        let p = parse_url("postgresql://u@h/x?sslmode=require&channel_binding=require").unwrap();
        assert!(p.tls);
        let p = parse_url("postgres://u@127.0.0.1:5/x").unwrap();
        assert!(!p.tls);
        let p = parse_url("host=/run/postgresql dbname=x").unwrap();
        assert!(!p.tls);
        // The key=value form takes libpq's TLS keys too.
        let p = parse_url(
            "host=db.example hostaddr=192.0.2.1 dbname='my db' sslmode=verify-ca sslrootcert=/ca.pem",
        )
        .unwrap();
        assert!(p.tls && !p.verify_host);
        assert_eq!(p.root_cert.as_deref(), Some("/ca.pem"));
        assert_eq!(p.config.get_dbname(), Some("my db"));
        let p = parse_url("postgres://u@h/x?sslmode=verify-ca").unwrap();
        assert!(p.tls && !p.verify_host);
        let p = parse_url("postgres://u@h/x?sslmode=require").unwrap();
        assert!(p.tls && p.verify_host);
    }

    #[test]
    fn key_values_are_parsed_as_libpq_does() {
        assert_eq!(
            key_values(r"a=1  b = 'x y' c='it\'s' d=").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "it's".into()),
                ("d".into(), "".into()),
            ]
        );
        assert!(key_values("a='open").is_err());
        assert!(key_values("lonely").is_err());
    }

    #[test]
    fn errors_do_not_echo_the_password() {
        let err = parse_url("postgres://u:sekrit@h/x?bogus=1")
            .err()
            .expect("unknown option rejected");
        assert!(!err.to_string().contains("sekrit"));
    }
}
