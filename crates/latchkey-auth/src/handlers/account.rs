//! Sign-up, sign-in and sign-out with email and password.

use http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{check_callback, check_password_length, email, MAX_PASSWORD};
use crate::audit::{self, Actor, Event, SignInFailure};
use crate::error::AuthError;
use crate::password::HashError;
use crate::reply::Reply;
use crate::request::{looks_like_email, Fields, FromBody, Req};
use crate::state::State;
use crate::store;

pub(crate) struct SignUp {
    name: String,
    email: String,
    password: SecretString,
    image: Option<String>,
    callback: Option<String>,
    remember: bool,
}

impl FromBody for SignUp {
    fn read(f: &mut Fields<'_>) -> Self {
        SignUp {
            name: f.string("name"),
            email: f.email("email"),
            password: f.secret("password"),
            image: f.opt_string("image"),
            callback: f.opt_string("callbackURL"),
            remember: f.opt_bool("rememberMe").unwrap_or(true),
        }
    }
}

pub(crate) struct SignIn {
    email: String,
    password: SecretString,
    callback: Option<String>,
    remember: bool,
}

impl FromBody for SignIn {
    fn read(f: &mut Fields<'_>) -> Self {
        SignIn {
            // Unlike sign-up, Better-Auth's sign-in schema takes any string and rejects a
            // malformed email afterwards with its own code.
            email: f.string("email"),
            password: f.secret("password"),
            callback: f.opt_string("callbackURL"),
            remember: f.opt_bool("rememberMe").unwrap_or(true),
        }
    }
}

fn invalid_credentials() -> AuthError {
    AuthError::api(
        StatusCode::UNAUTHORIZED,
        "INVALID_EMAIL_OR_PASSWORD",
        "Invalid email or password",
    )
}

pub(crate) async fn sign_up(
    st: &State,
    req: &Req,
    _: (),
    body: SignUp,
) -> Result<Reply, AuthError> {
    let SignUp {
        name,
        email,
        password,
        image,
        callback,
        remember,
    } = body;
    check_callback(st, callback.as_deref())?;
    check_password_length(&password)?;
    let email = email.to_lowercase();

    let policy = &st.config.email;
    // With verification required, Better-Auth answers a taken address like a new one (a
    // made-up user, no session), so that sign-up reveals nothing.

    let client = st.db.conn().await?;
    if store::user_by_email(&client, &email).await?.is_some() {
        drop(client);
        return taken_address(st, Some(&password), &name, &email, image.as_deref()).await;
    }
    drop(client);
    let hash = st.hasher.hash(&password).await?;

    let mut client = st.db.conn().await?;
    let tx = client.transaction().await?;
    let user = match store::insert_user(&tx, &name, &email, image.as_deref(), false).await {
        // Another sign-up with this email won the race since the check above.
        Err(e) if e.is_unique("user_email_key") => {
            drop(tx);
            return taken_address(st, None, &name, &email, image.as_deref()).await;
        }
        other => other?,
    };
    store::insert_credential(&tx, &user.id, &hash).await?;
    let mail = policy.send_on_sign_up && email::mail_enabled(st);
    if mail {
        email::queue_verification(st, &tx, &user, callback.as_deref()).await?;
    }
    let session = if policy.require_verification {
        None
    } else {
        Some(store::insert_session(&tx, st.new_session(&user.id, remember, req)).await?)
    };
    let mut actor = Actor::of(st, req).user(&user.id);
    if let Some(session) = &session {
        actor = actor.session(&session.id);
    }
    audit::record(&tx, &Event::SignUp, &actor).await?;
    tx.commit().await?;
    if mail {
        st.outbox_bell.ring();
    }

    let Some(session) = session else {
        return Ok(Reply::json(json!({"token": null, "user": user})));
    };
    let reply = Reply::json(json!({"token": session.token, "user": user}));
    Ok(st.with_session(reply, &session.token, remember))
}

/// The answer to a sign-up with a taken address: 422, or with verification required the same
/// answer as a new account's (its password hashed all the same, for the time it takes).
async fn taken_address(
    st: &State,
    password: Option<&SecretString>,
    name: &str,
    email: &str,
    image: Option<&str>,
) -> Result<Reply, AuthError> {
    if !st.config.email.require_verification {
        return Err(user_exists());
    }
    if let Some(password) = password {
        st.hasher.hash(password).await?;
    }
    let user = made_up_user(name, email, image);
    Ok(Reply::json(json!({"token": null, "user": user})))
}

/// The user a duplicate sign-up is shown: a fresh id, nothing stored.
fn made_up_user(name: &str, email: &str, image: Option<&str>) -> store::User {
    let now = store::now_ms();
    store::User {
        name: name.to_string(),
        email: email.to_string(),
        email_verified: false,
        image: image.map(str::to_string),
        created_at: now,
        updated_at: now,
        id: crate::ids::new_id(),
    }
}

fn user_exists() -> AuthError {
    AuthError::api(
        StatusCode::UNPROCESSABLE_ENTITY,
        "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
        "User already exists. Use another email.",
    )
}

pub(crate) async fn sign_in(
    st: &State,
    req: &Req,
    _: (),
    body: SignIn,
) -> Result<Reply, AuthError> {
    let SignIn {
        email,
        password,
        callback,
        remember,
    } = body;
    if !looks_like_email(&email) {
        return Err(AuthError::bad_request("INVALID_EMAIL", "Invalid email"));
    }
    check_callback(st, callback.as_deref())?;
    if password.expose_secret().encode_utf16().count() > MAX_PASSWORD {
        // Can never match a stored password; not worth hashing.
        return Err(AuthError::bad_request(
            "PASSWORD_TOO_LONG",
            "Password too long",
        ));
    }
    let email = email.to_lowercase();

    // Unknown emails take the same path (a lookup, a query, one verification) and give the
    // same answer as wrong passwords.
    let client = st.db.conn().await?;
    let user = store::user_by_email(&client, &email).await?;
    let account_owner = user.as_ref().map(|u| u.id.as_str()).unwrap_or("");
    let credential = store::credential(&client, account_owner).await?;
    drop(client);
    let (user, account_id, stored) = match (user, credential) {
        (Some(user), Some((account_id, Some(stored)))) => (user, account_id, stored),
        (user, _) => {
            st.hasher.verify_decoy(&password).await?;
            let actor = Actor::of(st, req);
            let actor = match &user {
                Some(u) => actor.user(&u.id),
                None => actor,
            };
            failed_sign_in(st, SignInFailure::InvalidCredentials, &actor).await;
            st.telemetry.sign_in("invalid_credentials");
            return Err(invalid_credentials());
        }
    };
    let verdict = match st.hasher.verify(&password, &stored).await {
        Ok(v) => v,
        Err(HashError::UnknownFormat) => {
            tracing::warn!(user = %user.id, "stored password hash has an unknown format");
            return Err(invalid_credentials());
        }
        Err(e) => return Err(e.into()),
    };
    if !verdict.ok {
        let actor = Actor::of(st, req).user(&user.id);
        failed_sign_in(st, SignInFailure::InvalidCredentials, &actor).await;
        st.telemetry.sign_in("invalid_credentials");
        return Err(invalid_credentials());
    }

    let policy = &st.config.email;
    if policy.require_verification && !user.email_verified {
        // Only someone who knows the password learns that the address is unverified.
        if policy.send_on_sign_in && email::mail_enabled(st) {
            let client = st.db.conn().await?;
            email::queue_verification(st, &client, &user, Some(callback.as_deref().unwrap_or("/")))
                .await?;
            st.outbox_bell.ring();
        }
        let actor = Actor::of(st, req).user(&user.id);
        failed_sign_in(st, SignInFailure::EmailNotVerified, &actor).await;
        return Err(AuthError::forbidden(
            "EMAIL_NOT_VERIFIED",
            "Email not verified",
        ));
    }

    let mut client = st.db.conn().await?;
    if verdict.needs_rehash {
        // Best effort: a failed upgrade must not fail the sign-in; the next one retries.
        match st.hasher.hash(&password).await {
            Ok(hash) => {
                if let Err(e) = store::upgrade_password(&client, &account_id, &stored, &hash).await
                {
                    tracing::warn!(user = %user.id, "password rehash not stored: {e}");
                }
            }
            Err(e) => tracing::warn!(user = %user.id, "password rehash failed: {e:?}"),
        }
    }
    let tx = client.transaction().await?;
    let session = store::insert_session(&tx, st.new_session(&user.id, remember, req)).await?;
    let actor = Actor::of(st, req).user(&user.id).session(&session.id);
    audit::record(&tx, &Event::SignIn, &actor).await?;
    tx.commit().await?;
    st.telemetry.sign_in("success");

    let mut reply = match &callback {
        Some(url) => {
            Reply::json(json!({"redirect": true, "token": session.token, "url": url, "user": user}))
                .header(http::header::LOCATION, url.clone())
        }
        None => Reply::json(json!({"redirect": false, "token": session.token, "user": user})),
    };
    reply = st.with_session(reply, &session.token, remember);
    Ok(reply)
}

/// Works with or without a session; always clears the cookies.
pub(crate) async fn sign_out(st: &State, req: &Req, _: (), _: ()) -> Result<Reply, AuthError> {
    if let Some(token) = st.session_token(req) {
        let mut client = st.db.conn().await?;
        let tx = client.transaction().await?;
        if let Some((user_id, session_id)) = store::end_session(&tx, &token).await? {
            let actor = Actor::of(st, req).user(&user_id).session(&session_id);
            audit::record(&tx, &Event::SignOut, &actor).await?;
        }
        tx.commit().await?;
    }
    Ok(Reply::json(json!({"success": true})).cookies(st.cookies.expire_all()))
}

/// A failed sign-in changes nothing, so its event has no transaction to join: recorded on
/// its own, and a failure to record it does not change the answer.
async fn failed_sign_in(st: &State, why: SignInFailure, actor: &Actor) {
    let event = Event::SignInFailed(why);
    let recorded = match st.db.conn().await {
        Ok(conn) => audit::record(&conn, &event, actor).await,
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        tracing::warn!("audit event not recorded: {e}");
    }
}
