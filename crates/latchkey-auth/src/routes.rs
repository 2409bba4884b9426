//! The router: a plain match from (method, path) to a handler, plus the checks every request
//! gets (body size cap, the cookie/origin rule for state-changing requests).

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, StatusCode};
use hyper::body::Incoming;
use hyper::Request;
use latchkey_core::http::{self as h, BodyError, HttpResponse};
use serde_json::json;

use crate::error::AuthError;
use crate::handlers::{account, jwt, sessions, user};
use crate::request::Req;
use crate::state::State;

const BASE: &str = "/api/auth";
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
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
}

fn route(method: &Method, path: &str) -> Option<Endpoint> {
    use Endpoint::*;
    let get = method == Method::GET;
    let post = method == Method::POST;
    Some(match path {
        "/ok" if get => Ok,
        "/sign-up/email" if post => SignUp,
        "/sign-in/email" if post => SignIn,
        "/sign-out" if post => SignOut,
        "/get-session" if get => GetSession,
        "/get-session" if post => GetSessionPost,
        "/list-sessions" if get => ListSessions,
        "/revoke-session" if post => RevokeSession,
        "/revoke-sessions" if post => RevokeSessions,
        "/revoke-other-sessions" if post => RevokeOtherSessions,
        "/update-user" if post => UpdateUser,
        "/change-password" if post => ChangePassword,
        "/token" if get => Token,
        "/jwks" if get => Jwks,
        "/list-accounts" if get => ListAccounts,
        "/verify-password" if post => VerifyPassword,
        "/update-session" if post => UpdateSession,
        _ => return None,
    })
}

pub async fn handle(state: Arc<State>, req: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    match (&parts.method, path) {
        (&Method::GET, "/healthz") => return h::json(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, "/readyz") => return readyz(&state).await,
        (&Method::GET, "/.well-known/jwks.json") => return jwt::jwks(&state),
        _ => {}
    }
    let Some(endpoint) = path
        .strip_prefix(BASE)
        .and_then(|p| route(&parts.method, p))
    else {
        return AuthError::NotFound.into_response();
    };
    if let Endpoint::Jwks = endpoint {
        return jwt::jwks(&state);
    }

    // A client that announces a body and trickles it must not hold the request open forever.
    let read = h::read_limited(body, state.config.max_body_bytes);
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, read)
        .await
        .unwrap_or(Err(BodyError::TimedOut))
    {
        Ok(b) => b,
        Err(BodyError::TimedOut) => {
            return AuthError::api(
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                "Request body not received in time",
            )
            .into_response()
        }
        Err(BodyError::TooLarge) => {
            return AuthError::api(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("Request body exceeds {} bytes", state.config.max_body_bytes),
            )
            .into_response()
        }
        Err(BodyError::Read(e)) => {
            return AuthError::bad_request("BAD_REQUEST", format!("Could not read body: {e}"))
                .into_response()
        }
    };
    let req = Req {
        method: parts.method,
        path: path[BASE.len()..].to_string(),
        query: parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        headers: parts.headers,
        body,
        peer,
    };
    match dispatch(&state, endpoint, &req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(st: &State, endpoint: Endpoint, req: &Req) -> Result<HttpResponse, AuthError> {
    use Endpoint::*;
    if !matches!(req.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        st.origins.check_cookie_request(req)?;
    }
    if matches!(endpoint, SignUp | SignIn | ChangePassword | VerifyPassword) {
        let policy = &st.config.rate_limit;
        let forwarded_for = req.header("x-forwarded-for");
        if policy.enabled
            && policy.trusted_proxies.is_empty()
            && forwarded_for.is_some()
            && !st
                .warned_forwarded_for
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                "requests carry X-Forwarded-For but LATCHKEY_TRUSTED_PROXIES is empty: rate \
                 limits key on the peer address, so behind a proxy all clients share one limit"
            );
        }
        let ip = policy.client_ip(req.peer.ip(), forwarded_for);
        policy
            .check(&st.pool, &format!("{ip}|{}", req.path))
            .await?;
    }
    let reply = match endpoint {
        Ok => crate::reply::Reply::json(json!({"ok": true})),
        SignUp => account::sign_up(st, req).await?,
        SignIn => account::sign_in(st, req).await?,
        SignOut => account::sign_out(st, req).await?,
        GetSession => sessions::get_session(st, req).await?,
        GetSessionPost => sessions::get_session_post(),
        ListSessions => sessions::list_sessions(st, req).await?,
        RevokeSession => sessions::revoke_session(st, req).await?,
        RevokeSessions => sessions::revoke_sessions(st, req).await?,
        RevokeOtherSessions => sessions::revoke_other_sessions(st, req).await?,
        UpdateUser => user::update_user(st, req).await?,
        ChangePassword => user::change_password(st, req).await?,
        Token => jwt::token(st, req).await?,
        ListAccounts => user::list_accounts(st, req).await?,
        VerifyPassword => user::verify_password(st, req).await?,
        UpdateSession => sessions::update_session(st, req).await?,
        Jwks => return Result::Ok(jwt::jwks(st)),
    };
    Result::Ok(reply.into_response())
}

/// Ready when the database answers and a signing key is loaded.
async fn readyz(st: &State) -> HttpResponse {
    let db_ok = match st.pool.get().await {
        Ok(client) => client.simple_query("select 1").await.is_ok(),
        Err(_) => false,
    };
    let keys_ok = st.keys.has_signing_key();
    let status = if db_ok && keys_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    h::json(
        status,
        &json!({"status": if status == StatusCode::OK { "ready" } else { "not ready" },
                "database": db_ok, "signingKey": keys_ok}),
    )
}
