//! Connections as attackers, load balancers and rolling deploys treat them, over raw sockets:
//! silent and preface-only sockets are closed by the header deadline, one address cannot hold
//! more than its share while another still gets answers, keep-alive connections survive idle
//! gaps that load balancers leave, and SIGTERM drains (readiness fails while the listener still
//! accepts) before the listener closes.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use latchkey_e2e::stack::Auth;

/// A TCP connection to 127.0.0.1:`port` from the local address `from` (127.0.0.0/8 is all
/// loopback on Linux, so 127.0.0.2 is another client to the server).
fn connect_from(from: Ipv4Addr, port: u16) -> TcpStream {
    // SAFETY: plain socket calls on a descriptor owned here; it is handed to TcpStream, which
    // closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let sockaddr = |addr: SocketAddrV4| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let local = sockaddr(SocketAddrV4::new(from, 0));
        let rc = libc::bind(fd, &local as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "bind {from}: {}", std::io::Error::last_os_error());
        let remote = sockaddr(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        let rc = libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        stream
    }
}

/// One HTTP/1.1 request on `stream`; the status, or `None` if the server closed instead.
fn get(stream: &mut TcpStream, path: &str) -> Option<u16> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
    stream.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text.split_whitespace().nth(1)?.parse().ok();
            }
        }
    }
}

/// Waits (at most `limit`) for the server to close `stream`; true if it did.
fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn idle_and_silent_connections_cannot_starve_other_clients() {
    let auth = Auth::start_with(|s| {
        s.env("LATCHKEY_MAX_CONNECTIONS_PER_IP", "20")
            .env("LATCHKEY_HEADER_TIMEOUT", "3")
    });
    let port = auth.daemon.port();
    let attacker = Ipv4Addr::new(127, 0, 0, 1);
    // One socket that sends only the HTTP/2 preface and an empty SETTINGS frame (which never
    // completes a request), then more silent sockets than the per-address cap.
    let mut h2 = connect_from(attacker, port);
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut silent: Vec<TcpStream> = (0..30).map(|_| connect_from(attacker, port)).collect();

    // Another client is served meanwhile.
    let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 2), port);
    assert_eq!(get(&mut other, "/healthz"), Some(200));

    // The sockets over the cap were closed at once; the rest by the header deadline. (The
    // reads are bounded far above the deadline: this checks that they close, not how fast.)
    let started = Instant::now();
    for (i, s) in silent.iter_mut().enumerate() {
        assert!(
            closed_by_server(s, Duration::from_secs(30)),
            "silent connection {i} still open"
        );
    }
    assert!(
        closed_by_server(&mut h2, Duration::from_secs(30)),
        "h2 preface-only connection still open"
    );
    eprintln!(
        "all silent connections closed after {:?}",
        started.elapsed()
    );

    // The address may connect again once its sockets are gone.
    let mut again = connect_from(attacker, port);
    assert_eq!(get(&mut again, "/healthz"), Some(200));
}

/// Load balancers keep upstream connections 60 s; latchkey must not close an idle keep-alive
/// connection before that (it used to at 15 s, the header-read timeout).
#[test]
fn keep_alive_connections_survive_an_idle_gap() {
    let auth = Auth::start();
    let mut conn = connect_from(Ipv4Addr::LOCALHOST, auth.daemon.port());
    assert_eq!(get(&mut conn, "/healthz"), Some(200));
    std::thread::sleep(Duration::from_secs(17));
    assert_eq!(get(&mut conn, "/api/auth/ok"), Some(200));
}

/// An idle keep-alive connection is closed after LATCHKEY_IDLE_TIMEOUT.
#[test]
fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let auth = Auth::start_with(|s| s.env("LATCHKEY_IDLE_TIMEOUT", "2"));
    let mut conn = connect_from(Ipv4Addr::LOCALHOST, auth.daemon.port());
    assert_eq!(get(&mut conn, "/healthz"), Some(200));
    assert!(closed_by_server(&mut conn, Duration::from_secs(30)));
}

/// SIGTERM: readiness fails at once while the listener keeps accepting for the drain delay,
/// then the daemon stops listening and exits cleanly.
#[test]
fn sigterm_drains_before_the_listener_closes() {
    let mut auth = Auth::start_with(|s| s.env("LATCHKEY_SHUTDOWN_DELAY", "4"));
    let port = auth.daemon.port();
    auth.client().get("/readyz").send().expect(200);
    let pid = auth.daemon.pid().expect("running");
    latchkey_e2e::proc::signal(pid, libc::SIGTERM);

    // Draining: not ready, but still served, on new connections too.
    let deadline = Instant::now() + Duration::from_secs(3);
    let r = loop {
        let r = auth.client().get("/readyz").send();
        if r.status != 200 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["draining"], true);
    // Each answer now closes its connection, so keep-alive pools move off cleanly.
    assert_eq!(r.header("connection"), Some("close"), "{:?}", r.headers);
    let s = auth.new_user();
    auth.client()
        .get("/api/auth/get-session")
        .bearer(&s.bearer)
        .send()
        .expect(200);

    // Then the listener closes and the process exits 0.
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "still listening 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    auth.daemon.terminate_cleanly();
}

/// The same attack on latchkey-api (it shares the server code, and is what a proxy fronts),
/// with the global cap nearly used up: health checks from another address still answer, the
/// daemon warns that connections run low, and the silent sockets are closed by the deadline.
#[test]
fn latchkey_api_keeps_answering_and_warns_when_connections_run_low() {
    let auth = Auth::start();
    let api = latchkey_e2e::stack::Api::start_with(&auth.url(), |s| {
        s.env("LATCHKEY_MAX_CONNECTIONS", "20")
            .env("LATCHKEY_MAX_CONNECTIONS_PER_IP", "10")
            .env("LATCHKEY_HEADER_TIMEOUT", "3")
    });
    let port = api.daemon.port();
    // 10 silent sockets from one address (its cap), 9 from another: 19 of 20 slots.
    let mut silent: Vec<TcpStream> = (0..10)
        .map(|_| connect_from(Ipv4Addr::new(127, 0, 0, 1), port))
        .chain((0..9).map(|_| connect_from(Ipv4Addr::new(127, 0, 0, 3), port)))
        .collect();
    let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 2), port);
    assert_eq!(get(&mut other, "/healthz"), Some(200));
    let log = api.daemon.log();
    assert!(
        log.contains("connections running low (LATCHKEY_MAX_CONNECTIONS)"),
        "no warning with 20 of 20 connections open:\n{log}"
    );
    for (i, s) in silent.iter_mut().enumerate() {
        assert!(
            closed_by_server(s, Duration::from_secs(30)),
            "silent connection {i} still open"
        );
    }
    drop(other);
    let mut again = connect_from(Ipv4Addr::new(127, 0, 0, 1), port);
    assert_eq!(get(&mut again, "/healthz"), Some(200));
}
