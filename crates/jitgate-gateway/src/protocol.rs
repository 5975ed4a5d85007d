//! The seam between the gateway's shared session machinery and a framed OT protocol.
//!
//! A protocol that travels as request/response frames over the gateway's tunnel (Modbus/TCP
//! today, DNP3 next) implements [`FrameProtocol`]: pure and synchronous, no I/O. The
//! generic relay loop ([`crate::relay`]) does the I/O, the timeouts and the evidence; the
//! protocol module only says where a frame ends, what to do with a request, and whether
//! the device's answer fits it. The allow-list is compiled once per session from the
//! grant's scope, so no policy engine runs per frame.
//!
//! Every method is called once per frame on the hot path: the loop is generic over the
//! protocol (monomorphised, no dynamic dispatch), and an implementation should allocate
//! only what it returns (the operation record, a refusal's reply).
//!
//! Protocols that terminate the client's connection themselves (SSH) do not use this trait:
//! they use the session machinery directly ([`crate::live`]).

use jitgate_core::scope::ScopeItem;
use jitgate_core::Asset;

/// What went wrong with a frame: a stable code (for the evidence) and a message. Built only
/// on the error path, which ends the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: &'static str,
    pub message: String,
}

impl Fault {
    pub fn new(code: &'static str, message: impl std::fmt::Display) -> Fault {
        Fault {
            code,
            message: message.to_string(),
        }
    }
}

/// A protocol's record of one operation, as the evidence log takes it: a struct whose
/// fields become the event's details (the relay adds `failure` and `device_latency_us`).
pub trait OperationRecord: serde::Serialize + Send {
    /// Whether it was allowed, for the gateway's metrics; `None` if the record does not say.
    fn allowed(&self) -> Option<bool>;
}

/// What to do with one complete request frame.
pub enum Decision<P: FrameProtocol + ?Sized> {
    /// Forward the frame to the device unchanged; `pending` checks the answer.
    Allow {
        pending: P::Pending,
        operation: P::Operation,
    },
    /// Out of scope: the device never sees the frame; the client gets `reply` (the
    /// protocol's own refusal, e.g. a Modbus exception) and the session goes on.
    Refuse {
        reply: Vec<u8>,
        operation: P::Operation,
    },
    /// Out of scope, but the device must see something in the frame's place to keep its
    /// link state in step with the client's (DNP3's frame count bit on link-confirmed
    /// data): `device` goes to it instead of the frame, its answer is checked with
    /// `pending` and relayed as for `Allow`, then the client gets `reply`.
    Substitute {
        device: Vec<u8>,
        pending: P::Pending,
        reply: Vec<u8>,
        operation: P::Operation,
    },
    /// The frame is complete but its content breaks the protocol: the session is closed
    /// (never resynchronised), after recording `operation` (`None`: nothing worth
    /// recording, e.g. a frame the protocol's own framing already rejected).
    Malformed {
        fault: Fault,
        operation: Option<P::Operation>,
    },
}

/// What a device frame means for the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Relay it; the request is answered.
    Complete,
    /// Relay it; more frames of the same answer follow (e.g. a DNP3 multi-fragment
    /// response). The device timeout applies to each.
    More,
    /// It does not answer the request: the session ends (`bad_device_response: …`).
    Invalid(Fault),
}

/// A framed request/response protocol, seen from the gateway.
pub trait FrameProtocol {
    /// Short name, as in scopes and asset endpoints (`modbus`, `dnp3`).
    const NAME: &'static str;
    /// Read buffer for client and device: at least one maximal frame.
    const FRAME_BUF: usize;
    /// The allow-list, compiled once per session from the grant's scope for one asset.
    type Allow: Send + Sync;
    /// Per-session protocol state (sequence numbers, link addresses, …); `()` if none.
    type State: Send;
    /// What an allowed request leaves behind to check the device's answer against.
    type Pending: Send;
    /// The operation record sent to the evidence log, one per request.
    type Operation: OperationRecord;

    /// Compile the grant's scope for `asset` (items for other assets or protocols are
    /// ignored), with what the inventory says of the asset's endpoint (DNP3 link
    /// addresses). Called once per session, before the client gets its verdict.
    fn compile(asset: &Asset, scope: &[ScopeItem]) -> Self::Allow;

    /// Fresh per-session state.
    fn new_state(allow: &Self::Allow) -> Self::State;

    /// The device's address for this protocol, if the asset has an endpoint for it.
    fn device_address(asset: &Asset) -> Option<String>;

    /// The length of the first complete request frame at the start of `buf`, `None` while
    /// incomplete, or a fault (the session is closed with `malformed_frame: …`). Must bound
    /// the frame length, so a client cannot make the gateway buffer without limit.
    fn request_len(buf: &[u8]) -> Result<Option<usize>, Fault>;

    /// The same for a frame from the device (`bad_device_response: …` on a fault).
    fn response_len(buf: &[u8]) -> Result<Option<usize>, Fault>;

    /// Decide on one complete request frame (exactly the bytes `request_len` delimited).
    fn decide(allow: &Self::Allow, state: &mut Self::State, frame: &[u8]) -> Decision<Self>;

    /// Check one complete device frame against the pending request.
    fn answer(state: &mut Self::State, pending: &Self::Pending, frame: &[u8]) -> Answer;

    /// Does the device answer this allowed request? `false` for a message the device takes
    /// without a reply (a DNP3 application confirm): the loop then waits for none.
    fn expects_answer(_pending: &Self::Pending) -> bool {
        true
    }

    /// The device may speak unasked (DNP3 unsolicited responses): while no request is
    /// pending the loop also reads the device, and hands each complete frame to
    /// [`FrameProtocol::unsolicited`]. `false` (Modbus): the device is read only for an
    /// answer, so the loop stays as lean as it was.
    const UNSOLICITED: bool = false;

    /// A complete device frame that arrived while no request was pending: `Complete` relays
    /// it to the client, `Invalid` ends the session (`bad_device_response: …`). Called only
    /// when [`FrameProtocol::UNSOLICITED`] is true.
    fn unsolicited(_state: &mut Self::State, _frame: &[u8]) -> Answer {
        Answer::Invalid(Fault::new(
            "unsolicited",
            "the device sent a frame no request asked for",
        ))
    }

    /// A record of what the device said, to log after [`FrameProtocol::answer`] or
    /// [`FrameProtocol::unsolicited`] (a DNP3 unsolicited response); `None` for most
    /// frames, which the request's own record covers.
    fn device_record(_state: &mut Self::State) -> Option<Self::Operation> {
        None
    }
}
