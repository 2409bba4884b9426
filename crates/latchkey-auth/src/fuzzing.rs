//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off in every
//! normal build): the cookie and bearer-token parsers, the request-body extractor and the
//! stored-password-hash parser, reached without a database or a server.

use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::cookies::{CookiePolicy, CookieSigner, SameSite};
use crate::error::AuthError;
use crate::handlers::{account, sessions, user};
use crate::password::{HashScheme, Stored};
use crate::request::{BodyRule, Fields, FromBody, Req};

/// [`crate::cookies::find_cookie`].
pub fn find_cookie(header: &str, name: &str) -> Option<String> {
    crate::cookies::find_cookie(header, name)
}

/// The cookie signer with a given secret (default cookie policy).
pub struct Cookies(CookieSigner);

impl Cookies {
    pub fn new(secret: &str) -> Self {
        let policy = CookiePolicy {
            prefix: "better-auth".into(),
            secure: false,
            same_site: SameSite::Lax,
            domain: None,
        };
        Cookies(CookieSigner::new(
            SecretString::from(secret.to_string()),
            &policy,
        ))
    }

    pub fn sign(&self, value: &str) -> String {
        self.0.sign(value)
    }

    pub fn verify<'a>(&self, signed: &'a str) -> Option<&'a str> {
        self.0.verify(signed)
    }

    /// [`crate::cookies::bearer_token`]: the session token an `Authorization` header gives.
    pub fn bearer_token(
        &self,
        authorization: &str,
        require_signed: bool,
    ) -> Option<Option<String>> {
        crate::cookies::bearer_token(authorization, &self.0, require_signed)
    }

    /// The full cookie name of a short one (`session_token`).
    pub fn name(&self, short: &str) -> String {
        self.0.name(short)
    }
}

/// A refused body: what the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub status: u16,
    pub code: Option<&'static str>,
    pub message: String,
}

fn body_error(e: AuthError) -> BodyError {
    match e {
        AuthError::Api {
            status,
            code,
            message,
        } => BodyError {
            status: status.as_u16(),
            code,
            message: message.into_owned(),
        },
        other => BodyError {
            status: 500,
            code: None,
            message: other.to_string(),
        },
    }
}

/// The endpoints' typed bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    SignUp,
    SignIn,
    UpdateUser,
    ChangePassword,
    VerifyPassword,
    RevokeSession,
    /// An endpoint with a JSON body rule that takes no fields (sign-out, revoke-sessions).
    NoFields,
}

impl Endpoint {
    pub const ALL: [Endpoint; 7] = [
        Endpoint::SignUp,
        Endpoint::SignIn,
        Endpoint::UpdateUser,
        Endpoint::ChangePassword,
        Endpoint::VerifyPassword,
        Endpoint::RevokeSession,
        Endpoint::NoFields,
    ];

    /// Sign-up and sign-in take form bodies too, as in the route table.
    pub fn takes_forms(self) -> bool {
        matches!(self, Endpoint::SignUp | Endpoint::SignIn)
    }
}

fn request(content_type: Option<&str>, body: &[u8], rule: BodyRule) -> Req {
    let mut headers = HeaderMap::new();
    if let Some(value) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(http::header::CONTENT_TYPE, value);
    }
    Req {
        path: "/fuzz".into(),
        params: Vec::new(),
        query: Vec::new(),
        headers,
        body: Bytes::copy_from_slice(body),
        body_rule: rule,
        peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
    }
}

/// Parses `body` as `endpoint` does (`content_type` as the header says it; a value that
/// cannot be a header value is left out).
pub fn parse_body(
    endpoint: Endpoint,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), BodyError> {
    let rule = if endpoint.takes_forms() {
        BodyRule::JsonOrForm
    } else {
        BodyRule::Json
    };
    let req = request(content_type, body, rule);
    let result = match endpoint {
        Endpoint::SignUp => req.body::<account::SignUp>().map(drop),
        Endpoint::SignIn => req.body::<account::SignIn>().map(drop),
        Endpoint::UpdateUser => req.body::<user::UpdateUser>().map(drop),
        Endpoint::ChangePassword => req.body::<user::ChangePassword>().map(drop),
        Endpoint::VerifyPassword => req.body::<user::VerifyPassword>().map(drop),
        Endpoint::RevokeSession => req.body::<sessions::RevokeSession>().map(drop),
        Endpoint::NoFields => req.body::<()>(),
    };
    result.map_err(body_error)
}

/// One field of every kind [`Fields`] reads, named as Better-Auth's bodies name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EveryField {
    /// `name`: a required string.
    pub name: String,
    /// `email`: a required email address.
    pub email: String,
    /// `password`: a required secret.
    pub password: String,
    /// `image`: an optional string (absent or null: `None`).
    pub image: Option<String>,
    /// `callbackURL`: absent, null or a string.
    pub callback: Option<Option<String>>,
    /// `rememberMe`: an optional boolean.
    pub remember: Option<bool>,
    /// Is `token` present at all?
    pub has_token: bool,
}

impl FromBody for EveryField {
    fn read(f: &mut Fields<'_>) -> Self {
        EveryField {
            name: f.string("name"),
            email: f.email("email"),
            password: f.secret("password").expose_secret().to_string(),
            image: f.opt_string("image"),
            callback: f.nullable_string("callbackURL"),
            remember: f.opt_bool("rememberMe"),
            has_token: f.has("token"),
        }
    }
}

/// The field names [`EveryField`] reads.
pub const EVERY_FIELD_NAMES: [&str; 7] = [
    "name",
    "email",
    "password",
    "image",
    "callbackURL",
    "rememberMe",
    "token",
];

/// Parses `body` into [`EveryField`] (forms allowed when `forms`).
pub fn parse_every_field(
    content_type: Option<&str>,
    body: &[u8],
    forms: bool,
) -> Result<EveryField, BodyError> {
    let rule = if forms {
        BodyRule::JsonOrForm
    } else {
        BodyRule::Json
    };
    request(content_type, body, rule)
        .body::<EveryField>()
        .map_err(body_error)
}

/// [`crate::request::looks_like_email`].
pub fn looks_like_email(s: &str) -> bool {
    crate::request::looks_like_email(s)
}

/// What a stored password hash parses to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredHash {
    Argon2 {
        algorithm: String,
        m_cost: Option<u32>,
        t_cost: Option<u32>,
        p_cost: Option<u32>,
        /// Would a correct password ask for a rehash because of these parameters?
        weaker_than_ours: bool,
    },
    Scrypt {
        salt: String,
        key: Vec<u8>,
    },
}

/// [`Stored::parse`]: `None` for what verification calls an unknown format.
pub fn parse_password_hash(stored: &str) -> Option<StoredHash> {
    let parsed = Stored::parse(stored).ok()?;
    let weaker_than_ours = parsed.weaker_than_ours();
    Some(match parsed {
        Stored::Argon2(hash) => {
            let param = |name: &str| hash.params.get_decimal(name);
            StoredHash::Argon2 {
                algorithm: hash.algorithm.to_string(),
                m_cost: param("m"),
                t_cost: param("t"),
                p_cost: param("p"),
                weaker_than_ours,
            }
        }
        Stored::Scrypt { salt, key } => StoredHash::Scrypt {
            salt: salt.to_string(),
            key,
        },
    })
}

/// Argon2 parameters cheap enough to verify thousands of times a second.
const CHEAP_M_KIB: u32 = 64;
const CHEAP_T: u32 = 2;
const CHEAP_P: u32 = 2;

/// The whole verification of `password` against `stored` as sign-in runs it, but only
/// when that is cheap: argon2 hashes whose parameters are all stated and small. `None`
/// when skipped; otherwise `Some(Ok(ok))`, or `Some(Err(()))` for an unknown format. (A
/// scrypt hash always costs Better-Auth's fixed N = 2^14, and stored hashes come from the
/// database, not from clients.)
pub fn verify_cheap(password: &str, stored: &str) -> Option<Result<bool, ()>> {
    match parse_password_hash(stored) {
        None => Some(Err(())),
        Some(StoredHash::Argon2 {
            m_cost: Some(m),
            t_cost: Some(t),
            p_cost: Some(p),
            ..
        }) if m <= CHEAP_M_KIB && t <= CHEAP_T && p <= CHEAP_P => {
            let password = SecretString::from(password.to_string());
            Some(
                crate::password::verify_blocking(
                    &password,
                    stored,
                    HashScheme::Argon2id,
                    &mut Default::default(),
                )
                .map(|v| v.ok)
                .map_err(|_| ()),
            )
        }
        Some(_) => None,
    }
}

/// The email-link tokens (`email_token.rs`): what [`email_token_verify`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct EmailLink {
    pub email: String,
    pub user_id: String,
    /// `updateTo`, for the change-email links.
    pub update_to: Option<String>,
    /// `verify`, `change-email-confirmation`, `change-email-verification`, `legacy-change`.
    pub kind: &'static str,
}

fn link_of(c: crate::email_token::Claims) -> EmailLink {
    use crate::email_token::Purpose;
    let (kind, update_to) = match c.purpose {
        Purpose::Verify => ("verify", None),
        Purpose::ChangeConfirmation { update_to } => ("change-email-confirmation", Some(update_to)),
        Purpose::ChangeVerification { update_to } => ("change-email-verification", Some(update_to)),
        Purpose::LegacyChange { update_to } => ("legacy-change", Some(update_to)),
    };
    EmailLink {
        email: c.email,
        user_id: c.user_id,
        update_to,
        kind,
    }
}

/// [`crate::email_token::verify`]: `None` for a refused token.
pub fn email_token_verify(secret: &str, token: &str) -> Option<EmailLink> {
    crate::email_token::verify(&SecretString::from(secret.to_string()), token)
        .ok()
        .map(link_of)
}

/// [`crate::email_token::sign`] of a verification (`update_to: None`) or change-confirmation
/// token, valid for an hour.
pub fn email_token_sign(
    secret: &str,
    email: &str,
    user_id: &str,
    update_to: Option<&str>,
) -> String {
    use crate::email_token::{Claims, Purpose};
    let purpose = match update_to {
        None => Purpose::Verify,
        Some(to) => Purpose::ChangeConfirmation {
            update_to: to.to_string(),
        },
    };
    let claims = Claims {
        email: email.to_string(),
        user_id: user_id.to_string(),
        purpose,
    };
    crate::email_token::sign(&SecretString::from(secret.to_string()), &claims, 3600)
}
