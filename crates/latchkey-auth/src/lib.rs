//! latchkey-auth: a Better-Auth compatible auth daemon (docs/compatibility.md says what it
//! follows of Better-Auth, and where it differs).
//!
//! The crate is a binary with a library only for structure: everything is `pub(crate)` except
//! [`main`], so the compiler reports dead code.

// Lint policy: no `unwrap`/`expect`/`panic!` outside tests (workspace lints, clippy.toml);
// a request must never be able to take the daemon down.

mod audit;
mod config;
mod cookies;
mod daemon;
mod email_token;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handlers;
mod ids;
mod keys;
mod mail;
mod migrate;
mod oauth;
mod origin;
mod outbox;
mod password;
mod ratelimit;
mod reply;
mod request;
mod routes;
mod signing;
mod state;
mod store;
mod telemetry;

pub use daemon::main;
