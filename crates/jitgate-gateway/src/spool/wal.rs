//! The event stream's write-ahead file: every event is appended to it, with its gseq, before
//! whoever recorded it goes on (and so before an operation's answer reaches the client).
//!
//! On disk: segments `state_dir/events-<first gseq, 20 digits>.wal`, each JSON lines of
//! [`GatewayEvent`], owner-only. One `write(2)` per event, under a mutex that also assigns
//! the gseq, so the file's order is the gseq order and a SIGKILL loses nothing recorded
//! (the page cache outlives the process). `fdatasync` is the delivery task's business
//! ([`Wal::sync`]), not the recorder's, unless the policy asks for it per event.
//!
//! Each start opens a fresh segment (never appending after a torn line); a segment is
//! deleted once the server acknowledged everything in it, and the current one is closed
//! for a new one past [`ROTATE_BYTES`]: the files hold what is undelivered plus at most
//! one segment's worth.

use crate::wire::GatewayEvent;
use jitgate_core::Timestamp;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Segment size after which the next acknowledgement starts a new segment.
pub const ROTATE_BYTES: u64 = 4 * 1024 * 1024;

/// The spool file of gateways before the write-ahead file; read once, then removed.
const LEGACY: &str = "events.spool";

/// One written event: its gseq and its JSON line (no newline), shared with deliveries.
#[derive(Clone)]
pub struct Entry {
    pub gseq: i64,
    pub line: Arc<str>,
}

/// When the file is made durable against power loss (`fdatasync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// After every event, before the recorder goes on (one disk flush per operation).
    EveryEvent,
    /// By the delivery task, at most this often while there is something unsynced.
    Interval(std::time::Duration),
}

pub struct Wal {
    /// `None`: nothing on disk (unit tests of the session machinery).
    dir: Option<PathBuf>,
    policy: SyncPolicy,
    /// [`ROTATE_BYTES`] (smaller in tests).
    rotate_bytes: u64,
    state: Mutex<State>,
}

struct State {
    next_seq: i64,
    /// Written and not yet acknowledged by the server, oldest first.
    pending: VecDeque<Entry>,
    current: Option<Segment>,
    /// Older segments (first gseq, path), oldest first.
    closed: Vec<(i64, PathBuf)>,
    /// Closed segments written since their last `fdatasync`; whether the current one was;
    /// whether a segment was created since the directory's.
    unsynced: Vec<Arc<File>>,
    current_unsynced: bool,
    dir_unsynced: bool,
}

struct Segment {
    first: i64,
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    /// A failed write could not be undone: the next event goes to a new segment, never
    /// after a torn line.
    broken: bool,
}

/// What a start found in the files.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Events above the server's `delivered_seq`, to deliver first.
    pub events: usize,
    /// Lines that could not be read (a line torn by a kill mid-write), skipped.
    pub damaged: usize,
}

/// An event as written, without its gseq (the line is `{"gseq":N,` + the rest of this).
#[derive(serde::Serialize)]
struct Body<'a, D: serde::Serialize + ?Sized> {
    kind: &'a str,
    at: Timestamp,
    grant_id: Option<&'a str>,
    session_id: Option<&'a str>,
    data: &'a D,
}

impl Wal {
    /// A log that writes nowhere (unit tests).
    pub fn in_memory() -> Wal {
        Wal {
            dir: None,
            policy: SyncPolicy::Interval(std::time::Duration::from_secs(1)),
            rotate_bytes: ROTATE_BYTES,
            state: Mutex::new(State::new(1)),
        }
    }

    /// Open the write-ahead file in `dir` (the gateway's state directory, made owner-only
    /// by the caller): read back what is above `delivered_seq`, delete what is not, start a
    /// new segment.
    pub fn open(
        dir: &Path,
        delivered_seq: i64,
        policy: SyncPolicy,
    ) -> std::io::Result<(Wal, Recovered)> {
        adopt_legacy(dir)?;
        let mut segments = list_segments(dir)?;
        let mut recovered = Recovered::default();
        let mut pending: VecDeque<Entry> = VecDeque::new();
        let mut last = delivered_seq;
        for (first, path) in &segments {
            last = last.max(first - 1);
            for line in read_lines(path, &mut recovered.damaged)? {
                let Ok(event) = serde_json::from_str::<GatewayEvent>(&line) else {
                    tracing::warn!(file = %path.display(), "skipping a damaged line of the event write-ahead file (torn by a kill mid-write)");
                    recovered.damaged += 1;
                    continue;
                };
                // Above what the server has, each gseq once, in order.
                if event.gseq > last {
                    last = event.gseq;
                    pending.push_back(Entry {
                        gseq: event.gseq,
                        line: Arc::from(line),
                    });
                }
            }
        }
        recovered.events = pending.len();
        let next_seq = last + 1;
        // A segment named after the new one's first gseq holds nothing readable (or `last`
        // would be higher): it is started afresh.
        segments.retain(|(first, _)| *first != next_seq);
        let mut state = State::new(next_seq);
        state.pending = pending;
        state.closed = segments;
        state.current = Some(Segment::create(dir, next_seq)?);
        state.dir_unsynced = true;
        state.compact(delivered_seq);
        let wal = Wal {
            dir: Some(dir.to_path_buf()),
            policy,
            rotate_bytes: ROTATE_BYTES,
            state: Mutex::new(state),
        };
        wal.sync()?;
        Ok((wal, recovered))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write one event; its gseq once `write(2)` returned (with [`SyncPolicy::EveryEvent`],
    /// once it is on the disk). On an error nothing of it stays in the file and the gseq
    /// is not used.
    ///
    /// `data` is written as it serialises (a protocol's operation record straight from its
    /// struct, with no `serde_json::Value` in between: this runs once per relayed request).
    pub fn append<D: serde::Serialize + ?Sized>(
        &self,
        kind: &str,
        at: Timestamp,
        grant_id: Option<&str>,
        session_id: Option<&str>,
        data: &D,
    ) -> std::io::Result<(i64, usize)> {
        let body = serde_json::to_string(&Body {
            kind,
            at,
            grant_id,
            session_id,
            data,
        })
        .map_err(std::io::Error::other)?;
        let rest = body.strip_prefix('{').unwrap_or(&body);
        let mut st = self.lock();
        let gseq = st.next_seq;
        let line: Arc<str> = Arc::from(format!("{{\"gseq\":{gseq},{rest}"));
        if let Some(dir) = &self.dir {
            if st.current.as_ref().is_none_or(|s| s.broken) {
                st.start_segment(dir)?;
            }
            let Some(seg) = st.current.as_mut() else {
                return Err(std::io::Error::other("no write-ahead segment open"));
            };
            seg.write(&line)?;
            if self.policy == SyncPolicy::EveryEvent {
                seg.file.sync_data()?;
                if st.dir_unsynced {
                    File::open(dir)?.sync_all()?;
                    st.dir_unsynced = false;
                }
            } else {
                st.current_unsynced = true;
            }
        }
        st.next_seq += 1;
        st.pending.push_back(Entry { gseq, line });
        Ok((gseq, st.pending.len()))
    }

    /// Events written and not yet acknowledged.
    pub fn waiting(&self) -> usize {
        self.lock().pending.len()
    }

    /// The oldest `max` events waiting (a delivery).
    pub fn batch(&self, max: usize) -> Vec<Entry> {
        self.lock().pending.iter().take(max).cloned().collect()
    }

    /// The server has recorded everything up to `delivered_seq`: forget it, delete the
    /// segments it fills, start a new segment past [`ROTATE_BYTES`]. Returns what waits.
    pub fn acknowledged(&self, delivered_seq: i64) -> usize {
        let mut st = self.lock();
        while st.pending.front().is_some_and(|e| e.gseq <= delivered_seq) {
            st.pending.pop_front();
        }
        if let Some(dir) = &self.dir {
            if st
                .current
                .as_ref()
                .is_some_and(|s| s.len >= self.rotate_bytes)
            {
                if let Err(e) = st.start_segment(dir) {
                    tracing::error!(error = %e, "cannot start a new event write-ahead segment; the current one goes on");
                }
            }
            st.compact(delivered_seq);
        }
        st.pending.len()
    }

    /// Make everything written so far durable (`fdatasync`, and the directory after a new
    /// segment). Blocking: call it off the async runtime.
    pub fn sync(&self) -> std::io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let (files, dir_too) = {
            let mut st = self.lock();
            let mut files = std::mem::take(&mut st.unsynced);
            if std::mem::replace(&mut st.current_unsynced, false) {
                files.extend(st.current.as_ref().map(|s| Arc::clone(&s.file)));
            }
            (files, std::mem::replace(&mut st.dir_unsynced, false))
        };
        let result = (|| {
            for f in &files {
                f.sync_data()?;
            }
            if dir_too {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        if result.is_err() {
            // Still to do next time.
            let mut st = self.lock();
            st.unsynced.extend(files);
            st.dir_unsynced |= dir_too;
        }
        result
    }

    /// Whether [`Wal::sync`] has something to do.
    pub fn unsynced(&self) -> bool {
        let st = self.lock();
        !st.unsynced.is_empty() || st.current_unsynced || st.dir_unsynced
    }

    /// The segment files there are now (tests, diagnostics).
    pub fn segment_files(&self) -> Vec<PathBuf> {
        let st = self.lock();
        let mut out: Vec<PathBuf> = st.closed.iter().map(|(_, p)| p.clone()).collect();
        out.extend(st.current.as_ref().map(|s| s.path.clone()));
        out
    }
}

impl State {
    fn new(next_seq: i64) -> State {
        State {
            next_seq,
            pending: VecDeque::new(),
            current: None,
            closed: Vec::new(),
            unsynced: Vec::new(),
            current_unsynced: false,
            dir_unsynced: false,
        }
    }

    /// Close the current segment (if any) and open one starting at `next_seq`.
    fn start_segment(&mut self, dir: &Path) -> std::io::Result<()> {
        let seg = Segment::create(dir, self.next_seq)?;
        self.dir_unsynced = true;
        if let Some(old) = self.current.replace(seg) {
            if std::mem::replace(&mut self.current_unsynced, false) {
                self.unsynced.push(old.file);
            }
            if old.len == 0 {
                // Nothing in it: gone at once (it may have been torn and emptied).
                let _ = std::fs::remove_file(&old.path);
            } else {
                self.closed.push((old.first, old.path));
            }
        }
        Ok(())
    }

    /// Delete the closed segments whose every event is at or below `delivered_seq` (a
    /// segment ends where the next begins).
    fn compact(&mut self, delivered_seq: i64) {
        let firsts: Vec<i64> = self
            .closed
            .iter()
            .skip(1)
            .map(|(f, _)| *f)
            .chain(self.current.as_ref().map(|s| s.first))
            .collect();
        let mut keep = Vec::new();
        for ((first, path), next_first) in std::mem::take(&mut self.closed)
            .into_iter()
            .zip(firsts.into_iter().map(Some).chain(std::iter::repeat(None)))
        {
            let done = next_first.is_some_and(|n| n - 1 <= delivered_seq);
            if done {
                if let Err(e) = std::fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::error!(error = %e, file = %path.display(), "cannot delete a delivered event write-ahead segment");
                        keep.push((first, path));
                    }
                }
            } else {
                keep.push((first, path));
            }
        }
        self.closed = keep;
    }
}

impl Segment {
    fn create(dir: &Path, first: i64) -> std::io::Result<Segment> {
        let path = dir.join(segment_name(first));
        let file = crate::private::options()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        Ok(Segment {
            first,
            path,
            file: Arc::new(file),
            len: 0,
            broken: false,
        })
    }

    /// Append `line` and a newline in one `write(2)`; on an error cut the file back.
    fn write(&mut self, line: &str) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let mut f: &File = &self.file;
        match f.write_all(&buf) {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // A partial line (disk full) must not stay in front of the next event.
                if self.file.set_len(self.len).is_err() {
                    self.broken = true;
                }
                Err(e)
            }
        }
    }
}

fn segment_name(first: i64) -> String {
    format!("events-{first:020}.wal")
}

/// The segments in `dir`, oldest first.
fn list_segments(dir: &Path) -> std::io::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_prefix("events-"))
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        out.push((first, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// The lines of `path` (not valid UTF-8: counted as damaged and skipped).
fn read_lines(path: &Path, damaged: &mut usize) -> std::io::Result<Vec<String>> {
    let file = File::open(path)?;
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match String::from_utf8(line) {
            Ok(l) => out.push(l),
            Err(_) => {
                tracing::warn!(file = %path.display(), "skipping a damaged line of the event write-ahead file");
                *damaged += 1;
            }
        }
    }
    Ok(out)
}

/// A gateway upgraded from the spool file: it becomes the oldest segment (same lines).
fn adopt_legacy(dir: &Path) -> std::io::Result<()> {
    let legacy = dir.join(LEGACY);
    let mut damaged = 0;
    let lines = match read_lines(&legacy, &mut damaged) {
        Ok(lines) => lines,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let first = lines
        .iter()
        .find_map(|l| serde_json::from_str::<GatewayEvent>(l).ok())
        .map(|e| e.gseq);
    match first {
        Some(first) => std::fs::rename(&legacy, dir.join(segment_name(first))),
        None => std::fs::remove_file(&legacy),
    }
}

#[cfg(test)]
mod tests;
