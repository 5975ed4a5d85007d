#![allow(clippy::indexing_slicing, reason = "tests index fixtures they built")]

use super::*;

fn seg(fir: bool, fin: bool, seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![TransportHeader { fin, fir, seq }.to_byte()];
    v.extend_from_slice(payload);
    v
}

#[test]
fn header_bits() {
    let h = TransportHeader::from_byte(0xC5);
    assert!(h.fin && h.fir);
    assert_eq!(h.seq, 5);
    for b in 0..=255u8 {
        assert_eq!(TransportHeader::from_byte(b).to_byte(), b);
    }
    assert_eq!(TransportHeader::single(65).to_byte(), 0xC1);
}

#[test]
fn single_segment_fragment() {
    let mut r = Reassembler::default();
    let out = r
        .push(&seg(true, true, 9, &[0xC0, 0x01, 0x3C, 0x01, 0x06]))
        .unwrap();
    assert_eq!(out.as_deref(), Some(&[0xC0, 0x01, 0x3C, 0x01, 0x06][..]));
    assert!(!r.is_assembling());
}

#[test]
fn multi_segment_fragment_wraps_the_sequence() {
    let mut r = Reassembler::default();
    assert_eq!(r.push(&seg(true, false, 62, &[1, 2])).unwrap(), None);
    assert!(r.is_assembling());
    assert_eq!(r.push(&seg(false, false, 63, &[3])).unwrap(), None);
    let done = r.push(&seg(false, true, 0, &[4, 5])).unwrap().unwrap();
    assert_eq!(done, [1, 2, 3, 4, 5]);
    // And the next fragment may start at any sequence.
    assert!(r.push(&seg(true, true, 17, &[6])).unwrap().is_some());
}

#[test]
fn segment_without_fir_while_idle_is_an_error() {
    let mut r = Reassembler::default();
    let err = r.push(&seg(false, true, 3, &[1])).unwrap_err();
    assert_eq!(err.code(), "no_first_segment");
}

#[test]
fn wrong_sequence_is_an_error_not_a_resync() {
    let mut r = Reassembler::default();
    r.push(&seg(true, false, 5, &[1])).unwrap();
    let err = r.push(&seg(false, true, 7, &[2])).unwrap_err();
    assert_eq!(
        err,
        Error::TransportSequence {
            expected: 6,
            found: 7
        }
    );
    assert_eq!(err.code(), "transport_sequence");
    // A repeated segment is as wrong as a skipped one.
    let mut r = Reassembler::default();
    r.push(&seg(true, false, 5, &[1])).unwrap();
    assert_eq!(
        r.push(&seg(false, false, 5, &[1])).unwrap_err().code(),
        "transport_sequence"
    );
}

#[test]
fn new_first_segment_before_fin_is_an_error() {
    let mut r = Reassembler::default();
    r.push(&seg(true, false, 1, &[1])).unwrap();
    assert_eq!(
        r.push(&seg(true, true, 2, &[2])).unwrap_err().code(),
        "unfinished_fragment"
    );
}

#[test]
fn fragment_limit_is_enforced_before_fin() {
    let mut r = Reassembler::new(300);
    r.push(&seg(true, false, 0, &[0; 249])).unwrap();
    let err = r.push(&seg(false, false, 1, &[0; 52])).unwrap_err();
    assert_eq!(err.code(), "fragment_too_large");
    assert!(err.to_string().contains("300"));
    // Exactly at the limit is fine.
    let mut r = Reassembler::new(300);
    r.push(&seg(true, false, 0, &[0; 249])).unwrap();
    assert_eq!(
        r.push(&seg(false, true, 1, &[0; 51]))
            .unwrap()
            .unwrap()
            .len(),
        300
    );
}

#[test]
fn a_fragment_that_never_ends_hits_the_default_limit() {
    let mut r = Reassembler::default();
    let mut seq = 0;
    let mut first = true;
    let err = loop {
        match r.push(&seg(first, false, seq, &[0xAA; 249])) {
            Ok(_) => {}
            Err(e) => break e,
        }
        first = false;
        seq = next_seq(seq);
    };
    assert_eq!(err.code(), "fragment_too_large");
}

#[test]
fn empty_segment_is_an_error() {
    assert_eq!(
        Reassembler::default().push(&[]).unwrap_err().code(),
        "empty_segment"
    );
}

#[test]
fn segment_then_reassemble() {
    for len in [0usize, 1, 249, 250, 498, 2048] {
        let fragment: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let (segments, next) = segment(&fragment, 60);
        assert_eq!(segments.len(), len.div_ceil(249).max(1));
        assert_eq!(next, (60 + segments.len() as u8) & 0x3F);
        let mut r = Reassembler::default();
        let mut done = None;
        for s in &segments {
            assert!(s.len() <= 250);
            done = r.push(s).unwrap();
        }
        assert_eq!(done.unwrap(), fragment, "{len}");
    }
}
