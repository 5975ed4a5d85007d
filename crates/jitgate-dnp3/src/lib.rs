//! # jitgate-dnp3
//!
//! jitgate's own DNP3 (IEEE 1815) parser and enforcement decision: pure, synchronous, no
//! I/O, written from the public protocol description. Every function that reads untrusted
//! bytes has explicit limits and never panics (fuzzed in `fuzz/`: `dnp3_link`, `dnp3_app`).
//! How the gateway uses it, and the rules: `docs/dnp3.md`.
//!
//! ## Layout
//!
//! Bytes flow up through the layers in this order; each module is one layer or one concern.
//!
//! - [`crc`]       — the DNP3 CRC-16 (table built at compile time).
//! - [`link`]      — data link frames: [`frame_len`] for a streaming reader, [`parse_frame`]
//!   (CRCs checked and stripped), [`encode_frame`].
//! - [`binding`]   — [`LinkBinding`]: the session's master and outstation link addresses.
//! - [`transport`] — the transport header and the strict [`Reassembler`] (one per
//!   direction; every sequence irregularity is an error, never a resync).
//! - [`header`]    — application control, request/response headers, IIN bits.
//! - [`function`]  — every IEEE 1815 function code.
//! - [`qualifier`] — object prefix and range specifier codes.
//! - [`objects`]   — the group/variation table: point kind, role and object size.
//! - [`control`]   — CROB and analog output block decoding.
//! - [`parse`]     — fragments into typed summaries: [`parse_request`], [`parse_response`].
//! - [`response`]  — the null response a refusal is answered with: [`refusal_frame`].
//! - [`allow`]     — the [`AllowList`] compiled from a grant's scope, the per-session
//!   [`SessionState`] (select-before-operate) and the decision rules; [`allow::words`] the
//!   rules of the function words (`time-sync`, `restart`, ... `configure`).
//! - [`ranges`]    — sorted, merged index ranges for the allow-list.
//! - [`inspect`](mod@inspect) — [`inspect()`]: one request fragment from parse to [`Verdict`], the one
//!   call the gateway makes per fragment.
//! - [`error`]     — [`Error`], one stable code per reason.

pub mod allow;
pub mod binding;
pub mod control;
pub mod crc;
pub mod error;
pub mod function;
pub mod header;
pub mod inspect;
pub mod link;
pub mod objects;
pub mod parse;
pub mod qualifier;
pub mod ranges;
pub mod response;
pub mod transport;

pub use allow::{AllowList, Refusal, SessionState};
pub use binding::LinkBinding;
pub use error::Error;
pub use function::FunctionCode;
pub use header::{AppControl, Iin};
pub use inspect::{inspect, Inspection, Verdict};
pub use link::{encode_frame, frame_len, parse_frame, Frame, LinkHeader};
pub use objects::{PointKind, Role};
pub use parse::{parse_request, parse_response, Indexes, Limits, ObjectHeader, Request, Response};
pub use response::refusal_frame;
pub use transport::{Reassembler, TransportHeader};
