//! Session recordings at the gateway: what a protocol module (SSH) calls while a session
//! runs, and the delivery of the closed chunks to the server.
//!
//! ## Layout
//! - [`asciicast`] — asciicast v2 text: the header line, event lines (`o`, `i`, `r`, `m`),
//!   incremental UTF-8 decoding of terminal bytes. Pure.
//! - [`recorder`] — [`SessionRecorder`]: one session's cast cut into chunks (bounded by
//!   bytes and by age), each closed with its hash chained to the previous chunk's
//!   (`jitgate_core::recording`: hash, framing, chain rule). Pure; the time source is
//!   injected.
//! - [`deliver`] — [`RecordingSink`]: a closed chunk's `recording.chunk` event into the
//!   ordered event stream ([`crate::spool`]), its bytes into the recordings spool (segment
//!   files written by a thread of their own, capped: sessions wait on [`deliver::Room`] at
//!   the cap) and from there to `POST /api/v1/gateway/recordings/{session}/chunks/{index}`.
//!
//! The format, the chunk bounds and what the server checks are in docs/gateway.md
//! ("Recordings") and docs/evidence.md ("Recordings").

pub mod asciicast;
pub mod deliver;
pub mod recorder;

pub use asciicast::CastHeader;
pub use deliver::RecordingSink;
pub use jitgate_core::recording::{parse_frame, ChunkMeta, FrameError};
pub use recorder::{RecordedChunk, RecorderLimits, SessionRecorder};
