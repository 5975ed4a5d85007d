//! Live sessions: the registry every protocol's sessions join, and the handle a session
//! holds while it runs.
//!
//! This is the part of the session machinery a protocol front end uses as a library,
//! whether it relays frames ([`crate::relay`], Modbus) or terminates the client's
//! connection itself (an SSH server):
//!
//! 1. admission ([`crate::admission`]) and the credential check (the tunnel handshake,
//!    [`crate::handshake`], or the front end's own, e.g. an SSH certificate);
//! 2. the online grant check ([`crate::runtime::Gateway::check_grant_online`]);
//! 3. [`crate::runtime::Gateway::open_session`]: the session joins the registry and gets a
//!    [`SessionHandle`], after a last look at the revocation list;
//! 4. [`SessionHandle::started`], then [`SessionHandle::operation`] per operation and
//!    [`SessionHandle::touch`] on traffic, while racing the work against
//!    [`SessionHandle::cut`] (revocation, key retirement, shutdown, expiry, idle timeout);
//! 5. [`SessionHandle::end`]: `session.ended` with the reason, and the closed-session record
//!    that revocation acknowledgements (the teardown's proof that sessions closed) report.

use crate::protocol::OperationRecord;
use crate::spool::{EventLog, Unrecorded};
use crate::wire::SessionClosed;
use jitgate_core::server_payload::{SessionEndedDetail, SessionStartedDetail};
use jitgate_core::Timestamp;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long closed sessions are kept for acknowledgements after their credential expired.
const CLOSED_HORIZON_HOURS: i64 = 1;

/// Why a session is told to end, as `session.ended` records it (`grant_revoked`,
/// `key_retired`, `gateway_shutdown`, …). Empty until a cut is ordered.
type CutSignal = watch::Sender<String>;

/// A live session's entry in the registry: what it can be cut by.
struct Entry {
    grant_id: String,
    /// The key that signed the session's credential (cut on key retirement).
    kid: String,
    cut: CutSignal,
}

/// The live sessions of one gateway, and the recently closed ones per grant.
pub struct LiveSessions {
    events: EventLog,
    live: Mutex<HashMap<String, Entry>>,
    /// Sessions closed under each grant, with the grant's expiry (for acknowledgements).
    closed: Mutex<HashMap<String, (Timestamp, Vec<SessionClosed>)>>,
    /// Started sessions on disk, so a restart can record the end of those a killed process
    /// held (`crate::live_journal`); none in unit tests.
    journal: Option<crate::live_journal::Journal>,
}

/// Who a session is, for the registry and its evidence.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub session_id: String,
    pub grant_id: String,
    /// The key that signed the credential.
    pub kid: String,
    /// The credential's own expiry: the session ends then, by the gateway's clock.
    pub expires_at: Timestamp,
}

/// Traffic and operations of one session, reported at its end.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    pub operations: u64,
    pub denied: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl LiveSessions {
    pub fn new(events: EventLog) -> LiveSessions {
        LiveSessions {
            events,
            live: Mutex::new(HashMap::new()),
            closed: Mutex::new(HashMap::new()),
            journal: None,
        }
    }

    /// Keep started sessions in `journal` (the gateway does; see `crate::live_journal`).
    pub fn with_journal(mut self, journal: crate::live_journal::Journal) -> LiveSessions {
        self.journal = Some(journal);
        self
    }

    /// Add a session. `until_expiry` and `idle_timeout` bound it from now on.
    pub fn join(
        self: &Arc<Self>,
        info: SessionInfo,
        until_expiry: Duration,
        idle_timeout: Duration,
    ) -> SessionHandle {
        let (tx, rx) = watch::channel(String::new());
        self.lock_live().insert(
            info.session_id.clone(),
            Entry {
                grant_id: info.grant_id.clone(),
                kid: info.kid.clone(),
                cut: tx,
            },
        );
        let opened = Instant::now();
        SessionHandle {
            registry: Arc::clone(self),
            cut: rx,
            expires: opened + until_expiry,
            idle_timeout,
            opened,
            last_traffic_ms: Arc::new(AtomicU64::new(0)),
            started: false,
            ended: false,
            info,
        }
    }

    /// Order every live session matching `which` to end with `reason`; how many.
    fn cut_where(&self, which: impl Fn(&Entry) -> bool, reason: &str) -> usize {
        let live = self.lock_live();
        let mut n = 0;
        for entry in live.values().filter(|e| which(e)) {
            let _ = entry.cut.send(reason.to_string());
            n += 1;
        }
        n
    }

    /// End every live session of a grant (revocation); returns how many were told to.
    pub fn cut_grant(&self, grant: &str, reason: &str) -> usize {
        self.cut_where(|e| e.grant_id == grant, reason)
    }

    /// End every live session whose credential key `kid` signed.
    pub fn cut_key(&self, kid: &str, reason: &str) -> usize {
        self.cut_where(|e| e.kid == kid, reason)
    }

    /// End every live session (gateway shutdown).
    pub fn cut_all(&self, reason: &str) -> usize {
        self.cut_where(|_| true, reason)
    }

    pub fn count(&self) -> usize {
        self.lock_live().len()
    }

    pub fn count_of_grant(&self, grant: &str) -> usize {
        self.lock_live()
            .values()
            .filter(|e| e.grant_id == grant)
            .count()
    }

    pub fn count_of_key(&self, kid: &str) -> usize {
        self.lock_live().values().filter(|e| e.kid == kid).count()
    }

    /// Sessions closed under a grant (kept until an hour after its credential expired).
    pub fn closed_of(&self, grant: &str) -> Vec<SessionClosed> {
        self.lock_closed()
            .get(grant)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }

    fn leave(&self, info: &SessionInfo, closed: Option<SessionClosed>, now: Timestamp) {
        if let Some(record) = closed {
            let mut map = self.lock_closed();
            let horizon = now - chrono::Duration::hours(CLOSED_HORIZON_HOURS);
            map.retain(|_, (exp, _)| *exp > horizon);
            map.entry(info.grant_id.clone())
                .or_insert_with(|| (info.expires_at, Vec::new()))
                .1
                .push(record);
        }
        self.lock_live().remove(&info.session_id);
        if let Some(j) = &self.journal {
            j.closed(&info.session_id);
        }
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_closed(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (Timestamp, Vec<SessionClosed>)>> {
        self.closed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An operation's details as the event file takes them: the protocol's record, then what
/// only the relay knows (a failure code, the device's latency) — serialised once, straight
/// into the event's line.
#[derive(serde::Serialize)]
struct OperationData<'a, O: OperationRecord> {
    #[serde(flatten)]
    op: &'a O,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_latency_us: Option<u64>,
}

/// A running session's side of the registry. Dropping it without [`SessionHandle::end`]
/// removes the session from the registry; if it had started, `session.ended` is recorded
/// with reason `internal: session dropped`, so the evidence never shows a session that
/// never ends.
pub struct SessionHandle {
    registry: Arc<LiveSessions>,
    cut: watch::Receiver<String>,
    expires: Instant,
    idle_timeout: Duration,
    opened: Instant,
    /// Milliseconds after `opened` of the last traffic. An atomic so that the work (which
    /// touches it) and [`SessionHandle::cut`] (which reads it) can share `&self` in one
    /// task without a lock on the hot path.
    last_traffic_ms: Arc<AtomicU64>,
    started: bool,
    ended: bool,
    info: SessionInfo,
}

impl SessionHandle {
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// Record `session.started` (once the client knows it is in). `Err`: it could not be
    /// written, the session must end at once (see [`EventLog::record`]).
    pub fn started(
        &mut self,
        at: Timestamp,
        detail: &SessionStartedDetail,
    ) -> Result<(), Unrecorded> {
        self.started = true;
        self.record("session.started", at, to_json(detail))?;
        if let Some(j) = &self.registry.journal {
            j.opened(&self.info);
        }
        Ok(())
    }

    /// Record an event of this session (grant and session ids filled in); written to the
    /// event file before this returns ([`EventLog::record`]).
    pub fn record(
        &self,
        kind: &str,
        at: Timestamp,
        data: serde_json::Value,
    ) -> Result<(), Unrecorded> {
        self.record_data(kind, at, &data)
    }

    /// [`SessionHandle::record`] with details of any serialisable shape, written as they
    /// serialise.
    fn record_data<D: serde::Serialize + ?Sized>(
        &self,
        kind: &str,
        at: Timestamp,
        data: &D,
    ) -> Result<(), Unrecorded> {
        self.registry.events.record_data(
            kind,
            at,
            Some(&self.info.grant_id),
            Some(&self.info.session_id),
            data,
        )
    }

    /// Record one operation: the protocol's own record, plus what only the gateway knows
    /// (a failure code when the device failed it, the device's latency). `Ok` once it is
    /// in the event file: only then may its answer be relayed.
    pub fn operation<O: OperationRecord>(
        &self,
        at: Timestamp,
        op: &O,
        failure: Option<&str>,
        latency: Option<Duration>,
    ) -> Result<(), Unrecorded> {
        self.count_operation(op.allowed());
        let data = OperationData {
            op,
            failure,
            device_latency_us: latency.map(|l| u64::try_from(l.as_micros()).unwrap_or(u64::MAX)),
        };
        self.record_data("operation", at, &data)
    }

    /// Traffic seen now: restarts the idle timeout.
    pub fn touch(&self) {
        self.toucher().touch();
    }

    fn count_operation(&self, allowed: Option<bool>) {
        let stats = &self.registry.events.stats;
        let counter = match allowed {
            Some(true) => &stats.operations_allowed,
            Some(false) => &stats.operations_refused,
            None => return,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// A handle other tasks of the session (an SSH relay's channels) use to
    /// [`touch`](Toucher::touch) it.
    pub fn toucher(&self) -> Toucher {
        Toucher {
            opened: self.opened,
            last_traffic_ms: Arc::clone(&self.last_traffic_ms),
        }
    }

    /// Resolves when the session must end, with the reason: a cut ordered through the
    /// registry (`grant_revoked`, `key_retired`, `gateway_shutdown`, …), `expired` at the
    /// credential's expiry, or `idle_timeout` after the idle timeout without traffic.
    /// Race it against the session's work (`tokio::select!`); it borrows `&self` so the
    /// work can [`touch`](SessionHandle::touch) and record meanwhile.
    pub async fn cut(&self) -> String {
        // A clone sees what the original saw: a cut ordered before this call still fires.
        let mut cut = self.cut.clone();
        let expiry = tokio::time::sleep_until(self.expires);
        // Woken at the earliest moment the session could be idle; re-armed from the last
        // traffic if there was some since, so traffic costs a relaxed store, not a timer.
        let idle = tokio::time::sleep_until(self.opened + self.idle_timeout);
        tokio::pin!(expiry, idle);
        loop {
            tokio::select! {
                changed = cut.changed() => {
                    return match changed {
                        Ok(()) => cut.borrow().clone(),
                        // The registry entry is gone: only a shutdown does that.
                        Err(_) => "gateway_shutdown".into(),
                    };
                }
                () = &mut expiry => return "expired".into(),
                () = &mut idle => {
                    let last = self.opened
                        + Duration::from_millis(self.last_traffic_ms.load(Ordering::Relaxed));
                    let due = last + self.idle_timeout;
                    if due <= Instant::now() {
                        return "idle_timeout".into();
                    }
                    idle.as_mut().reset(due);
                }
            }
        }
    }

    /// End the session: leave the registry, keep the closed-session record for the
    /// grant's acknowledgements, record `session.ended`.
    pub fn end(mut self, reason: String, stats: SessionStats, closed_at: Timestamp) {
        self.ended = true;
        let record = SessionClosed {
            session_id: self.info.session_id.clone(),
            closed_at,
            reason: reason.clone(),
            bytes_from_client: stats.bytes_in,
            bytes_to_client: stats.bytes_out,
            operations: stats.operations,
            denied: stats.denied,
        };
        self.registry.leave(&self.info, Some(record), closed_at);
        // Nothing waits on this one; a failure is logged by the event log.
        let _ = self.record(
            "session.ended",
            closed_at,
            to_json(&SessionEndedDetail {
                reason,
                operations: stats.operations,
                denied: stats.denied,
                bytes_from_client: stats.bytes_in,
                bytes_to_client: stats.bytes_out,
            }),
        );
    }
}

/// Restarts a session's idle timeout from another task ([`SessionHandle::toucher`]).
#[derive(Clone)]
pub struct Toucher {
    opened: Instant,
    last_traffic_ms: Arc<AtomicU64>,
}

impl Toucher {
    /// Traffic seen now: restarts the idle timeout.
    pub fn touch(&self) {
        let ms = Instant::now()
            .saturating_duration_since(self.opened)
            .as_millis();
        self.last_traffic_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let now = crate::runtime::now_millis();
        if self.started {
            let _ = self.record(
                "session.ended",
                now,
                to_json(&SessionEndedDetail {
                    reason: "internal: session dropped".into(),
                    operations: 0,
                    denied: 0,
                    bytes_from_client: 0,
                    bytes_to_client: 0,
                }),
            );
        }
        self.registry.leave(&self.info, None, now);
    }
}

/// An event detail as the JSON the server records (the shapes are the core's).
pub(crate) fn to_json<T: serde::Serialize>(d: &T) -> serde_json::Value {
    serde_json::to_value(d).unwrap_or_default()
}
