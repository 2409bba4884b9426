//! Requests to providers: JSON in and out, a deadline on each, no redirects followed (a token
//! endpoint that redirects is refused, as Better-Auth's `reject-redirects` does), a size cap,
//! and only ever to URLs from the configuration or the provider's discovery document.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use latchkey_core::http_client::{ClientBuilder, HttpsClient};
use serde_json::Value;
use url::Url;

/// Provider answers are small JSON documents.
const MAX_BYTES: usize = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a provider request failed, worded for the log (no token, no secret).
#[derive(Debug)]
pub(crate) struct FetchError(pub(crate) String);

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone)]
pub(crate) struct Outbound {
    client: HttpsClient<Full<Bytes>>,
}

/// A form for a token endpoint, and how the client authenticates there.
pub(crate) struct Form<'a> {
    pub(crate) fields: Vec<(&'a str, &'a str)>,
    /// `client_secret_basic`: (client id, secret) in the `Authorization` header.
    pub(crate) basic: Option<(&'a str, &'a str)>,
}

impl Outbound {
    pub(crate) fn new() -> Result<Self, String> {
        let client = ClientBuilder::new()
            // Provider URLs were checked at start-up: https, or http to loopback only.
            .allow_http(true)
            .connect_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client })
    }

    pub(crate) async fn get_json(
        &self,
        url: &Url,
        bearer: Option<&str>,
    ) -> Result<(StatusCode, Value), FetchError> {
        let mut req = request(Method::GET, url);
        if let Some(token) = bearer {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| FetchError(format!("request to {url} not built: {e}")))?;
        self.send(url, req).await
    }

    pub(crate) async fn post_form(
        &self,
        url: &Url,
        form: &Form<'_>,
    ) -> Result<(StatusCode, Value), FetchError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.fields.iter())
            .finish();
        let mut req =
            request(Method::POST, url).header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = form.basic {
            // RFC 6749 §2.3.1: both form-urlencoded before the base64.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(id), enc(secret));
            req = req.header(AUTHORIZATION, format!("Basic {}", STANDARD.encode(pair)));
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| FetchError(format!("request to {url} not built: {e}")))?;
        self.send(url, req).await
    }

    async fn send(
        &self,
        url: &Url,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Value), FetchError> {
        let exchange = async {
            let resp =
                self.client.request(req).await.map_err(|e| {
                    FetchError(format!("{url}: {}", latchkey_core::error_chain(&e)))
                })?;
            let status = resp.status();
            if status.is_redirection() {
                return Err(FetchError(format!(
                    "{url}: answered a redirect ({status}), refused"
                )));
            }
            let bytes = latchkey_core::http::read_limited(resp.into_body(), MAX_BYTES)
                .await
                .map_err(|_| FetchError(format!("{url}: answer too large or cut short")))?;
            // Errors come as JSON too; an empty or non-JSON body is `null`.
            let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok((status, value))
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(FetchError(format!("{url}: no answer within {TIMEOUT:?}"))))
    }
}

fn request(method: Method, url: &Url) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(url.as_str())
        .header(ACCEPT, "application/json")
        // GitHub's API refuses requests without one.
        .header(USER_AGENT, "latchkey")
}
