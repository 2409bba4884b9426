//! A real SMTP server for the mail tests: Python's `aiosmtpd` (pinned in
//! `tests/smtp/requirements.txt`, installed once into a venv under the target directory) with
//! its Maildir handler, so every message it accepts is a file the tests read. It listens on
//! the loopback interface without TLS (`LATCHKEY_SMTP_URL=smtp://127.0.0.1:PORT?tls=none`).
//!
//! `LATCHKEY_PYTHON` names the Python 3 to build the venv with (default `python3`).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::node::{output_of, sha256_hex, FileLock};
use crate::proc;

fn requirements() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp/requirements.txt")
}

fn venv_dir() -> PathBuf {
    crate::daemon::bin_dir().join("e2e-smtp-venv")
}

/// Builds the venv once per process (and under a file lock across processes).
fn venv_python() -> PathBuf {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    let python = venv_dir().join("bin/python");
    if *done {
        return python;
    }
    let _lock = FileLock::acquire(&crate::daemon::bin_dir().join("e2e-smtp-venv.lock"));
    let base = std::env::var("LATCHKEY_PYTHON").unwrap_or_else(|_| "python3".into());
    let version = output_of(Command::new(&base).arg("--version"), "python3 --version");
    let reqs = std::fs::read(requirements()).expect("tests/smtp/requirements.txt");
    let want = sha256_hex(&[&reqs, version.as_bytes()]);
    let stamp = venv_dir().join(".latchkey-stamp");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        let _ = std::fs::remove_dir_all(venv_dir());
        output_of(
            Command::new(&base)
                .args(["-m", "venv"])
                .arg(venv_dir())
                .stdin(Stdio::null()),
            "python3 -m venv (is python3-venv installed?)",
        );
        output_of(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "-q",
                    "-r",
                ])
                .arg(requirements())
                .stdin(Stdio::null()),
            "pip install -r tests/smtp/requirements.txt",
        );
        std::fs::write(&stamp, &want).unwrap();
    }
    *done = true;
    python
}

/// One message as the server stored it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub file: String,
    pub to: String,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

impl Mail {
    /// The first `http(s)://` link of the plain-text part that contains `needle`.
    pub fn link(&self, needle: &str) -> String {
        self.text
            .split_whitespace()
            .find(|w| (w.starts_with("http://") || w.starts_with("https://")) && w.contains(needle))
            .unwrap_or_else(|| panic!("no link with {needle:?} in mail:\n{}", self.text))
            .to_string()
    }
}

/// Path and query of an absolute link (the tests' client takes paths).
pub fn path_of(link: &str) -> String {
    let rest = link.split_once("://").map(|(_, r)| r).unwrap_or(link);
    rest.find('/')
        .map(|i| rest[i..].to_string())
        .unwrap_or_default()
}

/// The decoded value of query parameter `name` in `link`.
pub fn query_param(link: &str, name: &str) -> Option<String> {
    let query = link.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| crate::http::percent_decode(v))
    })
}

/// An auth daemon's settings for sending through `smtp`.
pub fn with_mail(
    smtp: &SmtpServer,
) -> impl FnOnce(crate::daemon::DaemonSpec) -> crate::daemon::DaemonSpec + '_ {
    move |s| {
        s.env("LATCHKEY_MAIL_TRANSPORT", "smtp")
            .env("LATCHKEY_SMTP_URL", smtp.url())
            .env("LATCHKEY_MAIL_FROM", "Acme <no-reply@acme.example>")
            .env("LATCHKEY_APP_NAME", "Acme")
    }
}

/// A running (or stopped) aiosmtpd.
pub struct SmtpServer {
    port: u16,
    maildir: PathBuf,
    child: Option<Child>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let maildir = std::env::temp_dir().join(format!(
            "latchkey-e2e-mail-{}-{}",
            std::process::id(),
            crate::random_string(8)
        ));
        let mut server = SmtpServer {
            port: crate::free_port(),
            maildir,
            child: None,
        };
        server.up();
        server
    }

    /// `LATCHKEY_SMTP_URL` for a daemon.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server (again) on the same port and maildir.
    pub fn up(&mut self) {
        assert!(self.child.is_none(), "SMTP server already running");
        let python = venv_python();
        let log =
            std::fs::File::create(crate::daemon::log_dir().join(format!("smtp-{}.log", self.port)))
                .expect("smtp log");
        let mut cmd = Command::new(python);
        cmd.args([
            "-m",
            "aiosmtpd",
            "-n",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            "-l",
        ])
        .arg(format!("127.0.0.1:{}", self.port))
        .arg(&self.maildir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log);
        let child = proc::spawn_tied(cmd, libc::SIGKILL).expect("cannot start aiosmtpd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server: connections are refused until [`SmtpServer::up`].
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> =
            std::fs::read_dir(self.maildir.join("new"))
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| {
                            let t = e
                                .metadata()
                                .and_then(|m| m.modified())
                                .unwrap_or(std::time::UNIX_EPOCH);
                            (t, e.path())
                        })
                        .collect()
                })
                .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| {
                let raw = std::fs::read_to_string(&path).ok()?;
                Some(parse(path.file_name()?.to_string_lossy().into_owned(), raw))
            })
            .collect()
    }

    pub fn messages_to(&self, to: &str) -> Vec<Mail> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.to_ascii_lowercase().contains(&to.to_ascii_lowercase()))
            .collect()
    }

    /// Waits for the `n`th message (1-based) to `to`.
    pub fn wait_for_nth(&self, to: &str, n: usize, timeout: Duration) -> Mail {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages_to(to);
            if got.len() >= n {
                return got[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no message #{n} to {to} within {timeout:?} (have {})",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_for(&self, to: &str, timeout: Duration) -> Mail {
        self.wait_for_nth(to, 1, timeout)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// Headers (unfolded, names lower-cased) and the body of a MIME entity.
fn split_entity(raw: &str) -> (Vec<(String, String)>, String) {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    (headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn decode_body(headers: &[(String, String)], body: &str) -> String {
    match header(headers, "content-transfer-encoding")
        .to_ascii_lowercase()
        .as_str()
    {
        "base64" => {
            let joined: String = body.split_whitespace().collect();
            String::from_utf8_lossy(&STANDARD.decode(joined).expect("base64 body")).into_owned()
        }
        "quoted-printable" => {
            let soft = body.replace("=\n", "");
            let bytes = soft.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'=' && i + 2 < bytes.len() {
                    if let Ok(b) = u8::from_str_radix(&soft[i + 1..i + 3], 16) {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                }
                out.push(bytes[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        _ => body.to_string(),
    }
}

fn parse(file: String, raw: String) -> Mail {
    let (headers, body) = split_entity(&raw);
    let ctype = header(&headers, "content-type").to_string();
    let (mut text, mut html) = (String::new(), String::new());
    if let Some(boundary) = ctype
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
    {
        let boundary = boundary.trim_matches('"');
        for part in body.split(&format!("--{boundary}")).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let (h, b) = split_entity(part.trim_start_matches('\n'));
            let decoded = decode_body(&h, b.trim_end_matches('\n'));
            let ct = header(&h, "content-type").to_ascii_lowercase();
            if ct.starts_with("text/plain") {
                text = decoded;
            } else if ct.starts_with("text/html") {
                html = decoded;
            }
        }
    } else {
        text = decode_body(&headers, &body);
    }
    Mail {
        file,
        to: header(&headers, "to").to_string(),
        from: header(&headers, "from").to_string(),
        subject: header(&headers, "subject").to_string(),
        text,
        html,
        raw,
    }
}
