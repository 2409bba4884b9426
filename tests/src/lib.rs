//! End-to-end test harness for latchkey: a throwaway PostgreSQL cluster per test process, the
//! real `latchkey-auth` / `latchkey-api` binaries as child processes, a small HTTP client with
//! a cookie jar, JWT crafting helpers and an echo upstream for the reverse-proxy tests.
//!
//! Nothing here mocks a latchkey component: tests talk HTTP to the daemons and SQL to the
//! database they share.
//!
//! Environment knobs:
//! * `LATCHKEY_PG_BIN`  — directory holding `initdb` and `postgres` (default: the highest
//!   `/usr/lib/postgresql/*/bin`, else `PATH`).
//! * `LATCHKEY_BIN_DIR` — directory holding the daemon binaries (default: the cargo target
//!   directory this test binary was built into).
//! * `LATCHKEY_E2E_POOLER` — `transaction` or `session`: the daemons reach Postgres through
//!   PgBouncer (`LATCHKEY_PGBOUNCER`, else `pgbouncer` on PATH) in that pool mode.
//! * `LATCHKEY_E2E_STATEMENTS` — `prepared`: every daemon runs with
//!   `LATCHKEY_DB_STATEMENTS=prepared` (scripts/test does so for the session-mode pass).

pub mod daemon;
pub mod http;
pub mod jwt;
pub mod nginx;
pub mod node;
pub mod oauth_peers;
pub mod pg;
pub mod pooler;
pub mod proc;
pub mod prom;
pub mod smtp;
pub mod stack;
pub mod tls;
pub mod upstream;

pub use daemon::{bin_path, run_tool, Daemon, DaemonSpec, ToolOutput};
pub use http::{Client, CookieJar, Resp};
pub use pg::{cluster, TestDb};
pub use stack::{Api, Auth, Session};
pub use upstream::Upstream;

/// A free TCP port on 127.0.0.1 (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// A random alphanumeric string (used for secrets, emails and database names).
pub fn random_string(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A unique, lower-case e-mail address for one test.
pub fn random_email() -> String {
    format!(
        "user-{}@example.com",
        random_string(10).to_ascii_lowercase()
    )
}
