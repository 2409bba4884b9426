//! The accept loop: plain TCP or rustls, HTTP/1.1 and HTTP/2, bounded header sizes, bounded
//! connections (in all and per client address), deadlines for silent and idle connections,
//! and a shutdown that first drains (readiness fails while the listener still accepts), then
//! lets in-flight requests finish (up to a deadline).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::config::{ConfigError, Source};
use crate::http::HttpResponse;

/// Request heads larger than this are refused by hyper before our code sees them.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long open connections outlive the listener in a drain (see the end of [`serve`]).
const LINGER: Duration = Duration::from_secs(1);
/// How often at most the "connections running low" warning is logged.
const LOW_WARN_EVERY: Duration = Duration::from_secs(60);

/// Connection limits and timeouts, the same settings for both daemons.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// From accept to the first complete request head (TLS handshake included): a socket that
    /// sends nothing, or only an HTTP/2 preface, is closed after this (`LATCHKEY_HEADER_TIMEOUT`).
    pub header_timeout: Duration,
    /// A connection with no request in flight is closed after this long without a new one
    /// (`LATCHKEY_IDLE_TIMEOUT`); above the 60 s that nginx and AWS load balancers keep
    /// upstream connections, so that they close first and never send into a closing socket.
    /// HTTP/1 also gets it as hyper's header-read timeout (hyper counts idle time in it).
    pub idle_timeout: Duration,
    /// Open connections in all; more wait in the kernel's accept queue
    /// (`LATCHKEY_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Open connections from one peer address (`LATCHKEY_MAX_CONNECTIONS_PER_IP`). Behind a
    /// reverse proxy every connection comes from the proxy: size it for the proxy.
    pub max_connections_per_ip: usize,
    /// After SIGTERM, how long readiness fails while the listener still accepts, so that
    /// load balancers take the replica out before it stops listening
    /// (`LATCHKEY_SHUTDOWN_DELAY`; 0 stops accepting at once).
    pub shutdown_delay: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 10_000,
            max_connections_per_ip: 256,
            shutdown_delay: Duration::from_secs(5),
        }
    }
}

impl ServerLimits {
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let d = Self::default();
        let hour = Duration::from_secs(3600);
        let limits = Self {
            header_timeout: src.seconds_within(
                "LATCHKEY_HEADER_TIMEOUT",
                d.header_timeout,
                hour,
            )?,
            idle_timeout: src.seconds_within("LATCHKEY_IDLE_TIMEOUT", d.idle_timeout, hour)?,
            max_connections: src.parse_or("LATCHKEY_MAX_CONNECTIONS", d.max_connections)?,
            max_connections_per_ip: src
                .parse_or("LATCHKEY_MAX_CONNECTIONS_PER_IP", d.max_connections_per_ip)?,
            shutdown_delay: src.seconds_within(
                "LATCHKEY_SHUTDOWN_DELAY",
                d.shutdown_delay,
                Duration::from_secs(300),
            )?,
        };
        for (name, value) in [
            (
                "LATCHKEY_HEADER_TIMEOUT",
                limits.header_timeout.as_secs() as usize,
            ),
            (
                "LATCHKEY_IDLE_TIMEOUT",
                limits.idle_timeout.as_secs() as usize,
            ),
            ("LATCHKEY_MAX_CONNECTIONS", limits.max_connections),
            (
                "LATCHKEY_MAX_CONNECTIONS_PER_IP",
                limits.max_connections_per_ip,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::new(name, "must be at least 1"));
            }
        }
        Ok(limits)
    }
}

/// Set once the daemon starts stopping: readiness (`/readyz`) answers 503 from then on.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Open connections per peer address; IPv6 peers by their /64, as the rate limiter counts
/// them (one host usually gets a whole /64, so per address the cap would not bind it).
struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted against its address; uncounted when dropped.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn enter(table: &Arc<PerIp>, ip: IpAddr) -> Option<IpSlot> {
        let ip = address_group(ip);
        let mut open = table.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= table.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: table.clone(),
            ip,
        })
    }
}

/// What the per-address cap counts `ip` under: an IPv4 address (IPv4-mapped IPv6 too), or
/// an IPv6 address's /64.
fn address_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// What the watchdog of one connection knows: requests seen, requests in flight (until their
/// response body is done), and when the last one finished.
struct Activity {
    started: Instant,
    requests: AtomicU64,
    in_flight: AtomicUsize,
    /// Milliseconds after `started`.
    last_done_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        })
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// When the connection is to be closed, as things stand; `None` while a request is in
    /// flight (it is checked again an idle timeout later).
    fn deadline(&self, limits: &ServerLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        if self.requests.load(Ordering::Relaxed) == 0 {
            return Some(self.started + limits.header_timeout);
        }
        let last = Duration::from_millis(self.last_done_ms.load(Ordering::Relaxed));
        Some(self.started + last + limits.idle_timeout)
    }
}

/// A request in flight; dropped when its response body has been sent (or abandoned).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let at = self.0.started.elapsed().as_millis() as u64;
        self.0.last_done_ms.store(at, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Hands the memory of closed connections back to the system. Each open connection holds
/// about 25 KB (buffers, task, TLS state); when thousands close, glibc keeps the freed
/// memory in its arenas for reuse, so RSS stayed at its peak (135 MB with 5,000 idle
/// connections, 115 MB after they closed). Every few seconds, once the open count has fallen
/// to half of its peak since the last trim and by at least [`TRIM_AFTER`] connections, the
/// free memory is returned with `malloc_trim` (not per close: a trim walks the whole heap).
struct Trimmer {
    peak: AtomicUsize,
}

/// Fewer closed connections than this are not worth a trim (about 1.6 MB).
const TRIM_AFTER: usize = 64;
const TRIM_EVERY: Duration = Duration::from_secs(5);

impl Trimmer {
    fn opened(&self, open: usize) {
        self.peak.fetch_max(open, Ordering::Relaxed);
    }

    /// Whether a trim is due with `open` connections now; resets the peak if so.
    fn due(&self, open: usize) -> bool {
        let peak = self.peak.load(Ordering::Relaxed);
        if open > peak / 2 || peak - open < TRIM_AFTER {
            return false;
        }
        self.peak.store(open, Ordering::Relaxed);
        true
    }

    async fn run(self: Arc<Self>, slots: Arc<tokio::sync::Semaphore>, max: usize) {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.due(max - slots.available_permits()) {
                release_free_memory();
            }
        }
    }
}

/// Returns the allocator's free memory to the system (glibc; elsewhere nothing to do).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under its own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Resolves when the connection has been silent or idle past its deadline.
async fn watchdog(activity: Arc<Activity>, limits: ServerLimits) {
    loop {
        match activity.deadline(&limits) {
            Some(deadline) if Instant::now() >= deadline => return,
            Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
            None => tokio::time::sleep(limits.idle_timeout).await,
        }
    }
}

/// Serves `handler` on `listener` until `shutdown` resolves, then drains: `draining` is set
/// (readiness fails) while the listener accepts for `limits.shutdown_delay` more, then the
/// listener closes and open connections finish their requests.
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ServerLimits,
    draining: Draining,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        // Pings find peers that vanished without a FIN; the watchdog closes idle ones.
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp {
        max: limits.max_connections_per_ip,
        open: Mutex::new(HashMap::new()),
    });
    let mut last_low_warning: Option<Instant> = None;
    let trimmer = Arc::new(Trimmer {
        peak: AtomicUsize::new(0),
    });
    let trimming = tokio::spawn(trimmer.clone().run(slots.clone(), limits.max_connections));
    tokio::pin!(shutdown);
    // Once the shutdown comes: accept on until this deadline, then stop.
    let mut stop_at: Option<tokio::time::Instant> = None;

    loop {
        let stop = async {
            match stop_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown, if stop_at.is_none() => {
                draining.start();
                stop_at = Some(tokio::time::Instant::now() + limits.shutdown_delay);
                continue;
            }
            () = stop => break,
        };
        let stop = async {
            match stop_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown, if stop_at.is_none() => {
                draining.start();
                stop_at = Some(tokio::time::Instant::now() + limits.shutdown_delay);
                continue;
            }
            () = stop => break,
        };
        let left = slots.available_permits();
        trimmer.opened(limits.max_connections - left);
        if left < limits.max_connections / 10
            && last_low_warning.is_none_or(|at| at.elapsed() >= LOW_WARN_EVERY)
        {
            last_low_warning = Some(Instant::now());
            tracing::warn!(
                open = limits.max_connections - left,
                max = limits.max_connections,
                "connections running low (LATCHKEY_MAX_CONNECTIONS)"
            );
        }
        let Some(ip_slot) = PerIp::enter(&per_ip, peer.ip()) else {
            tracing::debug!(%peer, "refusing a connection over LATCHKEY_MAX_CONNECTIONS_PER_IP");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let handler = handler.clone();
        let requests = activity.clone();
        let draining_now = draining.clone();
        let service = service_fn(move |mut req: Request<Incoming>| {
            let id = RequestId::next();
            req.extensions_mut().insert(id);
            let in_flight = requests.begin();
            // While draining, an HTTP/1 answer closes its connection: the client (a load
            // balancer's keep-alive pool) learns it from the answer itself and never sends
            // into a connection the server is about to close.
            let close_after = draining_now.is_draining()
                && matches!(
                    req.version(),
                    http::Version::HTTP_11 | http::Version::HTTP_10
                );
            let fut = handler(req, peer).instrument(tracing::info_span!("request", id = %id));
            async move {
                let mut resp = fut.await;
                if close_after {
                    resp.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                // The request counts as in flight until its body is sent: a long download is
                // not an idle connection.
                Ok::<_, Infallible>(resp.map(|body| {
                    body.map_frame(move |frame| {
                        let _ = &in_flight;
                        frame
                    })
                    .boxed()
                }))
            }
        });
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        let limits = limits.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ip_slot = ip_slot;
            let serve = async {
                match acceptor {
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                    Some(acceptor) => {
                        let stream = match acceptor.accept(stream).await {
                            Ok(s) => s,
                            Err(e) => return Err(format!("TLS handshake: {e}").into()),
                        };
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                }
            };
            tokio::select! {
                result = serve => {
                    if let Err(e) = result {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                }
                () = watchdog(activity, limits) => {
                    tracing::debug!("closing a silent or idle connection from {peer}");
                }
            }
        });
    }

    drop(listener);
    trimming.abort();
    if !limits.shutdown_delay.is_zero() {
        // Connections stay open a moment after the listener closes: a load balancer that
        // still holds idle keep-alive connections to us learns that we are gone from a
        // refused connect (and takes us out) before we close those, instead of sending a
        // request into one just as it closes. Requests on them are answered, with
        // `Connection: close`.
        tokio::time::sleep(LINGER.min(limits.shutdown_delay)).await;
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
        }
    }
}

/// Names one request in the logs: every line written while it is handled carries it (the
/// `request` span), the access log line too, and the response's `X-Request-Id`. Unique per
/// process start (a random prefix) and request (a counter), so replicas' logs do not collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    boot: u32,
    seq: u64,
}

impl RequestId {
    fn next() -> Self {
        use std::sync::OnceLock;
        static BOOT: OnceLock<u32> = OnceLock::new();
        static SEQ: AtomicU64 = AtomicU64::new(1);
        let boot = *BOOT.get_or_init(|| {
            // RandomState is seeded from the OS; good enough to tell process starts apart.
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            h.finish() as u32
        });
        Self {
            boot,
            seq: SEQ.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The id of a request served by [`serve`]; a fixed placeholder for one that was not.
    pub fn of<B>(req: &Request<B>) -> Self {
        req.extensions()
            .get::<RequestId>()
            .copied()
            .unwrap_or(RequestId { boot: 0, seq: 0 })
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}-{}", self.boot, self.seq)
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_is_due_once_half_the_peak_has_closed() {
        let t = Trimmer {
            peak: AtomicUsize::new(0),
        };
        t.opened(10);
        assert!(!t.due(0), "too few connections to matter");
        t.opened(5_000);
        assert!(!t.due(4_000), "most still open");
        assert!(t.due(2_000));
        assert!(!t.due(2_000), "the peak starts again from what is open");
        t.opened(2_100);
        assert!(t.due(0));
    }

    #[test]
    fn ipv6_peers_share_a_cap_per_64() {
        let table = Arc::new(PerIp {
            max: 2,
            open: Mutex::new(HashMap::new()),
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let _a = PerIp::enter(&table, ip("2001:db8:0:1::1")).unwrap();
        let _b = PerIp::enter(&table, ip("2001:db8:0:1:ffff::2")).unwrap();
        assert!(
            PerIp::enter(&table, ip("2001:db8:0:1::3")).is_none(),
            "same /64"
        );
        assert!(
            PerIp::enter(&table, ip("2001:db8:0:2::1")).is_some(),
            "next /64"
        );
        let _c = PerIp::enter(&table, ip("::ffff:192.0.2.1")).unwrap();
        let _d = PerIp::enter(&table, ip("192.0.2.1")).unwrap();
        assert!(
            PerIp::enter(&table, ip("192.0.2.1")).is_none(),
            "mapped = plain IPv4"
        );
        assert!(PerIp::enter(&table, ip("192.0.2.2")).is_some());
    }

    #[test]
    fn per_ip_slots_are_counted_and_returned() {
        let table = Arc::new(PerIp {
            max: 2,
            open: Mutex::new(HashMap::new()),
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let one = PerIp::enter(&table, a).unwrap();
        let _two = PerIp::enter(&table, a).unwrap();
        assert!(PerIp::enter(&table, a).is_none());
        assert!(PerIp::enter(&table, b).is_some());
        drop(one);
        assert!(PerIp::enter(&table, a).is_some());
    }

    #[test]
    fn deadlines_follow_the_connection_state() {
        let limits = ServerLimits {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(60),
            ..ServerLimits::default()
        };
        let activity = Activity::new();
        assert_eq!(
            activity.deadline(&limits),
            Some(activity.started + Duration::from_secs(2))
        );
        let req = activity.begin();
        assert_eq!(activity.deadline(&limits), None);
        drop(req);
        let idle = activity.deadline(&limits).unwrap();
        assert!(idle >= activity.started + Duration::from_secs(60));
    }
}
