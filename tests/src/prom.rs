//! `/metrics` of a daemon's metrics listener, scraped and parsed as Prometheus would.

use std::collections::HashMap;

use crate::http::Client;

/// The samples of one scrape of `http://127.0.0.1:<port>/metrics` (a 200 in the text format).
pub fn scrape(port: u16) -> Vec<prometheus_parse::Sample> {
    let r = Client::new(&format!("http://127.0.0.1:{port}"))
        .get("/metrics")
        .send();
    r.expect(200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain"),
        "{:?}",
        r.headers
    );
    let lines = r
        .text()
        .lines()
        .map(|l| Ok(l.to_string()))
        .collect::<Vec<_>>();
    prometheus_parse::Scrape::parse(lines.into_iter())
        .expect("a valid exposition")
        .samples
}

/// The sum of the samples of `name` whose labels include `labels`.
pub fn value(samples: &[prometheus_parse::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: HashMap<&str, &str> = labels.iter().copied().collect();
    samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| want.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}
