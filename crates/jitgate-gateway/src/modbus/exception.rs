//! Modbus exception codes and exception responses.
//!
//! The gateway answers a refused request itself, in the device's place, with a normal
//! Modbus exception response, so unmodified clients report it the way they report any
//! device refusal ("illegal function", "illegal data address") instead of timing out.

use super::frame::MBAP_HEADER_LEN;
use serde::{Deserialize, Serialize};

/// Exception codes of the Modbus application protocol (section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Exception {
    IllegalFunction = 0x01,
    IllegalDataAddress = 0x02,
    IllegalDataValue = 0x03,
    ServerDeviceFailure = 0x04,
    Acknowledge = 0x05,
    ServerDeviceBusy = 0x06,
    MemoryParityError = 0x08,
    GatewayPathUnavailable = 0x0A,
    GatewayTargetDeviceFailedToRespond = 0x0B,
}

impl Exception {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x01 => Exception::IllegalFunction,
            0x02 => Exception::IllegalDataAddress,
            0x03 => Exception::IllegalDataValue,
            0x04 => Exception::ServerDeviceFailure,
            0x05 => Exception::Acknowledge,
            0x06 => Exception::ServerDeviceBusy,
            0x08 => Exception::MemoryParityError,
            0x0A => Exception::GatewayPathUnavailable,
            0x0B => Exception::GatewayTargetDeviceFailedToRespond,
            _ => return None,
        })
    }

    /// The specification's name, as clients print it.
    pub fn name(self) -> &'static str {
        match self {
            Exception::IllegalFunction => "ILLEGAL_FUNCTION",
            Exception::IllegalDataAddress => "ILLEGAL_DATA_ADDRESS",
            Exception::IllegalDataValue => "ILLEGAL_DATA_VALUE",
            Exception::ServerDeviceFailure => "SERVER_DEVICE_FAILURE",
            Exception::Acknowledge => "ACKNOWLEDGE",
            Exception::ServerDeviceBusy => "SERVER_DEVICE_BUSY",
            Exception::MemoryParityError => "MEMORY_PARITY_ERROR",
            Exception::GatewayPathUnavailable => "GATEWAY_PATH_UNAVAILABLE",
            Exception::GatewayTargetDeviceFailedToRespond => {
                "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND"
            }
        }
    }
}

/// Length of an exception ADU: MBAP header + function code + exception code.
pub const EXCEPTION_ADU_LEN: usize = MBAP_HEADER_LEN + 2;

/// The exception response to a request: same transaction and unit id, the request's
/// function code with the high bit set, then the exception code.
pub fn exception_adu(
    transaction_id: u16,
    unit_id: u8,
    function: u8,
    exception: Exception,
) -> [u8; EXCEPTION_ADU_LEN] {
    let [t0, t1] = transaction_id.to_be_bytes();
    // Length field 3: unit id, function code, exception code.
    [
        t0,
        t1,
        0,
        0,
        0,
        3,
        unit_id,
        function | 0x80,
        exception.code(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::frame::parse_adu;

    #[test]
    fn exception_adu_echoes_the_request() {
        let bytes = exception_adu(0xBEEF, 7, 0x10, Exception::IllegalDataAddress);
        assert_eq!(bytes, [0xBE, 0xEF, 0, 0, 0, 3, 7, 0x90, 0x02]);
        let (adu, used) = parse_adu(&bytes).unwrap().unwrap();
        assert_eq!(used, EXCEPTION_ADU_LEN);
        assert_eq!((adu.transaction_id, adu.unit_id), (0xBEEF, 7));
        assert_eq!(adu.pdu, &[0x90, 0x02]);
    }

    #[test]
    fn codes_round_trip() {
        for code in 0..=255u8 {
            if let Some(e) = Exception::from_code(code) {
                assert_eq!(e.code(), code);
                assert!(!e.name().is_empty());
            }
        }
        assert_eq!(Exception::GatewayTargetDeviceFailedToRespond.code(), 0x0B);
        assert_eq!(Exception::from_code(7), None);
    }
}
