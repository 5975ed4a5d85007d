//! Rubber-stamping: two people who approve each other's requests, each at least
//! [`super::FindingsConfig::mutual_approvals`] times in the period.
//!
//! "B's request" is a request B filed — for B, or for a workload B owns — or one a workload
//! B owns filed itself (with a key): that is whose work the approval lets through. State: one counter per (approver, requester) pair
//! that occurred, with its first evidence events.

use super::{Ctx, EvidenceRefs, FindingKind, Gathered, OpenRequest};
use crate::event::Event;
use crate::lifecycle::ApprovalVerdict;
use crate::payload::ApprovalRecorded;
use crate::Timestamp;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug)]
struct PairCount {
    count: u32,
    evidence: EvidenceRefs,
    first: Timestamp,
    last: Timestamp,
}

#[derive(Debug, Default)]
pub(crate) struct ApprovalDetector {
    /// (approver, requester) → approvals in the period.
    pairs: BTreeMap<(String, String), PairCount>,
}

impl ApprovalDetector {
    /// `approval.recorded`: a yes in the period by someone other than the requester.
    pub fn approval(
        &mut self,
        seq: i64,
        e: &Event,
        requests: &HashMap<String, OpenRequest>,
        ctx: &Ctx<'_>,
    ) {
        if !ctx.period.contains(e.at) {
            return;
        }
        let Some(p) = e.payload::<ApprovalRecorded>() else {
            return;
        };
        if p.verdict != ApprovalVerdict::Approve {
            return;
        }
        let Some(request) = e.request_id.as_ref().and_then(|id| requests.get(id)) else {
            return;
        };
        let approver = e.actor.0.clone();
        // A workload's request is its owners' work (a key one of them minted filed it).
        let parties: Vec<&String> = match ctx.owners.get(&request.requester) {
            Some(owners) if !owners.is_empty() => owners.iter().collect(),
            _ => vec![&request.requester],
        };
        for party in parties {
            if *party == approver {
                continue;
            }
            let c = self
                .pairs
                .entry((approver.clone(), party.clone()))
                .or_insert_with(|| PairCount {
                    count: 0,
                    evidence: EvidenceRefs::default(),
                    first: e.at,
                    last: e.at,
                });
            c.count += 1;
            c.evidence.push(seq, ctx.cap);
            c.last = e.at;
        }
    }

    pub fn finish(self, out: &mut Gathered, ctx: &Ctx<'_>) {
        let need = ctx.config.mutual_approvals;
        for ((a, b), ab) in &self.pairs {
            if a >= b || ab.count < need {
                continue;
            }
            let Some(ba) = self.pairs.get(&(b.clone(), a.clone())) else {
                continue;
            };
            if ba.count < need {
                continue;
            }
            // The earliest events of both directions, the rest counted.
            let mut seqs: Vec<i64> = ab
                .evidence
                .seqs
                .iter()
                .chain(&ba.evidence.seqs)
                .copied()
                .collect();
            seqs.sort_unstable();
            let more =
                ab.evidence.more + ba.evidence.more + seqs.len().saturating_sub(ctx.cap) as u64;
            seqs.truncate(ctx.cap);
            let detail = format!(
                "{a} approved {b}'s requests {} times, {b} approved {a}'s {} times",
                ab.count, ba.count
            );
            out.add(
                FindingKind::MutualApproval,
                (vec![a.clone(), b.clone()], None),
                (ab.first.min(ba.first), ab.last.max(ba.last)),
                &seqs,
                detail,
                ctx.cap,
            );
            out.add_more(
                FindingKind::MutualApproval,
                &[a.clone(), b.clone()],
                None,
                more,
            );
        }
    }
}
