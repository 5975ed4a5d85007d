//! The outstation's side of the seam: responses, confirms, unsolicited responses, link
//! answers.

use super::*;

#[test]
fn confirms_take_no_answer_unless_a_response_fragment_awaits_them() {
    let (a, mut s) = (allow(), Dnp3::new_state(&allow()));
    assert!(!expect_allow(decide(&a, &mut s, &request(&[0xC5, 0x00]))).0);
    // A two-fragment response: the first asks for a confirm.
    expect_allow(decide(&a, &mut s, &request(&CLASS_0)));
    let first = [0xA2, 0x81, 0, 0, 1, 2, 0x00, 0, 0, 0x81];
    assert_eq!(
        device(&mut s, &response(&first, 0), true),
        [Answer::Complete]
    );
    // Its confirm expects the next fragment, sequence 3.
    assert!(expect_allow(decide(&a, &mut s, &request(&[0xC2, 0x00]))).0);
    let wrong = [0x42, 0x81, 0, 0];
    assert!(matches!(
        device(&mut s.clone_for_test(), &response(&wrong, 1), true)[..],
        [Answer::Invalid(ref f)] if f.code == "response_sequence"
    ));
    let last = [0x43, 0x81, 0, 0, 1, 2, 0x00, 1, 1, 0x81];
    assert_eq!(
        device(&mut s, &response(&last, 1), true),
        [Answer::Complete]
    );
    // A response nobody asked for.
    assert!(matches!(
        device(&mut s, &response(&[0xC9, 0x81, 0, 0], 2), false)[..],
        [Answer::Invalid(ref f)] if f.code == "unexpected_response"
    ));
}

#[test]
fn a_response_spanning_frames_is_relayed_frame_by_frame() {
    let (a, mut s) = (allow(), Dnp3::new_state(&allow()));
    expect_allow(decide(&a, &mut s, &request(&CLASS_0)));
    // 100 analog inputs g30v1: 4 + 5 + 500 bytes, three frames.
    let mut resp = vec![0xC2, 0x81, 0, 0, 30, 1, 0x00, 0, 99];
    for i in 0..100u8 {
        resp.extend([0x01, i, 0, 0, 0]);
    }
    let answers = device(&mut s, &response(&resp, 60), true);
    assert_eq!(answers, [Answer::More, Answer::More, Answer::Complete]);
    assert_eq!(s.to_master_seq, 63);
    // Objects the parser does not know (g110 octet strings): relayed all the same.
    expect_allow(decide(&a, &mut s, &request(&[0xC3, 0x01, 60, 1, 0x06])));
    let strings = [0xC3, 0x81, 0, 0, 110, 4, 0x00, 0, 0, b'a', b'b', b'c', b'd'];
    assert_eq!(
        device(&mut s, &response(&strings, 0), true),
        [Answer::Complete]
    );
}

#[test]
fn unsolicited_responses_are_relayed_logged_and_bounded() {
    let (a, mut s) = (allow(), Dnp3::new_state(&allow()));
    // g2v1 binary input event (index 3) in class 1, with a confirm asked.
    let uns = |seq: u8| vec![0xF0 | seq, 0x82, 0x02, 0, 2, 1, 0x17, 1, 3, 0x81];
    assert_eq!(
        device(&mut s, &response(&uns(0), 0), false),
        [Answer::Complete]
    );
    let record = Dnp3::device_record(&mut s).unwrap();
    assert_eq!(record.direction, "outstation");
    assert_eq!(
        record.function_name.as_deref(),
        Some("UNSOLICITED_RESPONSE")
    );
    assert_eq!(record.iin, Some([0x02, 0]));
    assert_eq!(record.objects[0].indexes, [3]);
    assert!(Dnp3::device_record(&mut s).is_none());
    // While a request is answered, one in between is relayed and the wait goes on.
    expect_allow(decide(&a, &mut s, &request(&CLASS_0)));
    assert_eq!(device(&mut s, &response(&uns(1), 1), true), [Answer::More]);
    assert_eq!(
        device(&mut s, &response(&[0xC2, 0x81, 0, 0], 2), true),
        [Answer::Complete]
    );
    // The master's confirm resets the count; without confirms, a flood ends the session.
    assert!(!expect_allow(decide(&a, &mut s, &request(&[0xD1, 0x00]))).0);
    for i in 0..MAX_UNCONFIRMED_UNSOLICITED {
        let a = device(&mut s, &response(&uns(i as u8 & 0x0F), 3 + i as u8), false);
        assert_eq!(a, [Answer::Complete], "{i}");
    }
    let flood = device(&mut s, &response(&uns(9), 20), false);
    assert!(matches!(&flood[..], [Answer::Invalid(f)] if f.code == "unsolicited_flood"));
    // Unknown objects in an unsolicited response: relayed, and the record says so.
    let mut s = Dnp3::new_state(&a);
    let odd = [0xF0, 0x82, 0, 0, 111, 3, 0x07, 1, b'x', b'y', b'z'];
    assert_eq!(
        device(&mut s, &response(&odd, 0), false),
        [Answer::Complete]
    );
    let record = Dnp3::device_record(&mut s).unwrap();
    assert_eq!(record.objects_unparsed.as_deref(), Some("unknown_object"));
}

#[test]
fn link_confirmed_requests_get_their_ack_from_the_outstation() {
    let (a, mut s) = (allow(), Dnp3::new_state(&allow()));
    let confirmed = |fragment: &[u8]| {
        frames_of(
            header(true, true, function::CONFIRMED_USER_DATA),
            fragment,
            0,
        )
    };
    // Allowed: the ACK, then the response.
    assert!(expect_allow(decide(&a, &mut s, &confirmed(&CLASS_0))).0);
    let mut answers = device(&mut s, &link(false, false, function::ACK), true);
    answers.extend(device(&mut s, &response(&[0xC2, 0x81, 0, 0], 0), true));
    assert_eq!(answers, [Answer::More, Answer::Complete]);
    // Refused: a TEST_LINK_STATES with the frame count bits goes to the outstation, whose
    // ACK the master gets, then the refusal.
    let Decision::Substitute {
        device: test,
        pending,
        reply,
        operation,
    } = decide(&a, &mut s, &confirmed(&[0xC3, 0x0D]))
    else {
        panic!("not substituted")
    };
    assert!(Dnp3::expects_answer(&pending) && operation.link_confirmed);
    let (frame, _) = parse_frame(&test).unwrap().unwrap();
    assert_eq!(frame.header.control.function, function::TEST_LINK_STATES);
    assert!(frame.header.control.fcv);
    let (frame, _) = parse_frame(&reply).unwrap().unwrap();
    let resp = parse_response(&frame.user_data()[1..], &Limits::default()).unwrap();
    assert_eq!(resp.iin.iin2, iin2::NO_FUNC_CODE_SUPPORT);
    assert_eq!(
        device(&mut s, &link(false, false, function::ACK), true),
        [Answer::Complete]
    );
}

impl State {
    /// A copy, to try a frame without spending the state under test.
    fn clone_for_test(&self) -> State {
        let mut s = State::new(
            Some(LinkBinding {
                master: 1,
                outstation: 10,
            }),
            Limits::default(),
        );
        s.expect = self.expect;
        s
    }
}
