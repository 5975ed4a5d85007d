//! Delivery of closed recording chunks.
//!
//! Two paths, on purpose:
//! - the chunk's `recording.chunk` event (index, byte range, hashes) goes into the ordered,
//!   spooled event stream ([`crate::spool::EventLog`]) like every session event, so the
//!   hash is in the evidence chain in order with the session's operations;
//! - the chunk's bytes are written, framed, to the recordings spool in the state directory
//!   and posted from there to `POST /api/v1/gateway/recordings/{session}/chunks/{index}`,
//!   in order. The server stores them only when they match the hash already recorded (`409
//!   recording_chunk_unknown` until the event arrived: retried), and answers a retry of the
//!   same bytes with `already_stored`.
//!
//! ## The spool
//! Frames are written by a thread of their own (the sessions' relay tasks only hand the
//! chunk over), appended to segment files `recordings-<n>.spool`; a segment is removed as
//! soon as every frame in it was delivered, and a new one begun when the current one is
//! full ([`SpoolLimits::segment_bytes`]). In memory stays only where each undelivered frame
//! is (session, index, segment, offset, length): the delivery task reads the frame back to
//! post it. At start every segment left (and `recordings.spool`, the single file earlier
//! versions wrote) is read back in order, a torn last frame dropped, and delivered first.
//!
//! The spool is capped ([`SpoolLimits::max_bytes`], `[recordings] max_spool_bytes`): above
//! it, [`Room::wait`] holds the sessions' output relay until deliveries make room, so a
//! session slows to what can be recorded and delivered instead of the gateway's disk or
//! memory growing without bound — and nothing recorded is dropped to make room.

use super::recorder::RecordedChunk;
use crate::server_api::{ApiError, ServerApi};
use crate::spool::EventLog;
use jitgate_core::recording::parse_frame;
use jitgate_core::Timestamp;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// The spool file of earlier versions (one file, removed when all was delivered): still read
/// at start.
pub const LEGACY_SPOOL: &str = "recordings.spool";

/// Frames handed over but not yet written may hold at most this much memory (a disk slower
/// than the sessions): above it the sessions wait as they do for a full spool.
const MAX_UNWRITTEN: u64 = 8 * 1024 * 1024;

/// How much the recordings spool may hold (`[recordings]` in `gateway.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    /// Bytes of frames not yet delivered (and of delivered frames whose segment file holds
    /// undelivered ones too), above which sessions' output waits.
    pub max_bytes: u64,
}

/// The default cap: 256 MiB of disk. Interactive sessions write kilobytes a minute, so this
/// holds days of them while the server is away; a bulk transfer reaches it in seconds and
/// then goes at the speed the server stores recordings.
pub const DEFAULT_MAX_SPOOL_BYTES: u64 = 256 * 1024 * 1024;

/// The smallest cap accepted: a few of the largest frames.
pub const MIN_MAX_SPOOL_BYTES: u64 = 4 * 1024 * 1024;

impl Default for SpoolLimits {
    fn default() -> Self {
        SpoolLimits {
            max_bytes: DEFAULT_MAX_SPOOL_BYTES,
        }
    }
}

impl SpoolLimits {
    /// A segment file is closed at this size: an eighth of the cap (1–32 MiB), so delivered
    /// frames wait at most that long on disk for the rest of their file.
    pub fn segment_bytes(&self) -> u64 {
        (self.max_bytes / 8).clamp(1024 * 1024, 32 * 1024 * 1024)
    }
}

/// One undelivered frame: which chunk, and where its bytes are.
#[derive(Clone)]
struct Entry {
    session: Arc<str>,
    index: u64,
    at: Place,
}

#[derive(Clone)]
enum Place {
    Spool {
        segment: u64,
        offset: u64,
        len: u64,
    },
    /// Writing the spool failed: the frame is kept in memory (still counted in the cap).
    Memory(Arc<Vec<u8>>),
}

struct Segment {
    path: PathBuf,
    /// Bytes written (or being written) to it.
    bytes: u64,
    /// Its frames not yet delivered, including one being written.
    undelivered: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Entry>,
    segments: BTreeMap<u64, Segment>,
    /// The segment the writer appends to.
    current: Option<u64>,
    next_segment: u64,
    /// The writer thread has ended (every sink was dropped).
    writer_done: bool,
}

struct Shared {
    dir: PathBuf,
    limits: SpoolLimits,
    state: Mutex<State>,
    /// Bytes handed over and not yet gone: waiting to be written, in segment files, or kept
    /// in memory. What the cap is checked against.
    held: AtomicU64,
    /// Bytes handed over and not yet written.
    unwritten: AtomicU64,
    /// Wakes the delivery task: a frame was spooled, or the writer ended.
    spooled: Notify,
    /// Wakes the sessions waiting for room.
    room: Notify,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn has_room(&self) -> bool {
        self.held.load(Ordering::Acquire) < self.limits.max_bytes
            && self.unwritten.load(Ordering::Acquire) < MAX_UNWRITTEN.min(self.limits.max_bytes)
    }

    /// `len` bytes are gone from the spool.
    fn release(&self, len: u64) {
        self.held.fetch_sub(len, Ordering::AcqRel);
        self.room.notify_waiters();
    }
}

enum ToWriter {
    Frame {
        session: Arc<str>,
        index: u64,
        header: Vec<u8>,
        bytes: Vec<u8>,
    },
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Where a session's closed chunks go. Cheap to clone; never blocks the session (the
/// session waits for room with [`RecordingSink::room`] before relaying more output).
#[derive(Clone)]
pub struct RecordingSink {
    events: EventLog,
    shared: Arc<Shared>,
    tx: mpsc::Sender<ToWriter>,
}

/// What a session's output relay waits on when the recordings spool is full.
#[derive(Clone)]
pub struct Room(Arc<Shared>);

impl Room {
    /// Return once the spool is below its cap (at once, usually).
    pub async fn wait(&self) {
        loop {
            // Registered before the check, so a release in between is not missed.
            let released = self.0.room.notified();
            if self.0.has_room() {
                return;
            }
            released.await;
        }
    }

    /// Whether the spool is below its cap now.
    pub fn available(&self) -> bool {
        self.0.has_room()
    }
}

impl RecordingSink {
    /// Hand over a closed chunk of a session under `grant_id`, closed at `at`. Call it with
    /// every chunk a [`super::SessionRecorder`] returns, in order.
    pub fn chunk(&self, grant_id: &str, at: Timestamp, chunk: RecordedChunk) {
        let detail = serde_json::to_value(chunk.detail()).unwrap_or_default();
        // Written before the bytes are handed on. A failure (logged) does not stop the
        // bytes: the session's next operation fails closed on the same full disk.
        let _ = self.events.record(
            "recording.chunk",
            at,
            Some(grant_id),
            Some(&chunk.meta.session_id),
            detail,
        );
        let header = chunk.meta.frame_header();
        let len = (header.len() + chunk.bytes.len()) as u64;
        self.shared.held.fetch_add(len, Ordering::AcqRel);
        self.shared.unwritten.fetch_add(len, Ordering::AcqRel);
        // If the writer is gone the gateway is shutting down.
        let _ = self.tx.send(ToWriter::Frame {
            session: Arc::from(chunk.meta.session_id.as_str()),
            index: chunk.meta.index,
            header,
            bytes: chunk.bytes,
        });
    }

    /// What sessions wait on before relaying more output.
    pub fn room(&self) -> Room {
        Room(Arc::clone(&self.shared))
    }

    /// Bytes in the spool (written or waiting to be), not yet delivered and removed.
    pub fn spooled_bytes(&self) -> u64 {
        self.shared.held.load(Ordering::Acquire)
    }

    /// Make sure every chunk handed over so far is on disk (gateway shutdown).
    pub async fn flush_to_disk(&self, timeout: Duration) -> bool {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send(ToWriter::Flush(done)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(())))
    }
}

/// Start delivering chunks: what the spool in `state_dir` still holds first, then what
/// sessions hand over.
pub fn start(
    api: ServerApi,
    state_dir: &Path,
    events: EventLog,
    limits: SpoolLimits,
) -> std::io::Result<(RecordingSink, tokio::task::JoinHandle<()>)> {
    let shared = Arc::new(Shared {
        dir: state_dir.to_path_buf(),
        limits,
        state: Mutex::new(State::default()),
        held: AtomicU64::new(0),
        unwritten: AtomicU64::new(0),
        spooled: Notify::new(),
        room: Notify::new(),
    });
    {
        let (segments, queue, next) = read_spool(state_dir)?;
        let held = segments.values().map(|s| s.bytes).sum();
        shared.held.store(held, Ordering::Release);
        let mut st = shared.state();
        st.segments = segments;
        st.queue = queue;
        st.next_segment = next;
    }
    let (tx, rx) = mpsc::channel();
    let writer_shared = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("recordings-spool".into())
        .spawn(move || writer(&writer_shared, &rx))?;
    let handle = tokio::spawn(deliver(api, Arc::clone(&shared)));
    Ok((RecordingSink { events, shared, tx }, handle))
}

/// Segment ids order the files: 0 is [`LEGACY_SPOOL`], `n + 1` is `recordings-<n>.spool`.
fn segment_path(dir: &Path, id: u64) -> PathBuf {
    match id.checked_sub(1) {
        Some(n) => dir.join(format!("recordings-{n:08}.spool")),
        None => dir.join(LEGACY_SPOOL),
    }
}

/// The spool files in `dir`, in the order they were written: the legacy file, then the
/// segments by number.
fn spool_files(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == LEGACY_SPOOL {
            out.push((0, entry.path()));
        } else if let Some(n) = name
            .strip_prefix("recordings-")
            .and_then(|n| n.strip_suffix(".spool"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push((n + 1, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// One frame as read back from the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledFrame {
    pub session: String,
    pub index: u64,
    pub frame: Vec<u8>,
}

/// Every frame the spool in `dir` holds, in order (for tests and inspection; the delivery
/// task keeps only their places).
pub fn spooled_frames(dir: &Path) -> std::io::Result<Vec<SpooledFrame>> {
    let mut out = Vec::new();
    for (_, path) in spool_files(dir)? {
        scan_file(&path, |session, index, _, frame| {
            out.push(SpooledFrame {
                session: session.to_string(),
                index,
                frame: frame.to_vec(),
            })
        })?;
    }
    Ok(out)
}

/// Call `f(session, index, offset, frame)` for each frame of one spool file, in order. A
/// frame that does not parse ends the reading: only a torn write at a crash (or a failed
/// write, after which the writer moves to a new file) leaves one, and it can only be the
/// last. Returns the file's length.
fn scan_file(path: &Path, mut f: impl FnMut(&str, u64, u64, &[u8])) -> std::io::Result<u64> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let size = file.metadata()?.len();
    let mut r = BufReader::new(file);
    let mut offset = 0u64;
    let mut frame = Vec::new();
    while offset < size {
        frame.clear();
        // The header line (bounded), then as many bytes as it says.
        let header_limit = jitgate_core::recording::MAX_HEADER_BYTES as u64;
        (&mut r).take(header_limit).read_until(b'\n', &mut frame)?;
        let parsed = match parse_frame(&frame) {
            Err(jitgate_core::recording::FrameError::Truncated { needed })
                if frame.ends_with(b"\n") =>
            {
                let have = frame.len();
                frame.resize(have + needed, 0);
                match r.read_exact(&mut frame[have..]) {
                    Ok(()) => parse_frame(&frame).map(|(m, _, _)| m),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        Err(jitgate_core::recording::FrameError::Truncated { needed })
                    }
                    Err(e) => return Err(e),
                }
            }
            other => other.map(|(m, _, _)| m),
        };
        match parsed {
            Ok(meta) => {
                f(&meta.session_id, meta.index, offset, &frame);
                offset += frame.len() as u64;
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), offset, error = %e,
                    "dropping a damaged end of the recordings spool");
                break;
            }
        }
    }
    Ok(size)
}

type Spooled = (BTreeMap<u64, Segment>, VecDeque<Entry>, u64);

/// What the spool holds at start: its files as segments, their frames' places in order,
/// and the next segment number. Files without an undelivered frame are removed.
fn read_spool(dir: &Path) -> std::io::Result<Spooled> {
    let mut segments = BTreeMap::new();
    let mut queue = VecDeque::new();
    let mut next = 1;
    for (id, path) in spool_files(dir)? {
        next = next.max(id + 1);
        let before = queue.len();
        let bytes = scan_file(&path, |session, index, offset, frame| {
            queue.push_back(Entry {
                session: Arc::from(session),
                index,
                at: Place::Spool {
                    segment: id,
                    offset,
                    len: frame.len() as u64,
                },
            });
        })?;
        let undelivered = queue.len() - before;
        if undelivered == 0 {
            remove_file(&path);
            continue;
        }
        segments.insert(
            id,
            Segment {
                path,
                bytes,
                undelivered,
            },
        );
    }
    Ok((segments, queue, next))
}

fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::error!(file = %path.display(), error = %e, "cannot remove a recordings spool file");
        }
    }
}

/// The writer thread: appends each frame handed over to the current segment, then queues
/// its place for delivery.
fn writer(shared: &Shared, rx: &mpsc::Receiver<ToWriter>) {
    let mut file: Option<(u64, File)> = None;
    while let Ok(msg) = rx.recv() {
        match msg {
            ToWriter::Flush(done) => {
                let _ = done.send(());
            }
            ToWriter::Frame {
                session,
                index,
                header,
                bytes,
            } => write_frame(shared, &mut file, session, index, &header, &bytes),
        }
    }
    shared.state().writer_done = true;
    shared.spooled.notify_one();
}

fn write_frame(
    shared: &Shared,
    file: &mut Option<(u64, File)>,
    session: Arc<str>,
    index: u64,
    header: &[u8],
    bytes: &[u8],
) {
    let len = (header.len() + bytes.len()) as u64;
    // Reserve the frame's place (so the delivery task does not remove the file meanwhile),
    // in a new segment when the current one is full, or was removed once delivered.
    let (segment, offset, new_path) = {
        let mut st = shared.state();
        let open = file.as_ref().map(|(id, _)| *id);
        let current = st.current.filter(|c| {
            Some(*c) == open
                && st
                    .segments
                    .get(c)
                    .is_some_and(|s| s.bytes < shared.limits.segment_bytes())
        });
        let (segment, new_path) = match current {
            Some(c) => (c, None),
            None => {
                let id = st.next_segment.max(1);
                st.next_segment = id + 1;
                let path = segment_path(&shared.dir, id);
                st.segments.insert(
                    id,
                    Segment {
                        path: path.clone(),
                        bytes: 0,
                        undelivered: 0,
                    },
                );
                st.current = Some(id);
                (id, Some(path))
            }
        };
        let seg = st.segments.get_mut(&segment);
        let offset = seg.as_ref().map_or(0, |s| s.bytes);
        if let Some(s) = seg {
            s.bytes += len;
            s.undelivered += 1;
        }
        (segment, offset, new_path)
    };
    if let Some(path) = new_path {
        *file = match crate::private::options()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(f) => Some((segment, f)),
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot create a recordings spool file");
                None
            }
        };
    }
    let written = match file {
        Some((id, f)) if *id == segment => f.write_all(header).and_then(|()| f.write_all(bytes)),
        _ => Err(std::io::Error::other("no spool file")),
    };
    let mut st = shared.state();
    shared.unwritten.fetch_sub(len, Ordering::AcqRel);
    let at = match written {
        Ok(()) => Place::Spool {
            segment,
            offset,
            len,
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot write the recordings spool; the chunk is kept in memory");
            // The file may now end with part of this frame: nothing more goes into it.
            *file = None;
            st.current = None;
            let mut gone = None;
            if let Some(s) = st.segments.get_mut(&segment) {
                s.bytes -= len;
                s.undelivered -= 1;
                if s.undelivered == 0 {
                    gone = st.segments.remove(&segment);
                }
            }
            if let Some(s) = gone {
                shared.held.fetch_sub(s.bytes, Ordering::AcqRel);
                remove_file(&s.path);
            }
            let mut frame = Vec::with_capacity(header.len() + bytes.len());
            frame.extend_from_slice(header);
            frame.extend_from_slice(bytes);
            Place::Memory(Arc::new(frame))
        }
    };
    st.queue.push_back(Entry { session, index, at });
    drop(st);
    shared.spooled.notify_one();
    shared.room.notify_waiters();
}

/// The front frame is done with (delivered, or refused for good): forget it, and remove its
/// segment file if that was its last undelivered frame.
fn done_with_front(shared: &Shared) {
    let mut st = shared.state();
    let Some(entry) = st.queue.pop_front() else {
        return;
    };
    let (released, path) = match entry.at {
        Place::Memory(frame) => (frame.len() as u64, None),
        Place::Spool { segment, .. } => {
            let empty = st.segments.get_mut(&segment).is_some_and(|s| {
                s.undelivered -= 1;
                s.undelivered == 0
            });
            match empty.then(|| st.segments.remove(&segment)).flatten() {
                Some(s) => {
                    if st.current == Some(segment) {
                        st.current = None;
                    }
                    (s.bytes, Some(s.path))
                }
                None => (0, None),
            }
        }
    };
    drop(st);
    if let Some(path) = path {
        remove_file(&path);
    }
    if released > 0 {
        shared.release(released);
    }
}

/// Read a spooled frame back (off the runtime's threads).
async fn read_frame(
    shared: &Shared,
    reader: &mut Option<(u64, Arc<File>)>,
    segment: u64,
    offset: u64,
    len: u64,
) -> std::io::Result<Vec<u8>> {
    let file = match reader {
        Some((id, f)) if *id == segment => Arc::clone(f),
        _ => {
            let path = shared
                .state()
                .segments
                .get(&segment)
                .map(|s| s.path.clone())
                .ok_or_else(|| std::io::Error::other("the frame's spool file is gone"))?;
            let f = Arc::new(tokio::task::spawn_blocking(move || File::open(path)).await??);
            *reader = Some((segment, Arc::clone(&f)));
            f
        }
    };
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0; usize::try_from(len).map_err(std::io::Error::other)?];
        let mut f: &File = &file;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(&mut buf)?;
        Ok(buf)
    })
    .await?
}

async fn deliver(api: ServerApi, shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(200);
    let mut reader: Option<(u64, Arc<File>)> = None;
    loop {
        let front = {
            let st = shared.state();
            match st.queue.front() {
                Some(e) => Some(e.clone()),
                None if st.writer_done => return,
                None => None,
            }
        };
        let Some(Entry { session, index, at }) = front else {
            // A permit is stored if the writer notified in between: nothing is missed.
            shared.spooled.notified().await;
            continue;
        };
        let frame = match at {
            Place::Memory(f) => Vec::clone(&f),
            Place::Spool {
                segment,
                offset,
                len,
            } => match read_frame(&shared, &mut reader, segment, offset, len).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(session = %session, index, error = %e,
                        "cannot read a recording chunk back from the spool; dropping it");
                    done_with_front(&shared);
                    continue;
                }
            },
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
                tracing::warn!(error = %e, session = %session, index,
                    "recording chunk delivery failed; retrying");
                true
            }
        };
        if retry {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        backoff = Duration::from_millis(200);
        done_with_front(&shared);
        // The file just read from may be gone now: close it.
        if reader
            .as_ref()
            .is_some_and(|(id, _)| !shared.state().segments.contains_key(id))
        {
            reader = None;
        }
    }
}

#[cfg(test)]
#[path = "deliver_tests.rs"]
mod tests;
