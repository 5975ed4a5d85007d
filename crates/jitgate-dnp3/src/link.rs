//! Data link layer (IEEE 1815 clause 9, the FT3 frame): framing a byte stream, checking the
//! CRCs, and encoding frames.
//!
//! A frame is a 10-byte header — start bytes 05 64, length, control, destination and source
//! (little endian), header CRC — then the user data in blocks of 16 bytes, each followed by
//! its own CRC (the last block may be shorter). The length field counts control, addresses
//! and user data, so it is 5-255 and a frame is at most 10 + 250 + 16 × 2 = 292 bytes.
//!
//! Like the Modbus framer, nothing here skips bytes to find the next start: a stream that is
//! not DNP3 is an error as soon as the bytes proving it have arrived, so the gateway and the
//! outstation can never disagree on where a frame starts.

#![deny(clippy::indexing_slicing)]

use crate::crc::{crc16, crc_matches};
use crate::Error;

pub const START: [u8; 2] = [0x05, 0x64];
/// Start, length, control, destination, source, header CRC.
pub const HEADER_LEN: usize = 10;
/// User data bytes between two block CRCs.
pub const BLOCK_LEN: usize = 16;
/// The length field counts 5 header bytes (control, addresses) plus the user data.
pub const MIN_LENGTH: u8 = 5;
pub const MAX_USER_DATA: usize = 255 - MIN_LENGTH as usize;
/// The longest frame: full header, 250 bytes of user data and 16 block CRCs.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_USER_DATA + 2 * MAX_USER_DATA.div_ceil(BLOCK_LEN);

/// Link function codes (the low nibble of the control byte).
pub mod function {
    /// Sent by the primary station (PRM set).
    pub const RESET_LINK_STATES: u8 = 0x0;
    pub const TEST_LINK_STATES: u8 = 0x2;
    pub const CONFIRMED_USER_DATA: u8 = 0x3;
    pub const UNCONFIRMED_USER_DATA: u8 = 0x4;
    pub const REQUEST_LINK_STATUS: u8 = 0x9;
    /// Sent by the secondary station (PRM clear).
    pub const ACK: u8 = 0x0;
    pub const NACK: u8 = 0x1;
    pub const LINK_STATUS: u8 = 0xB;
    pub const NOT_SUPPORTED: u8 = 0xF;
}

/// The control byte: direction, primary/secondary, frame count bits, function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Control {
    /// Set on frames from the master.
    pub dir: bool,
    /// Set on frames from the primary (initiating) station.
    pub prm: bool,
    /// Frame count bit (primary frames); reserved on secondary frames.
    pub fcb: bool,
    /// Frame count valid (primary frames) or data flow control, DFC (secondary frames).
    pub fcv: bool,
    /// 0-15.
    pub function: u8,
}

impl Control {
    pub fn from_byte(b: u8) -> Control {
        Control {
            dir: b & 0x80 != 0,
            prm: b & 0x40 != 0,
            fcb: b & 0x20 != 0,
            fcv: b & 0x10 != 0,
            function: b & 0x0F,
        }
    }

    pub fn to_byte(self) -> u8 {
        u8::from(self.dir) << 7
            | u8::from(self.prm) << 6
            | u8::from(self.fcb) << 5
            | u8::from(self.fcv) << 4
            | (self.function & 0x0F)
    }
}

/// What a frame's header says, CRC checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkHeader {
    pub control: Control,
    pub destination: u16,
    pub source: u16,
}

impl LinkHeader {
    /// True for the two primary functions whose user data is a transport segment.
    pub fn carries_user_data(&self) -> bool {
        self.control.prm
            && matches!(
                self.control.function,
                function::CONFIRMED_USER_DATA | function::UNCONFIRMED_USER_DATA
            )
    }

    /// The header of a frame going the other way between the same two stations.
    pub fn reply(&self, control: Control) -> LinkHeader {
        LinkHeader {
            control,
            destination: self.source,
            source: self.destination,
        }
    }
}

/// One frame with its user data copied out of the blocks (CRCs stripped). Inline storage:
/// parsing a frame never allocates.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: LinkHeader,
    data: [u8; MAX_USER_DATA],
    len: usize,
}

impl Frame {
    pub fn user_data(&self) -> &[u8] {
        self.data.get(..self.len).unwrap_or(&[])
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("header", &self.header)
            .field("user_data", &self.user_data())
            .finish()
    }
}

/// Bytes on the wire of a frame whose length field is `length` (at least [`MIN_LENGTH`]).
pub fn wire_len(length: u8) -> usize {
    let data = usize::from(length.saturating_sub(MIN_LENGTH));
    HEADER_LEN + data + 2 * data.div_ceil(BLOCK_LEN)
}

/// Where the first frame in `buf` ends.
///
/// - `Ok(None)`: `buf` is a valid prefix of a header; read more.
/// - `Ok(Some(n))`: the header is complete and valid and the frame is `n` bytes (10-292);
///   `n` may be more than `buf.len()`, in which case read until it is not.
/// - `Err(_)`: not DNP3 (bad start bytes, length below 5, bad header CRC); close.
///
/// Each check runs as soon as its bytes are there, so a stream of garbage is refused at its
/// first byte rather than after a frame's worth.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, Error> {
    for (offset, expected) in START.iter().enumerate() {
        match buf.get(offset) {
            None => return Ok(None),
            Some(&found) if found != *expected => return Err(Error::BadStart { offset, found }),
            Some(_) => {}
        }
    }
    let Some(&length) = buf.get(2) else {
        return Ok(None);
    };
    if length < MIN_LENGTH {
        return Err(Error::BadLength { found: length });
    }
    let (Some(header), Some(&[lo, hi])) = (buf.get(..HEADER_LEN - 2), buf.get(8..HEADER_LEN))
    else {
        return Ok(None);
    };
    if !crc_matches(header, [lo, hi]) {
        return Err(Error::BadHeaderCrc {
            expected: crc16(header),
            found: u16::from_le_bytes([lo, hi]),
        });
    }
    Ok(Some(wire_len(length)))
}

/// Take the first frame from `buf`, checking every CRC.
///
/// `Ok(None)` while the frame is incomplete; `Ok(Some((frame, consumed)))` once it is all
/// there; `Err(_)` for anything [`frame_len`] refuses and for a bad block CRC.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, Error> {
    let Some(total) = frame_len(buf)? else {
        return Ok(None);
    };
    let Some(bytes) = buf.get(..total) else {
        return Ok(None);
    };
    let (Some(&[_, _, _, control, d0, d1, s0, s1]), Some(blocks)) =
        (bytes.get(..8), bytes.get(HEADER_LEN..))
    else {
        return Ok(None);
    };
    let mut frame = Frame {
        header: LinkHeader {
            control: Control::from_byte(control),
            destination: u16::from_le_bytes([d0, d1]),
            source: u16::from_le_bytes([s0, s1]),
        },
        data: [0; MAX_USER_DATA],
        len: 0,
    };
    for (block, chunk) in blocks.chunks(BLOCK_LEN + 2).enumerate() {
        // Every chunk holds at least one data byte and its CRC: `wire_len` counts exactly
        // that, so a shorter chunk cannot occur; refuse it rather than trust that.
        let Some((data, crc)) = chunk.split_last_chunk::<2>() else {
            return Err(Error::Truncated {
                what: "a block CRC",
            });
        };
        if data.is_empty() {
            return Err(Error::Truncated { what: "a block" });
        }
        if !crc_matches(data, *crc) {
            return Err(Error::BadBlockCrc {
                block,
                expected: crc16(data),
                found: u16::from_le_bytes(*crc),
            });
        }
        let end = frame.len + data.len();
        let Some(slot) = frame.data.get_mut(frame.len..end) else {
            return Err(Error::UserDataTooLong { len: end });
        };
        slot.copy_from_slice(data);
        frame.len = end;
    }
    Ok(Some((frame, total)))
}

/// Append the frame for `header` and `user_data` (at most 250 bytes) to `out`, CRCs
/// included.
pub fn encode_frame(header: &LinkHeader, user_data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let length = u8::try_from(user_data.len() + usize::from(MIN_LENGTH)).map_err(|_| {
        Error::UserDataTooLong {
            len: user_data.len(),
        }
    })?;
    let mut head = [0u8; HEADER_LEN - 2];
    let [d0, d1] = header.destination.to_le_bytes();
    let [s0, s1] = header.source.to_le_bytes();
    let [a, b] = START;
    head.copy_from_slice(&[a, b, length, header.control.to_byte(), d0, d1, s0, s1]);
    out.reserve(wire_len(length));
    out.extend_from_slice(&head);
    out.extend_from_slice(&crc16(&head).to_le_bytes());
    for block in user_data.chunks(BLOCK_LEN) {
        out.extend_from_slice(block);
        out.extend_from_slice(&crc16(block).to_le_bytes());
    }
    Ok(())
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
