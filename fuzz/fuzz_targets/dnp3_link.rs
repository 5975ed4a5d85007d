//! Arbitrary bytes as a DNP3/TCP stream through link framing, transport reassembly and the
//! application parsers, as the gateway reads it.
//!
//! Properties, beyond "never panics":
//! - `frame_len` and `parse_frame` agree on where a frame ends, and it is 10-292 bytes;
//! - a parsed frame re-encodes to exactly the bytes it was parsed from (so no CRC error or
//!   stray byte is ever accepted);
//! - a reassembled fragment never exceeds the reassembler's limit.

#![no_main]

use jitgate_dnp3::link::{encode_frame, frame_len, parse_frame, MAX_FRAME_LEN};
use jitgate_dnp3::{parse_request, parse_response, Limits, Reassembler};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 600;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_fragment: LIMIT,
        ..Limits::default()
    };
    let mut reassembler = Reassembler::new(LIMIT);
    let mut rest = data;
    loop {
        let len = frame_len(rest);
        let Ok(Some((frame, used))) = parse_frame(rest) else {
            break;
        };
        assert_eq!(len, Ok(Some(used)));
        assert!((10..=MAX_FRAME_LEN).contains(&used) && used <= rest.len());
        let mut again = Vec::new();
        encode_frame(&frame.header, frame.user_data(), &mut again).unwrap();
        assert_eq!(again, &rest[..used]);
        rest = &rest[used..];
        if !frame.header.carries_user_data() {
            continue;
        }
        match reassembler.push(frame.user_data()) {
            Ok(Some(fragment)) => {
                assert!(fragment.len() <= LIMIT);
                if frame.header.control.dir {
                    let _ = parse_request(&fragment, &limits);
                } else {
                    let _ = parse_response(&fragment, &limits);
                }
            }
            Ok(None) => assert!(reassembler.is_assembling()),
            Err(_) => break,
        }
    }
});
