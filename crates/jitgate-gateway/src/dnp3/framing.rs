//! Where a DNP3 request ends in the master's byte stream, where a frame ends in the
//! outstation's, and the link frames the gateway writes itself.
//!
//! A request is one application fragment, which may span several link frames; the
//! gateway holds all of them until the last (transport FIN) has arrived and the fragment
//! is decided, so the outstation never sees a segment of a request nobody allowed. Only
//! the headers are read here (the CRCs of the blocks are checked when the fragment is
//! decided, before anything is forwarded); the length is bounded by the segments a
//! fragment may have and the bytes it may hold.

use crate::protocol::Fault;
use jitgate_dnp3::link::{
    encode_frame, frame_len, function, Control, LinkHeader, HEADER_LEN, MIN_LENGTH,
};
use jitgate_dnp3::transport::{TransportHeader, DEFAULT_MAX_FRAGMENT};

/// Most segments of one request fragment: the transport sequence has 6 bits, so a longer
/// fragment would repeat sequence numbers within itself.
pub const MAX_SEGMENTS: usize = 64;

pub fn fault(e: &jitgate_dnp3::Error) -> Fault {
    Fault::new(e.code(), e)
}

/// What the 10-byte header of the frame at the start of `frame` says (CRC already
/// checked by `frame_len`): the control byte and the user data length.
fn head(frame: &[u8]) -> (Control, usize) {
    let length = frame.get(2).copied().unwrap_or(MIN_LENGTH);
    let control = Control::from_byte(frame.get(3).copied().unwrap_or(0));
    (control, usize::from(length.saturating_sub(MIN_LENGTH)))
}

fn carries_user_data(control: Control) -> bool {
    control.prm
        && matches!(
            control.function,
            function::CONFIRMED_USER_DATA | function::UNCONFIRMED_USER_DATA
        )
}

/// The length of the first request at the start of `buf`: one link frame without a
/// transport segment, or every frame of one fragment up to its final segment. `None`
/// while incomplete. A frame that does not start where it should, a fragment with more
/// than [`MAX_SEGMENTS`] segments or [`DEFAULT_MAX_FRAGMENT`] bytes, a link frame between
/// two segments, or a link-confirmed segment that is not the last are faults.
///
/// A fragment whose segments are out of order is still delimited (at the first segment
/// that cannot continue it): the decision then closes the session with the transport
/// error, which says more than a framing fault would.
pub fn request_len(buf: &[u8]) -> Result<Option<usize>, Fault> {
    let mut pos = 0;
    let mut segments = 0;
    let mut payload = 0;
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let n = match frame_len(rest) {
            Ok(Some(n)) => n,
            Ok(None) => return Ok(None),
            Err(e) => return Err(fault(&e)),
        };
        if rest.len() < n {
            return Ok(None);
        }
        let (control, data_len) = head(rest);
        let end = pos + n;
        if !carries_user_data(control) || data_len == 0 {
            if pos == 0 {
                return Ok(Some(end));
            }
            return Err(Fault::new(
                "link_frame_in_fragment",
                "a link frame without a transport segment came between the segments of a request",
            ));
        }
        let transport = TransportHeader::from_byte(rest.get(HEADER_LEN).copied().unwrap_or(0));
        let out_of_order = (pos == 0) != transport.fir;
        if transport.fin || out_of_order {
            return Ok(Some(end));
        }
        if control.function == function::CONFIRMED_USER_DATA {
            // The master waits for each frame's link ACK before the next, and the gateway
            // forwards nothing before the last: the request could never complete.
            return Err(Fault::new(
                "confirmed_multi_frame",
                "a request spanning several link-confirmed frames is not relayed: the gateway decides whole fragments before the outstation sees any frame (send requests as unconfirmed user data, or small enough for one frame)",
            ));
        }
        segments += 1;
        payload += data_len - 1;
        if segments >= MAX_SEGMENTS || payload > DEFAULT_MAX_FRAGMENT {
            return Err(Fault::new(
                "fragment_too_large",
                format!(
                    "a request fragment exceeds {MAX_SEGMENTS} segments or {DEFAULT_MAX_FRAGMENT} bytes before its final segment"
                ),
            ));
        }
        pos = end;
    }
}

/// The length of the first link frame at the start of `buf` (the outstation's frames are
/// checked one by one), `None` while incomplete.
pub fn frame_at_start(buf: &[u8]) -> Result<Option<usize>, Fault> {
    match frame_len(buf) {
        Ok(Some(n)) if buf.len() >= n => Ok(Some(n)),
        Ok(_) => Ok(None),
        Err(e) => Err(fault(&e)),
    }
}

/// What the gateway sends the outstation in place of a refused link-confirmed request: a
/// TEST_LINK_STATES with the same frame count bits, which the outstation acknowledges and
/// counts exactly as it would have counted the request. Without it, an outstation that
/// checks the frame count bit would take the master's next confirmed frame for a repeat
/// and drop it.
pub fn test_link_states(request: &LinkHeader) -> Vec<u8> {
    let header = LinkHeader {
        control: Control {
            function: function::TEST_LINK_STATES,
            ..request.control
        },
        ..*request
    };
    let mut out = Vec::with_capacity(HEADER_LEN);
    // A frame without user data always encodes.
    let _ = encode_frame(&header, &[], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jitgate_dnp3::link::parse_frame;
    use jitgate_dnp3::transport::segment;

    fn frames(fragment: &[u8], function: u8) -> Vec<u8> {
        let header = LinkHeader {
            control: Control {
                dir: true,
                prm: true,
                fcb: false,
                fcv: function == function::CONFIRMED_USER_DATA,
                function,
            },
            destination: 10,
            source: 1,
        };
        let mut out = Vec::new();
        for s in segment(fragment, 5).0 {
            encode_frame(&header, &s, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn a_fragment_is_all_its_frames_and_only_those() {
        let read = frames(&[0xC1, 0x01, 60, 1, 0x06], function::UNCONFIRMED_USER_DATA);
        let mut two = read.clone();
        two.extend(&read);
        assert_eq!(request_len(&two), Ok(Some(read.len())));
        assert_eq!(request_len(&read[..read.len() - 1]), Ok(None));
        // 600 bytes of objects: three segments, held until the third has arrived.
        let mut big = vec![0xC2, 0x01];
        for _ in 0..119 {
            big.extend([30, 1, 0x00, 0, 0]);
        }
        let long = frames(&big, function::UNCONFIRMED_USER_DATA);
        assert_eq!(request_len(&long), Ok(Some(long.len())));
        let first_two = 2 * 292;
        assert_eq!(request_len(&long[..first_two]), Ok(None));
        // A link-layer frame alone.
        let mut reset = Vec::new();
        let h = LinkHeader {
            control: Control::from_byte(0xC0),
            destination: 10,
            source: 1,
        };
        encode_frame(&h, &[], &mut reset).unwrap();
        assert_eq!(request_len(&reset), Ok(Some(10)));
        // ... but not in the middle of a fragment.
        let mut mixed = long[..first_two].to_vec();
        mixed.extend(&reset);
        assert_eq!(
            request_len(&mixed).unwrap_err().code,
            "link_frame_in_fragment"
        );
        // A bad start byte at once.
        assert_eq!(request_len(&[0x05, 0x65]).unwrap_err().code, "bad_start");
    }

    #[test]
    fn fragments_that_never_end_are_bounded() {
        // Segments of one byte each, FIN never set.
        let header = LinkHeader {
            control: Control::from_byte(0xC4),
            destination: 10,
            source: 1,
        };
        let mut out = Vec::new();
        for seq in 0..MAX_SEGMENTS as u8 {
            let t = TransportHeader {
                fin: false,
                fir: seq == 0,
                seq,
            };
            encode_frame(&header, &[t.to_byte(), 0], &mut out).unwrap();
        }
        assert_eq!(request_len(&out).unwrap_err().code, "fragment_too_large");
        // Out of order: delimited where it breaks, for the decision to close.
        let mut out = Vec::new();
        for (fir, seq) in [(true, 0), (true, 1)] {
            let t = TransportHeader {
                fin: false,
                fir,
                seq,
            };
            encode_frame(&header, &[t.to_byte(), 0], &mut out).unwrap();
        }
        assert_eq!(request_len(&out), Ok(Some(out.len())));
    }

    #[test]
    fn confirmed_multi_frame_requests_are_refused_and_single_ones_pass() {
        let mut big = vec![0xC2, 0x01];
        for _ in 0..60 {
            big.extend([30, 1, 0x00, 0, 0]);
        }
        let long = frames(&big, function::CONFIRMED_USER_DATA);
        assert_eq!(
            request_len(&long).unwrap_err().code,
            "confirmed_multi_frame"
        );
        let one = frames(&[0xC1, 0x01, 60, 1, 0x06], function::CONFIRMED_USER_DATA);
        assert_eq!(request_len(&one), Ok(Some(one.len())));
    }

    #[test]
    fn the_substitute_keeps_the_frame_count_bits() {
        let h = LinkHeader {
            control: Control::from_byte(0xF3),
            destination: 10,
            source: 1,
        };
        let bytes = test_link_states(&h);
        let (frame, used) = parse_frame(&bytes).unwrap().unwrap();
        assert_eq!(used, 10);
        assert_eq!(frame.header.control.to_byte(), 0xF2);
        assert_eq!((frame.header.source, frame.header.destination), (1, 10));
    }
}
