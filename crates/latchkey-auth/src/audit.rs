//! The audit trail: typed security events, written to `latchkey_audit` in the same transaction
//! as the change they record (a sign-up that rolls back leaves no "signed up" row) and logged
//! as structured lines under `target: "audit"`.
//!
//! An event carries ids, never a secret: no password, no session token, no key material. The
//! client address is the one the rate limiter trusts (the peer, or `X-Forwarded-For` from a
//! trusted proxy), not a header anybody can set.

use std::net::IpAddr;

use chrono::Utc;
use latchkey_core::sql::{text, timestamptz, DbError, Sql};
use serde_json::{json, Value};

use crate::request::Req;
use crate::state::State;

/// What happened. Stable names: they are the `event` column and the log's `event` field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Event {
    SignUp,
    SignIn,
    SignInFailed(SignInFailure),
    SignOut,
    PasswordChanged {
        other_sessions_revoked: bool,
    },
    SessionRevoked {
        session_id: String,
    },
    SessionsRevoked {
        kept_current: bool,
    },
    /// The first key (nothing was current before it).
    KeyCreated {
        kid: String,
    },
    /// A new current key; the keys it took over from stay in the JWKS for their grace period.
    KeyRotated {
        kid: String,
        retired: Vec<String>,
    },
    KeyRevoked {
        kid: String,
    },
    RateLimited {
        path: String,
    },
    EmailVerified,
    /// For unknown addresses too, without a user.
    PasswordResetRequested,
    PasswordReset {
        sessions_revoked: bool,
    },
    /// A change of address was asked for (addresses stay out of the trail: ids only).
    EmailChangeRequested,
    /// The old address's owner agreed; the new address was sent its link.
    EmailChangeConfirmed,
    EmailChanged,
    /// The confirmation link was mailed.
    UserDeletionRequested,
    /// The user row is gone; the event keeps its id.
    UserDeleted,
    /// A sign-in through a provider: `outcome` is `new_user`, `linked` (an existing user got
    /// the account) or `returning`.
    SocialSignIn {
        provider: String,
        outcome: &'static str,
    },
    /// A provider sign-in refused after the provider vouched for the user (e.g.
    /// `account_not_linked`): someone tried to take over an existing address.
    SocialSignInRefused {
        provider: String,
        reason: &'static str,
    },
    AccountUnlinked {
        provider: String,
    },
}

/// Why a sign-in failed. Unknown email and wrong password are one reason on purpose: the
/// trail must not become an oracle for which emails have accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignInFailure {
    InvalidCredentials,
    /// The right password for an address not yet verified, where verification is required
    /// (the answer, 403 `EMAIL_NOT_VERIFIED`, says as much to the caller).
    EmailNotVerified,
}

impl Event {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Event::SignUp => "sign_up",
            Event::SignIn => "sign_in",
            Event::SignInFailed(_) => "sign_in_failed",
            Event::SignOut => "sign_out",
            Event::PasswordChanged { .. } => "password_changed",
            Event::SessionRevoked { .. } => "session_revoked",
            Event::SessionsRevoked { .. } => "sessions_revoked",
            Event::KeyCreated { .. } => "key_created",
            Event::KeyRotated { .. } => "key_rotated",
            Event::KeyRevoked { .. } => "key_revoked",
            Event::RateLimited { .. } => "rate_limited",
            Event::EmailVerified => "email_verified",
            Event::PasswordResetRequested => "password_reset_requested",
            Event::PasswordReset { .. } => "password_reset",
            Event::EmailChangeRequested => "email_change_requested",
            Event::EmailChangeConfirmed => "email_change_confirmed",
            Event::EmailChanged => "email_changed",
            Event::UserDeletionRequested => "user_deletion_requested",
            Event::UserDeleted => "user_deleted",
            Event::SocialSignIn { .. } => "social_sign_in",
            Event::SocialSignInRefused { .. } => "social_sign_in_refused",
            Event::AccountUnlinked { .. } => "account_unlinked",
        }
    }

    fn detail(&self) -> Value {
        match self {
            Event::SignInFailed(why) => json!({"reason": match why {
                SignInFailure::InvalidCredentials => "invalid_credentials",
                SignInFailure::EmailNotVerified => "email_not_verified",
            }}),
            Event::PasswordChanged {
                other_sessions_revoked,
            } => json!({ "otherSessionsRevoked": other_sessions_revoked }),
            Event::SessionRevoked { session_id } => json!({ "sessionId": session_id }),
            Event::SessionsRevoked { kept_current } => json!({ "keptCurrent": kept_current }),
            Event::KeyCreated { kid } | Event::KeyRevoked { kid } => json!({ "kid": kid }),
            Event::KeyRotated { kid, retired } => json!({ "kid": kid, "retired": retired }),
            Event::RateLimited { path } => json!({ "path": path }),
            Event::SocialSignIn { provider, outcome } => {
                json!({ "provider": provider, "outcome": outcome })
            }
            Event::SocialSignInRefused { provider, reason } => {
                json!({ "provider": provider, "reason": reason })
            }
            Event::AccountUnlinked { provider } => json!({ "provider": provider }),
            Event::PasswordReset { sessions_revoked } => {
                json!({ "sessionsRevoked": sessions_revoked })
            }
            Event::SignUp
            | Event::SignIn
            | Event::SignOut
            | Event::EmailVerified
            | Event::PasswordResetRequested
            | Event::EmailChangeRequested
            | Event::EmailChangeConfirmed
            | Event::EmailChanged
            | Event::UserDeletionRequested
            | Event::UserDeleted => json!({}),
        }
    }
}

/// Who and from where.
#[derive(Debug, Clone, Default)]
pub(crate) struct Actor {
    pub(crate) user_id: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) user_agent: Option<String>,
}

impl Actor {
    /// The client of this request, as the rate limiter sees it.
    pub(crate) fn of(st: &State, req: &Req) -> Self {
        let policy = &st.config.rate_limit;
        Actor {
            user_id: None,
            session_id: None,
            ip: Some(policy.client_ip(req.peer.ip(), req.header("x-forwarded-for"))),
            user_agent: req
                .header("user-agent")
                .map(|ua| ua.chars().take(512).collect()),
        }
    }

    /// The command line (`keys rotate`, `keys revoke`): no client.
    pub(crate) fn operator() -> Self {
        Actor::default()
    }

    pub(crate) fn user(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.to_string());
        self
    }

    pub(crate) fn session(mut self, session_id: &str) -> Self {
        self.session_id = Some(session_id.to_string());
        self
    }
}

/// Records `event` on `c` (the transaction of the change, when there is one) and logs it.
pub(crate) async fn record(c: &impl Sql, event: &Event, actor: &Actor) -> Result<(), DbError> {
    let detail = event.detail();
    let ip = actor.ip.map(|ip| ip.to_string());
    c.exec(
        r#"insert into "latchkey_audit" ("id", "at", "event", "userId", "sessionId", "ip", "userAgent", "detail")
           values ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb)"#,
        &[
            text(&crate::ids::new_id()),
            timestamptz(&Utc::now()),
            text(&event.name()),
            text(&actor.user_id),
            text(&actor.session_id),
            text(&ip),
            text(&actor.user_agent),
            text(&detail.to_string()),
        ],
    )
    .await?;
    tracing::info!(
        target: "audit",
        event = event.name(),
        user = actor.user_id.as_deref().unwrap_or("-"),
        session = actor.session_id.as_deref().unwrap_or("-"),
        ip = ip.as_deref().unwrap_or("-"),
        detail = %detail,
    );
    Ok(())
}

/// Deletes events older than the retention (`LATCHKEY_AUDIT_RETENTION` days).
pub(crate) async fn purge(c: &impl Sql, retention: std::time::Duration) -> Result<u64, DbError> {
    let cutoff = Utc::now() - chrono::Duration::seconds(retention.as_secs() as i64);
    c.exec(
        r#"delete from "latchkey_audit" where "at" < $1"#,
        &[timestamptz(&cutoff)],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_hold_ids_only() {
        let e = Event::SignInFailed(SignInFailure::InvalidCredentials);
        assert_eq!(e.name(), "sign_in_failed");
        assert_eq!(e.detail(), json!({"reason": "invalid_credentials"}));
        assert_eq!(
            Event::KeyRevoked { kid: "k1".into() }.detail(),
            json!({"kid": "k1"})
        );
    }
}
