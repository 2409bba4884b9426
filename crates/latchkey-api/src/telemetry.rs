//! latchkey-api's own metrics, beside the request counts of `latchkey_core::metrics`: JWT
//! rejections by reason (the verifier's stable codes), the key set (size, age, fetches), the
//! verified-token cache and the revocation check.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use latchkey_jwt::Verifier;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CheckResult {
    pub(crate) result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchResult {
    result: &'static str,
}

#[derive(Clone, Default)]
pub(crate) struct ApiMetrics {
    rejections: Family<Reason, Counter>,
    pub(crate) revocation: Family<CheckResult, Counter>,
    jwks_keys: Gauge,
    jwks_age: Gauge,
    jwks_fetches: Family<FetchResult, Counter>,
    cache_hits: Counter,
    cache_misses: Counter,
    cache_evictions: Counter,
    cache_invalidations: Counter,
    cache_entries: Gauge,
    cache_capacity: Gauge,
    /// The verifier's running totals (fetches ok and failed, cache hits, misses, evictions,
    /// invalidations) already turned into counter increments.
    seen: Arc<[AtomicU64; 6]>,
}

impl ApiMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = ApiMetrics::default();
        registry.register(
            "jwt_rejections",
            "Bearer tokens refused, by reason (the verifier's error code)",
            m.rejections.clone(),
        );
        registry.register(
            "revocation_checks",
            "Session checks (LATCHKEY_REVOCATION=session): cache_hit, live, revoked, error",
            m.revocation.clone(),
        );
        registry.register(
            "jwks_keys",
            "Usable keys in the loaded key set",
            m.jwks_keys.clone(),
        );
        registry.register(
            "jwks_age_seconds",
            "Seconds since the key set was last fetched (-1 before the first)",
            m.jwks_age.clone(),
        );
        registry.register(
            "jwks_fetches",
            "JWKS fetches, by result",
            m.jwks_fetches.clone(),
        );
        registry.register(
            "jwt_cache_hits",
            "Bearer tokens answered from the verified-token cache (no signature check)",
            m.cache_hits.clone(),
        );
        registry.register(
            "jwt_cache_misses",
            "Bearer tokens verified in full with the cache on (not cached, or no longer valid)",
            m.cache_misses.clone(),
        );
        registry.register(
            "jwt_cache_evictions",
            "Verified-token cache entries dropped to make room",
            m.cache_evictions.clone(),
        );
        registry.register(
            "jwt_cache_invalidations",
            "Verified-token cache entries dropped because their key left the JWKS or they expired",
            m.cache_invalidations.clone(),
        );
        registry.register(
            "jwt_cache_entries",
            "Entries in the verified-token cache",
            m.cache_entries.clone(),
        );
        registry.register(
            "jwt_cache_capacity",
            "Maximum entries of the verified-token cache (LATCHKEY_JWT_CACHE_SIZE; 0: off)",
            m.cache_capacity.clone(),
        );
        m
    }

    pub(crate) fn rejected(&self, reason: &'static str) {
        self.rejections.get_or_create(&Reason { reason }).inc();
    }

    pub(crate) fn revocation_check(&self, result: &'static str) {
        self.revocation.get_or_create(&CheckResult { result }).inc();
    }

    /// Gauges and counters read from the verifier just before a scrape.
    pub(crate) fn refresh(&self, verifier: &Verifier) {
        let stats = verifier.stats();
        self.jwks_keys.set(stats.keys as i64);
        self.jwks_age
            .set(stats.key_set_age.map_or(-1, |age| age.as_secs() as i64));
        let advance = |i: usize, total: u64| {
            let before = self.seen[i].swap(total, Ordering::Relaxed);
            total.saturating_sub(before)
        };
        for (i, (result, total)) in [("ok", stats.fetches_ok), ("failed", stats.fetches_failed)]
            .into_iter()
            .enumerate()
        {
            self.jwks_fetches
                .get_or_create(&FetchResult { result })
                .inc_by(advance(i, total));
        }
        let cache = stats.cache;
        self.cache_hits.inc_by(advance(2, cache.hits));
        self.cache_misses.inc_by(advance(3, cache.misses));
        self.cache_evictions.inc_by(advance(4, cache.evictions));
        self.cache_invalidations
            .inc_by(advance(5, cache.invalidations));
        self.cache_entries.set(cache.entries as i64);
        self.cache_capacity.set(cache.capacity as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_jwt::VerifierConfig;

    fn exposition(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    #[test]
    fn cache_metrics_are_registered_and_read_from_the_verifier() {
        let mut registry = Registry::with_prefix("latchkey");
        let m = ApiMetrics::register(&mut registry);
        let mut config = VerifierConfig::new("http://127.0.0.1:9/jwks", "iss", "aud");
        config.cache_size = 42;
        m.refresh(&latchkey_jwt::Verifier::new(config).unwrap());
        let text = exposition(&registry);
        for line in [
            "latchkey_jwt_cache_hits_total 0",
            "latchkey_jwt_cache_misses_total 0",
            "latchkey_jwt_cache_evictions_total 0",
            "latchkey_jwt_cache_invalidations_total 0",
            "latchkey_jwt_cache_entries 0",
            "latchkey_jwt_cache_capacity 42",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
