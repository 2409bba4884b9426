//! update-user and change-password.

use secrecy::SecretString;
use serde_json::{json, Value};

use super::check_password_length;
use crate::error::AuthError;
use crate::reply::Reply;
use crate::request::{Fields, Req};
use crate::state::State;
use crate::store;

pub async fn update_user(st: &State, req: &Req) -> Result<Reply, AuthError> {
    let body = req.body_object(false)?;
    if body.contains_key("email") {
        return Err(AuthError::bad_request(
            "EMAIL_CAN_NOT_BE_UPDATED",
            "Email can not be updated",
        ));
    }
    let mut f = Fields::new(&body);
    let name = f.opt_string("name");
    // `image: null` clears the picture; an absent key leaves it alone.
    let image = match body.get("image") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => f.opt_string("image").map(Some),
    };
    f.finish()?;
    let (session, user) = st.require_session(req).await?;
    if name.is_none() && image.is_none() {
        return Err(AuthError::Api {
            status: http::StatusCode::BAD_REQUEST,
            code: None,
            message: "No fields to update".into(),
        });
    }
    let client = st.pool.get().await?;
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

pub async fn change_password(st: &State, req: &Req) -> Result<Reply, AuthError> {
    let body = req.body_object(false)?;
    let mut f = Fields::new(&body);
    let current = f.string("currentPassword");
    let new = f.string("newPassword");
    let revoke_others = f.opt_bool("revokeOtherSessions").unwrap_or(false);
    f.finish()?;
    let (Some(current), Some(new)) = (current, new) else {
        return Err(AuthError::internal("validated fields missing"));
    };
    let (current, new) = (SecretString::from(current), SecretString::from(new));
    check_password_length(&new)?;
    let (_, user) = st.require_session(req).await?;

    let client = st.pool.get().await?;
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

    let mut client = st.pool.get().await?;
    let tx = client.transaction().await?;
    store::set_password(&tx, &account_id, &hash).await?;
    let new_session = if revoke_others {
        // Better-Auth replaces every session, the current one included.
        store::delete_user_sessions(&tx, &user.id, None).await?;
        Some(store::insert_session(&tx, st.new_session(&user.id, true, req)).await?)
    } else {
        None
    };
    tx.commit().await?;

    Ok(match new_session {
        Some(s) => {
            let reply = Reply::json(json!({"token": s.token, "user": user}));
            st.with_session(reply, &s.token, true)
        }
        None => Reply::json(json!({"token": null, "user": user})),
    })
}

/// Checks the caller's password (a step-up before sensitive actions in the app).
pub async fn verify_password(st: &State, req: &Req) -> Result<Reply, AuthError> {
    let body = req.body_object(false)?;
    let mut f = Fields::new(&body);
    let password = f.string("password");
    f.finish()?;
    let Some(password) = password.map(SecretString::from) else {
        return Err(AuthError::internal("validated fields missing"));
    };
    let (_, user) = st.require_session(req).await?;
    let client = st.pool.get().await?;
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
pub async fn list_accounts(st: &State, req: &Req) -> Result<Reply, AuthError> {
    let (_, user) = st.require_session(req).await?;
    let client = st.pool.get().await?;
    let accounts = store::list_accounts(&client, &user.id).await?;
    Ok(Reply::json(Value::Array(accounts)))
}
