//! Pre-authentication refusals, counted and folded so that unauthenticated clients cannot
//! grow the evidence log without bound.
//!
//! A refusal is *pre-authentication* when it happens before the gateway accepted the token
//! (TLS failure, malformed handshake, timeout before a token was accepted, a token that is
//! malformed, forged, expired, for another gateway or signed by an unknown or retired key):
//! anyone who can reach the port can cause those, as fast as they can open connections.
//! Refusals after the token was accepted (grant revoked, wrong asset, bad proof of
//! possession, grant not active, device unreachable, ...) name a real grant and keep one
//! event each; they never come here.
//!
//! Per window (one minute), client IP address and refusal code, the first
//! [`DETAILED_PER_PEER`] refusals are recorded as their own `session.refused` events, and
//! at most [`MAX_DETAILED`] in all per window; every refusal of the window, those included,
//! is also counted, and when the window closes one summary `session.refused` event
//! (`code: pre_auth_refused_summary`) gives the totals by code and by address — if anything
//! was left out of the detailed events. So the log grows by at most `MAX_DETAILED + 1`
//! events a minute whatever arrives, and an operator still sees each distinct kind of
//! failure of each client in detail. Memory is bounded under a flood of distinct
//! addresses: at most [`MAX_PEERS`] addresses are tracked per window; refusals from any
//! further address are counted under `other` and never recorded in detail.
//!
//! The throttle: an address with [`THROTTLE_AFTER`] pre-authentication refusals in the
//! window has its further connections closed at once, before the TLS handshake (which is
//! what costs the gateway CPU), until the window closes. Those are counted as `throttled`.
//! A client that authenticates is never counted, so it is only throttled when it shares an
//! address (NAT) with a client that keeps failing; see docs/gateway.md. Refusals made at
//! accept, before any TLS ([`NOT_TOWARD_THROTTLE`]: the gateway full, the address at its
//! limit of connections still authenticating, the address already throttled) are counted
//! and reported but do not move a source toward the throttle: they cost the gateway nothing
//! the throttle would save, and counting them would shut an address out for the rest of
//! the minute once it had room again — the server's teardown probes among them, when the
//! server shares an address with busy clients.
//!
//! Pure and synchronous: the caller passes the time, the runtime closes windows from a tokio
//! interval ([`crate::runtime`]), and tests drive it with explicit timestamps.

use jitgate_core::event::rfc3339;
use jitgate_core::Timestamp;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// How long a counting window lasts.
pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Refusals per address, code and window recorded as events of their own.
pub const DETAILED_PER_PEER: u32 = 3;
/// Refusals per window recorded as events of their own, all addresses together.
pub const MAX_DETAILED: u64 = 256;
/// Addresses tracked per window; further addresses are counted under `other`.
pub const MAX_PEERS: usize = 1024;
/// Pre-authentication refusals per address and window after which its connections are
/// closed before the TLS handshake.
pub const THROTTLE_AFTER: u64 = 30;
/// Addresses listed by name in a summary event (the busiest); the rest are under `other`.
pub const SUMMARY_PEERS: usize = 20;

/// Refusal codes made at accept, before the TLS handshake (as cheap as the throttle's own
/// refusal): they do not count toward [`THROTTLE_AFTER`].
pub const NOT_TOWARD_THROTTLE: &[&str] = &["too_many_connections", "too_many_pending", "throttled"];

/// What to do with one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Record it as its own `session.refused` event.
    Detailed,
    /// Counted only; it appears in the window's summary.
    Folded,
}

#[derive(Debug, Default)]
struct Peer {
    count: u64,
    /// Refusals that count toward the throttle.
    failures: u64,
    /// Detailed events per code (the codes are a small fixed set).
    detailed: BTreeMap<&'static str, u32>,
}

/// The counting table of the current window.
#[derive(Debug)]
pub struct PreAuthRefusals {
    window_start: Option<Timestamp>,
    peers: HashMap<IpAddr, Peer>,
    /// Refusals from addresses beyond [`MAX_PEERS`].
    untracked: u64,
    count: u64,
    detailed: u64,
    by_code: BTreeMap<&'static str, u64>,
    max_peers: usize,
    max_detailed: u64,
}

impl Default for PreAuthRefusals {
    fn default() -> Self {
        Self::with_limits(MAX_PEERS, MAX_DETAILED)
    }
}

impl PreAuthRefusals {
    /// A table tracking at most `max_peers` addresses and recording at most `max_detailed`
    /// events of their own per window.
    pub fn with_limits(max_peers: usize, max_detailed: u64) -> Self {
        PreAuthRefusals {
            window_start: None,
            peers: HashMap::new(),
            untracked: 0,
            count: 0,
            detailed: 0,
            by_code: BTreeMap::new(),
            max_peers,
            max_detailed,
        }
    }

    /// Count one pre-authentication refusal from `ip` with stable code `code`.
    pub fn note(&mut self, ip: IpAddr, code: &'static str, now: Timestamp) -> Disposition {
        self.window_start.get_or_insert(now);
        self.count += 1;
        *self.by_code.entry(code).or_default() += 1;
        let tracked = self.peers.len() < self.max_peers || self.peers.contains_key(&ip);
        if !tracked {
            self.untracked += 1;
            return Disposition::Folded;
        }
        let peer = self.peers.entry(ip).or_default();
        peer.count += 1;
        if !NOT_TOWARD_THROTTLE.contains(&code) {
            peer.failures += 1;
        }
        let of_code = peer.detailed.entry(code).or_default();
        if *of_code < DETAILED_PER_PEER && self.detailed < self.max_detailed {
            *of_code += 1;
            self.detailed += 1;
            Disposition::Detailed
        } else {
            Disposition::Folded
        }
    }

    /// Should a new connection from `ip` be closed before the TLS handshake?
    pub fn throttled(&self, ip: IpAddr) -> bool {
        self.peers
            .get(&ip)
            .is_some_and(|p| p.failures >= THROTTLE_AFTER)
    }

    /// Refusals counted in the current window.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Close the window at `now`: the summary event's data if some refusals were not
    /// recorded in detail, and a fresh, empty table either way.
    pub fn close_window(&mut self, now: Timestamp) -> Option<Value> {
        let fresh = PreAuthRefusals::with_limits(self.max_peers, self.max_detailed);
        let closed = std::mem::replace(self, fresh);
        if closed.count == closed.detailed {
            return None;
        }
        let mut peers: Vec<(IpAddr, u64)> =
            closed.peers.iter().map(|(ip, p)| (*ip, p.count)).collect();
        // Busiest first; the address breaks ties so the event does not depend on hashing.
        peers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let listed = peers.len().min(SUMMARY_PEERS);
        let mut by_peer = serde_json::Map::new();
        for (ip, n) in &peers[..listed] {
            by_peer.insert(ip.to_string(), json!(n));
        }
        let other: u64 = peers[listed..].iter().map(|(_, n)| n).sum::<u64>() + closed.untracked;
        if other > 0 {
            by_peer.insert("other".into(), json!(other));
        }
        Some(json!({
            "code": "pre_auth_refused_summary",
            "window_start": rfc3339(closed.window_start.unwrap_or(now)),
            "window_end": rfc3339(now),
            "count": closed.count,
            "detailed": closed.detailed,
            "by_code": closed.by_code,
            "peers": by_peer,
            // Addresses counted under `other`: those tracked but not listed, and whether
            // addresses beyond the table's capacity were seen (their number is not kept).
            "peers_truncated": peers.len() - listed,
            "untracked_refusals": closed.untracked,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn t(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    #[test]
    fn first_refusals_per_address_are_detailed_then_folded() {
        let mut r = PreAuthRefusals::default();
        let got: Vec<Disposition> = (0..5)
            .map(|_| r.note(ip(1), "bad_handshake", t(0)))
            .collect();
        assert_eq!(
            got,
            [
                Disposition::Detailed,
                Disposition::Detailed,
                Disposition::Detailed,
                Disposition::Folded,
                Disposition::Folded
            ]
        );
        assert_eq!(
            r.note(ip(2), "token_malformed", t(1)),
            Disposition::Detailed
        );
        // Another kind of failure from the same address is shown in detail too.
        assert_eq!(r.note(ip(1), "bad_signature", t(2)), Disposition::Detailed);
        let s = r.close_window(t(60)).unwrap();
        assert_eq!(s["count"], 7);
        assert_eq!(s["detailed"], 5);
        assert_eq!(
            s["by_code"],
            json!({"bad_handshake": 5, "bad_signature": 1, "token_malformed": 1})
        );
        assert_eq!(s["peers"], json!({"10.0.0.1": 6, "10.0.0.2": 1}));
        assert_eq!(s["window_start"], rfc3339(t(0)));
        assert_eq!(s["window_end"], rfc3339(t(60)));
        // A new window: the address gets detailed events again.
        assert_eq!(r.note(ip(1), "bad_handshake", t(61)), Disposition::Detailed);
    }

    #[test]
    fn nothing_folded_means_no_summary() {
        let mut r = PreAuthRefusals::default();
        r.note(ip(1), "bad_handshake", t(0));
        assert!(r.close_window(t(60)).is_none());
        assert!(
            r.close_window(t(120)).is_none(),
            "an empty window says nothing"
        );
    }

    #[test]
    fn a_flood_of_distinct_addresses_stays_bounded_and_adds_up() {
        let mut r = PreAuthRefusals::with_limits(100, 1000);
        let mut detailed = 0;
        for n in 0..10_000 {
            if r.note(ip(n), "bad_signature", t(0)) == Disposition::Detailed {
                detailed += 1;
            }
        }
        assert_eq!(detailed, 100, "only tracked addresses get detailed events");
        assert!(r.peers.len() <= 100);
        let s = r.close_window(t(60)).unwrap();
        assert_eq!(s["count"], 10_000);
        let peers = s["peers"].as_object().unwrap();
        assert_eq!(peers.len(), SUMMARY_PEERS + 1);
        let sum: u64 = peers.values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(sum, 10_000, "{s}");
        assert_eq!(s["peers_truncated"], 100 - SUMMARY_PEERS);
        assert_eq!(s["untracked_refusals"], 9_900);
    }

    #[test]
    fn detailed_events_are_capped_per_window_over_all_addresses() {
        let mut r = PreAuthRefusals::with_limits(1000, 50);
        let detailed = (0..200)
            .filter(|n| r.note(ip(*n), "bad_handshake", t(0)) == Disposition::Detailed)
            .count();
        assert_eq!(detailed, 50);
        let s = r.close_window(t(60)).unwrap();
        assert_eq!(
            (s["count"].as_u64(), s["detailed"].as_u64()),
            (Some(200), Some(50))
        );
    }

    #[test]
    fn throttle_starts_after_the_threshold_and_ends_with_the_window() {
        let mut r = PreAuthRefusals::default();
        for _ in 0..THROTTLE_AFTER - 1 {
            r.note(ip(1), "bad_handshake", t(0));
        }
        assert!(!r.throttled(ip(1)));
        r.note(ip(1), "bad_handshake", t(0));
        assert!(r.throttled(ip(1)));
        assert!(!r.throttled(ip(2)), "other addresses are not affected");
        r.close_window(t(60));
        assert!(!r.throttled(ip(1)));
    }

    #[test]
    fn a_full_gateway_is_reported_but_never_throttles_the_source() {
        let mut r = PreAuthRefusals::default();
        for _ in 0..THROTTLE_AFTER * 2 {
            r.note(ip(1), "too_many_connections", t(0));
        }
        assert!(!r.throttled(ip(1)));
        r.note(ip(1), "bad_handshake", t(0));
        assert!(!r.throttled(ip(1)), "only its own failures count");
        // Nor does an address at its limit of connections still authenticating: each extra
        // one is closed at accept, as cheaply as a throttled one would be.
        for _ in 0..THROTTLE_AFTER * 2 {
            r.note(ip(2), "too_many_pending", t(0));
        }
        assert!(!r.throttled(ip(2)));
        let s = r.close_window(t(60)).unwrap();
        assert_eq!(s["by_code"]["too_many_connections"], THROTTLE_AFTER * 2);
        assert_eq!(s["peers"]["10.0.0.1"], THROTTLE_AFTER * 2 + 1);
    }
}
