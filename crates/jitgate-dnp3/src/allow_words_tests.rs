#![allow(clippy::indexing_slicing, reason = "tests index fixtures they built")]

use super::*;
use crate::allow::SessionState;
use crate::parse::{parse_request, Limits};
use jitgate_core::scope::ScopeItem;

fn item(op: Dnp3Op, target: Dnp3Target, start: u16, end: u16) -> ScopeItem {
    ScopeItem::Dnp3 {
        asset: "rtu-12".into(),
        op,
        target,
        start,
        end,
    }
}

fn device(op: Dnp3Op) -> ScopeItem {
    item(op, Dnp3Target::Device, 0, 0)
}

fn allow(items: &[ScopeItem]) -> AllowList {
    AllowList::compile("rtu-12", items)
}

/// Decide `bytes` under `allow`; `Ok(())` or the refusal's IIN2.
fn run(allow: &AllowList, bytes: &[u8]) -> Result<(), u8> {
    let req = parse_request(bytes, &Limits::default()).unwrap();
    allow
        .decide(&mut SessionState::default(), &req)
        .map_err(|r| r.iin2)
}

const OK: Result<(), u8> = Ok(());
const NO_FUNC: Result<(), u8> = Err(iin2::NO_FUNC_CODE_SUPPORT);
const UNKNOWN: Result<(), u8> = Err(iin2::OBJECT_UNKNOWN);
const PARAM: Result<(), u8> = Err(iin2::PARAMETER_ERROR);

fn read_only() -> AllowList {
    allow(&[item(Dnp3Op::Read, Dnp3Target::Class, 0, 3)])
}

/// Each function is allowed only when its word is granted, and refused with IIN2.0
/// otherwise (here: under a grant that only reads).
#[test]
fn each_function_needs_its_word() {
    use Dnp3Op::*;
    let time = [0xC1, 0x02, 50, 1, 0x07, 1, 1, 2, 3, 4, 5, 6];
    let cases: [(&[u8], ScopeItem); 14] = [
        (&time, device(TimeSync)),
        (&[0xC1, 0x17], device(TimeSync)),
        (&[0xC1, 0x18], device(TimeSync)),
        (&[0xC5, 0x0D], device(Restart)),
        (&[0xC6, 0x0E], device(Restart)),
        (
            &[0xC3, 0x14, 60, 2, 0x06],
            item(Unsolicited, Dnp3Target::Class, 1, 1),
        ),
        (
            &[0xC3, 0x15, 60, 2, 0x06],
            item(Unsolicited, Dnp3Target::Class, 1, 1),
        ),
        (
            &[0xC1, 0x07, 20, 0, 0x00, 0, 7],
            item(Freeze, Dnp3Target::Counter, 0, 7),
        ),
        (
            &[0xC1, 0x0A, 20, 0, 0x00, 0, 7],
            item(Freeze, Dnp3Target::Counter, 0, 7),
        ),
        (
            &[0xC1, 0x16, 60, 2, 0x06, 30, 0, 0x00, 0, 3],
            item(AssignClass, Dnp3Target::AnalogInput, 0, 3),
        ),
        (&[0xC1, 0x1B, 70, 3, 0x5B, 1, 2, 0, 0, 0], device(File)),
        (&[0xC1, 0x13], device(Configure)),
        (&[0xC1, 0x0F], device(Configure)),
        (&[0xC1, 0x02, 34, 1, 0x00, 0, 0, 5, 0], device(Configure)),
    ];
    for (bytes, word) in cases {
        assert_eq!(
            run(&allow(std::slice::from_ref(&word)), bytes),
            OK,
            "{word:?} {bytes:02x?}"
        );
        let refused = run(&read_only(), bytes);
        assert_eq!(refused, NO_FUNC, "{word:?} {bytes:02x?}");
    }
}

#[test]
fn the_restart_indication_is_cleared_under_any_grant_and_nothing_else_rides_along() {
    let ro = read_only();
    assert_eq!(run(&ro, &[0xC1, 0x02, 80, 1, 0x00, 7, 7, 0x00]), OK);
    assert_eq!(run(&ro, &[0xC1, 0x02, 80, 1, 0x01, 7, 0, 7, 0, 0x00]), OK);
    // Setting it, or touching another indication, is not clearing it.
    assert_eq!(run(&ro, &[0xC1, 0x02, 80, 1, 0x00, 7, 7, 0x01]), NO_FUNC);
    assert_eq!(run(&ro, &[0xC1, 0x02, 80, 1, 0x00, 4, 4, 0x00]), NO_FUNC);
    // The clear with a time write appended needs time-sync.
    let both = [
        0xC1, 0x02, 80, 1, 0x00, 7, 7, 0x00, 50, 1, 0x07, 1, 1, 2, 3, 4, 5, 6,
    ];
    assert_eq!(run(&ro, &both), NO_FUNC);
    let time = allow(&[device(Dnp3Op::TimeSync)]);
    // Under time-sync, a g80 header that is not exactly the clear is a parameter error.
    assert_eq!(run(&time, &both), PARAM);
    assert_eq!(run(&time, &[0xC1, 0x02, 80, 1, 0x00, 7, 7, 0x00]), OK);
    // A grant for another asset gives nothing here, not even the clear.
    let other = AllowList::compile(
        "rtu-13",
        &[ScopeItem::Dnp3 {
            asset: "rtu-12".into(),
            op: Dnp3Op::Read,
            target: Dnp3Target::Class,
            start: 0,
            end: 0,
        }],
    );
    assert!(other.is_empty());
    assert_eq!(run(&other, &[0xC1, 0x02, 80, 1, 0x00, 7, 7, 0x00]), NO_FUNC);
}

#[test]
fn time_sync_writes_one_time_and_nothing_else() {
    let a = allow(&[device(Dnp3Op::TimeSync)]);
    // g50v3 (last recorded time) after RECORD_CURRENT_TIME.
    assert_eq!(run(&a, &[0xC1, 0x02, 50, 3, 0x07, 1, 1, 2, 3, 4, 5, 6]), OK);
    // Two times in one header.
    let two = [
        0xC1, 0x02, 50, 1, 0x07, 2, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6,
    ];
    assert_eq!(run(&a, &two), PARAM);
    // A deadband write is configure, not time-sync.
    assert_eq!(run(&a, &[0xC1, 0x02, 34, 1, 0x00, 0, 0, 5, 0]), UNKNOWN);
    // Writing binary outputs is no word at all.
    assert_eq!(run(&a, &[0xC1, 0x02, 10, 1, 0x00, 0, 0, 1]), UNKNOWN);
    // Reading the time needs time-sync; reading points still needs read.
    assert_eq!(run(&a, &[0xC1, 0x01, 50, 1, 0x07, 1]), OK);
    assert_eq!(run(&read_only(), &[0xC1, 0x01, 50, 1, 0x07, 1]), UNKNOWN);
    assert_eq!(run(&a, &[0xC1, 0x01, 60, 1, 0x06]), UNKNOWN);
    // Restarts and delay measurements carry no objects.
    let r = allow(&[device(Dnp3Op::Restart)]);
    assert_eq!(run(&r, &[0xC1, 0x0D, 60, 1, 0x06]), UNKNOWN);
}

#[test]
fn unsolicited_only_for_the_granted_classes() {
    let a = allow(&[item(Dnp3Op::Unsolicited, Dnp3Target::Class, 1, 2)]);
    assert_eq!(run(&a, &[0xC1, 0x14, 60, 2, 0x06, 60, 3, 0x06]), OK);
    assert_eq!(run(&a, &[0xC1, 0x14, 60, 4, 0x06]), PARAM);
    assert_eq!(run(&a, &[0xC1, 0x15, 60, 1, 0x06]), PARAM);
    assert_eq!(run(&a, &[0xC1, 0x14, 30, 0, 0x06]), UNKNOWN);
    assert_eq!(run(&a, &[0xC1, 0x14]), PARAM);
    // Enabling unsolicited reporting is not reading.
    assert_eq!(run(&a, &[0xC1, 0x01, 60, 2, 0x06]), NO_FUNC);
}

#[test]
fn freezes_only_on_the_granted_counters() {
    let a = allow(&[item(Dnp3Op::Freeze, Dnp3Target::Counter, 0, 7)]);
    assert_eq!(run(&a, &[0xC1, 0x07, 20, 0, 0x17, 2, 1, 7]), OK);
    assert_eq!(run(&a, &[0xC1, 0x08, 20, 0, 0x00, 0, 8]), PARAM);
    // "All counters" needs them all.
    assert_eq!(run(&a, &[0xC1, 0x09, 20, 0, 0x06]), PARAM);
    let all = allow(&[item(Dnp3Op::Freeze, Dnp3Target::Counter, 0, 65535)]);
    assert_eq!(run(&all, &[0xC1, 0x09, 20, 0, 0x06]), OK);
    // FREEZE_AT_TIME: the time and interval object, then the counters.
    let at = [
        0xC1, 0x0B, 50, 2, 0x07, 1, 0, 0, 0, 0, 0, 0, 0x10, 0x27, 0, 0, 20, 0, 0x00, 0, 3,
    ];
    assert_eq!(run(&a, &at), OK);
    // The time object only goes with FREEZE_AT_TIME; analog inputs are never frozen here.
    assert_eq!(run(&a, &[0xC1, 0x07, 50, 2, 0x07, 1]), UNKNOWN);
    assert_eq!(run(&a, &[0xC1, 0x07, 30, 0, 0x00, 0, 1]), UNKNOWN);
}

#[test]
fn assign_class_only_for_the_granted_points() {
    let a = allow(&[item(Dnp3Op::AssignClass, Dnp3Target::AnalogInput, 0, 3)]);
    assert_eq!(
        run(
            &a,
            &[0xC1, 0x16, 60, 3, 0x06, 30, 0, 0x00, 0, 3, 60, 1, 0x06]
        ),
        OK
    );
    assert_eq!(
        run(&a, &[0xC1, 0x16, 60, 3, 0x06, 30, 0, 0x00, 0, 4]),
        PARAM
    );
    assert_eq!(
        run(&a, &[0xC1, 0x16, 60, 3, 0x06, 1, 0, 0x00, 0, 1]),
        UNKNOWN
    );
    assert_eq!(run(&a, &[0xC1, 0x16, 60, 3, 0x06]), PARAM);
}

#[test]
fn file_and_configure_objects() {
    let f = allow(&[device(Dnp3Op::File)]);
    assert_eq!(run(&f, &[0xC1, 0x1E, 70, 4, 0x5B, 1, 1, 0, 0]), OK);
    assert_eq!(run(&f, &[0xC1, 0x1E, 60, 1, 0x06]), UNKNOWN);
    assert_eq!(run(&f, &[0xC1, 0x02, 70, 5, 0x5B, 1, 2, 0, 0, 0]), OK);
    let c = allow(&[device(Dnp3Op::Configure)]);
    assert_eq!(run(&c, &[0xC1, 0x01, 34, 0, 0x06]), OK);
    assert_eq!(run(&c, &[0xC1, 0x01, 0, 254, 0x06]), OK);
    assert_eq!(run(&c, &[0xC1, 0x12, 60, 1, 0x06]), UNKNOWN);
    assert_eq!(run(&c, &[0xC1, 0x02, 70, 5, 0x5B, 1, 2, 0, 0, 0]), UNKNOWN);
}

#[test]
fn reasons_name_the_missing_word_and_what_is_allowed() {
    let a = allow(&[
        item(Dnp3Op::Read, Dnp3Target::Class, 0, 0),
        device(Dnp3Op::Restart),
        item(Dnp3Op::Unsolicited, Dnp3Target::Class, 2, 3),
        item(Dnp3Op::Freeze, Dnp3Target::Counter, 0, 7),
        item(Dnp3Op::AssignClass, Dnp3Target::BinaryInput, 4, 4),
    ]);
    assert_eq!(
        a.describe(),
        "read class 0; restart; unsolicited class 2,3; freeze counter 0-7; assign-class binary-input 4-4"
    );
    let req = parse_request(&[0xC1, 0x17], &Limits::default()).unwrap();
    let r = a.decide(&mut SessionState::default(), &req).unwrap_err();
    assert!(
        r.reason.contains("DELAY_MEASURE") && r.reason.contains("no time-sync rule"),
        "{}",
        r.reason
    );
    let req = parse_request(&[0xC1, 0x20], &Limits::default()).unwrap();
    let r = a.decide(&mut SessionState::default(), &req).unwrap_err();
    assert!(
        r.reason.contains("no word for this function"),
        "{}",
        r.reason
    );
}

/// Requests exactly as dnp3py 0.6.0's master builds them.
#[test]
fn dnp3py_requests_under_their_words() {
    let a = allow(&[
        item(Dnp3Op::Unsolicited, Dnp3Target::Class, 1, 1),
        device(Dnp3Op::Restart),
        device(Dnp3Op::TimeSync),
    ]);
    let session: [(&[u8], Result<(), u8>); 5] = [
        (&[0xC3, 0x14, 0x3C, 0x02, 0x06], OK),
        // Disable all three classes: 2 and 3 are not granted.
        (
            &[
                0xC4, 0x15, 0x3C, 0x02, 0x06, 0x3C, 0x03, 0x06, 0x3C, 0x04, 0x06,
            ],
            PARAM,
        ),
        (&[0xC5, 0x0D], OK),
        (&[0xC6, 0x0E], OK),
        (&[0xC7, 0x17], OK),
    ];
    for (bytes, expected) in session {
        assert_eq!(run(&a, bytes), expected, "{bytes:02x?}");
    }
}
