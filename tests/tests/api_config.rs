//! `latchkey-api` start-up: the security warnings about its settings reach the operator, both
//! from `check-config` and in the daemon's log (they used to be emitted before logging was set
//! up, and vanished).

use latchkey_e2e::stack::Api;
use latchkey_e2e::{free_port, run_tool};

/// Plain http to a host that is not local: both must be said out loud. Neither host exists
/// (`.invalid`), and nothing here needs them to: the pool connects lazily and the JWKS
/// refresher retries in the background.
const JWKS_URL: &str = "http://auth.example.invalid/api/auth/jwks";
const DB_PASSWORD: &str = "pw-never-printed-0123";
const JWKS_WARNING: &str =
    "JWKS URL http://auth.example.invalid/api/auth/jwks is plain http to a non-local host";
const DB_WARNING: &str = "DATABASE_URL connects to db.example.invalid without TLS";

fn insecure(s: latchkey_e2e::DaemonSpec) -> latchkey_e2e::DaemonSpec {
    s.env("LATCHKEY_JWKS_URL", JWKS_URL)
        .env("LATCHKEY_JWT_ISSUER", "http://auth.example.invalid")
        .env("LATCHKEY_REVOCATION", "session")
        .env(
            "DATABASE_URL",
            format!("postgres://latchkey:{DB_PASSWORD}@db.example.invalid:5432/latchkey"),
        )
}

#[test]
fn insecure_jwks_and_database_urls_are_warned_about_by_check_config_and_the_daemon() {
    let spec = insecure(Api::spec("http://auth.example.invalid", free_port()));
    let out = run_tool("latchkey-api", &["check-config"], &spec.env);
    out.assert_success();
    assert!(out.stdout.contains("configuration ok"), "{out:?}");
    for warning in [JWKS_WARNING, DB_WARNING] {
        assert!(
            out.stderr.contains(warning),
            "check-config stderr lacks {warning:?}:\n{}",
            out.stderr
        );
    }
    assert!(
        !out.stdout.contains("WARN"),
        "warnings belong on stderr: {out:?}"
    );

    let api = Api::start_with("http://auth.example.invalid", insecure);
    let log = api.daemon.log();
    for warning in [JWKS_WARNING, DB_WARNING] {
        assert!(
            log.contains(warning),
            "daemon log lacks {warning:?}:\n{log}"
        );
    }
    let everything = format!("{}{}{log}", out.stdout, out.stderr);
    assert!(
        !everything.contains(DB_PASSWORD),
        "the database password was printed"
    );
}

/// A secure configuration says nothing of the kind.
#[test]
fn local_plain_http_is_not_warned_about() {
    let spec = Api::spec("http://127.0.0.1:3999", free_port())
        .env("LATCHKEY_REVOCATION", "session")
        .env("DATABASE_URL", "postgres://u:p@127.0.0.1:5432/db");
    let out = run_tool("latchkey-api", &["check-config"], &spec.env);
    out.assert_success();
    assert!(!out.stderr.contains("WARN"), "{out:?}");
}
