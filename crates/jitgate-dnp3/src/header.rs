//! Application layer headers: the control byte, the function code and, in responses, the
//! two internal indication (IIN) bytes.

#![deny(clippy::indexing_slicing)]

use crate::function::FunctionCode;
use crate::Error;

/// IIN1 bits (first IIN byte).
pub mod iin1 {
    pub const BROADCAST: u8 = 0x01;
    pub const CLASS_1_EVENTS: u8 = 0x02;
    pub const CLASS_2_EVENTS: u8 = 0x04;
    pub const CLASS_3_EVENTS: u8 = 0x08;
    pub const NEED_TIME: u8 = 0x10;
    pub const LOCAL_CONTROL: u8 = 0x20;
    pub const DEVICE_TROUBLE: u8 = 0x40;
    pub const DEVICE_RESTART: u8 = 0x80;
}

/// IIN2 bits (second IIN byte); the first three are what a refusal answers with.
pub mod iin2 {
    /// IIN2.0: the function code is not supported.
    pub const NO_FUNC_CODE_SUPPORT: u8 = 0x01;
    /// IIN2.1: an object in the request is unknown (or not supported for this function).
    pub const OBJECT_UNKNOWN: u8 = 0x02;
    /// IIN2.2: a parameter (qualifier, range, index) is invalid or out of range.
    pub const PARAMETER_ERROR: u8 = 0x04;
    pub const EVENT_BUFFER_OVERFLOW: u8 = 0x08;
    pub const ALREADY_EXECUTING: u8 = 0x10;
    pub const CONFIG_CORRUPT: u8 = 0x20;
}

/// The application control byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppControl {
    pub fir: bool,
    pub fin: bool,
    /// The sender asks for an application confirm.
    pub con: bool,
    /// Unsolicited response, or the confirm of one.
    pub uns: bool,
    /// 0-15.
    pub seq: u8,
}

impl AppControl {
    pub fn from_byte(b: u8) -> AppControl {
        AppControl {
            fir: b & 0x80 != 0,
            fin: b & 0x40 != 0,
            con: b & 0x20 != 0,
            uns: b & 0x10 != 0,
            seq: b & 0x0F,
        }
    }

    pub fn to_byte(self) -> u8 {
        u8::from(self.fir) << 7
            | u8::from(self.fin) << 6
            | u8::from(self.con) << 5
            | u8::from(self.uns) << 4
            | (self.seq & 0x0F)
    }

    /// A single-fragment message with sequence `seq`, no confirm asked.
    pub fn single(seq: u8) -> AppControl {
        AppControl {
            fir: true,
            fin: true,
            con: false,
            uns: false,
            seq: seq & 0x0F,
        }
    }
}

/// The two IIN bytes of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Iin {
    pub iin1: u8,
    pub iin2: u8,
}

/// The application control byte of a fragment, if it has one: what a refusal needs even
/// when the rest of the request could not be parsed.
pub fn control_of(fragment: &[u8]) -> Option<AppControl> {
    fragment.first().copied().map(AppControl::from_byte)
}

/// The header of a request fragment and the bytes after it (the object headers).
///
/// A request is one fragment (FIR and FIN set) and never asks for a confirm; UNS is set
/// only on the confirm of an unsolicited response. Anything else is malformed.
pub fn parse_request_header(fragment: &[u8]) -> Result<(AppControl, u8, &[u8]), Error> {
    let Some((&[control, function], rest)) = fragment.split_first_chunk::<2>() else {
        return Err(Error::Truncated {
            what: "the request header",
        });
    };
    let ac = AppControl::from_byte(control);
    if !ac.fir || !ac.fin || ac.con {
        return Err(Error::BadAppControl {
            control,
            what: "a request (FIR and FIN must be set, CON clear)",
        });
    }
    if ac.uns && function != FunctionCode::Confirm.code() {
        return Err(Error::BadAppControl {
            control,
            what: "a request other than a confirm (UNS set)",
        });
    }
    Ok((ac, function, rest))
}

/// The header of a response fragment and the bytes after it.
pub fn parse_response_header(
    fragment: &[u8],
) -> Result<(AppControl, FunctionCode, Iin, &[u8]), Error> {
    let Some((&[control, function, iin1, iin2], rest)) = fragment.split_first_chunk::<4>() else {
        return Err(Error::Truncated {
            what: "the response header",
        });
    };
    let f = FunctionCode::from_u8(function)
        .filter(|f| f.is_response())
        .ok_or(Error::NotAResponse { function })?;
    let ac = AppControl::from_byte(control);
    if ac.uns != (f == FunctionCode::UnsolicitedResponse) {
        return Err(Error::BadAppControl {
            control,
            what: "this response (UNS must be set exactly on unsolicited responses)",
        });
    }
    Ok((ac, f, Iin { iin1, iin2 }, rest))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests index fixtures they built")]
mod tests {
    use super::*;

    #[test]
    fn control_bits() {
        let c = AppControl::from_byte(0xC3);
        assert!(c.fir && c.fin && !c.con && !c.uns);
        assert_eq!(c.seq, 3);
        for b in 0..=255u8 {
            assert_eq!(AppControl::from_byte(b).to_byte(), b);
        }
        assert_eq!(AppControl::single(17).to_byte(), 0xC1);
    }

    #[test]
    fn request_header_rules() {
        let (ac, f, rest) = parse_request_header(&[0xC5, 0x01, 0x3C, 0x01, 0x06]).unwrap();
        assert_eq!((ac.seq, f, rest), (5, 1, &[0x3C, 0x01, 0x06][..]));
        assert_eq!(
            parse_request_header(&[0xC0]).unwrap_err().code(),
            "truncated"
        );
        // Multi-fragment requests, requests asking for a confirm, unsolicited reads.
        for bad in [0x80u8, 0x40, 0xE0, 0xD0] {
            let err = parse_request_header(&[bad, 0x01]).unwrap_err();
            assert_eq!(err.code(), "bad_app_control", "{bad:#x}");
        }
        // The confirm of an unsolicited response has UNS set.
        assert!(parse_request_header(&[0xD2, 0x00]).is_ok());
    }

    #[test]
    fn response_header_rules() {
        let (ac, f, iin, rest) = parse_response_header(&[0xC2, 0x81, 0x80, 0x02]).unwrap();
        assert_eq!(ac.seq, 2);
        assert_eq!(f, FunctionCode::Response);
        assert_eq!(
            (iin.iin1, iin.iin2),
            (iin1::DEVICE_RESTART, iin2::OBJECT_UNKNOWN)
        );
        assert!(rest.is_empty());
        assert!(parse_response_header(&[0xF0, 0x82, 0, 0]).is_ok());
        assert_eq!(
            parse_response_header(&[0xC0, 0x82, 0, 0])
                .unwrap_err()
                .code(),
            "bad_app_control"
        );
        assert_eq!(
            parse_response_header(&[0xC0, 0x01, 0, 0])
                .unwrap_err()
                .code(),
            "not_a_response"
        );
        assert_eq!(
            parse_response_header(&[0xC0, 0x81, 0]).unwrap_err().code(),
            "truncated"
        );
    }
}
