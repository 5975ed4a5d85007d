//! Delivery of closed recording chunks.
//!
//! Two paths, on purpose:
//! - the chunk's `recording.chunk` event (index, byte range, hashes) goes into the ordered,
//!   spooled event stream ([`crate::spool::EventLog`]) like every session event, so the
//!   hash is in the evidence chain in order with the session's operations;
//! - the chunk's bytes are appended to a spool file of their own (`recordings.spool` in the
//!   state directory, a sequence of frames) and posted to
//!   `POST /api/v1/gateway/recordings/{session}/chunks/{index}`, in order. The server
//!   stores them only when they match the hash already recorded (`409
//!   recording_chunk_unknown` until the event arrived: retried), and answers a retry of the
//!   same bytes with `already_stored`. The spool file is removed once everything in it was
//!   delivered, and read back (torn last frame dropped) when the gateway starts.

use super::recorder::RecordedChunk;
use crate::server_api::{ApiError, ServerApi};
use crate::spool::EventLog;
use jitgate_core::recording::parse_frame;
use jitgate_core::Timestamp;
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// One chunk waiting for delivery: session, index, frame.
type Pending = (String, u64, Vec<u8>);

/// Where a session's closed chunks go. Cheap to clone; never blocks the session.
#[derive(Clone)]
pub struct RecordingSink {
    events: EventLog,
    tx: mpsc::UnboundedSender<Pending>,
}

impl RecordingSink {
    /// Hand over a closed chunk of a session under `grant_id`, closed at `at`. Call it with
    /// every chunk a [`super::SessionRecorder`] returns, in order.
    pub fn chunk(&self, grant_id: &str, at: Timestamp, chunk: &RecordedChunk) {
        let detail = serde_json::to_value(chunk.detail()).unwrap_or_default();
        self.events.record(
            "recording.chunk",
            at,
            Some(grant_id),
            Some(&chunk.meta.session_id),
            detail,
        );
        // If the delivery task is gone the gateway is shutting down.
        let _ = self.tx.send((
            chunk.meta.session_id.clone(),
            chunk.meta.index,
            chunk.frame(),
        ));
    }

    /// A sink whose frames can be read back; for tests of code that records.
    pub fn detached(events: EventLog) -> (RecordingSink, mpsc::UnboundedReceiver<Pending>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (RecordingSink { events, tx }, rx)
    }
}

/// Start delivering chunks: what `spool_path` still holds first, then what sessions hand
/// over.
pub fn start(
    api: ServerApi,
    spool_path: PathBuf,
    events: EventLog,
) -> std::io::Result<(RecordingSink, tokio::task::JoinHandle<()>)> {
    let waiting = read_spool(&spool_path)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = tokio::spawn(deliver(api, spool_path, waiting, rx));
    Ok((RecordingSink { events, tx }, handle))
}

/// The frames in a spool file, in order. A frame that does not parse ends the reading: only
/// a torn write at a crash leaves one, and it can only be the last.
pub fn read_spool(path: &Path) -> std::io::Result<VecDeque<Pending>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(VecDeque::new()),
        Err(e) => return Err(e),
    };
    let mut out = VecDeque::new();
    let mut rest: &[u8] = &bytes;
    while !rest.is_empty() {
        match parse_frame(rest) {
            Ok((meta, _, used)) => {
                let (frame, tail) = rest.split_at(used);
                out.push_back((meta.session_id, meta.index, frame.to_vec()));
                rest = tail;
            }
            Err(e) => {
                tracing::warn!(error = %e, "dropping a damaged end of the recordings spool");
                break;
            }
        }
    }
    Ok(out)
}

fn append_spool(path: &Path, frame: &[u8]) -> std::io::Result<()> {
    let mut f = crate::private::options()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(frame)
}

async fn deliver(
    api: ServerApi,
    spool_path: PathBuf,
    mut waiting: VecDeque<Pending>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    let mut backoff = Duration::from_millis(200);
    let mut open = true;
    let take = |p: Pending, waiting: &mut VecDeque<Pending>| {
        if let Err(e) = append_spool(&spool_path, &p.2) {
            tracing::error!(error = %e, "cannot write the recordings spool; the chunk is kept in memory");
        }
        waiting.push_back(p);
    };
    loop {
        if waiting.is_empty() {
            if !open {
                return;
            }
            match rx.recv().await {
                Some(p) => take(p, &mut waiting),
                None => return,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(p) => take(p, &mut waiting),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let Some((session, index, frame)) = waiting.front().cloned() else {
            continue;
        };
        let retry = match api.post_recording_chunk(&session, index, frame).await {
            Ok(_) => false,
            // The chunk's event has not reached the server yet (it travels in the event
            // stream, which may be spooling too): try again.
            Err(ApiError::Refused { status: 409, body })
                if body.contains("recording_chunk_unknown") =>
            {
                true
            }
            Err(ApiError::Refused { status, body }) if (400..500).contains(&status) => {
                // Refused for what it is (the server checked it against the evidence):
                // sending it again cannot succeed. The verifier will name it missing.
                tracing::error!(session = %session, index, status, body = %body,
                    "the server refused a recording chunk; dropping it");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, session = %session, index, waiting = waiting.len(),
                    "recording chunk delivery failed; retrying");
                true
            }
        };
        if retry {
            let sleep = tokio::time::sleep(backoff);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    p = rx.recv(), if open => match p {
                        Some(p) => take(p, &mut waiting),
                        None => open = false,
                    },
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        backoff = Duration::from_millis(200);
        waiting.pop_front();
        if waiting.is_empty() {
            if let Err(e) = std::fs::remove_file(&spool_path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::error!(error = %e, "cannot clear the recordings spool");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{CastHeader, RecorderLimits, SessionRecorder};
    use std::sync::Arc;

    #[test]
    fn spool_reads_back_frames_and_drops_a_torn_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recordings.spool");
        let clock = Arc::new(jitgate_core::ManualClock::new(chrono::Utc::now()));
        let mut r = SessionRecorder::new(
            "sess-a",
            CastHeader::new(80, 24, 0),
            clock,
            RecorderLimits {
                chunk_bytes: 100,
                ..Default::default()
            },
        );
        let mut chunks = Vec::new();
        for _ in 0..3 {
            chunks.extend(r.output(&[b'y'; 150]));
        }
        chunks.extend(r.finish());
        assert!(chunks.len() > 2);
        for c in &chunks {
            append_spool(&path, &c.frame()).unwrap();
        }
        // A crash in the middle of writing one more frame.
        let torn = chunks[0].frame();
        append_spool(&path, &torn[..torn.len() / 2]).unwrap();
        let back = read_spool(&path).unwrap();
        assert_eq!(back.len(), chunks.len());
        for ((s, i, f), c) in back.iter().zip(&chunks) {
            assert_eq!((s.as_str(), *i, f), ("sess-a", c.meta.index, &c.frame()));
        }
    }
}
