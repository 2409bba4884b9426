//! Plumbing shared by `latchkey-auth` and `latchkey-api`: configuration sources and secrets,
//! the Postgres pool (with TLS), the HTTP server loop, responses, shutdown and readiness.
//!
//! Nothing here knows about authentication; the daemons own their routes and their errors.

pub mod config;
pub mod db;
pub mod http;
pub mod log;
pub mod notify;
pub mod server;
pub mod tls;

pub use config::{ConfigError, Source};
