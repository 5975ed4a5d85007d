//! Delivery of session events and operations to the server's evidence log, in order, at
//! least once, nothing lost: events wait in memory while the server answers, and go to a
//! spool file on disk when it does not, to be delivered (first) once it is back — also after
//! a gateway restart. The server records each gateway sequence number (`gseq`) once, so
//! redelivery never duplicates.

use crate::server_api::ServerApi;
use crate::wire::GatewayEvent;
use jitgate_core::Timestamp;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

const BATCH: usize = 1000;

/// How long the first event of a delivery waits for others to join it. Each delivery is one
/// HTTP call and one write transaction at the server; at one delivery per Modbus operation
/// the server spent more CPU on recording an operation than the gateway on relaying it
/// (docs/BENCHMARKS.md, "Modbus through the gateway"). Evidence reaches the server at most
/// this much later; revocations do not wait on it (they use the control channel).
pub const DELIVERY_LINGER: Duration = Duration::from_millis(20);

/// Cheap handle sessions use to record events.
#[derive(Clone)]
pub struct EventLog {
    tx: mpsc::UnboundedSender<Msg>,
    /// What the metrics show of it.
    pub stats: std::sync::Arc<EventStats>,
}

/// Counts kept as events pass (the gateway's `/metrics`).
#[derive(Debug, Default)]
pub struct EventStats {
    /// Events waiting for the server's acknowledgement (in memory and on disk), as of the
    /// delivery task's last step.
    pub waiting: std::sync::atomic::AtomicUsize,
    /// Operations recorded, allowed and refused.
    pub operations_allowed: std::sync::atomic::AtomicU64,
    pub operations_refused: std::sync::atomic::AtomicU64,
}

enum Msg {
    Event(Incoming),
    /// Put every event not yet delivered on disk, then answer (gateway shutdown).
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl EventLog {
    /// Record an event (`kind`, time, grant, session, details). Never blocks the session.
    pub fn record(
        &self,
        kind: &str,
        at: Timestamp,
        grant: Option<&str>,
        session: Option<&str>,
        data: serde_json::Value,
    ) {
        // If the delivery task is gone the gateway is shutting down; the spool keeps what
        // was handed over before.
        let _ = self.tx.send(Msg::Event((
            kind.to_string(),
            at,
            grant.map(String::from),
            session.map(String::from),
            data,
        )));
    }

    /// Make sure nothing recorded so far exists only in memory: undelivered events are
    /// written to the spool file (delivered after the next start). Used at shutdown.
    pub async fn flush_to_disk(&self, timeout: Duration) -> bool {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(())))
    }
}

/// An event as [`in_memory`] gives it back: kind, grant, session, data.
#[cfg(test)]
pub(crate) type Recorded = (String, Option<String>, Option<String>, serde_json::Value);

/// An event log that delivers nowhere: what is recorded can be read back. For unit tests
/// of the session machinery.
#[cfg(test)]
pub(crate) fn in_memory() -> (EventLog, impl FnMut() -> Vec<Recorded>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let drain = move || {
        let mut out = Vec::new();
        while let Ok(msg) = rx.try_recv() {
            if let Msg::Event((kind, _, grant, session, data)) = msg {
                out.push((kind, grant, session, data));
            }
        }
        out
    };
    (
        EventLog {
            tx,
            stats: Default::default(),
        },
        drain,
    )
}

/// Start the delivery task. `delivered_seq` is what the server has already recorded.
pub fn start(
    api: ServerApi,
    spool_path: PathBuf,
    delivered_seq: i64,
) -> std::io::Result<(EventLog, tokio::task::JoinHandle<()>)> {
    let mut pending = read_spool(&spool_path)?;
    pending.retain(|e| e.gseq > delivered_seq);
    let next_seq = pending
        .last()
        .map(|e| e.gseq)
        .unwrap_or(delivered_seq)
        .max(delivered_seq)
        + 1;
    let spooled = pending.len();
    let (tx, rx) = mpsc::unbounded_channel();
    let stats = std::sync::Arc::new(EventStats::default());
    stats
        .waiting
        .store(pending.len(), std::sync::atomic::Ordering::Relaxed);
    let handle = tokio::spawn(deliver(
        api,
        spool_path,
        pending,
        spooled,
        next_seq,
        rx,
        stats.clone(),
    ));
    Ok((EventLog { tx, stats }, handle))
}

fn read_spool(path: &Path) -> std::io::Result<Vec<GatewayEvent>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<GatewayEvent>(&line) {
            Ok(e) => out.push(e),
            // A torn last line (crash mid-write) is the only way to get here; keep the rest.
            Err(err) => tracing::warn!(error = %err, "skipping a damaged spool line"),
        }
    }
    Ok(out)
}

fn append_spool(path: &Path, events: &[GatewayEvent]) -> std::io::Result<()> {
    let mut f = crate::private::options()
        .create(true)
        .append(true)
        .open(path)?;
    let mut buf = Vec::new();
    for e in events {
        serde_json::to_writer(&mut buf, e).map_err(std::io::Error::other)?;
        buf.push(b'\n');
    }
    f.write_all(&buf)?;
    f.sync_data()
}

type Incoming = (
    String,
    Timestamp,
    Option<String>,
    Option<String>,
    serde_json::Value,
);

async fn deliver(
    api: ServerApi,
    spool_path: PathBuf,
    mut pending: Vec<GatewayEvent>,
    mut spooled: usize,
    mut next_seq: i64,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    stats: std::sync::Arc<EventStats>,
) {
    let waiting = |n: usize| stats.waiting.store(n, std::sync::atomic::Ordering::Relaxed);
    let mut backoff = Duration::from_millis(200);
    let mut open = true;
    // Handle one message: queue an event, or spool what waits and answer a flush.
    let handle = |msg: Msg,
                  pending: &mut Vec<GatewayEvent>,
                  next_seq: &mut i64,
                  spooled: &mut usize| match msg {
        Msg::Event(item) => push(pending, next_seq, item),
        Msg::Flush(done) => {
            if *spooled < pending.len() {
                match append_spool(&spool_path, &pending[*spooled..]) {
                    Ok(()) => *spooled = pending.len(),
                    Err(err) => tracing::error!(error = %err, "cannot write the spool file"),
                }
            }
            let _ = done.send(());
        }
    };
    loop {
        // Gather what is waiting (without blocking when there is already work).
        if pending.is_empty() {
            match rx.recv().await {
                Some(msg) => handle(msg, &mut pending, &mut next_seq, &mut spooled),
                None => return,
            }
        }
        while pending.len() < 50 * BATCH {
            match rx.try_recv() {
                Ok(msg) => handle(msg, &mut pending, &mut next_seq, &mut spooled),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if pending.is_empty() {
            continue;
        }
        if open && pending.len() < BATCH {
            let linger = tokio::time::sleep(DELIVERY_LINGER);
            tokio::pin!(linger);
            while pending.len() < BATCH {
                tokio::select! {
                    _ = &mut linger => break,
                    msg = rx.recv() => match msg {
                        Some(msg) => handle(msg, &mut pending, &mut next_seq, &mut spooled),
                        None => { open = false; break; }
                    },
                }
            }
        }
        waiting(pending.len());
        let batch_len = pending.len().min(BATCH);
        // (A batch is the oldest events: delivery stays in order.)
        match api.post_events(&pending[..batch_len]).await {
            Ok(ack) => {
                let before = pending.len();
                pending.retain(|e| e.gseq > ack.delivered_seq);
                waiting(pending.len());
                spooled = spooled.saturating_sub(before - pending.len());
                if spooled == 0 {
                    // Nothing waiting is only on disk: start the spool file afresh. (Lines of
                    // delivered events left in it would be harmless: the server skips gseqs
                    // it has recorded.)
                    if let Err(e) = std::fs::remove_file(&spool_path) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            tracing::error!(error = %e, "cannot clear the spool file");
                        }
                    }
                }
                backoff = Duration::from_millis(200);
            }
            Err(e) => {
                // Server unreachable or refusing: make sure every waiting event is on disk.
                if spooled < pending.len() {
                    match append_spool(&spool_path, &pending[spooled..]) {
                        Ok(()) => spooled = pending.len(),
                        Err(err) => {
                            tracing::error!(error = %err, "cannot write the spool file; events are kept in memory")
                        }
                    }
                }
                tracing::warn!(error = %e, waiting = pending.len(), "event delivery failed; retrying");
                // Keep taking events (and flush requests) while waiting to retry.
                let sleep = tokio::time::sleep(backoff);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        msg = rx.recv() => match msg {
                            Some(msg) => handle(msg, &mut pending, &mut next_seq, &mut spooled),
                            None => { open = false; break; }
                        },
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        if !open && pending.is_empty() {
            return;
        }
    }
}

fn push(
    pending: &mut Vec<GatewayEvent>,
    next_seq: &mut i64,
    (kind, at, grant_id, session_id, data): Incoming,
) {
    pending.push(GatewayEvent {
        gseq: *next_seq,
        kind,
        at,
        grant_id,
        session_id,
        data,
    });
    *next_seq += 1;
}
