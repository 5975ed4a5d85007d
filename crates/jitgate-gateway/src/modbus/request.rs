//! Request PDU decoding with the Modbus application protocol's length and quantity rules.
//!
//! Every data-access function (1-6, 15, 16, 22, 23) is decoded field by field and must have
//! exactly the length its function prescribes, quantities within the protocol's limits,
//! byte counts that agree with the quantity and the PDU length, and an address range that
//! ends at or before 65535. Anything else that is a valid function code (1-127) decodes as
//! [`Request::Other`]: diagnostics, device identification, file records and vendor
//! programming codes, which a grant allows only with `programming`.
//!
//! A request that breaks one of these rules is *malformed*: [`decode_request`] returns a
//! [`RequestError`] and the gateway closes the session (see `docs/modbus.md` for why it does
//! not answer ILLEGAL_DATA_VALUE instead).

use jitgate_core::scope::{ModbusOp, ModbusTable};
use thiserror::Error;

/// Function codes jitgate decodes field by field, plus the ones it names in logs.
pub mod fc {
    pub const READ_COILS: u8 = 0x01;
    pub const READ_DISCRETE_INPUTS: u8 = 0x02;
    pub const READ_HOLDING_REGISTERS: u8 = 0x03;
    pub const READ_INPUT_REGISTERS: u8 = 0x04;
    pub const WRITE_SINGLE_COIL: u8 = 0x05;
    pub const WRITE_SINGLE_REGISTER: u8 = 0x06;
    pub const READ_EXCEPTION_STATUS: u8 = 0x07;
    pub const DIAGNOSTICS: u8 = 0x08;
    pub const GET_COMM_EVENT_COUNTER: u8 = 0x0B;
    pub const GET_COMM_EVENT_LOG: u8 = 0x0C;
    pub const WRITE_MULTIPLE_COILS: u8 = 0x0F;
    pub const WRITE_MULTIPLE_REGISTERS: u8 = 0x10;
    pub const REPORT_SERVER_ID: u8 = 0x11;
    pub const READ_FILE_RECORD: u8 = 0x14;
    pub const WRITE_FILE_RECORD: u8 = 0x15;
    pub const MASK_WRITE_REGISTER: u8 = 0x16;
    pub const READ_WRITE_MULTIPLE_REGISTERS: u8 = 0x17;
    pub const READ_FIFO_QUEUE: u8 = 0x18;
    pub const ENCAPSULATED_INTERFACE_TRANSPORT: u8 = 0x2B;
    /// Schneider Electric UMAS (Unity/EcoStruxure programming), carried as a user-defined code.
    pub const UMAS: u8 = 0x5A;
}

/// Modbus limits (Modbus Application Protocol Specification v1.1b3, section 6).
pub const MAX_READ_BITS: u16 = 2000;
pub const MAX_READ_REGISTERS: u16 = 125;
pub const MAX_WRITE_COILS: u16 = 1968;
pub const MAX_WRITE_REGISTERS: u16 = 123;
pub const MAX_RW_READ_REGISTERS: u16 = 125;
pub const MAX_RW_WRITE_REGISTERS: u16 = 121;

/// The only two values FC5 may carry.
const COIL_ON: u16 = 0xFF00;
const COIL_OFF: u16 = 0x0000;

/// A decoded request PDU; data borrows from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    ReadCoils {
        address: u16,
        quantity: u16,
    },
    ReadDiscreteInputs {
        address: u16,
        quantity: u16,
    },
    ReadHoldingRegisters {
        address: u16,
        quantity: u16,
    },
    ReadInputRegisters {
        address: u16,
        quantity: u16,
    },
    WriteSingleCoil {
        address: u16,
        value: bool,
    },
    WriteSingleRegister {
        address: u16,
        value: u16,
    },
    /// `values`: `ceil(quantity / 8)` bytes, first coil in the lowest bit of the first byte.
    WriteMultipleCoils {
        address: u16,
        quantity: u16,
        values: &'a [u8],
    },
    /// `values`: `2 * quantity` bytes, big-endian registers.
    WriteMultipleRegisters {
        address: u16,
        quantity: u16,
        values: &'a [u8],
    },
    MaskWriteRegister {
        address: u16,
        and_mask: u16,
        or_mask: u16,
    },
    /// The device writes first, then reads (both on holding registers).
    ReadWriteMultipleRegisters {
        read_address: u16,
        read_quantity: u16,
        write_address: u16,
        write_quantity: u16,
        values: &'a [u8],
    },
    /// Any other function code 1-127: diagnostics, device identification, file records,
    /// vendor programming. Not decoded further; allowed only by `programming`.
    Other {
        function: u8,
        data: &'a [u8],
    },
}

/// A contiguous address range a request touches, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub op: ModbusOp,
    pub table: ModbusTable,
    pub start: u16,
    /// Inclusive, like scope ranges.
    pub end: u16,
}

/// What a request needs from a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// One or (FC23) two address ranges.
    Spans(Span, Option<Span>),
    /// The `programming` operation.
    Programming,
}

/// Why a request PDU is malformed. Each of these closes the session.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    #[error("empty PDU: a request needs at least a function code")]
    EmptyPdu,
    #[error("function code {function:#04x} is not a request (requests use 0x01-0x7F)")]
    BadFunctionCode { function: u8 },
    #[error("{} request PDU is {found} bytes; it must be {expected}", describe(*function))]
    BadPduLength {
        function: u8,
        expected: usize,
        found: usize,
    },
    #[error("{} quantity {quantity} is outside the Modbus limit 1-{max}", describe(*function))]
    BadQuantity {
        function: u8,
        quantity: u16,
        max: u16,
    },
    #[error("{} byte count is {found}; for the quantity requested it must be {expected}", describe(*function))]
    BadByteCount {
        function: u8,
        found: u8,
        expected: usize,
    },
    #[error(
        "write single coil value {value:#06x} is invalid; it must be 0xFF00 (on) or 0x0000 (off)"
    )]
    BadCoilValue { value: u16 },
    #[error("{} address {address} + quantity {quantity} runs past address 65535", describe(*function))]
    AddressOverflow {
        function: u8,
        address: u16,
        quantity: u16,
    },
}

impl RequestError {
    /// Stable code for logs and evidence events.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::EmptyPdu => "empty_pdu",
            RequestError::BadFunctionCode { .. } => "bad_function_code",
            RequestError::BadPduLength { .. } => "bad_pdu_length",
            RequestError::BadQuantity { .. } => "bad_quantity",
            RequestError::BadByteCount { .. } => "bad_byte_count",
            RequestError::BadCoilValue { .. } => "bad_coil_value",
            RequestError::AddressOverflow { .. } => "address_overflow",
        }
    }
}

fn describe(function: u8) -> String {
    format!("FC {function} ({})", function_name(function))
}

/// The name logs and evidence use for a function code.
pub fn function_name(function: u8) -> &'static str {
    match function {
        fc::READ_COILS => "read_coils",
        fc::READ_DISCRETE_INPUTS => "read_discrete_inputs",
        fc::READ_HOLDING_REGISTERS => "read_holding_registers",
        fc::READ_INPUT_REGISTERS => "read_input_registers",
        fc::WRITE_SINGLE_COIL => "write_single_coil",
        fc::WRITE_SINGLE_REGISTER => "write_single_register",
        fc::READ_EXCEPTION_STATUS => "read_exception_status",
        fc::DIAGNOSTICS => "diagnostics",
        fc::GET_COMM_EVENT_COUNTER => "get_comm_event_counter",
        fc::GET_COMM_EVENT_LOG => "get_comm_event_log",
        fc::WRITE_MULTIPLE_COILS => "write_multiple_coils",
        fc::WRITE_MULTIPLE_REGISTERS => "write_multiple_registers",
        fc::REPORT_SERVER_ID => "report_server_id",
        fc::READ_FILE_RECORD => "read_file_record",
        fc::WRITE_FILE_RECORD => "write_file_record",
        fc::MASK_WRITE_REGISTER => "mask_write_register",
        fc::READ_WRITE_MULTIPLE_REGISTERS => "read_write_multiple_registers",
        fc::READ_FIFO_QUEUE => "read_fifo_queue",
        fc::ENCAPSULATED_INTERFACE_TRANSPORT => "encapsulated_interface_transport",
        fc::UMAS => "umas",
        // Ranges the specification reserves for user-defined (vendor) functions.
        65..=72 | 100..=110 => "user_defined",
        0x80..=0xFF => "exception",
        _ => "unassigned",
    }
}

/// Decode a request PDU (function code + data), enforcing the protocol's rules.
pub fn decode_request(pdu: &[u8]) -> Result<Request<'_>, RequestError> {
    let Some(&function) = pdu.first() else {
        return Err(RequestError::EmptyPdu);
    };
    let bad_len = |expected: usize| RequestError::BadPduLength {
        function,
        expected,
        found: pdu.len(),
    };
    let be = |hi: u8, lo: u8| u16::from_be_bytes([hi, lo]);
    match function {
        fc::READ_COILS
        | fc::READ_DISCRETE_INPUTS
        | fc::READ_HOLDING_REGISTERS
        | fc::READ_INPUT_REGISTERS => {
            let &[_, a0, a1, q0, q1] = pdu else {
                return Err(bad_len(5));
            };
            let (address, quantity) = (be(a0, a1), be(q0, q1));
            let max = if function <= fc::READ_DISCRETE_INPUTS {
                MAX_READ_BITS
            } else {
                MAX_READ_REGISTERS
            };
            check_range(function, address, quantity, max)?;
            Ok(match function {
                fc::READ_COILS => Request::ReadCoils { address, quantity },
                fc::READ_DISCRETE_INPUTS => Request::ReadDiscreteInputs { address, quantity },
                fc::READ_HOLDING_REGISTERS => Request::ReadHoldingRegisters { address, quantity },
                _ => Request::ReadInputRegisters { address, quantity },
            })
        }
        fc::WRITE_SINGLE_COIL => {
            let &[_, a0, a1, v0, v1] = pdu else {
                return Err(bad_len(5));
            };
            let value = match be(v0, v1) {
                COIL_ON => true,
                COIL_OFF => false,
                value => return Err(RequestError::BadCoilValue { value }),
            };
            Ok(Request::WriteSingleCoil {
                address: be(a0, a1),
                value,
            })
        }
        fc::WRITE_SINGLE_REGISTER => {
            let &[_, a0, a1, v0, v1] = pdu else {
                return Err(bad_len(5));
            };
            Ok(Request::WriteSingleRegister {
                address: be(a0, a1),
                value: be(v0, v1),
            })
        }
        fc::WRITE_MULTIPLE_COILS | fc::WRITE_MULTIPLE_REGISTERS => {
            let &[_, a0, a1, q0, q1, byte_count, ref values @ ..] = pdu else {
                return Err(bad_len(6));
            };
            let (address, quantity) = (be(a0, a1), be(q0, q1));
            let coils = function == fc::WRITE_MULTIPLE_COILS;
            let max = if coils {
                MAX_WRITE_COILS
            } else {
                MAX_WRITE_REGISTERS
            };
            check_range(function, address, quantity, max)?;
            let expected = if coils {
                usize::from(quantity).div_ceil(8)
            } else {
                2 * usize::from(quantity)
            };
            check_byte_count(function, byte_count, expected)?;
            if values.len() != expected {
                return Err(bad_len(6 + expected));
            }
            Ok(if coils {
                Request::WriteMultipleCoils {
                    address,
                    quantity,
                    values,
                }
            } else {
                Request::WriteMultipleRegisters {
                    address,
                    quantity,
                    values,
                }
            })
        }
        fc::MASK_WRITE_REGISTER => {
            let &[_, a0, a1, and0, and1, or0, or1] = pdu else {
                return Err(bad_len(7));
            };
            Ok(Request::MaskWriteRegister {
                address: be(a0, a1),
                and_mask: be(and0, and1),
                or_mask: be(or0, or1),
            })
        }
        fc::READ_WRITE_MULTIPLE_REGISTERS => {
            let &[_, r0, r1, rq0, rq1, w0, w1, wq0, wq1, byte_count, ref values @ ..] = pdu else {
                return Err(bad_len(10));
            };
            let (read_address, read_quantity) = (be(r0, r1), be(rq0, rq1));
            let (write_address, write_quantity) = (be(w0, w1), be(wq0, wq1));
            check_range(function, read_address, read_quantity, MAX_RW_READ_REGISTERS)?;
            check_range(
                function,
                write_address,
                write_quantity,
                MAX_RW_WRITE_REGISTERS,
            )?;
            let expected = 2 * usize::from(write_quantity);
            check_byte_count(function, byte_count, expected)?;
            if values.len() != expected {
                return Err(bad_len(10 + expected));
            }
            Ok(Request::ReadWriteMultipleRegisters {
                read_address,
                read_quantity,
                write_address,
                write_quantity,
                values,
            })
        }
        0 | 0x80..=0xFF => Err(RequestError::BadFunctionCode { function }),
        _ => Ok(Request::Other {
            function,
            data: pdu.get(1..).unwrap_or_default(),
        }),
    }
}

fn check_range(function: u8, address: u16, quantity: u16, max: u16) -> Result<(), RequestError> {
    if quantity == 0 || quantity > max {
        return Err(RequestError::BadQuantity {
            function,
            quantity,
            max,
        });
    }
    if u32::from(address) + u32::from(quantity) > 0x1_0000 {
        return Err(RequestError::AddressOverflow {
            function,
            address,
            quantity,
        });
    }
    Ok(())
}

fn check_byte_count(function: u8, found: u8, expected: usize) -> Result<(), RequestError> {
    if usize::from(found) != expected {
        return Err(RequestError::BadByteCount {
            function,
            found,
            expected,
        });
    }
    Ok(())
}

/// Inclusive end of `quantity` items from `address`; the decoder has checked it fits.
fn last(address: u16, quantity: u16) -> u16 {
    address.saturating_add(quantity.saturating_sub(1))
}

impl Request<'_> {
    pub fn function(&self) -> u8 {
        match self {
            Request::ReadCoils { .. } => fc::READ_COILS,
            Request::ReadDiscreteInputs { .. } => fc::READ_DISCRETE_INPUTS,
            Request::ReadHoldingRegisters { .. } => fc::READ_HOLDING_REGISTERS,
            Request::ReadInputRegisters { .. } => fc::READ_INPUT_REGISTERS,
            Request::WriteSingleCoil { .. } => fc::WRITE_SINGLE_COIL,
            Request::WriteSingleRegister { .. } => fc::WRITE_SINGLE_REGISTER,
            Request::WriteMultipleCoils { .. } => fc::WRITE_MULTIPLE_COILS,
            Request::WriteMultipleRegisters { .. } => fc::WRITE_MULTIPLE_REGISTERS,
            Request::MaskWriteRegister { .. } => fc::MASK_WRITE_REGISTER,
            Request::ReadWriteMultipleRegisters { .. } => fc::READ_WRITE_MULTIPLE_REGISTERS,
            Request::Other { function, .. } => *function,
        }
    }

    pub fn function_name(&self) -> &'static str {
        function_name(self.function())
    }

    /// Diagnostics, device identification, file records or vendor programming.
    pub fn is_programming(&self) -> bool {
        matches!(self, Request::Other { .. })
    }

    /// What this request needs from the grant: the address ranges it reads or writes, or
    /// `programming`. FC22 (mask write) is a write of one holding register: the device
    /// reads it internally, but the response carries no register value back to the client.
    pub fn needs(&self) -> Needs {
        use ModbusOp::{Read, Write};
        use ModbusTable::{Coil, Discrete, Holding, Input};
        let span = |op, table, address: u16, quantity: u16| Span {
            op,
            table,
            start: address,
            end: last(address, quantity),
        };
        let one = |s| Needs::Spans(s, None);
        match *self {
            Request::ReadCoils { address, quantity } => one(span(Read, Coil, address, quantity)),
            Request::ReadDiscreteInputs { address, quantity } => {
                one(span(Read, Discrete, address, quantity))
            }
            Request::ReadHoldingRegisters { address, quantity } => {
                one(span(Read, Holding, address, quantity))
            }
            Request::ReadInputRegisters { address, quantity } => {
                one(span(Read, Input, address, quantity))
            }
            Request::WriteSingleCoil { address, .. } => one(span(Write, Coil, address, 1)),
            Request::WriteSingleRegister { address, .. }
            | Request::MaskWriteRegister { address, .. } => one(span(Write, Holding, address, 1)),
            Request::WriteMultipleCoils {
                address, quantity, ..
            } => one(span(Write, Coil, address, quantity)),
            Request::WriteMultipleRegisters {
                address, quantity, ..
            } => one(span(Write, Holding, address, quantity)),
            Request::ReadWriteMultipleRegisters {
                read_address,
                read_quantity,
                write_address,
                write_quantity,
                ..
            } => Needs::Spans(
                span(Read, Holding, read_address, read_quantity),
                Some(span(Write, Holding, write_address, write_quantity)),
            ),
            Request::Other { .. } => Needs::Programming,
        }
    }

    /// The values a write carries, as the operation log records them: registers as they
    /// are, coils as 0/1, FC22 as `[and_mask, or_mask]`. `None` for reads and for `Other`.
    pub fn values_written(&self) -> Option<Vec<u16>> {
        match *self {
            Request::WriteSingleCoil { value, .. } => Some(vec![u16::from(value)]),
            Request::WriteSingleRegister { value, .. } => Some(vec![value]),
            Request::WriteMultipleCoils {
                quantity, values, ..
            } => Some(coil_values(values, quantity).map(u16::from).collect()),
            Request::WriteMultipleRegisters { values, .. }
            | Request::ReadWriteMultipleRegisters { values, .. } => {
                Some(register_values(values).collect())
            }
            Request::MaskWriteRegister {
                and_mask, or_mask, ..
            } => Some(vec![and_mask, or_mask]),
            _ => None,
        }
    }
}

/// Unpack `quantity` coils, first coil in the lowest bit of the first byte.
pub fn coil_values(packed: &[u8], quantity: u16) -> impl Iterator<Item = bool> + '_ {
    packed
        .iter()
        .flat_map(|byte| (0..8).map(move |bit| byte & (1 << bit) != 0))
        .take(usize::from(quantity))
}

/// Big-endian registers; an odd trailing byte (never present after decoding) is ignored.
pub fn register_values(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes.chunks_exact(2).map(|pair| match *pair {
        [hi, lo] => u16::from_be_bytes([hi, lo]),
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(function: u8, address: u16, quantity: u16) -> Vec<u8> {
        let mut v = vec![function];
        v.extend_from_slice(&address.to_be_bytes());
        v.extend_from_slice(&quantity.to_be_bytes());
        v
    }

    fn write_coils(address: u16, quantity: u16, byte_count: u8, data_len: usize) -> Vec<u8> {
        let mut v = read(fc::WRITE_MULTIPLE_COILS, address, quantity);
        v.push(byte_count);
        v.extend(std::iter::repeat_n(0xA5, data_len));
        v
    }

    fn write_regs(address: u16, quantity: u16, byte_count: u8, data_len: usize) -> Vec<u8> {
        let mut v = read(fc::WRITE_MULTIPLE_REGISTERS, address, quantity);
        v.push(byte_count);
        v.extend(std::iter::repeat_n(0x01, data_len));
        v
    }

    fn rw(
        read_address: u16,
        read_quantity: u16,
        write_address: u16,
        write_quantity: u16,
        byte_count: u8,
        data_len: usize,
    ) -> Vec<u8> {
        let mut v = read(
            fc::READ_WRITE_MULTIPLE_REGISTERS,
            read_address,
            read_quantity,
        );
        v.extend_from_slice(&write_address.to_be_bytes());
        v.extend_from_slice(&write_quantity.to_be_bytes());
        v.push(byte_count);
        v.extend(std::iter::repeat_n(0x02, data_len));
        v
    }

    fn code(pdu: &[u8]) -> &'static str {
        decode_request(pdu).unwrap_err().code()
    }

    #[test]
    fn read_quantity_limits() {
        for (function, max) in [
            (fc::READ_COILS, 2000),
            (fc::READ_DISCRETE_INPUTS, 2000),
            (fc::READ_HOLDING_REGISTERS, 125),
            (fc::READ_INPUT_REGISTERS, 125),
        ] {
            assert!(decode_request(&read(function, 0, 1)).is_ok());
            assert!(decode_request(&read(function, 0, max)).is_ok());
            assert_eq!(code(&read(function, 0, 0)), "bad_quantity");
            assert_eq!(code(&read(function, 0, max + 1)), "bad_quantity");
            let err = decode_request(&read(function, 0, max + 1)).unwrap_err();
            assert!(err.to_string().contains(&format!("1-{max}")), "{err}");
        }
    }

    #[test]
    fn read_decodes_fields() {
        assert_eq!(
            decode_request(&read(3, 0x1234, 10)).unwrap(),
            Request::ReadHoldingRegisters {
                address: 0x1234,
                quantity: 10
            }
        );
        assert_eq!(
            decode_request(&read(2, 7, 9)).unwrap(),
            Request::ReadDiscreteInputs {
                address: 7,
                quantity: 9
            }
        );
        assert_eq!(
            decode_request(&read(4, 1, 1)).unwrap(),
            Request::ReadInputRegisters {
                address: 1,
                quantity: 1
            }
        );
    }

    #[test]
    fn address_boundaries() {
        // The last address is readable; one past it is not.
        assert!(decode_request(&read(3, 65535, 1)).is_ok());
        assert!(decode_request(&read(3, 65411, 125)).is_ok());
        assert_eq!(code(&read(3, 65535, 2)), "address_overflow");
        assert_eq!(code(&read(1, 64000, 2000)), "address_overflow");
        assert!(decode_request(&read(1, 63536, 2000)).is_ok());
        assert!(decode_request(&read(3, 0, 1)).is_ok());
        // Single writes address one item: every address is valid.
        assert!(decode_request(&[5, 0xFF, 0xFF, 0xFF, 0x00]).is_ok());
        assert!(decode_request(&[6, 0xFF, 0xFF, 0, 1]).is_ok());
        assert_eq!(code(&write_regs(65535, 2, 4, 4)), "address_overflow");
    }

    #[test]
    fn fixed_length_functions_need_exact_length() {
        for function in [1u8, 2, 3, 4, 5, 6] {
            let mut pdu = read(function, 0, 1);
            if function == 5 {
                pdu = vec![5, 0, 0, 0xFF, 0];
            }
            assert!(decode_request(&pdu).is_ok(), "{function}");
            let mut long = pdu.clone();
            long.push(0);
            assert_eq!(code(&long), "bad_pdu_length");
            assert_eq!(code(&pdu[..4]), "bad_pdu_length");
            assert_eq!(code(&pdu[..1]), "bad_pdu_length");
        }
        assert_eq!(code(&[22, 0, 1, 0, 2, 0]), "bad_pdu_length");
        assert_eq!(code(&[22, 0, 1, 0, 2, 0, 3, 4]), "bad_pdu_length");
        assert_eq!(
            decode_request(&[22, 0, 1, 0, 2, 0, 3]).unwrap(),
            Request::MaskWriteRegister {
                address: 1,
                and_mask: 2,
                or_mask: 3
            }
        );
    }

    #[test]
    fn write_single_coil_values() {
        assert_eq!(
            decode_request(&[5, 0, 9, 0xFF, 0x00]).unwrap(),
            Request::WriteSingleCoil {
                address: 9,
                value: true
            }
        );
        assert_eq!(
            decode_request(&[5, 0, 9, 0, 0]).unwrap(),
            Request::WriteSingleCoil {
                address: 9,
                value: false
            }
        );
        for bad in [[0x00, 0x01], [0xFF, 0xFF], [0x00, 0xFF], [0x01, 0x00]] {
            let err = decode_request(&[5, 0, 9, bad[0], bad[1]]).unwrap_err();
            assert_eq!(err.code(), "bad_coil_value");
        }
    }

    #[test]
    fn write_multiple_coils_rules() {
        assert!(decode_request(&write_coils(0, 1, 1, 1)).is_ok());
        assert!(decode_request(&write_coils(0, 8, 1, 1)).is_ok());
        assert!(decode_request(&write_coils(0, 9, 2, 2)).is_ok());
        assert!(decode_request(&write_coils(0, 1968, 246, 246)).is_ok());
        assert_eq!(code(&write_coils(0, 1969, 247, 247)), "bad_quantity");
        assert_eq!(code(&write_coils(0, 0, 0, 0)), "bad_quantity");
        // Byte count must be exactly ceil(qty / 8).
        assert_eq!(code(&write_coils(0, 9, 1, 1)), "bad_byte_count");
        assert_eq!(code(&write_coils(0, 8, 2, 2)), "bad_byte_count");
        // ... and the PDU must hold exactly that many bytes.
        assert_eq!(code(&write_coils(0, 9, 2, 1)), "bad_pdu_length");
        assert_eq!(code(&write_coils(0, 9, 2, 3)), "bad_pdu_length");
        assert_eq!(code(&[15, 0, 0, 0, 1]), "bad_pdu_length");
        let err = decode_request(&write_coils(0, 9, 1, 1)).unwrap_err();
        assert!(err.to_string().contains("must be 2"), "{err}");
    }

    #[test]
    fn write_multiple_registers_rules() {
        assert!(decode_request(&write_regs(0, 1, 2, 2)).is_ok());
        assert!(decode_request(&write_regs(0, 123, 246, 246)).is_ok());
        assert_eq!(code(&write_regs(0, 124, 248, 248)), "bad_quantity");
        assert_eq!(code(&write_regs(0, 0, 0, 0)), "bad_quantity");
        assert_eq!(code(&write_regs(0, 2, 3, 3)), "bad_byte_count");
        assert_eq!(code(&write_regs(0, 2, 4, 3)), "bad_pdu_length");
        assert_eq!(code(&write_regs(0, 2, 4, 5)), "bad_pdu_length");
        let req = decode_request(&[16, 0, 10, 0, 2, 4, 0, 1, 0xAB, 0xCD]).unwrap();
        assert_eq!(req.values_written(), Some(vec![1, 0xABCD]));
        assert_eq!(
            req.needs(),
            Needs::Spans(
                Span {
                    op: ModbusOp::Write,
                    table: ModbusTable::Holding,
                    start: 10,
                    end: 11
                },
                None
            )
        );
    }

    #[test]
    fn read_write_multiple_rules() {
        assert!(decode_request(&rw(0, 1, 0, 1, 2, 2)).is_ok());
        assert!(decode_request(&rw(0, 125, 0, 121, 242, 242)).is_ok());
        assert_eq!(code(&rw(0, 126, 0, 1, 2, 2)), "bad_quantity");
        assert_eq!(code(&rw(0, 0, 0, 1, 2, 2)), "bad_quantity");
        assert_eq!(code(&rw(0, 1, 0, 122, 244, 244)), "bad_quantity");
        assert_eq!(code(&rw(0, 1, 0, 0, 0, 0)), "bad_quantity");
        assert_eq!(code(&rw(0, 1, 0, 2, 2, 2)), "bad_byte_count");
        assert_eq!(code(&rw(0, 1, 0, 2, 4, 2)), "bad_pdu_length");
        assert_eq!(code(&rw(65535, 2, 0, 1, 2, 2)), "address_overflow");
        assert_eq!(code(&rw(0, 1, 65535, 2, 4, 4)), "address_overflow");
        assert_eq!(code(&[23, 0, 0, 0, 1, 0, 0, 0, 1]), "bad_pdu_length");
        let bytes = rw(100, 3, 200, 1, 2, 2);
        let req = decode_request(&bytes).unwrap();
        let Needs::Spans(r, Some(w)) = req.needs() else {
            panic!("FC23 needs two spans: {:?}", req.needs());
        };
        assert_eq!((r.op, r.start, r.end), (ModbusOp::Read, 100, 102));
        assert_eq!((w.op, w.start, w.end), (ModbusOp::Write, 200, 200));
        assert_eq!(req.values_written(), Some(vec![0x0202]));
    }

    #[test]
    fn other_functions_are_programming() {
        for function in [7u8, 8, 11, 12, 17, 20, 21, 24, 43, 0x5A, 0x41, 0x7F, 9] {
            let bytes = [function, 1, 2, 3];
            let req = decode_request(&bytes).unwrap();
            assert_eq!(
                req,
                Request::Other {
                    function,
                    data: &[1, 2, 3]
                }
            );
            assert!(req.is_programming());
            assert_eq!(req.needs(), Needs::Programming);
        }
        assert_eq!(function_name(0x2B), "encapsulated_interface_transport");
        assert_eq!(function_name(0x5A), "umas");
        assert_eq!(function_name(0x09), "unassigned");
        assert!(decode_request(&[8]).unwrap().is_programming());
    }

    #[test]
    fn function_codes_outside_requests_are_malformed() {
        assert_eq!(code(&[]), "empty_pdu");
        assert_eq!(code(&[0]), "bad_function_code");
        assert_eq!(code(&[0x83, 0, 0, 0, 1]), "bad_function_code");
        assert_eq!(code(&[0xFF]), "bad_function_code");
    }

    #[test]
    fn coil_values_unpack_lsb_first() {
        let v: Vec<bool> = coil_values(&[0b0000_0101, 0b1], 9).collect();
        assert_eq!(
            v,
            [true, false, true, false, false, false, false, false, true]
        );
        let req = decode_request(&[15, 0, 20, 0, 10, 2, 0xCD, 0x01]).unwrap();
        assert_eq!(
            req.values_written(),
            Some(vec![1, 0, 1, 1, 0, 0, 1, 1, 1, 0])
        );
    }
}
