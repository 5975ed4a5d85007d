//! DNP3 behind the gateway's protocol seam ([`crate::protocol::FrameProtocol`]).
//!
//! A request is one whole application fragment (all its link frames, [`framing`]) or one
//! link-layer frame. Every frame must carry the inventory's link addresses in the master's
//! direction; then the fragment is reassembled and decided by [`jitgate_dnp3::inspect()`]:
//!
//! - allowed: its frames go to the outstation unchanged, and [`State`] knows what answer
//!   is due (none for an application CONFIRM, unless it confirms a non-final response
//!   fragment: then the next fragment);
//! - refused: the master gets a null response with the refusal's IIN2 bit, the
//!   outstation's last IIN1 and the next transport sequence; a request sent as
//!   link-confirmed user data also gets its link ACK — from the outstation itself, which is
//!   sent a TEST_LINK_STATES in its place to keep the frame count bit in step;
//! - malformed (CRC, addresses, transport sequence, application syntax): the session ends.
//!
//! Link-layer frames (RESET_LINK_STATES, TEST_LINK_STATES, REQUEST_LINK_STATUS and the
//! master's link answers) pass with their answers. Frames from the outstation are read by
//! [`State::device_frame`].

use super::framing::{self, fault, test_link_states};
use super::op::{link_function_name, Operation};
use super::state::{Expect, State};
use crate::protocol::{Answer, Decision, Fault, FrameProtocol};
use jitgate_core::scope::ScopeItem;
use jitgate_core::Asset;
use jitgate_dnp3::header::control_of;
use jitgate_dnp3::link::{function, parse_frame, Frame, LinkHeader};
use jitgate_dnp3::parse::Limits;
use jitgate_dnp3::transport::next_seq;
use jitgate_dnp3::{inspect, AllowList, FunctionCode, LinkBinding, Reassembler, Verdict};

/// DNP3 (IEEE 1815) over TCP, as the relay loop drives it.
pub struct Dnp3;

/// The grant's DNP3 scope for the asset and the link addresses it is bound to.
#[derive(Debug, Clone)]
pub struct Allow {
    pub list: AllowList,
    /// `None` when the asset has no DNP3 endpoint (no session reaches the relay then).
    pub binding: Option<LinkBinding>,
    pub limits: Limits,
}

/// Whether the outstation answers what was forwarded; the details are in [`State`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    answer: bool,
}

impl FrameProtocol for Dnp3 {
    const NAME: &'static str = "dnp3";
    /// A link frame is at most 292 bytes; a request fragment is read in several reads.
    const FRAME_BUF: usize = 1024;
    const UNSOLICITED: bool = true;
    type Allow = Allow;
    type State = State;
    type Pending = Pending;
    type Operation = Operation;

    fn compile(asset: &Asset, scope: &[ScopeItem]) -> Allow {
        Allow {
            list: AllowList::compile(&asset.id, scope),
            binding: asset.endpoints.dnp3.as_ref().map(|e| LinkBinding {
                master: e.master,
                outstation: e.outstation,
            }),
            limits: Limits::default(),
        }
    }

    fn new_state(allow: &Allow) -> State {
        State::new(allow.binding, allow.limits)
    }

    fn device_address(asset: &Asset) -> Option<String> {
        asset.endpoints.dnp3.as_ref().map(|e| e.address.clone())
    }

    fn request_len(buf: &[u8]) -> Result<Option<usize>, Fault> {
        framing::request_len(buf)
    }

    fn response_len(buf: &[u8]) -> Result<Option<usize>, Fault> {
        framing::frame_at_start(buf)
    }

    fn decide(allow: &Allow, state: &mut State, bytes: &[u8]) -> Decision<Self> {
        let Some(binding) = allow.binding else {
            return malformed(
                Fault::new("no_endpoint", "the asset has no DNP3 endpoint"),
                None,
            );
        };
        let frames = match master_frames(binding, bytes) {
            Ok(frames) => frames,
            Err(e) => return malformed(fault(&e), Some(link_op(bytes, &e))),
        };
        let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
            return malformed(Fault::new("internal", "frame vanished"), None);
        };
        if !first.header.carries_user_data() {
            return link_decision(state, first);
        }
        let mut reassembler = Reassembler::new(allow.limits.max_fragment);
        let mut fragment = None;
        for frame in &frames {
            match reassembler.push(frame.user_data()) {
                Ok(done) => fragment = done,
                Err(e) => {
                    let op = Operation::request(None, None, &[], false)
                        .malformed(e.code(), e.to_string());
                    return malformed(fault(&e), Some(op));
                }
            }
        }
        let Some(fragment) = fragment else {
            return malformed(Fault::new("internal", "fragment without its end"), None);
        };
        fragment_decision(allow, state, &fragment, &last.header)
    }

    fn answer(state: &mut State, _: &Pending, frame: &[u8]) -> Answer {
        state.device_frame(frame, true)
    }

    fn expects_answer(pending: &Pending) -> bool {
        pending.answer
    }

    fn unsolicited(state: &mut State, frame: &[u8]) -> Answer {
        state.device_frame(frame, false)
    }

    fn device_record(state: &mut State) -> Option<Operation> {
        state.record.take()
    }
}

fn malformed(fault: Fault, operation: Option<Operation>) -> Decision<Dnp3> {
    Decision::Malformed { fault, operation }
}

/// Every frame of a request, CRC-checked and bound to the session's link addresses.
fn master_frames(
    binding: LinkBinding,
    mut bytes: &[u8],
) -> Result<Vec<Frame>, jitgate_dnp3::Error> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let Some((frame, used)) = parse_frame(bytes)? else {
            return Err(jitgate_dnp3::Error::Truncated {
                what: "a link frame",
            });
        };
        binding.check_from_master(&frame.header)?;
        frames.push(frame);
        bytes = bytes.get(used..).unwrap_or_default();
    }
    Ok(frames)
}

/// The record of a request that broke at the link or transport layer: the link function
/// of its first frame, when its header could be read.
fn link_op(bytes: &[u8], e: &jitgate_dnp3::Error) -> Operation {
    let name = bytes
        .get(3)
        .map(|&c| jitgate_dnp3::link::Control::from_byte(c))
        .map_or("UNDEFINED", |c| link_function_name(c.prm, c.function));
    Operation::link(name).malformed(e.code(), e.to_string())
}

fn link_decision(state: &mut State, frame: &Frame) -> Decision<Dnp3> {
    let c = frame.header.control;
    let name = link_function_name(c.prm, c.function);
    let op = Operation::link(name);
    if !frame.user_data().is_empty() {
        let fault = Fault::new("link_data", format!("a {name} frame carries no user data"));
        let op = op.malformed(fault.code, fault.message.clone());
        return malformed(fault, Some(op));
    }
    let answer = match (c.prm, c.function) {
        (true, function::RESET_LINK_STATES)
        | (true, function::TEST_LINK_STATES)
        | (true, function::REQUEST_LINK_STATUS) => true,
        // The master's answers to the outstation's confirmed data and link requests.
        (
            false,
            function::ACK | function::NACK | function::LINK_STATUS | function::NOT_SUPPORTED,
        ) => false,
        (prm, f) => {
            let fault = Fault::new(
                "link_function",
                format!(
                    "link function {f} (PRM {}) is not one a master sends",
                    u8::from(prm)
                ),
            );
            let op = op.malformed(fault.code, fault.message.clone());
            return malformed(fault, Some(op));
        }
    };
    if answer {
        state.expect = Expect::Link;
    }
    Decision::Allow {
        pending: Pending { answer },
        operation: op.allowed(),
    }
}

fn fragment_decision(
    allow: &Allow,
    state: &mut State,
    fragment: &[u8],
    last: &LinkHeader,
) -> Decision<Dnp3> {
    let confirmed = last.control.function == function::CONFIRMED_USER_DATA;
    state.expire_select();
    let control = control_of(fragment);
    let ins = inspect(&allow.list, &mut state.session, fragment, &allow.limits);
    let headers = ins
        .request
        .as_ref()
        .map_or(&[][..], |r| r.headers.as_slice());
    let mut op = Operation::request(
        fragment.get(1).copied(),
        control.map(|c| c.seq),
        headers,
        confirmed,
    );
    if ins.request.is_none() {
        // Refused because the parser stopped at an object or function it does not know: the
        // record says why it lists no objects, rather than seeming to have had none.
        op.objects_unparsed = jitgate_dnp3::parse_request(fragment, &allow.limits)
            .err()
            .map(|e| format!("{}: {e}", e.code()));
    }
    let function = ins.request.as_ref().map(|r| r.function);
    match &ins.verdict {
        Verdict::Allow => {
            let response = match function {
                Some(FunctionCode::Confirm) if control.is_some_and(|c| c.uns) => {
                    state.unconfirmed_unsolicited = 0;
                    None
                }
                // It confirms a non-final response fragment: the next one follows.
                Some(FunctionCode::Confirm) => state
                    .confirm_due
                    .take()
                    .filter(|seq| *seq == ins.app_seq)
                    .map(|seq| (seq + 1) & 0x0F),
                _ => {
                    state.confirm_due = None;
                    ins.respond.then_some(ins.app_seq)
                }
            };
            if function == Some(FunctionCode::Select) {
                state.selected_at = Some(tokio::time::Instant::now());
            }
            state.expect = match (response, confirmed) {
                (Some(seq), ack) => Expect::Response { seq, ack },
                (None, true) => Expect::Link,
                (None, false) => Expect::Idle,
            };
            Decision::Allow {
                pending: Pending {
                    answer: state.expect != Expect::Idle,
                },
                operation: op.allowed(),
            }
        }
        Verdict::Refuse(refusal) => {
            let reply = ins.refusal_frame(last, state.to_master_seq, state.last_iin1);
            if reply.is_some() {
                state.to_master_seq = next_seq(state.to_master_seq);
            }
            let operation =
                op.refused(refusal.reason.clone(), reply.as_ref().map(|_| refusal.iin2));
            let reply = reply.unwrap_or_default();
            if confirmed {
                state.expect = Expect::Link;
                return Decision::Substitute {
                    device: test_link_states(last),
                    pending: Pending { answer: true },
                    reply,
                    operation,
                };
            }
            Decision::Refuse { reply, operation }
        }
        Verdict::Malformed(e) => {
            let operation = op.malformed(e.code(), e.to_string());
            malformed(fault(e), Some(operation))
        }
    }
}

#[cfg(test)]
#[path = "proto_tests.rs"]
mod tests;
