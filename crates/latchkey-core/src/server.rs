//! The accept loop: plain TCP or rustls, HTTP/1.1 and HTTP/2, bounded header sizes, and a
//! graceful shutdown that lets in-flight requests finish (up to a deadline).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::http::HttpResponse;

/// Request heads larger than this are refused by hyper before our code sees them.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Open connections beyond this wait in the kernel's accept queue instead of using up file
/// descriptors (slow clients trickling bytes could otherwise exhaust them).
pub const MAX_CONNECTIONS: usize = 10_000;
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `handler` on `listener` until `shutdown` resolves, then drains open connections.
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
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
        .header_read_timeout(Duration::from_secs(15))
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let builder = Arc::new(builder);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
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
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = service_fn(move |mut req: Request<Incoming>| {
            let id = RequestId::next();
            req.extensions_mut().insert(id);
            let fut = handler(req, peer).instrument(tracing::info_span!("request", id = %id));
            async move { Ok::<_, Infallible>(fut.await) }
        });
        let builder = builder.clone();
        match &acceptor {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = conn.await {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _permit = permit;
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    let stream = match handshake.await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return tracing::debug!("TLS handshake from {peer}: {e}"),
                        Err(_) => return tracing::debug!("TLS handshake from {peer} timed out"),
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                });
            }
        }
    }

    drop(listener);
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
        use std::sync::atomic::{AtomicU64, Ordering};
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
