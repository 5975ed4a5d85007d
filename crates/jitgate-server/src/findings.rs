//! Findings and the standing-privilege inventory of a period, computed from the stored
//! evidence: the server gathers what the core needs (inventory, API keys, exceptions),
//! streams the log once through `jitgate_core::findings::FindingsScan`
//! ([`crate::log_scan::read_log`]), and returns what the core found. Nothing is decided here.
//!
//! [`period_findings`] is the entry point of the `/findings` and `/standing` lists and of
//! review campaigns; the compliance report uses [`prepare_period`] to read the log once for
//! its figures and the findings together.

use crate::error::ServerError;
use crate::state::AppState;
use jitgate_core::findings::{
    ApiKeyInput, FindingsConfig, FindingsScan, Period, PeriodReport, StandingExceptionInput,
    StandingInputs,
};
use jitgate_core::{Asset, IdentityKind, Timestamp};
use jitgate_store::{ExceptionFilter, Store};
use std::collections::HashMap;

/// The findings and the standing inventory of `[from, to)`, under the thresholds of the
/// server's `[findings]` configuration.
pub async fn period_findings(
    state: &AppState,
    from: Timestamp,
    to: Timestamp,
) -> Result<PeriodReport, ServerError> {
    let (scan, inputs) = prepare_period(state, from, to).await?;
    let scan = crate::log_scan::read_log(&state.store, scan, None).await?;
    Ok(inputs.finish(scan))
}

/// The scan of `[from, to)` under the server's thresholds and the register's exceptions,
/// before the log is read (see [`prepare`]).
pub async fn prepare_period(
    state: &AppState,
    from: Timestamp,
    to: Timestamp,
) -> Result<(FindingsScan, FindingsInputs), ServerError> {
    let period = Period::new(from, to).map_err(ServerError::BadRequest)?;
    let exceptions = standing_exceptions(state, period).await?;
    prepare(&state.store, &state.config.findings, period, &exceptions).await
}

/// The standing exceptions of the register in force at some time during the period: their
/// grant started before the period ended and had not ended before it began.
async fn standing_exceptions(
    state: &AppState,
    period: Period,
) -> Result<Vec<StandingExceptionInput>, ServerError> {
    let now = state.clock.now();
    let mut tx = state.store.read().await?;
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let filter = ExceptionFilter {
            after: after.clone(),
            ..ExceptionFilter::default()
        };
        let records = tx.list_exception_records(&filter).await?;
        let Some(last) = records.last().map(|r| r.exception.id.clone()) else {
            break;
        };
        for r in &records {
            let Some(g) = &r.grant else {
                continue; // never approved: nothing ever stood
            };
            let end = g.ended_at.unwrap_or(g.expires_at);
            if g.not_before >= period.to || end <= period.from {
                continue;
            }
            let summary = crate::exceptions::summary_of(r, now);
            out.push(StandingExceptionInput {
                id: summary.id,
                subject: summary.subject,
                assets: summary.assets,
                owner: summary.owner,
                since: Some(g.not_before),
                expires_at: summary.expires_at,
                revalidation_due: summary.next_revalidation,
                last_used: summary.last_use,
            });
        }
        after = Some(last);
    }
    Ok(out)
}

/// [`period_findings`] over a store directly (benchmarks, tools): gathers the inventory and
/// API keys, then reads the log once.
pub async fn findings_in_store(
    store: &Store,
    config: &FindingsConfig,
    period: Period,
    exceptions: &[StandingExceptionInput],
) -> Result<PeriodReport, ServerError> {
    let (scan, inputs) = prepare(store, config, period, exceptions).await?;
    let scan = crate::log_scan::read_log(store, scan, None).await?;
    Ok(inputs.finish(scan))
}

/// What the findings need besides the log, gathered before it is read.
pub struct FindingsInputs {
    assets: Vec<Asset>,
    api_keys: Vec<ApiKeyInput>,
    exceptions: Vec<StandingExceptionInput>,
}

impl FindingsInputs {
    /// The findings and the standing inventory, once `scan` has read the log.
    pub fn finish(&self, scan: FindingsScan) -> PeriodReport {
        scan.finish(&StandingInputs {
            assets: &self.assets,
            api_keys: &self.api_keys,
            exceptions: &self.exceptions,
        })
    }
}

/// The scan of `period` (ready to read the log, e.g. with [`crate::log_scan::read_log`]
/// beside another reader) and what its end needs: the inventory and the API keys.
pub async fn prepare(
    store: &Store,
    config: &FindingsConfig,
    period: Period,
    exceptions: &[StandingExceptionInput],
) -> Result<(FindingsScan, FindingsInputs), ServerError> {
    let mut tx = store.read().await?;
    let identities = tx.list_identities().await?;
    let assets = tx.list_assets().await?;
    let mut api_keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = tx.list_api_keys_after(None, after.as_deref(), 500).await?;
        let last = page.last().map(|k| k.id.clone());
        let full = page.len() == 500;
        api_keys.extend(page.into_iter().map(|k| ApiKeyInput {
            id: k.id,
            identity: k.identity,
            name: k.name,
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked: k.revoked,
        }));
        match (full, last) {
            (true, Some(l)) => after = Some(l),
            _ => break,
        }
    }
    drop(tx);
    let owners: HashMap<String, Vec<String>> = identities
        .iter()
        .filter(|i| !i.owners.is_empty())
        .map(|i| (i.id.clone(), i.owners.clone()))
        .collect();
    let kinds: HashMap<String, IdentityKind> =
        identities.into_iter().map(|i| (i.id, i.kind)).collect();
    let scan = FindingsScan::new(period, config.clone(), kinds).with_owners(owners);
    let inputs = FindingsInputs {
        assets,
        api_keys,
        exceptions: exceptions.to_vec(),
    };
    Ok((scan, inputs))
}
