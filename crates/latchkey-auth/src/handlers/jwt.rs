//! `/token` (a JWT for the caller's session) and the JWKS.

use latchkey_core::http::HttpResponse;
use serde_json::json;

use crate::error::AuthError;
use crate::reply::Reply;
use crate::request::Req;
use crate::state::{Caller, State};

pub(crate) async fn token(
    st: &State,
    _: &Req,
    Caller { session, user }: Caller,
    _: (),
) -> Result<Reply, AuthError> {
    let jwt = st.jwt_for(&session, &user).await?;
    Ok(Reply::json(json!({ "token": jwt })).no_store())
}

/// Served from the in-memory copy that the key maintainer refreshes; no query per request.
pub(crate) fn jwks(st: &State) -> HttpResponse {
    Reply::raw_json(st.keys.jwks())
}
