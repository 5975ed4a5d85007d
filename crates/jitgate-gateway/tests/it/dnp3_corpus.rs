//! Bad input through the real gateway, frame by frame over the tunnel: a corpus of
//! out-of-scope requests (answered with their IIN bits, the session goes on) and of
//! malformed frames (each closes its own session, with the reason in the evidence), then
//! an outstation that misbehaves. Nothing malformed or out of scope may reach the
//! outstation: the simulated outstation records every fragment it received.

use crate::dnp3_rig::{ended, operations, rule, Dnp3Rig};
use jitgate_core::scope::Dnp3Op::{Operate, Read, Unsolicited};
use jitgate_core::scope::Dnp3Target::{AnalogInput, BinaryOutput, Class};
use jitgate_dnp3::link::{encode_frame, function, parse_frame, Control, LinkHeader};
use jitgate_dnp3::parse::{parse_response, Limits};
use jitgate_dnp3::transport::{segment, TransportHeader};
use jitgate_gateway::connect;
use jitgate_gateway::dnp3::sim;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn header(function: u8) -> LinkHeader {
    LinkHeader {
        control: Control {
            dir: true,
            prm: true,
            fcb: true,
            fcv: function == function::CONFIRMED_USER_DATA,
            function,
        },
        destination: 10,
        source: 1,
    }
}

fn frames(h: LinkHeader, fragment: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in segment(fragment, 0).0 {
        encode_frame(&h, &s, &mut out).unwrap();
    }
    out
}

fn req(fragment: &[u8]) -> Vec<u8> {
    frames(header(function::UNCONFIRMED_USER_DATA), fragment)
}

/// One frame with the raw transport byte `t` and `payload`.
fn segment_frame(t: TransportHeader, payload: &[u8]) -> Vec<u8> {
    let mut data = vec![t.to_byte()];
    data.extend_from_slice(payload);
    let mut out = Vec::new();
    encode_frame(&header(function::UNCONFIRMED_USER_DATA), &data, &mut out).unwrap();
    out
}

fn link(h: LinkHeader) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&h, &[], &mut out).unwrap();
    out
}

fn crob(seq: u8, f: u8, index: u8) -> Vec<u8> {
    let mut v = vec![0xC0 | seq, f, 12, 1, 0x17, 1, index];
    v.extend([0x03, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    v
}

/// The next link frame from the gateway, `None` at the end of the stream.
async fn next_frame(s: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Ok(Some((_, used))) = parse_frame(buf) {
            return Some(buf.drain(..used).collect());
        }
        let mut chunk = [0u8; 512];
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("neither an answer nor the end of the session in 10 s"),
        }
    }
}

/// (application sequence, IIN1, IIN2) of a response frame.
fn answer(frame: &[u8]) -> (u8, u8, u8) {
    let (f, _) = parse_frame(frame).unwrap().unwrap();
    let r = parse_response(&f.user_data()[1..], &Limits::default()).unwrap();
    (r.control.seq, r.iin.iin1, r.iin.iin2)
}

const CLASS_0: [u8; 5] = [0xC0, 0x01, 60, 1, 0x06];

fn scope() -> Vec<jitgate_core::scope::ScopeItem> {
    vec![
        rule(Read, Class, 0, 1),
        rule(Read, AnalogInput, 0, 7),
        rule(Operate, BinaryOutput, 3, 5),
        rule(Unsolicited, Class, 1, 1),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_corpus_never_reaches_the_outstation() {
    let rtu = sim::start("127.0.0.1:0".parse().unwrap(), 10, 1, 8)
        .await
        .unwrap();
    let rig = Dnp3Rig::start(rtu.local_addr()).await;
    let target = rig.grant("grant-corpus", scope(), chrono::Duration::hours(1));

    // Out of scope, in one session: each answered with its IIN2 bit (sequence echoed).
    let refused: Vec<(Vec<u8>, u8)> = vec![
        (crob(1, 0x05, 7), 0x04),
        (vec![0xC2, 0x02, 50, 1, 0x07, 1, 1, 2, 3, 4, 5, 6], 0x01),
        (vec![0xC3, 0x0D], 0x01),
        (vec![0xC4, 0x01, 30, 1, 0x00, 100, 200], 0x04),
        (vec![0xC5, 0x01, 60, 3, 0x06], 0x04),
        (vec![0xC6, 0x70], 0x01),
        (vec![0xC7, 0x01, 120, 1, 0x06], 0x02),
        (vec![0xC8, 0x14, 60, 3, 0x06], 0x04),
        (crob(9, 0x03, 9), 0x04),
        (crob(10, 0x04, 3), 0x04),
        (vec![0xCB, 0x20, 120, 1, 0x5B, 1, 2, 0, 0, 0], 0x01),
        (vec![0xCC, 0x02, 80, 1, 0x00, 7, 7, 0x01], 0x01),
        (vec![0xCD, 0x01, 40, 1, 0x06], 0x02),
    ];
    let (mut s, _) = connect::open_tunnel(&target).await.unwrap();
    let mut buf = Vec::new();
    for (fragment, iin2) in &refused {
        s.write_all(&req(fragment)).await.unwrap();
        let frame = next_frame(&mut s, &mut buf).await.expect("answered");
        assert_eq!(
            answer(&frame),
            (fragment[0] & 0x0F, 0, *iin2),
            "{fragment:02x?}"
        );
    }
    // A refused DIRECT_OPERATE_NR gets no answer: the next frame answers the next request.
    s.write_all(&req(&crob(14, 0x06, 9))).await.unwrap();
    s.write_all(&req(&[0xCF, 0x01, 60, 1, 0x06])).await.unwrap();
    let frame = next_frame(&mut s, &mut buf).await.unwrap();
    assert_eq!(answer(&frame), (15, 0x80, 0));
    // A refused request sent link-confirmed: the outstation's own ACK (of the
    // TEST_LINK_STATES sent in its place), then the refusal.
    s.write_all(&link(LinkHeader {
        control: Control::from_byte(0xC0),
        ..header(0)
    }))
    .await
    .unwrap();
    assert!(
        next_frame(&mut s, &mut buf).await.is_some(),
        "link reset answered"
    );
    s.write_all(&frames(
        header(function::CONFIRMED_USER_DATA),
        &[0xC1, 0x0D],
    ))
    .await
    .unwrap();
    let ack = next_frame(&mut s, &mut buf).await.unwrap();
    assert_eq!(ack[3] & 0x4F, function::ACK, "{ack:02x?}");
    let frame = next_frame(&mut s, &mut buf).await.unwrap();
    assert_eq!(answer(&frame), (1, 0x80, 0x01));
    // The master's next confirmed frame toggles the frame count bit; the outstation, which
    // checks it, counted the TEST_LINK_STATES and so takes this frame as new, not a repeat.
    let mut next = header(function::CONFIRMED_USER_DATA);
    next.control.fcb = false;
    s.write_all(&frames(next, &[0xC2, 0x01, 60, 1, 0x06]))
        .await
        .unwrap();
    let ack = next_frame(&mut s, &mut buf).await.unwrap();
    assert_eq!(ack[3] & 0x4F, function::ACK, "{ack:02x?}");
    let frame = next_frame(&mut s, &mut buf).await.unwrap();
    assert_eq!(answer(&frame), (2, 0x80, 0));

    // Malformed: each closes its own session; the one above stays open meanwhile.
    let mut bad_crc = req(&CLASS_0);
    bad_crc[12] ^= 1;
    let mut bad_header = req(&CLASS_0);
    bad_header[8] ^= 1;
    let with = |f: fn(&mut LinkHeader)| {
        let mut h = header(function::UNCONFIRMED_USER_DATA);
        f(&mut h);
        frames(h, &CLASS_0)
    };
    let t = |fir, fin, seq| TransportHeader { fin, fir, seq };
    let two = |a: Vec<u8>, b: Vec<u8>| [a, b].concat();
    let mut huge = Vec::new();
    for seq in 0..64 {
        huge.extend(segment_frame(t(seq == 0, false, seq), &[0]));
    }
    let mut big = vec![0xC1, 0x01];
    for _ in 0..60 {
        big.extend([30, 1, 0x00, 0, 0]);
    }
    let malformed: Vec<(Vec<u8>, &str)> = vec![
        (bad_crc, "bad_block_crc"),
        (bad_header, "bad_header_crc"),
        (vec![0x05, 0x65, 0x05, 0xC4], "bad_start"),
        (vec![0x05, 0x64, 0x04, 0xC4], "bad_length"),
        (with(|h| h.source = 2), "wrong_address"),
        (with(|h| h.destination = 0xFFFF), "wrong_address"),
        (with(|h| h.control.dir = false), "wrong_direction"),
        (
            two(
                segment_frame(t(true, false, 0), &[0xC1]),
                segment_frame(t(true, true, 1), &[1]),
            ),
            "unfinished_fragment",
        ),
        (
            two(
                segment_frame(t(true, false, 0), &[0xC1]),
                segment_frame(t(false, true, 5), &[1]),
            ),
            "transport_sequence",
        ),
        (
            segment_frame(t(false, true, 3), &[0xC1, 0x01]),
            "no_first_segment",
        ),
        (req(&[0xC1, 0x01, 30, 1, 0x00, 9, 3]), "range_overflow"),
        (
            req(&[0xC1, 0x02, 50, 1, 0x07, 2, 1, 2, 3, 4, 5, 6]),
            "count_mismatch",
        ),
        (req(&[0x81, 0x01, 60, 1, 0x06]), "bad_app_control"),
        (
            link(LinkHeader {
                control: Control::from_byte(0xC1),
                ..header(0)
            }),
            "link_function",
        ),
        (
            frames(header(function::CONFIRMED_USER_DATA), &big),
            "confirmed_multi_frame",
        ),
        (huge, "fragment_too_large"),
        (
            two(
                segment_frame(t(true, false, 0), &[0xC1]),
                link(LinkHeader {
                    control: Control::from_byte(0xC9),
                    ..header(0)
                }),
            ),
            "link_frame_in_fragment",
        ),
    ];
    for (bytes, code) in &malformed {
        let (mut bad, _) = connect::open_tunnel(&target).await.unwrap();
        bad.write_all(bytes).await.unwrap();
        let mut buf = Vec::new();
        assert_eq!(
            next_frame(&mut bad, &mut buf).await,
            None,
            "{code}: closed, no answer"
        );
    }
    // A fragment that never ends, then the master leaves: nothing was forwarded.
    let (mut partial, _) = connect::open_tunnel(&target).await.unwrap();
    partial
        .write_all(&segment_frame(t(true, false, 0), &[0xC1, 0x05]))
        .await
        .unwrap();
    connect::close(&mut partial).await;

    // The first session still works: an allowed read is answered with the device's data.
    s.write_all(&req(&CLASS_0)).await.unwrap();
    let frame = next_frame(&mut s, &mut buf).await.unwrap();
    assert_eq!(answer(&frame), (0, 0x80, 0));
    connect::close(&mut s).await;

    // The outstation received the allowed reads and nothing else.
    let received = rtu.received();
    let reads = [
        vec![0xCF, 0x01, 60, 1, 0x06],
        vec![0xC2, 0x01, 60, 1, 0x06],
        CLASS_0.to_vec(),
    ];
    assert_eq!(received, reads);
    let events = rig
        .events_until(|ev| ended(ev, "grant-corpus").len() >= malformed.len() + 2)
        .await;
    let reasons = ended(&events, "grant-corpus");
    let closed = reasons
        .iter()
        .filter(|r| r.starts_with("malformed_"))
        .count();
    assert_eq!(closed, malformed.len(), "{reasons:#?}");
    // Each with its code in the evidence.
    let ops = operations(&events, "grant-corpus");
    let codes: Vec<&str> = ops.iter().filter_map(|o| o["malformed"].as_str()).collect();
    for (_, code) in &malformed {
        assert!(codes.contains(code), "{code} not among {codes:?}");
    }
    rig.gw.stop().await;
    rtu.shutdown().await;
}

/// An outstation that floods unsolicited responses, answers from another address, or says
/// nothing: each ends only its own session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_outstation_ends_only_its_session() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let device = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut s, _)) = listener.accept().await {
            n += 1;
            let behaviour = n;
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf).await;
                let outstation = |function| LinkHeader {
                    control: Control {
                        dir: false,
                        prm: true,
                        fcb: false,
                        fcv: false,
                        function,
                    },
                    destination: 1,
                    source: 10,
                };
                let mut out = Vec::new();
                match behaviour {
                    // A flood of unsolicited responses, never waiting for a confirm.
                    1 => {
                        for seq in 0..12u8 {
                            let uns = [0xF0 | seq, 0x82, 0, 0];
                            let t = TransportHeader::single(seq).to_byte();
                            let data = [&[t][..], &uns].concat();
                            encode_frame(
                                &outstation(function::UNCONFIRMED_USER_DATA),
                                &data,
                                &mut out,
                            )
                            .unwrap();
                        }
                    }
                    // The link ACK from another outstation address.
                    2 => {
                        let mut h = outstation(function::ACK);
                        h.control.prm = false;
                        h.source = 11;
                        encode_frame(&h, &[], &mut out).unwrap();
                    }
                    // Silence.
                    _ => {}
                }
                let _ = s.write_all(&out).await;
                let _ = s.read(&mut buf).await;
            });
        }
    });
    let rig = Dnp3Rig::start(device).await;
    let target = rig.grant("grant-device", scope(), chrono::Duration::hours(1));
    let reset = link(LinkHeader {
        control: Control::from_byte(0xC0),
        ..header(0)
    });
    let mut relayed = Vec::new();
    for _ in 0..3 {
        let (mut s, _) = connect::open_tunnel(&target).await.unwrap();
        s.write_all(&reset).await.unwrap();
        let mut buf = Vec::new();
        let mut frames = 0;
        while next_frame(&mut s, &mut buf).await.is_some() {
            frames += 1;
        }
        relayed.push(frames);
    }
    // The reset is relayed, then 8 unsolicited responses; nothing of the other two.
    assert_eq!(relayed, [8, 0, 0]);
    let events = rig
        .events_until(|ev| ended(ev, "grant-device").len() >= 3)
        .await;
    let reasons = ended(&events, "grant-device");
    assert!(reasons[0].contains("unsolicited"), "{reasons:?}");
    assert!(
        reasons[1].starts_with("bad_device_response") && reasons[1].contains("11"),
        "{reasons:?}"
    );
    assert_eq!(reasons[2], "device_timeout");
    rig.gw.stop().await;
}
