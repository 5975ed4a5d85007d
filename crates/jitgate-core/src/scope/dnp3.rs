//! The DNP3 words of the scope language: operations, targets, their canonical lines and the
//! rule parser (documented in `docs/scope.md`, "DNP3").
//!
//! `read` and `operate` name point types and index ranges. The words added after them name
//! functions: some take a target and ranges (`unsolicited class 1-3`, `freeze counter 0-15`,
//! `assign-class analog-input 0-15`), the others are about the whole device (`time-sync`,
//! `restart`, `file`, `configure`) and have the target [`Dnp3Target::Device`], whose
//! canonical line has neither target nor range. Lines of `read` and `operate` items are as
//! they always were, so no digest computed before these words existed changed.

use super::{invalid, parse_ranges, ScopeItem};
use crate::inventory::Asset;
use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// What a DNP3 item allows. The order is part of the merge key: new words go at the end.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Dnp3Op {
    Read,
    /// Select/operate and direct operate on outputs.
    Operate,
    /// WRITE of the time (g50v1 or g50v3, one object), DELAY_MEASURE, RECORD_CURRENT_TIME.
    TimeSync,
    /// COLD_RESTART, WARM_RESTART.
    Restart,
    /// ENABLE_UNSOLICITED / DISABLE_UNSOLICITED of event classes (the range is of classes).
    Unsolicited,
    /// IMMED_FREEZE, FREEZE_CLEAR, FREEZE_AT_TIME (and their `_NR` forms) of counters.
    Freeze,
    /// ASSIGN_CLASS of points of one type.
    AssignClass,
    /// OPEN/CLOSE/DELETE_FILE, GET_FILE_INFO, AUTHENTICATE_FILE, ABORT_FILE, file objects.
    File,
    /// Deadbands (g34), device attributes (g0), INITIALIZE_DATA, INITIALIZE/START/STOP_APPL,
    /// SAVE_CONFIG, ACTIVATE_CONFIG.
    Configure,
}

impl Dnp3Op {
    /// The word in rules, canonical lines and policy operations (`dnp3:<word>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dnp3Op::Read => "read",
            Dnp3Op::Operate => "operate",
            Dnp3Op::TimeSync => "time-sync",
            Dnp3Op::Restart => "restart",
            Dnp3Op::Unsolicited => "unsolicited",
            Dnp3Op::Freeze => "freeze",
            Dnp3Op::AssignClass => "assign-class",
            Dnp3Op::File => "file",
            Dnp3Op::Configure => "configure",
        }
    }

    /// Words about the whole device: no target, no range.
    pub fn is_device_wide(self) -> bool {
        matches!(
            self,
            Dnp3Op::TimeSync | Dnp3Op::Restart | Dnp3Op::File | Dnp3Op::Configure
        )
    }

    fn parse(word: &str) -> Option<Dnp3Op> {
        Some(match word {
            "read" => Dnp3Op::Read,
            "operate" => Dnp3Op::Operate,
            "time-sync" => Dnp3Op::TimeSync,
            "restart" => Dnp3Op::Restart,
            "unsolicited" => Dnp3Op::Unsolicited,
            "freeze" => Dnp3Op::Freeze,
            "assign-class" => Dnp3Op::AssignClass,
            "file" => Dnp3Op::File,
            "configure" => Dnp3Op::Configure,
            _ => return None,
        })
    }
}

/// What a DNP3 item is about. The order is part of the merge key: new targets go at the end.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Dnp3Target {
    /// Class data (0 = static, 1-3 = event classes); the range is of class numbers.
    Class,
    BinaryInput,
    BinaryOutput,
    AnalogInput,
    AnalogOutput,
    Counter,
    /// The whole device, for the words without a target; its range is always 0-0.
    Device,
}

impl Dnp3Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Dnp3Target::Class => "class",
            Dnp3Target::BinaryInput => "binary-input",
            Dnp3Target::BinaryOutput => "binary-output",
            Dnp3Target::AnalogInput => "analog-input",
            Dnp3Target::AnalogOutput => "analog-output",
            Dnp3Target::Counter => "counter",
            Dnp3Target::Device => "device",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "class" | "classes" => Dnp3Target::Class,
            "binary-input" | "binary-inputs" | "bi" => Dnp3Target::BinaryInput,
            "binary-output" | "binary-outputs" | "bo" => Dnp3Target::BinaryOutput,
            "analog-input" | "analog-inputs" | "ai" => Dnp3Target::AnalogInput,
            "analog-output" | "analog-outputs" | "ao" => Dnp3Target::AnalogOutput,
            "counter" | "counters" => Dnp3Target::Counter,
            _ => return None,
        })
    }

    fn is_point(self) -> bool {
        !matches!(self, Dnp3Target::Class | Dnp3Target::Device)
    }
}

const POINTS: &str = "binary-input, binary-output, analog-input, analog-output or counter";

const USAGE: &str = "expected one of: `read class <0-3>`, \
    `read <binary-input|binary-output|analog-input|analog-output|counter> <ranges>`, \
    `operate <binary-output|analog-output> <ranges>`, `time-sync`, `restart`, \
    `unsolicited class <1-3>`, `freeze counter <ranges>`, \
    `assign-class <binary-input|binary-output|analog-input|analog-output|counter> <ranges>`, \
    `file`, `configure`";

/// The canonical line of a DNP3 item.
pub(super) fn write_line(
    f: &mut fmt::Formatter<'_>,
    asset: &str,
    op: Dnp3Op,
    target: Dnp3Target,
    start: u16,
    end: u16,
) -> fmt::Result {
    if target == Dnp3Target::Device {
        return write!(f, "{asset} dnp3 {}", op.as_str());
    }
    write!(
        f,
        "{asset} dnp3 {} {} {start}-{end}",
        op.as_str(),
        target.as_str()
    )
}

/// Whether an item read from JSON is one a rule could have produced, for the combinations
/// whose canonical line would otherwise hide a difference: a device-wide word always has
/// the target `device` and the range 0-0, and nothing else has that target. (`read` and
/// `operate` items are accepted as they always were.)
pub(super) fn check_item(
    op: Dnp3Op,
    target: Dnp3Target,
    start: u16,
    end: u16,
) -> Result<(), String> {
    let word = op.as_str();
    match (op.is_device_wide(), target == Dnp3Target::Device) {
        (true, true) if (start, end) == (0, 0) => Ok(()),
        (true, true) => Err(format!(
            "a dnp3 {word} item has the range 0-0 (it names no points)"
        )),
        (true, false) => Err(format!("a dnp3 {word} item has the target \"device\"")),
        (false, true) => Err(format!(
            "a dnp3 {word} item names its points, not \"device\""
        )),
        (false, false) => match op {
            Dnp3Op::Unsolicited if target != Dnp3Target::Class || start < 1 || end > 3 => {
                Err("a dnp3 unsolicited item names classes 1-3".into())
            }
            Dnp3Op::Freeze if target != Dnp3Target::Counter => {
                Err("a dnp3 freeze item names counters".into())
            }
            Dnp3Op::AssignClass if !target.is_point() => {
                Err(format!("a dnp3 assign-class item names {POINTS} points"))
            }
            _ => Ok(()),
        },
    }
}

/// Parse one DNP3 rule (lowercased words) for `asset`.
pub(super) fn parse(
    asset: &Asset,
    words: &[String],
    text: &str,
) -> Result<Vec<ScopeItem>, CoreError> {
    if asset.endpoints.dnp3.is_none() {
        return Err(CoreError::ScopeNotExposed {
            asset: asset.id.clone(),
            what: "DNP3".into(),
        });
    }
    let Some((word, rest)) = words.split_first() else {
        return Err(invalid(text, USAGE));
    };
    let op = Dnp3Op::parse(word)
        .ok_or_else(|| invalid(text, format!("unknown DNP3 operation {word:?}; {USAGE}")))?;
    let item = |target, start, end| ScopeItem::Dnp3 {
        asset: asset.id.clone(),
        op,
        target,
        start,
        end,
    };
    if op.is_device_wide() {
        if !rest.is_empty() {
            return Err(invalid(
                text,
                format!("`{word}` is about the whole device and takes no target or range"),
            ));
        }
        return Ok(vec![item(Dnp3Target::Device, 0, 0)]);
    }
    let [target, ranges] = rest else {
        return Err(invalid(text, USAGE));
    };
    let target = Dnp3Target::parse(target).ok_or_else(|| {
        invalid(
            text,
            format!("unknown DNP3 target {target:?}; use class or {POINTS}"),
        )
    })?;
    let ranges = parse_ranges(ranges, text)?;
    let fits = |lo: u16, hi: u16| ranges.iter().all(|(s, e)| *s >= lo && *e <= hi);
    match (op, target) {
        (Dnp3Op::Read, Dnp3Target::Class) if !fits(0, 3) => {
            return Err(invalid(text, "DNP3 classes are 0-3"))
        }
        (Dnp3Op::Read, _) => {}
        (Dnp3Op::Operate, Dnp3Target::BinaryOutput | Dnp3Target::AnalogOutput) => {}
        (Dnp3Op::Operate, _) => {
            return Err(invalid(
                text,
                "only binary-output and analog-output can be operated",
            ))
        }
        (Dnp3Op::Unsolicited, Dnp3Target::Class) if fits(1, 3) => {}
        (Dnp3Op::Unsolicited, _) => {
            return Err(invalid(
                text,
                "unsolicited reporting is of event classes: `unsolicited class <1-3>` (class 0 is static data, never reported unsolicited)",
            ))
        }
        (Dnp3Op::Freeze, Dnp3Target::Counter) => {}
        (Dnp3Op::Freeze, _) => {
            return Err(invalid(
                text,
                "only counters are frozen: `freeze counter <ranges>`",
            ))
        }
        (Dnp3Op::AssignClass, t) if t.is_point() => {}
        (Dnp3Op::AssignClass, _) => {
            return Err(invalid(
                text,
                format!("assign-class names the points whose class changes: {POINTS}"),
            ))
        }
        (_, _) => return Err(invalid(text, USAGE)),
    }
    Ok(ranges
        .into_iter()
        .map(|(start, end)| item(target, start, end))
        .collect())
}

#[cfg(test)]
#[path = "dnp3_tests.rs"]
mod tests;
