//! A small blocking HTTP/1.1 client (ureq without TLS) that never turns a status into an
//! error, follows no redirects, and hands back every header; plus a cookie jar.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use serde_json::Value;

/// A client bound to a base URL (`http://127.0.0.1:<port>`). Paths starting with `/` are
/// joined to it; absolute URLs are used as they are.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    pub base: String,
    default_headers: Vec<(String, String)>,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self::with_timeout(base, Duration::from_secs(30))
    }

    /// A client whose requests give up after `timeout` (connect to last body byte).
    pub fn with_timeout(base: &str, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent("latchkey-e2e")
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
            base: base.trim_end_matches('/').to_string(),
            default_headers: Vec::new(),
        }
    }

    /// A header sent with every request of this client (e.g. `Origin`).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.default_headers
            .push((name.to_string(), value.to_string()));
        self
    }

    pub fn request(&self, method: &str, path: &str) -> Req {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        };
        Req {
            client: self.clone(),
            method: method.to_string(),
            url,
            headers: self.default_headers.clone(),
            body: Body::None,
        }
    }

    pub fn get(&self, path: &str) -> Req {
        self.request("GET", path)
    }

    pub fn post(&self, path: &str) -> Req {
        self.request("POST", path)
    }
}

enum Body {
    None,
    Bytes(Vec<u8>),
    /// Sent with `Transfer-Encoding: chunked`.
    Reader(Box<dyn Read + Send>),
}

pub struct Req {
    client: Client,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Req {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Removes a header (including a client default) from this request.
    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Adds the jar's cookies as one `Cookie` header (nothing if the jar is empty).
    pub fn cookies(self, jar: &CookieJar) -> Self {
        match jar.header() {
            Some(h) => self.header("cookie", &h),
            None => self,
        }
    }

    pub fn json(self, value: &Value) -> Self {
        self.body("application/json", serde_json::to_vec(value).unwrap())
    }

    pub fn body(mut self, content_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.headers
            .push(("content-type".to_string(), content_type.to_string()));
        self.body = Body::Bytes(bytes.into());
        self
    }

    /// A streamed (chunked) body.
    pub fn body_reader(mut self, content_type: &str, reader: impl Read + Send + 'static) -> Self {
        self.headers
            .push(("content-type".to_string(), content_type.to_string()));
        self.body = Body::Reader(Box::new(reader));
        self
    }

    /// Sends the request; panics on a transport error (never on an HTTP status).
    pub fn send(self) -> Resp {
        let what = format!("{} {}", self.method, self.url);
        self.try_send()
            .unwrap_or_else(|e| panic!("{what}: transport error: {e}"))
    }

    pub fn try_send(self) -> Result<Resp, ureq::Error> {
        let mut builder = ureq::http::Request::builder()
            .method(self.method.as_str())
            .uri(&self.url);
        for (k, v) in &self.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let agent = &self.client.agent;
        let result = match self.body {
            Body::None => {
                let req = builder.body(()).expect("bad request");
                agent.run(req)
            }
            Body::Bytes(bytes) => {
                let req = builder.body(bytes).expect("bad request");
                agent.run(req)
            }
            Body::Reader(mut reader) => {
                let send = ureq::SendBody::from_reader(&mut reader);
                let req = builder.body(send).expect("bad request");
                agent.run(req)
            }
        };
        let mut resp = result?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()?;
        Ok(Resp {
            status,
            headers,
            body,
        })
    }
}

/// A complete response.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    /// Lower-cased names, in wire order, repeated headers kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first header of that name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the status and body otherwise.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): status {} body {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// Asserts the status, showing the body when it differs; returns self for chaining.
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}; headers: {:?}",
            self.text(),
            self.headers
        );
        self
    }

    /// Asserts an error answer `{ "code": code, "message": … }` with the given status.
    pub fn expect_error(&self, status: u16, code: &str) -> &Self {
        self.expect(status);
        let v = self.json();
        assert_eq!(v["code"], code, "error body: {v}");
        assert!(v["message"].is_string(), "error body has no message: {v}");
        self
    }

    pub fn set_cookies(&self) -> Vec<SetCookie> {
        self.headers_all("set-cookie")
            .into_iter()
            .filter_map(SetCookie::parse)
            .collect()
    }

    /// The `Set-Cookie` for that cookie name, if any.
    pub fn set_cookie(&self, name: &str) -> Option<SetCookie> {
        self.set_cookies().into_iter().find(|c| c.name == name)
    }
}

/// One parsed `Set-Cookie` header.
#[derive(Clone, Debug)]
pub struct SetCookie {
    pub name: String,
    /// As on the wire (still percent-encoded).
    pub value: String,
    /// Attribute names lower-cased; flag attributes map to "".
    pub attrs: BTreeMap<String, String>,
    pub raw: String,
}

impl SetCookie {
    pub fn parse(raw: &str) -> Option<SetCookie> {
        let mut parts = raw.split(';');
        let (name, value) = parts.next()?.split_once('=')?;
        let attrs = parts
            .map(|p| {
                let p = p.trim();
                match p.split_once('=') {
                    Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
                    None => (p.to_ascii_lowercase(), String::new()),
                }
            })
            .collect();
        Some(SetCookie {
            name: name.trim().to_string(),
            value: value.trim().to_string(),
            attrs,
            raw: raw.to_string(),
        })
    }

    pub fn max_age(&self) -> Option<i64> {
        self.attrs.get("max-age").and_then(|v| v.parse().ok())
    }

    /// Deleted: empty value or `Max-Age=0`.
    pub fn is_removal(&self) -> bool {
        self.value.is_empty() || self.max_age().is_some_and(|a| a <= 0)
    }

    /// The value percent-decoded.
    pub fn decoded_value(&self) -> String {
        percent_decode(&self.value)
    }
}

/// Decodes `%XX` escapes (as `decodeURIComponent` does for valid input).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
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

/// Name → value (wire form), updated from responses like a browser would.
#[derive(Clone, Debug, Default)]
pub struct CookieJar {
    pub cookies: BTreeMap<String, String>,
}

impl CookieJar {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores new cookies and forgets removed ones.
    pub fn update(&mut self, resp: &Resp) {
        for c in resp.set_cookies() {
            if c.is_removal() {
                self.cookies.remove(&c.name);
            } else {
                self.cookies.insert(c.name, c.value);
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_string(), value.to_string());
    }

    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// The `Cookie` request header.
    pub fn header(&self) -> Option<String> {
        if self.cookies.is_empty() {
            return None;
        }
        Some(
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

/// `encodeURIComponent`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends a request head and a body over a raw socket while reading the answer concurrently,
/// so that a server answering early (413) and closing is seen as an answer rather than a
/// broken pipe. Returns the raw response bytes read before the connection ended.
pub fn raw_exchange(port: u16, head: &str, body: Vec<u8>) -> Vec<u8> {
    use std::io::Write;
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let head = head.to_string();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        for chunk in body.chunks(16 * 1024) {
            if writer.write_all(chunk).is_err() {
                break;
            }
        }
    });
    let mut reader = stream;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        // One response is enough: stop once the head is complete and the body is in.
        if let Some(end) = find(&out, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|l| out.len() >= end + 4 + l) {
                break;
            }
        }
    }
    let _ = reader.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    out
}

/// As [`raw_exchange`], but the client closes its sending side (a TCP half-close, FIN) right
/// after the body: a body shorter than its `Content-Length` is then cut off for the server,
/// which can still answer.
pub fn raw_exchange_then_close(port: u16, head: &str, body: Vec<u8>) -> Vec<u8> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status code of a raw HTTP/1.1 response.
pub fn raw_status(resp: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(resp);
    text.split_whitespace().nth(1)?.parse().ok()
}
