//! The compliance report: what a site's privileged access looked like over a period, computed
//! from the evidence log in one pass, signed with the evidence key and bound to a signed
//! checkpoint, so an auditor verifies it offline as they verify a bundle.
//!
//! ## Layout
//! - this file — the report's data ([`ComplianceReport`] and its sections). Every figure is
//!   an integer (seconds, counts) so the signed JSON has one spelling.
//! - [`figures`]    — [`Accumulator`]: reads events in log order, keeps per-grant state only
//!   while a grant is open, and yields the sections.
//! - [`frameworks`] — each section mapped to NIST CSF 2.0, NIST SP 800-207 and the OWASP
//!   Non-Human Identity Top 10, each mapping citing the events that support it.
//! - [`render`]     — the printable HTML page (inline CSS and SVG charts, no scripts).
//! - [`signed`]     — [`SignedReport`]: sign, verify, and the HTML that carries its own
//!   signed JSON so that any changed byte of the page fails verification.
//!
//! The byte formats are specified in `docs/compliance-report.md`.

pub mod figures;
pub mod frameworks;
pub mod render;
pub mod signed;

use crate::SignedCheckpoint;
use serde::{Deserialize, Serialize};

pub use figures::{Accumulator, ExtraSections};
pub use signed::{sign_report, verify_report, verify_report_html, ReportError, SignedReport};

/// The `format` of a compliance report.
pub const REPORT_FORMAT: &str = "jitgate-compliance-report/1";

/// Events cited per section or mapping; the rest are counted.
pub const MAX_CITED: usize = 8;
/// Grants drawn per asset on the access timeline; the rest are counted.
pub const MAX_TIMELINE_GRANTS: usize = 60;
/// Assets on the timeline (the most exposed first).
pub const MAX_TIMELINE_ASSETS: usize = 20;
/// Partial and failed teardowns listed by grant.
pub const MAX_LISTED_TEARDOWNS: usize = 100;

/// The whole report (what is signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceReport {
    pub format: String,
    /// The log the figures were computed from (its checkpoint's origin).
    pub log_id: String,
    /// The site the report is restricted to; `None` = every site.
    pub site: Option<String>,
    /// Period start, RFC 3339 UTC, inclusive.
    pub from: String,
    /// Period end, RFC 3339 UTC, exclusive.
    pub to: String,
    pub generated_at: String,
    /// Events read: the log's first `tree_size` events, as this checkpoint commits to.
    pub checkpoint: SignedCheckpoint,
    pub grants: GrantFigures,
    pub teardowns: TeardownFigures,
    pub break_glass: BreakGlassFigures,
    pub operations: OperationFigures,
    /// Most exposed first.
    pub exposure_by_asset: Vec<AssetExposure>,
    /// One point per UTC day of the period.
    pub exposure_trend: Vec<TrendPoint>,
    pub timeline: Vec<AssetTimeline>,
    pub exceptions: Option<ExceptionFigures>,
    pub findings: Option<FindingFigures>,
    pub attestations: Option<AttestationFigures>,
    pub mappings: Vec<ControlMapping>,
}

/// Event sequence numbers cited (the first [`MAX_CITED`]) and how many there were in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cited {
    pub events: Vec<i64>,
    pub total: u64,
}

impl Cited {
    pub fn cite(&mut self, seq: i64) {
        if self.events.len() < MAX_CITED {
            self.events.push(seq);
        }
        self.total += 1;
    }

    /// Both citations, for a mapping that rests on two sections.
    pub fn merged(&self, other: &Cited) -> Cited {
        let mut events: Vec<i64> = self.events.iter().chain(&other.events).copied().collect();
        events.sort_unstable();
        events.dedup();
        events.truncate(MAX_CITED);
        Cited {
            events,
            total: self.total + other.total,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantFigures {
    pub requests_submitted: u64,
    pub requests_denied: u64,
    /// Grants issued in the period, by access path (`planned`, `routine`, `emergency`, …).
    pub issued: u64,
    pub issued_by_path: Vec<PathCount>,
    /// Grants that ended in the period, by end reason (`expired`, `completed`, …).
    pub ended: u64,
    pub ended_by_reason: Vec<PathCount>,
    /// Grants still open at the end of the period.
    pub open_at_end: u64,
    /// Of the grants that ended in the period, from `not_before` to the end.
    pub median_duration_secs: Option<i64>,
    pub p90_duration_secs: Option<i64>,
    /// Seconds of access open in the period, summed over grants.
    pub exposure_secs: i64,
    /// `grant.issued` events.
    pub cited: Cited,
}

/// A count under a name (an access path, an end reason, a finding kind).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathCount {
    pub name: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeardownFigures {
    pub verified: u64,
    pub partial: u64,
    pub failed: u64,
    /// Every partial and failed teardown of the period (the first [`MAX_LISTED_TEARDOWNS`]).
    pub not_verified: Vec<TeardownItem>,
    /// Final `teardown.verdict` events.
    pub cited: Cited,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeardownItem {
    pub grant_id: String,
    pub verdict: jitgate_core::teardown::TeardownVerdict,
    pub at: String,
    pub event: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassFigures {
    /// Break-glass grants issued in the period.
    pub grants: u64,
    /// Their post-session reviews: completed (of which with a finding, and late), and open.
    pub reviews_completed: u64,
    pub reviews_with_finding: u64,
    pub reviews_late: u64,
    pub reviews_open: u64,
    /// Break-glass `grant.issued` and their `review.*` events.
    pub cited: Cited,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationFigures {
    pub sessions: u64,
    pub sessions_refused: u64,
    pub operations_allowed: u64,
    pub operations_denied: u64,
    /// Denied operations and refused sessions: enforcement at work.
    pub cited: Cited,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetExposure {
    pub asset: String,
    pub grants: u64,
    pub exposure_secs: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendPoint {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub exposure_secs: i64,
    pub grants_issued: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetTimeline {
    pub asset: String,
    pub grants: Vec<TimelineGrant>,
    /// Grants on the asset not drawn (beyond [`MAX_TIMELINE_GRANTS`]).
    pub more: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineGrant {
    pub grant_id: String,
    pub subject: String,
    /// Clipped to the period.
    pub from: String,
    pub to: String,
    pub emergency: bool,
}

/// Standing exceptions (the exceptions register), as known when the report was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionFigures {
    pub active: u64,
    pub revalidated_in_period: u64,
    pub overdue_or_ended_unrevalidated: u64,
    pub ended_in_period: u64,
    pub cited: Cited,
}

/// Findings of the period (shared accounts, rubber-stamping, JIT that became standing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingFigures {
    pub total: u64,
    pub by_kind: Vec<PathCount>,
    pub cited: Cited,
}

/// Post-session attestations the policy required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationFigures {
    pub recorded: u64,
    pub missing: u64,
    pub cited: Cited,
}

/// Sections of the report a framework control is mapped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Grants,
    Teardowns,
    BreakGlass,
    Operations,
    Exceptions,
    Findings,
    Attestations,
    Evidence,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::Grants => "Just-in-time grants",
            Section::Teardowns => "Verified teardown",
            Section::BreakGlass => "Break-glass access and its reviews",
            Section::Operations => "Enforcement inside the protocol",
            Section::Exceptions => "Standing exceptions",
            Section::Findings => "Findings: shared accounts, rubber-stamping, standing JIT",
            Section::Attestations => "Post-session attestations",
            Section::Evidence => "Evidence integrity",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Framework {
    #[serde(rename = "NIST CSF 2.0")]
    NistCsf2,
    #[serde(rename = "NIST SP 800-207")]
    NistSp800_207,
    #[serde(rename = "OWASP NHI Top 10 2025")]
    OwaspNhi2025,
}

impl Framework {
    pub fn name(self) -> &'static str {
        match self {
            Framework::NistCsf2 => "NIST CSF 2.0",
            Framework::NistSp800_207 => "NIST SP 800-207",
            Framework::OwaspNhi2025 => "OWASP NHI Top 10 2025",
        }
    }
}

/// One section mapped to one control, with the events that support it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlMapping {
    pub section: Section,
    pub framework: Framework,
    pub control: String,
    pub title: String,
    /// How the section supports the control, in one sentence.
    pub how: String,
    /// The events that show it; empty when the period had none (said so, never padded).
    pub cited: Cited,
}
