//! get-session, list-sessions and the revoke-* family.

use chrono::Utc;
use http::StatusCode;
use serde_json::{json, Value};

use http::header::{CACHE_CONTROL, PRAGMA};

use crate::audit::{self, Actor, Event};
use crate::error::AuthError;
use crate::reply::{Reply, SET_AUTH_JWT};
use crate::request::{Fields, FromBody, Req};
use crate::state::{Caller, Lookup, State};
use crate::store;

pub(crate) async fn get_session(
    st: &State,
    req: &Req,
    lookup: Lookup,
    _: (),
) -> Result<Reply, AuthError> {
    let no_store = |r: Reply| {
        r.header(CACHE_CONTROL, "no-store")
            .header(PRAGMA, "no-cache")
    };
    let Caller { mut session, user } = match lookup {
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
        let client = st.db.conn().await?;
        session.updated_at = store::extend_session(&client, &session.id, new_expiry).await?;
        session.expires_at = new_expiry;
    }

    let jwt = st.jwt_for(&session, &user).await?;
    let token = session.token.clone();
    let mut reply = no_store(Reply::json(json!({"session": session, "user": user})))
        .header(SET_AUTH_JWT, jwt)
        .expose(SET_AUTH_JWT);
    if refreshed {
        reply = st.with_session(reply, &token, true);
    }
    Ok(reply)
}

/// Better-Auth answers POST on get-session with a 405 unless deferred refresh is on.
pub(crate) fn get_session_post() -> Reply {
    Reply::json(json!({
        "message": "POST method requires deferSessionRefresh to be enabled in session config",
        "code": "METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED",
    }))
    .status(StatusCode::METHOD_NOT_ALLOWED)
    .header(CACHE_CONTROL, "no-store")
}

/// Better-Auth's `update-session` takes only configured additional fields, and there are none.
pub(crate) async fn update_session(
    _: &State,
    _: &Req,
    _: Caller,
    _: (),
) -> Result<Reply, AuthError> {
    Err(AuthError::Api {
        status: StatusCode::BAD_REQUEST,
        code: None,
        message: "No fields to update".into(),
    })
}

pub(crate) async fn list_sessions(
    st: &State,
    _: &Req,
    Caller { session, user }: Caller,
    _: (),
) -> Result<Reply, AuthError> {
    require_fresh(st, &session)?;
    let client = st.db.conn().await?;
    let mut sessions = store::list_sessions(&client, &user.id).await?;
    if !st.config.list_all_session_tokens {
        // Other devices' credentials stay out of the answer; their id stands in for the
        // token, so that the official client's revokeSession({token}) still works.
        for other in sessions.iter_mut().filter(|s| s.token != session.token) {
            other.token = other.id.clone();
        }
    }
    Ok(Reply::json(json!(sessions)).no_store())
}

pub(crate) struct RevokeSession {
    token: String,
}

impl FromBody for RevokeSession {
    fn read(f: &mut Fields<'_>) -> Self {
        RevokeSession {
            token: f.string("token"),
        }
    }
}

pub(crate) async fn revoke_session(
    st: &State,
    req: &Req,
    Caller { session, user }: Caller,
    RevokeSession { token }: RevokeSession,
) -> Result<Reply, AuthError> {
    let mut client = st.db.conn().await?;
    let tx = client.transaction().await?;
    if let Some(revoked) = store::delete_user_session(&tx, &user.id, &token).await? {
        let actor = Actor::of(st, req).user(&user.id).session(&session.id);
        let event = Event::SessionRevoked {
            session_id: revoked,
        };
        audit::record(&tx, &event, &actor).await?;
    }
    tx.commit().await?;
    let reply = Reply::json(json!({"status": true}));
    Ok(if token == session.token || token == session.id {
        reply.cookies(st.cookies.expire_all())
    } else {
        reply
    })
}

pub(crate) async fn revoke_sessions(
    st: &State,
    req: &Req,
    Caller { session, user }: Caller,
    _: (),
) -> Result<Reply, AuthError> {
    revoke_all(st, req, &session, &user, false).await?;
    Ok(Reply::json(json!({"status": true})).cookies(st.cookies.expire_all()))
}

pub(crate) async fn revoke_other_sessions(
    st: &State,
    req: &Req,
    Caller { session, user }: Caller,
    _: (),
) -> Result<Reply, AuthError> {
    revoke_all(st, req, &session, &user, true).await?;
    Ok(Reply::json(json!({"status": true})))
}

/// Deletes the user's sessions (all, or all but the caller's) and records it.
async fn revoke_all(
    st: &State,
    req: &Req,
    session: &store::Session,
    user: &store::User,
    keep_current: bool,
) -> Result<(), AuthError> {
    let mut client = st.db.conn().await?;
    let tx = client.transaction().await?;
    let keep = keep_current.then_some(session.token.as_str());
    store::delete_user_sessions(&tx, &user.id, keep).await?;
    let actor = Actor::of(st, req).user(&user.id).session(&session.id);
    let event = Event::SessionsRevoked {
        kept_current: keep_current,
    };
    audit::record(&tx, &event, &actor).await?;
    tx.commit().await?;
    Ok(())
}

/// Better-Auth's `freshSessionMiddleware`: a session older than `LATCHKEY_SESSION_FRESH_AGE`
/// (0 turns the check off) is refused for sensitive reads and changes.
pub(crate) fn require_fresh(st: &State, session: &crate::store::Session) -> Result<(), AuthError> {
    let fresh_age = chrono::Duration::seconds(st.config.session.fresh_age.as_secs() as i64);
    if !fresh_age.is_zero() && session.created_at + fresh_age <= Utc::now() {
        return Err(AuthError::forbidden(
            "SESSION_NOT_FRESH",
            "Session is not fresh",
        ));
    }
    Ok(())
}
