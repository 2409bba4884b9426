//! Deleting an account (docs/compatibility.md#delete-user), as Better-Auth 1.7 does it. With
//! mail configured the deletion is confirmed by a mailed link (a `delete-account-<token>`
//! row) opened while signed in; without it, a password or a fresh session is enough.

use chrono::Utc;
use http::StatusCode;
use secrecy::SecretString;
use serde_json::json;

use super::check_callback;
use super::email::{api_url, mail_enabled};
use crate::audit::{self, Actor, Event};
use crate::cookies::encode_uri_component;
use crate::error::AuthError;
use crate::mail::Kind;
use crate::outbox;
use crate::reply::Reply;
use crate::request::{Fields, FromBody, Req};
use crate::state::{Caller, Lookup, State};
use crate::store;

/// Better-Auth's identifier prefix (a hyphen, unlike `reset-password:`).
const PREFIX: &str = "delete-account-";

pub(crate) struct DeleteUser {
    callback: Option<String>,
    password: Option<SecretString>,
    token: Option<String>,
}

impl FromBody for DeleteUser {
    fn read(f: &mut Fields<'_>) -> Self {
        DeleteUser {
            callback: f.opt_string("callbackURL"),
            password: f.opt_secret("password"),
            token: f.opt_string("token"),
        }
    }
}

/// `POST /delete-user {callbackURL?, password?, token?}`, in Better-Auth's order: a password
/// is checked first; a token deletes at once; else with mail configured the link is mailed
/// (a right password does not skip it); else the session must be fresh, unless the password
/// was given.
pub(crate) async fn delete_user(
    st: &State,
    req: &Req,
    Caller { session, user }: Caller,
    DeleteUser {
        callback,
        password,
        token,
    }: DeleteUser,
) -> Result<Reply, AuthError> {
    if !st.config.email.delete_user {
        return Err(AuthError::NotFound);
    }
    check_callback(st, callback.as_deref())?;
    if let Some(password) = &password {
        check_password(st, &user.id, password).await?;
    }
    let actor = Actor::of(st, req).user(&user.id).session(&session.id);

    if let Some(token) = token {
        let mut conn = st.db.conn().await?;
        let tx = conn.transaction().await?;
        let owner = store::take_verification(&tx, &format!("{PREFIX}{token}")).await?;
        if owner.as_deref() != Some(user.id.as_str()) {
            // Used up even when it was someone else's, as Better-Auth does.
            tx.commit().await?;
            return Err(invalid_token());
        }
        store::delete_user(&tx, &user.id).await?;
        audit::record(&tx, &Event::UserDeleted, &actor).await?;
        tx.commit().await?;
        return Ok(deleted(st));
    }

    if mail_enabled(st) {
        let token = crate::ids::random_lower(32);
        let ttl = chrono::Duration::seconds(st.config.email.delete_expires_in.as_secs() as i64);
        let url = format!(
            "{}/delete-user/callback?token={token}&callbackURL={}",
            api_url(st),
            encode_uri_component(callback.as_deref().unwrap_or("/"))
        );
        let msg = st
            .config
            .mail
            .render(Kind::DeleteAccount, &user.name, &user.email, &url);
        let mut conn = st.db.conn().await?;
        let tx = conn.transaction().await?;
        store::insert_verification(&tx, &format!("{PREFIX}{token}"), &user.id, ttl).await?;
        outbox::enqueue(&tx, &msg).await?;
        audit::record(&tx, &Event::UserDeletionRequested, &actor).await?;
        tx.commit().await?;
        st.outbox_bell.ring();
        return Ok(Reply::json(
            json!({"success": true, "message": "Verification email sent"}),
        ));
    }

    let fresh_age = chrono::Duration::seconds(st.config.session.fresh_age.as_secs() as i64);
    let fresh = fresh_age.is_zero() || session.created_at + fresh_age > Utc::now();
    if password.is_none() && !fresh {
        return Err(AuthError::bad_request(
            "SESSION_EXPIRED",
            "Session expired. Re-authenticate to perform this action.",
        ));
    }
    let mut conn = st.db.conn().await?;
    let tx = conn.transaction().await?;
    store::delete_user(&tx, &user.id).await?;
    audit::record(&tx, &Event::UserDeleted, &actor).await?;
    tx.commit().await?;
    Ok(deleted(st))
}

/// `GET /delete-user/callback?token=&callbackURL=`: the mailed link, opened signed in as the
/// same user. A token of someone else is refused and left alone.
pub(crate) async fn delete_user_callback(
    st: &State,
    req: &Req,
    lookup: Lookup,
    _: (),
) -> Result<Reply, AuthError> {
    if !st.config.email.delete_user {
        return Err(AuthError::api(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Not found",
        ));
    }
    let callback = req.query("callbackURL");
    check_callback(st, callback)?;
    let Lookup::Active(caller) = lookup else {
        return Err(AuthError::api(
            StatusCode::NOT_FOUND,
            "FAILED_TO_GET_USER_INFO",
            "Failed to get user info",
        ));
    };
    let Caller { session, user } = *caller;
    let token = req.query("token").unwrap_or_default();
    let identifier = format!("{PREFIX}{token}");

    let mut conn = st.db.conn().await?;
    let tx = conn.transaction().await?;
    let owner = store::find_verification(&tx, &identifier).await?;
    if token.is_empty() || owner.as_deref() != Some(user.id.as_str()) {
        return Err(invalid_token());
    }
    if store::consume_verification(&tx, &identifier).await? == 0 {
        return Err(invalid_token());
    }
    store::delete_user(&tx, &user.id).await?;
    let actor = Actor::of(st, req).user(&user.id).session(&session.id);
    audit::record(&tx, &Event::UserDeleted, &actor).await?;
    tx.commit().await?;
    let reply = deleted(st);
    Ok(match callback {
        Some(cb) => reply.into_redirect(cb),
        None => reply,
    })
}

async fn check_password(
    st: &State,
    user_id: &str,
    password: &SecretString,
) -> Result<(), AuthError> {
    let conn = st.db.conn().await?;
    let stored = store::credential(&conn, user_id).await?;
    drop(conn);
    let Some((_, Some(stored))) = stored else {
        return Err(AuthError::bad_request(
            "CREDENTIAL_ACCOUNT_NOT_FOUND",
            "Credential account not found",
        ));
    };
    if !st.hasher.verify(password, &stored).await?.ok {
        return Err(AuthError::bad_request(
            "INVALID_PASSWORD",
            "Invalid password",
        ));
    }
    Ok(())
}

fn invalid_token() -> AuthError {
    AuthError::api(StatusCode::NOT_FOUND, "INVALID_TOKEN", "Invalid token")
}

/// `{"success":true,"message":"User deleted"}` with the session cookies expired.
fn deleted(st: &State) -> Reply {
    Reply::json(json!({"success": true, "message": "User deleted"}))
        .cookies(st.cookies.expire_all())
}
