//! Findings over the evidence of a period: shared accounts, rubber-stamping, JIT access that
//! became standing, and the standing-privilege inventory.
//!
//! Everything here is computed from the evidence log read **once, in sequence order**
//! ([`FindingsScan::observe_canonical`] per event, then [`FindingsScan::finish`]). The state
//! kept while reading is bounded by what is live (open requests, live grants and sessions)
//! and by the subjects and assets seen, never by the number of events: a month of a large
//! plant is mostly `operation` events, which are recognised by their kind and skipped
//! without decoding their data.
//!
//! ## Layout
//! - this file — the finding and its evidence, the thresholds ([`FindingsConfig`]), and the
//!   scan that hands each event to the detectors.
//! - [`sessions`] — one identity's sessions from several hosts or client keys at once
//!   (vendors: from several places), and workloads used from changing sources.
//! - `approvals` — approvers who repeatedly approve each other.
//! - `coverage` — JIT that became standing: grants covering most of the period, or
//!   renewed back to back.
//! - [`standing`] — the standing-privilege inventory: everything that grants access outside
//!   a just-in-time grant, with its exposure.

mod approvals;
mod coverage;
pub mod sessions;
pub mod standing;
#[cfg(test)]
mod tests;

use crate::event::{Event, EventKind};
use crate::inventory::IdentityKind;
use crate::payload::RequestSubmitted;
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

pub use standing::{
    ApiKeyInput, StandingExceptionInput, StandingInputs, StandingItem, StandingKind,
};

/// What a finding is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// One identity had sessions from several client hosts or client keys at overlapping
    /// times: the account is likely shared.
    SharedIdentity,
    /// A workload's sessions came from more source hosts over the period than allowed.
    WorkloadChangingSources,
    /// A vendor identity was used at the same time from different hosts.
    VendorConcurrentUse,
    /// Two people approved each other's requests, each at least the threshold times.
    MutualApproval,
    /// A subject's grants on one asset covered most of the period.
    StandingCoverage,
    /// A subject's grants on one asset were renewed back to back, many times in a row.
    BackToBackRenewal,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::SharedIdentity => "shared_identity",
            FindingKind::WorkloadChangingSources => "workload_changing_sources",
            FindingKind::VendorConcurrentUse => "vendor_concurrent_use",
            FindingKind::MutualApproval => "mutual_approval",
            FindingKind::StandingCoverage => "standing_coverage",
            FindingKind::BackToBackRenewal => "back_to_back_renewal",
        }
    }

    /// JIT access that became standing (also listed in the standing inventory).
    pub fn is_standing(self) -> bool {
        matches!(
            self,
            FindingKind::StandingCoverage | FindingKind::BackToBackRenewal
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// The evidence events that support a finding: their sequence numbers in the log (the
/// first [`FindingsConfig::evidence_cap`]), and how many more there are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceRefs {
    pub seqs: Vec<i64>,
    /// Supporting events beyond the cap, not listed.
    pub more: u64,
}

impl EvidenceRefs {
    /// Add `seq` (once) unless the cap is reached, in which case it is counted.
    pub fn push(&mut self, seq: i64, cap: usize) {
        if self.seqs.contains(&seq) {
            return;
        }
        if self.seqs.len() < cap {
            self.seqs.push(seq);
            self.seqs.sort_unstable();
        } else {
            self.more += 1;
        }
    }

    pub fn extend(&mut self, other: &EvidenceRefs, cap: usize) {
        for s in &other.seqs {
            self.push(*s, cap);
        }
        self.more += other.more;
    }

    /// Every supporting event, listed or not.
    pub fn total(&self) -> u64 {
        self.seqs.len() as u64 + self.more
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    /// Stable within a period: kind, subjects and asset (the key lists are paged by).
    pub id: String,
    pub kind: FindingKind,
    /// The identity (or, for mutual approval, the two people) it is about, sorted.
    pub subjects: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// When the behaviour was first and last seen in the period.
    #[serde(with = "crate::event::millis")]
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[serde(with = "crate::event::millis")]
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    pub severity: Severity,
    /// One line for a person.
    pub summary: String,
    pub evidence: EvidenceRefs,
}

/// The thresholds of the detectors (`[findings]` in the server configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FindingsConfig {
    /// Evidence events listed per finding (the rest are counted).
    pub evidence_cap: usize,
    /// A workload's sessions may come from this many distinct source hosts in a period;
    /// one more is a finding.
    pub workload_max_sources: usize,
    /// Approvals each way before two people approving each other is a finding.
    pub mutual_approvals: u32,
    /// Share of the period (percent) a subject's grants on one asset may cover before the
    /// access is called standing.
    pub standing_coverage_percent: u32,
    /// ... and at least this many hours in all: a few minutes of access in a short period
    /// covers most of it without anything standing.
    pub standing_min_hours: i64,
    /// A grant starting at most this many minutes after the previous one on the same asset
    /// ended (or while it is still active) is a back-to-back renewal.
    pub back_to_back_gap_minutes: i64,
    /// Renewals in a row that make a finding.
    pub back_to_back_renewals: u32,
}

impl Default for FindingsConfig {
    fn default() -> Self {
        FindingsConfig {
            evidence_cap: 20,
            workload_max_sources: 1,
            mutual_approvals: 3,
            standing_coverage_percent: 60,
            standing_min_hours: 24,
            back_to_back_gap_minutes: 30,
            back_to_back_renewals: 3,
        }
    }
}

impl FindingsConfig {
    /// What is wrong with the thresholds, in words that say what to write instead.
    pub fn validate(&self) -> Result<(), String> {
        if self.evidence_cap == 0 || self.evidence_cap > 1000 {
            return Err(format!(
                "[findings] evidence_cap = {}: use 1 to 1000 events per finding",
                self.evidence_cap
            ));
        }
        if self.workload_max_sources == 0 {
            return Err("[findings] workload_max_sources = 0: a workload needs at least one source; use 1 or more".into());
        }
        if self.mutual_approvals == 0 {
            return Err(
                "[findings] mutual_approvals = 0 would flag every approval; use 1 or more".into(),
            );
        }
        if !(1..=100).contains(&self.standing_coverage_percent) {
            return Err(format!(
                "[findings] standing_coverage_percent = {}: use a percentage from 1 to 100",
                self.standing_coverage_percent
            ));
        }
        if !(0..=366 * 24).contains(&self.standing_min_hours) {
            return Err(format!(
                "[findings] standing_min_hours = {}: use 0 to 8784 (a year)",
                self.standing_min_hours
            ));
        }
        if !(0..=7 * 24 * 60).contains(&self.back_to_back_gap_minutes) {
            return Err(format!(
                "[findings] back_to_back_gap_minutes = {}: use 0 to 10080 (one week)",
                self.back_to_back_gap_minutes
            ));
        }
        if self.back_to_back_renewals == 0 {
            return Err(
                "[findings] back_to_back_renewals = 0 would flag every grant; use 1 or more".into(),
            );
        }
        Ok(())
    }
}

/// The period findings are computed for: `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Period {
    /// A period that ends after it starts, or what to do instead.
    pub fn new(from: Timestamp, to: Timestamp) -> Result<Period, String> {
        if to <= from {
            return Err(format!(
                "the period must end after it starts (from {} to {}): give `to` later than `from`",
                crate::event::rfc3339(from),
                crate::event::rfc3339(to)
            ));
        }
        Ok(Period { from, to })
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        t >= self.from && t < self.to
    }

    pub fn secs(&self) -> i64 {
        (self.to - self.from).num_seconds().max(1)
    }

    /// Seconds of `[start, end)` inside the period.
    pub fn overlap_secs(&self, start: Timestamp, end: Timestamp) -> i64 {
        let s = start.max(self.from);
        let e = end.min(self.to);
        (e - s).num_seconds().max(0)
    }
}

/// What came out of one read of a period's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeriodReport {
    #[serde(with = "crate::event::millis")]
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[serde(with = "crate::event::millis")]
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// Events read (the whole log up to the end of the period).
    pub events_read: u64,
    /// Sorted by id.
    pub findings: Vec<Finding>,
    /// Sorted by id.
    pub standing: Vec<StandingItem>,
}

/// A request while it is open: who asked, for whom, on which assets.
#[derive(Debug, Clone)]
pub(crate) struct OpenRequest {
    pub requester: String,
    pub assets: Vec<String>,
}

/// Findings of the same kind about the same subjects and asset, gathered into one.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    found: BTreeMap<(FindingKind, Vec<String>, Option<String>), Acc>,
}

#[derive(Debug)]
struct Acc {
    from: Timestamp,
    to: Timestamp,
    occurrences: u64,
    evidence: EvidenceRefs,
    detail: String,
}

impl Gathered {
    /// One more occurrence (seen at `at`, supported by `seqs`); `detail` is the latest
    /// description, used in the summary.
    pub fn add(
        &mut self,
        kind: FindingKind,
        (subjects, asset): (Vec<String>, Option<String>),
        span: (Timestamp, Timestamp),
        seqs: &[i64],
        detail: String,
        cap: usize,
    ) {
        let acc = self
            .found
            .entry((kind, subjects, asset))
            .or_insert_with(|| Acc {
                from: span.0,
                to: span.1,
                occurrences: 0,
                evidence: EvidenceRefs::default(),
                detail: String::new(),
            });
        acc.from = acc.from.min(span.0);
        acc.to = acc.to.max(span.1);
        acc.occurrences += 1;
        for s in seqs {
            acc.evidence.push(*s, cap);
        }
        acc.detail = detail;
    }

    /// Supporting events counted (beyond the cap) for a finding already added.
    pub fn add_more(
        &mut self,
        kind: FindingKind,
        subjects: &[String],
        asset: Option<&str>,
        more: u64,
    ) {
        if let Some(acc) = self
            .found
            .get_mut(&(kind, subjects.to_vec(), asset.map(String::from)))
        {
            acc.evidence.more += more;
        }
    }

    pub fn into_findings(self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .found
            .into_iter()
            .map(|((kind, subjects, asset), acc)| {
                let id = finding_id(kind, &subjects, asset.as_deref());
                Finding {
                    id,
                    severity: severity_of(kind),
                    summary: summary_of(
                        kind,
                        &subjects,
                        asset.as_deref(),
                        acc.occurrences,
                        &acc.detail,
                    ),
                    kind,
                    subjects,
                    asset,
                    from: acc.from,
                    to: acc.to,
                    evidence: acc.evidence,
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

pub fn finding_id(kind: FindingKind, subjects: &[String], asset: Option<&str>) -> String {
    let mut id = format!("{}:{}", kind.as_str(), subjects.join("+"));
    if let Some(a) = asset {
        id.push('@');
        id.push_str(a);
    }
    id
}

fn severity_of(kind: FindingKind) -> Severity {
    match kind {
        FindingKind::SharedIdentity
        | FindingKind::VendorConcurrentUse
        | FindingKind::MutualApproval => Severity::High,
        FindingKind::WorkloadChangingSources | FindingKind::StandingCoverage => Severity::Medium,
        FindingKind::BackToBackRenewal => Severity::Low,
    }
}

fn summary_of(
    kind: FindingKind,
    subjects: &[String],
    asset: Option<&str>,
    occurrences: u64,
    detail: &str,
) -> String {
    let who = subjects.join(" and ");
    let on = asset.map(|a| format!(" on {a}")).unwrap_or_default();
    match kind {
        FindingKind::SharedIdentity => format!(
            "{who} had overlapping sessions from different hosts or client keys {occurrences} time(s) ({detail})"
        ),
        FindingKind::WorkloadChangingSources => {
            format!("workload {who} was used from changing sources ({detail})")
        }
        FindingKind::VendorConcurrentUse => format!(
            "vendor identity {who} was used at the same time from different places {occurrences} time(s) ({detail})"
        ),
        FindingKind::MutualApproval => format!("{who} approve each other's requests ({detail})"),
        FindingKind::StandingCoverage => {
            format!("{who} held access{on} for {detail} of the period: JIT became standing")
        }
        FindingKind::BackToBackRenewal => {
            format!("{who} renewed access{on} back to back ({detail}): JIT became standing")
        }
    }
}

/// The kinds the detectors read; every other event (operations above all) is skipped.
fn wanted(kind: &str) -> Option<EventKind> {
    Some(match kind {
        "request.submitted" => EventKind::RequestSubmitted,
        "approval.recorded" => EventKind::ApprovalRecorded,
        "request.denied" => EventKind::RequestDenied,
        "request.withdrawn" => EventKind::RequestWithdrawn,
        "request.lapsed" => EventKind::RequestLapsed,
        "grant.issued" => EventKind::GrantIssued,
        "grant.ended" => EventKind::GrantEnded,
        "credential.issued" => EventKind::CredentialIssued,
        "session.started" => EventKind::SessionStarted,
        "session.ended" => EventKind::SessionEnded,
        "teardown.check" => EventKind::TeardownCheck,
        "inventory.changed" => EventKind::InventoryChanged,
        _ => return None,
    })
}

/// One pass over the log for one period. Feed every event in sequence order, then
/// [`FindingsScan::finish`].
#[derive(Debug)]
pub struct FindingsScan {
    period: Period,
    config: FindingsConfig,
    identity_kinds: HashMap<String, IdentityKind>,
    /// workload → the people responsible for it (their requests are those people's work).
    owners: HashMap<String, Vec<String>>,
    requests: HashMap<String, OpenRequest>,
    events_read: u64,
    sessions: sessions::SessionDetector,
    approvals: approvals::ApprovalDetector,
    coverage: coverage::CoverageDetector,
    usage: standing::UsageTracker,
}

impl FindingsScan {
    /// `identity_kinds`: each identity's kind (from the inventory), so vendors and
    /// workloads are told apart.
    pub fn new(
        period: Period,
        config: FindingsConfig,
        identity_kinds: HashMap<String, IdentityKind>,
    ) -> Self {
        FindingsScan {
            period,
            coverage: coverage::CoverageDetector::new(&config),
            config,
            identity_kinds,
            owners: HashMap::new(),
            requests: HashMap::new(),
            events_read: 0,
            sessions: sessions::SessionDetector::default(),
            approvals: approvals::ApprovalDetector::default(),
            usage: standing::UsageTracker::default(),
        }
    }

    /// Each workload's owners (from the inventory): a request a workload files with a key
    /// is counted as its owners' when looking for approvers who approve each other.
    pub fn with_owners(mut self, owners: HashMap<String, Vec<String>>) -> Self {
        self.owners = owners;
        self
    }

    /// One event as the log stores it (its canonical JSON). Events of kinds no detector
    /// reads are skipped after reading their kind; text that does not parse is skipped
    /// too (verifying the log is `evidence verify`'s job, not this one's).
    pub fn observe_canonical(&mut self, seq: i64, canonical: &str) {
        let kind = crate::event::kind_of_canonical(canonical);
        self.observe_canonical_of_kind(seq, kind, canonical);
    }

    /// [`FindingsScan::observe_canonical`] when the reader already found the event's kind
    /// ([`crate::event::kind_of_canonical`]): one look serves every reader of the same read.
    pub fn observe_canonical_of_kind(&mut self, seq: i64, kind: Option<&str>, canonical: &str) {
        self.events_read += 1;
        if kind.and_then(wanted).is_none() {
            return;
        }
        if let Ok(event) = serde_json::from_str::<Event>(canonical) {
            self.dispatch(seq, &event);
        }
    }

    /// One event already decoded.
    pub fn observe(&mut self, seq: i64, event: &Event) {
        self.events_read += 1;
        if wanted(event.kind.as_str()).is_some() {
            self.dispatch(seq, event);
        }
    }

    fn dispatch(&mut self, seq: i64, e: &Event) {
        if e.at >= self.period.to {
            return;
        }
        let cap = self.config.evidence_cap;
        let ctx = Ctx {
            period: self.period,
            config: &self.config,
            kinds: &self.identity_kinds,
            owners: &self.owners,
            cap,
        };
        if !e.actor.0.starts_with("system") {
            self.usage.acted(&e.actor.0, e.at, &ctx);
        }
        match e.kind {
            EventKind::RequestSubmitted => {
                if let (Some(id), Some(p)) = (&e.request_id, e.payload::<RequestSubmitted>()) {
                    self.requests.insert(
                        id.clone(),
                        OpenRequest {
                            assets: crate::scope::Scope::assets_of_canonical(&p.scope),
                            requester: p.requester,
                        },
                    );
                }
            }
            EventKind::RequestDenied | EventKind::RequestWithdrawn | EventKind::RequestLapsed => {
                if let Some(id) = &e.request_id {
                    self.requests.remove(id);
                }
            }
            EventKind::ApprovalRecorded => {
                self.approvals.approval(seq, e, &self.requests, &ctx);
            }
            EventKind::GrantIssued => {
                let request = e
                    .request_id
                    .as_ref()
                    .and_then(|id| self.requests.remove(id));
                self.coverage.issued(seq, e, request, &ctx);
            }
            EventKind::GrantEnded => {
                if let Some(subject) = self.coverage.ended(e, &ctx) {
                    if let Some(g) = &e.grant_id {
                        self.sessions.grant_ended(&subject, g);
                    }
                }
            }
            EventKind::CredentialIssued => self.sessions.credential(e),
            EventKind::SessionStarted => {
                if let Some((subject, asset)) = self.sessions.started(seq, e, &ctx) {
                    self.usage.session(&subject, &asset, e.at, &ctx);
                }
            }
            EventKind::SessionEnded => self.sessions.ended(e),
            EventKind::TeardownCheck => self.usage.teardown_check(seq, e, &ctx),
            EventKind::InventoryChanged => self.usage.inventory(e),
            _ => {}
        }
    }

    /// The findings and the standing inventory of the period.
    pub fn finish(self, inputs: &StandingInputs<'_>) -> PeriodReport {
        let ctx = Ctx {
            period: self.period,
            config: &self.config,
            kinds: &self.identity_kinds,
            owners: &self.owners,
            cap: self.config.evidence_cap,
        };
        let mut gathered = Gathered::default();
        self.sessions.finish(&mut gathered, &ctx);
        self.approvals.finish(&mut gathered, &ctx);
        let standing_jit = self.coverage.finish(&mut gathered, &ctx);
        let findings = gathered.into_findings();
        let standing = standing::inventory(inputs, &self.usage, &standing_jit, &ctx);
        PeriodReport {
            from: self.period.from,
            to: self.period.to,
            events_read: self.events_read,
            findings,
            standing,
        }
    }
}

/// What every detector needs to know about the scan.
pub(crate) struct Ctx<'a> {
    pub period: Period,
    pub config: &'a FindingsConfig,
    pub kinds: &'a HashMap<String, IdentityKind>,
    pub owners: &'a HashMap<String, Vec<String>>,
    pub cap: usize,
}

impl Ctx<'_> {
    pub fn kind_of(&self, identity: &str) -> Option<IdentityKind> {
        self.kinds.get(identity).copied()
    }
}
