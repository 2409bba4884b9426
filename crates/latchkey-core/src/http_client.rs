//! The one outbound HTTP(S) client: JWKS fetches, the reverse proxy's upstream, and the OAuth
//! providers to come all build theirs here, so TLS roots, the crypto provider and timeouts are
//! chosen in one place.
//!
//! ```no_run
//! # fn demo() -> Result<(), latchkey_core::http_client::BuildError> {
//! use std::time::Duration;
//! use latchkey_core::http_client::{ClientBuilder, HttpsClient};
//! use latchkey_core::http::Body;
//! let client: HttpsClient<Body> = ClientBuilder::new()
//!     .allow_http(true)
//!     .connect_timeout(Some(Duration::from_secs(5)))
//!     .build()?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// A pooled client over rustls (ring, the Mozilla roots plus any extra ones), generic over the
/// request body.
pub type HttpsClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// Why a client could not be built: an unreadable or empty extra-roots file, or a TLS setup
/// failure. Worded for an operator (it names the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

/// Options of an outbound client. The defaults are the safe ones: https only, HTTP/1.1,
/// a 10 s connect timeout and idle connections kept for 90 s.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    extra_roots: Option<PathBuf>,
    allow_http: bool,
    connect_timeout: Option<Duration>,
    pool_idle_timeout: Option<Duration>,
    http1: bool,
    http2: bool,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientBuilder {
    pub fn new() -> Self {
        Self {
            extra_roots: None,
            allow_http: false,
            connect_timeout: Some(Duration::from_secs(10)),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            http1: true,
            http2: false,
        }
    }

    /// A PEM file of CA certificates trusted besides the Mozilla roots.
    pub fn extra_roots(mut self, path: Option<&Path>) -> Self {
        self.extra_roots = path.map(Path::to_path_buf);
        self
    }

    /// Whether `http://` URLs may be requested (otherwise they fail at request time).
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Limit on establishing the TCP connection; `None` waits for the OS.
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an idle pooled connection is kept; `None` keeps it until the peer closes it.
    pub fn pool_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Speak HTTP/1.1 (the default).
    pub fn http1(mut self, enable: bool) -> Self {
        self.http1 = enable;
        self
    }

    /// Offer HTTP/2 by ALPN over TLS. Without HTTP/1.1 as well, plain-http connections use
    /// HTTP/2 with prior knowledge (h2c).
    pub fn http2(mut self, enable: bool) -> Self {
        self.http2 = enable;
        self
    }

    pub fn build<B>(&self) -> Result<HttpsClient<B>, BuildError>
    where
        B: http_body::Body + Send,
        B::Data: Send,
    {
        let tls =
            crate::tls::https_client_config(self.extra_roots.as_deref()).map_err(BuildError)?;
        let mut http = HttpConnector::new();
        // The scheme is the TLS layer's business (it refuses http:// unless allowed).
        http.enforce_http(false);
        http.set_connect_timeout(self.connect_timeout);
        http.set_nodelay(true);
        let schemes = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let protocols = if self.allow_http {
            schemes.https_or_http()
        } else {
            schemes.https_only()
        };
        let connector = match (self.http1, self.http2) {
            (true, false) => protocols.enable_http1().wrap_connector(http),
            (true, true) => protocols.enable_all_versions().wrap_connector(http),
            (false, true) => protocols.enable_http2().wrap_connector(http),
            (false, false) => {
                return Err(BuildError(
                    "an HTTP client needs HTTP/1.1 or HTTP/2 enabled".to_string(),
                ))
            }
        };
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .http2_only(self.http2 && !self.http1);
        Ok(builder.build(connector))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::Empty;

    #[tokio::test]
    async fn plain_http_is_refused_unless_allowed() {
        let client: HttpsClient<Empty<Bytes>> = ClientBuilder::new().build().unwrap();
        // Port 1 on loopback: nothing listens; https-only must fail before connecting.
        let req = http::Request::get("http://127.0.0.1:1/")
            .body(Empty::new())
            .unwrap();
        let err = client.request(req).await.unwrap_err();
        assert!(
            crate::error_chain(&err).contains("unsupported scheme http"),
            "{}",
            crate::error_chain(&err)
        );
        let client: HttpsClient<Empty<Bytes>> =
            ClientBuilder::new().allow_http(true).build().unwrap();
        let req = http::Request::get("http://127.0.0.1:1/")
            .body(Empty::new())
            .unwrap();
        let err = client.request(req).await.unwrap_err();
        assert!(err.is_connect(), "{}", crate::error_chain(&err));
    }

    #[test]
    fn bad_options_are_errors() {
        let none = ClientBuilder::new().http1(false).build::<Empty<Bytes>>();
        assert!(none.is_err());
        let missing = ClientBuilder::new()
            .extra_roots(Some(Path::new("/nonexistent/ca.pem")))
            .build::<Empty<Bytes>>();
        assert!(missing
            .err()
            .is_some_and(|e| e.to_string().contains("/nonexistent/ca.pem")));
        for (h1, h2) in [(true, false), (true, true), (false, true)] {
            assert!(ClientBuilder::new()
                .http1(h1)
                .http2(h2)
                .build::<Empty<Bytes>>()
                .is_ok());
        }
    }
}
