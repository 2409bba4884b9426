//! get-session, list-sessions and the revoke-* family.

use chrono::Utc;
use http::StatusCode;
use serde_json::{json, Value};

use crate::error::AuthError;
use crate::reply::Reply;
use crate::request::{Fields, Req};
use crate::state::{Lookup, State};
use crate::store;

pub async fn get_session(st: &State, req: &Req) -> Result<Reply, AuthError> {
    let no_store = |r: Reply| {
        r.header("cache-control", "no-store")
            .header("pragma", "no-cache")
    };
    let (mut session, user) = match st.lookup(req).await? {
        Lookup::Anonymous => return Ok(no_store(Reply::json(Value::Null))),
        Lookup::Ended => {
            return Ok(no_store(Reply::json(Value::Null)).cookies(st.cookies.expire_all()))
        }
        Lookup::Active(found) => *found,
    };

    // Sliding refresh: once a day's worth of the session has been used, extend it fully.
    let policy = &st.config.session;
    let expires_in = chrono::Duration::seconds(policy.expires_in.as_secs() as i64);
    let update_age = chrono::Duration::seconds(policy.update_age.as_secs() as i64);
    let frozen = st.dont_remember(req) || req.query_flag("disableRefresh");
    let due = session.expires_at - expires_in + update_age <= Utc::now();
    let refreshed = !frozen && due;
    if refreshed {
        let new_expiry = store::now_ms() + expires_in;
        let client = st.pool.get().await?;
        session.updated_at = store::extend_session(&client, &session.id, new_expiry).await?;
        session.expires_at = new_expiry;
    }

    let jwt = st.jwt_for(&session, &user).await?;
    let token = session.token.clone();
    let mut reply = no_store(Reply::json(json!({"session": session, "user": user})))
        .header("set-auth-jwt", jwt)
        .expose("set-auth-jwt");
    if refreshed {
        reply = st.with_session(reply, &token, true);
    }
    Ok(reply)
}

/// Better-Auth answers POST on get-session with a 405 unless deferred refresh is on.
pub fn get_session_post() -> Reply {
    Reply::json(json!({
        "message": "POST method requires deferSessionRefresh to be enabled in session config",
        "code": "METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED",
    }))
    .status(StatusCode::METHOD_NOT_ALLOWED)
    .header("cache-control", "no-store")
}

/// Better-Auth's `update-session` takes only configured additional fields, and there are none.
pub async fn update_session(st: &State, req: &Req) -> Result<Reply, AuthError> {
    st.require_session(req).await?;
    Err(AuthError::Api {
        status: StatusCode::BAD_REQUEST,
        code: None,
        message: "No fields to update".into(),
    })
}

pub async fn list_sessions(st: &State, req: &Req) -> Result<Reply, AuthError> {
    let (session, user) = st.require_session(req).await?;
    let fresh_age = chrono::Duration::seconds(st.config.session.fresh_age.as_secs() as i64);
    if session.created_at + fresh_age <= Utc::now() {
        return Err(AuthError::forbidden(
            "SESSION_NOT_FRESH",
            "Session is not fresh",
        ));
    }
    let client = st.pool.get().await?;
    let sessions = store::list_sessions(&client, &user.id).await?;
    Ok(Reply::json(json!(sessions)))
}

pub async fn revoke_session(st: &State, req: &Req) -> Result<Reply, AuthError> {
    let body = req.body_object(false)?;
    let mut f = Fields::new(&body);
    let token = f.string("token");
    f.finish()?;
    let Some(token) = token else {
        return Err(AuthError::internal("validated fields missing"));
    };
    let (session, user) = st.require_session(req).await?;
    let client = st.pool.get().await?;
    store::delete_user_session(&client, &user.id, &token).await?;
    let reply = Reply::json(json!({"status": true}));
    Ok(if token == session.token {
        reply.cookies(st.cookies.expire_all())
    } else {
        reply
    })
}

pub async fn revoke_sessions(st: &State, req: &Req) -> Result<Reply, AuthError> {
    let (_, user) = st.require_session(req).await?;
    let client = st.pool.get().await?;
    store::delete_user_sessions(&client, &user.id, None).await?;
    Ok(Reply::json(json!({"status": true})).cookies(st.cookies.expire_all()))
}

pub async fn revoke_other_sessions(st: &State, req: &Req) -> Result<Reply, AuthError> {
    let (session, user) = st.require_session(req).await?;
    let client = st.pool.get().await?;
    store::delete_user_sessions(&client, &user.id, Some(&session.token)).await?;
    Ok(Reply::json(json!({"status": true})))
}
