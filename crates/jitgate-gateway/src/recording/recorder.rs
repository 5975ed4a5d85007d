//! [`SessionRecorder`]: one session's asciicast, cut into hash-chained chunks.
//!
//! Chunk bounds (docs/gateway.md, "Recordings"): a chunk is closed
//! - when it holds at least [`RecorderLimits::chunk_bytes`] (64 KiB by default) — so one
//!   chunk is at most that plus one event line, and terminal data is cut into pieces of at
//!   most [`MAX_EVENT_DATA`] bytes so one line stays under 25 KiB;
//! - at the first call ([`SessionRecorder::tick`] included) at least
//!   [`RecorderLimits::chunk_age`] (10 s by default) after its first byte was written, so a
//!   cut or a crash loses at most that much of a quiet session;
//! - at [`SessionRecorder::finish`], which closes the last chunk (`last`, possibly empty).
//!
//! Chunks end at line boundaries, so every chunk is whole asciicast lines and the
//! concatenation of all chunks is the cast.

use super::asciicast::{event_line, CastHeader, Code, Utf8Stream};
use jitgate_core::recording::{ChunkHash, ChunkMeta, GENESIS, MAX_CHUNK_BYTES};
use jitgate_core::server_payload::RecordingChunkDetail;
use jitgate_core::{Clock, Timestamp};
use std::sync::Arc;
use std::time::Duration;

/// Terminal data is recorded in events of at most this many input bytes (JSON escaping
/// makes a line at most about 6 times longer).
pub const MAX_EVENT_DATA: usize = 4096;

/// When chunks are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderLimits {
    /// Close a chunk once it holds this many bytes (at most 512 KiB).
    pub chunk_bytes: usize,
    /// Close a chunk this long after its first byte.
    pub chunk_age: Duration,
}

impl Default for RecorderLimits {
    fn default() -> Self {
        RecorderLimits {
            chunk_bytes: 64 * 1024,
            chunk_age: Duration::from_secs(10),
        }
    }
}

/// A closed chunk: its place and hashes, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedChunk {
    pub meta: ChunkMeta,
    pub bytes: Vec<u8>,
}

impl RecordedChunk {
    /// The chunk framed for the spool and the upload (`jitgate_core::recording`).
    pub fn frame(&self) -> Vec<u8> {
        self.meta.frame(&self.bytes)
    }

    /// The detail of its `recording.chunk` event.
    pub fn detail(&self) -> RecordingChunkDetail {
        RecordingChunkDetail::from(&self.meta)
    }
}

/// One session's recording. Every method returns the chunks it closed (usually none),
/// oldest first; the caller hands them to a [`super::RecordingSink`] in that order.
pub struct SessionRecorder {
    session_id: String,
    clock: Arc<dyn Clock>,
    limits: RecorderLimits,
    started: Timestamp,
    /// The last event time written (µs since start): times never go back.
    last_micros: u64,
    buf: Vec<u8>,
    /// When the first byte of `buf` was written.
    buf_since: Option<Timestamp>,
    index: u64,
    offset: u64,
    prev: ChunkHash,
    output: Utf8Stream,
    input: Utf8Stream,
}

impl SessionRecorder {
    /// Start recording session `session_id` with `header` (its `timestamp` is set from the
    /// clock). The header is the first line of chunk 0.
    pub fn new(
        session_id: &str,
        mut header: CastHeader,
        clock: Arc<dyn Clock>,
        limits: RecorderLimits,
    ) -> Self {
        let started = clock.now();
        header.timestamp = started.timestamp();
        let limits = RecorderLimits {
            chunk_bytes: limits.chunk_bytes.clamp(1, MAX_CHUNK_BYTES / 2),
            chunk_age: limits.chunk_age,
        };
        let mut r = SessionRecorder {
            session_id: session_id.to_string(),
            clock,
            limits,
            started,
            last_micros: 0,
            buf: Vec::new(),
            buf_since: None,
            index: 0,
            offset: 0,
            prev: GENESIS,
            output: Utf8Stream::default(),
            input: Utf8Stream::default(),
        };
        r.buf_since = Some(started);
        r.buf = header.line();
        r
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Bytes sent to the client (an `o` event).
    pub fn output(&mut self, bytes: &[u8]) -> Vec<RecordedChunk> {
        self.data(Code::Output, bytes)
    }

    /// Bytes received from the client (an `i` event).
    pub fn input(&mut self, bytes: &[u8]) -> Vec<RecordedChunk> {
        self.data(Code::Input, bytes)
    }

    /// The client's terminal changed size (an `r` event).
    pub fn resize(&mut self, width: u16, height: u16) -> Vec<RecordedChunk> {
        self.event(Code::Resize, &format!("{width}x{height}"))
    }

    /// The client asked to run a command (an `m` marker `exec: <command>`).
    pub fn exec(&mut self, command: &str) -> Vec<RecordedChunk> {
        self.event(Code::Marker, &format!("exec: {command}"))
    }

    /// The command or shell exited with `status` (an `m` marker `exit: <status>`).
    pub fn exit(&mut self, status: u32) -> Vec<RecordedChunk> {
        self.event(Code::Marker, &format!("exit: {status}"))
    }

    /// The command or shell was killed by a signal (an `m` marker `exit: signal <name>`).
    pub fn exit_signal(&mut self, signal: &str) -> Vec<RecordedChunk> {
        self.event(Code::Marker, &format!("exit: signal {signal}"))
    }

    /// Close the open chunk if it is older than the age bound. Call it every few seconds
    /// (a quiet session writes nothing else).
    pub fn tick(&mut self) -> Vec<RecordedChunk> {
        let mut out = Vec::new();
        if self.due(self.clock.now()) {
            out.push(self.close(false));
        }
        out
    }

    /// End the recording: what is pending is written and the last chunk closed (`last`).
    pub fn finish(mut self) -> Vec<RecordedChunk> {
        let mut out = Vec::new();
        for (code, rest) in [
            (Code::Output, self.output.finish()),
            (Code::Input, self.input.finish()),
        ] {
            if !rest.is_empty() {
                out.extend(self.event(code, &rest));
            }
        }
        out.push(self.close(true));
        out
    }

    fn data(&mut self, code: Code, bytes: &[u8]) -> Vec<RecordedChunk> {
        let mut out = Vec::new();
        for piece in bytes.chunks(MAX_EVENT_DATA) {
            let text = match code {
                Code::Input => self.input.feed(piece),
                _ => self.output.feed(piece),
            };
            if !text.is_empty() {
                out.extend(self.event(code, &text));
            }
        }
        out
    }

    fn event(&mut self, code: Code, data: &str) -> Vec<RecordedChunk> {
        let now = self.clock.now();
        let mut out = Vec::new();
        // An old chunk is closed before the new event, so no chunk spans more than the age.
        if self.due(now) {
            out.push(self.close(false));
        }
        let micros = u64::try_from((now - self.started).num_microseconds().unwrap_or(0))
            .unwrap_or(0)
            .max(self.last_micros);
        self.last_micros = micros;
        if self.buf.is_empty() {
            self.buf_since = Some(now);
        }
        self.buf.extend_from_slice(&event_line(micros, code, data));
        if self.buf.len() >= self.limits.chunk_bytes {
            out.push(self.close(false));
        }
        out
    }

    fn due(&self, now: Timestamp) -> bool {
        match self.buf_since {
            Some(since) if !self.buf.is_empty() => {
                (now - since).to_std().unwrap_or_default() >= self.limits.chunk_age
            }
            _ => false,
        }
    }

    fn close(&mut self, last: bool) -> RecordedChunk {
        let bytes = std::mem::take(&mut self.buf);
        let meta = ChunkMeta::of(
            &self.session_id,
            self.index,
            self.offset,
            last,
            self.prev,
            &bytes,
        );
        self.index += 1;
        self.offset += bytes.len() as u64;
        self.prev = meta.hash;
        self.buf_since = None;
        RecordedChunk { meta, bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jitgate_core::recording::{check_chain, parse_frame};
    use jitgate_core::ManualClock;
    use proptest::prelude::*;

    fn start() -> Timestamp {
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn recorder(limits: RecorderLimits) -> (SessionRecorder, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(start()));
        let mut h = CastHeader::new(100, 30, 0);
        h.env.insert("TERM".into(), "xterm-256color".into());
        h.title = Some("sess-test".into());
        (
            SessionRecorder::new("sess-test", h, clock.clone(), limits),
            clock,
        )
    }

    fn cast(chunks: &[RecordedChunk]) -> String {
        String::from_utf8(chunks.iter().flat_map(|c| c.bytes.clone()).collect()).unwrap()
    }

    #[test]
    fn a_session_is_one_cast_with_relative_times() {
        let (mut r, clock) = recorder(RecorderLimits::default());
        let mut chunks = Vec::new();
        clock.advance(chrono::Duration::milliseconds(250));
        chunks.extend(r.exec("uptime"));
        chunks.extend(r.input(b"ls\r"));
        clock.advance(chrono::Duration::milliseconds(750));
        chunks.extend(r.output("€ ok\r\n".as_bytes()));
        chunks.extend(r.resize(120, 40));
        chunks.extend(r.exit(0));
        assert!(chunks.is_empty(), "nothing closed before the bounds");
        chunks.extend(r.finish());
        assert_eq!(
            cast(&chunks),
            "{\"version\":2,\"width\":100,\"height\":30,\"timestamp\":1700000000,\"title\":\"sess-test\",\"env\":{\"TERM\":\"xterm-256color\"}}\n\
             [0.250000, \"m\", \"exec: uptime\"]\n\
             [0.250000, \"i\", \"ls\\r\"]\n\
             [1.000000, \"o\", \"€ ok\\r\\n\"]\n\
             [1.000000, \"r\", \"120x40\"]\n\
             [1.000000, \"m\", \"exit: 0\"]\n"
        );
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].meta.last);
    }

    #[test]
    fn chunks_close_by_size_and_by_age_and_chain() {
        let limits = RecorderLimits {
            chunk_bytes: 1000,
            chunk_age: Duration::from_secs(10),
        };
        let (mut r, clock) = recorder(limits);
        let mut chunks = r.output(&[b'x'; 3000]);
        assert!(!chunks.is_empty(), "closed by size");
        for c in &chunks {
            // At most the bound plus one event line.
            assert!(
                c.bytes.len() < 1000 + MAX_EVENT_DATA + 40,
                "{}",
                c.bytes.len()
            );
        }
        let before = chunks.len();
        chunks.extend(r.output(b"quiet"));
        clock.advance(chrono::Duration::seconds(9));
        chunks.extend(r.tick());
        assert_eq!(chunks.len(), before, "not yet due");
        clock.advance(chrono::Duration::seconds(1));
        chunks.extend(r.tick());
        assert_eq!(chunks.len(), before + 1, "closed by age");
        assert!(r.tick().is_empty(), "an empty chunk is never closed by age");
        chunks.extend(r.finish());
        let metas: Vec<ChunkMeta> = chunks.iter().map(|c| c.meta.clone()).collect();
        let state = check_chain("sess-test", &metas).unwrap();
        assert!(state.complete);
        for c in &chunks {
            let frame = c.frame();
            let (m, b, used) = parse_frame(&frame).unwrap();
            assert_eq!((&m, b, used), (&c.meta, &c.bytes[..], frame.len()));
            assert!(c.bytes.is_empty() || c.bytes.ends_with(b"\n"));
        }
    }

    #[test]
    fn time_never_goes_back() {
        let (mut r, clock) = recorder(RecorderLimits::default());
        clock.advance(chrono::Duration::seconds(2));
        let _ = r.output(b"a");
        clock.advance(chrono::Duration::seconds(-1));
        let _ = r.output(b"b");
        let text = cast(&r.finish());
        assert!(text.contains("[2.000000, \"o\", \"b\"]"), "{text}");
    }

    proptest! {
        /// Whatever the reads and the bounds, the chunks chain, end in `last`, and together
        /// are the cast: a header and one valid JSON event per line.
        #[test]
        fn chunks_reassemble_to_a_valid_cast(
            reads in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..3000), 0u8..4, 0i64..4000), 0..30),
            chunk_bytes in 1usize..5000) {
            let (mut r, clock) = recorder(RecorderLimits { chunk_bytes, chunk_age: Duration::from_secs(3) });
            let mut chunks = Vec::new();
            for (bytes, what, ms) in reads {
                clock.advance(chrono::Duration::milliseconds(ms));
                chunks.extend(match what {
                    0 => r.output(&bytes),
                    1 => r.input(&bytes),
                    2 => r.resize(bytes.len() as u16, 24),
                    _ => r.tick(),
                });
            }
            chunks.extend(r.finish());
            let metas: Vec<ChunkMeta> = chunks.iter().map(|c| c.meta.clone()).collect();
            prop_assert!(check_chain("sess-test", &metas).unwrap().complete);
            let text = cast(&chunks);
            let mut lines = text.lines();
            let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
            prop_assert_eq!(&header["version"], &serde_json::json!(2));
            let mut last = 0.0;
            for l in lines {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let t = v[0].as_f64().unwrap();
                prop_assert!(t >= last);
                last = t;
            }
        }
    }
}
