//! Prometheus metrics of this node (served as OpenMetrics text by `api::metrics`, with
//! readiness, `GET /readyz`).
//!
//! Counters and histograms are updated where things happen (API answers, policy decisions,
//! teardown verdicts, acknowledgements of revocations); gauges that describe the database —
//! grants by state, where gateways are attached — are read at scrape time, so every node of a
//! cluster reports the same truth. `/metrics` needs a caller who may see everything (security,
//! audit) or an administrator, like the gateway list; `/readyz` needs nobody and says only
//! whether this node can serve: its database answers and, on PostgreSQL, it listens for the
//! other nodes.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicBool;

pub(crate) type Labels = Vec<(&'static str, String)>;

/// Every metric this node exports.
pub struct Metrics {
    pub(crate) registry: Registry,
    http_responses: Family<Labels, Counter>,
    decisions: Family<Labels, Counter>,
    teardown_verdicts: Family<Labels, Counter>,
    revocation_to_cut: Histogram,
    expiry_to_cut: Histogram,
    pub(crate) grants: Family<Labels, Gauge>,
    pub(crate) gateways: Family<Labels, Gauge>,
    /// Whether this node's LISTEN connection is up (PostgreSQL); always true on SQLite.
    pub listening: AtomicBool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("jitgate");
        let http_responses = Family::<Labels, Counter>::default();
        registry.register(
            "http_responses",
            "API answers by method and status class",
            http_responses.clone(),
        );
        let decisions = Family::<Labels, Counter>::default();
        registry.register(
            "decisions",
            "Policy decisions on filed requests, by outcome",
            decisions.clone(),
        );
        let teardown_verdicts = Family::<Labels, Counter>::default();
        registry.register(
            "teardown_verdicts",
            "Teardown attempts recorded by this node, by verdict",
            teardown_verdicts.clone(),
        );
        // 1 ms … ~65 s.
        let revocation_to_cut = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register(
            "revocation_to_cut_seconds",
            "From a grant's end (revoked, completed, context change) to a gateway's acknowledgement that its live sessions were cut, as received by this node",
            revocation_to_cut.clone(),
        );
        let expiry_to_cut = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register(
            "expiry_to_cut_seconds",
            "From a grant's expiry to a gateway's acknowledgement that its live sessions were cut, as received by this node",
            expiry_to_cut.clone(),
        );
        let grants = Family::<Labels, Gauge>::default();
        registry.register(
            "grants",
            "Grants by state (read at scrape time)",
            grants.clone(),
        );
        let gateways = Family::<Labels, Gauge>::default();
        registry.register(
            "gateway_control_connected",
            "1 for each gateway whose control channel is up, labelled with the node holding it (read at scrape time)",
            gateways.clone(),
        );
        Metrics {
            registry,
            http_responses,
            decisions,
            teardown_verdicts,
            revocation_to_cut,
            expiry_to_cut,
            grants,
            gateways,
            listening: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    pub fn http_response(&self, method: &str, status: u16) {
        let class = format!("{}xx", status / 100);
        self.http_responses
            .get_or_create(&vec![("method", method.to_string()), ("status", class)])
            .inc();
    }

    pub fn decision(&self, allowed: bool) {
        let outcome = if allowed { "allow" } else { "deny" };
        self.decisions
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
    }

    pub fn teardown_verdict(&self, verdict: &str) {
        self.teardown_verdicts
            .get_or_create(&vec![("verdict", verdict.to_string())])
            .inc();
    }

    /// A gateway acknowledged cutting a grant's sessions `seconds` after it ended (or, for an
    /// expiry, after it expired).
    pub fn cut_acknowledged(&self, expired: bool, seconds: f64) {
        let h = if expired {
            &self.expiry_to_cut
        } else {
            &self.revocation_to_cut
        };
        h.observe(seconds.max(0.0));
    }
}
