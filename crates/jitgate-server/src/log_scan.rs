//! One read of the stored log, handed to whoever needs every event: the findings
//! (`jitgate_core::findings::FindingsScan`), the compliance report's figures
//! (`jitgate_evidence::compliance::Accumulator`), or both at once. The store reads pages ahead
//! on its own thread ([`jitgate_store::Store::scan_log`]) while a blocking thread hands each
//! event's canonical text to a reader, its kind found without parsing it
//! ([`jitgate_core::event::kind_of_canonical`]). A report that also cites findings reads the
//! log once, not twice, and decodes for both readers on two threads ([`read_log_pair`]).

use crate::error::ServerError;
use jitgate_core::findings::FindingsScan;
use jitgate_evidence::compliance::Accumulator;
use jitgate_store::{LogPage, Store};
use std::sync::Arc;

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

/// Two readers fed by the same read on one thread, one event after the other (see
/// [`read_log_pair`] for two threads).
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
            feed(&mut reader, &page?)?;
        }
        Ok(reader)
    })
    .await
    .map_err(|e| ServerError::Internal(format!("reading the log: {e}")))?
}

/// Feed the log's events up to `up_to` (all when `None`) to two readers from one read, each
/// decoding on its own thread: the pages are shared, not copied. Decoding, not reading, is
/// what a reader of the whole log spends its time on, so two readers side by side take
/// about as long as the slower one, not as long as both.
pub async fn read_log_pair<A: LogReader, B: LogReader>(
    store: &Store,
    mut first: A,
    mut second: B,
    up_to: Option<i64>,
) -> Result<(A, B), ServerError> {
    let mut scan = store.scan_log(up_to).await?;
    tokio::task::spawn_blocking(move || -> Result<(A, B), ServerError> {
        // A few pages of slack so neither thread waits on the other's every page.
        let (pages, received) = std::sync::mpsc::sync_channel::<Arc<LogPage>>(4);
        let other = std::thread::Builder::new()
            .name("log-reader".into())
            .spawn(move || -> Result<B, ServerError> {
                let mut outcome = Ok(());
                // Keep taking pages after an error so the sender never blocks on a full
                // channel; the error is returned at the end.
                for page in received {
                    if outcome.is_ok() {
                        outcome = feed(&mut second, &page);
                    }
                }
                outcome.map(|()| second)
            })
            .map_err(|e| ServerError::Internal(format!("reading the log: no thread: {e}")))?;
        let mut outcome = Ok(());
        while let Some(page) = scan.blocking_next() {
            let page = match page {
                Ok(p) => Arc::new(p),
                Err(e) => {
                    outcome = Err(e.into());
                    break;
                }
            };
            if pages.send(Arc::clone(&page)).is_err() {
                break;
            }
            outcome = feed(&mut first, &page);
            if outcome.is_err() {
                break;
            }
        }
        drop(pages);
        let second = other
            .join()
            .map_err(|_| ServerError::Internal("reading the log: a reader panicked".into()))??;
        outcome.map(|()| (first, second))
    })
    .await
    .map_err(|e| ServerError::Internal(format!("reading the log: {e}")))?
}

fn feed<R: LogReader>(reader: &mut R, page: &LogPage) -> Result<(), ServerError> {
    for leaf in page.iter() {
        let kind = jitgate_core::event::kind_of_canonical(leaf.canonical);
        reader.read(leaf.seq, kind, leaf.canonical)?;
    }
    Ok(())
}
