//! JIT that became standing: a subject whose grants on one asset cover most of the period
//! ([`super::FindingsConfig::standing_coverage_percent`]), or that are renewed back to back
//! (a new grant starting within [`super::FindingsConfig::back_to_back_gap_minutes`] of the
//! previous one's end, or while it is still active,
//! [`super::FindingsConfig::back_to_back_renewals`] times in a row).
//!
//! Coverage is the **union** of the grants' active intervals inside the period, computed
//! while reading: a grant not yet issued starts no earlier than now, so intervals that end
//! before the earliest live grant on the same (subject, asset) began can never be overlapped
//! again and are folded into a total. State: per (subject, asset) its live grants and the
//! intervals since the earliest of them began.

use super::{Ctx, EvidenceRefs, FindingKind, Gathered, OpenRequest};
use crate::event::Event;
use crate::payload::{GrantEnded, GrantIssued};
use crate::Timestamp;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone)]
struct LiveGrant {
    subject: String,
    assets: Vec<String>,
    start: Timestamp,
    expires_at: Timestamp,
}

#[derive(Debug, Default)]
struct KeyState {
    /// grant id → start, of the live grants on this key.
    live: BTreeMap<String, Timestamp>,
    /// Intervals that a live or future grant may still overlap, unsorted.
    pending: Vec<(Timestamp, Timestamp)>,
    /// Seconds of the period covered by intervals folded so far.
    covered: i64,
    /// `grant.issued` events of grants that touched the period.
    grants: EvidenceRefs,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    last_end: Option<Timestamp>,
    /// Renewals in a row so far, and the grants of the current run.
    run: u32,
    run_grants: Vec<(i64, Timestamp)>,
    /// The longest run that reached the threshold, and every grant of such runs.
    best_run: u32,
    renewal_grants: EvidenceRefs,
    /// The last grant added to `renewal_grants` (each is counted once, listed or not).
    renewal_last_seq: i64,
    renewal_span: Option<(Timestamp, Timestamp)>,
}

/// A subject's standing use of an asset, for the standing inventory.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StandingJit {
    pub kind: FindingKind,
    pub subject: String,
    pub asset: String,
    pub covered_secs: i64,
    pub since: Option<Timestamp>,
    pub last: Option<Timestamp>,
    pub evidence: EvidenceRefs,
    pub detail: String,
}

#[derive(Debug)]
pub(crate) struct CoverageDetector {
    gap: chrono::Duration,
    grants: HashMap<String, LiveGrant>,
    keys: HashMap<(String, String), KeyState>,
}

impl CoverageDetector {
    pub fn new(config: &super::FindingsConfig) -> Self {
        CoverageDetector {
            gap: chrono::Duration::minutes(config.back_to_back_gap_minutes),
            grants: HashMap::new(),
            keys: HashMap::new(),
        }
    }

    /// `grant.issued`, with the request it came from (for its assets).
    pub fn issued(&mut self, seq: i64, e: &Event, request: Option<OpenRequest>, ctx: &Ctx<'_>) {
        let (Some(grant), Some(p)) = (&e.grant_id, e.payload::<GrantIssued>()) else {
            return;
        };
        let Some(request) = request else {
            return;
        };
        let start = p.not_before.max(e.at);
        for asset in &request.assets {
            let k = self
                .keys
                .entry((p.subject.clone(), asset.clone()))
                .or_default();
            let renewal =
                !k.live.is_empty() || k.last_end.is_some_and(|end| start <= end + self.gap);
            if renewal {
                k.run += 1;
            } else {
                k.run = 0;
                k.run_grants.clear();
            }
            k.run_grants.push((seq, start));
            if k.run_grants.len() > ctx.config.back_to_back_renewals as usize + 1 {
                // Only the grants of the qualifying run's tail are kept as its evidence.
                k.run_grants.remove(0);
            }
            if k.run >= ctx.config.back_to_back_renewals && ctx.period.contains(start) {
                k.best_run = k.best_run.max(k.run);
                for (s, t) in &k.run_grants {
                    if *s <= k.renewal_last_seq {
                        continue;
                    }
                    k.renewal_last_seq = *s;
                    k.renewal_grants.push(*s, ctx.cap);
                    let span = k.renewal_span.get_or_insert((*t, *t));
                    span.0 = span.0.min(*t);
                    span.1 = span.1.max(*t);
                }
            }
            k.live.insert(grant.clone(), start);
            if start < ctx.period.to && p.expires_at > ctx.period.from {
                k.grants.push(seq, ctx.cap);
            }
        }
        self.grants.insert(
            grant.clone(),
            LiveGrant {
                subject: p.subject,
                assets: request.assets,
                start,
                expires_at: p.expires_at,
            },
        );
    }

    /// `grant.ended`: the grant's interval is complete. Returns the grant's subject.
    pub fn ended(&mut self, e: &Event, ctx: &Ctx<'_>) -> Option<String> {
        let grant_id = e.grant_id.as_ref()?;
        let g = self.grants.remove(grant_id)?;
        let end = e
            .payload::<GrantEnded>()
            .map(|p| p.ended_at)
            .unwrap_or(e.at)
            .max(g.start);
        for asset in &g.assets {
            if let Some(k) = self.keys.get_mut(&(g.subject.clone(), asset.clone())) {
                k.live.remove(grant_id);
                k.pending.push((g.start, end));
                k.last_end = Some(k.last_end.map_or(end, |l| l.max(end)));
                fold(k, e.at, ctx);
            }
        }
        Some(g.subject)
    }

    /// Close the grants still live at the end of the period (at their expiry, or the end of
    /// the period) and report what became standing.
    pub fn finish(mut self, out: &mut Gathered, ctx: &Ctx<'_>) -> Vec<StandingJit> {
        for g in self.grants.values() {
            let end = g.expires_at.min(ctx.period.to).max(g.start);
            for asset in &g.assets {
                if let Some(k) = self.keys.get_mut(&(g.subject.clone(), asset.clone())) {
                    k.pending.push((g.start, end));
                }
            }
        }
        let pct = i64::from(ctx.config.standing_coverage_percent);
        let mut standing = Vec::new();
        let mut keys: Vec<_> = self.keys.into_iter().collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        for ((subject, asset), mut k) in keys {
            k.live.clear();
            fold(&mut k, ctx.period.to, ctx);
            let covered = k.covered;
            if covered > 0
                && covered >= ctx.config.standing_min_hours * 3600
                && covered * 100 >= pct * ctx.period.secs()
            {
                let share = covered * 100 / ctx.period.secs();
                let from = k.first.unwrap_or(ctx.period.from);
                let to = k.last.unwrap_or(ctx.period.to);
                let detail = format!("{share}% ({} h)", covered / 3600);
                out.add(
                    FindingKind::StandingCoverage,
                    (vec![subject.clone()], Some(asset.clone())),
                    (from, to),
                    &k.grants.seqs,
                    detail.clone(),
                    ctx.cap,
                );
                out.add_more(
                    FindingKind::StandingCoverage,
                    std::slice::from_ref(&subject),
                    Some(&asset),
                    k.grants.more,
                );
                standing.push(StandingJit {
                    kind: FindingKind::StandingCoverage,
                    subject: subject.clone(),
                    asset: asset.clone(),
                    covered_secs: covered,
                    since: Some(from),
                    last: Some(to),
                    evidence: k.grants.clone(),
                    detail: format!("grants covered {detail} of the period"),
                });
            }
            if let Some(span) = k.renewal_span {
                let detail = format!(
                    "{} renewals in a row, each within {} min",
                    k.best_run,
                    self.gap.num_minutes()
                );
                out.add(
                    FindingKind::BackToBackRenewal,
                    (vec![subject.clone()], Some(asset.clone())),
                    span,
                    &k.renewal_grants.seqs,
                    detail.clone(),
                    ctx.cap,
                );
                out.add_more(
                    FindingKind::BackToBackRenewal,
                    std::slice::from_ref(&subject),
                    Some(&asset),
                    k.renewal_grants.more,
                );
                standing.push(StandingJit {
                    kind: FindingKind::BackToBackRenewal,
                    subject,
                    asset,
                    covered_secs: covered,
                    since: Some(span.0),
                    last: k.last.or(Some(span.1)),
                    evidence: k.renewal_grants,
                    detail,
                });
            }
        }
        standing
    }
}

/// Fold every pending interval that no live or future grant can overlap any more (ending
/// before `horizon`: the earliest live grant's start, or now) into the covered total.
fn fold(k: &mut KeyState, now: Timestamp, ctx: &Ctx<'_>) {
    let horizon = k.live.values().copied().min().unwrap_or(now).min(now);
    k.pending.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(k.pending.len());
    for (s, e) in k.pending.drain(..) {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    for (s, e) in merged {
        if e <= horizon {
            let secs = ctx.period.overlap_secs(s, e);
            if secs > 0 {
                k.covered += secs;
                let s = s.max(ctx.period.from);
                let e = e.min(ctx.period.to);
                k.first = Some(k.first.map_or(s, |f| f.min(s)));
                k.last = Some(k.last.map_or(e, |l| l.max(e)));
            }
        } else {
            k.pending.push((s, e));
        }
    }
}
