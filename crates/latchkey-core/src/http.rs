//! Response bodies and helpers shared by both daemons' routers.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, Limited};
use serde::Serialize;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// One body type for every response, so that a proxied upstream body can stream through.
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;
pub type HttpResponse = Response<Body>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A JSON response. Serialising our own types cannot fail; if it ever did, the client gets a
/// bare 500 rather than a panic.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> HttpResponse {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let mut resp = Response::new(full(bytes));
            *resp.status_mut() = status;
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(_) => status_only(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// A response with a status and an empty body (Better-Auth's 404 has no content-type).
pub fn status_only(status: StatusCode) -> HttpResponse {
    let mut resp = Response::new(empty());
    *resp.status_mut() = status;
    resp
}

#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    /// Not produced here: for callers that bound the read with a timeout.
    TimedOut,
    Read(String),
}

/// Reads a whole request body, refusing more than `limit` bytes without buffering them.
pub async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(BodyError::TooLarge)
            } else {
                Err(BodyError::Read(e.to_string()))
            }
        }
    }
}
