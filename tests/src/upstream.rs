//! A tiny HTTP/1.1 upstream for the reverse-proxy tests: answers every request with
//! `200 application/json` describing what it received (plus any extra headers it was given,
//! such as its own CORS headers), and records it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

/// What the upstream saw.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Lower-cased names, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunked: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Upstream {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        Self::start_with_headers(&[])
    }

    /// An upstream that adds `headers` to every response (e.g. `access-control-allow-origin`,
    /// as an app doing its own CORS would).
    pub fn start_with_headers(headers: &[(&str, &str)]) -> Upstream {
        let extra: Arc<Vec<(String, String)>> = Arc::new(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let rec = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let rec = rec.clone();
                let extra = extra.clone();
                std::thread::spawn(move || {
                    let _ = serve_connection(stream, &rec, &extra);
                });
            }
        });
        Upstream { port, received }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn serve_connection(
    stream: TcpStream,
    rec: &Mutex<Vec<Received>>,
    extra: &[(String, String)],
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    // Keep-alive: serve requests until the peer closes.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut it = line.split_whitespace();
        let method = it.next().unwrap_or_default().to_string();
        let target = it.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let chunked =
            get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size_line = String::new();
                reader.read_line(&mut size_line)?;
                let size_hex = size_line.trim().split(';').next().unwrap_or("0");
                let size = usize::from_str_radix(size_hex, 16).unwrap_or(0);
                if size == 0 {
                    // Trailers until an empty line.
                    loop {
                        let mut t = String::new();
                        if reader.read_line(&mut t)? == 0 || t.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                reader.read_exact(&mut body[start..])?;
                let mut crlf = [0u8; 2];
                reader.read_exact(&mut crlf)?;
            }
        } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.resize(len, 0);
            reader.read_exact(&mut body)?;
        }
        let mut header_obj = Map::new();
        for (k, v) in &headers {
            match header_obj.get_mut(k) {
                Some(Value::Array(a)) => a.push(json!(v)),
                Some(existing) => {
                    let prev = existing.take();
                    *existing = json!([prev, v]);
                }
                None => {
                    header_obj.insert(k.clone(), json!(v));
                }
            }
        }
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&body);
        let answer = json!({
            "method": method,
            "target": target,
            "headers": header_obj,
            "bodyLength": body.len(),
            "bodySha256": digest.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "chunked": chunked,
            "body": if body.len() <= 4096 { json!(String::from_utf8_lossy(&body)) } else { Value::Null },
        });
        rec.lock().unwrap().push(Received {
            method,
            target,
            headers: headers.clone(),
            body,
            chunked,
        });
        let bytes = serde_json::to_vec(&answer).unwrap();
        let extra: String = extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        write!(
            writer,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-upstream: echo\r\n{extra}content-length: {}\r\n\r\n",
            bytes.len()
        )?;
        writer.write_all(&bytes)?;
        writer.flush()?;
    }
}
