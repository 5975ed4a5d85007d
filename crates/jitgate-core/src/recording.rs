//! Session recordings as evidence: the chunk hash chain, the chunk framing, and the rule
//! for what a valid sequence of chunks is. Pure: the gateway (which writes recordings), the
//! server (which receives them) and the offline verifier (which checks them in a bundle)
//! all use this one definition.
//!
//! A recording is an asciicast file cut into **chunks** at event (line) boundaries. Chunk
//! `i` of session `s` carries its byte range in the cast (`offset`, `length`), whether it
//! is the last one (`last`), the hash of chunk `i − 1` (`prev_hash`; 32 zero bytes for
//! chunk 0) and its own hash:
//!
//! ```text
//! hash = SHA-256( "jitgate-recording-chunk/1\n"
//!               || u32 BE len(session) || session
//!               || u64 BE index || u64 BE offset || u8 last
//!               || prev_hash (32 bytes) || chunk bytes )
//! ```
//!
//! Binding the session, index, offset and predecessor into each hash makes a chunk moved to
//! another session or position, a dropped, duplicated or reordered chunk, or a truncated
//! recording detectable from the hashes alone; the hashes themselves are in the signed
//! evidence chain (`recording.chunk` events, [`crate::server_payload::RecordingChunkDetail`]).
//!
//! The framing (one chunk as bytes, for the gateway's spool and the upload to the server)
//! is a header line followed by the chunk bytes:
//!
//! ```text
//! jitgate-recording-chunk/1 <session> <index> <offset> <length> <last 0|1> <prev hex> <hash hex>\n
//! <length bytes>
//! ```
//!
//! [`parse_frame`] reads untrusted bytes: the header is at most [`MAX_HEADER_BYTES`], a
//! chunk at most [`MAX_CHUNK_BYTES`], every field is checked, and the hash is recomputed.

use sha2::{Digest, Sha256};
use thiserror::Error;

/// The framing's and the hash's version tag.
pub const FRAME_TAG: &str = "jitgate-recording-chunk/1";

/// The most bytes one chunk may hold, anywhere (gateway, server, bundle). The gateway
/// closes chunks long before (docs/gateway.md, "Recordings"); this bounds what a receiver
/// must buffer.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;

/// The longest header line, newline included.
pub const MAX_HEADER_BYTES: usize = 512;

/// The longest session id in a frame.
pub const MAX_SESSION_ID_LEN: usize = 128;

/// The most chunks one session's recording may have (at 64 KiB each, 64 GiB).
pub const MAX_CHUNKS: u64 = 1 << 20;

/// A SHA-256 value.
pub type ChunkHash = [u8; 32];

/// What chunk 0 names as its predecessor.
pub const GENESIS: ChunkHash = [0; 32];

/// Where a chunk sits in its recording, and its hashes. What the `recording.chunk` event
/// records (as hex) and what a frame's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkMeta {
    pub session_id: String,
    pub index: u64,
    /// Offset of the chunk's first byte in the whole cast.
    pub offset: u64,
    pub length: u64,
    /// The recording ends with this chunk (the session ended and the recorder finished).
    pub last: bool,
    pub prev_hash: ChunkHash,
    pub hash: ChunkHash,
}

/// The hash of a chunk (see the module documentation).
pub fn chunk_hash(
    session_id: &str,
    index: u64,
    offset: u64,
    last: bool,
    prev_hash: &ChunkHash,
    bytes: &[u8],
) -> ChunkHash {
    let mut h = Sha256::new();
    h.update(FRAME_TAG.as_bytes());
    h.update(b"\n");
    h.update((session_id.len() as u32).to_be_bytes());
    h.update(session_id.as_bytes());
    h.update(index.to_be_bytes());
    h.update(offset.to_be_bytes());
    h.update([u8::from(last)]);
    h.update(prev_hash);
    h.update(bytes);
    h.finalize().into()
}

impl ChunkMeta {
    /// The metadata of `bytes` as chunk `index` at `offset`, after `prev_hash`.
    pub fn of(
        session_id: &str,
        index: u64,
        offset: u64,
        last: bool,
        prev_hash: ChunkHash,
        bytes: &[u8],
    ) -> ChunkMeta {
        ChunkMeta {
            session_id: session_id.to_string(),
            index,
            offset,
            length: bytes.len() as u64,
            last,
            prev_hash,
            hash: chunk_hash(session_id, index, offset, last, &prev_hash, bytes),
        }
    }

    /// Whether `bytes` are this chunk's bytes (length and hash).
    pub fn matches(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.length
            && chunk_hash(
                &self.session_id,
                self.index,
                self.offset,
                self.last,
                &self.prev_hash,
                bytes,
            ) == self.hash
    }

    /// The frame of this chunk: header line and bytes. `bytes` must be the chunk's bytes.
    pub fn frame(&self, bytes: &[u8]) -> Vec<u8> {
        let header = self.frame_header();
        let mut out = Vec::with_capacity(header.len() + bytes.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(bytes);
        out
    }

    /// The frame's header line (newline included): a frame is this followed by the chunk's
    /// bytes, so a writer can put the two down one after the other without joining them.
    pub fn frame_header(&self) -> Vec<u8> {
        format!(
            "{FRAME_TAG} {} {} {} {} {} {} {}\n",
            self.session_id,
            self.index,
            self.offset,
            self.length,
            u8::from(self.last),
            hex::encode(self.prev_hash),
            hex::encode(self.hash)
        )
        .into_bytes()
    }
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("the frame ends early: {needed} more bytes are needed")]
    Truncated { needed: usize },
    #[error("the header line is longer than {MAX_HEADER_BYTES} bytes (or has no newline)")]
    HeaderTooLong,
    #[error("header field {field}: {message}")]
    Header {
        field: &'static str,
        message: String,
    },
    #[error("chunk of {length} bytes; at most {MAX_CHUNK_BYTES} are accepted")]
    TooLarge { length: u64 },
    #[error(
        "chunk {index} of session {session_id}: its bytes do not match the hash in its header \
         (altered in transit or on disk)"
    )]
    HashMismatch { session_id: String, index: u64 },
}

fn header_err(field: &'static str, message: impl Into<String>) -> FrameError {
    FrameError::Header {
        field,
        message: message.into(),
    }
}

/// A session id as recordings accept it: 1–128 characters of `[A-Za-z0-9._-]`.
pub fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SESSION_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Decode 64 lowercase hex digits.
pub fn decode_hash(hex_text: &str) -> Option<ChunkHash> {
    if hex_text.len() != 64
        || !hex_text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

fn decimal(field: &'static str, text: &str) -> Result<u64, FrameError> {
    // Plain decimal, no sign, no leading zeros (one spelling per number).
    if text.is_empty()
        || text.len() > 20
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return Err(header_err(field, "not a decimal number"));
    }
    text.parse()
        .map_err(|_| header_err(field, "out of range (64 bits)"))
}

/// Parse one frame at the start of `buf`: its metadata, its bytes, and how many bytes of
/// `buf` it took. The chunk's hash is recomputed and must match the header's.
pub fn parse_frame(buf: &[u8]) -> Result<(ChunkMeta, &[u8], usize), FrameError> {
    let window = buf.get(..buf.len().min(MAX_HEADER_BYTES)).unwrap_or(buf);
    let Some(nl) = window.iter().position(|b| *b == b'\n') else {
        return if buf.len() < MAX_HEADER_BYTES {
            Err(FrameError::Truncated { needed: 1 })
        } else {
            Err(FrameError::HeaderTooLong)
        };
    };
    let header = std::str::from_utf8(window.get(..nl).unwrap_or_default())
        .map_err(|_| header_err("header", "not UTF-8"))?;
    let fields: Vec<&str> = header.split(' ').collect();
    let [tag, session, index, offset, length, last, prev, hash] = fields.as_slice() else {
        return Err(header_err(
            "header",
            format!(
                "{} fields; a header has 8 separated by one space",
                fields.len()
            ),
        ));
    };
    if *tag != FRAME_TAG {
        return Err(header_err("tag", format!("expected {FRAME_TAG}")));
    }
    if !valid_session_id(session) {
        return Err(header_err(
            "session",
            format!("1–{MAX_SESSION_ID_LEN} characters of A-Z a-z 0-9 . _ -"),
        ));
    }
    let index = decimal("index", index)?;
    if index >= MAX_CHUNKS {
        return Err(header_err(
            "index",
            format!("at most {} chunks per recording", MAX_CHUNKS),
        ));
    }
    let offset = decimal("offset", offset)?;
    let length = decimal("length", length)?;
    if length > MAX_CHUNK_BYTES as u64 {
        return Err(FrameError::TooLarge { length });
    }
    if offset.checked_add(length).is_none() {
        return Err(header_err("offset", "offset + length overflows"));
    }
    let last = match *last {
        "0" => false,
        "1" => true,
        _ => return Err(header_err("last", "must be 0 or 1")),
    };
    let prev_hash = decode_hash(prev).ok_or_else(|| header_err("prev", "not 64 lowercase hex"))?;
    let hash = decode_hash(hash).ok_or_else(|| header_err("hash", "not 64 lowercase hex"))?;
    let start = nl + 1;
    // length ≤ MAX_CHUNK_BYTES, so this fits a usize.
    let end = start + length as usize;
    let Some(bytes) = buf.get(start..end) else {
        return Err(FrameError::Truncated {
            needed: end - buf.len(),
        });
    };
    let meta = ChunkMeta {
        session_id: (*session).to_string(),
        index,
        offset,
        length,
        last,
        prev_hash,
        hash,
    };
    if !meta.matches(bytes) {
        return Err(FrameError::HashMismatch {
            session_id: meta.session_id,
            index,
        });
    }
    Ok((meta, bytes, end))
}

/// What is wrong with a sequence of chunks, naming the chunk.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChainError {
    #[error("chunk {index} names session {found}, the recording is of {expected}")]
    OtherSession {
        index: u64,
        expected: String,
        found: String,
    },
    #[error(
        "chunk {found} where chunk {expected} was due: chunks {} are missing, duplicated or out of order",
        if found < expected { format!("{found}..{expected}") } else { format!("{expected}..{found}") }
    )]
    Index { expected: u64, found: u64 },
    #[error("chunk {index} starts at byte {found}; the previous chunks end at byte {expected}")]
    Offset {
        index: u64,
        expected: u64,
        found: u64,
    },
    #[error(
        "chunk {index} does not name chunk {}'s hash as its predecessor: a chunk before it was replaced",
        index.saturating_sub(1)
    )]
    PrevHash { index: u64 },
    #[error("chunk {index} follows the last chunk of the recording")]
    AfterLast { index: u64 },
    #[error("chunk {index}: {length} bytes; at most {MAX_CHUNK_BYTES} are accepted")]
    TooLarge { index: u64, length: u64 },
    #[error("chunk {index}: a recording has at most {MAX_CHUNKS} chunks")]
    TooMany { index: u64 },
}

/// A recording's chunks checked so far, fed one at a time in order. The server uses it on
/// `recording.chunk` events as they arrive; the offline verifier on a bundle's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    pub session_id: String,
    /// The next expected index (= chunks accepted).
    pub next_index: u64,
    /// Bytes accepted so far (= the next expected offset).
    pub bytes: u64,
    /// Hash of the last accepted chunk ([`GENESIS`] before the first).
    pub last_hash: ChunkHash,
    /// The last chunk was accepted: the recording is complete.
    pub complete: bool,
}

impl ChainState {
    pub fn new(session_id: &str) -> Self {
        ChainState {
            session_id: session_id.to_string(),
            next_index: 0,
            bytes: 0,
            last_hash: GENESIS,
            complete: false,
        }
    }

    /// Accept the next chunk, or say why it cannot follow. Nothing changes on an error.
    pub fn push(&mut self, c: &ChunkMeta) -> Result<(), ChainError> {
        if c.session_id != self.session_id {
            return Err(ChainError::OtherSession {
                index: c.index,
                expected: self.session_id.clone(),
                found: c.session_id.clone(),
            });
        }
        if self.complete {
            return Err(ChainError::AfterLast { index: c.index });
        }
        if c.index != self.next_index {
            return Err(ChainError::Index {
                expected: self.next_index,
                found: c.index,
            });
        }
        if c.index >= MAX_CHUNKS {
            return Err(ChainError::TooMany { index: c.index });
        }
        if c.length > MAX_CHUNK_BYTES as u64 {
            return Err(ChainError::TooLarge {
                index: c.index,
                length: c.length,
            });
        }
        if c.offset != self.bytes {
            return Err(ChainError::Offset {
                index: c.index,
                expected: self.bytes,
                found: c.offset,
            });
        }
        if c.prev_hash != self.last_hash {
            return Err(ChainError::PrevHash { index: c.index });
        }
        self.next_index += 1;
        self.bytes += c.length;
        self.last_hash = c.hash;
        self.complete = c.last;
        Ok(())
    }
}

/// Check a whole recording's chunks (metadata only), in the order given.
pub fn check_chain(session_id: &str, chunks: &[ChunkMeta]) -> Result<ChainState, ChainError> {
    let mut state = ChainState::new(session_id);
    for c in chunks {
        state.push(c)?;
    }
    Ok(state)
}

/// The `recording.chunk` detail as [`ChunkMeta`] (hashes hex-decoded), for `session_id`.
impl TryFrom<(&str, &crate::server_payload::RecordingChunkDetail)> for ChunkMeta {
    type Error = String;
    fn try_from(
        (session_id, d): (&str, &crate::server_payload::RecordingChunkDetail),
    ) -> Result<Self, String> {
        Ok(ChunkMeta {
            session_id: session_id.to_string(),
            index: d.index,
            offset: d.offset,
            length: d.length,
            last: d.last,
            prev_hash: decode_hash(&d.prev_hash)
                .ok_or_else(|| "prev_hash is not 64 lowercase hex digits".to_string())?,
            hash: decode_hash(&d.hash)
                .ok_or_else(|| "hash is not 64 lowercase hex digits".to_string())?,
        })
    }
}

impl From<&ChunkMeta> for crate::server_payload::RecordingChunkDetail {
    fn from(m: &ChunkMeta) -> Self {
        crate::server_payload::RecordingChunkDetail {
            index: m.index,
            offset: m.offset,
            length: m.length,
            last: m.last,
            prev_hash: hex::encode(m.prev_hash),
            hash: hex::encode(m.hash),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Cut `cast` at the given points into chained chunks.
    fn chunks(session: &str, cast: &[u8], cuts: &[usize]) -> Vec<(ChunkMeta, Vec<u8>)> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (cast.len() + 1)).collect();
        points.push(0);
        points.push(cast.len());
        points.sort_unstable();
        points.dedup();
        // An empty cast is still one (empty) last chunk, as the recorder's `finish` writes.
        if points.len() == 1 {
            points.push(0);
        }
        let mut out = Vec::new();
        let mut prev = GENESIS;
        let n = points.len() - 1;
        for (i, w) in points.windows(2).enumerate() {
            let bytes = cast[w[0]..w[1]].to_vec();
            let m = ChunkMeta::of(session, i as u64, w[0] as u64, i + 1 == n, prev, &bytes);
            prev = m.hash;
            out.push((m, bytes));
        }
        out
    }

    fn reparse(stream: &[u8]) -> Result<Vec<(ChunkMeta, Vec<u8>)>, FrameError> {
        let mut rest = stream;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (m, b, used) = parse_frame(rest)?;
            out.push((m, b.to_vec()));
            rest = &rest[used..];
        }
        Ok(out)
    }

    #[test]
    fn frame_round_trip_and_header_shape() {
        let c = chunks(
            "sess-abc",
            b"{\"version\": 2}\n[0.5, \"o\", \"hi\"]\n",
            &[15],
        );
        let frame = c[0].0.frame(&c[0].1);
        let text = String::from_utf8_lossy(&frame);
        assert!(text.starts_with("jitgate-recording-chunk/1 sess-abc 0 0 15 0 0000"));
        let (m, b, used) = parse_frame(&frame).unwrap();
        assert_eq!((m, b, used), (c[0].0.clone(), &c[0].1[..], frame.len()));
    }

    #[test]
    fn parser_refuses_bad_headers_with_the_field() {
        let c = chunks("s1", b"abc", &[]);
        let good = c[0].0.frame(&c[0].1);
        let text = String::from_utf8(good.clone()).unwrap();
        for (from, to, field) in [
            ("s1 0 0 3", "s/1 0 0 3", "session"),
            ("s1 0 0 3", "s1 00 0 3", "index"),
            ("s1 0 0 3", "s1 0 0 +3", "length"),
            (" 1 ", " 2 ", "last"),
        ] {
            let bad = text.replacen(from, to, 1);
            match parse_frame(bad.as_bytes()) {
                Err(FrameError::Header { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(
            parse_frame(&good[..good.len() - 1]),
            Err(FrameError::Truncated { needed: 1 })
        );
        let huge = text.replacen("s1 0 0 3", "s1 0 0 99999999", 1);
        assert!(matches!(
            parse_frame(huge.as_bytes()),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(parse_frame(&[b'x'; 600]), Err(FrameError::HeaderTooLong));
    }

    #[test]
    fn chain_names_gap_duplicate_and_replacement() {
        let c = chunks("s", b"0123456789", &[2, 5, 7]);
        let metas: Vec<ChunkMeta> = c.iter().map(|(m, _)| m.clone()).collect();
        assert!(check_chain("s", &metas).unwrap().complete);
        let gap = [metas[0].clone(), metas[2].clone()];
        assert_eq!(
            check_chain("s", &gap),
            Err(ChainError::Index {
                expected: 1,
                found: 2
            })
        );
        let dup = [metas[0].clone(), metas[0].clone()];
        assert!(matches!(
            check_chain("s", &dup),
            Err(ChainError::Index {
                expected: 1,
                found: 0
            })
        ));
        // Chunk 1 replaced by other bytes: its hash changes, so chunk 2 no longer follows.
        let other = ChunkMeta::of("s", 1, 2, false, metas[0].hash, b"XYZ");
        let replaced = [metas[0].clone(), other, metas[2].clone()];
        assert!(matches!(
            check_chain("s", &replaced),
            Err(ChainError::Offset { index: 2, .. }) | Err(ChainError::PrevHash { index: 2 })
        ));
        let mut after = metas.clone();
        after.push(ChunkMeta::of("s", 4, 10, false, metas[3].hash, b""));
        assert_eq!(
            check_chain("s", &after),
            Err(ChainError::AfterLast { index: 4 })
        );
        assert!(matches!(
            check_chain("t", &metas),
            Err(ChainError::OtherSession { .. })
        ));
    }

    /// The fuzz target's seed is two valid chained frames (written by an independent
    /// encoder, so it also pins the hash input's byte layout).
    #[test]
    fn fuzz_seed_is_a_valid_recording() {
        let seed = include_bytes!("../../../fuzz/seeds/recording_chunk/two_chunks");
        let back = reparse(seed).unwrap();
        let metas: Vec<ChunkMeta> = back.iter().map(|(m, _)| m.clone()).collect();
        let state = check_chain("sess-seed", &metas).unwrap();
        assert!(state.complete && state.next_index == 2);
    }

    proptest! {
        /// Any cut of a cast into chunks reassembles to the same cast, through the framing.
        #[test]
        fn any_split_reassembles(cast in proptest::collection::vec(any::<u8>(), 0..2000),
                                 cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
            let c = chunks("sess-p", &cast, &cuts);
            let stream: Vec<u8> = c.iter().flat_map(|(m, b)| m.frame(b)).collect();
            let back = reparse(&stream).unwrap();
            let metas: Vec<ChunkMeta> = back.iter().map(|(m, _)| m.clone()).collect();
            let state = check_chain("sess-p", &metas).unwrap();
            prop_assert!(state.complete);
            prop_assert_eq!(state.bytes, cast.len() as u64);
            let joined: Vec<u8> = back.into_iter().flat_map(|(_, b)| b).collect();
            prop_assert_eq!(joined, cast);
        }

        /// One flipped byte anywhere in the framed stream is refused or changes what is
        /// read back (it can never pass as the original).
        #[test]
        fn flipped_byte_is_detected(cast in proptest::collection::vec(any::<u8>(), 1..500),
                                    cuts in proptest::collection::vec(any::<usize>(), 0..6),
                                    at in any::<usize>(), bit in 0u8..8) {
            let c = chunks("sess-f", &cast, &cuts);
            let mut stream: Vec<u8> = c.iter().flat_map(|(m, b)| m.frame(b)).collect();
            let i = at % stream.len();
            stream[i] ^= 1 << bit;
            let accepted = reparse(&stream).ok().and_then(|back| {
                let metas: Vec<ChunkMeta> = back.iter().map(|(m, _)| m.clone()).collect();
                check_chain("sess-f", &metas).ok().filter(|s| s.complete).map(|_| metas)
            });
            // Whatever still parses and chains cannot carry the signed hashes of the original.
            if let Some(metas) = accepted {
                let original: Vec<ChunkMeta> = c.iter().map(|(m, _)| m.clone()).collect();
                prop_assert_ne!(metas, original);
            }
        }

        /// Dropping, duplicating or swapping chunks breaks the chain.
        #[test]
        fn dropped_duplicated_reordered_chunks_are_detected(
            cast in proptest::collection::vec(any::<u8>(), 3..300),
            cuts in proptest::collection::vec(1usize..300, 2..6),
            pick in any::<usize>(), how in 0u8..3) {
            let c = chunks("sess-d", &cast, &cuts);
            prop_assume!(c.len() >= 2);
            let mut metas: Vec<ChunkMeta> = c.iter().map(|(m, _)| m.clone()).collect();
            let i = pick % (metas.len() - 1);
            match how {
                0 => { metas.remove(i); }
                1 => { let d = metas[i].clone(); metas.insert(i + 1, d); }
                _ => metas.swap(i, i + 1),
            }
            prop_assert!(check_chain("sess-d", &metas).is_err());
        }

        /// The parser never panics and never reads beyond its input.
        #[test]
        fn parser_total_on_junk(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            if let Ok((_, b, used)) = parse_frame(&bytes) {
                prop_assert!(used <= bytes.len());
                prop_assert!(b.len() <= MAX_CHUNK_BYTES);
            }
        }
    }
}
