//! Arbitrary bytes as application fragments: parsed as a request and as a response, and
//! inspected as a sequence of requests in one session (each fragment prefixed by its length
//! byte), so select-before-operate state is exercised too.
//!
//! Properties, beyond "never panics":
//! - the limits hold (object headers per fragment, points per header), and a command's
//!   index is one its header names;
//! - only unknown functions and objects are answerable refusals; everything else the
//!   parser refuses is malformed, and `inspect` says so;
//! - an allowed READ touches only granted indexes, checked naively point by point; an
//!   allowed OPERATE follows an allowed SELECT of the same bytes; the only allowed WRITE
//!   clears the restart indication;
//! - a refusal's answer is one valid frame holding a null response with that IIN2 bit.

#![no_main]

use jitgate_core::scope::{Dnp3Op, Dnp3Target, ScopeItem};
use jitgate_dnp3::link::{parse_frame, Control, LinkHeader};
use jitgate_dnp3::{
    inspect, parse_request, parse_response, AllowList, FunctionCode, Indexes, Limits, PointKind,
    Role, SessionState, Verdict,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn item(op: Dnp3Op, target: Dnp3Target, start: u16, end: u16) -> ScopeItem {
    ScopeItem::Dnp3 {
        asset: "rtu-12".into(),
        op,
        target,
        start,
        end,
    }
}

fn grant() -> &'static AllowList {
    static G: OnceLock<AllowList> = OnceLock::new();
    G.get_or_init(|| {
        use Dnp3Op::{Operate, Read};
        use Dnp3Target::*;
        AllowList::compile(
            "rtu-12",
            &[
                item(Read, Class, 0, 1),
                item(Read, AnalogInput, 0, 15),
                item(Read, BinaryInput, 0, 7),
                item(Read, BinaryInput, 9, 9),
                item(Read, Counter, 100, 65535),
                item(Operate, BinaryOutput, 3, 5),
                item(Operate, AnalogOutput, 0, 1),
            ],
        )
    })
}

/// The reference: is `index` of `kind` readable under `grant()`?
fn readable(kind: PointKind, index: u32) -> bool {
    match kind {
        PointKind::Class(c) => c <= 1,
        PointKind::AnalogInput => index <= 15,
        PointKind::BinaryInput => index <= 7 || index == 9,
        PointKind::Counter => (100..=65535).contains(&index),
        _ => false,
    }
}

fn check_parse(data: &[u8], limits: &Limits) {
    match parse_request(data, limits) {
        Ok(req) => {
            assert!(req.headers.len() <= limits.max_objects);
            for h in &req.headers {
                match &h.indexes {
                    Indexes::Range { start, stop } => {
                        assert!(start <= stop && stop - start < limits.max_points)
                    }
                    Indexes::Count(n) => assert!(*n <= limits.max_points),
                    Indexes::List(list) => {
                        assert!(list.len() <= limits.max_points as usize);
                        for c in &h.commands {
                            assert!(list.contains(&c.index().unwrap()));
                        }
                    }
                    Indexes::All => assert!(h.commands.is_empty()),
                }
            }
        }
        Err(e) => {
            let answerable = matches!(e.code(), "unknown_function" | "unknown_object");
            assert_eq!(e.refusal_iin2().is_some(), answerable);
        }
    }
    let _ = parse_response(data, limits);
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_objects: 16,
        max_points: 1000,
        ..Limits::default()
    };
    check_parse(data, &limits);

    let link = LinkHeader {
        control: Control::from_byte(0xC4),
        destination: 12,
        source: 1,
    };
    let mut state = SessionState::default();
    let mut last_select: Option<Vec<u8>> = None;
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        let (fragment, next) = tail.split_at(n);
        rest = next;
        let i = inspect(grant(), &mut state, fragment, &limits);
        let parsed = parse_request(fragment, &limits);
        match &i.verdict {
            Verdict::Allow => {
                let req = i.request.as_ref().unwrap();
                match req.function {
                    FunctionCode::Read => {
                        for h in &req.headers {
                            let ok = match (&h.indexes, h.role) {
                                (_, Role::Command) => false,
                                // The internal indications (g80) are the outstation's
                                // status, readable under any DNP3 grant (docs/dnp3.md).
                                _ if h.group == 80 => true,
                                (_, _) if matches!(h.kind, PointKind::Class(_)) => {
                                    readable(h.kind, 0)
                                }
                                (Indexes::Range { start, stop }, Role::Static) => {
                                    (*start..=*stop).all(|x| readable(h.kind, x))
                                }
                                (Indexes::List(l), Role::Static) => {
                                    l.iter().all(|&x| readable(h.kind, x))
                                }
                                _ => (0..=65535).all(|x| readable(h.kind, x)),
                            };
                            assert!(ok, "allowed read outside the grant: {h:?}");
                        }
                    }
                    FunctionCode::Operate => {
                        assert_eq!(last_select.as_deref(), Some(req.objects));
                    }
                    // The grant has no word (time-sync, file, configure): the one write
                    // any DNP3 grant allows is clearing the restart indication, g80v1
                    // index 7 = 0, written out here rather than taken from the crate.
                    FunctionCode::Write => {
                        let clear_restart: [&[u8]; 2] =
                            [&[80, 1, 0x00, 7, 7, 0], &[80, 1, 0x01, 7, 0, 7, 0, 0]];
                        assert!(clear_restart.contains(&req.objects), "WRITE allowed");
                    }
                    FunctionCode::Select
                    | FunctionCode::DirectOperate
                    | FunctionCode::DirectOperateNoAck
                    | FunctionCode::Confirm => {}
                    other => panic!("{} allowed", other.name()),
                }
            }
            Verdict::Refuse(r) => {
                assert!(
                    parsed.is_ok() || parsed.as_ref().is_err_and(|e| e.refusal_iin2().is_some())
                );
                if let Some(frame) = i.refusal_frame(&link, 0, 0) {
                    let (f, used) = parse_frame(&frame).unwrap().unwrap();
                    assert_eq!(used, frame.len());
                    let resp = parse_response(&f.user_data()[1..], &limits).unwrap();
                    assert_eq!(resp.iin.iin2, r.iin2);
                    assert_eq!(resp.control.seq, i.app_seq);
                }
            }
            Verdict::Malformed(e) => {
                assert_eq!(parsed.unwrap_err(), *e);
                assert!(e.refusal_iin2().is_none());
            }
        }
        // What an OPERATE may repeat next: the objects of a SELECT allowed just now.
        last_select = match (&i.verdict, &i.request) {
            (Verdict::Allow, Some(req)) if req.function == FunctionCode::Select => {
                Some(req.objects.to_vec())
            }
            (Verdict::Allow, Some(req)) if req.function == FunctionCode::Confirm => last_select,
            _ => None,
        };
    }
});
