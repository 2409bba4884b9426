//! latchkey-auth: a Better-Auth compatible auth daemon (see `../shared/better-auth-compat.md`).

pub mod config;
pub mod cookies;
pub mod error;
pub mod handlers;
pub mod ids;
pub mod keys;
pub mod migrate;
pub mod origin;
pub mod password;
pub mod ratelimit;
pub mod reply;
pub mod request;
pub mod routes;
pub mod signing;
pub mod state;
pub mod store;
