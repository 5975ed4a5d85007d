//! Findings and the standing-privilege inventory of a period, computed from the stored
//! evidence: the server gathers what the core needs (inventory, API keys, exceptions),
//! streams the log once through `jitgate_core::findings::FindingsScan` on a blocking thread
//! while the store reads ahead ([`jitgate_store::Store::scan_log`]), and returns what the
//! core found. Nothing is decided here.
//!
//! [`period_findings`] is the one entry point for every caller: the `/findings` and
//! `/standing` lists, and the reviews and reports that cite findings.

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
    let period = Period::new(from, to).map_err(ServerError::BadRequest)?;
    let exceptions = standing_exceptions(state, period).await?;
    findings_in_store(&state.store, &state.config.findings, period, &exceptions).await
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
    let (kinds, owners, assets, api_keys) = {
        let mut tx = store.read().await?;
        let identities = tx.list_identities().await?;
        let assets = tx.list_assets().await?;
        let mut keys = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = tx.list_api_keys_after(None, after.as_deref(), 500).await?;
            let last = page.last().map(|k| k.id.clone());
            let full = page.len() == 500;
            keys.extend(page.into_iter().map(|k| ApiKeyInput {
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
        let owners: HashMap<String, Vec<String>> = identities
            .iter()
            .filter(|i| !i.owners.is_empty())
            .map(|i| (i.id.clone(), i.owners.clone()))
            .collect();
        let kinds: HashMap<String, IdentityKind> =
            identities.into_iter().map(|i| (i.id, i.kind)).collect();
        (kinds, owners, assets, keys)
    };
    let scan = FindingsScan::new(period, config.clone(), kinds).with_owners(owners);
    let scan = read_log(store, scan).await?;
    Ok(finish(scan, &assets, &api_keys, exceptions))
}

/// Feed every stored event, in sequence order, to `scan`: the store reads pages ahead on
/// its own thread while this blocking thread decodes (two cores, overlapping).
pub async fn read_log(store: &Store, mut scan: FindingsScan) -> Result<FindingsScan, ServerError> {
    let mut log = store.scan_log(None).await?;
    tokio::task::spawn_blocking(move || {
        while let Some(page) = log.blocking_next() {
            for leaf in page?.iter() {
                scan.observe_canonical(leaf.seq, leaf.canonical);
            }
        }
        Ok::<_, jitgate_store::StoreError>(scan)
    })
    .await
    .map_err(|e| ServerError::Internal(format!("reading the log for findings: {e}")))?
    .map_err(ServerError::from)
}

fn finish(
    scan: FindingsScan,
    assets: &[Asset],
    api_keys: &[ApiKeyInput],
    exceptions: &[StandingExceptionInput],
) -> PeriodReport {
    scan.finish(&StandingInputs {
        assets,
        api_keys,
        exceptions,
    })
}
