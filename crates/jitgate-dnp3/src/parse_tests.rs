#![allow(clippy::indexing_slicing, reason = "tests index fixtures they built")]

use super::*;
use crate::control::AnalogValue;

fn req(bytes: &[u8]) -> Result<Request<'_>, Error> {
    parse_request(bytes, &Limits::default())
}

fn code(bytes: &[u8]) -> &'static str {
    req(bytes).unwrap_err().code()
}

fn crob(index: &[u8], code: u8) -> Vec<u8> {
    let mut v = index.to_vec();
    v.extend_from_slice(&[code, 1, 0xE8, 0x03, 0, 0, 0, 0, 0, 0, 0]);
    v
}

#[test]
fn read_class_0123() {
    let r = req(&[
        0xC0, 0x01, 60, 2, 0x06, 60, 3, 0x06, 60, 4, 0x06, 60, 1, 0x06,
    ])
    .unwrap();
    assert_eq!(r.function, FunctionCode::Read);
    let kinds: Vec<PointKind> = r.headers.iter().map(|h| h.kind).collect();
    assert_eq!(
        kinds,
        [
            PointKind::Class(1),
            PointKind::Class(2),
            PointKind::Class(3),
            PointKind::Class(0)
        ]
    );
    assert!(r
        .headers
        .iter()
        .all(|h| h.indexes == Indexes::All && h.qualifier == 0x06));
}

#[test]
fn read_ranges_and_lists() {
    // g30v0 0x01 0-65535, g1v2 0x00 3-7, g20v1 0x17 [1, 9], g10v2 0x28 [300].
    let r = req(&[
        0xC2, 0x01, 30, 0, 0x01, 0, 0, 0xFF, 0xFF, 1, 2, 0x00, 3, 7, 20, 1, 0x17, 2, 1, 9, 10, 2,
        0x28, 1, 0, 0x2C, 0x01,
    ])
    .unwrap();
    assert_eq!(r.headers.len(), 4);
    assert_eq!(
        r.headers[0].indexes,
        Indexes::Range {
            start: 0,
            stop: 65535
        }
    );
    assert_eq!(r.headers[0].kind, PointKind::AnalogInput);
    assert_eq!(r.headers[1].indexes, Indexes::Range { start: 3, stop: 7 });
    assert_eq!(r.headers[2].indexes, Indexes::List(vec![1, 9]));
    assert_eq!(r.headers[2].kind, PointKind::Counter);
    assert_eq!(r.headers[3].indexes, Indexes::List(vec![300]));
    assert_eq!(r.headers[3].kind, PointKind::BinaryOutput);
    // 4-byte start-stop is read little endian.
    let r = req(&[0xC0, 0x01, 1, 0, 0x02, 1, 0, 0, 0, 2, 0, 0, 0]).unwrap();
    assert_eq!(r.headers[0].indexes, Indexes::Range { start: 1, stop: 2 });
}

#[test]
fn select_crob_with_index_prefix() {
    let mut b = vec![0xC3, 0x03, 12, 1, 0x28, 2, 0];
    b.extend(crob(&[3, 0], 0x41));
    b.extend(crob(&[4, 0], 0x81));
    let r = req(&b).unwrap();
    assert_eq!(r.function, FunctionCode::Select);
    let h = &r.headers[0];
    assert_eq!((h.kind, h.role), (PointKind::BinaryOutput, Role::Command));
    assert_eq!(h.indexes, Indexes::List(vec![3, 4]));
    assert_eq!(h.commands.len(), 2);
    let Command::Crob { index, crob } = h.commands[1] else {
        panic!()
    };
    assert_eq!(index, Some(4));
    assert_eq!((crob.code, crob.on_ms), (0x81, 1000));
    assert_eq!(r.objects, &b[2..]);
}

#[test]
fn crob_with_start_stop_gets_implied_indexes() {
    let mut b = vec![0xC0, 0x05, 12, 1, 0x00, 5, 6];
    b.extend(crob(&[], 0x03));
    b.extend(crob(&[], 0x04));
    let r = req(&b).unwrap();
    let idx: Vec<Option<u32>> = r.headers[0].commands.iter().map(Command::index).collect();
    assert_eq!(idx, [Some(5), Some(6)]);
}

#[test]
fn analog_output_blocks() {
    let r = req(&[0xC0, 0x05, 41, 2, 0x17, 1, 7, 0x10, 0x00, 0]).unwrap();
    let Command::Analog { index, value, .. } = r.headers[0].commands[0] else {
        panic!()
    };
    assert_eq!((index, value), (Some(7), AnalogValue::I16(16)));
    let r = req(&[0xC0, 0x06, 41, 3, 0x28, 1, 0, 2, 0, 0, 0, 0xC0, 0x3F, 0]).unwrap();
    let Command::Analog { value, .. } = r.headers[0].commands[0] else {
        panic!()
    };
    assert_eq!(value, AnalogValue::F32(1.5));
}

#[test]
fn writes_carry_data() {
    // Clear the restart IIN: g80v1 0x00 7-7, one byte of packed bits.
    let r = req(&[0xC0, 0x02, 80, 1, 0x00, 7, 7, 0x00]).unwrap();
    assert_eq!(r.headers[0].indexes, Indexes::Range { start: 7, stop: 7 });
    // Time: g50v1 0x07 count 1, six bytes.
    let r = req(&[0xC0, 0x02, 50, 1, 0x07, 1, 1, 2, 3, 4, 5, 6]).unwrap();
    assert_eq!(r.headers[0].kind, PointKind::Time);
    assert_eq!(r.headers[0].indexes, Indexes::Count(1));
    assert_eq!(
        code(&[0xC0, 0x02, 50, 1, 0x07, 1, 1, 2, 3, 4, 5]),
        "count_mismatch"
    );
    assert_eq!(
        code(&[0xC0, 0x02, 80, 1, 0x00, 0, 15, 0x00]),
        "count_mismatch"
    );
}

#[test]
fn freeze_at_time_has_a_time_then_counters_without_data() {
    let r = req(&[
        0xC0, 0x0B, 50, 2, 0x07, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 0, 0x06,
    ])
    .unwrap();
    assert_eq!(r.headers.len(), 2);
    assert_eq!(r.headers[1].kind, PointKind::Counter);
    let r = req(&[0xC0, 0x07, 20, 0, 0x00, 0, 9]).unwrap();
    assert_eq!(r.headers[0].indexes, Indexes::Range { start: 0, stop: 9 });
}

#[test]
fn file_objects_use_size_prefixes() {
    let r = req(&[0xC0, 0x1E, 70, 4, 0x5B, 1, 3, 0, 0xAA, 0xBB, 0xCC]).unwrap();
    assert_eq!(r.headers[0].indexes, Indexes::Count(1));
    assert_eq!(
        code(&[0xC0, 0x1E, 70, 4, 0x5B, 1, 4, 0, 0xAA, 0xBB, 0xCC]),
        "count_mismatch"
    );
    assert_eq!(code(&[0xC0, 0x1E, 70, 4, 0x07, 1, 0xAA]), "bad_qualifier");
    // Reading a block of an open file: READ of g70v5 with the handle and block number
    // (as in the public capture zeek dnp3_file_read.pcap).
    let read = [
        0xCF, 0x01, 70, 5, 0x5B, 1, 8, 0, 0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0,
    ];
    let r = req(&read).unwrap();
    assert_eq!((r.headers[0].group, r.headers[0].variation), (70, 5));
    assert_eq!(r.headers[0].indexes, Indexes::Count(1));
    assert_eq!(code(&read[..read.len() - 1]), "count_mismatch");
}

#[test]
fn range_stop_before_start_is_an_error() {
    let err = req(&[0xC0, 0x01, 30, 1, 0x00, 9, 3]).unwrap_err();
    assert_eq!(err.code(), "range_overflow");
    assert!(
        err.to_string().contains("stop 3 is before start 9"),
        "{err}"
    );
}

#[test]
fn points_per_header_limit() {
    // 4-byte range of 65537 points.
    assert_eq!(
        code(&[0xC0, 0x01, 30, 1, 0x02, 0, 0, 0, 0, 0, 0, 1, 0]),
        "too_many_points"
    );
    assert!(req(&[0xC0, 0x01, 30, 1, 0x02, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0]).is_ok());
    assert_eq!(
        code(&[0xC0, 0x01, 2, 0, 0x09, 0, 0, 2, 0]),
        "too_many_points"
    );
    let tight = Limits {
        max_points: 10,
        ..Limits::default()
    };
    let err = parse_request(&[0xC0, 0x01, 30, 1, 0x00, 0, 10], &tight).unwrap_err();
    assert_eq!(err.code(), "too_many_points");
}

#[test]
fn objects_per_fragment_limit() {
    let mut b = vec![0xC0, 0x01];
    for _ in 0..257 {
        b.extend_from_slice(&[60, 1, 0x06]);
    }
    assert_eq!(code(&b), "too_many_objects");
    assert_eq!(req(&b[..2 + 256 * 3]).unwrap().headers.len(), 256);
}

#[test]
fn index_lists_must_be_all_there() {
    // Count says 5 indexes, 2 present.
    let err = req(&[0xC0, 0x01, 1, 2, 0x17, 5, 1, 2]).unwrap_err();
    assert_eq!(err.code(), "count_mismatch");
    assert!(err.to_string().contains("5 bytes"), "{err}");
    // CROB list: count 2, one object present.
    let mut b = vec![0xC0, 0x03, 12, 1, 0x17, 2];
    b.extend(crob(&[3], 0x41));
    assert_eq!(code(&b), "count_mismatch");
    // A huge count with nothing behind it is refused without allocating.
    assert_eq!(
        code(&[0xC0, 0x03, 12, 1, 0x28, 0xFF, 0xFF]),
        "count_mismatch"
    );
}

#[test]
fn truncated_headers() {
    assert_eq!(code(&[0xC0, 0x01, 60]), "truncated");
    assert_eq!(code(&[0xC0, 0x01, 60, 1]), "truncated");
    assert_eq!(code(&[0xC0, 0x01, 30, 1, 0x01, 0]), "truncated");
    assert_eq!(code(&[0xC0, 0x01, 30, 1, 0x08, 1]), "truncated");
    assert_eq!(code(&[0xC0]), "truncated");
}

#[test]
fn unknown_objects_are_answerable() {
    let err = req(&[0xC0, 0x01, 120, 1, 0x06]).unwrap_err();
    assert_eq!(err.code(), "unknown_object");
    assert_eq!(
        err.refusal_iin2(),
        Some(crate::header::iin2::OBJECT_UNKNOWN)
    );
    // Variation 0 cannot carry values.
    assert_eq!(code(&[0xC0, 0x02, 30, 0, 0x00, 0, 0]), "unknown_object");
    // Pattern control block: not understood, so not guessed at.
    assert_eq!(code(&[0xC0, 0x03, 12, 2, 0x07, 1]), "unknown_object");
}

#[test]
fn qualifier_misuse_is_malformed() {
    assert_eq!(code(&[0xC0, 0x01, 30, 1, 0x03, 0, 0]), "bad_qualifier");
    assert_eq!(code(&[0xC0, 0x01, 30, 1, 0x86]), "bad_qualifier");
    // All-objects where values must follow.
    assert_eq!(code(&[0xC0, 0x05, 12, 1, 0x06]), "bad_qualifier");
    // Packed bits with an index prefix.
    assert_eq!(code(&[0xC0, 0x02, 80, 1, 0x17, 1, 7, 0]), "bad_qualifier");
    // A size prefix on a fixed-size object.
    assert_eq!(code(&[0xC0, 0x05, 12, 1, 0x5B, 1, 11, 0]), "bad_qualifier");
    // A size prefix in a read.
    assert_eq!(code(&[0xC0, 0x01, 30, 1, 0x5B, 1]), "bad_qualifier");
}

#[test]
fn function_codes() {
    let err = req(&[0xC0, 0x22]).unwrap_err();
    assert_eq!(err.code(), "unknown_function");
    assert_eq!(
        err.refusal_iin2(),
        Some(crate::header::iin2::NO_FUNC_CODE_SUPPORT)
    );
    assert_eq!(code(&[0xC0, 0x81, 0, 0]), "not_a_request");
    assert_eq!(code(&[0xC0, 0x00, 60, 1, 0x06]), "unexpected_objects");
    let r = req(&[0xD5, 0x00]).unwrap();
    assert_eq!(r.function, FunctionCode::Confirm);
    assert!(r.control.uns);
    assert!(req(&[0xC1, 0x0D]).unwrap().headers.is_empty());
}

#[test]
fn fragment_size_limit() {
    let big = vec![0u8; 2049];
    assert_eq!(code(&big), "fragment_too_large");
}

#[test]
fn responses_walk_object_data() {
    // g30v1 0x00 0-1 (two 5-byte objects), g1v1 0x00 0-9 (2 bytes of bits), g2v2 0x28 1 event.
    let b = [
        0xC4, 0x81, 0x80, 0x00, 30, 1, 0x00, 0, 1, 1, 10, 0, 0, 0, 1, 20, 0, 0, 0, 1, 1, 0x00, 0,
        9, 0xFF, 0x03, 2, 2, 0x28, 1, 0, 5, 0, 0x81, 1, 2, 3, 4, 5, 6,
    ];
    let r = parse_response(&b, &Limits::default()).unwrap();
    assert_eq!(r.iin.iin1, 0x80);
    assert_eq!(r.headers.len(), 3);
    assert_eq!(r.headers[2].indexes, Indexes::List(vec![5]));
    assert_eq!(
        parse_response(&b[..b.len() - 1], &Limits::default())
            .unwrap_err()
            .code(),
        "count_mismatch"
    );
    // Device attributes: g0v242 0x00 0-0, type 1 (string), 3 bytes.
    let b = [0xC0, 0x81, 0, 0, 0, 242, 0x00, 0, 0, 1, 3, b'a', b'b', b'c'];
    assert!(parse_response(&b, &Limits::default()).is_ok());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_fragments_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_request(&bytes, &Limits::default());
            let _ = parse_response(&bytes, &Limits::default());
        }

        #[test]
        fn index_lists_round_trip(indexes in proptest::collection::vec(any::<u16>(), 0..100)) {
            let mut b = vec![0xC0, 0x01, 30, 0, 0x28];
            b.extend_from_slice(&(indexes.len() as u16).to_le_bytes());
            for i in &indexes {
                b.extend_from_slice(&i.to_le_bytes());
            }
            let r = parse_request(&b, &Limits::default()).unwrap();
            let expected: Vec<u32> = indexes.iter().map(|&i| u32::from(i)).collect();
            prop_assert_eq!(&r.headers[0].indexes, &Indexes::List(expected));
        }
    }
}
