//! Prometheus metrics, served on a listener of their own (`LATCHKEY_METRICS_LISTEN`, off by
//! default) so that they are never exposed where the API is. Both daemons count requests by
//! route and status with a latency histogram here; each adds its own families to the registry
//! at start-up and refreshes its gauges just before a scrape.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::http::HttpResponse;
use crate::server::{self, Draining, ServerLimits};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

/// Latency buckets from 0.1 ms to about 13 s: a JWKS answer and a sign-in both fit.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.5, 14)
}

/// A histogram family with our latency buckets (a plain `fn` so the family can name its type).
pub type LatencyHistogram = fn() -> Histogram;

pub fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabel, Histogram, LatencyHistogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("latchkey");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route (the route pattern, not the raw path), method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabel, Histogram, LatencyHistogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from the request to its answer's head, by route",
            latency.clone(),
        );
        Self {
            registry,
            requests,
            latency,
        }
    }

    /// For the daemon's own families, registered once at start-up.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Counts one answered request. `route` must come from a fixed set (a route pattern,
    /// `"unmatched"`), never from the request, or the label set grows without bound.
    pub fn observe_request(
        &self,
        route: &'static str,
        method: &Method,
        status: StatusCode,
        elapsed: Duration,
    ) {
        // Unusual methods fold into one label value, for the same reason.
        let method = match *method {
            Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::PATCH
            | Method::DELETE
            | Method::OPTIONS => method.as_str().to_string(),
            _ => "other".to_string(),
        };
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabel { route })
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown`; `refresh` updates the daemon's gauges
/// (pool usage, queue depths, key-set age) right before each scrape.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    refresh: Arc<dyn Fn() + Send + Sync>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let limits = ServerLimits {
        shutdown_delay: Duration::ZERO,
        ..ServerLimits::default()
    };
    server::serve(
        listener,
        None,
        limits,
        Draining::default(),
        move |req, _peer: SocketAddr| {
            let metrics = metrics.clone();
            let refresh = refresh.clone();
            async move { answer(&req, &metrics, refresh.as_ref()) }
        },
        shutdown,
    )
    .await;
}

fn answer<B>(req: &http::Request<B>, metrics: &Metrics, refresh: &dyn Fn()) -> HttpResponse {
    if req.uri().path() != "/metrics" || !matches!(*req.method(), Method::GET | Method::HEAD) {
        return crate::http::status_only(StatusCode::NOT_FOUND);
    }
    refresh();
    let mut resp = http::Response::new(crate::http::full(metrics.encode()));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_status() {
        let m = Metrics::new();
        m.observe_request(
            "/ok",
            &Method::GET,
            StatusCode::OK,
            Duration::from_millis(2),
        );
        m.observe_request(
            "/ok",
            &Method::GET,
            StatusCode::OK,
            Duration::from_millis(3),
        );
        m.observe_request(
            "unmatched",
            &Method::from_bytes(b"BREW").unwrap(),
            StatusCode::NOT_FOUND,
            Duration::from_micros(50),
        );
        let text = m.encode();
        assert!(
            text.contains(
                r#"latchkey_http_requests_total{route="/ok",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"method="other",status="404""#), "{text}");
        assert!(
            text.contains(r#"latchkey_http_request_duration_seconds_count{route="/ok"} 2"#),
            "{text}"
        );
    }
}
