//! Provider accounts: rows of Better-Auth's `account` table with a `providerId` other than
//! `credential`, and the provider's tokens in them (sealed with the secret unless
//! `LATCHKEY_ENCRYPT_OAUTH_TOKENS=false`; plain values are read either way).

use chrono::{DateTime, Utc};
use latchkey_core::sql::{text, timestamptz, Sql};
use secrecy::ExposeSecret;
use tokio_postgres::Row;

use super::provider::TokenSet;
use crate::error::AuthError;
use crate::ids::new_id;
use crate::keys::KeyCipher;
use crate::store::{now_ms, StoreError};

/// An account row, tokens as stored.
pub(crate) struct Account {
    pub(crate) id: String,
    pub(crate) account_id: String,
    pub(crate) provider_id: String,
    pub(crate) user_id: String,
    pub(crate) access_token: Option<String>,
    pub(crate) refresh_token: Option<String>,
    pub(crate) id_token: Option<String>,
    pub(crate) access_token_expires_at: Option<DateTime<Utc>>,
    pub(crate) refresh_token_expires_at: Option<DateTime<Utc>>,
    pub(crate) scope: Option<String>,
}

const COLS: &str = r#""id", "accountId", "providerId", "userId", "accessToken", "refreshToken",
    "idToken", "accessTokenExpiresAt", "refreshTokenExpiresAt", "scope""#;

impl Account {
    fn from_row(r: &Row) -> Self {
        Account {
            id: r.get(0),
            account_id: r.get(1),
            provider_id: r.get(2),
            user_id: r.get(3),
            access_token: r.get(4),
            refresh_token: r.get(5),
            id_token: r.get(6),
            access_token_expires_at: r.get(7),
            refresh_token_expires_at: r.get(8),
            scope: r.get(9),
        }
    }

    /// `scope` as list-accounts and get-access-token show it.
    pub(crate) fn scopes(&self) -> Vec<String> {
        self.scope
            .as_deref()
            .map(|s| {
                s.split([',', ' '])
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Seals and opens the token columns as the deployment says (`LATCHKEY_ENCRYPT_OAUTH_TOKENS`).
pub(crate) struct TokenCipher(Option<KeyCipher>);

impl TokenCipher {
    pub(crate) fn new(st: &crate::state::State) -> Self {
        Self(
            st.config
                .social
                .encrypt_tokens
                .then(|| KeyCipher::new(&st.config.secret)),
        )
    }

    pub(crate) fn sealing(&self) -> Option<&KeyCipher> {
        self.0.as_ref()
    }

    /// A stored token as the app gets it. Opened only when encryption is on, as Better-Auth
    /// does: with it off, a stored value is never decrypted, so that nobody can store a blob of
    /// this key (a `jwks` private key, say) and have it decrypted for them.
    pub(crate) fn open(&self, stored: &str) -> zeroize::Zeroizing<String> {
        match &self.0 {
            Some(c) => c.open_token(stored),
            None => zeroize::Zeroizing::new(stored.to_string()),
        }
    }
}

/// Token columns as they are written.
pub(crate) struct Stored {
    access_token: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
    access_token_expires_at: Option<DateTime<Utc>>,
    refresh_token_expires_at: Option<DateTime<Utc>>,
    /// Whitespace-separated scopes joined with `,` (GitHub's `a,b` passes unchanged).
    scope: Option<String>,
}

impl Stored {
    pub(crate) fn seal(tokens: &TokenSet, cipher: Option<&KeyCipher>) -> Result<Stored, AuthError> {
        let now = now_ms();
        let seal = |t: &Option<secrecy::SecretString>| -> Result<Option<String>, AuthError> {
            t.as_ref()
                .map(|t| match cipher {
                    Some(c) => c.seal_hex(t.expose_secret().as_bytes()),
                    None => Ok(t.expose_secret().to_string()),
                })
                .transpose()
        };
        let after = |secs: Option<i64>| {
            secs.filter(|s| *s > 0 && *s < 10 * 365 * 86_400)
                .map(|s| now + chrono::Duration::seconds(s))
        };
        Ok(Stored {
            access_token: seal(&tokens.access_token)?,
            refresh_token: seal(&tokens.refresh_token)?,
            id_token: tokens.id_token.clone(),
            access_token_expires_at: after(tokens.expires_in),
            refresh_token_expires_at: after(tokens.refresh_token_expires_in),
            scope: tokens
                .scope
                .as_deref()
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(",")),
        })
    }
}

pub(crate) async fn find(
    c: &impl Sql,
    provider_id: &str,
    account_id: &str,
) -> Result<Option<Account>, StoreError> {
    let sql = format!(
        r#"select {COLS} from "account" where "providerId" = $1 and "accountId" = $2
           order by "createdAt" limit 1"#
    );
    Ok(c.opt_row(&sql, &[text(&provider_id), text(&account_id)])
        .await?
        .map(|r| Account::from_row(&r)))
}

/// The user's account with row id `id`.
pub(crate) async fn of_user(
    c: &impl Sql,
    user_id: &str,
    id: &str,
) -> Result<Option<Account>, StoreError> {
    let sql = format!(r#"select {COLS} from "account" where "id" = $1 and "userId" = $2"#);
    Ok(c.opt_row(&sql, &[text(&id), text(&user_id)])
        .await?
        .map(|r| Account::from_row(&r)))
}

pub(crate) async fn insert(
    c: &impl Sql,
    user_id: &str,
    provider_id: &str,
    account_id: &str,
    t: &Stored,
) -> Result<String, StoreError> {
    let id = new_id();
    let now = now_ms();
    c.exec(
        r#"insert into "account" ("id", "accountId", "providerId", "userId", "accessToken",
               "refreshToken", "idToken", "accessTokenExpiresAt", "refreshTokenExpiresAt",
               "scope", "createdAt", "updatedAt")
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)"#,
        &[
            text(&id),
            text(&account_id),
            text(&provider_id),
            text(&user_id),
            text(&t.access_token),
            text(&t.refresh_token),
            text(&t.id_token),
            timestamptz(&t.access_token_expires_at),
            timestamptz(&t.refresh_token_expires_at),
            text(&t.scope),
            timestamptz(&now),
        ],
    )
    .await?;
    Ok(id)
}

/// New tokens for an account (a sign-in or a refresh). A token the provider did not send again
/// is kept (and with the access token its expiry), as Better-Auth leaves out undefined
/// fields; the scope is kept too.
pub(crate) async fn update_tokens(c: &impl Sql, id: &str, t: &Stored) -> Result<(), StoreError> {
    c.exec(
        r#"update "account" set "accessToken" = coalesce($2, "accessToken"),
               "refreshToken" = coalesce($3, "refreshToken"),
               "idToken" = coalesce($4, "idToken"),
               "accessTokenExpiresAt" = case when $2::text is null then "accessTokenExpiresAt" else $5 end,
               "refreshTokenExpiresAt" = coalesce($6, "refreshTokenExpiresAt"),
               "updatedAt" = $7
           where "id" = $1"#,
        &[
            text(&id),
            text(&t.access_token),
            text(&t.refresh_token),
            text(&t.id_token),
            timestamptz(&t.access_token_expires_at),
            timestamptz(&t.refresh_token_expires_at),
            timestamptz(&now_ms()),
        ],
    )
    .await?;
    Ok(())
}

/// Adds the scopes of `granted` (whitespace- or comma-separated) to the account's, keeping
/// the order and dropping repeats (a second link-social with more scopes).
pub(crate) async fn merge_scope(
    c: &impl Sql,
    id: &str,
    granted: Option<&str>,
) -> Result<(), StoreError> {
    let Some(granted) = granted else {
        return Ok(());
    };
    let row = c
        .row(
            r#"select "scope" from "account" where "id" = $1"#,
            &[text(&id)],
        )
        .await?;
    let current: Option<String> = row.get(0);
    let mut scopes: Vec<String> = Vec::new();
    for s in current
        .as_deref()
        .unwrap_or_default()
        .split([',', ' '])
        .chain(granted.split([',', ' ']))
    {
        if !s.is_empty() && !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    c.exec(
        r#"update "account" set "scope" = $2 where "id" = $1"#,
        &[text(&id), text(&scopes.join(","))],
    )
    .await?;
    Ok(())
}

/// How many accounts (the credential one included) the user has.
pub(crate) async fn count(c: &impl Sql, user_id: &str) -> Result<i64, StoreError> {
    let row = c
        .row(
            r#"select count(*) from "account" where "userId" = $1"#,
            &[text(&user_id)],
        )
        .await?;
    Ok(row.get(0))
}

pub(crate) async fn delete(c: &impl Sql, user_id: &str, id: &str) -> Result<u64, StoreError> {
    Ok(c.exec(
        r#"delete from "account" where "id" = $1 and "userId" = $2"#,
        &[text(&id), text(&user_id)],
    )
    .await?)
}
