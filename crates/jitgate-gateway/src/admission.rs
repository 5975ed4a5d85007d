//! Admission of client connections, before any TLS or protocol work: the gateway-wide
//! connection cap, the per-source limit on connections still authenticating, and the
//! throttle of sources that keep failing ([`crate::refusals`]). Every protocol's listener
//! calls [`crate::runtime::Gateway::admit`] first and holds the returned [`Admitted`] for
//! the connection's life.
//!
//! Each refusal here closes the connection at once and is counted like any other
//! pre-authentication refusal (per source, summarised once a minute), never logged one by
//! one: whoever can reach the port can cause them as fast as they can connect.

use crate::refusals::Disposition;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Connections one source address may have still authenticating (TLS handshake, token,
/// proof) at once on a gateway; one more is closed at once and recorded as a
/// `too_many_pending` refusal. Authenticated sessions do not count.
pub const MAX_PENDING_PER_SOURCE: usize = 8;

/// Limits on the gateway's client-facing ports (`[client_limits]` in `gateway.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientLimits {
    /// Client connections open at once in this gateway process, authenticating or in a
    /// session, all protocols together; one more is closed at once, before the TLS
    /// handshake, and counted as `too_many_connections`. Each session also holds a
    /// connection to its device, so the default (256) keeps a gateway under the common
    /// 1024 open-file limit, and under what small PLCs accept in all.
    pub max_connections: usize,
    /// An authenticated session with no traffic this long is ended (`session.ended`
    /// reason `idle_timeout`), so a forgotten client does not hold a device connection
    /// until its grant expires. 15 minutes: the usual inactivity limit for remote sessions
    /// (IEC 62443-3-3 SR 2.6 asks for one; NIST SP 800-53 AC-12 practice is 15 min).
    pub idle_timeout: String,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            max_connections: 256,
            idle_timeout: "15m".into(),
        }
    }
}

impl ClientLimits {
    /// The idle timeout, checked: 1 s to 24 h.
    pub fn idle_timeout(&self) -> Result<std::time::Duration, String> {
        let d = humantime::parse_duration(&self.idle_timeout)
            .map_err(|e| format!("client_limits.idle_timeout {:?}: {e}", self.idle_timeout))?;
        if d < std::time::Duration::from_secs(1) || d > std::time::Duration::from_secs(86_400) {
            return Err(format!(
                "client_limits.idle_timeout {:?} must be between 1s and 24h",
                self.idle_timeout
            ));
        }
        Ok(d)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.idle_timeout()?;
        if self.max_connections == 0 {
            return Err("client_limits.max_connections must be at least 1".into());
        }
        Ok(())
    }
}

/// The counters behind admission; shared by the connections' slots.
#[derive(Debug)]
pub struct Admission {
    max_connections: usize,
    open: AtomicUsize,
    pending: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was not admitted: the refusal code and what to tell the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAdmitted {
    TooManyConnections,
    TooManyPending,
}

impl NotAdmitted {
    pub fn code(self) -> &'static str {
        match self {
            NotAdmitted::TooManyConnections => "too_many_connections",
            NotAdmitted::TooManyPending => "too_many_pending",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            NotAdmitted::TooManyConnections => {
                "the gateway has as many client connections as it accepts; try again later"
            }
            NotAdmitted::TooManyPending => {
                "too many connections from this address are still authenticating; finish or close them first"
            }
        }
    }
}

impl Admission {
    pub fn new(max_connections: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_connections,
            open: AtomicUsize::new(0),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// Take a connection slot and one of the source's pending slots, or say why not.
    pub fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, NotAdmitted> {
        // Counted up first and given back on failure: concurrent accepts never overshoot.
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(NotAdmitted::TooManyConnections);
        }
        let connection = ConnectionSlot(Arc::clone(self));
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let n = pending.entry(ip).or_default();
        if *n >= MAX_PENDING_PER_SOURCE {
            return Err(NotAdmitted::TooManyPending);
        }
        *n += 1;
        Ok(Admitted {
            _connection: connection,
            pending: Some(PendingSlot {
                admission: Arc::clone(self),
                ip,
            }),
        })
    }

    /// Client connections open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// An admitted connection: holds its place under the cap until dropped, and its source's
/// pending slot until [`Admitted::authenticated`].
#[derive(Debug)]
pub struct Admitted {
    _connection: ConnectionSlot,
    pending: Option<PendingSlot>,
}

impl Admitted {
    /// The client authenticated: it no longer counts against its source's pending
    /// connections (it still counts under the cap).
    pub fn authenticated(&mut self) {
        self.pending = None;
    }
}

#[derive(Debug)]
struct ConnectionSlot(Arc<Admission>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
struct PendingSlot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut pending = self
            .admission
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = pending.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                pending.remove(&self.ip);
            }
        }
    }
}

impl crate::runtime::Gateway {
    /// Admit a new client connection from `peer`, or refuse it: beyond the connection cap
    /// (`too_many_connections`), beyond its source's pending connections
    /// (`too_many_pending`), or while its source is throttled (`throttled`). A refusal is
    /// counted with the pre-authentication refusals and the connection is to be closed at
    /// once; hold the [`Admitted`] for as long as the connection lives.
    pub fn admit(&self, peer: std::net::SocketAddr) -> Option<Admitted> {
        let admitted = match self.admission.try_admit(peer.ip()) {
            Ok(admitted) => admitted,
            Err(no) => {
                self.pre_auth_refused(peer, no.code(), None, no.message(), None);
                return None;
            }
        };
        // An address that keeps failing before authentication is cut before the TLS
        // handshake, the expensive part (see `crate::refusals`).
        if self.pre_auth_throttled(peer.ip()) {
            self.pre_auth_refused(
                peer,
                "throttled",
                None,
                "too many failed handshakes from this address; try again in a minute",
                None,
            );
            return None;
        }
        Some(admitted)
    }

    /// Client connections open now (under the connection cap).
    pub fn open_connections(&self) -> usize {
        self.admission.open_connections()
    }

    /// Should a new connection from `ip` be closed before the TLS handshake?
    pub fn pre_auth_throttled(&self, ip: std::net::IpAddr) -> bool {
        self.refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .throttled(ip)
    }

    /// Count a refusal that happened before the token was accepted; record it as an event
    /// of its own only within the per-address allowance (see `crate::refusals`).
    pub fn pre_auth_refused(
        &self,
        peer: std::net::SocketAddr,
        code: &'static str,
        session: Option<&str>,
        message: &str,
        token_fingerprint: Option<&str>,
    ) {
        let now = self.clock_now();
        let disposition = self
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note(peer.ip(), code, now);
        if disposition == Disposition::Detailed {
            // The message is bounded: it comes from our own errors, which quote at most a
            // printable, truncated key id of the client's.
            // A refusal: nothing is answered on its strength (a failure is logged).
            let _ = self.events.record(
                "session.refused",
                now,
                None,
                session,
                json!({"code": code, "reason": message, "peer": peer.to_string(), "token_fingerprint": token_fingerprint, "pre_auth": true}),
            );
        }
    }

    /// Close the current window of pre-authentication refusals now and record its summary
    /// event (if some refusals were not recorded in detail). Called once a minute by the
    /// runtime and at shutdown; public so tests can close a window without waiting for it.
    /// Returns whether a summary was recorded.
    pub fn flush_pre_auth_refusals(&self) -> bool {
        let now = self.clock_now();
        let summary = self
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .close_window(now);
        match summary {
            Some(data) => {
                // A summary: nothing is answered on its strength (a failure is logged).
                let _ = self.events.record("session.refused", now, None, None, data);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn the_cap_counts_every_connection_and_frees_on_drop() {
        let a = Admission::new(3);
        let mut first = a.try_admit(ip(1)).unwrap();
        let _second = a.try_admit(ip(2)).unwrap();
        first.authenticated();
        let third = a.try_admit(ip(3)).unwrap();
        // Authenticated or not, all three hold a place.
        assert_eq!(
            a.try_admit(ip(4)).unwrap_err(),
            NotAdmitted::TooManyConnections
        );
        assert_eq!(a.open_connections(), 3);
        drop(third);
        assert!(a.try_admit(ip(4)).is_ok());
        assert_eq!(
            a.open_connections(),
            2,
            "the third left, the fourth was dropped at once"
        );
    }

    #[test]
    fn pending_per_source_is_bounded_and_authentication_frees_it() {
        let a = Admission::new(100);
        let mut held: Vec<Admitted> = (0..MAX_PENDING_PER_SOURCE)
            .map(|_| a.try_admit(ip(1)).unwrap())
            .collect();
        assert_eq!(a.try_admit(ip(1)).unwrap_err(), NotAdmitted::TooManyPending);
        // A refused one gives its connection slot back.
        assert_eq!(a.open_connections(), MAX_PENDING_PER_SOURCE);
        assert!(a.try_admit(ip(2)).is_ok(), "other sources are not affected");
        held[0].authenticated();
        assert!(a.try_admit(ip(1)).is_ok());
        held.clear();
        assert!(a.pending.lock().unwrap().is_empty());
        assert_eq!(a.open_connections(), 0);
    }

    #[test]
    fn limits_are_checked() {
        assert!(ClientLimits::default().validate().is_ok());
        let bad = |max_connections, idle: &str| ClientLimits {
            max_connections,
            idle_timeout: idle.into(),
        };
        assert!(bad(0, "15m").validate().is_err());
        assert!(bad(10, "500ms").validate().is_err());
        assert!(bad(10, "2days").validate().is_err());
        assert!(bad(10, "soon").validate().is_err());
        assert_eq!(
            bad(10, "90s").idle_timeout(),
            Ok(std::time::Duration::from_secs(90))
        );
    }
}
