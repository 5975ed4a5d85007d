//! What the gateway knows of one DNP3 session between frames, and how it reads the
//! outstation's frames: what the outstation owes (a link answer, the response to a
//! request), the fragment it is sending, its last IIN1, the transport sequence the master
//! expects next, and how many unsolicited responses the master has not confirmed.
//!
//! A response from the outstation is relayed when its link and transport framing and its
//! application header are valid and it answers the request it should (same sequence),
//! even when its objects are ones the parser does not know (octet strings g110/g111,
//! pattern control blocks, authentication objects): the outstation is not where a
//! master's attack comes from, and refusing its answers would only break devices that
//! report such objects. Unsolicited responses are logged, with `objects_unparsed` then.

use super::framing::fault;
use super::op::Operation;
use crate::protocol::{Answer, Fault};
use jitgate_dnp3::header::parse_response_header;
use jitgate_dnp3::link::{function, parse_frame, Frame};
use jitgate_dnp3::parse::{parse_response, Limits};
use jitgate_dnp3::transport::{next_seq, TransportHeader};
use jitgate_dnp3::{FunctionCode, LinkBinding, Reassembler, SessionState};
use tokio::time::Instant;

/// Unsolicited fragments the outstation may send before the master confirms one; more
/// is a flood, and the session ends. An outstation repeats an unconfirmed unsolicited
/// response only after its confirm timeout (seconds), so a master that confirms never
/// comes near this.
pub const MAX_UNCONFIRMED_UNSOLICITED: u32 = 8;

/// How long a SELECT stays operable at the gateway. Outstations have their own (often
/// shorter) timeout; this one bounds how stale a SELECT the gateway lets through.
pub const SELECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the outstation owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Nothing: only unsolicited responses and link requests may come.
    Idle,
    /// A link answer (ACK, NACK, LINK_STATUS, NOT_SUPPORTED) to a frame the gateway sent.
    Link,
    /// The response to the request with application sequence `seq`; after `ack`, while the
    /// link ACK of a confirmed request frame is still due.
    Response { seq: u8, ack: bool },
}

/// Per-session state of the DNP3 relay.
#[derive(Debug)]
pub struct State {
    /// The select-before-operate state of the decision.
    pub(super) session: SessionState,
    pub(super) selected_at: Option<Instant>,
    pub(super) expect: Expect,
    /// The sequence of a non-final response fragment whose CONFIRM the outstation awaits.
    pub(super) confirm_due: Option<u8>,
    /// The transport sequence of the gateway's next frame to the master: the one after
    /// the outstation's last segment, so a refusal continues the outstation's numbering.
    pub(super) to_master_seq: u8,
    /// The outstation's IIN1 as last seen, repeated in refusals (a restart stays visible).
    pub(super) last_iin1: u8,
    pub(super) unconfirmed_unsolicited: u32,
    /// A record for the relay to log after the current device frame.
    pub(super) record: Option<Operation>,
    from_outstation: Reassembler,
    binding: Option<LinkBinding>,
    limits: Limits,
}

impl State {
    pub fn new(binding: Option<LinkBinding>, limits: Limits) -> State {
        State {
            session: SessionState::default(),
            selected_at: None,
            expect: Expect::Idle,
            confirm_due: None,
            to_master_seq: 0,
            last_iin1: 0,
            unconfirmed_unsolicited: 0,
            record: None,
            from_outstation: Reassembler::new(limits.max_fragment),
            binding,
            limits,
        }
    }

    /// Forget a SELECT older than [`SELECT_TIMEOUT`] before the next request is decided.
    pub(super) fn expire_select(&mut self) {
        if self
            .selected_at
            .is_some_and(|at| at.elapsed() > SELECT_TIMEOUT)
        {
            self.session.cancel_select();
            self.selected_at = None;
        }
    }

    /// One frame from the outstation. `waiting`: a request of the master's is being
    /// answered (the relay reads nothing from the master meanwhile). `Complete` ends that
    /// wait: the request is answered, or the master must speak (a link ACK, a CONFIRM)
    /// before the outstation goes on, and the rest comes while the relay is idle.
    pub fn device_frame(&mut self, bytes: &[u8], waiting: bool) -> Answer {
        let frame = match parse_frame(bytes) {
            Ok(Some((frame, _))) => frame,
            Ok(None) => return Answer::Invalid(Fault::new("internal", "frame vanished")),
            Err(e) => return Answer::Invalid(fault(&e)),
        };
        let Some(binding) = self.binding else {
            return Answer::Invalid(Fault::new("no_endpoint", "the asset has no DNP3 endpoint"));
        };
        if let Err(e) = binding.check_from_outstation(&frame.header) {
            return Answer::Invalid(fault(&e));
        }
        let c = frame.header.control;
        if !c.prm {
            return self.link_answer(c.function);
        }
        match c.function {
            function::CONFIRMED_USER_DATA | function::UNCONFIRMED_USER_DATA => {
                self.user_data(&frame, c.function == function::CONFIRMED_USER_DATA, waiting)
            }
            // The outstation's own link requests (a keep-alive): the master answers them.
            function::RESET_LINK_STATES
            | function::TEST_LINK_STATES
            | function::REQUEST_LINK_STATUS
                if frame.user_data().is_empty() =>
            {
                Answer::Complete
            }
            other => Answer::Invalid(Fault::new(
                "link_function",
                format!("the outstation sent link function {other} with PRM set"),
            )),
        }
    }

    fn link_answer(&mut self, f: u8) -> Answer {
        if !matches!(
            f,
            function::ACK | function::NACK | function::LINK_STATUS | function::NOT_SUPPORTED
        ) {
            return Answer::Invalid(Fault::new(
                "link_function",
                format!("the outstation sent link function {f} with PRM clear"),
            ));
        }
        match self.expect {
            Expect::Link => {
                self.expect = Expect::Idle;
                Answer::Complete
            }
            Expect::Response { seq, ack: true } if f == function::ACK => {
                self.expect = Expect::Response { seq, ack: false };
                Answer::More
            }
            // NACK or NOT_SUPPORTED: the outstation did not take the request.
            Expect::Response { ack: true, .. } => {
                self.expect = Expect::Idle;
                Answer::Complete
            }
            _ => Answer::Invalid(Fault::new(
                "unexpected_link_answer",
                "the outstation sent a link answer no frame asked for",
            )),
        }
    }

    fn user_data(&mut self, frame: &Frame, confirmed: bool, waiting: bool) -> Answer {
        let segment = frame.user_data();
        let fragment = match self.from_outstation.push(segment) {
            Ok(f) => f,
            Err(e) => return Answer::Invalid(fault(&e)),
        };
        if let Some(&t) = segment.first() {
            self.to_master_seq = next_seq(TransportHeader::from_byte(t).seq);
        }
        // A link-confirmed frame waits for the master's ACK, whatever else follows.
        let pause = |more: bool| {
            if confirmed || !more {
                Answer::Complete
            } else {
                Answer::More
            }
        };
        let Some(fragment) = fragment else {
            return pause(true);
        };
        let (ac, f, iin, _) = match parse_response_header(&fragment) {
            Ok(h) => h,
            Err(e) => return Answer::Invalid(fault(&e)),
        };
        self.last_iin1 = iin.iin1;
        if f == FunctionCode::UnsolicitedResponse {
            self.unconfirmed_unsolicited += 1;
            if self.unconfirmed_unsolicited > MAX_UNCONFIRMED_UNSOLICITED {
                return Answer::Invalid(Fault::new(
                    "unsolicited_flood",
                    format!(
                        "the outstation sent more than {MAX_UNCONFIRMED_UNSOLICITED} unsolicited responses the master did not confirm"
                    ),
                ));
            }
            let parsed = parse_response(&fragment, &self.limits);
            let headers = parsed.as_ref().map_or(&[][..], |r| r.headers.as_slice());
            let mut op = Operation::unsolicited(ac.seq, iin, headers);
            if let Err(e) = &parsed {
                op.objects_unparsed = Some(e.code().into());
            }
            self.record = Some(op);
            // While a request is answered, the unsolicited response is relayed in between.
            return pause(waiting);
        }
        let Expect::Response { seq, .. } = self.expect else {
            return Answer::Invalid(Fault::new(
                "unexpected_response",
                format!(
                    "the outstation sent a response (sequence {}) no request asked for",
                    ac.seq
                ),
            ));
        };
        if ac.seq != seq {
            return Answer::Invalid(Fault::new(
                "response_sequence",
                format!(
                    "the outstation's response has sequence {}; the request's is {seq}",
                    ac.seq
                ),
            ));
        }
        if ac.fin {
            self.expect = Expect::Idle;
            return Answer::Complete;
        }
        if ac.con {
            // The next fragment comes once the master confirms this one.
            self.expect = Expect::Idle;
            self.confirm_due = Some(seq);
            return Answer::Complete;
        }
        self.expect = Expect::Response {
            seq: (seq + 1) & 0x0F,
            ack: false,
        };
        pause(true)
    }
}
