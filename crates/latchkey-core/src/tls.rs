//! rustls configuration: the optional HTTPS listener and TLS to Postgres. `ring` is the one
//! crypto provider, passed explicitly so no process-wide default has to be installed.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ConfigError, TlsFiles};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads the listener's certificate chain and key; ALPN offers h2 and http/1.1.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    let certs = read_certs(&files.cert).map_err(|e| ConfigError::new("LATCHKEY_TLS_CERT", e))?;
    let key = read_key(&files.key).map_err(|e| ConfigError::new("LATCHKEY_TLS_KEY", e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::new("LATCHKEY_TLS_CERT", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ConfigError::new("LATCHKEY_TLS_KEY", format!("unusable key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Client config for Postgres: the given CA bundle, or the Mozilla roots. `verify_host: false`
/// is libpq's `verify-ca`: the chain is checked, the host name is not.
pub fn postgres_client_config(
    root_cert: Option<&str>,
    verify_host: bool,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            for cert in read_certs(Path::new(path))? {
                roots
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {path}: {e}"))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if verify_host {
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        let chain = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(|e| e.to_string())?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::pgtls::ChainOnly(chain)))
            .with_no_client_auth()
    };
    Ok(config)
}

/// Client config for outgoing HTTPS (JWKS fetches): the Mozilla roots plus an optional bundle.
pub fn https_client_config(extra_roots: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_roots {
        for cert in read_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Every `CERTIFICATE` section of a PEM file (other sections are skipped).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {}", path.display(), pem_error(e)))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    Ok(certs)
}

/// The first private key of a PEM file: PKCS#8, PKCS#1 (`RSA PRIVATE KEY`) or SEC1
/// (`EC PRIVATE KEY`).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            format!("{}: no PEM private key found", path.display())
        }
        e => format!("{}: {}", path.display(), pem_error(e)),
    })
}

/// An I/O error as the OS says it ("No such file or directory (os error 2)"), without the
/// "I/O error: " that the PEM parser puts in front.
fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("latchkey-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    // The PEM layer only frames and decodes base64; these bodies are not real DER.
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nAwQF\n-----END PRIVATE KEY-----\n";
    const RSA_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\nBgcI\n-----END RSA PRIVATE KEY-----\n";

    #[test]
    fn certificates_are_every_certificate_section() {
        let both = file("chain.pem", &format!("junk before\n{CERT}{KEY}{CERT}"));
        let certs = read_certs(&both).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].as_ref(), [0, 1, 2]);
        let none = file("key-only.pem", KEY);
        assert!(read_certs(&none)
            .unwrap_err()
            .ends_with("no PEM certificate found"));
        let cut = file("cut.pem", "-----BEGIN CERTIFICATE-----\nAAEC\n");
        assert!(read_certs(&cut)
            .unwrap_err()
            .contains("missing section end"));
        let missing = std::env::temp_dir().join("latchkey-no-such-file.pem");
        let err = read_certs(&missing).unwrap_err();
        assert!(
            err.contains("latchkey-no-such-file.pem: No such file"),
            "{err}"
        );
    }

    #[test]
    fn the_key_is_the_first_private_key_section() {
        let pkcs8 = file("key.pem", &format!("{CERT}{KEY}{RSA_KEY}"));
        match read_key(&pkcs8).unwrap() {
            PrivateKeyDer::Pkcs8(k) => assert_eq!(k.secret_pkcs8_der(), [3, 4, 5]),
            other => panic!("{other:?}"),
        }
        let pkcs1 = file("rsa.pem", RSA_KEY);
        assert!(matches!(read_key(&pkcs1).unwrap(), PrivateKeyDer::Pkcs1(_)));
        let none = file("cert-only.pem", CERT);
        assert!(read_key(&none)
            .unwrap_err()
            .ends_with("no PEM private key found"));
        let missing = std::env::temp_dir().join("latchkey-no-such-key.pem");
        assert!(read_key(&missing).unwrap_err().contains("No such file"));
    }
}
