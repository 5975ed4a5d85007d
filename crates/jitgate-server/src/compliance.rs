//! The compliance report of a period and a site (docs/compliance-report.md): sign a
//! checkpoint of the whole log now, read the log up to it once, let
//! [`jitgate_evidence::compliance::Accumulator`] compute the figures, and sign the report with
//! the evidence key. The report carries that checkpoint, so an auditor checks both offline
//! with the evidence public key file.

use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::state::AppState;
use jitgate_core::{Event, Timestamp};
use jitgate_evidence::compliance::{sign_report, Accumulator, ExtraSections, SignedReport};
use std::collections::BTreeSet;

/// Longest period one report covers.
pub const MAX_PERIOD_DAYS: i64 = 366;

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
    let checkpoint = crate::evidence::sign_checkpoint(state, true)
        .await?
        .ok_or_else(|| ServerError::Internal("no checkpoint could be signed".into()))?;
    let size = i64::try_from(checkpoint.checkpoint.tree_size)
        .map_err(|_| ServerError::Internal("checkpoint size out of range".into()))?;
    let mut acc = Accumulator::new(scope.from, scope.to, site);
    let mut scan = state.store.scan_log(Some(size)).await?;
    // Parsing and counting on a blocking thread while the store reads the next pages.
    let acc = tokio::task::spawn_blocking(move || -> ApiResult<Accumulator> {
        while let Some(page) = scan.blocking_next() {
            for leaf in page?.iter() {
                let event: Event = serde_json::from_str(leaf.canonical).map_err(|e| {
                    ServerError::EvidenceBroken(format!(
                        "event {} of the log does not read as an event ({e}); run `jitgate evidence verify`",
                        leaf.seq
                    ))
                })?;
                acc.observe(leaf.seq, &event);
            }
        }
        Ok(acc)
    })
    .await
    .map_err(|e| ServerError::Internal(format!("compliance report: {e}")))??;
    if acc.events_read() != checkpoint.checkpoint.tree_size {
        return Err(ServerError::EvidenceBroken(format!(
            "the log holds {} events up to the checkpoint of {size}: run `jitgate evidence verify`",
            acc.events_read()
        )));
    }
    let ev = &state.evidence;
    let report = acc.finish(&ev.log_id, checkpoint, now, ExtraSections::default());
    ev.with_current_key(|key| sign_report(report, key))
        .map_err(|e| ServerError::Internal(format!("signing the compliance report: {e}")))
}
