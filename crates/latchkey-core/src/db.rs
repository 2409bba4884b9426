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
        let tls = crate::tls::postgres_client_config(parsed.root_cert.as_deref())
            .map_err(|e| ConfigError::new("DATABASE_URL", e))?;
        Manager::from_config(
            pg,
            tokio_postgres_rustls::MakeRustlsConnect::new(tls),
            manager_config,
        )
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
    root_cert: Option<String>,
}

/// tokio-postgres knows `sslmode` disable/prefer/require only and rejects libpq's
/// `verify-ca`, `verify-full` and `sslrootcert`; those are taken out here and handled by us.
fn parse_url(raw: &str) -> Result<ParsedUrl, ConfigError> {
    // Never echo the URL: it usually holds a password.
    let bad = |why: &str| ConfigError::new("DATABASE_URL", why.to_string());
    let mut root_cert = None;
    let mut wants_verify = false;
    let cleaned = if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        let mut url = url::Url::parse(raw).map_err(|_| bad("not a valid postgres:// URL"))?;
        let mut kept = Vec::new();
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("sslmode", "verify-ca" | "verify-full") => wants_verify = true,
                ("sslrootcert", path) => root_cert = Some(path.to_string()),
                _ => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        url.to_string()
    } else {
        raw.to_string()
    };
    let mut config: tokio_postgres::Config = cleaned
        .parse()
        .map_err(|e: tokio_postgres::Error| bad(&format!("invalid connection string: {e}")))?;
    if wants_verify {
        config.ssl_mode(SslMode::Require);
    }
    let tls = matches!(config.get_ssl_mode(), SslMode::Require);
    Ok(ParsedUrl {
        config,
        tls,
        root_cert,
    })
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
    }

    #[test]
    fn errors_do_not_echo_the_password() {
        let err = parse_url("postgres://u:sekrit@h/x?bogus=1")
            .err()
            .expect("unknown option rejected");
        assert!(!err.to_string().contains("sekrit"));
    }
}
