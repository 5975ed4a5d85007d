//! The enforcement decision: an allow-list compiled once from a grant's DNP3 scope items,
//! checked against each request fragment, with the select-before-operate state of the
//! session.
//!
//! Rules (see `docs/scope.md` for the scope words):
//! - CONFIRM is always allowed: it only acknowledges what the outstation sent.
//! - READ: class objects by class number (`read class 0,1`); static points by point type
//!   and index range (`read analog-input 0-15`). A header must name its indexes for that:
//!   "all points" (qualifier 0x06) or a bare count needs the whole 0-65535 range granted,
//!   since the gateway does not know how many points the outstation has. Event objects
//!   return events of *any* index, so they too need the whole range of their type.
//! - SELECT, OPERATE, DIRECT_OPERATE(_NR): only CROBs (g12v1) on `operate binary-output`
//!   indexes and analog output blocks (g41) on `operate analog-output` indexes. An OPERATE
//!   must repeat, byte for byte and with the next sequence number, the SELECT allowed just
//!   before it; any other request in between (except a confirm) cancels that SELECT.
//! - The other functions each need their word (`time-sync`, `restart`, `unsolicited class`,
//!   `freeze counter`, `assign-class`, `file`, `configure`): [`words`] holds those rules.
//!   Clearing the restart indication (WRITE g80v1 index 7 = 0) needs any DNP3 item on the
//!   asset. Secure authentication has no word and is always refused.
//!
//! A refusal answers with IIN2.0 (no such function in the grant), IIN2.1 (an object type
//! the grant does not name for that function) or IIN2.2 (an index or class outside the
//! granted ranges, or a broken select/operate pairing).

#![deny(clippy::indexing_slicing)]

use crate::function::FunctionCode;
use crate::header::{iin2, Iin};
use crate::objects::{PointKind, Role};
use crate::parse::{Indexes, ObjectHeader, Request};
use crate::ranges::{covers, covers_indexes, describe, merge, Ranges};
use jitgate_core::scope::{Dnp3Op, Dnp3Target, ScopeItem};
use words::{header_text, set_classes};

/// Why a request is refused, and how the master is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The IIN2 bit of the answer.
    pub iin2: u8,
    /// For the operation log: what was asked and what the grant allows.
    pub reason: String,
}

impl Refusal {
    pub(crate) fn new(iin2: u8, reason: String) -> Refusal {
        Refusal { iin2, reason }
    }

    pub fn iin(&self) -> Iin {
        Iin {
            iin1: 0,
            iin2: self.iin2,
        }
    }
}

/// Per-session state the decision keeps: the SELECT an OPERATE may follow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionState {
    /// Sequence number and object bytes of the last allowed SELECT.
    selected: Option<(u8, Vec<u8>)>,
}

impl SessionState {
    /// Forget a pending SELECT (the gateway calls this on its own select timeout too).
    pub fn cancel_select(&mut self) {
        self.selected = None;
    }

    pub fn has_select(&self) -> bool {
        self.selected.is_some()
    }
}

const READ_TARGETS: [PointKind; 5] = [
    PointKind::BinaryInput,
    PointKind::BinaryOutput,
    PointKind::AnalogInput,
    PointKind::AnalogOutput,
    PointKind::Counter,
];

fn read_slot(kind: PointKind) -> Option<usize> {
    READ_TARGETS.iter().position(|k| *k == kind)
}

fn operate_slot(kind: PointKind) -> Option<usize> {
    match kind {
        PointKind::BinaryOutput => Some(0),
        PointKind::AnalogOutput => Some(1),
        _ => None,
    }
}

fn target_kind(target: Dnp3Target) -> Option<PointKind> {
    Some(match target {
        Dnp3Target::Class | Dnp3Target::Device => return None,
        Dnp3Target::BinaryInput => PointKind::BinaryInput,
        Dnp3Target::BinaryOutput => PointKind::BinaryOutput,
        Dnp3Target::AnalogInput => PointKind::AnalogInput,
        Dnp3Target::AnalogOutput => PointKind::AnalogOutput,
        Dnp3Target::Counter => PointKind::Counter,
    })
}

/// A grant's DNP3 scope for one asset, ready for per-fragment checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    asset: String,
    /// Some DNP3 item names this asset: enough to clear the restart indication.
    any: bool,
    classes: [bool; 4],
    /// Indexed by `read_slot`; sorted, merged.
    read: [Ranges; 5],
    /// Indexed by `operate_slot`; sorted, merged.
    operate: [Ranges; 2],
    /// The function words (see [`words`]).
    time_sync: bool,
    restart: bool,
    /// Indexed by class number (1-3; 0 is never set).
    unsolicited: [bool; 4],
    /// Counter indexes; sorted, merged.
    freeze: Ranges,
    /// Indexed by `read_slot`; sorted, merged.
    assign: [Ranges; 5],
    file: bool,
    configure: bool,
}

impl AllowList {
    /// Compile the DNP3 items of `items` that name `asset_id`; other assets and protocols
    /// are ignored, and so are items that allow nothing (a backwards range, an operate on
    /// an input), rather than being widened.
    pub fn compile(asset_id: &str, items: &[ScopeItem]) -> AllowList {
        let mut allow = AllowList {
            asset: asset_id.to_string(),
            ..AllowList::default()
        };
        for item in items {
            let ScopeItem::Dnp3 {
                asset,
                op,
                target,
                start,
                end,
            } = item
            else {
                continue;
            };
            if asset != asset_id || start > end {
                continue;
            }
            allow.any = true;
            match (op, target_kind(*target)) {
                (Dnp3Op::Read, None) if *target == Dnp3Target::Class => {
                    set_classes(&mut allow.classes, *start, *end, 0);
                }
                (Dnp3Op::Read, Some(kind)) => {
                    if let Some(r) = read_slot(kind).and_then(|i| allow.read.get_mut(i)) {
                        r.push((*start, *end));
                    }
                }
                (Dnp3Op::Operate, Some(kind)) => {
                    if let Some(r) = operate_slot(kind).and_then(|i| allow.operate.get_mut(i)) {
                        r.push((*start, *end));
                    }
                }
                _ => allow.compile_word(*op, *target, *start, *end),
            }
        }
        allow.read.iter_mut().for_each(merge);
        allow.operate.iter_mut().for_each(merge);
        allow.assign.iter_mut().for_each(merge);
        merge(&mut allow.freeze);
        allow
    }

    pub fn asset(&self) -> &str {
        &self.asset
    }

    /// True when the grant gives no DNP3 access to this asset at all.
    pub fn is_empty(&self) -> bool {
        !self.any
    }

    /// Whether the grant allows `function` at all, whatever its objects: when it does not,
    /// the answer is "function not supported" even if the objects could not be parsed.
    pub fn permits_function(&self, function: FunctionCode) -> bool {
        use FunctionCode::*;
        match function {
            Confirm => true,
            Read => self.can_read() || self.time_sync || self.configure || self.file,
            Select | Operate | DirectOperate | DirectOperateNoAck => {
                self.operate.iter().any(|r| !r.is_empty())
            }
            // Any grant may clear the restart indication; the objects decide the rest.
            Write => self.any,
            other => self.permits_word_function(other),
        }
    }

    fn can_read(&self) -> bool {
        self.classes.iter().any(|c| *c) || self.read.iter().any(|r| !r.is_empty())
    }

    /// Decide one parsed request, updating the session's select-before-operate state.
    pub fn decide(&self, state: &mut SessionState, req: &Request<'_>) -> Result<(), Refusal> {
        use FunctionCode::*;
        let function = req.function;
        if function == Confirm {
            return Ok(());
        }
        // Whatever this request is, a SELECT before it can no longer be operated, except
        // by this request itself.
        let selected = state.selected.take();
        if !self.permits_function(function) {
            return Err(self.no_function(function));
        }
        match function {
            Read => req.headers.iter().try_for_each(|h| self.check_read(h)),
            Write => self.check_write(req),
            Select | Operate | DirectOperate | DirectOperateNoAck => {
                if req.headers.is_empty() {
                    return Err(Refusal::new(
                        iin2::PARAMETER_ERROR,
                        format!("{} without objects", function.name()),
                    ));
                }
                req.headers
                    .iter()
                    .try_for_each(|h| self.check_operate(function, h))?;
                match function {
                    Select => {
                        state.selected = Some((req.control.seq, req.objects.to_vec()));
                        Ok(())
                    }
                    Operate => check_pairing(selected, req),
                    _ => Ok(()),
                }
            }
            other => self.check_word_function(other, req),
        }
    }

    pub(crate) fn no_function(&self, function: FunctionCode) -> Refusal {
        let why = match words::word_of(function) {
            Some(word) => format!("the grant (no {word} rule)"),
            None => "DNP3 scope (it has no word for this function)".into(),
        };
        Refusal::new(
            iin2::NO_FUNC_CODE_SUPPORT,
            format!(
                "{} is not allowed on {} by {why}; it allows {}",
                function.name(),
                self.asset,
                self.describe()
            ),
        )
    }

    fn check_read(&self, h: &ObjectHeader) -> Result<(), Refusal> {
        let what = header_text(h);
        if let PointKind::Class(class) = h.kind {
            return match self.classes.get(usize::from(class)) {
                Some(true) => Ok(()),
                _ if !self.classes.iter().any(|c| *c) => Err(Refusal::new(
                    iin2::OBJECT_UNKNOWN,
                    format!(
                        "READ of {what}: the grant allows no class reads; it allows {}",
                        self.describe()
                    ),
                )),
                _ => Err(Refusal::new(
                    iin2::PARAMETER_ERROR,
                    format!(
                        "READ of {what} is outside the grant; it allows {}",
                        self.describe()
                    ),
                )),
            };
        }
        if let Some(verdict) = self.check_read_other(h) {
            return verdict;
        }
        let ranges = match (h.role, read_slot(h.kind)) {
            (Role::Static | Role::Event, Some(i)) => {
                self.read.get(i).map_or(&[][..], Vec::as_slice)
            }
            _ => &[],
        };
        if ranges.is_empty() {
            return Err(Refusal::new(
                iin2::OBJECT_UNKNOWN,
                format!(
                    "READ of {what}: the grant allows no reads of {}; it allows {}",
                    h.kind.name(),
                    self.describe()
                ),
            ));
        }
        // Events come from any index; "all" and bare counts say no index at all.
        let covered = match (&h.indexes, h.role) {
            (_, Role::Event) | (Indexes::All | Indexes::Count(_), _) => covers(ranges, 0, 0xFFFF),
            (indexes, _) => covers_indexes(ranges, indexes),
        };
        if covered {
            Ok(())
        } else {
            Err(Refusal::new(
                iin2::PARAMETER_ERROR,
                format!(
                    "READ of {what} is outside the grant; it allows {}",
                    self.describe()
                ),
            ))
        }
    }

    fn check_operate(&self, function: FunctionCode, h: &ObjectHeader) -> Result<(), Refusal> {
        let what = header_text(h);
        let ranges = match (h.role, operate_slot(h.kind)) {
            (Role::Command, Some(i)) => self.operate.get(i).map_or(&[][..], Vec::as_slice),
            _ => &[],
        };
        if ranges.is_empty() {
            return Err(Refusal::new(
                iin2::OBJECT_UNKNOWN,
                format!(
                    "{} of {what}: the grant allows no such control; it allows {}",
                    function.name(),
                    self.describe()
                ),
            ));
        }
        if matches!(h.indexes, Indexes::All | Indexes::Count(_))
            || !covers_indexes(ranges, &h.indexes)
        {
            return Err(Refusal::new(
                iin2::PARAMETER_ERROR,
                format!(
                    "{} of {what} is outside the grant; it allows {}",
                    function.name(),
                    self.describe()
                ),
            ));
        }
        Ok(())
    }

    /// "read class 0,1; read analog-input 0-15; operate binary-output 3-5".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let classes: Vec<String> = (0u8..4)
            .filter(|c| self.classes.get(usize::from(*c)) == Some(&true))
            .map(|c| c.to_string())
            .collect();
        if !classes.is_empty() {
            parts.push(format!("read class {}", classes.join(",")));
        }
        for (kind, ranges) in READ_TARGETS.iter().zip(&self.read) {
            if !ranges.is_empty() {
                parts.push(format!("read {} {}", kind.name(), describe(ranges)));
            }
        }
        let outputs = [PointKind::BinaryOutput, PointKind::AnalogOutput];
        for (kind, ranges) in outputs.iter().zip(&self.operate) {
            if !ranges.is_empty() {
                parts.push(format!("operate {} {}", kind.name(), describe(ranges)));
            }
        }
        self.describe_words(&mut parts);
        if parts.is_empty() {
            return "nothing".into();
        }
        parts.join("; ")
    }
}

fn check_pairing(selected: Option<(u8, Vec<u8>)>, req: &Request<'_>) -> Result<(), Refusal> {
    let refuse = |why: &str| {
        Err(Refusal::new(
            iin2::PARAMETER_ERROR,
            format!("OPERATE refused: {why}; an OPERATE must repeat the SELECT just before it"),
        ))
    };
    let Some((seq, objects)) = selected else {
        return refuse("no SELECT precedes it");
    };
    if req.control.seq != (seq + 1) & 0x0F {
        return refuse("its sequence number does not follow the SELECT's");
    }
    if objects != req.objects {
        return refuse("its objects differ from the SELECT's");
    }
    Ok(())
}

#[path = "allow_words.rs"]
pub mod words;

#[cfg(test)]
#[path = "allow_tests.rs"]
mod tests;
