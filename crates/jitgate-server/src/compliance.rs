//! The compliance report of a period and a site (docs/compliance-report.md): sign a
//! checkpoint of the whole log now, read the log up to it once, let
//! [`jitgate_evidence::compliance::Accumulator`] compute the figures and
//! `jitgate_core::findings` the findings from that same read ([`crate::log_scan`]), and sign
//! the report with the evidence key. The report carries that checkpoint, so an auditor checks both offline
//! with the evidence public key file.

use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::state::AppState;
use jitgate_core::findings::{FindingsScan, PeriodReport};
use jitgate_core::Timestamp;
use jitgate_evidence::compliance::{
    sign_report, Accumulator, ExtraSections, FindingFigures, PathCount, SignedReport,
};
use std::collections::{BTreeMap, BTreeSet};

/// Longest period one report covers.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// The last full calendar month before `now` (UTC): the default period.
pub fn last_full_month(now: Timestamp) -> (Timestamp, Timestamp) {
    use chrono::{Datelike, NaiveDate, NaiveTime};
    let first_of = |y: i32, m: u32| {
        NaiveDate::from_ymd_opt(y, m, 1)
            .unwrap_or_default()
            .and_time(NaiveTime::MIN)
            .and_utc()
    };
    let this = first_of(now.year(), now.month());
    let prev = if now.month() == 1 {
        first_of(now.year() - 1, 12)
    } else {
        first_of(now.year(), now.month() - 1)
    };
    (prev, this)
}

/// What a report covers.
#[derive(Debug, Clone)]
pub struct ReportScope {
    pub from: Timestamp,
    /// Exclusive.
    pub to: Timestamp,
    pub site: Option<String>,
}

/// The period must be well formed, at most [`MAX_PERIOD_DAYS`] long, and over: figures of
/// a period still running would change after they were signed.
pub fn check_period(from: Timestamp, to: Timestamp, now: Timestamp) -> ApiResult<()> {
    if to <= from {
        return Err(ServerError::BadRequest(format!(
            "the period is empty: `to` ({to}) must be after `from` ({from})"
        )));
    }
    if (to - from).num_days() > MAX_PERIOD_DAYS {
        return Err(ServerError::BadRequest(format!(
            "the period is {} days long; a report covers at most {MAX_PERIOD_DAYS} days: make one per year",
            (to - from).num_days()
        )));
    }
    if to > now {
        return Err(ServerError::BadRequest(format!(
            "the period ends in the future ({to}, now {now}): a report is made over a period that is over, so its figures do not change after it is signed; pass an earlier `to`"
        )));
    }
    Ok(())
}

/// Make and sign the report (security, audit and admin roles).
pub async fn compliance_report(
    state: &AppState,
    caller: &Caller,
    scope: ReportScope,
) -> ApiResult<SignedReport> {
    if !caller.sees_everything() {
        return Err(ServerError::Forbidden(
            "compliance reports are for security, audit and admin roles".into(),
        ));
    }
    let now = state.clock.now();
    check_period(scope.from, scope.to, now)?;
    let site = match &scope.site {
        None => None,
        Some(id) => {
            let mut tx = state.store.read().await?;
            if tx.get_site(id).await?.is_none() {
                return Err(ServerError::not_found("site", id));
            }
            let assets: BTreeSet<String> = tx
                .list_assets()
                .await?
                .into_iter()
                .filter(|a| &a.site == id)
                .map(|a| a.id)
                .collect();
            Some((id.clone(), assets))
        }
    };
    let (scan, inputs) = crate::findings::prepare_period(state, scope.from, scope.to).await?;
    let checkpoint = crate::evidence::sign_checkpoint(state, true)
        .await?
        .ok_or_else(|| ServerError::Internal("no checkpoint could be signed".into()))?;
    let size = i64::try_from(checkpoint.checkpoint.tree_size)
        .map_err(|_| ServerError::Internal("checkpoint size out of range".into()))?;
    // One read of the log up to the checkpoint feeds the figures and the findings.
    let (acc, scan) = crate::log_scan::read_log_pair(
        &state.store,
        Accumulator::new(scope.from, scope.to, site.clone()),
        scan,
        Some(size),
    )
    .await?;
    if acc.events_read() != checkpoint.checkpoint.tree_size {
        return Err(ServerError::EvidenceBroken(format!(
            "the log holds {} events up to the checkpoint of {size}: run `jitgate evidence verify`",
            acc.events_read()
        )));
    }
    let findings = finding_figures(&inputs.finish(scan), site.as_ref().map(|(_, a)| a));
    let ev = &state.evidence;
    let report = acc.finish(
        &ev.log_id,
        checkpoint,
        now,
        ExtraSections {
            findings: Some(findings),
        },
    );
    ev.with_current_key(|key| sign_report(report, key))
        .map_err(|e| ServerError::Internal(format!("signing the compliance report: {e}")))
}

/// The findings of the period (on the site: those about its assets, and those about no
/// asset), counted by kind, citing their evidence events.
fn finding_figures(found: &PeriodReport, site_assets: Option<&BTreeSet<String>>) -> FindingFigures {
    let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut out = FindingFigures::default();
    for f in &found.findings {
        if let (Some(assets), Some(asset)) = (site_assets, &f.asset) {
            if !assets.contains(asset) {
                continue;
            }
        }
        out.total += 1;
        *by_kind.entry(f.kind.as_str()).or_default() += 1;
        if let Some(first) = f.evidence.seqs.first() {
            out.cited.cite(*first);
        }
    }
    out.by_kind = by_kind
        .into_iter()
        .map(|(name, count)| PathCount {
            name: name.to_string(),
            count,
        })
        .collect();
    out
}

/// The report's figures alone, from one read of the log up to `up_to` (all when `None`).
pub async fn read_into(
    store: &jitgate_store::Store,
    acc: Accumulator,
    up_to: Option<i64>,
) -> ApiResult<Accumulator> {
    crate::log_scan::read_log(store, acc, up_to).await
}

/// The report's figures and the findings of the same period from one read of the whole log
/// (what [`compliance_report`] does before signing; also measured by the findings
/// benchmark).
pub async fn figures_and_findings(
    store: &jitgate_store::Store,
    acc: Accumulator,
    findings: (FindingsScan, crate::findings::FindingsInputs),
) -> ApiResult<(Accumulator, PeriodReport)> {
    let (scan, inputs) = findings;
    let (acc, scan) = crate::log_scan::read_log_pair(store, acc, scan, None).await?;
    Ok((acc, inputs.finish(scan)))
}
