//! TLS to Postgres on rustls, as managed providers hand it out:
//!
//! * `sslmode=verify-full` (and `require`, which latchkey verifies too): the chain and the
//!   host name; `verify-ca`: the chain only, as libpq does (for providers reached by IP
//!   address or through a name their certificate does not carry).
//! * SCRAM-SHA-256-PLUS channel binding (`channel_binding=require`): the stream offers
//!   `tls-server-end-point` (RFC 5929: the server certificate's hash, SHA-256 for MD5/SHA-1
//!   signatures). tokio-postgres-rustls 0.13 parses the certificate as a bare
//!   TBSCertificate, fails, and offers none, hence "server did not use channel binding".
//! * A certificate from an unknown issuer is an error that names the host and says what to
//!   do (`sslrootcert=` with the provider's CA bundle).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// Makes a TLS connection per Postgres connection.
#[derive(Clone)]
pub struct MakeRustls {
    connector: tokio_rustls::TlsConnector,
}

impl MakeRustls {
    pub fn new(config: rustls::ClientConfig) -> Self {
        Self {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }
}

/// Checks the chain against the roots and ignores the name, as libpq's `verify-ca`.
#[derive(Debug)]
pub(crate) struct ChainOnly(pub(crate) Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<RustlsConnect> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| io::Error::other(format!("{host:?} is not a valid TLS server name")))?;
        Ok(RustlsConnect {
            connector: self.connector.clone(),
            name,
            host: host.to_string(),
        })
    }
}

pub struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    host: String,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            self.connector
                .connect(self.name, stream)
                .await
                .map(RustlsStream)
                .map_err(|e| explain(e, &self.host))
        })
    }
}

/// Certificate errors an operator meets, with what to do about them.
fn explain(e: io::Error, host: &str) -> io::Error {
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<TlsError>())
    else {
        return e;
    };
    let hint = match tls {
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the certificate of {host} is not signed by a CA latchkey trusts (it verifies the \
             server for sslmode=require too): add sslrootcert=/path/to/ca.pem to DATABASE_URL \
             with the provider's CA bundle (for RDS, AWS's global bundle)"
        ),
        TlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the certificate of the database server is not valid for the name {host}: connect \
             by the name it carries, or use sslmode=verify-ca to check the chain only"
        ),
        _ => return e,
    };
    io::Error::other(format!("{tls}: {hint}"))
}

pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> TlsStream for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        match session.peer_certificates().and_then(|c| c.first()) {
            Some(cert) => end_point(cert.as_ref())
                .map(ChannelBinding::tls_server_end_point)
                .unwrap_or_else(ChannelBinding::none),
            None => ChannelBinding::none(),
        }
    }
}

/// `tls-server-end-point` (RFC 5929 §4.1): the hash of the whole certificate, with the hash
/// of its signature algorithm, MD5 and SHA-1 replaced by SHA-256.
fn end_point(der: &[u8]) -> Option<Vec<u8>> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let oid = cert.signature_algorithm.oid.to_string();
    let algorithm = match oid.as_str() {
        // md5WithRSA, sha1WithRSA, sha256WithRSA, ecdsa-with-SHA1, ecdsa-with-SHA256
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.10045.4.1"
        | "1.2.840.10045.4.3.2" => &ring::digest::SHA256,
        // sha384WithRSA, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => &ring::digest::SHA384,
        // sha512WithRSA, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => &ring::digest::SHA512,
        // RSASSA-PSS and Ed25519 name no single hash here; no binding rather than a wrong one.
        _ => return None,
    };
    Some(ring::digest::digest(algorithm, der).as_ref().to_vec())
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
