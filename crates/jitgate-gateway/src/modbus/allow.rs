//! The allow-list a session enforces, compiled once from the grant's scope items.
//!
//! Per unit id it holds, for each (operation, table), the sorted inclusive ranges the grant
//! names, with overlapping and adjacent ranges merged, plus whether `programming` is
//! allowed. Merging at compile time is what makes a request that spans two adjacent granted
//! ranges (`0-9` and `10-19`, asked as `5-14`) allowed, and lets a lookup be one binary
//! search: the range that starts at or before the request's first address is the only one
//! that can contain it.
//!
//! Which exception a refusal gets (see `docs/modbus.md`):
//! - unit id the grant does not name → GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND (0x0B);
//! - a function the grant has no operation for on that unit at all (a write on a read-only
//!   grant, diagnostics without `programming`) → ILLEGAL_FUNCTION (0x01);
//! - an allowed function on addresses outside the granted ranges → ILLEGAL_DATA_ADDRESS (0x02).

use super::exception::Exception;
use super::request::{Needs, Request, RequestError, Span};
use jitgate_core::scope::{ModbusOp, ModbusTable, ScopeItem};
use std::fmt::Write as _;

/// Ranges listed in a refusal's reason before it says "and N more", so a grant with many
/// ranges cannot make every denied-operation event large.
const MAX_RANGES_IN_REASON: usize = 16;

/// Outcome of checking one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward to the device unchanged.
    Allow,
    /// Answer the client with `exception`; the device never sees the request.
    Deny {
        exception: Exception,
        reason: String,
    },
    /// Not a valid Modbus request: close the session (only [`super::inspect`] returns this).
    Malformed { error: RequestError },
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allow)
    }
}

const OPS: [ModbusOp; 2] = [ModbusOp::Read, ModbusOp::Write];
const TABLES: [ModbusTable; 4] = [
    ModbusTable::Coil,
    ModbusTable::Discrete,
    ModbusTable::Input,
    ModbusTable::Holding,
];

/// What one unit id may be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UnitRules {
    unit: u8,
    /// Indexed by `slot(op, table)`; each sorted by start, merged, non-overlapping.
    ranges: [Vec<(u16, u16)>; 8],
    programming: bool,
}

fn slot(op: ModbusOp, table: ModbusTable) -> Option<usize> {
    let op = match op {
        ModbusOp::Read => 0,
        ModbusOp::Write => 1,
        ModbusOp::Programming => return None,
    };
    let table = match table {
        ModbusTable::Coil => 0,
        ModbusTable::Discrete => 1,
        ModbusTable::Input => 2,
        ModbusTable::Holding => 3,
    };
    Some(op * 4 + table)
}

impl UnitRules {
    fn new(unit: u8) -> Self {
        UnitRules {
            unit,
            ranges: Default::default(),
            programming: false,
        }
    }

    fn ranges(&self, op: ModbusOp, table: ModbusTable) -> &[(u16, u16)] {
        slot(op, table)
            .and_then(|i| self.ranges.get(i))
            .map_or(&[], Vec::as_slice)
    }

    fn covers(&self, span: &Span) -> bool {
        let ranges = self.ranges(span.op, span.table);
        // Index of the first range starting after `span.start`; the one before it is the
        // only candidate, because merged ranges neither overlap nor touch.
        let after = ranges.partition_point(|&(start, _)| start <= span.start);
        after
            .checked_sub(1)
            .and_then(|i| ranges.get(i))
            .is_some_and(|&(_, end)| end >= span.end)
    }

    /// "read holding 0-99, write coil 10-20; programming" — what the grant allows here.
    fn describe(&self) -> String {
        let mut out = String::new();
        let mut listed = 0usize;
        let mut omitted = 0usize;
        for op in OPS {
            for table in TABLES {
                let ranges = self.ranges(op, table);
                if ranges.is_empty() {
                    continue;
                }
                let room = MAX_RANGES_IN_REASON.saturating_sub(listed);
                if room == 0 {
                    omitted += ranges.len();
                    continue;
                }
                if !out.is_empty() {
                    out.push_str(", ");
                }
                let _ = write!(out, "{} {} ", op_word(op), table_word(table));
                for (i, &(s, e)) in ranges.iter().take(room).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_range(&mut out, s, e);
                }
                listed += ranges.len().min(room);
                omitted += ranges.len().saturating_sub(room);
            }
        }
        if omitted > 0 {
            let _ = write!(out, " and {omitted} more ranges");
        }
        if self.programming {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str("programming");
        }
        if out.is_empty() {
            out.push_str("nothing");
        }
        out
    }
}

fn push_range(out: &mut String, start: u16, end: u16) {
    let _ = write!(out, "{start}-{end}");
}

fn op_word(op: ModbusOp) -> &'static str {
    match op {
        ModbusOp::Read => "read",
        ModbusOp::Write => "write",
        ModbusOp::Programming => "programming",
    }
}

fn table_word(table: ModbusTable) -> &'static str {
    match table {
        ModbusTable::Coil => "coil",
        ModbusTable::Discrete => "discrete",
        ModbusTable::Input => "input",
        ModbusTable::Holding => "holding",
    }
}

/// A grant's Modbus scope for one asset, ready for per-frame checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    asset: String,
    /// Sorted by unit id, one entry per unit the grant names.
    units: Vec<UnitRules>,
}

impl AllowList {
    /// Compile the Modbus items of `items` that name `asset_id`; everything else (other
    /// assets, other protocols) is ignored. Items that allow nothing — a read/write item
    /// without a table, or a backwards range — are skipped rather than widened.
    pub fn compile(asset_id: &str, items: &[ScopeItem]) -> AllowList {
        let mut units: Vec<UnitRules> = Vec::new();
        for item in items {
            let ScopeItem::Modbus {
                asset,
                unit,
                op,
                table,
                start,
                end,
            } = item
            else {
                continue;
            };
            if asset != asset_id {
                continue;
            }
            let rules = match units.binary_search_by_key(unit, |r| r.unit) {
                Ok(i) => units.get_mut(i),
                Err(i) => {
                    units.insert(i, UnitRules::new(*unit));
                    units.get_mut(i)
                }
            };
            let Some(rules) = rules else { continue };
            if *op == ModbusOp::Programming {
                rules.programming = true;
                continue;
            }
            let Some(ranges) = table
                .and_then(|t| slot(*op, t))
                .and_then(|i| rules.ranges.get_mut(i))
            else {
                continue;
            };
            if start <= end {
                ranges.push((*start, *end));
            }
        }
        for rules in &mut units {
            for ranges in &mut rules.ranges {
                merge(ranges);
            }
        }
        AllowList {
            asset: asset_id.to_string(),
            units,
        }
    }

    pub fn asset(&self) -> &str {
        &self.asset
    }

    /// Unit ids the grant names, ascending.
    pub fn units(&self) -> impl Iterator<Item = u8> + '_ {
        self.units.iter().map(|r| r.unit)
    }

    /// True when the grant gives no Modbus access to this asset at all.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    fn unit(&self, unit: u8) -> Option<&UnitRules> {
        self.units
            .binary_search_by_key(&unit, |r| r.unit)
            .ok()
            .and_then(|i| self.units.get(i))
    }

    /// Decide one decoded request addressed to `unit`.
    pub fn check(&self, unit: u8, req: &Request<'_>) -> Verdict {
        let Some(rules) = self.unit(unit) else {
            return Verdict::Deny {
                exception: Exception::GatewayTargetDeviceFailedToRespond,
                reason: format!(
                    "unit {unit} is not in the grant for {}; the grant covers {}",
                    self.asset,
                    self.units_text()
                ),
            };
        };
        let function = req.function();
        // Built only for a refusal: an allowed frame must not allocate here.
        let what = || format!("FC {function} ({})", req.function_name());
        match req.needs() {
            Needs::Programming => {
                if rules.programming {
                    Verdict::Allow
                } else {
                    Verdict::Deny {
                        exception: Exception::IllegalFunction,
                        reason: format!(
                            "{} is a programming/diagnostics function and the grant does not include programming on unit {unit} of {}; it allows {}",
                            what(),
                            self.asset,
                            rules.describe()
                        ),
                    }
                }
            }
            Needs::Spans(first, second) => {
                let spans = [Some(first), second];
                let spans = spans.iter().flatten();
                for span in spans.clone() {
                    if rules.ranges(span.op, span.table).is_empty() {
                        return Verdict::Deny {
                            exception: Exception::IllegalFunction,
                            reason: format!(
                                "{} needs {} {} on unit {unit} of {}, which the grant does not include; it allows {}",
                                what(),
                                op_word(span.op),
                                table_word(span.table),
                                self.asset,
                                rules.describe()
                            ),
                        };
                    }
                }
                for span in spans {
                    if !rules.covers(span) {
                        let mut asked = String::new();
                        push_range(&mut asked, span.start, span.end);
                        return Verdict::Deny {
                            exception: Exception::IllegalDataAddress,
                            reason: format!(
                                "{} asks {} {} {asked} on unit {unit} of {}, outside the grant; it allows {}",
                                what(),
                                op_word(span.op),
                                table_word(span.table),
                                self.asset,
                                rules.describe()
                            ),
                        };
                    }
                }
                Verdict::Allow
            }
        }
    }

    fn units_text(&self) -> String {
        if self.units.is_empty() {
            return "no Modbus unit".into();
        }
        let ids: Vec<String> = self.units().map(|u| u.to_string()).collect();
        format!(
            "unit{} {}",
            if ids.len() == 1 { "" } else { "s" },
            ids.join(", ")
        )
    }
}

/// Sort and merge overlapping or adjacent inclusive ranges in place.
fn merge(ranges: &mut Vec<(u16, u16)>) {
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for &(start, end) in ranges.iter() {
        if let Some(last) = merged.last_mut() {
            if u32::from(start) <= u32::from(last.1) + 1 {
                last.1 = last.1.max(end);
                continue;
            }
        }
        merged.push((start, end));
    }
    merged.shrink_to_fit();
    *ranges = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::request::decode_request;
    use proptest::prelude::*;

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

    fn read(table: ModbusTable, unit: u8, s: u16, e: u16) -> ScopeItem {
        item(unit, ModbusOp::Read, Some(table), s, e)
    }

    fn write(table: ModbusTable, unit: u8, s: u16, e: u16) -> ScopeItem {
        item(unit, ModbusOp::Write, Some(table), s, e)
    }

    fn programming(unit: u8) -> ScopeItem {
        item(unit, ModbusOp::Programming, None, 0, 0)
    }

    fn pdu(function: u8, address: u16, quantity: u16) -> Vec<u8> {
        let mut v = vec![function];
        v.extend_from_slice(&address.to_be_bytes());
        v.extend_from_slice(&quantity.to_be_bytes());
        v
    }

    fn check(allow: &AllowList, unit: u8, bytes: &[u8]) -> Verdict {
        allow.check(unit, &decode_request(bytes).unwrap())
    }

    fn exception(v: &Verdict) -> Option<Exception> {
        match v {
            Verdict::Deny { exception, .. } => Some(*exception),
            _ => None,
        }
    }

    use ModbusTable::{Coil, Discrete, Holding, Input};

    #[test]
    fn reads_inside_and_outside_a_range() {
        let allow = AllowList::compile("plc-7", &[read(Holding, 1, 0, 99)]);
        assert_eq!(check(&allow, 1, &pdu(3, 0, 1)), Verdict::Allow);
        assert_eq!(check(&allow, 1, &pdu(3, 0, 100)), Verdict::Allow);
        assert_eq!(check(&allow, 1, &pdu(3, 99, 1)), Verdict::Allow);
        let v = check(&allow, 1, &pdu(3, 99, 2));
        assert_eq!(exception(&v), Some(Exception::IllegalDataAddress));
        let Verdict::Deny { reason, .. } = v else {
            unreachable!()
        };
        assert!(reason.contains("read holding 99-100"), "{reason}");
        assert!(reason.contains("it allows read holding 0-99"), "{reason}");
        assert_eq!(
            exception(&check(&allow, 1, &pdu(3, 100, 1))),
            Some(Exception::IllegalDataAddress)
        );
    }

    #[test]
    fn boundary_addresses_zero_and_65535() {
        let allow = AllowList::compile(
            "plc-7",
            &[read(Holding, 1, 0, 0), read(Holding, 1, 65535, 65535)],
        );
        assert_eq!(check(&allow, 1, &pdu(3, 0, 1)), Verdict::Allow);
        assert_eq!(check(&allow, 1, &pdu(3, 65535, 1)), Verdict::Allow);
        assert_eq!(
            exception(&check(&allow, 1, &pdu(3, 0, 2))),
            Some(Exception::IllegalDataAddress)
        );
        assert_eq!(
            exception(&check(&allow, 1, &pdu(3, 65534, 2))),
            Some(Exception::IllegalDataAddress)
        );
        let all = AllowList::compile("plc-7", &[read(Coil, 1, 0, 65535)]);
        assert_eq!(check(&all, 1, &pdu(1, 63536, 2000)), Verdict::Allow);
        assert_eq!(check(&all, 1, &pdu(1, 0, 2000)), Verdict::Allow);
    }

    #[test]
    fn adjacent_and_overlapping_ranges_merge() {
        let allow = AllowList::compile(
            "plc-7",
            &[
                read(Holding, 1, 10, 19),
                read(Holding, 1, 0, 9),
                read(Holding, 1, 15, 30),
                read(Holding, 1, 40, 49),
            ],
        );
        // 5-14 spans the adjacent 0-9 and 10-19.
        assert_eq!(check(&allow, 1, &pdu(3, 5, 10)), Verdict::Allow);
        assert_eq!(check(&allow, 1, &pdu(3, 0, 31)), Verdict::Allow);
        // 31-39 is a real gap.
        assert_eq!(
            exception(&check(&allow, 1, &pdu(3, 30, 11))),
            Some(Exception::IllegalDataAddress)
        );
        assert_eq!(check(&allow, 1, &pdu(3, 40, 10)), Verdict::Allow);
        let rules = allow.unit(1).unwrap();
        assert_eq!(rules.ranges(ModbusOp::Read, Holding), &[(0, 30), (40, 49)]);
        // Merging across the top of the address space does not overflow.
        let top = AllowList::compile(
            "plc-7",
            &[read(Input, 1, 65000, 65535), read(Input, 1, 0, 64999)],
        );
        assert_eq!(
            top.unit(1).unwrap().ranges(ModbusOp::Read, Input),
            &[(0, 65535)]
        );
    }

    #[test]
    fn unknown_unit_is_gateway_target_failed() {
        let allow = AllowList::compile("plc-7", &[read(Holding, 1, 0, 9), read(Holding, 2, 0, 9)]);
        let v = check(&allow, 3, &pdu(3, 0, 1));
        assert_eq!(
            exception(&v),
            Some(Exception::GatewayTargetDeviceFailedToRespond)
        );
        let Verdict::Deny { reason, .. } = v else {
            unreachable!()
        };
        assert!(
            reason.contains("unit 3") && reason.contains("units 1, 2"),
            "{reason}"
        );
        assert_eq!(check(&allow, 2, &pdu(3, 0, 1)), Verdict::Allow);
        // Unit 0 and 255 are ordinary ids here.
        let edge = AllowList::compile("plc-7", &[read(Coil, 0, 0, 9), read(Coil, 255, 0, 9)]);
        assert_eq!(check(&edge, 0, &pdu(1, 0, 1)), Verdict::Allow);
        assert_eq!(check(&edge, 255, &pdu(1, 0, 1)), Verdict::Allow);
        assert!(!check(&edge, 254, &pdu(1, 0, 1)).is_allowed());
    }

    #[test]
    fn write_on_a_read_grant_is_illegal_function() {
        let allow = AllowList::compile("plc-7", &[read(Holding, 1, 0, 99), read(Coil, 1, 0, 9)]);
        for bytes in [
            vec![6, 0, 5, 0, 1],
            vec![16, 0, 5, 0, 1, 2, 0, 1],
            vec![5, 0, 5, 0xFF, 0],
            vec![15, 0, 5, 0, 1, 1, 1],
            vec![22, 0, 5, 0, 1, 0, 2],
        ] {
            let v = check(&allow, 1, &bytes);
            assert_eq!(exception(&v), Some(Exception::IllegalFunction), "{bytes:?}");
            let Verdict::Deny { reason, .. } = v else {
                unreachable!()
            };
            assert!(reason.contains("needs write"), "{reason}");
            assert!(
                reason.contains("read coil 0-9, read holding 0-99"),
                "{reason}"
            );
        }
        // A read of a table the grant has nothing for is also a function it lacks.
        assert_eq!(
            exception(&check(&allow, 1, &pdu(4, 0, 1))),
            Some(Exception::IllegalFunction)
        );
        assert_eq!(
            exception(&check(&allow, 1, &pdu(2, 0, 1))),
            Some(Exception::IllegalFunction)
        );
    }

    #[test]
    fn write_does_not_imply_read() {
        let allow = AllowList::compile("plc-7", &[write(Coil, 1, 10, 20)]);
        assert_eq!(check(&allow, 1, &[5, 0, 10, 0xFF, 0]), Verdict::Allow);
        assert_eq!(
            check(&allow, 1, &[15, 0, 10, 0, 11, 2, 0xFF, 0x07]),
            Verdict::Allow
        );
        assert_eq!(
            exception(&check(&allow, 1, &[15, 0, 10, 0, 12, 2, 0xFF, 0x0F])),
            Some(Exception::IllegalDataAddress)
        );
        assert_eq!(
            exception(&check(&allow, 1, &pdu(1, 10, 1))),
            Some(Exception::IllegalFunction)
        );
    }

    #[test]
    fn programming_functions_need_programming() {
        let plain = AllowList::compile("plc-7", &[read(Holding, 1, 0, 9)]);
        let prog = AllowList::compile("plc-7", &[read(Holding, 1, 0, 9), programming(1)]);
        for function in [7u8, 8, 11, 12, 17, 20, 21, 24, 43, 0x5A] {
            let bytes = [function, 0, 0];
            let v = check(&plain, 1, &bytes);
            assert_eq!(
                exception(&v),
                Some(Exception::IllegalFunction),
                "{function}"
            );
            let Verdict::Deny { reason, .. } = v else {
                unreachable!()
            };
            assert!(reason.contains("programming"), "{reason}");
            assert_eq!(check(&prog, 1, &bytes), Verdict::Allow, "{function}");
        }
        // Programming on one unit says nothing about another, and grants no data access.
        let only = AllowList::compile("plc-7", &[programming(2)]);
        assert_eq!(check(&only, 2, &[8, 0, 0, 0, 0]), Verdict::Allow);
        assert_eq!(
            exception(&check(&only, 1, &[8, 0, 0, 0, 0])),
            Some(Exception::GatewayTargetDeviceFailedToRespond)
        );
        assert_eq!(
            exception(&check(&only, 2, &pdu(3, 0, 1))),
            Some(Exception::IllegalFunction)
        );
    }

    fn fc23(read_address: u16, read_qty: u16, write_address: u16) -> Vec<u8> {
        let mut v = pdu(23, read_address, read_qty);
        v.extend_from_slice(&write_address.to_be_bytes());
        v.extend_from_slice(&[0, 1, 2, 0, 7]);
        v
    }

    #[test]
    fn read_write_multiple_needs_both() {
        let read_only = AllowList::compile("plc-7", &[read(Holding, 1, 0, 99)]);
        assert_eq!(
            exception(&check(&read_only, 1, &fc23(0, 1, 0))),
            Some(Exception::IllegalFunction)
        );
        let write_only = AllowList::compile("plc-7", &[write(Holding, 1, 0, 99)]);
        assert_eq!(
            exception(&check(&write_only, 1, &fc23(0, 1, 0))),
            Some(Exception::IllegalFunction)
        );
        let both = AllowList::compile(
            "plc-7",
            &[read(Holding, 1, 0, 99), write(Holding, 1, 200, 209)],
        );
        assert_eq!(check(&both, 1, &fc23(0, 100, 200)), Verdict::Allow);
        assert_eq!(check(&both, 1, &fc23(50, 3, 209)), Verdict::Allow);
        // The write range is checked against the write ranges, the read against the read.
        assert_eq!(
            exception(&check(&both, 1, &fc23(0, 1, 0))),
            Some(Exception::IllegalDataAddress)
        );
        assert_eq!(
            exception(&check(&both, 1, &fc23(200, 1, 200))),
            Some(Exception::IllegalDataAddress)
        );
        // Read/write of another table (coils) gives no holding access.
        let coils = AllowList::compile("plc-7", &[read(Coil, 1, 0, 99), write(Coil, 1, 0, 99)]);
        assert_eq!(
            exception(&check(&coils, 1, &fc23(0, 1, 0))),
            Some(Exception::IllegalFunction)
        );
    }

    #[test]
    fn tables_are_separate() {
        let allow = AllowList::compile(
            "plc-7",
            &[read(Discrete, 1, 0, 9), read(Input, 1, 100, 109)],
        );
        assert_eq!(check(&allow, 1, &pdu(2, 0, 10)), Verdict::Allow);
        assert_eq!(check(&allow, 1, &pdu(4, 100, 10)), Verdict::Allow);
        assert_eq!(
            exception(&check(&allow, 1, &pdu(4, 0, 1))),
            Some(Exception::IllegalDataAddress)
        );
        assert_eq!(
            exception(&check(&allow, 1, &pdu(3, 100, 1))),
            Some(Exception::IllegalFunction)
        );
    }

    #[test]
    fn other_assets_and_protocols_are_ignored() {
        let items = vec![
            ScopeItem::Modbus {
                asset: "plc-8".into(),
                unit: 1,
                op: ModbusOp::Read,
                table: Some(Holding),
                start: 0,
                end: 65535,
            },
            ScopeItem::Ssh {
                asset: "plc-7".into(),
                command: None,
            },
            // Nonsense items allow nothing rather than everything.
            item(1, ModbusOp::Read, None, 0, 65535),
            read(Holding, 1, 10, 5),
        ];
        let allow = AllowList::compile("plc-7", &items);
        assert_eq!(allow.asset(), "plc-7");
        assert_eq!(allow.units().collect::<Vec<_>>(), vec![1]);
        let v = check(&allow, 1, &pdu(3, 7, 1));
        assert_eq!(exception(&v), Some(Exception::IllegalFunction));
        let Verdict::Deny { reason, .. } = v else {
            unreachable!()
        };
        assert!(reason.contains("allows nothing"), "{reason}");
        assert!(AllowList::compile("plc-9", &items).is_empty());
    }

    #[test]
    fn long_reasons_are_bounded() {
        let items: Vec<ScopeItem> = (0..100u16)
            .map(|i| read(Holding, 1, i * 10, i * 10 + 1))
            .collect();
        let allow = AllowList::compile("plc-7", &items);
        let Verdict::Deny { reason, .. } = check(&allow, 1, &pdu(3, 5, 1)) else {
            panic!("gap must be refused")
        };
        assert!(reason.contains("and 84 more ranges"), "{reason}");
        assert!(reason.len() < 400, "{}", reason.len());
    }

    proptest! {
        /// The compiled list agrees with a naive per-address check of the items.
        #[test]
        fn agrees_with_naive_check(
            ranges in proptest::collection::vec((0u16..300, 0u16..40), 0..8),
            address in 0u16..340,
            quantity in 1u16..60,
        ) {
            let items: Vec<ScopeItem> = ranges
                .iter()
                .map(|&(s, len)| read(Holding, 1, s, s.saturating_add(len)))
                .collect();
            let allow = AllowList::compile("plc-7", &items);
            let naive = (address..address + quantity).all(|a| {
                    ranges.iter().any(|&(s, len)| s <= a && a <= s.saturating_add(len))
                });
            let verdict = check(&allow, 1, &pdu(3, address, quantity));
            prop_assert_eq!(verdict.is_allowed(), naive, "{:?}", verdict);
        }
    }
}
