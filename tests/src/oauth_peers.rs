//! Real peers on loopback for the social sign-in tests, and a browser that walks redirects.
//!
//! * [`OidcProvider`]: panva's certified `oidc-provider` (9.x, npm, `tests/oidc/op.mjs`), one
//!   Node process per provider on an ephemeral `127.0.0.1` port, issuer
//!   `http://127.0.0.1:PORT`. Authorization code flow, PKCE (S256) required, RS256 ID tokens
//!   that carry `email`, `email_verified`, `name`, `picture` (as Google's do) and the `nonce`,
//!   refresh tokens always issued, `iss` in the authorization response, a userinfo endpoint.
//! * [`GithubStandIn`]: GitHub's OAuth web flow and its `/user` and `/user/emails` API
//!   (`tests/oidc/github.mjs`), answering as GitHub does (token errors with HTTP 200), and
//!   recording every request it receives.
//! * [`follow`] / [`Browser`]: GETs a URL and follows redirects across origins with cookie
//!   jars per host, as a browser does, until a redirect points at a given prefix (the
//!   client's callback).
//!
//! Nobody types anything: the authorization request's `login_hint` names the user (a key set
//! with `set_user`), who signs in and consents at once; an unknown user ends the authorization
//! with `error=access_denied` redirected to the client. Users live in a JSON file this module
//! rewrites (atomically) on every `set_user`/`remove_user`, and the peers re-read it on every
//! lookup, so a test may change users while a peer runs.
//!
//! `npm ci` in `tests/oidc` runs once (cached behind `node_modules/.latchkey-stamp`, see
//! [`crate::node::npm_ci`]). Logs go to `<target>/e2e-logs/oidc-op-*.log` and
//! `github-*.log`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::http::{percent_decode, percent_encode, Client, CookieJar, Resp};
use crate::node::{self, FileLock};
use crate::proc;

fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

/// `npm ci` in `tests/oidc`, once per process and under a file lock across processes.
fn setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let _lock = FileLock::acquire(&crate::daemon::bin_dir().join("e2e-oidc-setup.lock"));
        // No package of tests/oidc has an install script.
        node::npm_ci(&oidc_dir(), &["--ignore-scripts"], &[]);
    });
}

/// One Node process serving a peer script, with its files (config, users, request log,
/// ready file) in a directory of its own.
struct Peer {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    log_path: PathBuf,
    users: Mutex<Map<String, Value>>,
}

impl Peer {
    fn start(script: &str, kind: &str, mut config: Value) -> Peer {
        setup();
        let tag = crate::random_string(8).to_ascii_lowercase();
        let dir =
            std::env::temp_dir().join(format!("latchkey-e2e-{kind}-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ready = dir.join("ready.json");
        let users = dir.join("users.json");
        let requests = dir.join("requests.jsonl");
        std::fs::write(&users, "{}").unwrap();
        std::fs::write(&requests, "").unwrap();
        config["ready_file"] = json!(ready);
        config["users_file"] = json!(users);
        config["requests_file"] = json!(requests);
        let config_path = dir.join("config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();

        let log_path = crate::daemon::log_dir().join(format!("{kind}-{tag}.log"));
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let mut cmd = Command::new(node::node());
        node::scrub(&mut cmd);
        cmd.arg(script)
            .arg(&config_path)
            .current_dir(oidc_dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = proc::spawn_tied(cmd, libc::SIGKILL)
            .unwrap_or_else(|e| panic!("cannot start node {script}: {e} (is node on PATH?)"));
        let mut peer = Peer {
            child: Some(child),
            dir,
            port: 0,
            log_path,
            users: Mutex::new(Map::new()),
        };
        // Loading oidc-provider takes a few seconds; on a CI machine busy with compiles and
        // other tests it took over 30 s once. A bound on start-up, not a timing assertion.
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let v: Value = serde_json::from_str(&text).expect("ready file JSON");
                peer.port = v["port"].as_u64().expect("port in ready file") as u16;
                break;
            }
            if let Some(status) = peer.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "node {script} exited ({status}) before listening; log {}:\n{}",
                    peer.log_path.display(),
                    peer.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "node {script} did not listen within 180 s; log:\n{}",
                peer.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        peer
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Rewrites the users file atomically (the peer re-reads it on every lookup).
    fn write_users(&self, users: &Map<String, Value>) {
        let part = self.dir.join("users.json.part");
        std::fs::write(&part, serde_json::to_vec_pretty(users).unwrap()).unwrap();
        std::fs::rename(&part, self.dir.join("users.json")).unwrap();
    }

    fn set_user(&self, key: &str, user: Value) {
        assert!(user.is_object(), "a user is a JSON object, not {user}");
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users.insert(key.to_string(), user);
        self.write_users(&users);
    }

    fn remove_user(&self, key: &str) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users.remove(key);
        self.write_users(&users);
    }

    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("request log line"))
            .collect()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How a client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    ClientSecretPost,
    /// HTTP Basic with the form-urlencoded id and secret (`client_secret_basic`).
    ClientSecretBasic,
}

impl ClientAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::ClientSecretPost => "client_secret_post",
            ClientAuth::ClientSecretBasic => "client_secret_basic",
        }
    }
}

/// A client registered at an [`OidcProvider`] (grant types `authorization_code` and
/// `refresh_token`, response type `code`, RS256 ID tokens).
#[derive(Clone, Debug)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    pub auth: ClientAuth,
}

impl OidcClient {
    /// A `client_secret_post` client with one redirect URI.
    pub fn new(client_id: &str, client_secret: &str, redirect_uri: &str) -> OidcClient {
        OidcClient {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            redirect_uris: vec![redirect_uri.to_string()],
            auth: ClientAuth::ClientSecretPost,
        }
    }

    /// Authenticates with `client_secret_basic` instead.
    pub fn basic(mut self) -> OidcClient {
        self.auth = ClientAuth::ClientSecretBasic;
        self
    }

    /// Registers one more redirect URI.
    pub fn redirect_uri(mut self, uri: &str) -> OidcClient {
        self.redirect_uris.push(uri.to_string());
        self
    }
}

/// Settings of an [`OidcProvider`] before it starts.
#[derive(Clone, Debug)]
pub struct OidcProviderBuilder {
    clients: Vec<OidcClient>,
    access_token_ttl: u64,
    id_token_ttl: u64,
}

impl OidcProviderBuilder {
    pub fn client(mut self, client: OidcClient) -> Self {
        self.clients.push(client);
        self
    }

    pub fn clients(mut self, clients: &[OidcClient]) -> Self {
        self.clients.extend_from_slice(clients);
        self
    }

    /// Access token lifetime in seconds (default 3600; `expires_in` of the token response).
    pub fn access_token_ttl(mut self, secs: u64) -> Self {
        self.access_token_ttl = secs;
        self
    }

    /// ID token lifetime in seconds (default 3600).
    pub fn id_token_ttl(mut self, secs: u64) -> Self {
        self.id_token_ttl = secs;
        self
    }

    pub fn start(self) -> OidcProvider {
        assert!(
            !self.clients.is_empty(),
            "an OP without clients is of no use"
        );
        let clients: Vec<Value> = self
            .clients
            .iter()
            .map(|c| {
                json!({
                    "client_id": c.client_id,
                    "client_secret": c.client_secret,
                    "redirect_uris": c.redirect_uris,
                    "token_endpoint_auth_method": c.auth.as_str(),
                })
            })
            .collect();
        let peer = Peer::start(
            "op.mjs",
            "oidc-op",
            json!({
                "clients": clients,
                "access_token_ttl": self.access_token_ttl,
                "id_token_ttl": self.id_token_ttl,
            }),
        );
        OidcProvider {
            peer,
            clients: self.clients,
        }
    }
}

/// A running `oidc-provider` (killed on drop). See the module documentation.
///
/// Endpoints (from its discovery document): authorization `/auth`, token `/token`, userinfo
/// `/me`, JWKS `/jwks`, revocation `/token/revocation`.
pub struct OidcProvider {
    peer: Peer,
    clients: Vec<OidcClient>,
}

impl OidcProvider {
    /// An OP with these clients and default lifetimes.
    pub fn start(clients: &[OidcClient]) -> OidcProvider {
        Self::builder().clients(clients).start()
    }

    pub fn builder() -> OidcProviderBuilder {
        OidcProviderBuilder {
            clients: Vec::new(),
            access_token_ttl: 3600,
            id_token_ttl: 3600,
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash), the `iss` of its tokens.
    pub fn issuer(&self) -> String {
        self.peer.url()
    }

    pub fn port(&self) -> u16 {
        self.peer.port
    }

    /// `<issuer>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    /// The discovery document.
    pub fn discovery(&self) -> Value {
        let r = Client::new(&self.issuer())
            .get("/.well-known/openid-configuration")
            .send();
        r.expect(200);
        r.json()
    }

    pub fn clients(&self) -> &[OidcClient] {
        &self.clients
    }

    /// Adds or replaces the user that `login_hint=<email>` signs in. `claims` is a JSON
    /// object: `sub` (the account id; default: the email), and the claims to release
    /// (`email_verified`, `name`, `picture`, `given_name`, …, the standard claims of the
    /// `email` and `profile` scopes). The `email` claim is `email` unless `claims` has an
    /// `"email"` of its own: a string replaces it, `null` leaves the ID token and userinfo
    /// without one. Other `null` values are left out too.
    pub fn set_user(&self, email: &str, claims: Value) {
        self.peer.set_user(email, claims);
    }

    /// Forgets a user: a `login_hint` naming it is refused (`access_denied`), and its tokens
    /// stop working at the token and userinfo endpoints.
    pub fn remove_user(&self, email: &str) {
        self.peer.remove_user(email);
    }

    /// Its stdout and stderr (errors of the authorization and token endpoints are logged).
    pub fn log(&self) -> String {
        self.peer.log()
    }

    /// Every request it received, oldest first: `{"at", "method", "path", "headers", "body"}`
    /// (`path` with the query; header names lower-case; `body` as text).
    pub fn requests(&self) -> Vec<Value> {
        self.peer.requests()
    }

    /// Verifies an ID token (or any JWT it signed) against its JWKS with `jose` (issuer,
    /// audience, RS256, expiry) and returns the payload; panics with the reason otherwise.
    pub fn verify_jwt(&self, token: &str, audience: &str) -> Value {
        let disc = self.discovery();
        let out = Command::new(node::node())
            .arg("verify-jwt.mjs")
            .arg(disc["jwks_uri"].as_str().expect("jwks_uri"))
            .arg(self.issuer())
            .arg(audience)
            .arg(token)
            .current_dir(oidc_dir())
            .stdin(Stdio::null())
            .output()
            .expect("cannot run node verify-jwt.mjs");
        assert!(
            out.status.success(),
            "JWT does not verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("verify-jwt.mjs prints JSON")
    }
}

/// Settings of a [`GithubStandIn`] before it starts.
#[derive(Clone, Debug)]
pub struct GithubStandInBuilder {
    client_id: String,
    client_secret: String,
    expiring_tokens: bool,
    access_token_ttl: u64,
    refresh_token_ttl: u64,
}

impl GithubStandInBuilder {
    /// `expires_in` of access tokens, seconds (default 28800, GitHub's eight hours).
    pub fn access_token_ttl(mut self, secs: u64) -> Self {
        self.access_token_ttl = secs;
        self
    }

    /// `refresh_token_expires_in`, seconds (default 15897600, GitHub's six months).
    pub fn refresh_token_ttl(mut self, secs: u64) -> Self {
        self.refresh_token_ttl = secs;
        self
    }

    /// A classic OAuth app without expiring user tokens: the token response is only
    /// `access_token`, `token_type`, `scope` (no refresh token), and tokens never expire.
    pub fn non_expiring_tokens(mut self) -> Self {
        self.expiring_tokens = false;
        self
    }

    pub fn start(self) -> GithubStandIn {
        let peer = Peer::start(
            "github.mjs",
            "github",
            json!({
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "expiring_tokens": self.expiring_tokens,
                "access_token_ttl": self.access_token_ttl,
                "refresh_token_ttl": self.refresh_token_ttl,
            }),
        );
        GithubStandIn { peer }
    }
}

/// A running GitHub stand-in (killed on drop). One server plays both github.com
/// ([`GithubStandIn::base_url`]: `/login/oauth/authorize`, `/login/oauth/access_token`) and
/// api.github.com ([`GithubStandIn::api_url`]: `/user`, `/user/emails`).
pub struct GithubStandIn {
    peer: Peer,
}

impl GithubStandIn {
    /// An OAuth app with this id and secret, expiring user tokens with refresh tokens.
    pub fn start(client_id: &str, client_secret: &str) -> GithubStandIn {
        Self::builder(client_id, client_secret).start()
    }

    pub fn builder(client_id: &str, client_secret: &str) -> GithubStandInBuilder {
        GithubStandInBuilder {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            expiring_tokens: true,
            access_token_ttl: 28800,
            refresh_token_ttl: 15897600,
        }
    }

    /// Stands for `https://github.com` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.peer.url()
    }

    /// Stands for `https://api.github.com` (no trailing slash; the same server).
    pub fn api_url(&self) -> String {
        self.peer.url()
    }

    pub fn port(&self) -> u16 {
        self.peer.port
    }

    /// Adds or replaces the user that `login_hint=<email>` (or GitHub's `login=<login>`)
    /// signs in. `user` is what `GET /user` answers (`id`, `login`, `name`, `email`: the
    /// public email or null, `avatar_url`, …; missing `name`/`email`/`avatar_url` are null)
    /// plus `emails`, the list `GET /user/emails` answers (`email`, `primary`, `verified`,
    /// `visibility`); without `emails` that list is the key as the one primary, verified
    /// address.
    pub fn set_user(&self, login_hint: &str, user: Value) {
        self.peer.set_user(login_hint, user);
    }

    /// Forgets a user: its sign-in is refused (`access_denied`) and its tokens get 401.
    pub fn remove_user(&self, login_hint: &str) {
        self.peer.remove_user(login_hint);
    }

    /// Every request received, oldest first: `{"at", "method", "path", "headers", "body"}`
    /// (`path` with the query; header names lower-case; `body` as text).
    pub fn requests(&self) -> Vec<Value> {
        self.peer.requests()
    }

    /// The recorded requests whose path (without the query) is `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["path"].as_str().unwrap_or("").split('?').next() == Some(path))
            .collect()
    }

    /// Its stdout and stderr (every refusal is logged with its reason).
    pub fn log(&self) -> String {
        self.peer.log()
    }
}

/// One request of a [`follow`] walk.
#[derive(Clone, Debug)]
pub struct Hop {
    /// The URL requested (absolute).
    pub url: String,
    pub status: u16,
    /// The `Location` answered, resolved to an absolute URL.
    pub location: Option<String>,
    /// The `Set-Cookie` headers answered, raw.
    pub set_cookies: Vec<String>,
}

/// Where a [`follow`] walk ended.
#[derive(Clone, Debug)]
pub struct FollowResult {
    /// The `Location` that matched `stop_at` (not requested), else the URL of the last,
    /// non-redirect answer.
    pub final_url: String,
    /// The status of the last answer (the redirect's, when stopped at `stop_at`).
    pub status: u16,
    /// True when the walk ended at a redirect to `stop_at`.
    pub reached: bool,
    pub hops: Vec<Hop>,
    /// The last answer.
    pub last: Resp,
}

impl FollowResult {
    /// The decoded query parameters of [`FollowResult::final_url`].
    pub fn params(&self) -> Vec<(String, String)> {
        query_params(&self.final_url)
    }

    /// One decoded query parameter of [`FollowResult::final_url`].
    pub fn param(&self, name: &str) -> Option<String> {
        query_param(&self.final_url, name)
    }

    /// Panics, showing the hops, unless the walk reached `stop_at`.
    pub fn assert_reached(&self) -> &Self {
        assert!(
            self.reached,
            "the redirects did not reach the target; ended with {} at {}: {}\nhops: {:#?}",
            self.status,
            self.final_url,
            self.last.text(),
            self.hops
        );
        self
    }
}

/// Cookie jars per host name, as a browser keeps them (cookies are not separated by port:
/// every peer on `127.0.0.1` shares one jar).
#[derive(Clone, Debug, Default)]
pub struct Browser {
    pub jars: BTreeMap<String, CookieJar>,
}

impl Browser {
    pub fn new() -> Browser {
        Browser::default()
    }

    /// The jar of `host` (`127.0.0.1`, `localhost`, …).
    pub fn jar(&mut self, host: &str) -> &mut CookieJar {
        self.jars.entry(host.to_ascii_lowercase()).or_default()
    }

    /// GETs `start_url` and follows `30x` redirects (relative or across origins), sending
    /// and storing each host's cookies, until a `Location` starts with `stop_at` (which is
    /// not requested) or an answer is not a redirect. Panics after 20 redirects.
    pub fn follow(&mut self, start_url: &str, stop_at: &str) -> FollowResult {
        let mut url = start_url.to_string();
        let mut hops = Vec::new();
        loop {
            assert!(
                hops.len() < 20,
                "more than 20 redirects from {start_url}: {hops:#?}"
            );
            let host = host_of(&url);
            let client = Client::new(&origin_of(&url));
            let jar = self.jar(&host);
            let resp = client
                .get(&url)
                .header(
                    "accept",
                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                )
                .cookies(jar)
                .send();
            jar.update(&resp);
            let location = resp.header("location").map(|l| resolve(&url, l));
            let redirect = (300..400).contains(&resp.status) && location.is_some();
            hops.push(Hop {
                url: url.clone(),
                status: resp.status,
                location: location.clone(),
                set_cookies: resp
                    .headers_all("set-cookie")
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            });
            if !redirect {
                return FollowResult {
                    final_url: url,
                    status: resp.status,
                    reached: false,
                    hops,
                    last: resp,
                };
            }
            let next = location.unwrap();
            if next.starts_with(stop_at) {
                return FollowResult {
                    final_url: next,
                    status: resp.status,
                    reached: true,
                    hops,
                    last: resp,
                };
            }
            url = next;
        }
    }
}

/// [`Browser::follow`] with `jar` as the jar of `127.0.0.1`, the host of every loopback
/// peer and of the daemons' http URLs (a browser shares it across ports). A hop to another
/// host name uses a jar of its own that lives for this call only.
pub fn follow(start_url: &str, jar: &mut CookieJar, stop_at: &str) -> FollowResult {
    let mut browser = Browser::new();
    *browser.jar("127.0.0.1") = std::mem::take(jar);
    let result = browser.follow(start_url, stop_at);
    *jar = std::mem::take(browser.jar("127.0.0.1"));
    result
}

/// `scheme://host:port` of an absolute URL.
pub fn origin_of(url: &str) -> String {
    let (scheme, rest) = url
        .split_once("://")
        .unwrap_or_else(|| panic!("not an absolute URL: {url}"));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{authority}")
}

/// The host name of an absolute URL (lower-case, without the port).
pub fn host_of(url: &str) -> String {
    let origin = origin_of(url);
    let authority = origin.split_once("://").unwrap().1;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.to_ascii_lowercase()
}

/// Resolves a `Location` against the URL it answered.
pub fn resolve(base: &str, location: &str) -> String {
    if let Some((scheme, _)) = location.split_once("://") {
        if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return location.to_string();
        }
    }
    let origin = origin_of(base);
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = origin.split_once("://").unwrap().0;
        return format!("{scheme}://{rest}");
    }
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = &base[origin.len()..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    if location.starts_with('?') {
        return format!("{origin}{path}{location}");
    }
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{origin}{dir}/{location}")
}

/// The query parameters of a URL, decoded (`+` is a space, as in a form).
pub fn query_params(url: &str) -> Vec<(String, String)> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or("");
    form_decode(query)
}

/// One decoded query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    query_params(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `application/x-www-form-urlencoded` decoding.
pub fn form_decode(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// `application/x-www-form-urlencoded` encoding (also good for a query string).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `url?pairs` (or `url&pairs` when it has a query already).
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", form_encode(pairs))
}

/// A PKCE pair: a random 43-character `code_verifier` and its S256 `code_challenge`.
pub fn pkce_pair() -> (String, String) {
    let verifier = crate::random_string(43);
    let challenge = pkce_challenge(&verifier);
    (verifier, challenge)
}

/// The S256 `code_challenge` of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    crate::jwt::b64url(&Sha256::digest(verifier.as_bytes()))
}
