#![allow(clippy::indexing_slicing, reason = "tests index fixtures they built")]

use super::*;
use crate::inspect::{inspect, Verdict};
use crate::parse::{parse_request, Limits};
use jitgate_core::scope::{Dnp3Op, Dnp3Target};

fn item(op: Dnp3Op, target: Dnp3Target, start: u16, end: u16) -> ScopeItem {
    ScopeItem::Dnp3 {
        asset: "rtu-12".into(),
        op,
        target,
        start,
        end,
    }
}

/// `read class 0,1`, `read analog-input 0-15`, `read binary-input 0-7,8-9` (adjacent),
/// `operate binary-output 3-5`, `operate analog-output 0-1`, and another asset's grant.
fn grant() -> AllowList {
    use Dnp3Op::{Operate, Read};
    use Dnp3Target::*;
    AllowList::compile(
        "rtu-12",
        &[
            item(Read, Class, 0, 1),
            item(Read, AnalogInput, 0, 15),
            item(Read, BinaryInput, 0, 7),
            item(Read, BinaryInput, 8, 9),
            item(Operate, BinaryOutput, 3, 5),
            item(Operate, AnalogOutput, 0, 1),
            ScopeItem::Dnp3 {
                asset: "rtu-13".into(),
                op: Read,
                target: Counter,
                start: 0,
                end: 65535,
            },
        ],
    )
}

fn crob(seq: u8, function: u8, indexes: &[u8], code: u8) -> Vec<u8> {
    let mut v = vec![0xC0 | seq, function, 12, 1, 0x17, indexes.len() as u8];
    for &i in indexes {
        v.extend([i, code, 1, 0xE8, 0x03, 0, 0, 0, 0, 0, 0, 0]);
    }
    v
}

/// Decide `bytes` with `state`; `Ok(())` or the refusal's IIN2.
fn run(allow: &AllowList, state: &mut SessionState, bytes: &[u8]) -> Result<(), u8> {
    let req = parse_request(bytes, &Limits::default()).unwrap();
    allow.decide(state, &req).map_err(|r| r.iin2)
}

fn once(bytes: &[u8]) -> Result<(), u8> {
    run(&grant(), &mut SessionState::default(), bytes)
}

const NO_FUNC: Result<(), u8> = Err(iin2::NO_FUNC_CODE_SUPPORT);
const UNKNOWN: Result<(), u8> = Err(iin2::OBJECT_UNKNOWN);
const PARAM: Result<(), u8> = Err(iin2::PARAMETER_ERROR);

#[test]
fn class_reads() {
    assert_eq!(once(&[0xC0, 0x01, 60, 1, 0x06]), Ok(()));
    assert_eq!(once(&[0xC0, 0x01, 60, 2, 0x06, 60, 1, 0x06]), Ok(()));
    assert_eq!(once(&[0xC0, 0x01, 60, 2, 0x07, 5]), Ok(()));
    // Class 2 is not granted; an integrity poll asking for it is refused whole.
    assert_eq!(
        once(&[0xC0, 0x01, 60, 2, 0x06, 60, 3, 0x06, 60, 1, 0x06]),
        PARAM
    );
    // A grant without classes refuses class reads as an unknown object.
    let only_ai = AllowList::compile(
        "rtu-12",
        &[item(Dnp3Op::Read, Dnp3Target::AnalogInput, 0, 3)],
    );
    let r = run(
        &only_ai,
        &mut SessionState::default(),
        &[0xC0, 0x01, 60, 1, 0x06],
    );
    assert_eq!(r, UNKNOWN);
}

#[test]
fn point_reads_by_type_and_range() {
    assert_eq!(once(&[0xC0, 0x01, 30, 0, 0x00, 0, 15]), Ok(()));
    assert_eq!(once(&[0xC0, 0x01, 30, 5, 0x01, 3, 0, 9, 0]), Ok(()));
    // Adjacent granted ranges merge: 5-9 spans 0-7 and 8-9.
    assert_eq!(once(&[0xC0, 0x01, 1, 2, 0x00, 5, 9]), Ok(()));
    assert_eq!(once(&[0xC0, 0x01, 1, 2, 0x00, 5, 10]), PARAM);
    // A type the grant does not name for reading.
    assert_eq!(once(&[0xC0, 0x01, 20, 1, 0x00, 0, 0]), UNKNOWN);
    assert_eq!(once(&[0xC0, 0x01, 40, 1, 0x00, 0, 0]), UNKNOWN);
    // Frozen analog inputs are analog inputs.
    assert_eq!(once(&[0xC0, 0x01, 31, 1, 0x00, 0, 15]), Ok(()));
}

#[test]
fn attacker_reads_the_whole_index_space() {
    // Only 0-15 is granted: 0-65535 by 16-bit range, "all", a bare count, 4-byte range.
    assert_eq!(once(&[0xC0, 0x01, 30, 0, 0x01, 0, 0, 0xFF, 0xFF]), PARAM);
    assert_eq!(once(&[0xC0, 0x01, 30, 0, 0x06]), PARAM);
    assert_eq!(once(&[0xC0, 0x01, 30, 0, 0x07, 3]), PARAM);
    assert_eq!(
        once(&[0xC0, 0x01, 30, 1, 0x02, 0, 0, 1, 0, 0, 0, 1, 0]),
        PARAM
    );
    // Events come from any index.
    assert_eq!(once(&[0xC0, 0x01, 32, 0, 0x06]), PARAM);
    let all_ai = AllowList::compile(
        "rtu-12",
        &[item(Dnp3Op::Read, Dnp3Target::AnalogInput, 0, 65535)],
    );
    let r = run(
        &all_ai,
        &mut SessionState::default(),
        &[0xC0, 0x01, 32, 0, 0x06],
    );
    assert_eq!(r, Ok(()));
}

#[test]
fn attacker_hides_one_index_in_a_list() {
    assert_eq!(once(&[0xC0, 0x01, 30, 0, 0x17, 3, 1, 2, 15]), Ok(()));
    assert_eq!(once(&[0xC0, 0x01, 30, 0, 0x17, 3, 1, 16, 2]), PARAM);
    assert_eq!(once(&[0xC0, 0x01, 30, 0, 0x28, 2, 0, 1, 0, 0, 1]), PARAM);
    // A 4-byte index beyond 65535 that would truncate to 0 is not index 0.
    assert_eq!(
        once(&[0xC0, 0x01, 30, 0, 0x39, 1, 0, 0, 0, 0, 0, 1, 0]),
        PARAM
    );
    // A CROB list with one index outside 3-5.
    assert_eq!(once(&crob(0, 0x05, &[3, 4, 5], 0x03)), Ok(()));
    assert_eq!(once(&crob(0, 0x05, &[3, 6, 5], 0x03)), PARAM);
}

#[test]
fn controls_only_on_named_outputs() {
    assert_eq!(once(&crob(0, 0x05, &[3], 0x41)), Ok(()));
    assert_eq!(once(&crob(0, 0x06, &[5], 0x41)), Ok(()));
    assert_eq!(once(&crob(0, 0x05, &[2], 0x41)), PARAM);
    // Analog output block g41v2 index 1 granted, index 2 not.
    assert_eq!(once(&[0xC0, 0x05, 41, 2, 0x17, 1, 1, 0x10, 0, 0]), Ok(()));
    assert_eq!(once(&[0xC0, 0x05, 41, 2, 0x17, 1, 2, 0x10, 0, 0]), PARAM);
    // Operating something that is not a control object.
    assert_eq!(once(&[0xC0, 0x05, 10, 2, 0x00, 3, 3, 0x81]), UNKNOWN);
    // A CROB with no index (bare count) cannot be checked.
    let mut bare = vec![0xC0, 0x05, 12, 1, 0x07, 1];
    bare.extend([0x41, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(once(&bare), PARAM);
    // A CROB over a start-stop range.
    let mut ranged = vec![0xC0, 0x05, 12, 1, 0x00, 4, 5];
    ranged.extend([
        0x03, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    assert_eq!(once(&ranged), Ok(()));
    ranged[6] = 6;
    ranged.extend([0x03, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(once(&ranged), PARAM);
    // A control request with no objects at all.
    assert_eq!(once(&[0xC0, 0x05]), PARAM);
    // A read-only grant has no control functions.
    let ro = AllowList::compile("rtu-12", &[item(Dnp3Op::Read, Dnp3Target::Class, 0, 3)]);
    assert_eq!(
        run(
            &ro,
            &mut SessionState::default(),
            &crob(0, 0x05, &[3], 0x41)
        ),
        NO_FUNC
    );
    // Reading a CROB is not a read of binary outputs.
    assert_eq!(once(&[0xC0, 0x01, 12, 1, 0x06]), UNKNOWN);
}

#[test]
fn select_before_operate() {
    let allow = grant();
    let mut s = SessionState::default();
    assert_eq!(run(&allow, &mut s, &crob(4, 0x03, &[3], 0x41)), Ok(()));
    assert!(s.has_select());
    assert_eq!(run(&allow, &mut s, &crob(5, 0x04, &[3], 0x41)), Ok(()));
    assert!(!s.has_select());
    // The same OPERATE again: its SELECT was used up.
    assert_eq!(run(&allow, &mut s, &crob(5, 0x04, &[3], 0x41)), PARAM);
    // Sequence wraps from 15 to 0.
    assert_eq!(run(&allow, &mut s, &crob(15, 0x03, &[4], 0x03)), Ok(()));
    assert_eq!(run(&allow, &mut s, &crob(0, 0x04, &[4], 0x03)), Ok(()));
}

#[test]
fn attacker_operates_without_select() {
    assert_eq!(once(&crob(1, 0x04, &[3], 0x41)), PARAM);
}

#[test]
fn attacker_selects_one_index_and_operates_another() {
    let allow = grant();
    let mut s = SessionState::default();
    assert_eq!(run(&allow, &mut s, &crob(1, 0x03, &[3], 0x41)), Ok(()));
    assert_eq!(run(&allow, &mut s, &crob(2, 0x04, &[4], 0x41)), PARAM);
    // Same index, different control code (select close, operate trip).
    assert_eq!(run(&allow, &mut s, &crob(3, 0x03, &[3], 0x41)), Ok(()));
    assert_eq!(run(&allow, &mut s, &crob(4, 0x04, &[3], 0x81)), PARAM);
    // Same objects, wrong sequence.
    assert_eq!(run(&allow, &mut s, &crob(5, 0x03, &[3], 0x41)), Ok(()));
    assert_eq!(run(&allow, &mut s, &crob(7, 0x04, &[3], 0x41)), PARAM);
}

#[test]
fn any_request_between_select_and_operate_cancels_it() {
    let allow = grant();
    let mut s = SessionState::default();
    assert_eq!(run(&allow, &mut s, &crob(1, 0x03, &[3], 0x41)), Ok(()));
    // A confirm does not cancel it.
    assert_eq!(run(&allow, &mut s, &[0xD9, 0x00]), Ok(()));
    assert!(s.has_select());
    assert_eq!(run(&allow, &mut s, &[0xC2, 0x01, 60, 1, 0x06]), Ok(()));
    assert_eq!(run(&allow, &mut s, &crob(2, 0x04, &[3], 0x41)), PARAM);
    // Nor may a refused SELECT leave an earlier one usable.
    assert_eq!(run(&allow, &mut s, &crob(3, 0x03, &[3], 0x41)), Ok(()));
    assert_eq!(run(&allow, &mut s, &crob(4, 0x03, &[9], 0x41)), PARAM);
    assert_eq!(run(&allow, &mut s, &crob(4, 0x04, &[3], 0x41)), PARAM);
}

#[test]
fn other_functions_are_refused() {
    let writes_and_more: &[&[u8]] = &[
        &[0xC0, 0x02, 50, 1, 0x07, 1, 1, 2, 3, 4, 5, 6],
        &[0xC0, 0x0D],
        &[0xC0, 0x0E],
        &[0xC0, 0x17],
        &[0xC0, 0x18],
        &[0xC0, 0x14, 60, 2, 0x06],
        &[0xC0, 0x15, 60, 2, 0x06],
        &[0xC0, 0x07, 20, 0, 0x06],
        &[0xC0, 0x16, 60, 2, 0x06, 1, 0, 0x06],
        &[0xC0, 0x12],
        &[0xC0, 0x13],
        &[0xC0, 0x1B, 70, 3, 0x5B, 1, 2, 0, 0, 0],
    ];
    for bytes in writes_and_more {
        assert_eq!(once(bytes), NO_FUNC, "{bytes:02x?}");
    }
    let req = parse_request(&[0xC0, 0x0D], &Limits::default()).unwrap();
    let r = grant()
        .decide(&mut SessionState::default(), &req)
        .unwrap_err();
    assert!(
        r.reason.contains("COLD_RESTART") && r.reason.contains("no restart rule"),
        "{}",
        r.reason
    );
    // Clearing the restart indication needs no word: any DNP3 grant allows it.
    assert_eq!(once(&[0xC0, 0x02, 80, 1, 0x00, 7, 7, 0]), Ok(()));
}

#[test]
fn other_assets_grant_nothing_here() {
    // rtu-13 has counters 0-65535; rtu-12 none.
    assert_eq!(once(&[0xC0, 0x01, 20, 1, 0x00, 0, 0]), UNKNOWN);
    assert!(AllowList::compile("rtu-14", &[]).is_empty());
    let allow = AllowList::compile("rtu-14", &[]);
    assert_eq!(
        run(
            &allow,
            &mut SessionState::default(),
            &[0xC0, 0x01, 60, 1, 0x06]
        ),
        NO_FUNC
    );
}

#[test]
fn reasons_say_what_was_asked_and_what_is_allowed() {
    let req = parse_request(
        &[0xC0, 0x01, 30, 0, 0x01, 0, 0, 0xFF, 0xFF],
        &Limits::default(),
    )
    .unwrap();
    let r = grant()
        .decide(&mut SessionState::default(), &req)
        .unwrap_err();
    assert!(
        r.reason
            .contains("analog-input 0-65535 (g30v0, qualifier 0x01)"),
        "{}",
        r.reason
    );
    assert!(
        r.reason.contains("read class 0,1; read binary-input 0-9; read analog-input 0-15; operate binary-output 3-5; operate analog-output 0-1"),
        "{}",
        r.reason
    );
}

#[test]
fn inspect_turns_parse_errors_into_verdicts() {
    let allow = grant();
    let mut s = SessionState::default();
    let limits = Limits::default();
    let header = crate::link::LinkHeader {
        control: crate::link::Control::from_byte(0xC4),
        destination: 12,
        source: 1,
    };
    // Unknown object: answered with IIN2.1 and the request's sequence.
    let i = inspect(&allow, &mut s, &[0xC7, 0x01, 120, 1, 0x06], &limits);
    assert!(matches!(&i.verdict, Verdict::Refuse(r) if r.iin2 == iin2::OBJECT_UNKNOWN));
    let frame = i.refusal_frame(&header, 3, 0x80).unwrap();
    assert_eq!(&frame[10..15], &[0xC3, 0xC7, 0x81, 0x80, 0x02]);
    // Unknown object in a function the grant does not allow: the function is the reason.
    let i = inspect(
        &allow,
        &mut s,
        &[0xC7, 0x20, 120, 1, 0x5B, 1, 0, 0],
        &limits,
    );
    assert!(matches!(&i.verdict, Verdict::Refuse(r) if r.iin2 == iin2::NO_FUNC_CODE_SUPPORT));
    // Unknown function: IIN2.0.
    let i = inspect(&allow, &mut s, &[0xC1, 0x40], &limits);
    assert!(matches!(&i.verdict, Verdict::Refuse(r) if r.iin2 == iin2::NO_FUNC_CODE_SUPPORT));
    // Malformed: no answer, close.
    let i = inspect(&allow, &mut s, &[0xC1, 0x01, 30, 1, 0x00, 9, 3], &limits);
    assert!(matches!(&i.verdict, Verdict::Malformed(e) if e.code() == "range_overflow"));
    assert!(i.refusal_frame(&header, 0, 0).is_none());
    // Allowed: no answer from the gateway, the request is there for the log.
    let i = inspect(&allow, &mut s, &[0xC1, 0x01, 60, 1, 0x06], &limits);
    assert!(i.is_allowed() && i.request.is_some());
    assert!(i.refusal_frame(&header, 0, 0).is_none());
    // DIRECT_OPERATE_NR out of scope: refused, but never answered.
    let nr = crob(2, 0x06, &[9], 0x41);
    let i = inspect(&allow, &mut s, &nr, &limits);
    assert!(matches!(i.verdict, Verdict::Refuse(_)) && !i.respond);
    assert!(i.refusal_frame(&header, 0, 0).is_none());
    // A malformed request between SELECT and OPERATE cancels the SELECT.
    assert!(inspect(&allow, &mut s, &crob(3, 0x03, &[3], 0x41), &limits).is_allowed());
    let _ = inspect(&allow, &mut s, &[0xC4, 0x01, 60], &limits);
    assert!(!s.has_select());
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Requests exactly as dnp3py 0.6.0's master builds them (a peer implementation, MIT), in
/// the order it sends them, decided in one session.
#[test]
fn a_dnp3py_master_session() {
    use Dnp3Op::{Operate, Read};
    use Dnp3Target::*;
    let allow = AllowList::compile(
        "rtu-12",
        &[
            item(Read, Class, 0, 3),
            item(Read, AnalogInput, 0, 15),
            item(Operate, BinaryOutput, 3, 4),
            item(Operate, AnalogOutput, 1, 1),
        ],
    );
    let mut s = SessionState::default();
    let session = [
        ("integrity poll", "c0013c02063c03063c04063c0106", Ok(())),
        ("class poll", "c1013c02063c03063c0406", Ok(())),
        ("range poll g30v1 0-15", "c2011e0100000f", Ok(())),
        (
            "select pulse on 3, latch off 4",
            "c3030c011702030101e80300000000000000040401000000000000000000",
            Ok(()),
        ),
        (
            "operate the same",
            "c4040c011702030101e80300000000000000040401000000000000000000",
            Ok(()),
        ),
        (
            "direct operate the same",
            "c5050c011702030101e80300000000000000040401000000000000000000",
            Ok(()),
        ),
        (
            "direct operate g41v1 index 1",
            "c60529011701010c00000000",
            Ok(()),
        ),
        ("enable unsolicited", "c7143c02063c03063c0406", NO_FUNC),
        ("disable unsolicited", "c8153c02063c03063c0406", NO_FUNC),
        ("delay measurement", "c917", NO_FUNC),
        ("confirm of an unsolicited response", "d300", Ok(())),
    ];
    for (what, hex, expected) in session {
        assert_eq!(run(&allow, &mut s, &unhex(hex)), expected, "{what}");
    }
}
