//! What every handler shares, and the session plumbing they all use: finding the caller's
//! session (cookie or bearer), issuing session cookies, and signing JWTs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;
use latchkey_core::cors::Cors;
use latchkey_core::server::Draining;
use latchkey_core::sql::Db;
use serde_json::{json, Map, Value};

use crate::config::AuthConfig;
use crate::cookies::{self, CookieSigner};
use crate::error::AuthError;
use crate::keys::Keys;
use crate::origin::Origins;
use crate::password::Hasher;
use crate::ratelimit::{RateLimitPolicy, Rule};
use crate::reply::{Reply, SET_AUTH_TOKEN};
use crate::request::Req;
use crate::store::{self, NewSession, Session, User};

pub(crate) struct State {
    pub(crate) config: AuthConfig,
    pub(crate) db: Db,
    pub(crate) hasher: Hasher,
    pub(crate) keys: Arc<Keys>,
    pub(crate) cookies: CookieSigner,
    pub(crate) origins: Origins,
    /// Set by the server on SIGTERM: readiness fails while connections drain.
    pub(crate) draining: Draining,
    /// `None` with `LATCHKEY_CORS=off`.
    pub(crate) cors: Option<Cors>,
    pub(crate) metrics: Arc<latchkey_core::metrics::Metrics>,
    pub(crate) telemetry: crate::telemetry::AuthMetrics,
    /// Set once the "X-Forwarded-For from an untrusted peer" hint has been logged.
    pub(crate) warned_forwarded_for: AtomicBool,
    /// Rung after a request queued mail, so that this replica's outbox worker sends it now.
    pub(crate) outbox_bell: Arc<crate::outbox::Bell>,
    /// Social sign-in providers (none unless configured).
    pub(crate) providers: crate::oauth::Providers,
}

/// The caller of an endpoint that needs a live session.
pub(crate) struct Caller {
    pub(crate) session: Session,
    pub(crate) user: User,
}

/// The outcome of looking for the caller's session.
pub(crate) enum Lookup {
    /// No token, or one whose signature did not verify: an anonymous caller.
    Anonymous,
    /// A genuine token whose session is gone or expired; its cookies should be cleared.
    Ended,
    Active(Box<Caller>),
}

impl State {
    /// The session token the request carries, signature checked. A bearer token wins over the
    /// cookie; an unsigned bearer token is accepted as a raw token, as Better-Auth does, only
    /// with `LATCHKEY_REQUIRE_SIGNED_BEARER=false`.
    pub(crate) fn session_token(&self, req: &Req) -> Option<String> {
        if let Some(auth) = req.header("authorization") {
            let require_signed = self.config.require_signed_bearer;
            if let Some(token) = cookies::bearer_token(auth, &self.cookies, require_signed) {
                return token;
            }
        }
        let header = req.cookie_header()?;
        let signed = cookies::find_cookie(&header, &self.cookies.name(cookies::SESSION_TOKEN))?;
        self.cookies.verify(&signed).map(str::to_string)
    }

    /// Did the caller ask not to be remembered (a signed `dont_remember` cookie)?
    pub(crate) fn dont_remember(&self, req: &Req) -> bool {
        req.cookie_header()
            .and_then(|h| cookies::find_cookie(&h, &self.cookies.name(cookies::DONT_REMEMBER)))
            .is_some_and(|v| self.cookies.verify(&v) == Some("true"))
    }

    pub(crate) async fn lookup(&self, req: &Req) -> Result<Lookup, AuthError> {
        let Some(token) = self.session_token(req) else {
            return Ok(Lookup::Anonymous);
        };
        let client = self.db.conn().await?;
        match store::session_with_user(&client, &token).await? {
            None => Ok(Lookup::Ended),
            Some((session, _)) if session.expires_at <= Utc::now() => {
                store::delete_session_by_token(&client, &token).await?;
                Ok(Lookup::Ended)
            }
            Some((session, user)) => Ok(Lookup::Active(Box::new(Caller { session, user }))),
        }
    }

    /// The caller's live session, or 401.
    pub(crate) async fn require_session(&self, req: &Req) -> Result<Caller, AuthError> {
        match self.lookup(req).await? {
            Lookup::Active(found) => Ok(*found),
            Lookup::Ended => Err(AuthError::SessionEnded {
                clear_cookies: self.cookies.expire_all(),
            }),
            Lookup::Anonymous => Err(AuthError::unauthorized()),
        }
    }

    /// Adds the session cookie (and `set-auth-token` for bearer clients) to a reply.
    /// `remember: false` makes it a browser-session cookie plus a `dont_remember` marker.
    pub(crate) fn with_session(&self, reply: Reply, token: &str, remember: bool) -> Reply {
        let signed = self.cookies.sign(token);
        let max_age = remember.then_some(self.config.session.expires_in.as_secs() as i64);
        let mut reply = reply
            .cookie(
                self.cookies
                    .set_cookie(cookies::SESSION_TOKEN, &signed, max_age),
            )
            .header(SET_AUTH_TOKEN, signed)
            .expose(SET_AUTH_TOKEN)
            .no_store();
        if !remember {
            let marker = self.cookies.sign("true");
            reply = reply.cookie(
                self.cookies
                    .set_cookie(cookies::DONT_REMEMBER, &marker, None),
            );
        }
        reply
    }

    /// Counts the request against its route's rate-limit rule; a 429 when over it.
    pub(crate) async fn rate_limit(&self, rule: Rule, req: &Req) -> Result<(), AuthError> {
        let policy = &self.config.rate_limit;
        if !policy.enabled {
            return Ok(());
        }
        let forwarded_for = req.header("x-forwarded-for");
        if policy.trusted_proxies.is_empty()
            && forwarded_for.is_some()
            && !self.warned_forwarded_for.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "requests carry X-Forwarded-For but LATCHKEY_TRUSTED_PROXIES is empty: rate \
                 limits key on the peer address, so behind a proxy all clients share one limit"
            );
        }
        let ip = policy.client_ip(req.peer.ip(), forwarded_for);
        let key = format!("{}|{}", RateLimitPolicy::bucket(ip), req.path);
        let result = policy.check(&self.db, rule, &key).await;
        if let Err(AuthError::RateLimited { .. }) = &result {
            self.telemetry.rate_limited(match rule {
                Rule::Credential => "credential",
                Rule::Mail => "mail",
            });
            let event = crate::audit::Event::RateLimited {
                path: req.path.clone(),
            };
            let actor = crate::audit::Actor::of(self, req);
            let recorded = match self.db.conn().await {
                Ok(conn) => crate::audit::record(&conn, &event, &actor).await,
                Err(e) => Err(e),
            };
            if let Err(e) = recorded {
                tracing::warn!("audit event not recorded: {e}");
            }
        }
        result
    }

    /// A session for `user_id` as this request creates it (client IP and user agent recorded
    /// as Better-Auth does).
    pub(crate) fn new_session<'a>(
        &self,
        user_id: &'a str,
        remember: bool,
        req: &Req,
    ) -> NewSession<'a> {
        NewSession {
            user_id,
            ttl: self.session_ttl(remember),
            ip_address: req.client_ip(),
            user_agent: req.user_agent(),
        }
    }

    fn session_ttl(&self, remember: bool) -> chrono::Duration {
        let secs = if remember {
            self.config.session.expires_in.as_secs()
        } else {
            86_400
        };
        chrono::Duration::seconds(secs as i64)
    }

    /// A JWT for the user, as Better-Auth's jwt plugin shapes it (docs/compatibility.md#jwt-and-jwks), plus `sid`.
    pub(crate) async fn jwt_for(
        &self,
        session: &Session,
        user: &User,
    ) -> Result<String, AuthError> {
        let key = self.keys.signing_key().await?;
        let iat = Utc::now().timestamp();
        let mut claims = Map::new();
        claims.insert("iat".into(), json!(iat));
        if let Value::Object(fields) =
            serde_json::to_value(user).map_err(|_| AuthError::internal("user not serialisable"))?
        {
            claims.extend(fields);
        }
        claims.insert("sub".into(), json!(user.id));
        claims.insert("sid".into(), json!(session.id));
        claims.insert(
            "exp".into(),
            json!(iat + self.config.jwt_ttl.as_secs() as i64),
        );
        claims.insert("iss".into(), json!(self.config.origin));
        claims.insert("aud".into(), json!(self.config.origin));
        key.sign_jwt(&claims)
    }
}
