#![allow(clippy::indexing_slicing, reason = "tests index fixtures they built")]

use super::*;

fn header(dir: bool, function: u8, destination: u16, source: u16) -> LinkHeader {
    LinkHeader {
        control: Control {
            dir,
            prm: true,
            fcb: false,
            fcv: false,
            function,
        },
        destination,
        source,
    }
}

fn frame(user_data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(
        &header(true, function::UNCONFIRMED_USER_DATA, 10, 1),
        user_data,
        &mut out,
    )
    .unwrap();
    out
}

#[test]
fn reset_link_states_matches_the_published_bytes() {
    let mut out = Vec::new();
    encode_frame(
        &header(true, function::RESET_LINK_STATES, 1, 1024),
        &[],
        &mut out,
    )
    .unwrap();
    assert_eq!(
        out,
        [0x05, 0x64, 0x05, 0xC0, 0x01, 0x00, 0x00, 0x04, 0xE9, 0x21]
    );
    let (f, used) = parse_frame(&out).unwrap().unwrap();
    assert_eq!(used, 10);
    assert_eq!(f.header.destination, 1);
    assert_eq!(f.header.source, 1024);
    assert!(f.header.control.dir && f.header.control.prm);
    assert!(!f.header.carries_user_data());
    assert!(f.user_data().is_empty());
}

#[test]
fn control_byte_round_trips() {
    for b in 0..=255u8 {
        assert_eq!(Control::from_byte(b).to_byte(), b);
    }
    let c = Control::from_byte(0x73);
    assert!(!c.dir && c.prm && c.fcb && c.fcv);
    assert_eq!(c.function, 3);
}

#[test]
fn user_data_is_split_into_crc_blocks() {
    for len in [1usize, 15, 16, 17, 32, 33, 249, 250] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let bytes = frame(&data);
        assert_eq!(bytes.len(), wire_len(5 + len as u8), "{len}");
        assert_eq!(frame_len(&bytes).unwrap(), Some(bytes.len()));
        let (f, used) = parse_frame(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(f.user_data(), &data[..]);
        assert!(f.header.carries_user_data());
    }
    assert_eq!(wire_len(255), MAX_FRAME_LEN);
    assert_eq!(MAX_FRAME_LEN, 292);
}

#[test]
fn every_prefix_asks_for_more() {
    let bytes = frame(&[
        0xC0, 0xC0, 0x01, 0x3C, 0x02, 0x06, 0x3C, 0x03, 0x06, 0x3C, 0x04, 0x06, 0x3C, 0x01, 0x06,
        0, 0, 0,
    ]);
    for n in 0..bytes.len() {
        assert_eq!(parse_frame(&bytes[..n]).unwrap(), None, "prefix of {n}");
        let len = frame_len(&bytes[..n]).unwrap();
        assert_eq!(
            len,
            (n >= HEADER_LEN).then_some(bytes.len()),
            "prefix of {n}"
        );
    }
}

#[test]
fn consumes_only_its_own_frame() {
    let mut bytes = frame(&[0xC0, 0xC0, 0x01, 0x3C, 0x01, 0x06]);
    let first = bytes.len();
    bytes.extend(frame(&[0xC1, 0xC1, 0x01, 0x3C, 0x02, 0x06]));
    let (_, used) = parse_frame(&bytes).unwrap().unwrap();
    assert_eq!(used, first);
    let (f, used2) = parse_frame(&bytes[used..]).unwrap().unwrap();
    assert_eq!(f.user_data()[0], 0xC1);
    assert_eq!(used + used2, bytes.len());
}

#[test]
fn bad_start_is_reported_at_the_first_wrong_byte() {
    let err = frame_len(&[0x06]).unwrap_err();
    assert_eq!(
        err,
        Error::BadStart {
            offset: 0,
            found: 6
        }
    );
    assert_eq!(err.code(), "bad_start");
    assert_eq!(frame_len(&[0x05, 0x65]).unwrap_err().code(), "bad_start");
    assert!(frame_len(&[0x05, 0x65])
        .unwrap_err()
        .to_string()
        .contains("05 64"));
    assert_eq!(frame_len(&[0x05]).unwrap(), None);
}

#[test]
fn length_below_five_is_refused_before_the_crc() {
    for bad in 0..5u8 {
        let err = frame_len(&[0x05, 0x64, bad]).unwrap_err();
        assert_eq!(err.code(), "bad_length", "{bad}");
    }
    assert_eq!(frame_len(&[0x05, 0x64, 5]).unwrap(), None);
}

#[test]
fn header_crc_is_checked() {
    let mut bytes = frame(&[0xC0, 0xC0, 0x01, 0x3C, 0x01, 0x06]);
    bytes[8] ^= 0x01;
    let err = frame_len(&bytes).unwrap_err();
    assert_eq!(err.code(), "bad_header_crc");
    // A corrupted length must not be trusted to find the frame's end: the CRC fails first.
    let mut bytes = frame(&[0xC0, 0xC0, 0x01, 0x3C, 0x01, 0x06]);
    bytes[2] = 0xFF;
    assert_eq!(parse_frame(&bytes).unwrap_err().code(), "bad_header_crc");
}

#[test]
fn every_block_crc_is_checked() {
    let data: Vec<u8> = (0..40u8).collect();
    let clean = frame(&data);
    // Blocks of 16 + 2, 16 + 2, 8 + 2 after the header.
    for (block, crc_at) in [(0usize, 26usize), (1, 44), (2, 54)] {
        let mut bytes = clean.clone();
        bytes[crc_at] ^= 0x80;
        let err = parse_frame(&bytes).unwrap_err();
        assert_eq!(err.code(), "bad_block_crc");
        assert!(
            matches!(err, Error::BadBlockCrc { block: b, .. } if b == block),
            "{err}"
        );
        // A flipped data bit is caught the same way.
        let mut bytes = clean.clone();
        bytes[crc_at - 1] ^= 0x01;
        assert_eq!(parse_frame(&bytes).unwrap_err().code(), "bad_block_crc");
    }
}

#[test]
fn encoder_refuses_more_than_250_bytes() {
    let mut out = Vec::new();
    let err = encode_frame(&header(true, 4, 1, 2), &[0; 251], &mut out).unwrap_err();
    assert_eq!(err.code(), "user_data_too_long");
    assert!(out.is_empty());
}

#[test]
fn reply_swaps_addresses() {
    let h = header(true, 4, 10, 1);
    let r = h.reply(Control::from_byte(0x44));
    assert_eq!((r.destination, r.source), (1, 10));
    assert!(!r.control.dir);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encode_then_parse_is_identity(
            data in proptest::collection::vec(any::<u8>(), 0..=250),
            control in any::<u8>(),
            destination in any::<u16>(),
            source in any::<u16>(),
        ) {
            let h = LinkHeader { control: Control::from_byte(control), destination, source };
            let mut out = Vec::new();
            encode_frame(&h, &data, &mut out).unwrap();
            prop_assert!(out.len() <= MAX_FRAME_LEN);
            let (f, used) = parse_frame(&out).unwrap().unwrap();
            prop_assert_eq!(used, out.len());
            prop_assert_eq!(f.header, h);
            prop_assert_eq!(f.user_data(), &data[..]);
        }

        #[test]
        fn arbitrary_bytes_never_claim_more_than_a_frame(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(Some(n)) = frame_len(&bytes) {
                prop_assert!((HEADER_LEN..=MAX_FRAME_LEN).contains(&n));
            }
            if let Ok(Some((f, n))) = parse_frame(&bytes) {
                prop_assert!(n <= bytes.len());
                prop_assert!(f.user_data().len() <= MAX_USER_DATA);
            }
        }

        #[test]
        fn any_single_bit_flip_is_detected(
            data in proptest::collection::vec(any::<u8>(), 1..=250),
            bit in any::<proptest::sample::Index>(),
        ) {
            let h = LinkHeader { control: Control::from_byte(0xC4), destination: 4, source: 3 };
            let mut out = Vec::new();
            encode_frame(&h, &data, &mut out).unwrap();
            let i = bit.index(out.len() * 8);
            out[i / 8] ^= 1 << (i % 8);
            // Either an error, or (a flipped length) a claim of more bytes than there are;
            // never a clean parse of different data.
            match parse_frame(&out) {
                Err(_) | Ok(None) => {}
                Ok(Some((f, _))) => prop_assert!(false, "flip at bit {i} parsed as {f:?}"),
            }
        }
    }
}
