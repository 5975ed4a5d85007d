//! Validation of a device's response against the request it answers.
//!
//! The gateway relays responses unchanged, but only after checking that they answer the
//! request that was forwarded: a device (or something impersonating it) that answers a
//! different transaction, function or quantity could make the client act on data nobody
//! asked for. A response that fails here closes the session.
//!
//! The request's receive buffer is gone by the time the response arrives, so [`Pending`]
//! keeps the few bytes needed (at most the 7-byte PDU of an echoed single write).

use super::frame::Adu;
use super::request::{fc, Request};
use thiserror::Error;

/// What a response must look like to answer a forwarded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub transaction_id: u16,
    pub unit_id: u8,
    pub function: u8,
    expect: Expect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// FC1/2: byte count = ceil(quantity / 8).
    Bits { quantity: u16 },
    /// FC3/4/23: byte count = 2 * quantity (read quantity for FC23).
    Registers { quantity: u16 },
    /// FC5/6/22: the response repeats the request PDU.
    Echo { pdu: [u8; 7], len: u8 },
    /// FC15/16: address and quantity written.
    WriteAck { address: u16, quantity: u16 },
    /// Programming/diagnostics: not decoded, only framing is checked.
    Any,
}

/// A response that answers its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    Normal,
    /// The device refused with this exception code.
    Exception(u8),
}

/// Why a device's response does not answer the request. Each closes the session.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResponseError {
    #[error("response transaction id {found} does not match the request's {expected}")]
    TransactionMismatch { expected: u16, found: u16 },
    #[error("response unit id {found} does not match the request's {expected}")]
    UnitMismatch { expected: u8, found: u8 },
    #[error("response function code {found:#04x} answers neither FC {expected} nor its exception")]
    FunctionMismatch { expected: u8, found: u8 },
    #[error("FC {function} response PDU is {found} bytes; it must be {expected}")]
    BadLength {
        function: u8,
        expected: usize,
        found: usize,
    },
    #[error("FC {function} response byte count is {found}; the request asked for {expected}")]
    BadByteCount {
        function: u8,
        expected: usize,
        found: u8,
    },
    #[error("FC {function} response does not repeat the request, as the protocol requires")]
    EchoMismatch { function: u8 },
    #[error("FC {function} response acknowledges address {found_address} quantity {found_quantity}; the request wrote address {address} quantity {quantity}")]
    AckMismatch {
        function: u8,
        address: u16,
        quantity: u16,
        found_address: u16,
        found_quantity: u16,
    },
    #[error("exception response with code 0, which no device sends")]
    ZeroExceptionCode,
}

impl ResponseError {
    /// Stable code for logs and evidence events.
    pub fn code(&self) -> &'static str {
        match self {
            ResponseError::TransactionMismatch { .. } => "transaction_mismatch",
            ResponseError::UnitMismatch { .. } => "unit_mismatch",
            ResponseError::FunctionMismatch { .. } => "function_mismatch",
            ResponseError::BadLength { .. } => "bad_response_length",
            ResponseError::BadByteCount { .. } => "bad_byte_count",
            ResponseError::EchoMismatch { .. } => "echo_mismatch",
            ResponseError::AckMismatch { .. } => "ack_mismatch",
            ResponseError::ZeroExceptionCode => "zero_exception_code",
        }
    }
}

impl Pending {
    /// Remember what the response to `req` (carried in `adu`) must look like.
    pub fn new(adu: &Adu<'_>, req: &Request<'_>) -> Pending {
        let expect = match *req {
            Request::ReadCoils { quantity, .. } | Request::ReadDiscreteInputs { quantity, .. } => {
                Expect::Bits { quantity }
            }
            Request::ReadHoldingRegisters { quantity, .. }
            | Request::ReadInputRegisters { quantity, .. }
            | Request::ReadWriteMultipleRegisters {
                read_quantity: quantity,
                ..
            } => Expect::Registers { quantity },
            Request::WriteSingleCoil { .. }
            | Request::WriteSingleRegister { .. }
            | Request::MaskWriteRegister { .. } => {
                let mut pdu = [0u8; 7];
                let len = adu.pdu.len().min(pdu.len());
                for (slot, byte) in pdu.iter_mut().zip(adu.pdu) {
                    *slot = *byte;
                }
                Expect::Echo {
                    pdu,
                    // Fits: at most 7.
                    len: len as u8,
                }
            }
            Request::WriteMultipleCoils {
                address, quantity, ..
            }
            | Request::WriteMultipleRegisters {
                address, quantity, ..
            } => Expect::WriteAck { address, quantity },
            Request::Other { .. } => Expect::Any,
        };
        Pending {
            transaction_id: adu.transaction_id,
            unit_id: adu.unit_id,
            function: req.function(),
            expect,
        }
    }
}

/// Check that `resp` answers `pending`.
pub fn validate_response(pending: &Pending, resp: &Adu<'_>) -> Result<ResponseKind, ResponseError> {
    if resp.transaction_id != pending.transaction_id {
        return Err(ResponseError::TransactionMismatch {
            expected: pending.transaction_id,
            found: resp.transaction_id,
        });
    }
    if resp.unit_id != pending.unit_id {
        return Err(ResponseError::UnitMismatch {
            expected: pending.unit_id,
            found: resp.unit_id,
        });
    }
    let function = pending.function;
    let pdu = resp.pdu;
    let found = pdu.first().copied().unwrap_or(0);
    let bad_len = |expected: usize| ResponseError::BadLength {
        function,
        expected,
        found: pdu.len(),
    };
    if found == function | 0x80 {
        return match *pdu {
            [_, 0] => Err(ResponseError::ZeroExceptionCode),
            [_, code] => Ok(ResponseKind::Exception(code)),
            _ => Err(bad_len(2)),
        };
    }
    if found != function {
        return Err(ResponseError::FunctionMismatch {
            expected: function,
            found,
        });
    }
    match pending.expect {
        Expect::Bits { quantity } => {
            check_byte_count(function, pdu, usize::from(quantity).div_ceil(8))
        }
        Expect::Registers { quantity } => {
            check_byte_count(function, pdu, 2 * usize::from(quantity))
        }
        Expect::Echo { pdu: sent, len } => {
            let sent = sent.get(..usize::from(len)).unwrap_or_default();
            if pdu.len() != sent.len() {
                return Err(bad_len(sent.len()));
            }
            if pdu != sent {
                return Err(ResponseError::EchoMismatch { function });
            }
            Ok(ResponseKind::Normal)
        }
        Expect::WriteAck { address, quantity } => {
            let &[_, a0, a1, q0, q1] = pdu else {
                return Err(bad_len(5));
            };
            let (found_address, found_quantity) =
                (u16::from_be_bytes([a0, a1]), u16::from_be_bytes([q0, q1]));
            if (found_address, found_quantity) != (address, quantity) {
                return Err(ResponseError::AckMismatch {
                    function,
                    address,
                    quantity,
                    found_address,
                    found_quantity,
                });
            }
            Ok(ResponseKind::Normal)
        }
        Expect::Any => Ok(ResponseKind::Normal),
    }
}

fn check_byte_count(
    function: u8,
    pdu: &[u8],
    expected: usize,
) -> Result<ResponseKind, ResponseError> {
    let Some(&count) = pdu.get(1) else {
        return Err(ResponseError::BadLength {
            function,
            expected: 2 + expected,
            found: pdu.len(),
        });
    };
    if usize::from(count) != expected {
        return Err(ResponseError::BadByteCount {
            function,
            expected,
            found: count,
        });
    }
    if pdu.len() != 2 + expected {
        return Err(ResponseError::BadLength {
            function,
            expected: 2 + expected,
            found: pdu.len(),
        });
    }
    Ok(ResponseKind::Normal)
}

/// Function codes whose responses are checked field by field (the rest: framing only).
pub const VALIDATED_FUNCTIONS: [u8; 10] = [
    fc::READ_COILS,
    fc::READ_DISCRETE_INPUTS,
    fc::READ_HOLDING_REGISTERS,
    fc::READ_INPUT_REGISTERS,
    fc::WRITE_SINGLE_COIL,
    fc::WRITE_SINGLE_REGISTER,
    fc::WRITE_MULTIPLE_COILS,
    fc::WRITE_MULTIPLE_REGISTERS,
    fc::MASK_WRITE_REGISTER,
    fc::READ_WRITE_MULTIPLE_REGISTERS,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::request::decode_request;

    fn pending(tid: u16, unit: u8, pdu: &[u8]) -> Pending {
        let adu = Adu {
            transaction_id: tid,
            unit_id: unit,
            pdu,
        };
        Pending::new(&adu, &decode_request(pdu).unwrap())
    }

    fn resp(tid: u16, unit: u8, pdu: &[u8]) -> Adu<'_> {
        Adu {
            transaction_id: tid,
            unit_id: unit,
            pdu,
        }
    }

    fn code(p: &Pending, r: &Adu<'_>) -> &'static str {
        validate_response(p, r).unwrap_err().code()
    }

    #[test]
    fn read_holding_byte_count() {
        let p = pending(9, 1, &[3, 0, 0, 0, 2]);
        assert_eq!(
            validate_response(&p, &resp(9, 1, &[3, 4, 0, 1, 0, 2])).unwrap(),
            ResponseKind::Normal
        );
        assert_eq!(code(&p, &resp(9, 1, &[3, 2, 0, 1])), "bad_byte_count");
        assert_eq!(
            code(&p, &resp(9, 1, &[3, 4, 0, 1, 0])),
            "bad_response_length"
        );
        assert_eq!(
            code(&p, &resp(9, 1, &[3, 4, 0, 1, 0, 2, 9])),
            "bad_response_length"
        );
        assert_eq!(code(&p, &resp(9, 1, &[3])), "bad_response_length");
        assert_eq!(
            code(&p, &resp(8, 1, &[3, 4, 0, 1, 0, 2])),
            "transaction_mismatch"
        );
        assert_eq!(code(&p, &resp(9, 2, &[3, 4, 0, 1, 0, 2])), "unit_mismatch");
        assert_eq!(
            code(&p, &resp(9, 1, &[4, 4, 0, 1, 0, 2])),
            "function_mismatch"
        );
    }

    #[test]
    fn read_coils_byte_count() {
        let p = pending(1, 1, &[1, 0, 0, 0, 9]);
        assert!(validate_response(&p, &resp(1, 1, &[1, 2, 0xFF, 0x01])).is_ok());
        assert_eq!(code(&p, &resp(1, 1, &[1, 1, 0xFF])), "bad_byte_count");
        let p = pending(1, 1, &[2, 0, 0, 0, 8]);
        assert!(validate_response(&p, &resp(1, 1, &[2, 1, 0xFF])).is_ok());
    }

    #[test]
    fn exceptions() {
        let p = pending(1, 1, &[3, 0, 0, 0, 2]);
        assert_eq!(
            validate_response(&p, &resp(1, 1, &[0x83, 2])).unwrap(),
            ResponseKind::Exception(2)
        );
        assert_eq!(code(&p, &resp(1, 1, &[0x83, 2, 0])), "bad_response_length");
        assert_eq!(code(&p, &resp(1, 1, &[0x83])), "bad_response_length");
        assert_eq!(code(&p, &resp(1, 1, &[0x83, 0])), "zero_exception_code");
        assert_eq!(code(&p, &resp(1, 1, &[0x84, 2])), "function_mismatch");
    }

    #[test]
    fn single_writes_echo() {
        let p = pending(1, 1, &[6, 0, 10, 0x12, 0x34]);
        assert!(validate_response(&p, &resp(1, 1, &[6, 0, 10, 0x12, 0x34])).is_ok());
        assert_eq!(
            code(&p, &resp(1, 1, &[6, 0, 10, 0x12, 0x35])),
            "echo_mismatch"
        );
        assert_eq!(
            code(&p, &resp(1, 1, &[6, 0, 10, 0x12])),
            "bad_response_length"
        );
        let p = pending(1, 1, &[5, 0, 10, 0xFF, 0]);
        assert!(validate_response(&p, &resp(1, 1, &[5, 0, 10, 0xFF, 0])).is_ok());
        let p = pending(1, 1, &[22, 0, 4, 0, 0xF2, 0, 0x25]);
        assert!(validate_response(&p, &resp(1, 1, &[22, 0, 4, 0, 0xF2, 0, 0x25])).is_ok());
        assert_eq!(
            code(&p, &resp(1, 1, &[22, 0, 4, 0, 0xF2, 0, 0x26])),
            "echo_mismatch"
        );
    }

    #[test]
    fn multiple_writes_acknowledge() {
        let p = pending(1, 1, &[16, 0, 10, 0, 2, 4, 0, 1, 0, 2]);
        assert!(validate_response(&p, &resp(1, 1, &[16, 0, 10, 0, 2])).is_ok());
        assert_eq!(code(&p, &resp(1, 1, &[16, 0, 10, 0, 3])), "ack_mismatch");
        assert_eq!(
            code(&p, &resp(1, 1, &[16, 0, 10, 0])),
            "bad_response_length"
        );
        let p = pending(1, 1, &[15, 0, 10, 0, 9, 2, 0xFF, 1]);
        assert!(validate_response(&p, &resp(1, 1, &[15, 0, 10, 0, 9])).is_ok());
        assert_eq!(code(&p, &resp(1, 1, &[15, 0, 11, 0, 9])), "ack_mismatch");
    }

    #[test]
    fn read_write_multiple_uses_read_quantity() {
        let p = pending(1, 1, &[23, 0, 0, 0, 3, 0, 9, 0, 1, 2, 0, 7]);
        assert!(validate_response(&p, &resp(1, 1, &[23, 6, 0, 1, 0, 2, 0, 3])).is_ok());
        assert_eq!(code(&p, &resp(1, 1, &[23, 2, 0, 1])), "bad_byte_count");
    }

    #[test]
    fn other_functions_check_framing_only() {
        let p = pending(1, 1, &[8, 0, 0, 0x12, 0x34]);
        assert!(validate_response(&p, &resp(1, 1, &[8, 0, 0, 0x12, 0x34])).is_ok());
        assert!(validate_response(&p, &resp(1, 1, &[8])).is_ok());
        assert_eq!(code(&p, &resp(1, 1, &[9])), "function_mismatch");
        assert!(!VALIDATED_FUNCTIONS.contains(&8));
    }
}
