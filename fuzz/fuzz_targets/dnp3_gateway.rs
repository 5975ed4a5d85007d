//! Arbitrary bytes as a DNP3 session through the gateway's protocol seam (`Dnp3`), driven as
//! the relay loop drives it: the first two bytes split the rest into what the master sends
//! and what the outstation sends; requests are delimited, decided and, when allowed,
//! answered with the outstation's frames; what is left of the outstation's bytes arrives
//! unsolicited.
//!
//! Properties, beyond "never panics":
//! - a request is never longer than a fragment's worth of frames;
//! - an allowed request is made only of frames with valid CRCs, the session's link
//!   addresses and the master's direction (so nothing else can reach the outstation);
//! - a refusal's reply is nothing (`_NR`) or one valid frame from the outstation's address
//!   to the master's; a substitute is one TEST_LINK_STATES to the outstation;
//! - an outstation frame is delimited at 10-292 bytes.

#![no_main]

use jitgate_core::scope::{Dnp3Op, Dnp3Target, ScopeItem};
use jitgate_dnp3::link::{function, parse_frame, MAX_FRAME_LEN};
use jitgate_gateway::dnp3::framing::MAX_SEGMENTS;
use jitgate_gateway::dnp3::Dnp3;
use jitgate_gateway::protocol::{Answer, Decision, FrameProtocol};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn allow() -> &'static <Dnp3 as FrameProtocol>::Allow {
    static ALLOW: OnceLock<<Dnp3 as FrameProtocol>::Allow> = OnceLock::new();
    ALLOW.get_or_init(|| {
        let asset: jitgate_core::Asset = serde_json::from_value(serde_json::json!({
            "id": "rtu-12", "kind": "rtu", "site": "south", "criticality": "high",
            "enforcement": "brokered",
            "endpoints": {"dnp3": {"address": "127.0.0.1:20000", "outstation": 10, "master": 1}},
        }))
        .unwrap();
        let item = |op, target, start, end| ScopeItem::Dnp3 {
            asset: "rtu-12".into(),
            op,
            target,
            start,
            end,
        };
        Dnp3::compile(
            &asset,
            &[
                item(Dnp3Op::Read, Dnp3Target::Class, 0, 3),
                item(Dnp3Op::Read, Dnp3Target::AnalogInput, 0, 15),
                item(Dnp3Op::Operate, Dnp3Target::BinaryOutput, 3, 5),
                item(Dnp3Op::Unsolicited, Dnp3Target::Class, 1, 3),
            ],
        )
    })
}

/// Every frame of `bytes` is valid and from `source` to `destination` with `dir`.
fn all_frames(mut bytes: &[u8], dir: bool, source: u16, destination: u16) -> usize {
    let mut n = 0;
    while !bytes.is_empty() {
        let (frame, used) = parse_frame(bytes).unwrap().unwrap();
        let h = frame.header;
        assert_eq!((h.control.dir, h.source, h.destination), (dir, source, destination));
        bytes = &bytes[used..];
        n += 1;
    }
    n
}

/// The next outstation frame, as the relay delimits it.
fn device_frame<'a>(device: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = Dnp3::response_len(device).ok()??;
    assert!((10..=MAX_FRAME_LEN).contains(&len));
    let (frame, rest) = device.split_at(len);
    *device = rest;
    Some(frame)
}

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_le_bytes([a, b])) % (rest.len() + 1);
    let (mut master, mut device) = rest.split_at(split);
    let allow = allow();
    let mut state = Dnp3::new_state(allow);
    loop {
        let len = match Dnp3::request_len(master) {
            Ok(Some(len)) => len,
            Ok(None) | Err(_) => break,
        };
        assert!(len <= MAX_SEGMENTS * MAX_FRAME_LEN);
        let (request, rest) = master.split_at(len);
        master = rest;
        let pending = match Dnp3::decide(allow, &mut state, request) {
            Decision::Allow { pending, .. } => {
                all_frames(request, true, 1, 10);
                pending
            }
            Decision::Refuse { reply, .. } => {
                assert!(all_frames(&reply, false, 10, 1) <= 1);
                continue;
            }
            Decision::Substitute {
                device: test,
                pending,
                reply,
                ..
            } => {
                assert_eq!(all_frames(&test, true, 1, 10), 1);
                assert_eq!(test[3] & 0x0F, function::TEST_LINK_STATES);
                assert!(all_frames(&reply, false, 10, 1) <= 1);
                pending
            }
            Decision::Malformed { .. } => return,
        };
        if !Dnp3::expects_answer(&pending) {
            continue;
        }
        loop {
            let Some(frame) = device_frame(&mut device) else {
                return;
            };
            let answer = Dnp3::answer(&mut state, &pending, frame);
            let _ = Dnp3::device_record(&mut state);
            match answer {
                Answer::Complete => break,
                Answer::More => {}
                Answer::Invalid(_) => return,
            }
        }
    }
    while let Some(frame) = device_frame(&mut device) {
        if let Answer::Invalid(_) = Dnp3::unsolicited(&mut state, frame) {
            return;
        }
        let _ = Dnp3::device_record(&mut state);
    }
});
