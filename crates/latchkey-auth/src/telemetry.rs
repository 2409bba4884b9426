//! latchkey-auth's own metrics, beside the request counts of `latchkey_core::metrics`:
//! sign-in outcomes, rate-limit refusals, the password-hash queue and the database pool.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::state::State;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Outcome {
    pub(crate) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RuleLabel {
    pub(crate) rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MailOutcome {
    kind: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolState {
    state: &'static str,
}

#[derive(Clone, Default)]
pub(crate) struct AuthMetrics {
    sign_ins: Family<Outcome, Counter>,
    rate_limited: Family<RuleLabel, Counter>,
    hashes_running: Gauge,
    hashes_waiting: Gauge,
    pool: Family<PoolState, Gauge>,
    mail: Family<MailOutcome, Counter>,
    mail_pending: Gauge,
}

impl AuthMetrics {
    pub(crate) fn register(
        registry: &mut Registry,
        wait: prometheus_client::metrics::histogram::Histogram,
    ) -> Self {
        let m = AuthMetrics::default();
        registry.register(
            "sign_ins",
            "Email and password sign-ins, by outcome (success, invalid_credentials)",
            m.sign_ins.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429, by rate-limit rule",
            m.rate_limited.clone(),
        );
        registry.register(
            "hashes_running",
            "Password hashes being computed",
            m.hashes_running.clone(),
        );
        registry.register(
            "hashes_waiting",
            "Requests waiting for a password-hashing slot",
            m.hashes_waiting.clone(),
        );
        registry.register(
            "hash_wait_seconds",
            "Time requests waited for a password-hashing slot",
            wait,
        );
        registry.register(
            "db_pool_connections",
            "Database pool: connections open, idle, and requests waiting for one",
            m.pool.clone(),
        );
        registry.register(
            "mail_deliveries",
            "Outbox send attempts by message kind and outcome (sent; retry: failed, due again; \
             failed: given up after the last attempt)",
            m.mail.clone(),
        );
        registry.register(
            "mail_outbox_pending",
            "Messages in the outbox not yet sent nor given up, as this replica's worker last \
             counted them (it counts when nothing is due)",
            m.mail_pending.clone(),
        );
        m
    }

    pub(crate) fn mail_pending(&self, n: i64) {
        self.mail_pending.set(n);
    }

    /// One send attempt of the outbox worker. `kind` comes from the outbox row, written only
    /// by latchkey (mail::Kind names), so the label set stays small.
    pub(crate) fn mail(&self, kind: &str, outcome: &'static str) {
        self.mail
            .get_or_create(&MailOutcome {
                kind: kind.to_string(),
                outcome,
            })
            .inc();
    }

    pub(crate) fn sign_in(&self, outcome: &'static str) {
        self.sign_ins.get_or_create(&Outcome { outcome }).inc();
    }

    pub(crate) fn rate_limited(&self, rule: &'static str) {
        self.rate_limited.get_or_create(&RuleLabel { rule }).inc();
    }

    /// Gauges read just before a scrape.
    pub(crate) fn refresh(&self, st: &State) {
        let (running, waiting) = st.hasher.load();
        self.hashes_running.set(running as i64);
        self.hashes_waiting.set(waiting as i64);
        let status = st.db.status();
        for (state, n) in [
            ("open", status.size),
            ("idle", status.available),
            ("waiting", status.waiting),
            ("max", status.max_size),
        ] {
            self.pool.get_or_create(&PoolState { state }).set(n as i64);
        }
    }
}
