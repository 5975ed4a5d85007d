//! Answers the gateway sends in the outstation's place: a null response (function 0x81,
//! no objects) whose IIN2 bits say why the request was refused, so the master gets a
//! proper DNP3 answer instead of waiting for a timeout.

#![deny(clippy::indexing_slicing)]

use crate::function::FunctionCode;
use crate::header::{AppControl, Iin};
use crate::link::{encode_frame, function, Control, LinkHeader};
use crate::transport::TransportHeader;

/// The application fragment of a null response: control (FIR, FIN, the request's
/// sequence), RESPONSE, IIN1, IIN2.
pub fn null_response(app_seq: u8, iin: Iin) -> [u8; 4] {
    [
        AppControl::single(app_seq).to_byte(),
        FunctionCode::Response.code(),
        iin.iin1,
        iin.iin2,
    ]
}

/// The whole link frame answering the request whose link header was `request`: addresses
/// swapped, from the outstation (DIR clear), unconfirmed user data, one transport segment
/// with `transport_seq`, and the null response for `app_seq` with `iin`.
///
/// IIN1 is whatever the caller passes: the gateway does not invent outstation state such
/// as IIN1.7 (device restart), it only adds the refusal's IIN2 bits.
pub fn refusal_frame(request: &LinkHeader, transport_seq: u8, app_seq: u8, iin: Iin) -> Vec<u8> {
    let header = request.reply(Control {
        dir: false,
        prm: true,
        fcb: false,
        fcv: false,
        function: function::UNCONFIRMED_USER_DATA,
    });
    let mut user_data = [0u8; 5];
    let [t, a @ ..] = &mut user_data;
    *t = TransportHeader::single(transport_seq).to_byte();
    a.copy_from_slice(&null_response(app_seq, iin));
    let mut out = Vec::with_capacity(17);
    // Five bytes of user data always fit in a frame.
    let _ = encode_frame(&header, &user_data, &mut out);
    out
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests index fixtures they built")]
mod tests {
    use super::*;
    use crate::header::iin2;
    use crate::link::parse_frame;
    use crate::parse::{parse_response, Limits};

    #[test]
    fn refusal_is_a_valid_single_frame_response() {
        let request = LinkHeader {
            control: Control::from_byte(0xC4),
            destination: 10,
            source: 1,
        };
        let iin = Iin {
            iin1: 0,
            iin2: iin2::OBJECT_UNKNOWN,
        };
        let bytes = refusal_frame(&request, 7, 3, iin);
        assert_eq!(bytes.len(), 17);
        let (frame, used) = parse_frame(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!((frame.header.destination, frame.header.source), (1, 10));
        assert_eq!(frame.header.control.to_byte(), 0x44);
        assert_eq!(frame.user_data(), &[0xC7, 0xC3, 0x81, 0x00, 0x02]);
        let resp = parse_response(&frame.user_data()[1..], &Limits::default()).unwrap();
        assert_eq!(resp.control.seq, 3);
        assert_eq!(resp.iin, iin);
        assert!(resp.headers.is_empty());
    }

    #[test]
    fn sequences_are_masked_to_their_widths() {
        assert_eq!(null_response(0x13, Iin::default())[0], 0xC3);
        let request = LinkHeader {
            control: Control::from_byte(0xC4),
            destination: 1,
            source: 2,
        };
        let bytes = refusal_frame(&request, 0x41, 0, Iin::default());
        assert_eq!(bytes[10], 0xC1);
    }
}
