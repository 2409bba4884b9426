//! The provider accounts of the signed-in user: `unlink-account`, `get-access-token` (refreshed
//! first when about to expire) and `refresh-token`. Accounts are named by their row id, as in
//! Better-Auth. Tokens leave only in these answers, never in a log or an error.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::audit::{self, Actor, Event};
use crate::error::AuthError;
use crate::oauth::accounts::{self, Account, Stored, TokenCipher};
use crate::reply::Reply;
use crate::request::{Fields, FromBody, Req};
use crate::state::{Caller, State};
use crate::store;

/// `{accountId}` and nothing else (Better-Auth's strict object).
pub(crate) struct AccountRef {
    account_id: String,
}

impl FromBody for AccountRef {
    fn read(f: &mut Fields<'_>) -> Self {
        if f.unknown_keys(&["accountId"]) {
            f.invalid_body();
        }
        AccountRef {
            account_id: f.string("accountId"),
        }
    }
}

fn not_found() -> AuthError {
    AuthError::bad_request("ACCOUNT_NOT_FOUND", "Account not found")
}

/// The caller's account with row id `id`, or 400 `ACCOUNT_NOT_FOUND` (another user's too).
async fn account_of(st: &State, user_id: &str, id: &str) -> Result<Account, AuthError> {
    let conn = st.db.conn().await?;
    accounts::of_user(&conn, user_id, id)
        .await?
        .ok_or_else(not_found)
}

fn iso(t: &Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

/// `POST /unlink-account {accountId}`: a fresh session, and never the last account.
pub(crate) async fn unlink_account(
    st: &State,
    req: &Req,
    Caller { session, user }: Caller,
    AccountRef { account_id }: AccountRef,
) -> Result<Reply, AuthError> {
    super::sessions::require_fresh(st, &session)?;
    let mut conn = st.db.conn().await?;
    let tx = conn.transaction().await?;
    // Two unlinks at once must not both see two accounts.
    store::lock_user(&tx, &user.id).await?;
    if accounts::count(&tx, &user.id).await? <= 1 {
        return Err(AuthError::bad_request(
            "FAILED_TO_UNLINK_LAST_ACCOUNT",
            "You can't unlink your last account",
        ));
    }
    let Some(account) = accounts::of_user(&tx, &user.id, &account_id).await? else {
        return Err(not_found());
    };
    accounts::delete(&tx, &user.id, &account.id).await?;
    let event = Event::AccountUnlinked {
        provider: account.provider_id,
    };
    let actor = Actor::of(st, req).user(&user.id).session(&session.id);
    audit::record(&tx, &event, &actor).await?;
    tx.commit().await?;
    Ok(Reply::json(json!({"status": true})))
}

/// Refreshes `account` at its provider and stores the new tokens; returns the account as
/// stored afterwards.
async fn refresh(st: &State, account: &Account) -> Result<Account, &'static str> {
    let cipher = TokenCipher::new(st);
    let Some(stored_refresh) = &account.refresh_token else {
        return Err("REFRESH_TOKEN_NOT_FOUND");
    };
    let Some(provider) = st.providers.get(&account.provider_id) else {
        return Err("PROVIDER_NOT_SUPPORTED");
    };
    let refresh_token = cipher.open(stored_refresh);
    let mut tokens = match provider.refresh(&refresh_token).await {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(provider = %provider.id(), "refresh: {e}");
            return Err("FAILED_TO_REFRESH_ACCESS_TOKEN");
        }
    };
    if let Some(id_token) = &tokens.id_token {
        if !provider
            .refreshed_id_token_ok(id_token, &account.account_id)
            .await
        {
            tokens.id_token = None;
        }
    }
    let stored =
        Stored::seal(&tokens, cipher.sealing()).map_err(|_| "FAILED_TO_REFRESH_ACCESS_TOKEN")?;
    let updated = async {
        let conn = st.db.conn().await.ok()?;
        accounts::update_tokens(&conn, &account.id, &stored)
            .await
            .ok()?;
        accounts::of_user(&conn, &account.user_id, &account.id)
            .await
            .ok()
            .flatten()
    };
    updated.await.ok_or("FAILED_TO_REFRESH_ACCESS_TOKEN")
}

/// `POST /get-access-token {accountId}`: the provider's access token, refreshed first when it
/// expires within 5 s and a refresh token is there.
pub(crate) async fn get_access_token(
    st: &State,
    _: &Req,
    Caller { user, .. }: Caller,
    AccountRef { account_id }: AccountRef,
) -> Result<Reply, AuthError> {
    let mut account = account_of(st, &user.id, &account_id).await?;
    let expiring = account
        .access_token_expires_at
        .is_some_and(|t| t - Utc::now() < chrono::Duration::seconds(5));
    if expiring && account.refresh_token.is_some() {
        account = refresh(st, &account)
            .await
            .map_err(|_| failed_access_token())?;
    }
    let Some(access) = &account.access_token else {
        return Err(failed_access_token());
    };
    let cipher = TokenCipher::new(st);
    let mut body = Map::new();
    body.insert(
        "accessToken".into(),
        Value::String(cipher.open(access).to_string()),
    );
    body.insert(
        "accessTokenExpiresAt".into(),
        iso(&account.access_token_expires_at),
    );
    body.insert("scopes".into(), json!(account.scopes()));
    if let Some(id_token) = &account.id_token {
        body.insert("idToken".into(), Value::String(id_token.clone()));
    }
    Ok(Reply::json(Value::Object(body)).no_store())
}

fn failed_access_token() -> AuthError {
    AuthError::bad_request(
        "FAILED_TO_GET_ACCESS_TOKEN",
        "Failed to get a valid access token",
    )
}

/// `POST /refresh-token {accountId}`: a refresh at the provider, stored, and the new tokens.
pub(crate) async fn refresh_token(
    st: &State,
    _: &Req,
    Caller { user, .. }: Caller,
    AccountRef { account_id }: AccountRef,
) -> Result<Reply, AuthError> {
    let account = account_of(st, &user.id, &account_id).await?;
    let account = refresh(st, &account).await.map_err(|code| {
        let message = match code {
            "REFRESH_TOKEN_NOT_FOUND" => "Refresh token not found",
            "PROVIDER_NOT_SUPPORTED" => "Provider not supported",
            _ => "Failed to refresh access token",
        };
        AuthError::bad_request(code, message)
    })?;
    let cipher = TokenCipher::new(st);
    let open = |t: &Option<String>| {
        t.as_deref()
            .map(|t| Value::String(cipher.open(t).to_string()))
            .unwrap_or(Value::Null)
    };
    Ok(Reply::json(json!({
        "accessToken": open(&account.access_token),
        "refreshToken": open(&account.refresh_token),
        "accessTokenExpiresAt": iso(&account.access_token_expires_at),
        "refreshTokenExpiresAt": iso(&account.refresh_token_expires_at),
        "scope": account.scope,
        "idToken": account.id_token,
        "providerId": account.provider_id,
        "accountId": account.id,
    }))
    .no_store())
}

/// `GET /account-info?accountId=<row id>`: the provider's current profile of the account,
/// fetched live with its access token.
pub(crate) async fn account_info(
    st: &State,
    req: &Req,
    Caller { user, .. }: Caller,
    _: (),
) -> Result<Reply, AuthError> {
    let account_id = req.query("accountId").unwrap_or_default();
    let account = account_of(st, &user.id, account_id).await?;
    let Some(provider) = st.providers.get(&account.provider_id) else {
        return Err(AuthError::bad_request(
            "PROVIDER_NOT_SUPPORTED",
            "Provider not supported",
        ));
    };
    let cipher = TokenCipher::new(st);
    let access = account
        .access_token
        .as_deref()
        .map(|t| cipher.open(t))
        .ok_or_else(failed_access_token)?;
    let profile = provider.live_profile(&access).await.map_err(|e| {
        tracing::info!(provider = %provider.id(), "account-info: {e}");
        AuthError::bad_request("FAILED_TO_GET_USER_INFO", "Failed to get user info")
    })?;
    Ok(Reply::json(json!({
        "user": {
            "name": profile.name,
            "email": profile.email,
            "image": profile.image,
            "emailVerified": profile.email_verified,
        },
        "data": profile.raw,
        "account": {
            "id": account.id,
            "providerId": account.provider_id,
            "accountId": account.account_id,
        },
    })))
}
