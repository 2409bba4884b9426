//! `sign-in/social` and `callback/:providerId` (docs/compatibility.md#social-sign-in): the
//! authorization-code flow with PKCE, the state in a `verification` row and a signed cookie,
//! and the user found, linked or created from the provider's profile.

use chrono::Utc;
use http::StatusCode;
use serde_json::{json, Value};

use super::email::{api_url, mail_enabled, queue_verification};
use crate::audit::{self, Actor, Event};
use crate::cookies;
use crate::error::AuthError;
use crate::oauth::accounts::{self, Stored, TokenCipher};
use crate::oauth::provider::{AuthorizationRequest, Profile, ProviderError, TokenSet};
use crate::oauth::state::{self, FlowState};
use crate::oauth::Provider;
use crate::reply::Reply;
use crate::request::{Fields, FromBody, Req};
use crate::state::{Caller, State};
use crate::store::{self, User};

pub(crate) struct SignInSocial {
    provider: String,
    callback: Option<String>,
    new_user_callback: Option<String>,
    error_callback: Option<String>,
    disable_redirect: bool,
    scopes: Vec<String>,
    login_hint: Option<String>,
    id_token: Option<IdTokenSignIn>,
}

/// `idToken: {token, nonce?, accessToken?, refreshToken?}`: a sign-in with an ID token the
/// app got from the provider itself (Google One Tap, a native SDK).
struct IdTokenSignIn {
    token: String,
    nonce: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
}

impl FromBody for SignInSocial {
    fn read(f: &mut Fields<'_>) -> Self {
        SignInSocial {
            provider: f.string("provider"),
            callback: f.opt_string("callbackURL"),
            new_user_callback: f.opt_string("newUserCallbackURL"),
            error_callback: f.opt_string("errorCallbackURL"),
            disable_redirect: f.opt_bool("disableRedirect").unwrap_or(false),
            scopes: scopes(f),
            login_hint: f.opt_string("loginHint"),
            id_token: f.opt_object("idToken").and_then(|o| {
                let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
                let parsed = text("token").map(|token| IdTokenSignIn {
                    token,
                    nonce: text("nonce"),
                    access_token: text("accessToken"),
                    refresh_token: text("refreshToken"),
                });
                if parsed.is_none() {
                    f.issue("[body.idToken.token] Invalid input: expected string".into());
                }
                parsed
            }),
        }
    }
}

/// The request's extra `scopes`: a few short words (a provider would refuse more anyway).
fn scopes(f: &mut Fields<'_>) -> Vec<String> {
    let scopes = f.opt_strings("scopes");
    if scopes.len() > 32 || scopes.iter().any(|s| s.len() > 128 || s.contains(' ')) {
        f.issue("[body.scopes] Invalid input: at most 32 scopes of at most 128 characters, without spaces".into());
        return Vec::new();
    }
    scopes
}

/// `POST /sign-in/social`: `200 {"url","redirect":true}` with `Location` (not a 302, as in
/// Better-Auth) and the signed state cookie.
pub(crate) async fn sign_in_social(
    st: &State,
    req: &Req,
    _: (),
    body: SignInSocial,
) -> Result<Reply, AuthError> {
    check_flow_urls(
        st,
        &[
            (
                &body.callback,
                "INVALID_CALLBACK_URL",
                "Invalid callbackURL",
            ),
            (
                &body.error_callback,
                "INVALID_ERROR_CALLBACK_URL",
                "Invalid errorCallbackURL",
            ),
            (
                &body.new_user_callback,
                "INVALID_NEW_USER_CALLBACK_URL",
                "Invalid newUserCallbackURL",
            ),
        ],
    )?;
    let provider = find_provider(st, &body.provider)?;
    if let Some(id_token) = body.id_token {
        let callback = body.callback.unwrap_or_else(|| "/".to_string());
        return sign_in_with_id_token(st, req, provider, id_token, &callback).await;
    }
    let flow = Flow {
        callback: body.callback,
        error_callback: body.error_callback,
        new_user_callback: body.new_user_callback,
        link: None,
        scopes: body.scopes,
        login_hint: body.login_hint,
        disable_redirect: body.disable_redirect,
    };
    start_flow(st, provider, flow).await
}

/// What a sign-in or a link asks of the flow it starts.
struct Flow {
    callback: Option<String>,
    error_callback: Option<String>,
    new_user_callback: Option<String>,
    link: Option<state::Link>,
    scopes: Vec<String>,
    login_hint: Option<String>,
    disable_redirect: bool,
}

/// Writes the state row, signs the state cookie, and answers the authorization URL.
async fn start_flow(st: &State, provider: &Provider, flow: Flow) -> Result<Reply, AuthError> {
    let endpoints = provider.endpoints().await.map_err(unavailable)?;

    let oauth_state = state::random_token(32);
    let code_verifier = state::random_token(128);
    let nonce = provider.uses_nonce().then(|| state::random_token(32));
    let row = FlowState {
        callback_url: flow.callback.unwrap_or_else(|| {
            st.config
                .base_url
                .as_str()
                .trim_end_matches('/')
                .to_string()
        }),
        code_verifier: code_verifier.clone(),
        error_url: flow.error_callback,
        new_user_url: flow.new_user_callback,
        link: flow.link,
        expires_at: Utc::now().timestamp_millis() + state::ROW_TTL_SECS * 1000,
        request_sign_up: None,
        id_token_nonce: nonce.clone(),
        oauth_state: Some(oauth_state.clone()),
        provider: Some(provider.id().to_string()),
    };
    let value = serde_json::to_string(&row)
        .map_err(|e| AuthError::internal(format!("state not serialised: {e}")))?;
    let conn = st.db.conn().await?;
    store::insert_verification(
        &conn,
        &format!("{}{oauth_state}", state::IDENTIFIER_PREFIX),
        &value,
        chrono::Duration::seconds(state::ROW_TTL_SECS),
    )
    .await?;
    drop(conn);

    let redirect_uri = redirect_uri(st, provider);
    let url = provider.authorization_url(
        &endpoints,
        &AuthorizationRequest {
            state: &oauth_state,
            redirect_uri: &redirect_uri,
            code_challenge: &state::code_challenge(&code_verifier),
            nonce: nonce.as_deref(),
            login_hint: flow.login_hint.as_deref(),
            extra_scopes: &flow.scopes,
        },
    );
    let signed = st.cookies.sign(&oauth_state);
    let mut reply = Reply::json(json!({"url": url.as_str(), "redirect": !flow.disable_redirect}))
        .cookie(
            st.cookies
                .set_cookie(state::COOKIE, &signed, Some(state::COOKIE_MAX_AGE)),
        );
    if !flow.disable_redirect {
        reply = reply.header(http::header::LOCATION, url.as_str());
    }
    Ok(reply)
}

pub(crate) struct LinkSocial {
    provider: String,
    callback: Option<String>,
    error_callback: Option<String>,
    disable_redirect: bool,
    scopes: Vec<String>,
    login_hint: Option<String>,
    id_token: bool,
}

impl FromBody for LinkSocial {
    fn read(f: &mut Fields<'_>) -> Self {
        LinkSocial {
            provider: f.string("provider"),
            callback: f.opt_string("callbackURL"),
            error_callback: f.opt_string("errorCallbackURL"),
            disable_redirect: f.opt_bool("disableRedirect").unwrap_or(false),
            scopes: scopes(f),
            login_hint: f.opt_string("loginHint"),
            id_token: f.has("idToken"),
        }
    }
}

/// `POST /link-social`: the same flow for a signed-in user, whose session is bound into the
/// state (sealed); the callback adds the account to that user instead of signing in.
pub(crate) async fn link_social(
    st: &State,
    _: &Req,
    Caller { session, user }: Caller,
    body: LinkSocial,
) -> Result<Reply, AuthError> {
    check_flow_urls(
        st,
        &[
            (
                &body.callback,
                "INVALID_CALLBACK_URL",
                "Invalid callbackURL",
            ),
            (
                &body.error_callback,
                "INVALID_ERROR_CALLBACK_URL",
                "Invalid errorCallbackURL",
            ),
        ],
    )?;
    let provider = find_provider(st, &body.provider)?;
    if body.id_token {
        return Err(AuthError::bad_request(
            "ID_TOKEN_NOT_SUPPORTED",
            "Linking with a provider ID token is not supported yet; use the redirect flow",
        ));
    }
    let cipher = state::purpose_cipher(&st.config.secret, state::LINK_PURPOSE)?;
    let link = state::Link {
        user_id: user.id.clone(),
        email: user.email.clone(),
        encrypted_session_token: cipher.seal_hex(session.token.as_bytes())?,
    };
    let flow = Flow {
        callback: body.callback,
        error_callback: body.error_callback,
        new_user_callback: None,
        link: Some(link),
        scopes: body.scopes,
        login_hint: body.login_hint,
        disable_redirect: body.disable_redirect,
    };
    start_flow(st, provider, flow).await
}

/// The `idToken` variant: the token verified as on a callback (signature at the provider's
/// JWKS, `iss`, `aud` = our client id, `exp`, `iat`, and the nonce when one is given), then the
/// same user rules; answers `{"redirect":false,"token","user"}` with the session cookie.
async fn sign_in_with_id_token(
    st: &State,
    req: &Req,
    provider: &Provider,
    id_token: IdTokenSignIn,
    callback: &str,
) -> Result<Reply, AuthError> {
    let profile = match provider
        .verify_id_token(&id_token.token, id_token.nonce.as_deref())
        .await
    {
        Ok(p) => p,
        Err(ProviderError::Unavailable(d)) => {
            return Err(unavailable(ProviderError::Unavailable(d)))
        }
        Err(e) => {
            tracing::info!(provider = %provider.id(), "idToken sign-in: {e}");
            return Err(AuthError::api(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "Invalid token",
            ));
        }
    };
    if profile.email.is_none() || provider_email(&profile).is_empty() {
        return Err(AuthError::api(
            StatusCode::UNAUTHORIZED,
            "EMAIL_NOT_FOUND",
            "The ID token has no email",
        ));
    }
    let tokens = TokenSet {
        access_token: id_token.access_token.map(secrecy::SecretString::from),
        refresh_token: id_token.refresh_token.map(secrecy::SecretString::from),
        id_token: Some(id_token.token),
        expires_in: None,
        refresh_token_expires_in: None,
        scope: None,
    };
    match sign_in_with(st, req, provider, &profile, &tokens, callback).await? {
        Ok((user, _, session_token)) => {
            let reply =
                Reply::json(json!({"redirect": false, "token": session_token, "user": user}));
            Ok(st.with_session(reply, &session_token, true))
        }
        Err(code) => Err(AuthError::api(
            StatusCode::UNAUTHORIZED,
            match code {
                "account_not_linked" => "ACCOUNT_NOT_LINKED",
                _ => "UNABLE_TO_CREATE_USER",
            },
            code.replace('_', " "),
        )),
    }
}

/// The URLs a flow may send the browser to must be trusted (403 with the URL's own code).
fn check_flow_urls(
    st: &State,
    urls: &[(&Option<String>, &'static str, &'static str)],
) -> Result<(), AuthError> {
    for (url, code, message) in urls {
        if let Some(url) = url {
            if !st.origins.trusts_callback(url) {
                return Err(AuthError::forbidden(code, message));
            }
        }
    }
    Ok(())
}

fn find_provider<'a>(st: &'a State, id: &str) -> Result<&'a Provider, AuthError> {
    st.providers.get(id).map(|p| p.as_ref()).ok_or_else(|| {
        AuthError::api(
            StatusCode::NOT_FOUND,
            "PROVIDER_NOT_FOUND",
            "Provider not found",
        )
    })
}

fn unavailable(e: ProviderError) -> AuthError {
    tracing::warn!("{e}");
    AuthError::api(
        StatusCode::SERVICE_UNAVAILABLE,
        "PROVIDER_UNAVAILABLE",
        "The provider cannot be reached; try again later",
    )
}

fn redirect_uri(st: &State, provider: &Provider) -> String {
    format!("{}/callback/{}", api_url(st), provider.id())
}

/// The callback's parameters, from the query or (`response_mode=form_post`) the body.
pub(crate) struct CallbackParams {
    pairs: Vec<(String, String)>,
}

impl FromBody for CallbackParams {
    fn read(f: &mut Fields<'_>) -> Self {
        let mut pairs = Vec::new();
        for name in ["code", "state", "error", "error_description", "iss"] {
            if let Some(v) = f.opt_string(name) {
                pairs.push((name.to_string(), v));
            }
        }
        CallbackParams { pairs }
    }
}

/// `POST /callback/:providerId` (form_post): a 302 to the GET callback with the body's
/// parameters merged into the query, so that the browser sends its cookies (a cross-site POST
/// does not carry `SameSite=Lax` ones).
pub(crate) async fn callback_post(
    st: &State,
    req: &Req,
    _: (),
    body: CallbackParams,
) -> Result<Reply, AuthError> {
    let id = req.param("providerId").unwrap_or_default();
    let mut url = format!(
        "{}/callback/{}",
        api_url(st),
        cookies::encode_uri_component(id)
    );
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &req.query {
        query.append_pair(k, v);
    }
    for (k, v) in &body.pairs {
        query.append_pair(k, v);
    }
    let query = query.finish();
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    Ok(Reply::redirect(url))
}

/// `url` with `error` (and `error_description`) added to its query.
fn error_location(url: &str, code: &str, description: Option<&str>) -> String {
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    pairs.append_pair("error", code);
    if let Some(d) = description {
        pairs.append_pair("error_description", d);
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", pairs.finish())
}

/// `GET /callback/:providerId`, in Better-Auth's order (each failure is a 302 to the error
/// URL with `?error=CODE`).
pub(crate) async fn callback(st: &State, req: &Req, _: (), _: ()) -> Result<Reply, AuthError> {
    let default_error = format!("{}/error", api_url(st));
    let fail = |url: &str, code: &str| Reply::redirect(error_location(url, code, None));
    let Some(oauth_state) = req.query("state").filter(|s| !s.is_empty()) else {
        return Ok(fail(&default_error, "state_not_found"));
    };
    let identifier = format!("{}{oauth_state}", state::IDENTIFIER_PREFIX);
    let conn = st.db.conn().await?;
    let row = store::find_verification(&conn, &identifier).await?;
    drop(conn);
    let Some(flow) = row.and_then(|v| serde_json::from_str::<FlowState>(&v).ok()) else {
        return Ok(fail(&default_error, "state_mismatch"));
    };
    let error_url = flow.error_url.clone().unwrap_or(default_error);
    if flow.oauth_state.as_deref() != Some(oauth_state)
        || !state_cookie_matches(st, req, oauth_state)
    {
        return Ok(fail(&error_url, "state_mismatch"));
    }
    // From here on the state is used up, whatever the outcome.
    let conn = st.db.conn().await?;
    let consumed = store::consume_verification(&conn, &identifier).await?;
    drop(conn);
    let expire = st.cookies.set_cookie(state::COOKIE, "", Some(0));
    let fail = |code: &str| fail(&error_url, code).cookie(expire.clone());
    if consumed == 0 || flow.expires_at < Utc::now().timestamp_millis() {
        return Ok(fail("state_mismatch"));
    }
    if let Some(error) = req.query("error") {
        let location = error_location(&error_url, error, req.query("error_description"));
        return Ok(Reply::redirect(location).cookie(expire));
    }
    let id = req.param("providerId").unwrap_or_default();
    if flow.provider.as_deref().is_some_and(|p| p != id) {
        // A state started for one provider, brought to another's callback.
        return Ok(fail("state_mismatch"));
    }
    let Some(provider) = st.providers.get(id) else {
        return Ok(fail("oauth_provider_not_found"));
    };
    let Some(code) = req.query("code").filter(|c| !c.is_empty()) else {
        return Ok(fail("no_code"));
    };
    let endpoints = match provider.endpoints().await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("{e}");
            return Ok(fail("oauth_provider_not_found"));
        }
    };
    // RFC 9207: a callback from another issuer is a mix-up attack.
    if let (Some(iss), Some(issuer)) = (req.query("iss"), &endpoints.issuer) {
        if iss != issuer {
            return Ok(fail("issuer_mismatch"));
        }
    }
    let oidc_nonce = provider.config.kind == crate::oauth::config::Kind::Oidc;
    if oidc_nonce && flow.id_token_nonce.is_none() {
        return Ok(fail("nonce_binding_missing"));
    }
    let tokens = match provider
        .exchange_code(code, &flow.code_verifier, &redirect_uri(st, provider))
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(provider = %provider.id(), "callback: {e}");
            return Ok(fail("invalid_code"));
        }
    };
    let profile = match provider
        .profile(&tokens, flow.id_token_nonce.as_deref())
        .await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(provider = %provider.id(), "callback: {e}");
            return Ok(fail("unable_to_get_user_info"));
        }
    };
    if let Some(link) = &flow.link {
        return Ok(
            match link_account(st, req, provider, link, &profile, &tokens).await? {
                Ok(()) => Reply::redirect(flow.callback_url.clone()).cookie(expire),
                Err(code) => fail(code),
            },
        );
    }
    if profile.email.is_none() || provider_email(&profile).is_empty() {
        return Ok(fail("email_not_found"));
    }
    let (user, is_new, session_token) =
        match sign_in_with(st, req, provider, &profile, &tokens, &flow.callback_url).await? {
            Ok(done) => done,
            Err(code) => return Ok(fail(code)),
        };
    let _ = user;
    let location = match (&flow.new_user_url, is_new) {
        (Some(new_user), true) => new_user.clone(),
        _ => flow.callback_url.clone(),
    };
    let reply = Reply::redirect(location).cookie(expire);
    Ok(st.with_session(reply, &session_token, true))
}

fn state_cookie_matches(st: &State, req: &Req, oauth_state: &str) -> bool {
    req.cookie_header()
        .and_then(|h| cookies::find_cookie(&h, &st.cookies.name(state::COOKIE)))
        .is_some_and(|signed| st.cookies.verify(&signed) == Some(oauth_state))
}

/// The user of a provider sign-in: the account's owner, an existing user the account is
/// linked to (only when the provider vouches for the address, or is trusted, and the local
/// address is verified), or a new user. `Err(code)` is a refusal for the error URL.
async fn sign_in_with(
    st: &State,
    req: &Req,
    provider: &Provider,
    profile: &Profile,
    tokens: &TokenSet,
    // Where the verification mail of a new, unverified user leads.
    callback_url: &str,
) -> Result<Result<(User, bool, String), &'static str>, AuthError> {
    let email = provider_email(profile);
    let stored = Stored::seal(tokens, TokenCipher::new(st).sealing())?;
    let mut conn = st.db.conn().await?;
    let tx = conn.transaction().await?;
    let existing = accounts::find(&tx, provider.id(), &profile.id).await?;
    let (user, outcome) = match existing {
        Some(account) => {
            let Some(user) = store::user_by_id(&tx, &account.user_id).await? else {
                return Ok(Err("unable_to_get_user_info"));
            };
            accounts::update_tokens(&tx, &account.id, &stored).await?;
            if profile.email_verified && !user.email_verified && user.email == email {
                store::set_email_verified(&tx, &user.email).await?;
            }
            (user, "returning")
        }
        None => match store::user_by_email(&tx, &email).await? {
            Some(user) => {
                let trusted = st
                    .config
                    .social
                    .trusted_providers
                    .iter()
                    .any(|p| p == provider.id());
                // Linking reads the user's accounts, then writes one: one callback at a time,
                // or two concurrent ones would add the identity twice.
                store::lock_user(&tx, &user.id).await?;
                if let Some(account) = accounts::find(&tx, provider.id(), &profile.id).await? {
                    accounts::update_tokens(&tx, &account.id, &stored).await?;
                    let session =
                        store::insert_session(&tx, st.new_session(&user.id, true, req)).await?;
                    tx.commit().await?;
                    return Ok(Ok((user, false, session.token)));
                }
                if !(trusted || profile.email_verified) || !user.email_verified {
                    let event = Event::SocialSignInRefused {
                        provider: provider.id().to_string(),
                        reason: "account_not_linked",
                    };
                    audit::record(&tx, &event, &Actor::of(st, req).user(&user.id)).await?;
                    tx.commit().await?;
                    return Ok(Err("account_not_linked"));
                }
                accounts::insert(&tx, &user.id, provider.id(), &profile.id, &stored).await?;
                (user, "linked")
            }
            None => {
                let created = store::insert_user(
                    &tx,
                    &profile.name,
                    &email,
                    profile.image.as_deref(),
                    profile.email_verified,
                )
                .await;
                let user = match created {
                    Ok(u) => u,
                    // Another callback created the address meanwhile.
                    Err(e) if e.is_unique("user_email_key") => {
                        return Ok(Err("unable_to_create_user"))
                    }
                    Err(e) => return Err(e.into()),
                };
                accounts::insert(&tx, &user.id, provider.id(), &profile.id, &stored).await?;
                if !user.email_verified && st.config.email.send_on_sign_up && mail_enabled(st) {
                    queue_verification(st, &tx, &user, Some(callback_url)).await?;
                }
                (user, "new_user")
            }
        },
    };
    let session = store::insert_session(&tx, st.new_session(&user.id, true, req)).await?;
    let event = Event::SocialSignIn {
        provider: provider.id().to_string(),
        outcome,
    };
    let actor = Actor::of(st, req).user(&user.id).session(&session.id);
    audit::record(&tx, &event, &actor).await?;
    tx.commit().await?;
    if outcome == "new_user" && !user.email_verified {
        st.outbox_bell.ring();
    }
    Ok(Ok((user, outcome == "new_user", session.token)))
}

/// `GET /error?error=CODE`: where failed sign-ins land without an `errorCallbackURL`, a page
/// as Better-Auth has one (apps should give `errorCallbackURL` and show their own).
pub(crate) async fn error_page(_: &State, req: &Req, _: (), _: ()) -> Result<Reply, AuthError> {
    let code = crate::mail::html_escape(req.query("error").unwrap_or("unknown_error"));
    let description = req
        .query("error_description")
        .map(|d| format!("<p>{}</p>", crate::mail::html_escape(d)))
        .unwrap_or_default();
    Ok(Reply::html(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Sign-in failed</title></head>\n\
         <body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\">\n\
         <h1>Sign-in failed</h1>\n<p>Error: <code>{code}</code></p>\n{description}\n\
         <p>Go back to the application and try again.</p>\n</body></html>\n"
    )))
}

/// The callback of a link-social flow: the account goes to the user whose session started it
/// (still alive), if the provider vouches for the address (or is trusted) and the address is
/// the user's own. No new session.
async fn link_account(
    st: &State,
    req: &Req,
    provider: &Provider,
    link: &state::Link,
    profile: &Profile,
    tokens: &TokenSet,
) -> Result<Result<(), &'static str>, AuthError> {
    let cipher = state::purpose_cipher(&st.config.secret, state::LINK_PURPOSE)?;
    let session_token = cipher.open_token(&link.encrypted_session_token);
    let conn = st.db.conn().await?;
    let found = store::session_with_user(&conn, &session_token).await?;
    drop(conn);
    let Some((session, user)) = found else {
        return Ok(Err("unable_to_link_account"));
    };
    if user.id != link.user_id || session.expires_at <= Utc::now() {
        return Ok(Err("unable_to_link_account"));
    }
    let trusted = st
        .config
        .social
        .trusted_providers
        .iter()
        .any(|p| p == provider.id());
    if !(trusted || profile.email_verified) {
        return Ok(Err("unable_to_link_account"));
    }
    if provider_email(profile) != link.email.to_ascii_lowercase() {
        return Ok(Err("email_does_not_match"));
    }
    let stored = Stored::seal(tokens, TokenCipher::new(st).sealing())?;
    let mut conn = st.db.conn().await?;
    let tx = conn.transaction().await?;
    store::lock_user(&tx, &user.id).await?;
    match accounts::find(&tx, provider.id(), &profile.id).await? {
        Some(account) if account.user_id != user.id => {
            return Ok(Err("account_already_linked_to_different_user"));
        }
        Some(account) => {
            accounts::update_tokens(&tx, &account.id, &stored).await?;
            accounts::merge_scope(&tx, &account.id, tokens.scope.as_deref()).await?;
        }
        None => {
            accounts::insert(&tx, &user.id, provider.id(), &profile.id, &stored).await?;
        }
    }
    let event = Event::SocialSignIn {
        provider: provider.id().to_string(),
        outcome: "linked",
    };
    audit::record(
        &tx,
        &event,
        &Actor::of(st, req).user(&user.id).session(&session.id),
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// The provider's address as users are looked up by: lower-cased in ASCII only (Unicode case
/// folding maps e.g. the Kelvin sign to `k`, which would let an exotic address at a provider
/// match someone else's), and `""` for anything that is not a plain address.
fn provider_email(profile: &Profile) -> String {
    match profile.email.as_deref() {
        Some(e) if crate::request::looks_like_email(e) => e.to_ascii_lowercase(),
        _ => String::new(),
    }
}
