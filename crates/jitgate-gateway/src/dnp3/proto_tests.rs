//! The DNP3 seam, rule by rule: frames built as a master and an outstation send them,
//! decided and answered as the relay loop would.

use super::*;
use crate::dnp3::state::{MAX_UNCONFIRMED_UNSOLICITED, SELECT_TIMEOUT};
use jitgate_core::scope::{Dnp3Op, Dnp3Target};
use jitgate_dnp3::header::iin2;
use jitgate_dnp3::link::{encode_frame, Control};
use jitgate_dnp3::parse::parse_response;
use jitgate_dnp3::transport::segment;

fn asset() -> Asset {
    serde_json::from_value(serde_json::json!({
        "id": "rtu-12", "kind": "rtu", "site": "south", "criticality": "high",
        "enforcement": "brokered",
        "endpoints": {"dnp3": {"address": "127.0.0.1:20000", "outstation": 10, "master": 1}},
    }))
    .unwrap()
}

fn item(op: Dnp3Op, target: Dnp3Target, start: u16, end: u16) -> ScopeItem {
    ScopeItem::Dnp3 {
        asset: "rtu-12".into(),
        op,
        target,
        start,
        end,
    }
}

/// `read class 0-3`, `operate binary-output 3-5`.
fn allow() -> Allow {
    Dnp3::compile(
        &asset(),
        &[
            item(Dnp3Op::Read, Dnp3Target::Class, 0, 3),
            item(Dnp3Op::Operate, Dnp3Target::BinaryOutput, 3, 5),
        ],
    )
}

fn header(from_master: bool, prm: bool, function: u8) -> LinkHeader {
    let (source, destination) = if from_master { (1, 10) } else { (10, 1) };
    LinkHeader {
        control: Control {
            dir: from_master,
            prm,
            fcb: false,
            fcv: function == function::CONFIRMED_USER_DATA,
            function,
        },
        destination,
        source,
    }
}

/// The frames of `fragment`, segmented from transport sequence `tseq`.
fn frames_of(h: LinkHeader, fragment: &[u8], tseq: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for s in segment(fragment, tseq).0 {
        encode_frame(&h, &s, &mut out).unwrap();
    }
    out
}

fn request(fragment: &[u8]) -> Vec<u8> {
    frames_of(
        header(true, true, function::UNCONFIRMED_USER_DATA),
        fragment,
        0,
    )
}

fn response(fragment: &[u8], tseq: u8) -> Vec<u8> {
    frames_of(
        header(false, true, function::UNCONFIRMED_USER_DATA),
        fragment,
        tseq,
    )
}

fn link(from_master: bool, prm: bool, function: u8) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&header(from_master, prm, function), &[], &mut out).unwrap();
    out
}

/// Decide exactly the bytes `request_len` delimits (all of `bytes`).
fn decide(allow: &Allow, state: &mut State, bytes: &[u8]) -> Decision<Dnp3> {
    assert_eq!(
        Dnp3::request_len(bytes),
        Ok(Some(bytes.len())),
        "{bytes:02x?}"
    );
    Dnp3::decide(allow, state, bytes)
}

fn expect_allow(d: Decision<Dnp3>) -> (bool, Operation) {
    match d {
        Decision::Allow { pending, operation } => (Dnp3::expects_answer(&pending), operation),
        _ => panic!("not allowed"),
    }
}

fn expect_refuse(d: Decision<Dnp3>) -> (Vec<u8>, Operation) {
    match d {
        Decision::Refuse { reply, operation } => (reply, operation),
        _ => panic!("not refused"),
    }
}

fn expect_malformed(d: Decision<Dnp3>) -> String {
    match d {
        Decision::Malformed { fault, .. } => fault.code.to_string(),
        _ => panic!("not malformed"),
    }
}

/// Feed every frame of `bytes` to the device side; the answers in order.
fn device(state: &mut State, bytes: &[u8], waiting: bool) -> Vec<Answer> {
    let mut rest = bytes;
    let mut answers = Vec::new();
    while let Some(n) = Dnp3::response_len(rest).unwrap() {
        answers.push(state.device_frame(&rest[..n], waiting));
        rest = &rest[n..];
    }
    assert!(rest.is_empty());
    answers
}

const CLASS_0: [u8; 5] = [0xC2, 0x01, 60, 1, 0x06];

#[test]
fn an_allowed_read_is_forwarded_and_its_response_completes_it() {
    let (a, mut s) = (allow(), Dnp3::new_state(&allow()));
    let (answer, op) = expect_allow(decide(&a, &mut s, &request(&CLASS_0)));
    assert!(answer && op.allowed);
    assert_eq!(op.function_name.as_deref(), Some("READ"));
    // g1v2 0-1 in the response; IIN1.7 (restart) set.
    let resp = [0xC2, 0x81, 0x80, 0x00, 1, 2, 0x00, 0, 1, 0x81, 0x01];
    assert_eq!(
        device(&mut s, &response(&resp, 33), true),
        [Answer::Complete]
    );
    assert_eq!((s.last_iin1, s.to_master_seq), (0x80, 34));
    assert_eq!(s.expect, Expect::Idle);
}

#[test]
fn an_out_of_scope_operate_gets_the_refusal_and_never_reaches_the_outstation() {
    let (a, mut s) = (allow(), Dnp3::new_state(&allow()));
    expect_allow(decide(&a, &mut s, &request(&CLASS_0)));
    device(&mut s, &response(&[0xC2, 0x81, 0x80, 0x00], 9), true);
    // DIRECT_OPERATE of binary output 7: outside 3-5.
    let mut op = vec![0xC3, 0x05, 12, 1, 0x17, 1, 7];
    op.extend([0x03, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let (reply, record) = expect_refuse(decide(&a, &mut s, &request(&op)));
    assert_eq!(record.refusal_iin2, Some(iin2::PARAMETER_ERROR));
    assert!(!record.allowed && record.reason.unwrap().contains("outside the grant"));
    // One frame from the outstation's address: transport sequence 10 (after the
    // outstation's 9), the request's sequence, the outstation's IIN1, IIN2.2.
    let (frame, used) = parse_frame(&reply).unwrap().unwrap();
    assert_eq!(used, reply.len());
    assert_eq!((frame.header.source, frame.header.destination), (10, 1));
    assert_eq!(frame.user_data(), [0xC0 | 10, 0xC3, 0x81, 0x80, 0x04]);
    // An operate of an analog output the grant does not name: object unknown.
    let ao = [0xC4, 0x05, 41, 2, 0x17, 1, 0, 0x10, 0, 0];
    let (reply, _) = expect_refuse(decide(&a, &mut s, &request(&ao)));
    let (frame, _) = parse_frame(&reply).unwrap().unwrap();
    assert_eq!(frame.user_data(), [0xC0 | 11, 0xC4, 0x81, 0x80, 0x02]);
    // A refused DIRECT_OPERATE_NR is answered with nothing.
    let mut nr = op.clone();
    nr[1] = 0x06;
    let (reply, record) = expect_refuse(decide(&a, &mut s, &request(&nr)));
    assert!(reply.is_empty() && record.refusal_iin2.is_none());
}

#[test]
fn a_request_refused_for_an_object_jitgate_does_not_know_says_so_in_its_record() {
    let (a, mut s) = (allow(), Dnp3::new_state(&allow()));
    // A READ of g120v1 (secure authentication, not in the object table).
    let (_, record) = expect_refuse(decide(&a, &mut s, &request(&[0xC1, 0x01, 120, 1, 0x06])));
    assert_eq!(record.refusal_iin2, Some(iin2::OBJECT_UNKNOWN));
    assert!(record.objects.is_empty());
    let unparsed = record.objects_unparsed.unwrap();
    assert!(
        unparsed.starts_with("unknown_object: ") && unparsed.contains("group 120 variation 1"),
        "{unparsed}"
    );
    // A request whose objects parsed lists them, and nothing is said to be unparsed.
    let (_, record) = expect_refuse(decide(
        &a,
        &mut s,
        &request(&[0xC2, 0x01, 30, 1, 0x00, 9, 9]),
    ));
    assert_eq!((record.objects.len(), record.objects_unparsed), (1, None));
}

#[test]
fn select_then_operate_of_a_granted_point_and_the_select_timeout() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (a, mut s) = (allow(), Dnp3::new_state(&allow()));
        let crob = |seq: u8, f: u8| {
            let mut v = vec![0xC0 | seq, f, 12, 1, 0x17, 1, 4];
            v.extend([0x03, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            v
        };
        assert!(expect_allow(decide(&a, &mut s, &request(&crob(1, 0x03)))).0);
        device(&mut s, &response(&[0xC1, 0x81, 0, 0], 0), true);
        assert!(expect_allow(decide(&a, &mut s, &request(&crob(2, 0x04)))).0);
        device(&mut s, &response(&[0xC2, 0x81, 0, 0], 1), true);
        // A SELECT older than the gateway's select timeout cannot be operated.
        expect_allow(decide(&a, &mut s, &request(&crob(3, 0x03))));
        device(&mut s, &response(&[0xC3, 0x81, 0, 0], 2), true);
        tokio::time::advance(SELECT_TIMEOUT + std::time::Duration::from_millis(1)).await;
        let (_, record) = expect_refuse(decide(&a, &mut s, &request(&crob(4, 0x04))));
        assert!(record.reason.unwrap().contains("no SELECT"));
    });
}

#[test]
fn frames_that_break_the_protocol_close_the_session() {
    let (a, mut s) = (allow(), Dnp3::new_state(&allow()));
    // Another master address, another outstation, the outstation's direction bit.
    let mut h = header(true, true, function::UNCONFIRMED_USER_DATA);
    h.source = 2;
    assert_eq!(
        expect_malformed(decide(&a, &mut s, &frames_of(h, &CLASS_0, 0))),
        "wrong_address"
    );
    h.source = 1;
    h.destination = 0xFFFF;
    assert_eq!(
        expect_malformed(decide(&a, &mut s, &frames_of(h, &CLASS_0, 0))),
        "wrong_address"
    );
    let mut h = header(true, true, function::UNCONFIRMED_USER_DATA);
    h.control.dir = false;
    assert_eq!(
        expect_malformed(decide(&a, &mut s, &frames_of(h, &CLASS_0, 0))),
        "wrong_direction"
    );
    // A corrupted block: the header passes, so the frame is delimited, then refused whole.
    let mut bad = request(&CLASS_0);
    bad[12] ^= 0x01;
    assert_eq!(expect_malformed(decide(&a, &mut s, &bad)), "bad_block_crc");
    // A bad header CRC is a framing fault at once.
    let mut bad = request(&CLASS_0);
    bad[8] ^= 0x01;
    assert_eq!(Dnp3::request_len(&bad).unwrap_err().code, "bad_header_crc");
    // Transport: a second segment out of sequence, a lone middle segment.
    let h = header(true, true, function::UNCONFIRMED_USER_DATA);
    let mut out = Vec::new();
    encode_frame(&h, &[0x45, 0xC1, 0x01], &mut out).unwrap();
    encode_frame(&h, &[0x87, 60, 1, 0x06], &mut out).unwrap();
    assert_eq!(
        expect_malformed(decide(&a, &mut s, &out)),
        "transport_sequence"
    );
    let mut out = Vec::new();
    encode_frame(&h, &[0x86, 0xC1, 0x01], &mut out).unwrap();
    assert_eq!(
        expect_malformed(decide(&a, &mut s, &out)),
        "no_first_segment"
    );
    // Application: a range that runs backwards.
    let backwards = [0xC1, 0x01, 30, 1, 0x00, 9, 3];
    assert_eq!(
        expect_malformed(decide(&a, &mut s, &request(&backwards))),
        "range_overflow"
    );
    // Link: data on a link-layer function, a function no master sends.
    let mut out = Vec::new();
    encode_frame(
        &header(true, true, function::REQUEST_LINK_STATUS),
        &[1],
        &mut out,
    )
    .unwrap();
    assert_eq!(expect_malformed(decide(&a, &mut s, &out)), "link_data");
    assert_eq!(
        expect_malformed(decide(&a, &mut s, &link(true, true, 0x1))),
        "link_function"
    );
}

#[test]
fn link_frames_pass_with_their_answers() {
    let (a, mut s) = (allow(), Dnp3::new_state(&allow()));
    let (answer, op) = expect_allow(decide(
        &a,
        &mut s,
        &link(true, true, function::RESET_LINK_STATES),
    ));
    assert!(answer);
    assert_eq!(op.link.as_deref(), Some("RESET_LINK_STATES"));
    assert_eq!(
        device(&mut s, &link(false, false, function::ACK), true),
        [Answer::Complete]
    );
    // An ACK nobody asked for.
    assert!(matches!(
        device(&mut s, &link(false, false, function::ACK), false)[..],
        [Answer::Invalid(ref f)] if f.code == "unexpected_link_answer"
    ));
    // The outstation's keep-alive while idle is relayed; the master's answer takes none.
    let mut s = Dnp3::new_state(&a);
    assert_eq!(
        device(
            &mut s,
            &link(false, true, function::REQUEST_LINK_STATUS),
            false
        ),
        [Answer::Complete]
    );
    assert!(
        !expect_allow(decide(
            &a,
            &mut s,
            &link(true, false, function::LINK_STATUS)
        ))
        .0
    );
}

#[path = "proto_device_tests.rs"]
mod device;
