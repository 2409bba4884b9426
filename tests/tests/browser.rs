//! A real browser: Debian's Chromium (`/usr/bin/chromium`), driven by `playwright-core`
//! (`tests/browser/run.mjs`), loads a page from an origin of its own that uses the official
//! `better-auth/client` (+ `jwtClient`, `credentials: "include"`, bundled with esbuild from
//! `tests/browser/page.mjs`) against latchkey-auth, latchkey-api and a latchkey-api in
//! reverse-proxy mode in front of the echo upstream. Cross-origin requests, CORS preflights,
//! cookies and secure contexts are the browser's own, not imitated.
//!
//! * `loopback_same_site`: app, auth and APIs on `http://localhost:<port>`: sign-up, sign-in,
//!   reload (the cookie survives), `token()`, `/api/me` and a proxied path with that JWT;
//! * `https_production_shape`: the same over https with a throwaway CA on
//!   `app.` / `auth.` / `api.example.test`, mapped to 127.0.0.1 by Chromium's host resolver
//!   rules and accepted by the leaf's key hash: a secure context, `__Secure-` cookies;
//! * `untrusted_origin_is_refused`: the page on an origin nobody trusts: the browser refuses
//!   sign-up (CORS) and no user row appears.
//!
//! Set-up, done once and cached: `npm ci --ignore-scripts` in `tests/browser` with
//! `PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1` (again only when `package-lock.json` or the Node
//! version changed), and one esbuild bundle per test process. Needs `/usr/bin/chromium`
//! (`apt-get install chromium`; `scripts/test` does it via `ensure_browser_tools`), `node`
//! (≥ 20) and `npm`, and the npm registry on first run. The driver's output (page console,
//! failed requests, responses) is kept in `target/debug/e2e-logs/browser-*.log` and printed,
//! with the daemon log tails, when a check fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use latchkey_e2e::daemon::log_dir;
use latchkey_e2e::node::{self, FileLock};
use latchkey_e2e::stack::{Api, Auth, PASSWORD};
use latchkey_e2e::tls::{https_request, TestCert};
use latchkey_e2e::{free_port, random_email, Daemon, DaemonSpec, TestDb, Upstream};
use serde_json::Value;

/// The driver gives up by itself after `DEADLINE_MS` (100 s); this is the hard limit.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
const USER_NAME: &str = "Browser User";
const PROXY_PATH: &str = "/backend/hello?from=browser";
/// Chromium's resolver maps `localhost` to ::1 and 127.0.0.1 and tries both; the daemons
/// listen on 127.0.0.1 only, so pin it (another process's [::1]:port must not answer).
const LOOPBACK_RULES: &str = "MAP localhost 127.0.0.1";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

fn tmp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn chromium() -> PathBuf {
    let path = PathBuf::from(
        std::env::var_os("LATCHKEY_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()),
    );
    assert!(
        path.is_file(),
        "{} does not exist: the browser test needs Debian's Chromium \
         (`apt-get install chromium`, which scripts/test does through ensure_browser_tools in \
         scripts/lib.sh), or LATCHKEY_CHROMIUM pointing at a Chromium binary",
        path.display()
    );
    path
}

/// `npm ci` (cached) and the page bundle (once per process); returns the bundle's path.
fn setup() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        chromium();
        let _lock = FileLock::acquire(&tmp_dir().join("browser-setup.lock"));
        // playwright-core has no browser of its own to fetch, and the install scripts (only
        // esbuild's check of its binary) are not needed: nothing is downloaded but packages.
        node::npm_ci(
            &browser_dir(),
            &["--ignore-scripts"],
            &[("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")],
        );
        let out_dir = tmp_dir().join("browser");
        std::fs::create_dir_all(&out_dir).unwrap();
        let mine = out_dir.join(format!("bundle.{}.js", std::process::id()));
        node::output_of(
            Command::new(node::node())
                .arg("bundle.mjs")
                .arg(&mine)
                .current_dir(browser_dir())
                .stdin(Stdio::null()),
            "node bundle.mjs (esbuild)",
        );
        // Each process's own file, renamed into place: a concurrent run never reads half.
        let bundle = out_dir.join("bundle.js");
        std::fs::rename(&mine, &bundle).unwrap();
        bundle
    })
}

/// What the driver reported, with its output and the daemon log tails for failure messages.
struct Outcome {
    result: Value,
    report: String,
}

impl Outcome {
    fn ensure(&self, ok: bool, what: impl std::fmt::Display) {
        if !ok {
            panic!(
                "browser check failed: {what}\n\nresult: {:#}\n\n{}",
                self.result, self.report
            );
        }
    }

    fn get(&self, pointer: &str) -> &Value {
        self.result.pointer(pointer).unwrap_or(&Value::Null)
    }

    fn str(&self, pointer: &str) -> &str {
        self.get(pointer).as_str().unwrap_or_default()
    }
}

/// Runs `run.mjs` with `env` and returns its RESULT; panics (with everything) if it did not
/// run to its end.
fn run_browser(name: &str, env: &[(&str, String)], daemons: &[&Daemon]) -> Outcome {
    let bundle = setup();
    let log_path = log_dir().join(format!(
        "browser-{name}-{}-{}.log",
        std::process::id(),
        free_port()
    ));
    let mut cmd = Command::new(node::node());
    cmd.arg("run.mjs").current_dir(browser_dir());
    node::scrub(&mut cmd);
    cmd.env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .env("CHROMIUM", chromium())
        .env("BUNDLE", bundle)
        .env("DEADLINE_MS", "100000");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = node::run_logged(cmd, &log_path, SCRIPT_TIMEOUT);
    println!(
        "--- browser {name} ({:.1} s, {}) ---\n{}",
        run.elapsed.as_secs_f64(),
        log_path.display(),
        run.output
    );
    let report = format!(
        "--- browser driver output ({}) ---\n{}\n{}",
        log_path.display(),
        node::tail(&run.output, 12000),
        node::daemon_logs(daemons)
    );
    let Some(status) = run.status else {
        panic!("the browser driver did not finish within {SCRIPT_TIMEOUT:?} (killed)\n{report}");
    };
    let result = run
        .output
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|json| serde_json::from_str::<Value>(json).expect("RESULT line is not JSON"))
        .unwrap_or_else(|| panic!("the browser driver printed no RESULT ({status})\n{report}"));
    let outcome = Outcome { result, report };
    let fatal = outcome.get("/fatal");
    outcome.ensure(
        status.success() && fatal.is_null(),
        format!("the browser driver failed ({status}): {fatal}"),
    );
    outcome
}

/// Waits (up to 15 s) for an HTTPS latchkey-api's `/readyz` to answer 200.
fn wait_ready_https(daemon: &Daemon, ca: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = https_request(daemon.port(), ca, "localhost", "GET", "/readyz", &[], None);
        if r.as_ref().is_ok_and(|r| r.status == 200) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "latchkey-api /readyz not 200 after 15 s ({:?}); log:\n{}",
            r.map(|r| r.status),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The daemons of one scenario and the URLs the browser uses for them.
struct Stack {
    auth: Auth,
    api: Api,
    proxy: Api,
    upstream: Upstream,
    auth_url: String,
    api_url: String,
    proxy_url: String,
}

impl Stack {
    fn daemons(&self) -> [&Daemon; 3] {
        [&self.auth.daemon, &self.api.daemon, &self.proxy.daemon]
    }

    fn page_env(&self, scenario: &str, app_url: &str, app_port: u16) -> Vec<(&str, String)> {
        vec![
            ("SCENARIO", scenario.to_string()),
            ("APP_URL", app_url.to_string()),
            ("APP_PORT", app_port.to_string()),
            ("AUTH_URL", self.auth_url.clone()),
            ("API_URL", self.api_url.clone()),
            ("PROXY_URL", self.proxy_url.clone()),
            ("PROXY_PATH", PROXY_PATH.to_string()),
            ("USER_NAME", USER_NAME.to_string()),
            ("PASSWORD", PASSWORD.to_string()),
        ]
    }
}

/// Auth, API and proxying API on plain http, seen by the browser as `http://localhost:<port>`,
/// trusting the origin `trusted`.
fn loopback_stack(trusted: &str) -> Stack {
    let auth = Auth::start_with(|s| {
        let url = format!("http://localhost:{}", s.port);
        s.env("BETTER_AUTH_URL", url)
            .env("BETTER_AUTH_TRUSTED_ORIGINS", trusted)
    });
    let auth_url = format!("http://localhost:{}", auth.daemon.port());
    // The JWKS from 127.0.0.1: what `localhost` resolves to for the daemon is not under test.
    let api_spec = |s: DaemonSpec| {
        s.env("BETTER_AUTH_TRUSTED_ORIGINS", trusted)
            .env("LATCHKEY_JWKS_URL", format!("{}/api/auth/jwks", auth.url()))
    };
    let upstream = Upstream::start();
    let api = Api::start_with(&auth_url, api_spec);
    let proxy = Api::start_with(&auth_url, |s| {
        api_spec(s).env("LATCHKEY_UPSTREAM", upstream.url())
    });
    api.wait_ready();
    proxy.wait_ready();
    Stack {
        api_url: format!("http://localhost:{}", api.daemon.port()),
        proxy_url: format!("http://localhost:{}", proxy.daemon.port()),
        auth,
        api,
        proxy,
        upstream,
        auth_url,
    }
}

/// What every successful run must show: the flow in the browser, the JWT accepted by both
/// APIs, the identity at the upstream, and the user in the database.
fn check_flow(out: &Outcome, stack: &Stack, app_url: &str, email: &str, cookie_name: &str) {
    out.ensure(
        out.str("/env/origin") == app_url,
        format!("the page's origin is not {app_url}"),
    );
    out.ensure(
        out.get("/env/isSecureContext") == &Value::Bool(true),
        "the page is not a secure context",
    );
    if app_url.starts_with("https://") {
        out.ensure(
            out.str("/pageTls/issuer") == "latchkey test CA"
                && out.str("/pageTls/protocol").starts_with("TLS"),
            "the page was not served with the test certificate",
        );
    }

    // Sign-up, then sign-in as the same user.
    out.ensure(
        out.get("/signUp/thrown").is_null() && out.get("/signUp/error").is_null(),
        "signUp.email failed",
    );
    let user_id = out.str("/signUp/data/user/id").to_string();
    out.ensure(!user_id.is_empty(), "signUp.email returned no user id");
    out.ensure(
        out.str("/signUp/data/user/email") == email,
        "signUp.email returned another email",
    );
    out.ensure(
        out.get("/signIn/error").is_null() && out.str("/signIn/data/user/id") == user_id,
        "signIn.email did not sign the same user in",
    );

    // After a reload the session comes from the cookie alone.
    out.ensure(
        out.str("/sessionAfterReload/data/user/id") == user_id
            && out.str("/sessionAfterReload/data/session/userId") == user_id,
        "getSession() after a reload does not return the user (the cookie did not survive)",
    );
    let cookies = out.get("/cookies").as_array().cloned().unwrap_or_default();
    let session_cookie = cookies.iter().find(|c| c["name"] == cookie_name);
    let auth_host = stack
        .auth_url
        .split("://")
        .nth(1)
        .and_then(|h| h.split(':').next())
        .unwrap();
    out.ensure(
        session_cookie.is_some_and(|c| {
            c["domain"] == auth_host
                && c["httpOnly"] == true
                && c["secure"] == cookie_name.starts_with("__Secure-")
                && c["sameSite"] == "Lax"
                && c["valueLength"].as_u64().unwrap_or(0) > 32
        }),
        format!(
            "no HttpOnly SameSite=Lax cookie {cookie_name} for {auth_host} in the browser \
             (secure: {})",
            cookie_name.starts_with("__Secure-")
        ),
    );
    if cookie_name.starts_with("__Secure-") {
        out.ensure(
            !cookies
                .iter()
                .any(|c| c["name"] == "better-auth.session_token"),
            "an insecure session cookie was set too",
        );
    }

    // latchkey's own headers are exposed to the page (Access-Control-Expose-Headers).
    let exposed = |step: &str, path: &str, header: &str| {
        out.get(&format!("/{step}/responses"))
            .as_array()
            .is_some_and(|rs| {
                rs.iter().any(|r| {
                    r["path"].as_str().is_some_and(|p| p.ends_with(path)) && r[header] == true
                })
            })
    };
    out.ensure(
        exposed("signUp", "/sign-up/email", "setAuthToken"),
        "the page cannot read set-auth-token of the sign-up response (not exposed)",
    );
    out.ensure(
        exposed("sessionAfterReload", "/get-session", "setAuthJwt"),
        "the page cannot read set-auth-jwt of the get-session response (not exposed)",
    );

    // token() gives a JWT for this user, issued by the auth daemon's public origin.
    out.ensure(out.get("/token/error").is_null(), "token() failed");
    let jwt = out.str("/token/data/token");
    out.ensure(jwt.split('.').count() == 3, "token() gave no JWT");
    let claims = latchkey_e2e::jwt::decode(jwt).payload;
    out.ensure(
        claims["sub"] == user_id.as_str() && claims["iss"] == stack.auth_url.as_str(),
        format!("unexpected JWT claims {claims}"),
    );

    // The APIs accept it from the page's origin.
    out.ensure(
        out.get("/me/status") == 200
            && out.str("/me/body/sub") == user_id
            && out.str("/me/body/email") == email,
        "GET /api/me with the JWT did not return the user",
    );
    out.ensure(
        out.get("/proxied/status") == 200
            && out.str("/proxied/body/target") == PROXY_PATH
            && out.str("/proxied/body/headers/x-auth-user-id") == user_id,
        "the proxied request did not reach the upstream with X-Auth-User-Id",
    );
    out.ensure(
        out.get("/meRefused/status") == 401
            && out.str("/meRefused/wwwAuthenticate").starts_with("Bearer"),
        "a refused token's 401 from latchkey-api has no WWW-Authenticate the page can read",
    );
    let received = stack.upstream.received();
    out.ensure(
        received.iter().any(|r| {
            r.method == "GET"
                && r.target == PROXY_PATH
                && r.header("x-auth-user-id") == Some(user_id.as_str())
                && r.header("x-auth-user-email") == Some(email)
        }),
        format!("the upstream did not get the identity headers: {received:?}"),
    );
    out.ensure(
        !received.iter().any(|r| r.method == "OPTIONS"),
        format!("a CORS preflight was forwarded to the upstream: {received:?}"),
    );

    // The database agrees.
    let db: &TestDb = &stack.auth.db;
    let rows = db.query("select id, email from \"user\" where email = $1", &[&email]);
    out.ensure(
        rows.len() == 1,
        format!("{} user rows for {email}", rows.len()),
    );
    let id: String = rows[0].get(0);
    out.ensure(id == user_id, format!("the user row has id {id}"));
    let sessions = db.query(
        "select count(*) from session where \"userId\" = $1",
        &[&user_id],
    )[0]
    .get::<_, i64>(0);
    out.ensure(
        sessions >= 2,
        format!("{sessions} sessions (sign-up and sign-in each open one)"),
    );
}

#[test]
fn loopback_same_site() {
    let app_port = free_port();
    let app_url = format!("http://localhost:{app_port}");
    let stack = loopback_stack(&app_url);
    let email = random_email();
    let mut env = stack.page_env("flow", &app_url, app_port);
    env.extend([
        ("EMAIL", email.clone()),
        ("HOST_RULES", LOOPBACK_RULES.into()),
    ]);
    let out = run_browser("loopback", &env, &stack.daemons());
    check_flow(&out, &stack, &app_url, &email, "better-auth.session_token");
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn https_production_shape() {
    let dir = TempDir(std::env::temp_dir().join(format!(
        "latchkey-browser-tls-{}-{}",
        std::process::id(),
        free_port()
    )));
    // `localhost`: the harness's health checks; the example.test names: the browser.
    let cert = TestCert::for_names(
        &dir.0,
        &[
            "auth.example.test",
            "api.example.test",
            "app.example.test",
            "localhost",
        ],
        &["127.0.0.1"],
    )
    .expect("test certificate (needs the openssl command)");
    let tls = |mut s: DaemonSpec| {
        s.https_ca = Some(cert.ca.clone());
        s.env("LATCHKEY_TLS_CERT", cert.cert.display().to_string())
            .env("LATCHKEY_TLS_KEY", cert.key.display().to_string())
    };
    let app_port = free_port();
    let app_url = format!("https://app.example.test:{app_port}");
    let auth = Auth::start_with(|s| {
        let url = format!("https://auth.example.test:{}", s.port);
        tls(s)
            .env("BETTER_AUTH_URL", url)
            .env("BETTER_AUTH_TRUSTED_ORIGINS", &app_url)
    });
    let auth_port = auth.daemon.port();
    let auth_url = format!("https://auth.example.test:{auth_port}");
    // The issuer is the public name; the JWKS comes over verified TLS from a name the daemon
    // can resolve, against the test CA.
    let api_spec = |s: DaemonSpec| {
        tls(s)
            .env("BETTER_AUTH_TRUSTED_ORIGINS", &app_url)
            .env(
                "LATCHKEY_JWKS_URL",
                format!("https://localhost:{auth_port}/api/auth/jwks"),
            )
            .env("LATCHKEY_JWKS_CA_FILE", cert.ca.display().to_string())
    };
    let upstream = Upstream::start();
    let api = Api::start_with(&auth_url, api_spec);
    let proxy = Api::start_with(&auth_url, |s| {
        api_spec(s).env("LATCHKEY_UPSTREAM", upstream.url())
    });
    wait_ready_https(&api.daemon, &cert.ca);
    wait_ready_https(&proxy.daemon, &cert.ca);
    let stack = Stack {
        api_url: format!("https://api.example.test:{}", api.daemon.port()),
        proxy_url: format!("https://api.example.test:{}", proxy.daemon.port()),
        auth,
        api,
        proxy,
        upstream,
        auth_url,
    };
    let email = random_email();
    let mut env = stack.page_env("flow", &app_url, app_port);
    env.extend([
        ("EMAIL", email.clone()),
        ("HOST_RULES", "MAP *.example.test 127.0.0.1".into()),
        ("TLS_CERT", cert.cert.display().to_string()),
        ("TLS_KEY", cert.key.display().to_string()),
    ]);
    let out = run_browser("https", &env, &stack.daemons());
    check_flow(
        &out,
        &stack,
        &app_url,
        &email,
        "__Secure-better-auth.session_token",
    );
    drop(stack);
    drop(dir);
}

#[test]
fn untrusted_origin_is_refused() {
    // The daemons trust an origin nobody serves; the page comes from another one.
    let trusted = format!("http://localhost:{}", free_port());
    let stack = loopback_stack(&trusted);
    let app_port = free_port();
    let app_url = format!("http://localhost:{app_port}");
    let email = random_email();
    let mut env = stack.page_env("untrusted", &app_url, app_port);
    env.extend([
        ("EMAIL", email.clone()),
        ("HOST_RULES", LOOPBACK_RULES.into()),
    ]);
    let out = run_browser("untrusted", &env, &stack.daemons());

    out.ensure(
        out.str("/env/origin") == app_url,
        format!("the page's origin is not {app_url}"),
    );
    // fetch() rejects (TypeError) and the client has no answer to show: status 0, no body.
    out.ensure(
        out.str("/signUp/thrown/name") == "TypeError"
            || (out.get("/signUp/data").is_null()
                && out.get("/signUp/error/status").as_u64().unwrap_or(0) == 0),
        "sign-up from an untrusted origin was not refused by the browser",
    );
    // Refused for CORS, not because nothing listened.
    let sign_up_url = format!("{}/api/auth/sign-up/email", stack.auth_url);
    let failed = out.get("/failedRequests").to_string();
    out.ensure(
        failed.contains(&format!("POST {sign_up_url}: net::ERR_FAILED")),
        "the sign-up request did not fail the way a CORS refusal does (net::ERR_FAILED)",
    );
    let console = out.get("/console").to_string();
    out.ensure(
        console.contains(&sign_up_url) && console.contains("blocked by CORS policy"),
        "Chromium did not report the sign-up as blocked by CORS policy",
    );
    out.ensure(
        out.str("/me/thrown/name") == "TypeError",
        "latchkey-api's answer was readable from an untrusted origin",
    );
    out.ensure(
        out.get("/cookies")
            .as_array()
            .is_some_and(|c| !c.iter().any(|c| c["name"] == "better-auth.session_token")),
        "a session cookie was set for the untrusted page",
    );

    let db = &stack.auth.db;
    let users = db.count("select count(*) from \"user\"");
    let sessions = db.count("select count(*) from session");
    out.ensure(
        users == 0 && sessions == 0,
        format!("{users} user rows and {sessions} sessions after the refused sign-up"),
    );
}
