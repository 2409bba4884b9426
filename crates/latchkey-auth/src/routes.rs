//! The request pipeline. Every endpoint is one row of [`ROUTES`]: method, path pattern, and the
//! policy the pipeline applies before the handler runs (rate-limit rule, origin rule, body
//! encodings, whether a session is needed). Handlers get their body typed and their session
//! found; every response, errors included, leaves through [`handle`], the one exit where CORS,
//! the request id and the access log line are added.
//!
//! Order of the checks, as Better-Auth's: rate limit, origin rules, body (400/415), session
//! (401), handler.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderValue, ORIGIN};
use http::{Method, StatusCode};
use hyper::body::Incoming;
use hyper::Request;
use latchkey_core::cors::Cors;
use latchkey_core::http::{self as h, BodyError, HttpResponse};
use latchkey_core::server::RequestId;
use serde_json::json;

use crate::error::AuthError;
use crate::handlers::{
    account, accounts, change_email, delete_user, email, jwt, sessions, social, user,
};
use crate::ratelimit::Rule;
use crate::reply::Reply;
use crate::request::{BodyRule, Req};
use crate::state::{Caller, Lookup, State};

/// Better-Auth's default `basePath`.
const BASE: &str = "/api/auth";
/// A client that announces a body and trickles it must not hold the request open forever.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Ok,
    SignUp,
    SignIn,
    SignOut,
    GetSession,
    GetSessionPost,
    ListSessions,
    RevokeSession,
    RevokeSessions,
    RevokeOtherSessions,
    UpdateUser,
    ChangePassword,
    Token,
    Jwks,
    ListAccounts,
    VerifyPassword,
    UpdateSession,
    SendVerificationEmail,
    VerifyEmail,
    RequestPasswordReset,
    ResetPasswordLink,
    ResetPassword,
    ChangeEmail,
    DeleteUser,
    DeleteUserCallback,
    SignInSocial,
    Callback,
    CallbackPost,
    UnlinkAccount,
    GetAccessToken,
    RefreshToken,
    AccountInfo,
    ErrorPage,
    LinkSocial,
}

/// Origin and CSRF rules (docs/compatibility.md#origins-and-csrf).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OriginRule {
    /// Safe methods: no check.
    None,
    /// A state-changing request that carries cookies must come from a trusted origin.
    Cookies,
    /// Sign-in and sign-up: login CSRF is blocked even without cookies.
    Login,
}

/// What the handler needs of the caller's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    /// The lookup's outcome, whatever it is (get-session answers `null` when signed out).
    Lookup,
    /// A live session, or 401.
    Session,
}

struct Route {
    method: Method,
    /// Below [`BASE`]; a segment `:name` matches any one non-empty segment.
    pattern: &'static str,
    endpoint: Endpoint,
    limit: Option<Rule>,
    origin: OriginRule,
    body: BodyRule,
    session: Needs,
}

const fn get(pattern: &'static str, endpoint: Endpoint, session: Needs) -> Route {
    Route {
        method: Method::GET,
        pattern,
        endpoint,
        limit: None,
        origin: OriginRule::None,
        body: BodyRule::Ignored,
        session,
    }
}

const fn post(pattern: &'static str, endpoint: Endpoint, session: Needs) -> Route {
    Route {
        method: Method::POST,
        pattern,
        endpoint,
        limit: None,
        origin: OriginRule::Cookies,
        body: BodyRule::Json,
        session,
    }
}

impl Route {
    const fn limited(mut self, rule: Rule) -> Self {
        self.limit = Some(rule);
        self
    }

    /// A cross-site form post from a provider: no origin rule (it only redirects), form bodies.
    const fn form_post(mut self) -> Self {
        self.origin = OriginRule::None;
        self.body = BodyRule::JsonOrForm;
        self
    }

    /// Sign-in and sign-up: the login CSRF rule, and form bodies too.
    const fn login(mut self) -> Self {
        self.origin = OriginRule::Login;
        self.body = BodyRule::JsonOrForm;
        self
    }
}

/// Every endpoint under `/api/auth` (docs/compatibility.md#endpoints). Unknown paths and
/// wrong methods are an empty 404, as in Better-Auth.
static ROUTES: &[Route] = {
    use Endpoint as E;
    use Needs::*;
    &[
        get("/ok", E::Ok, Nothing),
        post("/sign-up/email", E::SignUp, Nothing)
            .login()
            .limited(Rule::Credential),
        post("/sign-in/email", E::SignIn, Nothing)
            .login()
            .limited(Rule::Credential),
        post("/sign-out", E::SignOut, Nothing),
        get("/get-session", E::GetSession, Lookup),
        post("/get-session", E::GetSessionPost, Nothing),
        get("/list-sessions", E::ListSessions, Session),
        post("/revoke-session", E::RevokeSession, Session),
        post("/revoke-sessions", E::RevokeSessions, Session),
        post("/revoke-other-sessions", E::RevokeOtherSessions, Session),
        post("/update-user", E::UpdateUser, Session),
        post("/change-password", E::ChangePassword, Session).limited(Rule::Credential),
        get("/token", E::Token, Session),
        get("/jwks", E::Jwks, Nothing),
        get("/list-accounts", E::ListAccounts, Session),
        post("/verify-password", E::VerifyPassword, Session).limited(Rule::Credential),
        post("/update-session", E::UpdateSession, Session),
        post("/send-verification-email", E::SendVerificationEmail, Lookup).limited(Rule::Mail),
        get("/verify-email", E::VerifyEmail, Lookup),
        post("/request-password-reset", E::RequestPasswordReset, Nothing).limited(Rule::Mail),
        get("/reset-password/:token", E::ResetPasswordLink, Nothing),
        post("/reset-password", E::ResetPassword, Nothing),
        post("/change-email", E::ChangeEmail, Session).limited(Rule::Credential),
        post("/delete-user", E::DeleteUser, Session),
        get("/delete-user/callback", E::DeleteUserCallback, Lookup),
        post("/sign-in/social", E::SignInSocial, Nothing).limited(Rule::Credential),
        get("/callback/:providerId", E::Callback, Nothing),
        // form_post from the provider's page: only turned into the GET above.
        post("/callback/:providerId", E::CallbackPost, Nothing).form_post(),
        post("/unlink-account", E::UnlinkAccount, Session),
        post("/get-access-token", E::GetAccessToken, Session),
        post("/refresh-token", E::RefreshToken, Session),
        get("/account-info", E::AccountInfo, Session),
        get("/error", E::ErrorPage, Nothing),
        post("/link-social", E::LinkSocial, Session),
    ]
};

/// The row for a path below [`BASE`], with the values of its `:name` segments.
fn find_route(
    method: &Method,
    path: &str,
) -> Option<(&'static Route, Vec<(&'static str, String)>)> {
    ROUTES.iter().find_map(|route| {
        if route.method != method {
            return None;
        }
        match_pattern(route.pattern, path).map(|params| (route, params))
    })
}

fn match_pattern(pattern: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) => match w.strip_prefix(':') {
                Some(name) if !g.is_empty() => {
                    let value = percent_encoding::percent_decode_str(g)
                        .decode_utf8()
                        .ok()?
                        .into_owned();
                    params.push((name, value));
                }
                Some(_) => return None,
                None if w == g => {}
                None => return None,
            },
            _ => return None,
        }
    }
}

/// The one exit: every response passes here.
pub(crate) async fn handle(
    st: Arc<State>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> HttpResponse {
    let started = Instant::now();
    let id = RequestId::of(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let origin: Option<HeaderValue> = req.headers().get(ORIGIN).cloned();

    let target = target_of(req.method(), req.uri().path());
    let route = target.label();

    let mut resp = match &st.cors {
        Some(cors) if Cors::is_preflight(req.method(), req.headers()) => {
            cors.preflight(req.headers())
        }
        _ => {
            let mut resp = match respond(&st, target, req, peer).await {
                Ok(resp) => resp,
                Err(e) => e.into_response(),
            };
            if let Some(cors) = &st.cors {
                cors.decorate(origin.as_ref(), &mut resp);
            }
            resp
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let elapsed = started.elapsed();
    st.metrics
        .observe_request(route, &method, resp.status(), elapsed);
    // Debug level: at thousands of requests a second an info line each would flood the
    // journal; `LATCHKEY_LOG=info,access=debug` turns them on.
    tracing::debug!(
        target: "access",
        %method,
        path,
        status = resp.status().as_u16(),
        micros = elapsed.as_micros() as u64,
        %peer,
    );
    resp
}

/// What a request asks for, found from its method and path alone.
enum Target {
    Health,
    Ready,
    Jwks,
    Route(&'static Route, Vec<(&'static str, String)>),
    NotFound,
}

impl Target {
    /// The `route` label of the request metrics: a fixed set of values.
    fn label(&self) -> &'static str {
        match self {
            Target::Health => "/healthz",
            Target::Ready => "/readyz",
            Target::Jwks => "/.well-known/jwks.json",
            Target::Route(route, _) => route.pattern,
            Target::NotFound => "unmatched",
        }
    }
}

fn target_of(method: &Method, path: &str) -> Target {
    match (method, path) {
        (&Method::GET, "/healthz") => return Target::Health,
        (&Method::GET, "/readyz") => return Target::Ready,
        (&Method::GET, "/.well-known/jwks.json") => return Target::Jwks,
        _ => {}
    }
    match path
        .strip_prefix(BASE)
        .and_then(|rest| find_route(method, rest))
    {
        Some((route, params)) => Target::Route(route, params),
        None => Target::NotFound,
    }
}

async fn respond(
    st: &State,
    target: Target,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<HttpResponse, AuthError> {
    let (route, params) = match target {
        Target::Health => return Ok(h::json(StatusCode::OK, &json!({"status": "ok"}))),
        Target::Ready => return Ok(readyz(st).await),
        Target::Jwks => return Ok(jwt::jwks(st)),
        Target::NotFound => return Err(AuthError::NotFound),
        Target::Route(route, params) => (route, params),
    };
    if route.endpoint == Endpoint::Jwks {
        return Ok(jwt::jwks(st));
    }
    let (parts, body) = req.into_parts();
    let rest = parts.uri.path().strip_prefix(BASE).unwrap_or_default();
    let body = match route.body {
        BodyRule::Ignored => bytes::Bytes::new(),
        _ => read_body(st, body).await?,
    };
    // Postgres `text` cannot hold NUL: a parameter with one is the client's mistake (a 400),
    // not a database error (a 500) wherever it reaches a query.
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if query
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        || params.iter().any(|(_, v)| v.contains('\0'))
    {
        return Err(AuthError::bad_request(
            "VALIDATION_ERROR",
            "[query] Invalid input: must not contain NUL characters",
        ));
    }
    let req = Req {
        path: rest.to_string(),
        params,
        query,
        headers: parts.headers,
        body,
        body_rule: route.body,
        peer,
    };
    Ok(dispatch(st, route, &req).await?.into_response())
}

async fn read_body(st: &State, body: Incoming) -> Result<bytes::Bytes, AuthError> {
    let limit = st.config.max_body_bytes;
    match tokio::time::timeout(BODY_READ_TIMEOUT, h::read_limited(body, limit))
        .await
        .unwrap_or(Err(BodyError::TimedOut))
    {
        Ok(bytes) => Ok(bytes),
        Err(BodyError::TimedOut) => Err(AuthError::api(
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            "Request body not received in time",
        )),
        Err(BodyError::TooLarge) => Err(AuthError::api(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("Request body exceeds {limit} bytes"),
        )),
        Err(BodyError::Read(e)) => Err(AuthError::bad_request(
            "BAD_REQUEST",
            format!("Could not read body: {e}"),
        )),
    }
}

/// What the pipeline found of the caller's session, by the row's [`Needs`].
pub(crate) enum Found {
    Nothing,
    Lookup(Lookup),
    Caller(Box<Caller>),
}

/// A handler's session parameter, taken from what the pipeline found. A mismatch between a
/// row and its handler's parameter is a bug, answered with a 500 rather than a panic.
pub(crate) trait FromFound: Sized {
    fn take(found: Found) -> Result<Self, AuthError>;
}

impl FromFound for () {
    fn take(_: Found) -> Result<Self, AuthError> {
        Ok(())
    }
}

impl FromFound for Lookup {
    fn take(found: Found) -> Result<Self, AuthError> {
        match found {
            Found::Lookup(lookup) => Ok(lookup),
            _ => Err(AuthError::internal(
                "route row does not look up the session",
            )),
        }
    }
}

impl FromFound for Caller {
    fn take(found: Found) -> Result<Self, AuthError> {
        match found {
            Found::Caller(caller) => Ok(*caller),
            _ => Err(AuthError::internal("route row does not require a session")),
        }
    }
}

async fn find_session(st: &State, req: &Req, needs: Needs) -> Result<Found, AuthError> {
    Ok(match needs {
        Needs::Nothing => Found::Nothing,
        Needs::Lookup => Found::Lookup(st.lookup(req).await?),
        Needs::Session => Found::Caller(Box::new(st.require_session(req).await?)),
    })
}

async fn dispatch(st: &State, route: &Route, req: &Req) -> Result<Reply, AuthError> {
    if let Some(rule) = route.limit {
        st.rate_limit(rule, req).await?;
    }
    match route.origin {
        OriginRule::None => {}
        OriginRule::Cookies => st.origins.check_cookie_request(req)?,
        OriginRule::Login => st.origins.check_login_request(req)?,
    }
    // Every handler takes (state, request, session, body); the body is parsed first, then the
    // session is found, both typed by the handler's signature.
    macro_rules! call {
        ($handler:path) => {{
            let body = req.body()?;
            let found = FromFound::take(find_session(st, req, route.session).await?)?;
            $handler(st, req, found, body).await
        }};
    }
    use Endpoint as E;
    match route.endpoint {
        E::Ok => Ok(Reply::json(json!({"ok": true}))),
        E::SignUp => call!(account::sign_up),
        E::SignIn => call!(account::sign_in),
        E::SignOut => call!(account::sign_out),
        E::GetSession => call!(sessions::get_session),
        E::GetSessionPost => Ok(sessions::get_session_post()),
        E::ListSessions => call!(sessions::list_sessions),
        E::RevokeSession => call!(sessions::revoke_session),
        E::RevokeSessions => call!(sessions::revoke_sessions),
        E::RevokeOtherSessions => call!(sessions::revoke_other_sessions),
        E::UpdateUser => call!(user::update_user),
        E::ChangePassword => call!(user::change_password),
        E::Token => call!(jwt::token),
        E::ListAccounts => call!(user::list_accounts),
        E::VerifyPassword => call!(user::verify_password),
        E::UpdateSession => call!(sessions::update_session),
        E::SendVerificationEmail => call!(email::send_verification_email),
        E::VerifyEmail => call!(email::verify_email),
        E::RequestPasswordReset => call!(email::request_password_reset),
        E::ResetPasswordLink => call!(email::reset_password_link),
        E::ResetPassword => call!(email::reset_password),
        E::ChangeEmail => call!(change_email::change_email),
        E::DeleteUser => call!(delete_user::delete_user),
        E::DeleteUserCallback => call!(delete_user::delete_user_callback),
        E::SignInSocial => call!(social::sign_in_social),
        E::Callback => call!(social::callback),
        E::CallbackPost => call!(social::callback_post),
        E::UnlinkAccount => call!(accounts::unlink_account),
        E::GetAccessToken => call!(accounts::get_access_token),
        E::RefreshToken => call!(accounts::refresh_token),
        E::AccountInfo => call!(accounts::account_info),
        E::ErrorPage => call!(social::error_page),
        E::LinkSocial => call!(social::link_social),
        E::Jwks => Err(AuthError::internal("jwks is answered before dispatch")),
    }
}

/// Ready when the database answers and a signing key is loaded.
async fn readyz(st: &State) -> HttpResponse {
    let db_ok = match st.db.conn().await {
        Ok(conn) => conn.ping().await.is_ok(),
        Err(_) => false,
    };
    let keys_ok = st.keys.has_signing_key();
    let draining = st.draining.is_draining();
    let status = if db_ok && keys_ok && !draining {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    h::json(
        status,
        &json!({"status": if status == StatusCode::OK { "ready" } else { "not ready" },
                "database": db_ok, "signingKey": keys_ok, "draining": draining}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_with_parameters() {
        assert_eq!(match_pattern("/get-session", "/get-session"), Some(vec![]));
        assert_eq!(match_pattern("/get-session", "/get-session/"), None);
        assert_eq!(
            match_pattern("/reset-password/:token", "/reset-password/abc%20d"),
            Some(vec![("token", "abc d".to_string())])
        );
        assert_eq!(
            match_pattern("/reset-password/:token", "/reset-password/"),
            None
        );
        assert_eq!(
            match_pattern("/reset-password/:token", "/reset-password/a/b"),
            None
        );
    }

    #[test]
    fn every_row_is_reachable_and_unique() {
        for (i, route) in ROUTES.iter().enumerate() {
            let (found, _) = find_route(&route.method, route.pattern).expect("row matches itself");
            assert!(
                std::ptr::eq(found, &ROUTES[i]),
                "{} shadowed",
                route.pattern
            );
            if route.method == Method::GET {
                assert_eq!(route.origin, OriginRule::None, "{}", route.pattern);
                assert_eq!(route.body, BodyRule::Ignored, "{}", route.pattern);
            }
        }
    }
}
