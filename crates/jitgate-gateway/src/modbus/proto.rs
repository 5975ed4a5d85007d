//! Modbus/TCP behind the gateway's protocol seam ([`crate::protocol::FrameProtocol`]): the
//! MBAP header delimits frames, [`AllowList`] decides, [`validate_response`] checks the
//! device's answer. No state between requests: each ADU carries its own transaction id.

use super::{
    decode_request, exception_adu, parse_adu, validate_response, AllowList, Operation, Pending,
    Verdict,
};
use crate::protocol::{Answer, Decision, Fault, FrameProtocol};
use jitgate_core::scope::ScopeItem;
use jitgate_core::Asset;

/// Modbus/TCP, as the relay loop drives it.
pub struct Modbus;

impl FrameProtocol for Modbus {
    const NAME: &'static str = "modbus";
    /// One Modbus/TCP ADU is at most 260 bytes.
    const FRAME_BUF: usize = 512;
    type Allow = AllowList;
    type State = ();
    type Pending = Pending;
    type Operation = Operation;

    fn compile(asset: &Asset, scope: &[ScopeItem]) -> AllowList {
        AllowList::compile(&asset.id, scope)
    }

    fn new_state(_: &AllowList) {}

    fn device_address(asset: &Asset) -> Option<String> {
        asset.endpoints.modbus.as_ref().map(|m| m.address.clone())
    }

    fn request_len(buf: &[u8]) -> Result<Option<usize>, Fault> {
        match parse_adu(buf) {
            Ok(found) => Ok(found.map(|(_, used)| used)),
            Err(e) => Err(Fault::new(e.code(), &e)),
        }
    }

    fn response_len(buf: &[u8]) -> Result<Option<usize>, Fault> {
        Self::request_len(buf)
    }

    /// What [`super::inspect`] does, keeping the decoded request for [`Pending`] instead
    /// of decoding it a second time.
    fn decide(allow: &AllowList, _: &mut (), frame: &[u8]) -> Decision<Self> {
        let Ok(Some((adu, _))) = parse_adu(frame) else {
            // `request_len` delimited this frame, so it parses; nothing to record if not.
            return Decision::Malformed {
                fault: Fault::new("internal", "frame vanished"),
                operation: None,
            };
        };
        let request = match decode_request(adu.pdu) {
            Ok(request) => request,
            Err(error) => {
                return Decision::Malformed {
                    operation: Some(Operation::malformed(adu.unit_id, adu.pdu, &error)),
                    fault: Fault::new(error.code(), &error),
                }
            }
        };
        let verdict = allow.check(adu.unit_id, &request);
        let operation = Operation::new(adu.unit_id, &request, &verdict);
        match verdict {
            Verdict::Allow => Decision::Allow {
                pending: Pending::new(&adu, &request),
                operation,
            },
            Verdict::Deny { exception, .. } => Decision::Refuse {
                reply: exception_adu(
                    adu.transaction_id,
                    adu.unit_id,
                    request.function(),
                    exception,
                )
                .to_vec(),
                operation,
            },
            // `check` judges decoded requests only; a decoded request is never malformed.
            Verdict::Malformed { error } => Decision::Malformed {
                fault: Fault::new(error.code(), &error),
                operation: Some(operation),
            },
        }
    }

    fn answer(_: &mut (), pending: &Pending, frame: &[u8]) -> Answer {
        match parse_adu(frame) {
            Ok(Some((adu, _))) => match validate_response(pending, &adu) {
                Ok(_) => Answer::Complete,
                Err(e) => Answer::Invalid(Fault::new(e.code(), &e)),
            },
            Ok(None) => Answer::Invalid(Fault::new("internal", "frame vanished")),
            Err(e) => Answer::Invalid(Fault::new(e.code(), &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::inspect;
    use jitgate_core::scope::{ModbusOp, ModbusTable};

    fn allow() -> AllowList {
        AllowList::compile(
            "plc-7",
            &[ScopeItem::Modbus {
                asset: "plc-7".into(),
                unit: 1,
                op: ModbusOp::Read,
                table: Some(ModbusTable::Holding),
                start: 0,
                end: 99,
            }],
        )
    }

    /// The seam decides exactly as `inspect` does, frame for frame.
    #[test]
    fn decide_agrees_with_inspect() {
        let frames: [&[u8]; 4] = [
            &[0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10],
            &[0xAB, 0xCD, 0, 0, 0, 6, 1, 6, 0, 5, 0, 1],
            &[0, 3, 0, 0, 0, 6, 9, 3, 0, 0, 0, 1],
            &[0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 0],
        ];
        let allow = allow();
        for frame in frames {
            assert_eq!(Modbus::request_len(frame), Ok(Some(frame.len())));
            let (adu, _) = parse_adu(frame).unwrap().unwrap();
            let ins = inspect(&allow, &adu);
            match Modbus::decide(&allow, &mut (), frame) {
                Decision::Allow { operation, .. } => {
                    assert_eq!(ins.verdict, Verdict::Allow);
                    assert_eq!(operation, ins.operation);
                }
                Decision::Refuse { reply, operation } => {
                    assert_eq!(Some(reply), ins.exception_adu);
                    assert_eq!(operation, ins.operation);
                }
                Decision::Malformed { fault, operation } => {
                    let Verdict::Malformed { error } = &ins.verdict else {
                        panic!("{:?}", ins.verdict)
                    };
                    assert_eq!(fault.code, error.code());
                    assert_eq!(operation, Some(ins.operation));
                }
                Decision::Substitute { .. } => panic!("Modbus has no link state to keep"),
            }
        }
    }

    #[test]
    fn a_bad_header_is_a_fault_and_a_partial_frame_waits() {
        assert_eq!(Modbus::request_len(&[0, 1, 0, 0, 0]), Ok(None));
        let fault = Modbus::request_len(&[0, 1, 0, 7, 0, 6, 1, 3, 0, 0, 0, 1]).unwrap_err();
        assert_eq!(fault.code, "bad_protocol_id");
    }

    #[test]
    fn an_answer_to_another_transaction_is_invalid() {
        let request = [0, 9, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1];
        let Decision::Allow { pending, .. } = Modbus::decide(&allow(), &mut (), &request) else {
            panic!("not allowed")
        };
        let good = [0, 9, 0, 0, 0, 5, 1, 3, 2, 0, 7];
        assert_eq!(Modbus::answer(&mut (), &pending, &good), Answer::Complete);
        let other = [0, 8, 0, 0, 0, 5, 1, 3, 2, 0, 7];
        assert!(matches!(
            Modbus::answer(&mut (), &pending, &other),
            Answer::Invalid(_)
        ));
    }
}
