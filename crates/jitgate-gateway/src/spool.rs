//! Delivery of session events and operations to the server's evidence log, in order, at
//! least once, nothing lost. Every event is first written to the write-ahead file in
//! `state_dir` ([`wal`]), which assigns its gateway sequence number (`gseq`): recording
//! returns once the event is in the file, so what a session answers after recording is in
//! evidence even if the process is killed the next instant. A delivery task posts what was
//! written, in batches, from memory (the file is read back only at start), and deletes
//! what the server acknowledged. The server records each gseq once, so redelivery after a
//! restart never duplicates.

use crate::server_api::ServerApi;
use jitgate_core::Timestamp;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub mod wal;

pub use wal::SyncPolicy;

const BATCH: usize = 1000;

/// How long the first event of a delivery waits for others to join it. Each delivery is one
/// HTTP call and one write transaction at the server; at one delivery per Modbus operation
/// the server spent more CPU on recording an operation than the gateway on relaying it
/// (docs/BENCHMARKS.md, "Modbus through the gateway"). Evidence reaches the server at most
/// this much later; revocations do not wait on it (they use the control channel).
pub const DELIVERY_LINGER: Duration = Duration::from_millis(20);

/// The default `fdatasync` interval of the write-ahead file (`event_sync_interval`): what
/// a power loss (not a kill) may lose of the events the server has not yet taken.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// Cheap handle sessions use to record events.
#[derive(Clone)]
pub struct EventLog {
    handle: Arc<Handle>,
    /// What the metrics show of it.
    pub stats: Arc<EventStats>,
}

/// Counts kept as events pass (the gateway's `/metrics`).
#[derive(Debug, Default)]
pub struct EventStats {
    /// Events written and not yet acknowledged by the server (all in the write-ahead file).
    pub waiting: std::sync::atomic::AtomicUsize,
    /// Operations recorded, allowed and refused.
    pub operations_allowed: std::sync::atomic::AtomicU64,
    pub operations_refused: std::sync::atomic::AtomicU64,
}

/// An event could not be written to the write-ahead file (disk full, I/O error): nothing
/// may be answered on its strength.
#[derive(Debug)]
pub struct Unrecorded(pub std::io::Error);

impl std::fmt::Display for Unrecorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "evidence_unavailable: the gateway cannot write its event file in state_dir ({}); free disk space there",
            self.0
        )
    }
}

impl std::error::Error for Unrecorded {}

/// What the recorders and the delivery task share.
struct Shared {
    wal: wal::Wal,
    wake: Notify,
    /// Every [`EventLog`] is gone: deliver what is left, then stop.
    closed: AtomicBool,
}

/// The recorders' side; when the last [`EventLog`] goes, the delivery task is told.
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }
}

impl EventLog {
    /// Record an event (`kind`, time, grant, session, details): written to the write-ahead
    /// file before this returns (one `write`, no disk flush by default). `Err` when it could
    /// not be written: the caller must not answer on its strength (fail closed). Callers
    /// whose event answers nothing may ignore the error, which is logged here.
    pub fn record(
        &self,
        kind: &str,
        at: Timestamp,
        grant: Option<&str>,
        session: Option<&str>,
        data: serde_json::Value,
    ) -> Result<(), Unrecorded> {
        self.record_data(kind, at, grant, session, &data)
    }

    /// [`EventLog::record`] with details of any serialisable shape, written as they
    /// serialise (an operation record straight from its struct).
    pub fn record_data<D: serde::Serialize + ?Sized>(
        &self,
        kind: &str,
        at: Timestamp,
        grant: Option<&str>,
        session: Option<&str>,
        data: &D,
    ) -> Result<(), Unrecorded> {
        let shared = &self.handle.0;
        match shared.wal.append(kind, at, grant, session, data) {
            Ok((_, waiting)) => {
                self.stats.waiting.store(waiting, Ordering::Relaxed);
                // The delivery task wants to know when there is work, and when a batch is
                // full; not of every event.
                if waiting == 1 || waiting == BATCH {
                    shared.wake.notify_one();
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, kind, session, "cannot write an event to the write-ahead file; failing closed");
                Err(Unrecorded(e))
            }
        }
    }

    /// Make sure everything recorded so far is on the disk (`fdatasync`; a kill alone
    /// loses nothing written). Used at shutdown.
    pub async fn flush_to_disk(&self, timeout: Duration) -> bool {
        let shared = Arc::clone(&self.handle.0);
        let sync = tokio::task::spawn_blocking(move || shared.wal.sync());
        match tokio::time::timeout(timeout, sync).await {
            Ok(Ok(Ok(()))) => true,
            Ok(Ok(Err(e))) => {
                tracing::error!(error = %e, "cannot flush the event write-ahead file to disk");
                false
            }
            _ => false,
        }
    }

    /// The write-ahead file's segments now (tests, diagnostics).
    pub fn segment_files(&self) -> Vec<std::path::PathBuf> {
        self.handle.0.wal.segment_files()
    }
}

/// An event as [`in_memory`] gives it back: kind, grant, session, data.
#[cfg(test)]
pub(crate) type Recorded = (String, Option<String>, Option<String>, serde_json::Value);

/// An event log that delivers nowhere: what is recorded can be read back. For unit tests
/// of the session machinery.
#[cfg(test)]
pub(crate) fn in_memory() -> (EventLog, impl FnMut() -> Vec<Recorded>) {
    let shared = Arc::new(Shared {
        wal: wal::Wal::in_memory(),
        wake: Notify::new(),
        closed: AtomicBool::new(false),
    });
    let reader = Arc::clone(&shared);
    let drain = move || {
        let batch = reader.wal.batch(usize::MAX);
        if let Some(last) = batch.last() {
            reader.wal.acknowledged(last.gseq);
        }
        batch
            .iter()
            .filter_map(|e| serde_json::from_str::<crate::wire::GatewayEvent>(&e.line).ok())
            .map(|e| (e.kind, e.grant_id, e.session_id, e.data))
            .collect()
    };
    (
        EventLog {
            handle: Arc::new(Handle(shared)),
            stats: Default::default(),
        },
        drain,
    )
}

/// Open the write-ahead file in `state_dir` and start the delivery task: what the file
/// holds above `delivered_seq` (what the server has already recorded) is delivered first.
pub fn start(
    api: ServerApi,
    state_dir: &Path,
    delivered_seq: i64,
    policy: SyncPolicy,
) -> std::io::Result<(EventLog, tokio::task::JoinHandle<()>)> {
    let (wal, recovered) = wal::Wal::open(state_dir, delivered_seq, policy)?;
    if recovered.events > 0 || recovered.damaged > 0 {
        tracing::info!(
            undelivered = recovered.events,
            damaged_lines = recovered.damaged,
            "events from before the restart are delivered first"
        );
    }
    let stats = Arc::new(EventStats::default());
    stats.waiting.store(recovered.events, Ordering::Relaxed);
    let shared = Arc::new(Shared {
        wal,
        wake: Notify::new(),
        closed: AtomicBool::new(false),
    });
    let interval = match policy {
        SyncPolicy::EveryEvent => None,
        SyncPolicy::Interval(d) => Some(d),
    };
    let task = tokio::spawn(deliver(api, Arc::clone(&shared), interval, stats.clone()));
    Ok((
        EventLog {
            handle: Arc::new(Handle(shared)),
            stats,
        },
        task,
    ))
}

/// `fdatasync` the write-ahead file if the interval has passed since the last time.
async fn sync_due(
    shared: &Arc<Shared>,
    interval: Option<Duration>,
    last: &mut tokio::time::Instant,
) {
    let Some(interval) = interval else { return };
    if last.elapsed() < interval || !shared.wal.unsynced() {
        return;
    }
    *last = tokio::time::Instant::now();
    let s = Arc::clone(shared);
    match tokio::task::spawn_blocking(move || s.wal.sync()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot flush the event write-ahead file to disk")
        }
        Err(e) => tracing::error!(error = %e, "the event file's flush did not finish"),
    }
}

async fn deliver(
    api: ServerApi,
    shared: Arc<Shared>,
    interval: Option<Duration>,
    stats: Arc<EventStats>,
) {
    let waiting = |n: usize| stats.waiting.store(n, Ordering::Relaxed);
    let tick = interval.unwrap_or(Duration::from_secs(1));
    let mut last_sync = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        // Wait for work, flushing to disk what was written meanwhile.
        while shared.wal.waiting() == 0 {
            if shared.closed.load(Ordering::Acquire) {
                sync_due(&shared, interval, &mut last_sync).await;
                return;
            }
            tokio::select! {
                () = shared.wake.notified() => {}
                () = tokio::time::sleep(tick) => {}
            }
            sync_due(&shared, interval, &mut last_sync).await;
        }
        // Let a batch gather (recorders wake us when it is full).
        if !shared.closed.load(Ordering::Acquire) && shared.wal.waiting() < BATCH {
            let linger = tokio::time::sleep(DELIVERY_LINGER);
            tokio::pin!(linger);
            while shared.wal.waiting() < BATCH {
                tokio::select! {
                    () = &mut linger => break,
                    () = shared.wake.notified() => {}
                }
            }
        }
        sync_due(&shared, interval, &mut last_sync).await;
        // (A batch is the oldest events: delivery stays in order.)
        let batch = shared.wal.batch(BATCH);
        match api.post_event_lines(batch.iter().map(|e| &*e.line)).await {
            Ok(ack) => {
                waiting(shared.wal.acknowledged(ack.delivered_seq));
                backoff = Duration::from_millis(200);
            }
            Err(e) => {
                tracing::warn!(error = %e, waiting = shared.wal.waiting(), "event delivery failed; the events wait in the write-ahead file; retrying");
                // Meanwhile keep the file flushed on schedule.
                let until = tokio::time::Instant::now() + backoff;
                while tokio::time::Instant::now() < until {
                    tokio::time::sleep_until(until.min(tokio::time::Instant::now() + tick)).await;
                    sync_due(&shared, interval, &mut last_sync).await;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
