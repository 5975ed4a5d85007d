//! The function words of the DNP3 scope beyond `read` and `operate`: which functions and
//! objects each allows (`docs/scope.md`, "DNP3"), and the one write every DNP3 grant allows.
//!
//! - `time-sync`: WRITE of one absolute time (g50v1, or g50v3 "last recorded time"),
//!   DELAY_MEASURE, RECORD_CURRENT_TIME, READ of time objects.
//! - `restart`: COLD_RESTART, WARM_RESTART (no objects).
//! - `unsolicited class <1-3>`: ENABLE/DISABLE_UNSOLICITED of exactly those classes.
//! - `freeze counter <ranges>`: the freeze functions (and `_NR` forms) of counters at those
//!   indexes; FREEZE_AT_TIME may carry its time (g50v2).
//! - `assign-class <type> <ranges>`: ASSIGN_CLASS of those points, to any class.
//! - `file`: the file functions and READ/WRITE of file objects (g70).
//! - `configure`: READ/WRITE of deadbands (g34) and device attributes (g0), and the
//!   application and configuration functions without objects.
//! - Any DNP3 item: clearing the restart indication, byte for byte [`CLEAR_RESTART`].

#![deny(clippy::indexing_slicing)]

use super::{read_slot, target_kind, AllowList, Refusal, READ_TARGETS};
use crate::function::FunctionCode;
use crate::header::iin2;
use crate::objects::{PointKind, Role};
use crate::parse::{Indexes, ObjectHeader, Request};
use crate::ranges::{covers, covers_indexes, describe};
use jitgate_core::scope::{Dnp3Op, Dnp3Target};

/// The objects of the write a master sends after every outstation restart: g80v1
/// (internal indications), index 7 (device restart), value 0 — with a 1-byte or 2-byte
/// start-stop range. Matched byte for byte, so nothing else rides along.
pub const CLEAR_RESTART: [&[u8]; 2] =
    [&[80, 1, 0x00, 7, 7, 0x00], &[80, 1, 0x01, 7, 0, 7, 0, 0x00]];

/// The scope word a function needs (for refusal reasons).
pub fn word_of(function: FunctionCode) -> Option<&'static str> {
    use FunctionCode::*;
    Some(match function {
        Read => "read",
        Select | Operate | DirectOperate | DirectOperateNoAck => "operate",
        Write => "time-sync, file or configure",
        DelayMeasurement | RecordCurrentTime => "time-sync",
        ColdRestart | WarmRestart => "restart",
        EnableUnsolicited | DisableUnsolicited => "unsolicited",
        ImmediateFreeze | ImmediateFreezeNoAck | FreezeClear | FreezeClearNoAck | FreezeAtTime
        | FreezeAtTimeNoAck => "freeze",
        AssignClass => "assign-class",
        OpenFile | CloseFile | DeleteFile | GetFileInfo | AuthenticateFile | AbortFile => "file",
        InitializeData
        | InitializeApplication
        | StartApplication
        | StopApplication
        | SaveConfiguration
        | ActivateConfig => "configure",
        _ => return None,
    })
}

impl AllowList {
    pub(super) fn compile_word(&mut self, op: Dnp3Op, target: Dnp3Target, start: u16, end: u16) {
        match (op, target) {
            (Dnp3Op::TimeSync, _) => self.time_sync = true,
            (Dnp3Op::Restart, _) => self.restart = true,
            (Dnp3Op::File, _) => self.file = true,
            (Dnp3Op::Configure, _) => self.configure = true,
            (Dnp3Op::Unsolicited, Dnp3Target::Class) => {
                set_classes(&mut self.unsolicited, start, end, 1)
            }
            (Dnp3Op::Freeze, Dnp3Target::Counter) => self.freeze.push((start, end)),
            (Dnp3Op::AssignClass, target) => {
                let slot = target_kind(target).and_then(read_slot);
                if let Some(r) = slot.and_then(|i| self.assign.get_mut(i)) {
                    r.push((start, end));
                }
            }
            // Combinations no rule produces allow nothing rather than something wider.
            _ => {}
        }
    }

    /// [`AllowList::permits_function`] for the functions of these words.
    pub(super) fn permits_word_function(&self, f: FunctionCode) -> bool {
        match word_of(f) {
            Some("time-sync") => self.time_sync,
            Some("restart") => self.restart,
            Some("unsolicited") => self.unsolicited.iter().any(|c| *c),
            Some("freeze") => !self.freeze.is_empty(),
            Some("assign-class") => self.assign.iter().any(|r| !r.is_empty()),
            Some("file") => self.file,
            Some("configure") => self.configure,
            _ => false,
        }
    }

    /// Decide a request of these words' functions (the function itself is permitted).
    pub(super) fn check_word_function(
        &self,
        f: FunctionCode,
        req: &Request<'_>,
    ) -> Result<(), Refusal> {
        match word_of(f) {
            Some("time-sync" | "restart") => self.only(f, req, |_| false),
            Some("unsolicited") => self.check_unsolicited(f, req),
            Some("freeze") => self.check_freeze(f, req),
            Some("assign-class") => self.check_assign(req),
            Some("file") => self.only(f, req, |h| h.group == 70),
            // Application identifiers (g90) and configuration names (g70v8, g110) are not in
            // the object table: such requests were refused "object unknown" before this.
            Some("configure") => self.only(f, req, |_| false),
            _ => Err(self.no_function(f)),
        }
    }

    /// Every header of `req` must satisfy `ok`; an object that does not is unknown here.
    fn only(
        &self,
        f: FunctionCode,
        req: &Request<'_>,
        ok: impl Fn(&ObjectHeader) -> bool,
    ) -> Result<(), Refusal> {
        match req.headers.iter().find(|h| !ok(h)) {
            None => Ok(()),
            Some(h) => Err(Refusal::new(
                iin2::OBJECT_UNKNOWN,
                format!("{} does not take {}", f.name(), header_text(h)),
            )),
        }
    }

    fn not_granted(&self, f: FunctionCode, h: &ObjectHeader, word: &str) -> Refusal {
        Refusal::new(
            iin2::OBJECT_UNKNOWN,
            format!(
                "{} of {}: the grant has no `{word}`; it allows {}",
                f.name(),
                header_text(h),
                self.describe()
            ),
        )
    }

    fn outside(&self, f: FunctionCode, h: &ObjectHeader) -> Refusal {
        Refusal::new(
            iin2::PARAMETER_ERROR,
            format!(
                "{} of {} is outside the grant; it allows {}",
                f.name(),
                header_text(h),
                self.describe()
            ),
        )
    }

    fn without_objects(f: FunctionCode) -> Refusal {
        Refusal::new(
            iin2::PARAMETER_ERROR,
            format!("{} without objects", f.name()),
        )
    }

    /// READ of objects outside the point types: time, attributes, deadbands, files, IIN.
    /// `None` for the objects the `read` rules decide.
    pub(super) fn check_read_other(&self, h: &ObjectHeader) -> Option<Result<(), Refusal>> {
        let (granted, word) = match h.group {
            50..=52 => (self.time_sync, "time-sync"),
            0 | 34 => (self.configure, "configure"),
            70 => (self.file, "file"),
            // The internal indications are the outstation's status, read by any grant.
            80 => (self.any, "read"),
            _ => return None,
        };
        Some(if granted {
            Ok(())
        } else {
            Err(self.not_granted(FunctionCode::Read, h, word))
        })
    }

    pub(super) fn check_write(&self, req: &Request<'_>) -> Result<(), Refusal> {
        let f = FunctionCode::Write;
        if CLEAR_RESTART.contains(&req.objects) {
            return Ok(());
        }
        if !(self.time_sync || self.file || self.configure) {
            return Err(self.no_function(f));
        }
        if req.headers.is_empty() {
            return Err(Self::without_objects(f));
        }
        req.headers.iter().try_for_each(|h| match h.group {
            50 if matches!(h.variation, 1 | 3) => {
                if !self.time_sync {
                    return Err(self.not_granted(f, h, "time-sync"));
                }
                match h.indexes {
                    Indexes::Count(1) | Indexes::Range { start: 0, stop: 0 } => Ok(()),
                    _ => Err(Refusal::new(
                        iin2::PARAMETER_ERROR,
                        format!("WRITE of {}: a time write is one object", header_text(h)),
                    )),
                }
            }
            0 | 34 if self.configure => Ok(()),
            0 | 34 => Err(self.not_granted(f, h, "configure")),
            70 if self.file => Ok(()),
            70 => Err(self.not_granted(f, h, "file")),
            80 => Err(Refusal::new(
                iin2::PARAMETER_ERROR,
                format!(
                    "WRITE of {}: only clearing the restart indication (g80v1 index 7 = 0) is allowed",
                    header_text(h)
                ),
            )),
            _ => Err(Refusal::new(
                iin2::OBJECT_UNKNOWN,
                format!("WRITE of {} is not allowed by any scope word", header_text(h)),
            )),
        })
    }

    fn check_unsolicited(&self, f: FunctionCode, req: &Request<'_>) -> Result<(), Refusal> {
        if req.headers.is_empty() {
            return Err(Self::without_objects(f));
        }
        req.headers.iter().try_for_each(|h| match h.kind {
            PointKind::Class(c) if c > 0 && self.unsolicited.get(usize::from(c)) == Some(&true) => {
                Ok(())
            }
            PointKind::Class(_) => Err(self.outside(f, h)),
            _ => Err(Refusal::new(
                iin2::OBJECT_UNKNOWN,
                format!(
                    "{} names event classes (g60v2-4), not {}",
                    f.name(),
                    header_text(h)
                ),
            )),
        })
    }

    fn check_freeze(&self, f: FunctionCode, req: &Request<'_>) -> Result<(), Refusal> {
        if req.headers.is_empty() {
            return Err(Self::without_objects(f));
        }
        let at_time = matches!(
            f,
            FunctionCode::FreezeAtTime | FunctionCode::FreezeAtTimeNoAck
        );
        req.headers.iter().try_for_each(|h| match (h.kind, h.role) {
            (PointKind::Time, _) if at_time && (h.group, h.variation) == (50, 2) => Ok(()),
            (PointKind::Counter, Role::Static) => {
                let whole = matches!(h.indexes, Indexes::All | Indexes::Count(_));
                if (whole && covers(&self.freeze, 0, 0xFFFF))
                    || (!whole && covers_indexes(&self.freeze, &h.indexes))
                {
                    Ok(())
                } else {
                    Err(self.outside(f, h))
                }
            }
            _ => Err(Refusal::new(
                iin2::OBJECT_UNKNOWN,
                format!("{} freezes counters, not {}", f.name(), header_text(h)),
            )),
        })
    }

    fn check_assign(&self, req: &Request<'_>) -> Result<(), Refusal> {
        let f = FunctionCode::AssignClass;
        let mut points = 0;
        for h in &req.headers {
            // The class the points that follow are assigned to: any class.
            if matches!(h.kind, PointKind::Class(_)) {
                continue;
            }
            let slot = match h.role {
                Role::Static => read_slot(h.kind),
                _ => None,
            };
            let ranges = slot
                .and_then(|i| self.assign.get(i))
                .map_or(&[][..], Vec::as_slice);
            if ranges.is_empty() {
                return Err(self.not_granted(f, h, "assign-class"));
            }
            if !covers_indexes(ranges, &h.indexes) {
                return Err(self.outside(f, h));
            }
            points += 1;
        }
        if points == 0 {
            return Err(Self::without_objects(f));
        }
        Ok(())
    }

    /// The words' part of [`AllowList::describe`].
    pub(super) fn describe_words(&self, parts: &mut Vec<String>) {
        if self.time_sync {
            parts.push("time-sync".into());
        }
        if self.restart {
            parts.push("restart".into());
        }
        let classes: Vec<String> = (1u8..4)
            .filter(|c| self.unsolicited.get(usize::from(*c)) == Some(&true))
            .map(|c| c.to_string())
            .collect();
        if !classes.is_empty() {
            parts.push(format!("unsolicited class {}", classes.join(",")));
        }
        if !self.freeze.is_empty() {
            parts.push(format!("freeze counter {}", describe(&self.freeze)));
        }
        for (kind, ranges) in READ_TARGETS.iter().zip(&self.assign) {
            if !ranges.is_empty() {
                parts.push(format!("assign-class {} {}", kind.name(), describe(ranges)));
            }
        }
        if self.file {
            parts.push("file".into());
        }
        if self.configure {
            parts.push("configure".into());
        }
    }
}

/// Mark classes `start..=end` (clamped to 0-3, and to at least `first`).
pub(super) fn set_classes(classes: &mut [bool; 4], start: u16, end: u16, first: u16) {
    for class in (start.max(first)..=end.min(3)).map(usize::from) {
        if let Some(c) = classes.get_mut(class) {
            *c = true;
        }
    }
}

/// "analog-input 0-65535 (g30v0, qualifier 0x01)" for reasons.
pub(super) fn header_text(h: &ObjectHeader) -> String {
    let which = match &h.indexes {
        Indexes::All => "all".to_string(),
        Indexes::Range { start, stop } => format!("{start}-{stop}"),
        Indexes::Count(n) => format!("up to {n}"),
        Indexes::List(list) => {
            let mut shown: Vec<String> = list.iter().take(8).map(u32::to_string).collect();
            if list.len() > 8 {
                shown.push(format!("and {} more", list.len() - 8));
            }
            format!("[{}]", shown.join(","))
        }
    };
    let kind = match (h.kind, h.role) {
        (PointKind::Class(c), _) => format!("class {c}"),
        (kind, Role::Event) => format!("{} events", kind.name()),
        (kind, _) => kind.name().to_string(),
    };
    format!(
        "{kind} {which} (g{}v{}, qualifier {:#04x})",
        h.group, h.variation, h.qualifier
    )
}

#[cfg(test)]
#[path = "allow_words_tests.rs"]
mod tests;
