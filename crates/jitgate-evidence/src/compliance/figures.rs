//! [`Accumulator`]: the report's figures from the evidence log, read once in log order.
//!
//! Memory grows with the grants of the log (one small entry each, dropped when its teardown
//! is final), never with its events. Events are counted by the time they carry: a grant that
//! began before the period and ended inside it counts its exposure inside the period only.

use super::{
    AssetExposure, AssetTimeline, AttestationFigures, BreakGlassFigures, ComplianceReport,
    ExceptionFigures, FindingFigures, GrantFigures, OperationFigures, PathCount, TeardownFigures,
    TeardownItem, TimelineGrant, TrendPoint, MAX_LISTED_TEARDOWNS, MAX_TIMELINE_ASSETS,
    MAX_TIMELINE_GRANTS, REPORT_FORMAT,
};
use crate::{rfc3339, SignedCheckpoint, Timestamp};
use chrono::{DateTime, Duration, NaiveTime, Utc};
use jitgate_core::event::{Event, EventKind};
use jitgate_core::lifecycle::{AccessPath, EndReason, ReviewReason};
use jitgate_core::payload::{
    GrantEnded, GrantIssued, RequestDecided, RequestSubmitted, TeardownVerdictData,
};
use jitgate_core::scope::Scope;
use jitgate_core::server_payload::{ReviewCompleted, ReviewOpened};
use jitgate_core::teardown::TeardownVerdict;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Sections computed elsewhere (the findings) that
/// the report carries beside its own figures.
#[derive(Debug, Clone, Default)]
pub struct ExtraSections {
    pub findings: Option<FindingFigures>,
}

#[derive(Debug)]
struct RequestInfo {
    assets: Arc<[String]>,
    path: &'static str,
    /// The decision's `@attestation("required")`.
    attestation: bool,
}

#[derive(Debug)]
struct GrantInfo {
    assets: Arc<[String]>,
    /// The subject owes an attestation once the grant ends.
    attestation: bool,
    /// The access path (`standing` for an exception's grant).
    path: &'static str,
    subject: String,
    not_before: Timestamp,
    expires_at: Timestamp,
    emergency: bool,
    /// A break-glass grant issued in the period: its reviews are counted.
    break_glass_in_period: bool,
    /// Set once `grant.ended` was read.
    ended: bool,
    break_glass_review_open: bool,
}

/// A grant not ended when the log was read: id, subject, assets, not before, expiry,
/// emergency.
type StillOpen = (String, String, Arc<[String]>, Timestamp, Timestamp, bool);

/// Reads events in log order; [`Accumulator::finish`] makes the report.
#[derive(Debug)]
pub struct Accumulator {
    from: Timestamp,
    to: Timestamp,
    /// Assets of the site the report is restricted to (`None` = every asset).
    site: Option<(String, BTreeSet<String>)>,
    requests: HashMap<String, RequestInfo>,
    grants_open: HashMap<String, GrantInfo>,
    grants: GrantFigures,
    by_path: BTreeMap<String, u64>,
    by_reason: BTreeMap<String, u64>,
    durations: Vec<i64>,
    assets: BTreeMap<String, (u64, i64)>,
    days: Vec<(i64, u64)>,
    timeline: BTreeMap<String, (Vec<TimelineGrant>, u64)>,
    teardowns: TeardownFigures,
    break_glass: BreakGlassFigures,
    operations: OperationFigures,
    exceptions: ExceptionFigures,
    attestations: AttestationFigures,
    /// Grants ended in the period whose subject owes an attestation not yet read.
    attestations_owed: HashSet<String>,
    events_read: u64,
}

fn day_start(t: Timestamp) -> Timestamp {
    DateTime::<Utc>::from_naive_utc_and_offset(t.date_naive().and_time(NaiveTime::MIN), Utc)
}

impl Accumulator {
    /// A report over `[from, to)`; `site` restricts it to grants naming one of the site's
    /// assets (`site_assets`, from the inventory).
    pub fn new(from: Timestamp, to: Timestamp, site: Option<(String, BTreeSet<String>)>) -> Self {
        let mut days = Vec::new();
        let mut d = day_start(from);
        while d < to {
            days.push((0, 0));
            d += Duration::days(1);
        }
        Accumulator {
            from,
            to,
            site,
            requests: HashMap::new(),
            grants_open: HashMap::new(),
            grants: GrantFigures::default(),
            by_path: BTreeMap::new(),
            by_reason: BTreeMap::new(),
            durations: Vec::new(),
            assets: BTreeMap::new(),
            days,
            timeline: BTreeMap::new(),
            teardowns: TeardownFigures::default(),
            break_glass: BreakGlassFigures::default(),
            operations: OperationFigures::default(),
            exceptions: ExceptionFigures::default(),
            attestations: AttestationFigures::default(),
            attestations_owed: HashSet::new(),
            events_read: 0,
        }
    }

    fn in_period(&self, t: Timestamp) -> bool {
        t >= self.from && t < self.to
    }

    fn at_site(&self, assets: &[String]) -> bool {
        match &self.site {
            None => true,
            Some((_, set)) => assets.iter().any(|a| set.contains(a)),
        }
    }

    fn site_assets<'a>(&'a self, assets: &'a [String]) -> impl Iterator<Item = &'a String> + 'a {
        assets.iter().filter(move |a| match &self.site {
            None => true,
            Some((_, set)) => set.contains(*a),
        })
    }

    /// Whether the events of this grant count (it exists and names an asset of the site).
    fn counts(&self, grant_id: Option<&str>) -> bool {
        grant_id
            .and_then(|g| self.grants_open.get(g))
            .is_some_and(|g| self.at_site(&g.assets))
    }

    /// Read one event (in log order).
    pub fn observe(&mut self, seq: i64, event: &Event) {
        self.events_read += 1;
        let in_period = self.in_period(event.at);
        match event.kind {
            EventKind::RequestSubmitted => self.request_submitted(event, in_period),
            EventKind::RequestDecided => {
                if let Some(d) = event.payload::<RequestDecided>() {
                    if let Some(r) = event
                        .request_id
                        .as_deref()
                        .and_then(|r| self.requests.get_mut(r))
                    {
                        r.attestation = d.obligations.attestation;
                    }
                    let at_site = event
                        .request_id
                        .as_deref()
                        .and_then(|r| self.requests.get(r))
                        .is_some_and(|r| self.at_site(&r.assets));
                    if in_period && at_site && !d.allowed {
                        self.grants.requests_denied += 1;
                    }
                }
            }
            EventKind::GrantIssued => self.grant_issued(seq, event, in_period),
            EventKind::ExceptionRevalidated
                if in_period && self.counts(event.grant_id.as_deref()) =>
            {
                self.exceptions.revalidated_in_period += 1;
                self.exceptions.cited.cite(seq);
            }
            EventKind::GrantEnded => self.grant_ended(event, in_period),
            EventKind::AttestationRecorded => {
                if let Some(g) = event.grant_id.as_deref() {
                    if self.attestations_owed.remove(g) {
                        self.attestations.recorded += 1;
                        self.attestations.cited.cite(seq);
                    }
                }
            }
            EventKind::TeardownVerdict => self.teardown(seq, event, in_period),
            EventKind::ReviewOpened | EventKind::ReviewCompleted => {
                self.review(seq, event, in_period)
            }
            EventKind::SessionStarted | EventKind::SessionRefused | EventKind::Operation => {
                // Operations are most of the log: read the one field in place (the shape of
                // `OperationOutcome`) instead of cloning the detail.
                let allowed = event
                    .data
                    .get("detail")
                    .and_then(|d| d.get("allowed"))
                    .and_then(serde_json::Value::as_bool);
                self.gateway(
                    seq,
                    event.kind,
                    event.at,
                    event.grant_id.as_deref(),
                    allowed,
                );
            }
            _ => {}
        }
    }

    /// One event as the log stores it (its canonical JSON). Gateway events — most of the
    /// log — are read through a small shape of their own (time, grant, verdict); kinds the
    /// report does not count are skipped once their kind is read; the rest are decoded whole.
    pub fn observe_canonical(
        &mut self,
        seq: i64,
        canonical: &str,
    ) -> Result<(), serde_json::Error> {
        let kind = jitgate_core::event::kind_of_canonical(canonical);
        self.observe_canonical_of_kind(seq, kind, canonical)
    }

    /// [`Accumulator::observe_canonical`] when the reader already found the event's kind
    /// (`jitgate_core::event::kind_of_canonical`); `None` when the text has none, which is
    /// refused as not an event.
    pub fn observe_canonical_of_kind(
        &mut self,
        seq: i64,
        kind: Option<&str>,
        canonical: &str,
    ) -> Result<(), serde_json::Error> {
        let Some(kind) = kind else {
            // Not an event: let the parser say why.
            let event: Event = serde_json::from_str(canonical)?;
            self.observe(seq, &event);
            return Ok(());
        };
        match kind {
            "session.started" | "session.refused" | "operation" => {
                self.events_read += 1;
                let g: GatewayHead<'_> = serde_json::from_str(canonical)?;
                let kind = match kind {
                    "session.started" => EventKind::SessionStarted,
                    "session.refused" => EventKind::SessionRefused,
                    _ => EventKind::Operation,
                };
                let allowed = g.data.and_then(|d| d.detail).and_then(|d| d.allowed);
                self.gateway(seq, kind, g.at, g.grant_id.as_deref(), allowed);
            }
            "request.submitted"
            | "request.decided"
            | "grant.issued"
            | "grant.ended"
            | "teardown.verdict"
            | "review.opened"
            | "review.completed"
            | "exception.revalidated"
            | "attestation.recorded" => {
                let event: Event = serde_json::from_str(canonical)?;
                self.observe(seq, &event);
            }
            _ => self.events_read += 1,
        }
        Ok(())
    }

    fn gateway(
        &mut self,
        seq: i64,
        kind: EventKind,
        at: Timestamp,
        grant_id: Option<&str>,
        allowed: Option<bool>,
    ) {
        if !self.in_period(at) || !self.counts(grant_id) {
            return;
        }
        match kind {
            EventKind::SessionStarted => self.operations.sessions += 1,
            EventKind::SessionRefused => {
                self.operations.sessions_refused += 1;
                self.operations.cited.cite(seq);
            }
            _ => match allowed {
                Some(true) => self.operations.operations_allowed += 1,
                Some(false) => {
                    self.operations.operations_denied += 1;
                    self.operations.cited.cite(seq);
                }
                None => {}
            },
        }
    }

    fn request_submitted(&mut self, event: &Event, in_period: bool) {
        let (Some(id), Some(p)) = (
            event.request_id.as_deref(),
            event.payload::<RequestSubmitted>(),
        ) else {
            return;
        };
        let assets: Arc<[String]> = Scope::assets_of_canonical(&p.scope).into();
        if in_period && self.at_site(&assets) {
            self.grants.requests_submitted += 1;
        }
        self.requests.insert(
            id.to_string(),
            RequestInfo {
                assets,
                path: p.path.as_str(),
                attestation: false,
            },
        );
    }

    fn grant_issued(&mut self, seq: i64, event: &Event, in_period: bool) {
        let (Some(grant_id), Some(p)) = (event.grant_id.as_deref(), event.payload::<GrantIssued>())
        else {
            return;
        };
        let request = event
            .request_id
            .as_deref()
            .and_then(|r| self.requests.remove(r));
        let (assets, path, attestation) = match request {
            Some(r) => (r.assets, r.path, r.attestation),
            None => (Arc::from(Vec::new()), "unknown", false),
        };
        if !self.at_site(&assets) {
            return;
        }
        if in_period {
            self.grants.issued += 1;
            self.grants.cited.cite(seq);
            *self.by_path.entry(path.to_string()).or_default() += 1;
            if let Some(i) = self.day_index(event.at) {
                self.days[i].1 += 1;
            }
            if path == AccessPath::Standing.as_str() {
                self.exceptions.cited.cite(seq);
            }
            if p.emergency {
                self.break_glass.grants += 1;
                self.break_glass.cited.cite(seq);
            }
        }
        self.grants_open.insert(
            grant_id.to_string(),
            GrantInfo {
                assets,
                attestation,
                path,
                subject: p.subject,
                not_before: p.not_before,
                expires_at: p.expires_at,
                emergency: p.emergency,
                break_glass_in_period: p.emergency && in_period,
                ended: false,
                break_glass_review_open: false,
            },
        );
    }

    fn grant_ended(&mut self, event: &Event, in_period: bool) {
        let (Some(grant_id), Some(p)) = (event.grant_id.as_deref(), event.payload::<GrantEnded>())
        else {
            return;
        };
        let Some(g) = self.grants_open.get_mut(grant_id) else {
            return;
        };
        if g.ended {
            return;
        }
        g.ended = true;
        let (not_before, subject, emergency, assets) = (
            g.not_before,
            g.subject.clone(),
            g.emergency,
            g.assets.clone(),
        );
        if in_period && g.path == AccessPath::Standing.as_str() {
            self.exceptions.ended_in_period += 1;
            if p.end_reason == EndReason::RevalidationOverdue {
                self.exceptions.overdue_or_ended_unrevalidated += 1;
            }
        }
        if in_period && g.attestation {
            self.attestations_owed.insert(grant_id.to_string());
        }
        if in_period {
            self.grants.ended += 1;
            *self
                .by_reason
                .entry(p.end_reason.label().to_string())
                .or_default() += 1;
            self.durations
                .push((p.ended_at - not_before).num_seconds().max(0));
        }
        self.expose(
            grant_id, &subject, &assets, not_before, p.ended_at, emergency,
        );
    }

    fn teardown(&mut self, seq: i64, event: &Event, in_period: bool) {
        let Some(p) = event.payload::<TeardownVerdictData>() else {
            return;
        };
        if !p.is_final {
            return;
        }
        let Some(grant_id) = event.grant_id.as_deref() else {
            return;
        };
        if !self.counts(Some(grant_id)) {
            return;
        }
        if in_period {
            self.teardowns.cited.cite(seq);
            match p.verdict {
                TeardownVerdict::Verified => self.teardowns.verified += 1,
                TeardownVerdict::Partial => self.teardowns.partial += 1,
                TeardownVerdict::Failed => self.teardowns.failed += 1,
            }
            if p.verdict != TeardownVerdict::Verified
                && self.teardowns.not_verified.len() < MAX_LISTED_TEARDOWNS
            {
                self.teardowns.not_verified.push(TeardownItem {
                    grant_id: grant_id.to_string(),
                    verdict: p.verdict,
                    at: rfc3339(event.at),
                    event: seq,
                });
            }
        }
        // Nothing of the grant is read after its final verdict but its reviews.
        if self
            .grants_open
            .get(grant_id)
            .is_some_and(|g| g.ended && !g.break_glass_review_open)
        {
            self.grants_open.remove(grant_id);
        }
    }

    fn review(&mut self, seq: i64, event: &Event, in_period: bool) {
        let Some(grant_id) = event.grant_id.as_deref() else {
            return;
        };
        let Some(g) = self.grants_open.get_mut(grant_id) else {
            return;
        };
        if !g.break_glass_in_period {
            return;
        }
        if let Some(o) = event.payload::<ReviewOpened>() {
            if o.reason == ReviewReason::BreakGlass {
                g.break_glass_review_open = true;
                self.break_glass.cited.cite(seq);
            }
        } else if let Some(c) = event.payload::<ReviewCompleted>() {
            if c.reason == ReviewReason::BreakGlass && g.break_glass_review_open && in_period {
                g.break_glass_review_open = false;
                self.break_glass.reviews_completed += 1;
                self.break_glass.reviews_with_finding +=
                    u64::from(c.outcome == jitgate_core::server_payload::ReviewOutcome::Finding);
                self.break_glass.reviews_late += u64::from(c.late);
                self.break_glass.cited.cite(seq);
            }
        }
    }

    fn day_index(&self, t: Timestamp) -> Option<usize> {
        if !self.in_period(t) {
            return None;
        }
        usize::try_from((day_start(t) - day_start(self.from)).num_days()).ok()
    }

    /// Count the access of one grant over `[start, end)`, clipped to the period.
    fn expose(
        &mut self,
        grant_id: &str,
        subject: &str,
        assets: &[String],
        start: Timestamp,
        end: Timestamp,
        emergency: bool,
    ) {
        let (start, end) = (start.max(self.from), end.min(self.to));
        if end <= start {
            return;
        }
        let secs = (end - start).num_seconds();
        self.grants.exposure_secs += secs;
        let mut t = start;
        while t < end {
            let next = (day_start(t) + Duration::days(1)).min(end);
            if let Some(i) = self.day_index(t) {
                self.days[i].0 += (next - t).num_seconds();
            }
            t = next;
        }
        let site_assets: Vec<String> = self.site_assets(assets).cloned().collect();
        for asset in site_assets {
            let entry = self.assets.entry(asset.clone()).or_default();
            entry.0 += 1;
            entry.1 += secs;
            let (drawn, more) = self.timeline.entry(asset).or_default();
            if drawn.len() < MAX_TIMELINE_GRANTS {
                drawn.push(TimelineGrant {
                    grant_id: grant_id.to_string(),
                    subject: subject.to_string(),
                    from: rfc3339(start),
                    to: rfc3339(end),
                    emergency,
                });
            } else {
                *more += 1;
            }
        }
    }

    /// Events read so far.
    pub fn events_read(&self) -> u64 {
        self.events_read
    }

    /// The report (unsigned: [`super::sign_report`] signs it). Grants not ended count until
    /// their expiry or the end of the period.
    pub fn finish(
        mut self,
        log_id: &str,
        checkpoint: SignedCheckpoint,
        generated_at: Timestamp,
        extra: ExtraSections,
    ) -> ComplianceReport {
        let open: Vec<StillOpen> = self
            .grants_open
            .iter()
            .filter(|(_, g)| !g.ended)
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.subject.clone(),
                    g.assets.clone(),
                    g.not_before,
                    g.expires_at,
                    g.emergency,
                )
            })
            .collect();
        self.exceptions.active = self
            .grants_open
            .values()
            .filter(|g| {
                !g.ended
                    && g.path == AccessPath::Standing.as_str()
                    && g.not_before < self.to
                    && g.expires_at > self.to
            })
            .count() as u64;
        for (id, subject, assets, start, expires, emergency) in open {
            if start < self.to && expires > self.to {
                self.grants.open_at_end += 1;
            }
            self.expose(&id, &subject, &assets, start, expires, emergency);
        }
        self.break_glass.reviews_open = self
            .grants_open
            .values()
            .filter(|g| g.break_glass_in_period && g.break_glass_review_open)
            .count() as u64;
        self.durations.sort_unstable();
        let pct = |p: usize| -> Option<i64> {
            let n = self.durations.len();
            (n > 0).then(|| self.durations[((n - 1) * p) / 100])
        };
        self.grants.median_duration_secs = pct(50);
        self.grants.p90_duration_secs = pct(90);
        let counts = |m: BTreeMap<String, u64>| {
            m.into_iter()
                .map(|(name, count)| PathCount { name, count })
                .collect()
        };
        self.grants.issued_by_path = counts(std::mem::take(&mut self.by_path));
        self.grants.ended_by_reason = counts(std::mem::take(&mut self.by_reason));

        let mut exposure_by_asset: Vec<AssetExposure> = self
            .assets
            .iter()
            .map(|(asset, (grants, secs))| AssetExposure {
                asset: asset.clone(),
                grants: *grants,
                exposure_secs: *secs,
            })
            .collect();
        exposure_by_asset.sort_by(|a, b| {
            b.exposure_secs
                .cmp(&a.exposure_secs)
                .then_with(|| a.asset.cmp(&b.asset))
        });
        let timeline = exposure_by_asset
            .iter()
            .take(MAX_TIMELINE_ASSETS)
            .filter_map(|a| {
                let (mut grants, more) = self.timeline.remove(&a.asset)?;
                grants.sort_by(|x, y| {
                    x.from
                        .cmp(&y.from)
                        .then_with(|| x.grant_id.cmp(&y.grant_id))
                });
                Some(AssetTimeline {
                    asset: a.asset.clone(),
                    grants,
                    more,
                })
            })
            .collect();
        let first_day = day_start(self.from);
        let exposure_trend = self
            .days
            .iter()
            .enumerate()
            .map(|(i, (secs, issued))| TrendPoint {
                day: (first_day + Duration::days(i as i64))
                    .format("%Y-%m-%d")
                    .to_string(),
                exposure_secs: *secs,
                grants_issued: *issued,
            })
            .collect();
        let mut report = ComplianceReport {
            format: REPORT_FORMAT.to_string(),
            log_id: log_id.to_string(),
            site: self.site.map(|(s, _)| s),
            from: rfc3339(self.from),
            to: rfc3339(self.to),
            generated_at: rfc3339(generated_at),
            checkpoint,
            grants: self.grants,
            teardowns: self.teardowns,
            break_glass: self.break_glass,
            operations: self.operations,
            exposure_by_asset,
            exposure_trend,
            timeline,
            exceptions: Some(self.exceptions),
            findings: extra.findings,
            attestations: Some(AttestationFigures {
                missing: self.attestations_owed.len() as u64,
                ..self.attestations
            }),
            mappings: Vec::new(),
        };
        report.mappings = super::frameworks::mappings(&report);
        report
    }
}

/// What the report reads of a gateway event.
#[derive(serde::Deserialize)]
struct GatewayHead<'a> {
    #[serde(with = "jitgate_core::event::millis")]
    at: Timestamp,
    #[serde(default, borrow)]
    grant_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    data: Option<GatewayData>,
}

#[derive(serde::Deserialize)]
struct GatewayData {
    #[serde(default)]
    detail: Option<GatewayDetail>,
}

#[derive(serde::Deserialize)]
struct GatewayDetail {
    #[serde(default)]
    allowed: Option<bool>,
}
