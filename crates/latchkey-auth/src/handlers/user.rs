//! update-user and change-password.

use secrecy::SecretString;
use serde_json::{json, Value};

use super::check_password_length;
use crate::audit::{self, Actor, Event};
use crate::error::AuthError;
use crate::reply::Reply;
use crate::request::{Fields, FromBody, Req};
use crate::state::{Caller, State};
use crate::store;

pub(crate) struct UpdateUser {
    /// The email is changed by its own flow, never here.
    email_given: bool,
    name: Option<String>,
    /// `image: null` clears the picture; an absent key leaves it alone.
    image: Option<Option<String>>,
}

impl FromBody for UpdateUser {
    fn read(f: &mut Fields<'_>) -> Self {
        UpdateUser {
            email_given: f.has("email"),
            name: f.opt_string("name"),
            image: f.nullable_string("image"),
        }
    }
}

pub(crate) async fn update_user(
    st: &State,
    req: &Req,
    Caller { session, user }: Caller,
    UpdateUser {
        email_given,
        name,
        image,
    }: UpdateUser,
) -> Result<Reply, AuthError> {
    if email_given {
        return Err(AuthError::bad_request(
            "EMAIL_CAN_NOT_BE_UPDATED",
            "Email can not be updated",
        ));
    }
    if name.is_none() && image.is_none() {
        return Err(AuthError::Api {
            status: http::StatusCode::BAD_REQUEST,
            code: None,
            message: "No fields to update".into(),
        });
    }
    let client = st.db.conn().await?;
    store::update_user(
        &client,
        &user.id,
        name.as_deref(),
        image.as_ref().map(|i| i.as_deref()),
    )
    .await?
    .ok_or_else(AuthError::unauthorized)?;
    let reply = Reply::json(json!({"status": true}));
    Ok(st.with_session(reply, &session.token, !st.dont_remember(req)))
}

pub(crate) struct ChangePassword {
    current: SecretString,
    new: SecretString,
    revoke_others: bool,
}

impl FromBody for ChangePassword {
    fn read(f: &mut Fields<'_>) -> Self {
        ChangePassword {
            current: f.secret("currentPassword"),
            new: f.secret("newPassword"),
            revoke_others: f.opt_bool("revokeOtherSessions").unwrap_or(false),
        }
    }
}

pub(crate) async fn change_password(
    st: &State,
    req: &Req,
    Caller { session, user }: Caller,
    ChangePassword {
        current,
        new,
        revoke_others,
    }: ChangePassword,
) -> Result<Reply, AuthError> {
    check_password_length(&new)?;

    let client = st.db.conn().await?;
    let Some((account_id, Some(stored))) = store::credential(&client, &user.id).await? else {
        return Err(AuthError::bad_request(
            "CREDENTIAL_ACCOUNT_NOT_FOUND",
            "Credential account not found",
        ));
    };
    drop(client);
    if !st.hasher.verify(&current, &stored).await?.ok {
        return Err(AuthError::bad_request(
            "INVALID_PASSWORD",
            "Invalid password",
        ));
    }
    let hash = st.hasher.hash(&new).await?;

    let mut client = st.db.conn().await?;
    let tx = client.transaction().await?;
    store::set_password(&tx, &account_id, &hash).await?;
    let new_session = if revoke_others {
        // Better-Auth replaces every session, the current one included.
        store::delete_user_sessions(&tx, &user.id, None).await?;
        Some(store::insert_session(&tx, st.new_session(&user.id, true, req)).await?)
    } else {
        None
    };
    let actor = Actor::of(st, req).user(&user.id).session(&session.id);
    let event = Event::PasswordChanged {
        other_sessions_revoked: revoke_others,
    };
    audit::record(&tx, &event, &actor).await?;
    tx.commit().await?;

    Ok(match new_session {
        Some(s) => {
            let reply = Reply::json(json!({"token": s.token, "user": user}));
            st.with_session(reply, &s.token, true)
        }
        None => Reply::json(json!({"token": null, "user": user})),
    })
}

pub(crate) struct VerifyPassword {
    password: SecretString,
}

impl FromBody for VerifyPassword {
    fn read(f: &mut Fields<'_>) -> Self {
        VerifyPassword {
            password: f.secret("password"),
        }
    }
}

/// Checks the caller's password (a step-up before sensitive actions in the app).
pub(crate) async fn verify_password(
    st: &State,
    _: &Req,
    Caller { user, .. }: Caller,
    VerifyPassword { password }: VerifyPassword,
) -> Result<Reply, AuthError> {
    let client = st.db.conn().await?;
    let stored = store::credential(&client, &user.id).await?;
    drop(client);
    let ok = match stored {
        Some((_, Some(stored))) => st.hasher.verify(&password, &stored).await?.ok,
        _ => false,
    };
    if !ok {
        return Err(AuthError::bad_request(
            "INVALID_PASSWORD",
            "Invalid password",
        ));
    }
    Ok(Reply::json(json!({"status": true})))
}

/// The caller's linked accounts, without secrets (no password hash, no provider tokens).
pub(crate) async fn list_accounts(
    st: &State,
    _: &Req,
    Caller { user, .. }: Caller,
    _: (),
) -> Result<Reply, AuthError> {
    let client = st.db.conn().await?;
    let accounts = store::list_accounts(&client, &user.id).await?;
    Ok(Reply::json(Value::Array(accounts)))
}
