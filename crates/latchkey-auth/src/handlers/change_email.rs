//! Changing the address of an account (docs/compatibility.md#change-email), as Better-Auth
//! 1.7 does it. A verified user's change takes two links: the first goes to the old address
//! (its owner agrees), the second to the new one (its owner proves it); the user row changes
//! only when the second is opened. An unverified user's change takes the second link alone.
//! Both links are `/verify-email` tokens (email_token.rs), so `verify-email` hands them here.

use http::StatusCode;
use serde_json::json;

use super::check_callback;
use super::email::{link_url, mail_enabled, refuse, token_error};
use crate::audit::{self, Actor, Event};
use crate::email_token::{Claims, Purpose};
use crate::error::AuthError;
use crate::mail::Kind;
use crate::outbox;
use crate::reply::Reply;
use crate::request::{Fields, FromBody, Req};
use crate::state::{Caller, Lookup, State};
use crate::store::{self, User};

pub(crate) struct ChangeEmail {
    new_email: String,
    callback: Option<String>,
}

impl FromBody for ChangeEmail {
    fn read(f: &mut Fields<'_>) -> Self {
        ChangeEmail {
            new_email: f.email("newEmail"),
            callback: f.opt_string("callbackURL"),
        }
    }
}

/// `POST /change-email {newEmail, callbackURL?}`: queues the first link and answers
/// `{"status":true}`. An address that already has an account gets the same answer and the
/// same work (a message queued and dropped in the transaction), so the caller learns nothing
/// about who else is registered.
pub(crate) async fn change_email(
    st: &State,
    req: &Req,
    Caller { session, user }: Caller,
    ChangeEmail {
        new_email,
        callback,
    }: ChangeEmail,
) -> Result<Reply, AuthError> {
    check_callback(st, callback.as_deref())?;
    if !st.config.email.change_email {
        return Err(AuthError::bad_request(
            "CHANGE_EMAIL_DISABLED",
            "Change email is disabled",
        ));
    }
    let new_email = new_email.to_lowercase();
    if new_email == user.email.to_lowercase() {
        return Err(no_code("Email is the same"));
    }
    if !mail_enabled(st) {
        return Err(no_code("Verification email isn't enabled"));
    }
    let conn = st.db.conn().await?;
    let taken = store::user_by_email(&conn, &new_email).await?.is_some();
    drop(conn);

    let (purpose, kind, recipient) = if user.email_verified {
        let purpose = Purpose::ChangeConfirmation {
            update_to: new_email.clone(),
        };
        (purpose, Kind::ChangeEmail, user.email.clone())
    } else {
        let purpose = Purpose::ChangeVerification {
            update_to: new_email.clone(),
        };
        (purpose, Kind::VerifyEmail, new_email.clone())
    };
    let claims = Claims {
        email: user.email.clone(),
        user_id: user.id.clone(),
        purpose,
    };
    let url = link_url(st, &claims, callback.as_deref());
    let msg = st
        .config
        .mail
        .render_change(kind, &user.name, &recipient, &url, &new_email);

    let mut conn = st.db.conn().await?;
    let tx = conn.transaction().await?;
    let queued = outbox::enqueue(&tx, &msg).await?;
    let drop_id = if taken { queued } else { crate::ids::new_id() };
    outbox::discard(&tx, &drop_id).await?;
    let actor = Actor::of(st, req).user(&user.id).session(&session.id);
    audit::record(&tx, &Event::EmailChangeRequested, &actor).await?;
    tx.commit().await?;
    if !taken {
        st.outbox_bell.ring();
    }
    Ok(Reply::json(json!({"status": true})))
}

/// Better-Auth answers these two with a message and no `code`.
fn no_code(message: &'static str) -> AuthError {
    AuthError::Api {
        status: StatusCode::BAD_REQUEST,
        code: None,
        message: message.into(),
    }
}

/// A change-email link opened at `/verify-email`: the token verified, its purpose is one of
/// the change's. Needs no session; a session of another user is refused.
pub(crate) async fn follow_link(
    st: &State,
    req: &Req,
    lookup: Lookup,
    claims: Claims,
    callback: Option<&str>,
) -> Result<Reply, AuthError> {
    let conn = st.db.conn().await?;
    let Some(user) = store::user_by_id(&conn, &claims.user_id).await? else {
        return token_error("USER_NOT_FOUND", "User not found", callback);
    };
    drop(conn);
    // The address the token was issued for must still be the user's: a link used once (or
    // overtaken by another change) is dead.
    if user.email.to_lowercase() != claims.email.to_lowercase() {
        return token_error("INVALID_TOKEN", "Invalid token", callback);
    }
    let caller = match lookup {
        Lookup::Active(caller) if caller.user.id != user.id => {
            return token_error("INVALID_USER", "Invalid user", callback);
        }
        Lookup::Active(caller) => Some(*caller),
        Lookup::Anonymous | Lookup::Ended => None,
    };
    match claims.purpose {
        Purpose::ChangeConfirmation { update_to } => {
            confirmed(st, req, &user, &update_to, callback).await
        }
        Purpose::ChangeVerification { update_to } => {
            changed(st, req, caller, &user, &update_to, false, callback).await
        }
        Purpose::LegacyChange { update_to } => {
            changed(st, req, caller, &user, &update_to, true, callback).await
        }
        Purpose::Verify => Err(AuthError::internal("a verify token reached change-email")),
    }
}

/// Step 2: the old address agreed; the new one gets its link (through the verify-email mail,
/// as Better-Auth sends it). The user row stays as it is.
async fn confirmed(
    st: &State,
    req: &Req,
    user: &User,
    update_to: &str,
    callback: Option<&str>,
) -> Result<Reply, AuthError> {
    let claims = Claims {
        email: user.email.clone(),
        user_id: user.id.clone(),
        purpose: Purpose::ChangeVerification {
            update_to: update_to.to_string(),
        },
    };
    let url = link_url(st, &claims, callback);
    let msg =
        st.config
            .mail
            .render_change(Kind::VerifyEmail, &user.name, update_to, &url, update_to);
    let mut conn = st.db.conn().await?;
    let tx = conn.transaction().await?;
    outbox::enqueue(&tx, &msg).await?;
    let actor = Actor::of(st, req).user(&user.id);
    audit::record(&tx, &Event::EmailChangeConfirmed, &actor).await?;
    tx.commit().await?;
    st.outbox_bell.ring();
    Ok(match callback {
        Some(cb) => Reply::redirect(cb.to_string()),
        None => Reply::json(json!({"status": true})),
    })
}

/// The last step: the address changes (only if it is still the one the token names).
/// `emailVerified` keeps the user's value, as in Better-Auth; a `legacy` token unverifies the
/// address and sends it a fresh verification.
async fn changed(
    st: &State,
    req: &Req,
    caller: Option<Caller>,
    user: &User,
    update_to: &str,
    legacy: bool,
    callback: Option<&str>,
) -> Result<Reply, AuthError> {
    let verified = user.email_verified && !legacy;
    let mut conn = st.db.conn().await?;
    let tx = conn.transaction().await?;
    let updated = match store::change_email(&tx, &user.id, &user.email, update_to, verified).await {
        Ok(Some(updated)) => updated,
        // Another click changed it since the lookup.
        Ok(None) => return token_error("INVALID_TOKEN", "Invalid token", callback),
        Err(e) if e.is_unique("user_email_key") => {
            // Registered by someone else since the change was asked for.
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
                "User already exists. Use another email.",
                callback,
            );
        }
        Err(e) => return Err(e.into()),
    };
    if legacy {
        super::email::queue_verification(st, &tx, &updated, callback).await?;
    }
    let mut actor = Actor::of(st, req).user(&user.id);
    if let Some(c) = &caller {
        actor = actor.session(&c.session.id);
    }
    audit::record(&tx, &Event::EmailChanged, &actor).await?;
    tx.commit().await?;
    if legacy {
        st.outbox_bell.ring();
    }
    let mut reply = Reply::json(json!({"status": true, "user": updated}));
    if let Some(c) = caller {
        reply = st.with_session(reply, &c.session.token, !st.dont_remember(req));
    }
    Ok(match callback {
        Some(cb) => reply.into_redirect(cb),
        None => reply,
    })
}
