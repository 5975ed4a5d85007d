//! MBAP framing: splitting a Modbus/TCP byte stream into ADUs, and encoding ADUs.
//!
//! The MBAP header is 7 bytes: transaction id (2), protocol id (2, always 0), length (2, the
//! number of bytes that follow it: unit id + PDU) and unit id (1). The PDU is 1-253 bytes, so
//! an ADU is at most 260 bytes and the length field is 2-254.
//!
//! [`parse_adu`] is written for a streaming reader and never skips bytes: a header that cannot
//! be valid is an error as soon as the bytes that prove it have arrived, and the caller closes
//! the connection. Resynchronising by dropping bytes would let a client smuggle a frame past
//! the inspector by making the gateway and the device disagree on where frames start.

use thiserror::Error;

/// Bytes of the MBAP header, unit id included.
pub const MBAP_HEADER_LEN: usize = 7;
/// Longest PDU (function code + data) Modbus allows.
pub const MAX_PDU_LEN: usize = 253;
/// Longest ADU: header + PDU.
pub const MAX_ADU_LEN: usize = MBAP_HEADER_LEN + MAX_PDU_LEN;

/// Smallest and largest value of the MBAP length field (unit id + 1..=253 PDU bytes).
const MIN_LENGTH_FIELD: u16 = 2;
const MAX_LENGTH_FIELD: u16 = 1 + MAX_PDU_LEN as u16;

/// One Modbus/TCP application data unit, borrowing its PDU from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adu<'a> {
    pub transaction_id: u16,
    pub unit_id: u8,
    /// Function code followed by its data; 1..=253 bytes when parsed by [`parse_adu`].
    pub pdu: &'a [u8],
}

impl Adu<'_> {
    /// The function code, or `None` for an empty PDU (which [`parse_adu`] never returns).
    pub fn function(&self) -> Option<u8> {
        self.pdu.first().copied()
    }

    /// Append this ADU's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        encode_adu(self.transaction_id, self.unit_id, self.pdu, out)
    }

    /// This ADU's bytes.
    pub fn to_vec(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(MBAP_HEADER_LEN + self.pdu.len());
        self.encode(&mut out)?;
        Ok(out)
    }
}

/// Why a byte stream is not Modbus/TCP. Any of these closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("MBAP protocol id is {found:#06x}; Modbus/TCP requires 0x0000 (is this Modbus/TCP?)")]
    BadProtocolId { found: u16 },
    #[error(
        "MBAP length field is {found}; it must be 2-254 (unit id + a PDU of at least one byte)"
    )]
    BadLength { found: u16 },
    #[error("MBAP length field is {found}, a PDU of {} bytes; Modbus allows at most {MAX_PDU_LEN}", usize::from(*found).saturating_sub(1))]
    PduTooLong { found: u16 },
    #[error("cannot encode an empty PDU; a PDU holds at least the function code")]
    EmptyPdu,
}

impl FrameError {
    /// Stable code for logs and evidence events.
    pub fn code(&self) -> &'static str {
        match self {
            FrameError::BadProtocolId { .. } => "bad_protocol_id",
            FrameError::BadLength { .. } => "bad_length",
            FrameError::PduTooLong { .. } => "pdu_too_long",
            FrameError::EmptyPdu => "empty_pdu",
        }
    }
}

/// Take the next ADU from the front of `buf`.
///
/// - `Ok(None)`: `buf` holds a valid prefix of an ADU; read more bytes and call again.
/// - `Ok(Some((adu, consumed)))`: the first `consumed` bytes of `buf` are `adu`.
/// - `Err(_)`: the stream is not valid Modbus/TCP; close the connection.
///
/// The header is checked as soon as its bytes are present, so a bad protocol id is reported
/// after 4 bytes without waiting for a frame that may never complete.
pub fn parse_adu(buf: &[u8]) -> Result<Option<(Adu<'_>, usize)>, FrameError> {
    if let Some(&[hi, lo]) = buf.get(2..4) {
        let protocol_id = u16::from_be_bytes([hi, lo]);
        if protocol_id != 0 {
            return Err(FrameError::BadProtocolId { found: protocol_id });
        }
    }
    let Some(&[hi, lo]) = buf.get(4..6) else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([hi, lo]);
    if length < MIN_LENGTH_FIELD {
        return Err(FrameError::BadLength { found: length });
    }
    if length > MAX_LENGTH_FIELD {
        return Err(FrameError::PduTooLong { found: length });
    }
    let total = 6 + usize::from(length);
    let Some(frame) = buf.get(..total) else {
        return Ok(None);
    };
    let (Some(&[t_hi, t_lo]), Some(&unit_id), Some(pdu)) =
        (frame.get(0..2), frame.get(6), frame.get(MBAP_HEADER_LEN..))
    else {
        // Unreachable: `total` is at least 8 and `frame` holds `total` bytes.
        return Ok(None);
    };
    Ok(Some((
        Adu {
            transaction_id: u16::from_be_bytes([t_hi, t_lo]),
            unit_id,
            pdu,
        },
        total,
    )))
}

/// Append the ADU for `pdu` to `out`.
pub fn encode_adu(
    transaction_id: u16,
    unit_id: u8,
    pdu: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    if pdu.is_empty() {
        return Err(FrameError::EmptyPdu);
    }
    if pdu.len() > MAX_PDU_LEN {
        return Err(FrameError::PduTooLong {
            found: u16::try_from(pdu.len() + 1).unwrap_or(u16::MAX),
        });
    }
    // Fits: pdu.len() <= 253.
    let length = (pdu.len() + 1) as u16;
    out.reserve(MBAP_HEADER_LEN + pdu.len());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&length.to_be_bytes());
    out.push(unit_id);
    out.extend_from_slice(pdu);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adu_bytes(tid: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_adu(tid, unit, pdu, &mut v).unwrap();
        v
    }

    #[test]
    fn parses_a_read_holding_request() {
        let bytes = [0x12, 0x34, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10];
        let (adu, used) = parse_adu(&bytes).unwrap().unwrap();
        assert_eq!(used, 12);
        assert_eq!(adu.transaction_id, 0x1234);
        assert_eq!(adu.unit_id, 1);
        assert_eq!(adu.pdu, &[3, 0, 0, 0, 10]);
        assert_eq!(adu.function(), Some(3));
        assert_eq!(adu.to_vec().unwrap(), bytes);
    }

    #[test]
    fn every_prefix_of_a_valid_frame_asks_for_more() {
        let bytes = adu_bytes(7, 1, &[3, 0, 0, 0, 1]);
        for n in 0..bytes.len() {
            assert_eq!(parse_adu(&bytes[..n]).unwrap(), None, "prefix of {n} bytes");
        }
        assert!(parse_adu(&bytes).unwrap().is_some());
    }

    #[test]
    fn consumes_only_its_own_frame() {
        let mut bytes = adu_bytes(1, 1, &[3, 0, 0, 0, 1]);
        let second = adu_bytes(2, 1, &[1, 0, 0, 0, 8]);
        bytes.extend_from_slice(&second);
        let (first, used) = parse_adu(&bytes).unwrap().unwrap();
        assert_eq!(first.transaction_id, 1);
        let (next, used2) = parse_adu(&bytes[used..]).unwrap().unwrap();
        assert_eq!(next.transaction_id, 2);
        assert_eq!(used + used2, bytes.len());
    }

    #[test]
    fn bad_protocol_id_is_reported_after_four_bytes() {
        let err = parse_adu(&[0, 1, 0, 1]).unwrap_err();
        assert_eq!(err, FrameError::BadProtocolId { found: 1 });
        assert_eq!(err.code(), "bad_protocol_id");
        assert!(err.to_string().contains("0x0001"), "{err}");
        assert_eq!(parse_adu(&[0, 1, 0]).unwrap(), None);
    }

    #[test]
    fn length_field_limits() {
        for bad in [0u16, 1] {
            let [h, l] = bad.to_be_bytes();
            let err = parse_adu(&[0, 1, 0, 0, h, l]).unwrap_err();
            assert_eq!(err.code(), "bad_length");
        }
        for bad in [255u16, 256, 0xFFFF] {
            let [h, l] = bad.to_be_bytes();
            let err = parse_adu(&[0, 1, 0, 0, h, l]).unwrap_err();
            assert_eq!(err.code(), "pdu_too_long", "{bad}");
        }
        // 2 (one-byte PDU) and 254 (253-byte PDU) are the extremes that are allowed.
        let smallest = adu_bytes(1, 1, &[0x07]);
        assert_eq!(parse_adu(&smallest).unwrap().unwrap().1, 8);
        let largest = adu_bytes(1, 1, &[0x41; MAX_PDU_LEN]);
        let (adu, used) = parse_adu(&largest).unwrap().unwrap();
        assert_eq!((adu.pdu.len(), used), (MAX_PDU_LEN, MAX_ADU_LEN));
    }

    #[test]
    fn encoder_refuses_what_the_parser_would() {
        let mut out = Vec::new();
        assert_eq!(
            encode_adu(1, 1, &[], &mut out).unwrap_err().code(),
            "empty_pdu"
        );
        assert_eq!(
            encode_adu(1, 1, &[0; MAX_PDU_LEN + 1], &mut out)
                .unwrap_err()
                .code(),
            "pdu_too_long"
        );
        assert!(out.is_empty());
    }
}
