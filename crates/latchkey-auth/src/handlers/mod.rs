//! One module per group of endpoints; each handler reads top to bottom: parse, check, act,
//! respond.

pub(crate) mod account;
pub(crate) mod accounts;
pub(crate) mod change_email;
pub(crate) mod delete_user;
pub(crate) mod email;
pub(crate) mod jwt;
pub(crate) mod sessions;
pub(crate) mod social;
pub(crate) mod user;

use http::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use crate::error::AuthError;
use crate::state::State;

const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 128;

/// Better-Auth's length policy, counted in UTF-16 code units like a JS string.
fn check_password_length(password: &SecretString) -> Result<(), AuthError> {
    let len = password.expose_secret().encode_utf16().count();
    if len < MIN_PASSWORD {
        return Err(AuthError::bad_request(
            "PASSWORD_TOO_SHORT",
            "Password too short",
        ));
    }
    if len > MAX_PASSWORD {
        return Err(AuthError::bad_request(
            "PASSWORD_TOO_LONG",
            "Password too long",
        ));
    }
    Ok(())
}

fn check_callback(state: &State, callback: Option<&str>) -> Result<(), AuthError> {
    match callback {
        Some(cb) if !state.origins.trusts_callback(cb) => Err(AuthError::api(
            StatusCode::FORBIDDEN,
            "INVALID_CALLBACK_URL",
            "Invalid callbackURL",
        )),
        _ => Ok(()),
    }
}
