//! DNP3 (IEEE 1815) over TCP through the gateway (documented in `docs/gateway.md`, "DNP3").
//! The parsing and the decision are `jitgate-dnp3`'s; this module is the relay's side:
//! framing the byte streams, what the outstation owes, the answers the gateway sends in
//! its place, and the records for the evidence log.
//!
//! - [`framing`] — where a request (one whole fragment) ends, link frames the gateway sends.
//! - [`proto`]   — [`proto::Dnp3`], the `crate::protocol::FrameProtocol` implementation:
//!   the decision per request.
//! - [`state`]   — per-session state and the reading of the outstation's frames
//!   (responses, unsolicited responses and their flood limit, link answers).
//! - [`op`]      — the [`op::Operation`] record sent to the event log.
//! - `sim`       — (feature `sim`) a simulated outstation for tests and the quickstart;
//!   `sim_conn` its connections, `sim_db` its points and application layer.

pub mod framing;
pub mod op;
pub mod proto;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "sim")]
mod sim_conn;
#[cfg(feature = "sim")]
mod sim_db;
pub mod state;

pub use op::Operation;
pub use proto::Dnp3;
