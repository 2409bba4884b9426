//! Better-Auth interoperability (issue 4), proven with Better-Auth's own tools: the Node and
//! Python scripts in `tests/compat/` run against daemons booted by the e2e harness.
//!
//! * the official `better-auth/client` (+ `jwtClient`) drives latchkey-auth; JWTs are verified
//!   with `jose` (`client.mjs`), and the same script passes against a real Better-Auth server;
//! * a database made by a real Better-Auth 1.7 server is taken over by latchkey, and the
//!   reverse (`from-ba.mjs`, `to-ba.mjs`);
//! * PyJWT's `PyJWKClient` and FastAPI verify our tokens, and FastAPI runs behind latchkey-api
//!   in reverse-proxy mode (`python/check_python.py`);
//! * each for EdDSA, RS256 and ES256 signing keys (`LATCHKEY_JWT_ALG`).
//!
//! Set-up, done once and cached: `npm ci` in `tests/compat` (again only when
//! `package-lock.json` or the Node version changed) and a virtualenv in
//! `target/tmp/compat-venv` with `tests/compat/python/requirements.txt` (again only when that
//! file or the Python version changed). Needs `node` (≥ 20) and `npm` on PATH (or
//! `LATCHKEY_NODE` / `LATCHKEY_NPM`), `python3` with the venv module (or `LATCHKEY_PYTHON`),
//! and the npm registry and PyPI on first run. Script output is kept in
//! `target/debug/e2e-logs/compat-*.log`.

use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use latchkey_e2e::daemon::log_dir;
use latchkey_e2e::oauth_peers::{OidcClient, OidcProvider};
use latchkey_e2e::stack::{Api, Auth, TRUSTED_ORIGIN};
use latchkey_e2e::{cluster, free_port, proc, Client, Daemon};
use serde_json::json;
use sha2::{Digest, Sha256};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

fn compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compat")
}

fn tmp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

fn node() -> String {
    tool("LATCHKEY_NODE", "node")
}

fn venv_python() -> PathBuf {
    tmp_dir().join("compat-venv/bin/python")
}

/// Settings of the test process that must not reach the scripts (Better-Auth reads several of
/// them, e.g. `BETTER_AUTH_URL`, `BASE_URL`, `NODE_ENV`).
fn scrub(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if k.starts_with("BETTER_AUTH")
            || k.starts_with("LATCHKEY_")
            || k.ends_with("BETTER_AUTH_URL")
            || k.ends_with("_AUTH_URL")
            || matches!(k, "DATABASE_URL" | "AUTH_SECRET" | "BASE_URL" | "NODE_ENV")
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1");
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn output_of(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e} (is it installed and on PATH?)"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `cmd` (an installer) to completion, panicking with its output on failure.
fn install(mut cmd: Command, what: &str) {
    let t = Instant::now();
    output_of(&mut cmd, what);
    eprintln!(
        "compat set-up: {what} took {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

/// `npm ci` and the Python venv, once per process and under a file lock across processes.
fn setup() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    std::fs::create_dir_all(tmp_dir()).unwrap();
    let lock = std::fs::File::create(tmp_dir().join("compat-setup.lock")).unwrap();
    // SAFETY: flock on an open descriptor; released when `lock` is closed.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);

    // Node: node_modules is reinstalled when the lock file or the Node version changes.
    let dir = compat_dir();
    let node_version = output_of(Command::new(node()).arg("--version"), "node --version");
    let lockfile = std::fs::read(dir.join("package-lock.json")).expect("package-lock.json");
    let want = sha256_hex(&[&lockfile, node_version.as_bytes()]);
    let stamp = dir.join("node_modules/.latchkey-stamp");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        let mut cmd = Command::new(tool("LATCHKEY_NPM", "npm"));
        cmd.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .stdin(Stdio::null());
        install(cmd, "npm ci (tests/compat)");
        std::fs::write(&stamp, &want).unwrap();
    }

    // Python: a venv under target/tmp, rebuilt when requirements.txt or Python changes.
    let python = tool("LATCHKEY_PYTHON", "python3");
    let py_version = output_of(Command::new(&python).arg("--version"), "python3 --version");
    let reqs = dir.join("python/requirements.txt");
    let want = sha256_hex(&[&std::fs::read(&reqs).unwrap(), py_version.as_bytes()]);
    let venv = tmp_dir().join("compat-venv");
    let stamp = venv.join(".latchkey-stamp");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        let _ = std::fs::remove_dir_all(&venv);
        let mut cmd = Command::new(&python);
        cmd.args(["-m", "venv"]).arg(&venv).stdin(Stdio::null());
        install(cmd, "python3 -m venv");
        let mut cmd = Command::new(venv_python());
        cmd.args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
            "-r",
        ])
        .arg(&reqs)
        .stdin(Stdio::null());
        install(cmd, "pip install -r python/requirements.txt");
        std::fs::write(&stamp, &want).unwrap();
    }
    *done = true;
}

/// Runs a compatibility script to completion; panics with its output (and `context`, e.g.
/// daemon logs) unless it exits 0. The output is also printed (visible with --nocapture).
fn run_script(
    name: &str,
    program: &Path,
    args: &[&str],
    env: &[(&str, String)],
    context: &dyn Fn() -> String,
) {
    setup();
    let log_path = log_dir().join(format!(
        "compat-{name}-{}-{}.log",
        std::process::id(),
        free_port()
    ));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(compat_dir())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    scrub(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let mut child = proc::spawn_with_pdeathsig(cmd, libc::SIGKILL)
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let status = proc::wait_timeout(&mut child, SCRIPT_TIMEOUT).unwrap();
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    println!(
        "--- {name} ({:.1} s) ---\n{output}",
        t.elapsed().as_secs_f64()
    );
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "compat script {name} failed ({s}):\n{output}\n{}",
            context()
        ),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "compat script {name} did not finish within {SCRIPT_TIMEOUT:?}:\n{output}\n{}",
                context()
            );
        }
    }
}

fn run_node(
    name: &str,
    script_and_args: &[&str],
    env: &[(&str, String)],
    ctx: &dyn Fn() -> String,
) {
    run_script(name, Path::new(&node()), script_and_args, env, ctx)
}

fn logs(daemons: &[&Daemon]) -> String {
    daemons
        .iter()
        .map(|d| {
            let log = d.log();
            let tail = &log[log.len().saturating_sub(4000)..];
            format!(
                "--- {} log ({}) ---\n{tail}",
                d.spec.bin,
                d.log_path().display()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Node process (a real Better-Auth server, `ba.mjs`); SIGTERM on drop.
struct NodeServer {
    child: std::process::Child,
    log_path: PathBuf,
}

impl NodeServer {
    fn start_ba(
        db_url: &str,
        secret: &str,
        port: u16,
        alg: &str,
        extra_env: &[(&str, String)],
    ) -> NodeServer {
        setup();
        let log_path = log_dir().join(format!("compat-ba-{}-{port}.log", std::process::id()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(node());
        cmd.arg("ba.mjs")
            .current_dir(compat_dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        scrub(&mut cmd);
        cmd.env("DATABASE_URL", db_url)
            .env("BETTER_AUTH_SECRET", secret)
            .env("BETTER_AUTH_URL", format!("http://127.0.0.1:{port}"))
            .env("BETTER_AUTH_TRUSTED_ORIGINS", TRUSTED_ORIGIN)
            .env("JWT_ALG", alg)
            .env("BA_MIGRATE", "1")
            .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())));
        let child = proc::spawn_tied(cmd, libc::SIGKILL).expect("cannot start node ba.mjs");
        let mut server = NodeServer { child, log_path };
        let client =
            Client::with_timeout(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("Better-Auth server exited ({status}):\n{}", server.log());
            }
            if matches!(client.get("/api/auth/ok").try_send(), Ok(r) if r.status == 200) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "Better-Auth server not up after 60 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        proc::signal(self.child.id(), libc::SIGTERM);
        if let Ok(None) = proc::wait_timeout(&mut self.child, Duration::from_secs(5)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn secret() -> String {
    format!("compat-{}", latchkey_e2e::random_string(40))
}

fn state_file(name: &str) -> String {
    let path = tmp_dir().join(format!(
        "compat-{name}-{}-{}.json",
        std::process::id(),
        free_port()
    ));
    path.to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------------------------------
// 1. The official client

/// The two settings whose defaults are stricter than Better-Auth's (raw bearer tokens refused,
/// other sessions' tokens left out of list-sessions), set back to Better-Auth's behaviour for
/// the scripts that assert it exchange by exchange.
/// The OpenID provider `corp` of the social sign-in checks (oidc-provider on loopback), with
/// two users: one who signs up through it, one who links it to a password account.
struct Social {
    op: OidcProvider,
    email: String,
    sub: String,
    link_email: String,
}

const CORP_CLIENT_SECRET: &str = "compat-corp-secret";

impl Social {
    /// A provider whose client `lk-corp` (client_secret_basic) may return to the auth server
    /// on `port`.
    fn start(port: u16) -> Social {
        let callback = format!("http://127.0.0.1:{port}/api/auth/callback/corp");
        let op = OidcProvider::builder()
            .client(OidcClient::new("lk-corp", CORP_CLIENT_SECRET, &callback).basic())
            .start();
        let email = latchkey_e2e::random_email();
        let sub = format!("sub-{}", latchkey_e2e::random_string(12));
        op.set_user(
            &email,
            json!({"sub": sub, "email_verified": true, "name": "Sofia"}),
        );
        let link_email = latchkey_e2e::random_email();
        op.set_user(
            &link_email,
            json!({"sub": format!("sub-{}", latchkey_e2e::random_string(12)), "email_verified": true}),
        );
        Social {
            op,
            email,
            sub,
            link_email,
        }
    }

    /// ba.mjs: genericOAuth `corp` with encrypted tokens.
    fn ba_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OIDC_ISSUER", self.op.issuer()),
            ("OIDC_CLIENT_ID", "lk-corp".to_string()),
            ("OIDC_CLIENT_SECRET", CORP_CLIENT_SECRET.to_string()),
        ]
    }

    /// latchkey-auth: the same provider (its tokens are encrypted by default).
    fn latchkey(&self, spec: latchkey_e2e::DaemonSpec) -> latchkey_e2e::DaemonSpec {
        spec.env("LATCHKEY_PROVIDER_CORP_TYPE", "oidc")
            .env("LATCHKEY_PROVIDER_CORP_ISSUER", self.op.issuer())
            .env("LATCHKEY_PROVIDER_CORP_CLIENT_ID", "lk-corp")
            .env("LATCHKEY_PROVIDER_CORP_CLIENT_SECRET", CORP_CLIENT_SECRET)
            .env(
                "LATCHKEY_PROVIDER_CORP_TOKEN_ENDPOINT_AUTH",
                "client_secret_basic",
            )
            .env(
                "LATCHKEY_PROVIDER_CORP_SCOPES",
                "openid,email,profile,offline_access",
            )
    }

    /// client.mjs: where the provider is and who signs in.
    fn client_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OIDC_ISSUER", self.op.issuer()),
            ("SOCIAL_EMAIL", self.email.clone()),
            ("SOCIAL_SUB", self.sub.clone()),
            ("SOCIAL_LINK_EMAIL", self.link_email.clone()),
        ]
    }
}

fn as_better_auth(spec: latchkey_e2e::DaemonSpec) -> latchkey_e2e::DaemonSpec {
    spec.env("LATCHKEY_REQUIRE_SIGNED_BEARER", "false")
        .env("LATCHKEY_LIST_SESSION_TOKENS", "all")
        // The reference Better-Auth has send callbacks (ba.mjs); the log stands in for them.
        .env("LATCHKEY_MAIL_TRANSPORT", "log")
        // As the reference Better-Auth (ba.mjs: user.changeEmail, user.deleteUser).
        .env("LATCHKEY_CHANGE_EMAIL", "true")
        .env("LATCHKEY_DELETE_USER", "true")
}

fn official_client_against_latchkey(alg: &str) {
    // The provider must know the auth server's callback before the server starts.
    let port = free_port();
    let social = Social::start(port);
    let db = cluster().create_db();
    let secret = secret();
    let spec = as_better_auth(Auth::spec(&db, &secret, port).env("LATCHKEY_JWT_ALG", alg));
    let auth = Auth {
        daemon: Daemon::start(social.latchkey(spec)),
        db,
        secret,
    };
    let api = Api::start(&auth);
    // The main run signs in dozens of times from one address; the 429 check gets a server of
    // its own with the default rate limit on.
    let limited = Auth::start_with(|s| {
        s.env("LATCHKEY_RATE_LIMIT", "on")
            .env("LATCHKEY_RATE_LIMIT_WINDOW", "600")
    });
    api.wait_ready();
    run_node(
        &format!("client-{alg}"),
        &["client.mjs"],
        &[
            ("AUTH_URL", auth.url()),
            ("API_URL", api.url()),
            ("TRUSTED_ORIGIN", TRUSTED_ORIGIN.to_string()),
            ("DATABASE_URL", auth.db.url.clone()),
            ("JWT_ALG", alg.to_string()),
            ("RATE_LIMITED_AUTH_URL", limited.url()),
            ("VERIFY_SECRET", auth.secret.clone()),
        ]
        .into_iter()
        .chain(social.client_env())
        .collect::<Vec<_>>(),
        &|| {
            format!(
                "{}\n--- provider ---\n{}",
                logs(&[&auth.daemon, &api.daemon, &limited.daemon]),
                social.op.log()
            )
        },
    );
}

#[test]
fn official_client_against_latchkey_eddsa() {
    official_client_against_latchkey("EdDSA");
}

#[test]
fn official_client_against_latchkey_rs256() {
    official_client_against_latchkey("RS256");
}

#[test]
fn official_client_against_latchkey_es256() {
    official_client_against_latchkey("ES256");
}

/// The same script against a real Better-Auth server: keeps the suite's expectations honest
/// (a check that fails here is wrong about Better-Auth, not about latchkey).
#[test]
fn official_client_against_real_better_auth() {
    let db = cluster().create_db();
    let port = free_port();
    let secret = secret();
    let social = Social::start(port);
    let ba = NodeServer::start_ba(&db.url, &secret, port, "EdDSA", &social.ba_env());
    run_node(
        "client-better-auth",
        &["client.mjs"],
        &[
            ("AUTH_URL", format!("http://127.0.0.1:{port}")),
            ("TRUSTED_ORIGIN", TRUSTED_ORIGIN.to_string()),
            ("DATABASE_URL", db.url.clone()),
            ("VERIFY_SECRET", secret.clone()),
            // Better-Auth has no /.well-known/jwks.json (latchkey adds it).
            ("SKIP_WELL_KNOWN", "1".to_string()),
        ]
        .into_iter()
        .chain(social.client_env())
        .collect::<Vec<_>>(),
        &|| format!("{}\n--- provider ---\n{}", ba.log(), social.op.log()),
    );
}

/// The same raw HTTP exchanges against a real Better-Auth server and latchkey-auth, compared
/// after normalisation (`diff.mjs`; set `COMPAT_STRICT=1` to fail on known deviations too).
#[test]
fn wire_diff_against_real_better_auth() {
    // Bare Better-Auth has no CORS (its hosts add it), so the diff runs with ours off; CORS has
    // its own tests (browser_policy.rs, api_cors.rs, browser.rs).
    let auth = Auth::start_with(|s| as_better_auth(s.env("LATCHKEY_CORS", "off")));
    let ba_db = cluster().create_db();
    // COMPAT_STRICT / COMPAT_FAIL_FAST reach the scripts through the inherited environment.
    let env = [
        ("AUTH_URL", auth.url()),
        ("TRUSTED_ORIGIN", TRUSTED_ORIGIN.to_string()),
        ("DATABASE_URL", auth.db.url.clone()),
        ("BA_DATABASE_URL", ba_db.url.clone()),
        ("BA_PORT", free_port().to_string()),
    ];
    run_node("diff", &["diff.mjs"], &env, &|| logs(&[&auth.daemon]));
}

// ---------------------------------------------------------------------------------------------
// 2. The database, both ways

fn database_from_better_auth(alg: &str) {
    let db = cluster().create_db();
    let secret = secret();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let state = state_file("from-ba");
    let common = [
        ("DATABASE_URL", db.url.clone()),
        ("BETTER_AUTH_SECRET", secret.clone()),
        ("STATE_FILE", state.clone()),
        ("JWT_ALG", alg.to_string()),
    ];
    let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        common
            .iter()
            .cloned()
            .chain(extra.iter().cloned())
            .collect()
    };
    // Better-Auth makes and fills the database, on the URL latchkey will take over.
    run_node(
        &format!("from-ba-fill-{alg}"),
        &["from-ba.mjs", "fill"],
        &with(&[("BETTER_AUTH_URL", url.clone())]),
        &String::new,
    );
    // latchkey-auth on the same database, secret and URL; latchkey-api in front; both servers
    // know the OpenID provider `corp`.
    let social = Social::start(port);
    let auth = Daemon::start(
        social.latchkey(
            Auth::spec(&db, &secret, port)
                .env("LATCHKEY_JWT_ALG", alg)
                .env("LATCHKEY_KEY_RELOAD_INTERVAL", "1")
                // Better-Auth's side has send callbacks; a reset crosses over between them.
                .env("LATCHKEY_MAIL_TRANSPORT", "log")
                // So does a change of address and a deletion (ba.mjs enables both).
                .env("LATCHKEY_CHANGE_EMAIL", "true")
                .env("LATCHKEY_DELETE_USER", "true"),
        ),
    );
    let api = Api::start_with(&url, |s| s);
    api.wait_ready();
    let env = with(&[
        ("AUTH_URL", url.clone()),
        ("API_URL", api.url()),
        ("BA_SIDE_PORT", free_port().to_string()),
        // latchkey's mail goes to its log (LATCHKEY_MAIL_TRANSPORT=log): links are read there.
        ("AUTH_LOG", auth.log_path().display().to_string()),
    ])
    .into_iter()
    .chain(social.ba_env())
    .chain(social.client_env())
    .collect::<Vec<_>>();
    run_node(
        &format!("from-ba-check-{alg}"),
        &["from-ba.mjs", "check"],
        &env,
        &|| logs(&[&auth, &api.daemon]),
    );
    let keys_before = published_keys(&url);
    latchkey_e2e::run_tool("latchkey-auth", &["keys", "rotate"], &auth.spec.env).assert_success();
    // The daemon reloads keys every second (LATCHKEY_KEY_RELOAD_INTERVAL=1); the JWKS and the
    // signing key change in the same reload.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while published_keys(&url) <= keys_before {
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated key never got published"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    run_node(
        &format!("from-ba-rotated-{alg}"),
        &["from-ba.mjs", "rotated"],
        &env,
        &|| logs(&[&auth, &api.daemon]),
    );
    let _ = std::fs::remove_file(&state);
}

#[test]
fn database_from_better_auth_eddsa() {
    database_from_better_auth("EdDSA");
}

#[test]
fn database_from_better_auth_rs256() {
    database_from_better_auth("RS256");
}

#[test]
fn database_from_better_auth_es256() {
    database_from_better_auth("ES256");
}

fn database_to_better_auth(alg: &str) {
    let db = cluster().create_db();
    let secret = secret();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let state = state_file("to-ba");
    let mut auth = Daemon::start(
        Auth::spec(&db, &secret, port)
            .env("LATCHKEY_JWT_ALG", alg)
            .env("LATCHKEY_PASSWORD_HASH", "scrypt"),
    );
    let api = Api::start_with(&url, |s| s);
    api.wait_ready();
    let common = [
        ("DATABASE_URL", db.url.clone()),
        ("STATE_FILE", state.clone()),
        ("JWT_ALG", alg.to_string()),
    ];
    let mut env: Vec<(&str, String)> = common.to_vec();
    env.push(("AUTH_URL", url.clone()));
    run_node(
        &format!("to-ba-fill-{alg}"),
        &["to-ba.mjs", "fill"],
        &env,
        &|| logs(&[&auth, &api.daemon]),
    );
    auth.terminate_cleanly();
    // A real Better-Auth server takes over the URL; latchkey-api stays in front.
    let mut env: Vec<(&str, String)> = common.to_vec();
    env.extend([
        ("BETTER_AUTH_SECRET", secret.clone()),
        ("BETTER_AUTH_URL", url.clone()),
        ("API_URL", api.url()),
    ]);
    run_node(
        &format!("to-ba-check-{alg}"),
        &["to-ba.mjs", "check"],
        &env,
        &|| logs(&[&auth, &api.daemon]),
    );
    let _ = std::fs::remove_file(&state);
}

#[test]
fn database_to_better_auth_eddsa() {
    database_to_better_auth("EdDSA");
}

#[test]
fn database_to_better_auth_rs256() {
    database_to_better_auth("RS256");
}

#[test]
fn database_to_better_auth_es256() {
    database_to_better_auth("ES256");
}

// ---------------------------------------------------------------------------------------------
// 3. Python: PyJWT + FastAPI, and FastAPI behind latchkey-api

fn python_backends(alg: &str) {
    let auth = Auth::start_with(|s| s.env("LATCHKEY_JWT_ALG", alg));
    let app_port = free_port();
    let proxied_port = free_port();
    let proxy = Api::start_with(&auth.url(), |s| {
        s.env(
            "LATCHKEY_UPSTREAM",
            format!("http://127.0.0.1:{proxied_port}"),
        )
    });
    proxy.wait_ready();
    let script = compat_dir().join("python/check_python.py");
    setup();
    run_script(
        &format!("python-{alg}"),
        &venv_python(),
        &[script.to_str().unwrap()],
        &[
            ("AUTH_URL", auth.url()),
            ("PROXY_URL", proxy.url()),
            ("JWT_APP_PORT", app_port.to_string()),
            ("PROXIED_APP_PORT", proxied_port.to_string()),
            ("JWT_ALG", alg.to_string()),
            (
                "PYTHONPATH",
                compat_dir().join("python").to_string_lossy().into_owned(),
            ),
            ("PYTHONDONTWRITEBYTECODE", "1".to_string()),
        ],
        &|| logs(&[&auth.daemon, &proxy.daemon]),
    );
}

#[test]
fn python_pyjwt_and_fastapi_eddsa() {
    python_backends("EdDSA");
}

#[test]
fn python_pyjwt_and_fastapi_rs256() {
    python_backends("RS256");
}

#[test]
fn python_pyjwt_and_fastapi_es256() {
    python_backends("ES256");
}

/// How many keys the auth daemon at `url` publishes.
fn published_keys(url: &str) -> usize {
    latchkey_e2e::http::Client::new(url)
        .get("/api/auth/jwks")
        .send()
        .json()["keys"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
}
