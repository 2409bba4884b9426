//! Plumbing shared by `latchkey-auth` and `latchkey-api`: configuration sources and secrets,
//! the Postgres pool (with TLS), the HTTP server loop, the outbound HTTPS client, responses,
//! CORS, shutdown and readiness.
//!
//! Nothing here knows about authentication; the daemons own their routes and their errors.

pub mod config;
pub mod cors;
pub mod db;
pub mod http;
pub mod http_client;
pub mod log;
pub mod metrics;
pub mod notify;
pub mod origins;
pub mod pgtls;
pub mod process;
pub mod server;
pub mod shutdown;
pub mod sql;
pub mod tls;

pub use config::{ConfigError, Source};

/// An error with all its causes, `outer: inner: innermost`. Top-level errors of hyper, the
/// pool and TLS say little ("client error (Connect)"); the causes are what an operator needs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The multi-threaded tokio runtime both daemons run on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
