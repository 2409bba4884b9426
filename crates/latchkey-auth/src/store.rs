//! Rows of Better-Auth's tables and the queries on them. Column names are Better-Auth's quoted
//! camelCase; ids and timestamps are made here (at millisecond precision, as JS does), never
//! by database defaults, exactly as Better-Auth writes them.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use latchkey_core::sql::{boolean, text, timestamptz, DbError, Sql};
use serde::{Serialize, Serializer};
use tokio_postgres::Row;

use crate::ids::new_id;

/// What can go wrong in the store, in the store's terms; HTTP statuses are the handlers'
/// business (`From<StoreError> for AuthError`).
#[derive(Debug)]
pub(crate) enum StoreError {
    /// A unique constraint refused the row (e.g. `user_email_key`: the email is taken).
    Unique { constraint: String },
    /// The database is not reachable, is shutting down or refuses connections (SQLSTATE
    /// classes 08 and 57P, 53300, or no server at all): worth a 503 and a retry.
    Unavailable(String),
    /// Anything else: a bug or a broken invariant.
    Other(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unique { constraint } => write!(f, "unique violation ({constraint})"),
            StoreError::Unavailable(d) => write!(f, "database unavailable: {d}"),
            StoreError::Other(d) => f.write_str(d),
        }
    }
}

impl StoreError {
    pub(crate) fn is_unique(&self, name: &str) -> bool {
        matches!(self, StoreError::Unique { constraint } if constraint == name)
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            // The causes say what went wrong (a refused connection, a certificate rejected in
            // the TLS handshake); the pool's own message alone does not.
            DbError::Pool(_) | DbError::Timeout(_) => StoreError::Unavailable(e.to_string()),
            DbError::Pg(e) => StoreError::from(e),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            // No server answer at all: a closed connection, a refused socket.
            return StoreError::Unavailable(latchkey_core::error_chain(&e));
        };
        let code = db.code().code();
        if code == "23505" {
            return StoreError::Unique {
                constraint: db.constraint().unwrap_or_default().to_string(),
            };
        }
        // Only the code, message and constraint: the DETAIL line quotes row values (emails,
        // tokens) that must not reach the logs.
        let detail = format!(
            "database error {code}: {} (constraint {})",
            db.message(),
            db.constraint().unwrap_or("-")
        );
        // Connection exceptions, operator intervention (admin shutdown, crash shutdown,
        // cannot connect now) and too many connections: what a restarting Postgres or a
        // pooler in front of it says.
        if code.starts_with("08") || code.starts_with("57P") || code == "53300" {
            return StoreError::Unavailable(detail);
        }
        StoreError::Other(detail)
    }
}

fn iso<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

pub(crate) fn now_ms() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// Field order is Better-Auth's (docs/compatibility.md#http-conventions).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) email_verified: bool,
    pub(crate) image: Option<String>,
    #[serde(serialize_with = "iso")]
    pub(crate) created_at: DateTime<Utc>,
    #[serde(serialize_with = "iso")]
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) id: String,
}

const USER_COLS: &str =
    r#"u."name", u."email", u."emailVerified", u."image", u."createdAt", u."updatedAt", u."id""#;

impl User {
    fn from_row(r: &Row, at: usize) -> Self {
        User {
            name: r.get(at),
            email: r.get(at + 1),
            email_verified: r.get(at + 2),
            image: r.get(at + 3),
            created_at: r.get(at + 4),
            updated_at: r.get(at + 5),
            id: r.get(at + 6),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Session {
    #[serde(serialize_with = "iso")]
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) token: String,
    #[serde(serialize_with = "iso")]
    pub(crate) created_at: DateTime<Utc>,
    #[serde(serialize_with = "iso")]
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) ip_address: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) user_id: String,
    pub(crate) id: String,
}

const SESSION_COLS: &str = r#"s."expiresAt", s."token", s."createdAt", s."updatedAt", s."ipAddress", s."userAgent", s."userId", s."id""#;

impl Session {
    fn from_row(r: &Row, at: usize) -> Self {
        Session {
            expires_at: r.get(at),
            token: r.get(at + 1),
            created_at: r.get(at + 2),
            updated_at: r.get(at + 3),
            ip_address: r.get(at + 4),
            user_agent: r.get(at + 5),
            user_id: r.get(at + 6),
            id: r.get(at + 7),
        }
    }
}

pub(crate) struct NewSession<'a> {
    pub(crate) user_id: &'a str,
    pub(crate) ttl: chrono::Duration,
    pub(crate) ip_address: String,
    pub(crate) user_agent: String,
}

pub(crate) async fn user_by_email(c: &impl Sql, email: &str) -> Result<Option<User>, StoreError> {
    let sql = format!(r#"select {USER_COLS} from "user" u where u."email" = $1"#);
    Ok(c.opt_row(&sql, &[text(&email)])
        .await?
        .map(|r| User::from_row(&r, 0)))
}

pub(crate) async fn user_by_id(c: &impl Sql, id: &str) -> Result<Option<User>, StoreError> {
    let sql = format!(r#"select {USER_COLS} from "user" u where u."id" = $1"#);
    Ok(c.opt_row(&sql, &[text(&id)])
        .await?
        .map(|r| User::from_row(&r, 0)))
}

/// The last step of a change of address: only while the user still has `old` (a second click
/// on a used link changes nothing). A taken `new` is a unique violation of `user_email_key`.
pub(crate) async fn change_email(
    c: &impl Sql,
    id: &str,
    old: &str,
    new: &str,
    verified: bool,
) -> Result<Option<User>, StoreError> {
    let sql = format!(
        r#"update "user" u set "email" = $3, "emailVerified" = $4, "updatedAt" = $5
           where u."id" = $1 and u."email" = $2 returning {USER_COLS}"#
    );
    Ok(c.opt_row(
        &sql,
        &[
            text(&id),
            text(&old),
            text(&new),
            boolean(&verified),
            timestamptz(&now_ms()),
        ],
    )
    .await?
    .map(|r| User::from_row(&r, 0)))
}

/// Deletes a user as Better-Auth does: sessions, accounts, then the user row, each explicitly
/// (a database without the foreign keys' cascade is left clean too). Other `verification`
/// rows stay, as in Better-Auth; they name a user that no longer exists and expire.
pub(crate) async fn delete_user(c: &impl Sql, id: &str) -> Result<u64, StoreError> {
    c.exec(r#"delete from "session" where "userId" = $1"#, &[text(&id)])
        .await?;
    c.exec(r#"delete from "account" where "userId" = $1"#, &[text(&id)])
        .await?;
    Ok(
        c.exec(r#"delete from "user" where "id" = $1"#, &[text(&id)])
            .await?,
    )
}

/// Locks the user row until the transaction ends: changes that read, then write, the user's
/// accounts (linking, unlinking) take it, so that two at once cannot both pass their check.
pub(crate) async fn lock_user(c: &impl Sql, id: &str) -> Result<(), StoreError> {
    c.opt_row(
        r#"select 1 from "user" where "id" = $1 for update"#,
        &[text(&id)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn set_email_verified(c: &impl Sql, email: &str) -> Result<u64, StoreError> {
    Ok(c.exec(
        r#"update "user" set "emailVerified" = true, "updatedAt" = $2 where "email" = $1"#,
        &[text(&email), timestamptz(&now_ms())],
    )
    .await?)
}

/// A `verification` row as Better-Auth writes it (`expiresAt` = `createdAt` + `ttl`); returns
/// its id.
pub(crate) async fn insert_verification(
    c: &impl Sql,
    identifier: &str,
    value: &str,
    ttl: chrono::Duration,
) -> Result<String, StoreError> {
    let id = new_id();
    let now = now_ms();
    let expires_at = now + ttl;
    c.exec(
        r#"insert into "verification" ("id", "identifier", "value", "expiresAt", "createdAt", "updatedAt")
           values ($1, $2, $3, $4, $5, $5)"#,
        &[
            text(&id),
            text(&identifier),
            text(&value),
            timestamptz(&expires_at),
            timestamptz(&now),
        ],
    )
    .await?;
    Ok(id)
}

/// The value of the newest unexpired row for `identifier` (Better-Auth picks the newest).
pub(crate) async fn find_verification(
    c: &impl Sql,
    identifier: &str,
) -> Result<Option<String>, StoreError> {
    let row = c
        .opt_row(
            r#"select "value", "expiresAt" from "verification" where "identifier" = $1
               order by "createdAt" desc limit 1"#,
            &[text(&identifier)],
        )
        .await?;
    Ok(row.and_then(|r| {
        let expires: DateTime<Utc> = r.get(1);
        (expires > Utc::now()).then(|| r.get(0))
    }))
}

/// Uses up every row for `identifier` (unexpired ones counted): 0 means it was gone.
pub(crate) async fn consume_verification(
    c: &impl Sql,
    identifier: &str,
) -> Result<u64, StoreError> {
    let row = c
        .row(
            r#"with gone as (delete from "verification" where "identifier" = $1 returning "expiresAt")
               select count(*) filter (where "expiresAt" > now()) from gone"#,
            &[text(&identifier)],
        )
        .await?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// Uses up every row for `identifier` and returns the value of an unexpired one, whoever it
/// belonged to (Better-Auth's delete-user consumes a token before comparing its owner).
pub(crate) async fn take_verification(
    c: &impl Sql,
    identifier: &str,
) -> Result<Option<String>, StoreError> {
    let row = c
        .row(
            r#"with gone as (delete from "verification" where "identifier" = $1
                             returning "value", "expiresAt", "createdAt")
               select (select "value" from gone where "expiresAt" > now()
                       order by "createdAt" desc limit 1)"#,
            &[text(&identifier)],
        )
        .await?;
    Ok(row.get(0))
}

pub(crate) async fn delete_verification_row(c: &impl Sql, id: &str) -> Result<u64, StoreError> {
    Ok(c.exec(
        r#"delete from "verification" where "id" = $1"#,
        &[text(&id)],
    )
    .await?)
}

pub(crate) async fn insert_user(
    c: &impl Sql,
    name: &str,
    email: &str,
    image: Option<&str>,
    email_verified: bool,
) -> Result<User, StoreError> {
    let now = now_ms();
    let user = User {
        name: name.to_string(),
        email: email.to_string(),
        email_verified,
        image: image.map(str::to_string),
        created_at: now,
        updated_at: now,
        id: new_id(),
    };
    c.exec(
        r#"insert into "user" ("id", "name", "email", "emailVerified", "image", "createdAt", "updatedAt")
           values ($1, $2, $3, $4, $5, $6, $7)"#,
        &[
            text(&user.id),
            text(&user.name),
            text(&user.email),
            boolean(&user.email_verified),
            text(&user.image),
            timestamptz(&now),
            timestamptz(&now),
        ],
    )
    .await?;
    Ok(user)
}

/// The `credential` account Better-Auth keeps for an email/password user.
pub(crate) async fn insert_credential(
    c: &impl Sql,
    user_id: &str,
    hash: &str,
) -> Result<(), StoreError> {
    let now = now_ms();
    c.exec(
        r#"insert into "account" ("id", "accountId", "providerId", "userId", "password", "createdAt", "updatedAt")
           values ($1, $2, 'credential', $2, $3, $4, $4)"#,
        &[text(&new_id()), text(&user_id), text(&hash), timestamptz(&now)],
    )
    .await?;
    Ok(())
}

/// `(account id, stored hash)` of the user's credential account, if any.
pub(crate) async fn credential(
    c: &impl Sql,
    user_id: &str,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    Ok(c.opt_row(
        r#"select "id", "password" from "account"
           where "userId" = $1 and "providerId" = 'credential' and "accountId" = $1
           order by "createdAt" limit 1"#,
        &[text(&user_id)],
    )
    .await?
    .map(|r| (r.get(0), r.get(1))))
}

pub(crate) async fn set_password(
    c: &impl Sql,
    account_id: &str,
    hash: &str,
) -> Result<(), StoreError> {
    c.exec(
        r#"update "account" set "password" = $2, "updatedAt" = $3 where "id" = $1"#,
        &[text(&account_id), text(&hash), timestamptz(&now_ms())],
    )
    .await?;
    Ok(())
}

/// Replaces `old` with an upgraded hash of the same password, unless the password changed in
/// the meantime (a concurrent change-password must not be undone by a sign-in's rehash).
pub(crate) async fn upgrade_password(
    c: &impl Sql,
    account_id: &str,
    old: &str,
    hash: &str,
) -> Result<(), StoreError> {
    c.exec(
        r#"update "account" set "password" = $3, "updatedAt" = $4
           where "id" = $1 and "password" = $2"#,
        &[
            text(&account_id),
            text(&old),
            text(&hash),
            timestamptz(&now_ms()),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn insert_session(
    c: &impl Sql,
    new: NewSession<'_>,
) -> Result<Session, StoreError> {
    let now = now_ms();
    let session = Session {
        expires_at: now + new.ttl,
        token: new_id(),
        created_at: now,
        updated_at: now,
        ip_address: Some(new.ip_address),
        user_agent: Some(new.user_agent),
        user_id: new.user_id.to_string(),
        id: new_id(),
    };
    c.exec(
        r#"insert into "session" ("id", "expiresAt", "token", "createdAt", "updatedAt", "ipAddress", "userAgent", "userId")
           values ($1, $2, $3, $4, $5, $6, $7, $8)"#,
        &[
            text(&session.id),
            timestamptz(&session.expires_at),
            text(&session.token),
            timestamptz(&now),
            timestamptz(&now),
            text(&session.ip_address),
            text(&session.user_agent),
            text(&session.user_id),
        ],
    )
    .await?;
    Ok(session)
}

pub(crate) async fn session_with_user(
    c: &impl Sql,
    token: &str,
) -> Result<Option<(Session, User)>, StoreError> {
    let sql = format!(
        r#"select {SESSION_COLS}, {USER_COLS} from "session" s join "user" u on u."id" = s."userId"
           where s."token" = $1"#
    );
    Ok(c.opt_row(&sql, &[text(&token)])
        .await?
        .map(|r| (Session::from_row(&r, 0), User::from_row(&r, 8))))
}

pub(crate) async fn extend_session(
    c: &impl Sql,
    id: &str,
    expires_at: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    let now = now_ms();
    c.exec(
        r#"update "session" set "expiresAt" = $2, "updatedAt" = $3 where "id" = $1"#,
        &[text(&id), timestamptz(&expires_at), timestamptz(&now)],
    )
    .await?;
    Ok(now)
}

pub(crate) async fn delete_session_by_token(c: &impl Sql, token: &str) -> Result<u64, StoreError> {
    Ok(c.exec(
        r#"delete from "session" where "token" = $1"#,
        &[text(&token)],
    )
    .await?)
}

/// Deletes one of the user's sessions, named by its token or (as list-sessions shows other
/// devices' sessions) by its id.
/// Returns the id of the session it deleted.
pub(crate) async fn delete_user_session(
    c: &impl Sql,
    user_id: &str,
    token: &str,
) -> Result<Option<String>, StoreError> {
    Ok(c.opt_row(
        r#"delete from "session" where ("token" = $1 or "id" = $1) and "userId" = $2
           returning "id""#,
        &[text(&token), text(&user_id)],
    )
    .await?
    .map(|r| r.get(0)))
}

/// Deletes the session with this token; returns its `(user id, session id)` if there was one.
pub(crate) async fn end_session(
    c: &impl Sql,
    token: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(c.opt_row(
        r#"delete from "session" where "token" = $1 returning "userId", "id""#,
        &[text(&token)],
    )
    .await?
    .map(|r| (r.get(0), r.get(1))))
}

/// Deletes the user's sessions, keeping the one with `keep` if given.
pub(crate) async fn delete_user_sessions(
    c: &impl Sql,
    user_id: &str,
    keep: Option<&str>,
) -> Result<u64, StoreError> {
    Ok(c.exec(
        r#"delete from "session" where "userId" = $1 and ($2::text is null or "token" <> $2)"#,
        &[text(&user_id), text(&keep)],
    )
    .await?)
}

pub(crate) async fn list_sessions(c: &impl Sql, user_id: &str) -> Result<Vec<Session>, StoreError> {
    let sql = format!(
        r#"select {SESSION_COLS} from "session" s where s."userId" = $1 and s."expiresAt" > now()
           order by s."createdAt""#
    );
    Ok(c.rows(&sql, &[text(&user_id)])
        .await?
        .iter()
        .map(|r| Session::from_row(r, 0))
        .collect())
}

pub(crate) async fn update_user(
    c: &impl Sql,
    id: &str,
    name: Option<&str>,
    image: Option<Option<&str>>,
) -> Result<Option<User>, StoreError> {
    let sql = format!(
        r#"update "user" u set "name" = coalesce($2, u."name"),
               "image" = case when $3 then $4 else u."image" end,
               "updatedAt" = $5
           where u."id" = $1 returning {USER_COLS}"#
    );
    let set_image = image.is_some();
    let image = image.flatten();
    Ok(c.opt_row(
        &sql,
        &[
            text(&id),
            text(&name),
            boolean(&set_image),
            text(&image),
            timestamptz(&now_ms()),
        ],
    )
    .await?
    .map(|r| User::from_row(&r, 0)))
}

/// Account rows as Better-Auth's list-accounts shows them: no password, no tokens.
pub(crate) async fn list_accounts(
    c: &impl Sql,
    user_id: &str,
) -> Result<Vec<serde_json::Value>, StoreError> {
    let rows = c
        .rows(
            r#"select "accountId", "providerId", "userId", "createdAt", "updatedAt", "id", "scope"
               from "account" where "userId" = $1 order by "createdAt""#,
            &[text(&user_id)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let created: DateTime<Utc> = r.get(3);
            let updated: DateTime<Utc> = r.get(4);
            let scope: Option<String> = r.get(6);
            let scopes: Vec<&str> = scope
                .as_deref()
                .map(|s| s.split([',', ' ']).filter(|x| !x.is_empty()).collect())
                .unwrap_or_default();
            serde_json::json!({
                "accountId": r.get::<_, String>(0),
                "providerId": r.get::<_, String>(1),
                "userId": r.get::<_, String>(2),
                "createdAt": created.to_rfc3339_opts(SecondsFormat::Millis, true),
                "updatedAt": updated.to_rfc3339_opts(SecondsFormat::Millis, true),
                "id": r.get::<_, String>(5),
                "scopes": scopes,
            })
        })
        .collect())
}

/// Which password-hash schemes the stored credentials use: `(argon2id, scrypt)`.
pub(crate) async fn password_schemes(c: &impl Sql) -> Result<(bool, bool), StoreError> {
    let row = c
        .row(
            r#"select coalesce(bool_or("password" like '$argon2%'), false),
                      coalesce(bool_or("password" not like '$argon2%'), false)
               from "account" where "providerId" = 'credential' and "password" is not null"#,
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Versions recorded in `latchkey_schema_migrations` (none on a database never migrated).
pub(crate) async fn applied_migrations(c: &impl Sql) -> Result<Vec<i64>, StoreError> {
    let exists: bool = c
        .row(
            "select to_regclass('latchkey_schema_migrations') is not null",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    Ok(c.rows(
        r#"select "version" from "latchkey_schema_migrations" order by "version""#,
        &[],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}
