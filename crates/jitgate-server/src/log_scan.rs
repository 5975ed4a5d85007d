//! One read of the stored log, handed to whoever needs every event: the findings
//! (`jitgate_core::findings::FindingsScan`), the compliance report's figures
//! (`jitgate_evidence::compliance::Accumulator`), or both at once. The store reads pages ahead
//! on its own thread ([`jitgate_store::Store::scan_log`]) while a blocking thread hands each
//! event's canonical text to the readers, its kind found once for all of them
//! ([`jitgate_core::event::kind_of_canonical`]). A report that also cites findings reads the
//! log once, not twice: reading was most of its cost.

use crate::error::ServerError;
use jitgate_core::findings::FindingsScan;
use jitgate_evidence::compliance::Accumulator;
use jitgate_store::Store;

/// Something that takes every event of the log, in sequence order.
pub trait LogReader: Send + 'static {
    /// One event: its sequence number, its kind when found in the text, its canonical text.
    fn read(&mut self, seq: i64, kind: Option<&str>, canonical: &str) -> Result<(), ServerError>;
}

impl LogReader for FindingsScan {
    fn read(&mut self, seq: i64, kind: Option<&str>, canonical: &str) -> Result<(), ServerError> {
        // Text that does not parse is skipped: verifying the log is `evidence verify`'s job.
        self.observe_canonical_of_kind(seq, kind, canonical);
        Ok(())
    }
}

impl LogReader for Accumulator {
    fn read(&mut self, seq: i64, kind: Option<&str>, canonical: &str) -> Result<(), ServerError> {
        // A signed report must not silently leave an event out.
        self.observe_canonical_of_kind(seq, kind, canonical)
            .map_err(|e| {
                ServerError::EvidenceBroken(format!(
                    "event {seq} of the log does not read as an event ({e}); run `jitgate evidence verify`"
                ))
            })
    }
}

/// Two readers fed by the same read.
impl<A: LogReader, B: LogReader> LogReader for (A, B) {
    fn read(&mut self, seq: i64, kind: Option<&str>, canonical: &str) -> Result<(), ServerError> {
        self.0.read(seq, kind, canonical)?;
        self.1.read(seq, kind, canonical)
    }
}

/// Feed the log's events up to `up_to` (all when `None`) to `reader`, in order, in one read.
pub async fn read_log<R: LogReader>(
    store: &Store,
    mut reader: R,
    up_to: Option<i64>,
) -> Result<R, ServerError> {
    let mut scan = store.scan_log(up_to).await?;
    tokio::task::spawn_blocking(move || -> Result<R, ServerError> {
        while let Some(page) = scan.blocking_next() {
            for leaf in page?.iter() {
                let kind = jitgate_core::event::kind_of_canonical(leaf.canonical);
                reader.read(leaf.seq, kind, leaf.canonical)?;
            }
        }
        Ok(reader)
    })
    .await
    .map_err(|e| ServerError::Internal(format!("reading the log: {e}")))?
}
