//! The usual set-up: a fresh database, an auth daemon on it, optionally an API daemon, and
//! users signed up through the real endpoints.

use serde_json::{json, Value};

use crate::daemon::{run_tool, Daemon, DaemonSpec, ToolOutput};
use crate::http::{Client, CookieJar, Resp};
use crate::pg::{cluster, TestDb};

pub const SESSION_COOKIE: &str = "better-auth.session_token";
/// An extra origin the auth daemon is told to trust (`BETTER_AUTH_TRUSTED_ORIGINS`).
pub const TRUSTED_ORIGIN: &str = "http://trusted.example";
pub const PASSWORD: &str = "correct horse battery";

/// A running `latchkey-auth` on its own database.
pub struct Auth {
    // Field order = drop order: stop the daemon before dropping its database.
    pub daemon: Daemon,
    pub db: TestDb,
    pub secret: String,
}

impl Auth {
    /// The environment of an auth daemon (or tool) for `db`, listening on `port`.
    pub fn spec(db: &TestDb, secret: &str, port: u16) -> DaemonSpec {
        DaemonSpec::new("latchkey-auth", port)
            .env("DATABASE_URL", &db.url)
            .env("BETTER_AUTH_SECRET", secret)
            .env("BETTER_AUTH_URL", format!("http://127.0.0.1:{port}"))
            .env("BETTER_AUTH_TRUSTED_ORIGINS", TRUSTED_ORIGIN)
            .env("LATCHKEY_LOG", "info")
            // Every test signs in from 127.0.0.1 many times; the rate-limit tests turn it on.
            .env("LATCHKEY_RATE_LIMIT", "off")
    }

    pub fn start() -> Auth {
        Self::start_with(|s| s)
    }

    /// Starts with the default spec changed by `f`.
    pub fn start_with(f: impl FnOnce(DaemonSpec) -> DaemonSpec) -> Auth {
        let db = cluster().create_db();
        let secret = format!("e2e-{}", crate::random_string(40));
        let spec = f(Self::spec(&db, &secret, crate::free_port()));
        let daemon = Daemon::start(spec);
        Auth { daemon, db, secret }
    }

    pub fn url(&self) -> String {
        self.daemon.url()
    }

    /// A client without default headers (like curl).
    pub fn client(&self) -> Client {
        Client::new(&self.url())
    }

    /// A client that sends `Origin: <BETTER_AUTH_URL>` (like a browser on the same site).
    pub fn browser(&self) -> Client {
        Client::new(&self.url()).with_header("origin", &self.url())
    }

    /// Runs `latchkey-auth <args>` with this daemon's environment.
    pub fn tool(&self, args: &[&str]) -> ToolOutput {
        run_tool("latchkey-auth", args, &self.daemon.spec.env)
    }

    pub fn sign_up_resp(&self, name: &str, email: &str, password: &str) -> Resp {
        self.client()
            .post("/api/auth/sign-up/email")
            .json(&json!({"name": name, "email": email, "password": password}))
            .send()
    }

    /// Signs up a new user (asserting 200) and returns the session it opened.
    pub fn sign_up(&self, name: &str, email: &str, password: &str) -> Session {
        let resp = self.sign_up_resp(name, email, password);
        resp.expect(200);
        Session::from_resp(resp)
    }

    /// Signs up a fresh random user with [`PASSWORD`].
    pub fn new_user(&self) -> Session {
        self.sign_up("Test User", &crate::random_email(), PASSWORD)
    }

    pub fn sign_in_resp(&self, email: &str, password: &str) -> Resp {
        self.client()
            .post("/api/auth/sign-in/email")
            .json(&json!({"email": email, "password": password}))
            .send()
    }

    pub fn sign_in(&self, email: &str, password: &str) -> Session {
        let resp = self.sign_in_resp(email, password);
        resp.expect(200);
        Session::from_resp(resp)
    }

    pub fn jwks(&self) -> Value {
        let r = self.client().get("/api/auth/jwks").send();
        r.expect(200);
        r.json()
    }

    /// A JWT for the session from `GET /api/auth/token` (bearer).
    pub fn jwt(&self, s: &Session) -> String {
        let r = self
            .client()
            .get("/api/auth/token")
            .bearer(&s.bearer)
            .send();
        r.expect(200);
        r.json()["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {}", r.text()))
            .to_string()
    }
}

/// A signed-in session as the client sees it.
#[derive(Clone, Debug)]
pub struct Session {
    /// `set-auth-token`: `<token>.<signature>`, for `Authorization: Bearer`.
    pub bearer: String,
    /// The raw 32-char session token from the body.
    pub token: String,
    pub user: Value,
    pub jar: CookieJar,
    pub resp: Resp,
}

impl Session {
    pub fn from_resp(resp: Resp) -> Session {
        let body = resp.json();
        let mut jar = CookieJar::new();
        jar.update(&resp);
        Session {
            bearer: resp
                .header("set-auth-token")
                .unwrap_or_else(|| panic!("no set-auth-token header: {:?}", resp.headers))
                .to_string(),
            token: body["token"].as_str().unwrap_or_default().to_string(),
            user: body["user"].clone(),
            jar,
            resp,
        }
    }

    pub fn user_id(&self) -> String {
        self.user["id"].as_str().expect("user.id").to_string()
    }

    pub fn email(&self) -> String {
        self.user["email"].as_str().expect("user.email").to_string()
    }
}

/// A running `latchkey-api`.
pub struct Api {
    pub daemon: Daemon,
}

impl Api {
    /// The environment of an API daemon verifying tokens of the auth daemon at `auth_url`.
    pub fn spec(auth_url: &str, port: u16) -> DaemonSpec {
        DaemonSpec::new("latchkey-api", port)
            .env("BETTER_AUTH_URL", auth_url)
            .env("LATCHKEY_LOG", "info")
    }

    pub fn start(auth: &Auth) -> Api {
        Self::start_with(&auth.url(), |s| s)
    }

    pub fn start_with(auth_url: &str, f: impl FnOnce(DaemonSpec) -> DaemonSpec) -> Api {
        let spec = f(Self::spec(auth_url, crate::free_port()));
        Api {
            daemon: Daemon::start(spec),
        }
    }

    pub fn url(&self) -> String {
        self.daemon.url()
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url())
    }

    /// `GET /api/me` with `Authorization: Bearer <jwt>`.
    pub fn me(&self, jwt: &str) -> Resp {
        self.client().get("/api/me").bearer(jwt).send()
    }

    /// Waits (up to 15 s) for `/readyz` to answer 200.
    pub fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let r = self.client().get("/readyz").send();
            if r.status == 200 {
                return;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "latchkey-api /readyz still {} after 15 s; log:\n{}",
                    r.status,
                    self.daemon.log()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
