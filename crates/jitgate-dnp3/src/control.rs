//! Control objects a master sends to change outputs: the control relay output block (CROB,
//! group 12 variation 1) and the analog output blocks (group 41 variations 1-4). Decoded so
//! that the operation log can say exactly what was commanded.

#![deny(clippy::indexing_slicing)]

/// A control relay output block: 11 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Crob {
    /// Bits 0-3 operation type, bit 4 queue (obsolete), bit 5 clear, bits 6-7 trip/close.
    pub code: u8,
    /// How many times to execute the operation.
    pub count: u8,
    pub on_ms: u32,
    pub off_ms: u32,
    /// 0 in a request; the outstation's status code in the echo.
    pub status: u8,
}

impl Crob {
    pub fn decode(b: &[u8; 11]) -> Crob {
        let [code, count, a, b2, c, d, e, f, g, h, status] = *b;
        Crob {
            code,
            count,
            on_ms: u32::from_le_bytes([a, b2, c, d]),
            off_ms: u32::from_le_bytes([e, f, g, h]),
            status,
        }
    }

    /// "LATCH_ON", "PULSE_ON/CLOSE", "TRIP" ... for the operation log.
    pub fn describe(&self) -> String {
        let op = match self.code & 0x0F {
            0 => "NUL",
            1 => "PULSE_ON",
            2 => "PULSE_OFF",
            3 => "LATCH_ON",
            4 => "LATCH_OFF",
            _ => "UNDEFINED_OP",
        };
        let tcc = match self.code >> 6 {
            1 => "/CLOSE",
            2 => "/TRIP",
            3 => "/RESERVED_TCC",
            _ => "",
        };
        let clear = if self.code & 0x20 != 0 { "+CLEAR" } else { "" };
        format!("{op}{tcc}{clear}")
    }
}

/// The value of an analog output block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnalogValue {
    I32(i32),
    I16(i16),
    F32(f32),
    F64(f64),
}

impl std::fmt::Display for AnalogValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnalogValue::I32(v) => write!(f, "{v}"),
            AnalogValue::I16(v) => write!(f, "{v}"),
            AnalogValue::F32(v) => write!(f, "{v}"),
            AnalogValue::F64(v) => write!(f, "{v}"),
        }
    }
}

/// Decode a group 41 object of `variation` (1-4) from exactly its bytes: value, then status.
pub fn decode_analog(variation: u8, b: &[u8]) -> Option<(AnalogValue, u8)> {
    let (value, status) = match variation {
        1 => {
            let (v, rest) = b.split_first_chunk::<4>()?;
            (AnalogValue::I32(i32::from_le_bytes(*v)), rest)
        }
        2 => {
            let (v, rest) = b.split_first_chunk::<2>()?;
            (AnalogValue::I16(i16::from_le_bytes(*v)), rest)
        }
        3 => {
            let (v, rest) = b.split_first_chunk::<4>()?;
            (AnalogValue::F32(f32::from_le_bytes(*v)), rest)
        }
        4 => {
            let (v, rest) = b.split_first_chunk::<8>()?;
            (AnalogValue::F64(f64::from_le_bytes(*v)), rest)
        }
        _ => return None,
    };
    match status {
        [s] => Some((value, *s)),
        _ => None,
    }
}

/// One command in a SELECT, OPERATE or DIRECT_OPERATE request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    Crob {
        /// `None` when the qualifier gives no index (a bare count).
        index: Option<u32>,
        crob: Crob,
    },
    Analog {
        index: Option<u32>,
        value: AnalogValue,
        status: u8,
    },
}

impl Command {
    pub fn index(&self) -> Option<u32> {
        match self {
            Command::Crob { index, .. } | Command::Analog { index, .. } => *index,
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests index fixtures they built")]
mod tests {
    use super::*;

    #[test]
    fn crob_fields() {
        let c = Crob::decode(&[0x41, 1, 0xE8, 0x03, 0, 0, 0xD0, 0x07, 0, 0, 0]);
        assert_eq!(
            (c.code, c.count, c.on_ms, c.off_ms, c.status),
            (0x41, 1, 1000, 2000, 0)
        );
        assert_eq!(c.describe(), "PULSE_ON/CLOSE");
        assert_eq!(
            Crob::decode(&[0x03, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]).describe(),
            "LATCH_ON"
        );
        assert_eq!(
            Crob::decode(&[0xA1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]).describe(),
            "PULSE_ON/TRIP+CLEAR"
        );
    }

    #[test]
    fn analog_blocks() {
        assert_eq!(
            decode_analog(1, &[0xFF, 0xFF, 0xFF, 0xFF, 0]),
            Some((AnalogValue::I32(-1), 0))
        );
        assert_eq!(
            decode_analog(2, &[0x10, 0x00, 3]),
            Some((AnalogValue::I16(16), 3))
        );
        assert_eq!(
            decode_analog(3, &[0, 0, 0xC0, 0x3F, 0]),
            Some((AnalogValue::F32(1.5), 0))
        );
        let mut d = 2.25f64.to_le_bytes().to_vec();
        d.push(0);
        assert_eq!(decode_analog(4, &d), Some((AnalogValue::F64(2.25), 0)));
        assert_eq!(decode_analog(1, &[0, 0, 0, 0]), None);
        assert_eq!(decode_analog(5, &[0; 5]), None);
        assert_eq!(AnalogValue::F32(1.5).to_string(), "1.5");
    }
}
