//! Modbus/TCP inspection: pure, synchronous, no I/O (documented in `docs/modbus.md`).
//!
//! Per frame, the gateway runtime calls [`frame::parse_adu`] on its receive buffer, then
//! [`inspect`] with the session's [`AllowList`], and acts on the [`Verdict`]: forward,
//! answer with the exception ADU, or close the session. Responses from the device go
//! through [`response::validate_response`] before they are relayed.
//!
//! - [`frame`]     — MBAP header parsing for a streaming reader, ADU encoding.
//! - [`request`]   — request PDU decoding with per-function length and quantity rules.
//! - [`allow`]     — the allow-list compiled once from a grant's scope; [`Verdict`].
//! - [`exception`] — exception codes and exception ADUs.
//! - [`op`]        — the [`Operation`] record sent to the event log.
//! - [`response`]  — checking a device's response against the request it answers.
//! - [`proto`]     — [`proto::Modbus`], these pieces behind the gateway's protocol seam
//!   (`crate::protocol::FrameProtocol`), as the relay loop drives them.
//! - `sim`         — (feature `sim`) an in-memory Modbus/TCP server for tests and benchmarks.

pub mod allow;
pub mod exception;
pub mod frame;
pub mod op;
pub mod proto;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;

pub use allow::{AllowList, Verdict};
pub use exception::{exception_adu, Exception};
pub use frame::{encode_adu, parse_adu, Adu, FrameError};
pub use op::Operation;
pub use request::{decode_request, Request, RequestError};
pub use response::{validate_response, Pending, ResponseError, ResponseKind};

/// What to do with one request ADU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// `Allow`: forward the ADU unchanged. `Deny`: send [`Inspection::exception_adu`].
    /// `Malformed`: close the session.
    pub verdict: Verdict,
    /// The record for the event log, for every verdict.
    pub operation: Operation,
    /// The reply to send in the device's place when the verdict is `Deny`.
    pub exception_adu: Option<Vec<u8>>,
}

/// Decode and check one request ADU against the session's allow-list.
pub fn inspect(allow: &AllowList, adu: &Adu<'_>) -> Inspection {
    let req = match decode_request(adu.pdu) {
        Ok(req) => req,
        Err(error) => {
            let operation = Operation::malformed(adu.unit_id, adu.pdu, &error);
            return Inspection {
                verdict: Verdict::Malformed { error },
                operation,
                exception_adu: None,
            };
        }
    };
    let verdict = allow.check(adu.unit_id, &req);
    let operation = Operation::new(adu.unit_id, &req, &verdict);
    let exception_adu = match &verdict {
        Verdict::Deny { exception, .. } => Some(
            exception_adu(adu.transaction_id, adu.unit_id, req.function(), *exception).to_vec(),
        ),
        _ => None,
    };
    Inspection {
        verdict,
        operation,
        exception_adu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jitgate_core::scope::{ModbusOp, ModbusTable, ScopeItem};

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

    fn adu(bytes: &[u8]) -> Adu<'_> {
        parse_adu(bytes).unwrap().unwrap().0
    }

    #[test]
    fn allowed_read_is_forwarded() {
        let bytes = [0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10];
        let ins = inspect(&allow(), &adu(&bytes));
        assert_eq!(ins.verdict, Verdict::Allow);
        assert!(ins.operation.allowed);
        assert_eq!(ins.exception_adu, None);
    }

    #[test]
    fn denied_write_gets_an_exception_adu() {
        let bytes = [0xAB, 0xCD, 0, 0, 0, 6, 1, 6, 0, 5, 0, 1];
        let ins = inspect(&allow(), &adu(&bytes));
        assert!(matches!(
            ins.verdict,
            Verdict::Deny {
                exception: Exception::IllegalFunction,
                ..
            }
        ));
        assert_eq!(
            ins.exception_adu.as_deref(),
            Some(&[0xAB, 0xCD, 0, 0, 0, 3, 1, 0x86, 0x01][..])
        );
        assert_eq!(ins.operation.exception, Some(1));
        let out_of_range = [0, 2, 0, 0, 0, 6, 1, 3, 0, 100, 0, 1];
        let ins = inspect(&allow(), &adu(&out_of_range));
        assert_eq!(
            ins.exception_adu.as_deref(),
            Some(&[0, 2, 0, 0, 0, 3, 1, 0x83, 0x02][..])
        );
        let other_unit = [0, 3, 0, 0, 0, 6, 9, 3, 0, 0, 0, 1];
        let ins = inspect(&allow(), &adu(&other_unit));
        assert_eq!(
            ins.exception_adu.as_deref(),
            Some(&[0, 3, 0, 0, 0, 3, 9, 0x83, 0x0B][..])
        );
    }

    #[test]
    fn malformed_request_closes() {
        let bytes = [0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 0];
        let ins = inspect(&allow(), &adu(&bytes));
        let Verdict::Malformed { error } = &ins.verdict else {
            panic!("{:?}", ins.verdict)
        };
        assert_eq!(error.code(), "bad_quantity");
        assert_eq!(ins.exception_adu, None);
        assert_eq!(ins.operation.malformed.as_deref(), Some("bad_quantity"));
    }
}
