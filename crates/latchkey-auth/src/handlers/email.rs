//! Email verification and password reset, as Better-Auth does them
//! (docs/compatibility.md#verification-tokens): verification links carry a stateless HS256
//! token (email_token.rs), reset links a `reset-password:<token>` row. Mail is queued in the
//! outbox in the transaction of the change and sent by the worker (outbox.rs).

use http::StatusCode;
use secrecy::SecretString;
use serde_json::json;

use super::{change_email, check_callback, check_password_length};
use crate::audit::{self, Actor, Event};
use crate::cookies::encode_uri_component;
use crate::email_token::{self, Claims, Purpose, TokenError};
use crate::error::AuthError;
use crate::mail::Kind;
use crate::outbox;
use crate::reply::Reply;
use crate::request::{Fields, FromBody, Req};
use crate::state::{Lookup, State};
use crate::store::{self, User};

/// Better-Auth's base path, for the links in mails.
const BASE: &str = "/api/auth";
const RESET_PREFIX: &str = "reset-password:";
pub(super) fn api_url(st: &State) -> String {
    format!(
        "{}{BASE}",
        st.config.base_url.as_str().trim_end_matches('/')
    )
}

/// The verification link for `user`, as Better-Auth hands it to `sendVerificationEmail`.
fn verification_url(st: &State, user: &User, callback: Option<&str>) -> String {
    let claims = Claims {
        email: user.email.clone(),
        user_id: user.id.clone(),
        purpose: Purpose::Verify,
    };
    link_url(st, &claims, callback)
}

/// `/verify-email?token=…&callbackURL=…` for `claims`, valid for the verification lifetime.
pub(super) fn link_url(st: &State, claims: &Claims, callback: Option<&str>) -> String {
    let ttl = st.config.email.verification_expires_in.as_secs() as i64;
    let token = email_token::sign(&st.config.secret, claims, ttl);
    format!(
        "{}/verify-email?token={token}&callbackURL={}",
        api_url(st),
        encode_uri_component(callback.unwrap_or("/"))
    )
}

/// Queues the verification mail for `user` on `c` (the caller's transaction).
pub(crate) async fn queue_verification(
    st: &State,
    c: &impl latchkey_core::sql::Sql,
    user: &User,
    callback: Option<&str>,
) -> Result<(), AuthError> {
    let url = verification_url(st, user, callback);
    let msg = st
        .config
        .mail
        .render(Kind::VerifyEmail, &user.name, &user.email, &url);
    outbox::enqueue(c, &msg).await?;
    Ok(())
}

pub(crate) fn mail_enabled(st: &State) -> bool {
    st.config.mail.transport.is_some()
}

pub(crate) struct SendVerification {
    email: String,
    callback: Option<String>,
}

impl FromBody for SendVerification {
    fn read(f: &mut Fields<'_>) -> Self {
        SendVerification {
            email: f.email("email"),
            callback: f.opt_string("callbackURL"),
        }
    }
}

/// `POST /send-verification-email`. Without a session the answer is the same whether the
/// address is known, verified or not, and so is the work: one lookup, one token signed, one
/// transaction that queues a message (and drops it again unless it is to be sent).
pub(crate) async fn send_verification_email(
    st: &State,
    req: &Req,
    lookup: Lookup,
    body: SendVerification,
) -> Result<Reply, AuthError> {
    let SendVerification { email, callback } = body;
    check_callback(st, callback.as_deref())?;
    if !mail_enabled(st) {
        return Err(AuthError::bad_request(
            "VERIFICATION_EMAIL_NOT_ENABLED",
            "Verification email isn't enabled",
        ));
    }
    let _ = req;
    let email = email.to_lowercase();
    if let Lookup::Active(caller) = lookup {
        let user = caller.user;
        if user.email.to_lowercase() != email {
            return Err(AuthError::bad_request("EMAIL_MISMATCH", "Email mismatch"));
        }
        if user.email_verified {
            return Err(AuthError::bad_request(
                "EMAIL_ALREADY_VERIFIED",
                "Email is already verified",
            ));
        }
        let conn = st.db.conn().await?;
        queue_verification(st, &conn, &user, callback.as_deref()).await?;
        st.outbox_bell.ring();
        return Ok(Reply::json(json!({"status": true})));
    }
    let conn = st.db.conn().await?;
    let user = store::user_by_email(&conn, &email).await?;
    drop(conn);
    let (target, send) = match user {
        Some(u) if !u.email_verified => (u, true),
        Some(u) => (u, false),
        None => (decoy_user(&email), false),
    };
    let mut conn = st.db.conn().await?;
    let tx = conn.transaction().await?;
    let url = verification_url(st, &target, callback.as_deref());
    let msg = st
        .config
        .mail
        .render(Kind::VerifyEmail, &target.name, &target.email, &url);
    let queued = outbox::enqueue(&tx, &msg).await?;
    let drop_id = if send { crate::ids::new_id() } else { queued };
    outbox::discard(&tx, &drop_id).await?;
    tx.commit().await?;
    if send {
        st.outbox_bell.ring();
    }
    Ok(Reply::json(json!({"status": true})))
}

/// A user who does not exist, for the work done on unknown addresses.
fn decoy_user(email: &str) -> User {
    let now = store::now_ms();
    User {
        name: String::new(),
        email: email.to_string(),
        email_verified: false,
        image: None,
        created_at: now,
        updated_at: now,
        id: crate::ids::new_id(),
    }
}

/// Where an error or success goes with a callbackURL: the URL as given, `error=` appended.
fn with_error(callback: &str, code: &str) -> String {
    let sep = if callback.contains('?') { '&' } else { '?' };
    format!("{callback}{sep}error={code}")
}

/// A link that cannot be followed: a 401 in JSON, or back to the app with `?error=CODE`.
pub(super) fn token_error(
    code: &'static str,
    message: &'static str,
    callback: Option<&str>,
) -> Result<Reply, AuthError> {
    refuse(StatusCode::UNAUTHORIZED, code, message, callback)
}

/// `status` with `code` in JSON, or back to the app's `callback` with `?error=CODE`.
pub(super) fn refuse(
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    callback: Option<&str>,
) -> Result<Reply, AuthError> {
    match callback {
        Some(cb) => Ok(Reply::redirect(with_error(cb, code))),
        None => Err(AuthError::api(status, code, message)),
    }
}

/// `GET /verify-email?token=&callbackURL=`.
pub(crate) async fn verify_email(
    st: &State,
    req: &Req,
    lookup: Lookup,
    _: (),
) -> Result<Reply, AuthError> {
    let Some(token) = req.query("token") else {
        return Err(AuthError::bad_request(
            "VALIDATION_ERROR",
            "[query.token] Invalid input: expected string, received undefined",
        ));
    };
    let callback = req.query("callbackURL");
    check_callback(st, callback)?;
    let claims = match email_token::verify(&st.config.secret, token) {
        Ok(claims) => claims,
        Err(TokenError::Invalid) => return token_error("INVALID_TOKEN", "Invalid token", callback),
        Err(TokenError::Expired) => return token_error("TOKEN_EXPIRED", "Token expired", callback),
    };
    if claims.purpose != Purpose::Verify {
        return change_email::follow_link(st, req, lookup, claims, callback).await;
    }
    let Claims { email, user_id, .. } = claims;
    let mut conn = st.db.conn().await?;
    let Some(user) = store::user_by_email(&conn, &email.to_lowercase()).await? else {
        return token_error("USER_NOT_FOUND", "User not found", callback);
    };
    if user.id != user_id {
        return token_error("INVALID_TOKEN", "Invalid token", callback);
    }
    let done = |reply: Reply| match callback {
        Some(cb) => reply.into_redirect(cb),
        None => reply,
    };
    if user.email_verified {
        return Ok(done(Reply::json(json!({"status": true, "user": null}))));
    }
    let tx = conn.transaction().await?;
    store::set_email_verified(&tx, &user.email).await?;
    let mut actor = Actor::of(st, req).user(&user.id);
    let mut session_token = None;
    if st.config.email.auto_sign_in {
        match &lookup {
            Lookup::Active(caller) if caller.user.email == user.email => {
                session_token = Some(caller.session.token.clone());
                actor = actor.session(&caller.session.id);
            }
            _ => {
                let session =
                    store::insert_session(&tx, st.new_session(&user.id, true, req)).await?;
                actor = actor.session(&session.id);
                session_token = Some(session.token);
            }
        }
    }
    audit::record(&tx, &Event::EmailVerified, &actor).await?;
    tx.commit().await?;
    let mut reply = Reply::json(json!({"status": true, "user": null}));
    if let Some(token) = session_token {
        reply = st.with_session(reply, &token, true);
    }
    Ok(done(reply))
}

// ---------------------------------------------------------------------------------------
// Password reset.

pub(crate) struct RequestReset {
    email: String,
    redirect_to: Option<String>,
}

impl FromBody for RequestReset {
    fn read(f: &mut Fields<'_>) -> Self {
        RequestReset {
            email: f.email("email"),
            redirect_to: f.opt_string("redirectTo"),
        }
    }
}

const RESET_MESSAGE: &str =
    "If this email exists in our system, check your email for the reset link";

/// `POST /request-password-reset`: the same answer, the same statements and (the mail being
/// queued) about the same time for known and unknown addresses. An unknown one writes a decoy
/// reset row and message and deletes them in the same transaction; a known one deletes rows
/// that do not exist.
pub(crate) async fn request_password_reset(
    st: &State,
    req: &Req,
    _: (),
    body: RequestReset,
) -> Result<Reply, AuthError> {
    let RequestReset { email, redirect_to } = body;
    if let Some(to) = &redirect_to {
        if !st.origins.trusts_callback(to) {
            return Err(AuthError::forbidden(
                "INVALID_REDIRECT_URL",
                "Invalid redirectURL",
            ));
        }
    }
    if !mail_enabled(st) {
        return Err(AuthError::bad_request(
            "RESET_PASSWORD_DISABLED",
            "Reset password isn't enabled",
        ));
    }
    let conn = st.db.conn().await?;
    let user = store::user_by_email(&conn, &email.to_lowercase()).await?;
    drop(conn);
    let known = user.is_some();
    let target = user.unwrap_or_else(|| decoy_user(&email.to_lowercase()));

    let token = crate::ids::random_string(24);
    let identifier = format!("{RESET_PREFIX}{token}");
    let ttl = chrono::Duration::seconds(st.config.email.reset_expires_in.as_secs() as i64);
    let url = format!(
        "{}/reset-password/{token}?callbackURL={}",
        api_url(st),
        redirect_to
            .as_deref()
            .map(encode_uri_component)
            .unwrap_or_default()
    );
    let msg = st
        .config
        .mail
        .render(Kind::ResetPassword, &target.name, &target.email, &url);

    let mut conn = st.db.conn().await?;
    let tx = conn.transaction().await?;
    let row_id = store::insert_verification(&tx, &identifier, &target.id, ttl).await?;
    let mail_id = outbox::enqueue(&tx, &msg).await?;
    let (drop_row, drop_mail) = if known {
        (crate::ids::new_id(), crate::ids::new_id())
    } else {
        (row_id, mail_id)
    };
    store::delete_verification_row(&tx, &drop_row).await?;
    outbox::discard(&tx, &drop_mail).await?;
    // Recorded for unknown addresses too (without a user): a spray of resets shows up, and the
    // trail is no oracle since only operators read it.
    let actor = Actor::of(st, req);
    let actor = if known { actor.user(&target.id) } else { actor };
    audit::record(&tx, &Event::PasswordResetRequested, &actor).await?;
    tx.commit().await?;
    if known {
        st.outbox_bell.ring();
    }
    Ok(Reply::json(
        json!({"status": true, "message": RESET_MESSAGE}),
    ))
}

/// `callbackURL` made absolute against the base URL, with `name=value` set in its query (an
/// existing `name` replaced), as `URLSearchParams.set` does.
fn absolute_with(st: &State, callback: &str, name: &str, value: &str) -> String {
    let Ok(mut url) = st.config.base_url.join(callback) else {
        return callback.to_string();
    };
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(name, value);
    url.to_string()
}

/// `GET /reset-password/:token?callbackURL=`: a redirect to the app's reset page.
pub(crate) async fn reset_password_link(
    st: &State,
    req: &Req,
    _: (),
    _: (),
) -> Result<Reply, AuthError> {
    let Some(callback) = req.query("callbackURL") else {
        return Err(AuthError::bad_request(
            "VALIDATION_ERROR",
            "[query.callbackURL] Invalid input: expected string, received undefined",
        ));
    };
    check_callback(st, Some(callback))?;
    let token = req.param("token").unwrap_or_default();
    let conn = st.db.conn().await?;
    let valid = !token.is_empty()
        && store::find_verification(&conn, &format!("{RESET_PREFIX}{token}"))
            .await?
            .is_some();
    let location = if valid {
        absolute_with(st, callback, "token", token)
    } else {
        absolute_with(st, callback, "error", "INVALID_TOKEN")
    };
    Ok(Reply::redirect(location))
}

pub(crate) struct ResetPassword {
    new_password: SecretString,
    token: Option<String>,
}

impl FromBody for ResetPassword {
    fn read(f: &mut Fields<'_>) -> Self {
        ResetPassword {
            new_password: f.secret("newPassword"),
            token: f.opt_string("token"),
        }
    }
}

fn invalid_token() -> AuthError {
    AuthError::bad_request("INVALID_TOKEN", "Invalid token")
}

/// `POST /reset-password {newPassword, token}`: single use; sessions revoked with
/// `LATCHKEY_REVOKE_SESSIONS_ON_PASSWORD_RESET`.
pub(crate) async fn reset_password(
    st: &State,
    req: &Req,
    _: (),
    body: ResetPassword,
) -> Result<Reply, AuthError> {
    let ResetPassword {
        new_password,
        token,
    } = body;
    let token = token
        .filter(|t| !t.is_empty())
        .or_else(|| req.query("token").map(str::to_string))
        .filter(|t| !t.is_empty())
        .ok_or_else(invalid_token)?;
    check_password_length(&new_password)?;
    let identifier = format!("{RESET_PREFIX}{token}");
    let conn = st.db.conn().await?;
    let Some(user_id) = store::find_verification(&conn, &identifier).await? else {
        return Err(invalid_token());
    };
    let Some(user) = store::user_by_id(&conn, &user_id).await? else {
        return Err(AuthError::bad_request("USER_NOT_FOUND", "User not found"));
    };
    drop(conn);
    let hash = st.hasher.hash(&new_password).await?;

    let mut conn = st.db.conn().await?;
    let tx = conn.transaction().await?;
    if store::consume_verification(&tx, &identifier).await? == 0 {
        // Another request used the token since the lookup.
        return Err(invalid_token());
    }
    let revoke = st.config.email.revoke_sessions_on_reset;
    if revoke {
        store::delete_user_sessions(&tx, &user.id, None).await?;
    }
    match store::credential(&tx, &user.id).await? {
        Some((account_id, _)) => store::set_password(&tx, &account_id, &hash).await?,
        None => store::insert_credential(&tx, &user.id, &hash).await?,
    }
    let actor = Actor::of(st, req).user(&user.id);
    let event = Event::PasswordReset {
        sessions_revoked: revoke,
    };
    audit::record(&tx, &event, &actor).await?;
    tx.commit().await?;
    Ok(Reply::json(json!({"status": true})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_components_as_browsers_encode_them() {
        assert_eq!(encode_uri_component("/welcome"), "%2Fwelcome");
        assert_eq!(
            encode_uri_component("http://127.0.0.1:42000/reset"),
            "http%3A%2F%2F127.0.0.1%3A42000%2Freset"
        );
        assert_eq!(encode_uri_component("a b!~*'()"), "a%20b!~*'()");
        assert_eq!(with_error("/v", "X"), "/v?error=X");
        assert_eq!(with_error("/v?a=1", "X"), "/v?a=1&error=X");
    }
}
