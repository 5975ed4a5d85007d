//! [`SessionRecorder`]: one session's asciicast, cut into hash-chained chunks.
//!
//! Chunk bounds (docs/gateway.md, "Recordings"): a chunk is closed
//! - when it holds at least [`RecorderLimits::chunk_bytes`] (512 KiB by default) — so one
//!   chunk is at most that plus one event line, and terminal data is cut into pieces of at
//!   most [`MAX_EVENT_DATA`] bytes so one line stays under 25 KiB;
//! - at the first call ([`SessionRecorder::tick`] included) at least
//!   [`RecorderLimits::chunk_age`] (10 s by default) after its first byte was written, so a
//!   cut or a crash loses at most that much of a quiet session;
//! - at [`SessionRecorder::finish`], which closes the last chunk (`last`, possibly empty).
//!
//! Chunks end at line boundaries, so every chunk is whole asciicast lines and the
//! concatenation of all chunks is the cast.
//!
//! Terminal data is the bulk of a recording and sits on the relay path, so it is escaped
//! straight into the open chunk's buffer (no intermediate `String`s); the buffer is
//! allocated once per chunk at its full size, and a closed chunk's bytes move to the sink
//! as they are.

use super::asciicast::{begin_event, end_event, escape_str, CastHeader, Code, Utf8Escaper};
use jitgate_core::recording::{ChunkHash, ChunkMeta, GENESIS, MAX_CHUNK_BYTES};
use jitgate_core::server_payload::RecordingChunkDetail;
use jitgate_core::{Clock, Timestamp};
use std::sync::Arc;
use std::time::Duration;

/// Terminal data is recorded in events of at most this many input bytes (JSON escaping
/// makes a line at most about 6 times longer).
pub const MAX_EVENT_DATA: usize = 4096;

/// The longest event line of terminal data: every input byte escaped as `\u00XX`, plus the
/// time, the code and the brackets.
const MAX_DATA_LINE: usize = 6 * MAX_EVENT_DATA + 48;

/// The first capacity of a chunk's buffer unless the chunk before was full.
const SMALL_BUF: usize = 8 * 1024;

/// When chunks are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderLimits {
    /// Close a chunk once it holds this many bytes (at most 512 KiB). 512 KiB by default:
    /// fewer, larger chunks for bulk output (each costs an event, a post and a stored row;
    /// at 64 KiB the recording cost the server twice the CPU per MiB and the gateway a
    /// quarter more, docs/BENCHMARKS.md); a crash loses at most the open chunk, which
    /// `chunk_age` bounds in time for a quiet session.
    pub chunk_bytes: usize,
    /// Close a chunk this long after its first byte.
    pub chunk_age: Duration,
}

impl Default for RecorderLimits {
    fn default() -> Self {
        RecorderLimits {
            chunk_bytes: 512 * 1024,
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
    /// The chunk framed for the spool and the upload (`jitgate_core::recording`), as one
    /// buffer (a copy; the sink writes [`ChunkMeta::frame_header`] and the bytes instead).
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
    output: Utf8Escaper,
    input: Utf8Escaper,
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
            output: Utf8Escaper::default(),
            input: Utf8Escaper::default(),
        };
        r.buf_since = Some(started);
        r.buf = r.new_buf(0);
        r.buf.extend_from_slice(&header.line());
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
        for code in [Code::Output, Code::Input] {
            let stream = match code {
                Code::Input => &mut self.input,
                _ => &mut self.output,
            };
            // An incomplete character at the end becomes U+FFFD, an event of its own.
            if stream.finish(&mut Vec::new()) {
                out.extend(self.event(code, "\u{FFFD}"));
            }
        }
        out.push(self.close(true));
        out
    }

    /// A buffer for the next chunk, after one of `after` bytes. After a full chunk (bulk
    /// output) it has room for the bound and one more line, so it never regrows on the
    /// relay path; otherwise it starts small and grows with the output, so an idle session
    /// does not hold a full chunk's buffer (512 KiB by default).
    fn new_buf(&self, after: usize) -> Vec<u8> {
        let full = self.limits.chunk_bytes + MAX_DATA_LINE;
        if after >= self.limits.chunk_bytes {
            Vec::with_capacity(full)
        } else {
            Vec::with_capacity(SMALL_BUF.min(full))
        }
    }

    fn data(&mut self, code: Code, bytes: &[u8]) -> Vec<RecordedChunk> {
        let mut out = Vec::new();
        for piece in bytes.chunks(MAX_EVENT_DATA) {
            let now = self.clock.now();
            let due = self.due(now);
            let micros = self.micros(now);
            // The line is written in place; if the piece completes no character (it is
            // all the start of one), no event is written and the line is taken back.
            let line_start = self.buf.len();
            begin_event(&mut self.buf, micros, code);
            let text_start = self.buf.len();
            let stream = match code {
                Code::Input => &mut self.input,
                _ => &mut self.output,
            };
            stream.feed(piece, &mut self.buf);
            if self.buf.len() == text_start {
                self.buf.truncate(line_start);
                continue;
            }
            end_event(&mut self.buf);
            self.wrote(now, micros, due, line_start, &mut out);
        }
        out
    }

    fn event(&mut self, code: Code, data: &str) -> Vec<RecordedChunk> {
        let now = self.clock.now();
        let due = self.due(now);
        let micros = self.micros(now);
        let line_start = self.buf.len();
        begin_event(&mut self.buf, micros, code);
        escape_str(&mut self.buf, data);
        end_event(&mut self.buf);
        let mut out = Vec::new();
        self.wrote(now, micros, due, line_start, &mut out);
        out
    }

    /// The event time (µs since start) for `now`: times never go back.
    fn micros(&self, now: Timestamp) -> u64 {
        u64::try_from((now - self.started).num_microseconds().unwrap_or(0))
            .unwrap_or(0)
            .max(self.last_micros)
    }

    /// A line was written at `line_start`, at `now`. An old chunk (`due` before the line)
    /// is closed without it, so no chunk spans more than the age; a full one is closed
    /// with it.
    fn wrote(
        &mut self,
        now: Timestamp,
        micros: u64,
        due: bool,
        line_start: usize,
        out: &mut Vec<RecordedChunk>,
    ) {
        self.last_micros = micros;
        if due {
            out.push(self.close_before(line_start));
        }
        if line_start == 0 || due {
            self.buf_since = Some(now);
        }
        if self.buf.len() >= self.limits.chunk_bytes {
            out.push(self.close(false));
        }
    }

    fn due(&self, now: Timestamp) -> bool {
        match self.buf_since {
            Some(since) if !self.buf.is_empty() => {
                (now - since).to_std().unwrap_or_default() >= self.limits.chunk_age
            }
            _ => false,
        }
    }

    /// Close the chunk made of the buffer before `line_start`; the line after it opens the
    /// next chunk. (Rare: only a chunk closed by age is closed before its newest line.)
    fn close_before(&mut self, line_start: usize) -> RecordedChunk {
        let mut next = self.new_buf(line_start);
        next.extend_from_slice(self.buf.get(line_start..).unwrap_or_default());
        self.buf.truncate(line_start);
        let bytes = std::mem::replace(&mut self.buf, next);
        self.seal(bytes, false)
    }

    /// Close the open chunk (`last`: the recording ends with it, no new buffer is needed).
    fn close(&mut self, last: bool) -> RecordedChunk {
        let next = if last {
            Vec::new()
        } else {
            self.new_buf(self.buf.len())
        };
        let bytes = std::mem::replace(&mut self.buf, next);
        self.buf_since = None;
        self.seal(bytes, last)
    }

    fn seal(&mut self, bytes: Vec<u8>, last: bool) -> RecordedChunk {
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

    /// Any byte, mapped so that a quarter are printable ASCII, a quarter UTF-8 lead bytes
    /// and a quarter continuation bytes: split, valid and invalid characters all occur.
    fn utf8_heavy(b: u8) -> u8 {
        match b % 4 {
            0 => b,
            1 => 0x20 + (b / 4) % 95,
            2 => 0x80 | ((b / 4) & 0x3f),
            _ => 0xc2 + (b / 4) % 0x33,
        }
    }

    #[test]
    fn chunk_buffers_take_full_size_only_after_a_full_chunk() {
        let limits = RecorderLimits {
            chunk_bytes: 100_000,
            chunk_age: Duration::from_secs(10),
        };
        let (mut r, clock) = recorder(limits);
        // A session that writes little holds a small buffer.
        r.output(b"$ ");
        assert_eq!(r.buf.capacity(), SMALL_BUF);
        // Bulk output: the first chunk grows its buffer; every chunk after a full one is
        // made at full size and never regrown.
        let mut chunks = Vec::new();
        for _ in 0..200 {
            chunks.extend(r.output(&[b'"'; 3000]));
        }
        assert!(chunks.len() > 3);
        for c in chunks.iter().skip(1) {
            assert_eq!(c.bytes.capacity(), 100_000 + MAX_DATA_LINE);
            assert!(c.bytes.len() <= 100_000 + MAX_DATA_LINE);
        }
        // Quiet again: a chunk closed by age (not full) leaves a small buffer.
        clock.advance(chrono::Duration::seconds(11));
        let aged = r.output(b"$ ");
        assert_eq!(aged.len(), 1, "closed by age");
        assert_eq!(r.buf.capacity(), SMALL_BUF);
    }

    proptest! {
        // Each case records up to 48 KiB: fewer cases keep the unoptimised test build quick.
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The cast is what the first version wrote: each read cut into pieces of
        /// `MAX_EVENT_DATA`, decoded (an incomplete character waiting for the next read),
        /// one event per piece that completed any text, with serde_json's escaping.
        #[test]
        fn the_cast_is_what_decoding_then_serialising_writes(
            reads in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..6000)
                .prop_map(|v| v.into_iter().map(utf8_heavy).collect::<Vec<u8>>()), any::<bool>()), 0..8),
            chunk_bytes in 1usize..20_000) {
            use crate::recording::asciicast::tests::Reference;
            let (mut r, clock) = recorder(RecorderLimits { chunk_bytes, chunk_age: Duration::from_secs(3) });
            let mut want = String::from_utf8(r.buf.clone()).unwrap();
            let (mut out_ref, mut in_ref) = (Reference::default(), Reference::default());
            let mut chunks = Vec::new();
            let line = |t: u64, code: &str, text: &str| {
                format!("[{}.{:06}, \"{code}\", {}]\n", t / 1_000_000, t % 1_000_000,
                    serde_json::to_string(text).unwrap())
            };
            for (i, (bytes, input)) in reads.iter().enumerate() {
                clock.advance(chrono::Duration::milliseconds(700));
                let t = (i as u64 + 1) * 700_000;
                for piece in bytes.chunks(MAX_EVENT_DATA) {
                    let (text, code) = if *input { (in_ref.feed(piece), "i") } else { (out_ref.feed(piece), "o") };
                    if !text.is_empty() {
                        want.push_str(&line(t, code, &text));
                    }
                }
                chunks.extend(if *input { r.input(bytes) } else { r.output(bytes) });
            }
            let t = reads.len() as u64 * 700_000;
            for (rest, code) in [(out_ref.finish(), "o"), (in_ref.finish(), "i")] {
                if !rest.is_empty() {
                    want.push_str(&line(t, code, &rest));
                }
            }
            chunks.extend(r.finish());
            prop_assert_eq!(cast(&chunks), want);
            for c in &chunks {
                prop_assert!(c.bytes.len() < chunk_bytes + MAX_DATA_LINE + 300);
            }
        }
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
