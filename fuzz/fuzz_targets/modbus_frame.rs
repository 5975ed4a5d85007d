//! Arbitrary bytes as a Modbus/TCP stream through the gateway's parser and inspector.
//!
//! Properties, beyond "never panics":
//! - a parsed ADU re-encodes to exactly the bytes it was parsed from;
//! - `inspect` says Allow if and only if a naive per-address check of the scope items says
//!   the request is in scope (so the compiled allow-list never lets more through);
//! - a denial always comes with a 9-byte exception ADU for the same transaction and unit;
//! - a PDU that does not decode is always `Malformed` (the session closes).
//! The bytes after each frame are also tried as the device's response to it.

#![no_main]

use jitgate_core::scope::{ModbusOp, ModbusTable, ScopeItem};
use jitgate_gateway::modbus::request::{Needs, Span};
use jitgate_gateway::modbus::{
    decode_request, inspect, parse_adu, validate_response, AllowList, Pending, Verdict,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn item(unit: u8, op: ModbusOp, table: Option<ModbusTable>, start: u16, end: u16) -> ScopeItem {
    ScopeItem::Modbus {
        asset: "plc-7".into(),
        unit,
        op,
        table,
        start,
        end,
    }
}

/// A grant with adjacent, overlapping and edge ranges over several units.
fn scope() -> Vec<ScopeItem> {
    use ModbusOp::{Programming, Read, Write};
    use ModbusTable::{Coil, Discrete, Holding, Input};
    vec![
        item(1, Read, Some(Holding), 0, 99),
        item(1, Read, Some(Holding), 100, 199),
        item(1, Read, Some(Holding), 150, 160),
        item(1, Write, Some(Holding), 50, 59),
        item(1, Read, Some(Coil), 0, 15),
        item(1, Write, Some(Coil), 10, 20),
        item(2, Read, Some(Input), 1000, 1999),
        item(2, Programming, None, 0, 0),
        item(255, Read, Some(Discrete), 65500, 65535),
        item(0, Read, Some(Holding), 0, 0),
        item(0, Write, Some(Holding), 65535, 65535),
        // Another asset: must grant nothing here.
        ScopeItem::Modbus {
            asset: "plc-8".into(),
            unit: 3,
            op: Read,
            table: Some(Holding),
            start: 0,
            end: 65535,
        },
    ]
}

/// Reference decision: every address of every span is inside some item, checked one by one.
fn naive_allows(items: &[ScopeItem], unit: u8, needs: Needs) -> bool {
    let covered = |span: &Span, address: u16| {
        items.iter().any(|i| {
            matches!(i, ScopeItem::Modbus { asset, unit: u, op, table: Some(t), start, end }
                if asset == "plc-7" && *u == unit && *op == span.op && *t == span.table
                    && *start <= address && address <= *end)
        })
    };
    match needs {
        Needs::Programming => items.iter().any(|i| {
            matches!(i, ScopeItem::Modbus { asset, unit: u, op: ModbusOp::Programming, .. }
                if asset == "plc-7" && *u == unit)
        }),
        Needs::Spans(a, b) => [Some(a), b]
            .iter()
            .flatten()
            .all(|s| (s.start..=s.end).all(|address| covered(s, address))),
    }
}

struct Fixture {
    items: Vec<ScopeItem>,
    allow: AllowList,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let items = scope();
        let allow = AllowList::compile("plc-7", &items);
        Fixture { items, allow }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut rest = data;
    while let Ok(Some((adu, used))) = parse_adu(rest) {
        assert!((8..=260).contains(&used) && used <= rest.len());
        assert_eq!(adu.to_vec().unwrap(), &rest[..used]);

        let ins = inspect(&f.allow, &adu);
        match decode_request(adu.pdu) {
            Ok(req) => {
                let naive = naive_allows(&f.items, adu.unit_id, req.needs());
                assert_eq!(
                    ins.verdict.is_allowed(),
                    naive,
                    "unit {} {:?}: {:?}",
                    adu.unit_id,
                    req,
                    ins.verdict
                );
                assert_eq!(ins.operation.allowed, naive);
                match &ins.verdict {
                    Verdict::Allow => assert!(ins.exception_adu.is_none()),
                    Verdict::Deny { exception, .. } => {
                        let e = ins.exception_adu.as_deref().unwrap();
                        assert_eq!(e.len(), 9);
                        assert_eq!(e[..2], adu.transaction_id.to_be_bytes());
                        assert_eq!(
                            (e[6], e[7], e[8]),
                            (adu.unit_id, req.function() | 0x80, exception.code())
                        );
                    }
                    Verdict::Malformed { .. } => panic!("decoded request marked malformed"),
                }
                // The next bytes, read as the device's answer to this request.
                let pending = Pending::new(&adu, &req);
                if let Ok(Some((resp, _))) = parse_adu(&rest[used..]) {
                    let _ = validate_response(&pending, &resp);
                }
            }
            Err(_) => {
                assert!(matches!(ins.verdict, Verdict::Malformed { .. }));
                assert!(ins.exception_adu.is_none() && !ins.operation.allowed);
            }
        }
        rest = &rest[used..];
    }
    // The whole input as a bare PDU too (within the protocol's PDU limit).
    let _ = decode_request(&data[..data.len().min(253)]);
});
