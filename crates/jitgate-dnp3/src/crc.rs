//! The DNP3 CRC-16 (IEEE 1815 data link layer): polynomial 0x3D65, processed reflected
//! (0xA6BC), initial value 0, final complement, sent low byte first.
//!
//! The table is computed at compile time so the parser has no start-up step and no state.

#![deny(clippy::indexing_slicing)]

const POLY_REFLECTED: u16 = 0xA6BC;

const fn table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        // Const context: indexing is the only way to fill an array, and `i < 256`.
        #[expect(
            clippy::indexing_slicing,
            reason = "const fn; i < 256 by the loop bound"
        )]
        {
            table[i] = crc;
        }
        i += 1;
    }
    table
}

static TABLE: [u16; 256] = table();

/// The CRC of `data`, as the value whose little-endian bytes follow `data` on the wire.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        let slot = usize::from((crc ^ u16::from(byte)) & 0xFF);
        crc = (crc >> 8) ^ TABLE.get(slot).copied().unwrap_or(0);
    }
    !crc
}

/// True when the two bytes after `data` (`crc`, as sent) are its CRC.
pub fn crc_matches(data: &[u8], crc: [u8; 2]) -> bool {
    crc16(data) == u16::from_le_bytes(crc)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests index fixtures they built")]
mod tests {
    use super::*;

    /// Bit-by-bit reference, straight from the definition.
    fn slow(data: &[u8]) -> u16 {
        let mut crc: u16 = 0;
        for &b in data {
            crc ^= u16::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ POLY_REFLECTED
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn link_header_test_vector() {
        // RESET_LINK_STATES from the master at 1024 to the outstation at 1:
        // 05 64 05 C0 01 00 00 04 is followed on the wire by its CRC E9 21.
        let header = [0x05, 0x64, 0x05, 0xC0, 0x01, 0x00, 0x00, 0x04];
        assert_eq!(crc16(&header).to_le_bytes(), [0xE9, 0x21]);
        assert!(crc_matches(&header, [0xE9, 0x21]));
        assert!(!crc_matches(&header, [0x21, 0xE9]));
    }

    #[test]
    fn catalogue_check_value() {
        // CRC-16/DNP check value for the ASCII string "123456789".
        assert_eq!(crc16(b"123456789"), 0xEA82);
        assert_eq!(crc16(&[]), 0xFFFF);
    }

    #[test]
    fn table_agrees_with_the_bitwise_definition() {
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for n in 0..data.len() {
            assert_eq!(crc16(&data[..n]), slow(&data[..n]), "{n} bytes");
        }
    }
}
