//! TLS for tests: certificates made with the `openssl` command line, and a minimal blocking
//! HTTPS client on rustls (the test HTTP client speaks plain HTTP only).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// A test CA and a server certificate it signed for `localhost` and `127.0.0.1`.
/// (webpki refuses a CA certificate as a server's own, so a lone self-signed one won't do.)
pub struct TestCert {
    /// The CA certificate: what clients trust.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl ({e}); apt-get install openssl"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl TestCert {
    /// Writes `ca.pem`, `cert.pem` and `key.pem` (and the CA's key) into `dir`.
    pub fn localhost(dir: &Path) -> Result<TestCert, String> {
        Self::for_names(dir, &["localhost"], &["127.0.0.1"])
    }

    /// Like [`TestCert::localhost`], for a server certificate whose subjectAltName lists the
    /// DNS names `dns` (the first is also its CN) and the IP addresses `ips`, e.g.
    /// `&["auth.example.test", "api.example.test", "localhost"]` and `&["127.0.0.1"]`.
    pub fn for_names(dir: &Path, dns: &[&str], ips: &[&str]) -> Result<TestCert, String> {
        let cn = dns
            .first()
            .copied()
            .or(ips.first().copied())
            .ok_or("no name given")?;
        let subject = format!("/CN={cn}");
        let san = dns
            .iter()
            .map(|n| format!("DNS:{n}"))
            .chain(ips.iter().map(|ip| format!("IP:{ip}")))
            .collect::<Vec<_>>()
            .join(",");
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca_args = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=latchkey test CA",
        ];
        ca_args.extend(ec);
        ca_args.extend(["-keyout", "ca-key.pem", "-out", "ca.pem"]);
        openssl(&ca_args, dir)?;
        let mut csr_args = vec!["req", "-subj", subject.as_str()];
        csr_args.extend(ec);
        csr_args.extend(["-keyout", "key.pem", "-out", "server.csr"]);
        openssl(&csr_args, dir)?;
        std::fs::write(
            dir.join("server.ext"),
            format!("basicConstraints=CA:FALSE\nsubjectAltName={san}\n"),
        )
        .map_err(|e| e.to_string())?;
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "cert.pem",
            ],
            dir,
        )?;
        Ok(TestCert {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        })
    }
}

/// A response from [`https_get`].
pub struct HttpsResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpsResp {
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// One HTTP/1.1 request over TLS to `127.0.0.1:port`, verifying the server as `server_name`
/// against the CA in `ca`. `body` is sent as JSON when given.
pub fn https_request(
    port: u16,
    ca: &Path,
    server_name: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<HttpsResp, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    for cert in certs {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
        .map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut tls = rustls::StreamOwned::new(conn, sock);

    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {server_name}:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    head.push_str(body.unwrap_or(""));
    tls.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // Some servers close without close_notify; what arrived is still the response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    parse(&raw)
}

fn parse(raw: &[u8]) -> Result<HttpsResp, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("no end of headers in the response")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(HttpsResp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}
