//! One request fragment from parse to verdict: what the gateway calls per fragment.

use crate::allow::{AllowList, Refusal, SessionState};
use crate::function::FunctionCode;
use crate::header::{control_of, Iin};
use crate::link::LinkHeader;
use crate::parse::{parse_request, Limits, Request};
use crate::response::refusal_frame;
use crate::Error;

/// What to do with one request fragment.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Forward the fragment's frames to the outstation unchanged.
    Allow,
    /// Do not forward; answer with [`Inspection::refusal_frame`] (when `respond`).
    Refuse(Refusal),
    /// Not valid DNP3: close the session and record the error.
    Malformed(Error),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Inspection<'a> {
    pub verdict: Verdict,
    /// The parsed request, for the operation log (`None` when it did not parse).
    pub request: Option<Request<'a>>,
    /// The request's application sequence number, which the answer repeats.
    pub app_seq: u8,
    /// False when the function must not be answered (the `_NR` functions, a confirm): a
    /// refusal is then only logged.
    pub respond: bool,
}

impl Inspection<'_> {
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// The frame answering a refused request that expects an answer: a null response with
    /// the refusal's IIN2 bit, from the outstation's address to the master's. `iin1` is the
    /// outstation's last IIN1 as the gateway saw it (0 if none), so a refusal neither
    /// raises nor hides a device restart.
    pub fn refusal_frame(
        &self,
        request: &LinkHeader,
        transport_seq: u8,
        iin1: u8,
    ) -> Option<Vec<u8>> {
        let Verdict::Refuse(refusal) = &self.verdict else {
            return None;
        };
        if !self.respond {
            return None;
        }
        let iin = Iin {
            iin1,
            iin2: refusal.iin2,
        };
        Some(refusal_frame(request, transport_seq, self.app_seq, iin))
    }
}

/// Parse `fragment` as a request and decide it against the session's allow-list.
pub fn inspect<'a>(
    allow: &AllowList,
    state: &mut SessionState,
    fragment: &'a [u8],
    limits: &Limits,
) -> Inspection<'a> {
    let app_seq = control_of(fragment).map_or(0, |c| c.seq);
    let function = fragment.get(1).copied().and_then(FunctionCode::from_u8);
    let respond = function.is_none_or(FunctionCode::expects_response);
    let (verdict, request) = match parse_request(fragment, limits) {
        Ok(req) => {
            let verdict = match allow.decide(state, &req) {
                Ok(()) => Verdict::Allow,
                Err(refusal) => Verdict::Refuse(refusal),
            };
            (verdict, Some(req))
        }
        Err(error) => {
            // Nothing may be operated after a request the gateway could not accept.
            state.cancel_select();
            let verdict = match (error.refusal_iin2(), function) {
                // An unknown object in a function the grant does not allow anyway: the
                // function is the reason (an authentication or file request, say).
                (Some(_), Some(f)) if !allow.permits_function(f) => {
                    Verdict::Refuse(allow.no_function(f))
                }
                (Some(iin2), _) => Verdict::Refuse(Refusal {
                    iin2,
                    reason: format!("{error} ({})", error.code()),
                }),
                (None, _) => Verdict::Malformed(error),
            };
            (verdict, None)
        }
    };
    Inspection {
        verdict,
        request,
        app_seq,
        respond,
    }
}
