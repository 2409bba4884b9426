//! latchkey-api's own metrics, beside the request counts of `latchkey_core::metrics`: JWT
//! rejections by reason (the verifier's stable codes), the key set (size, age, fetches) and
//! the revocation check.

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
    /// Fetch counts already turned into counter increments.
    seen: Arc<[AtomicU64; 2]>,
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
        for (i, (result, total)) in [("ok", stats.fetches_ok), ("failed", stats.fetches_failed)]
            .into_iter()
            .enumerate()
        {
            let before = self.seen[i].swap(total, Ordering::Relaxed);
            self.jwks_fetches
                .get_or_create(&FetchResult { result })
                .inc_by(total.saturating_sub(before));
        }
    }
}
