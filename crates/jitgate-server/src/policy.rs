//! The server's side of policy: loading the set in force (a directory or the built-in
//! default), reloading it without ever dropping to "no policy", and taking decisions.

use crate::api::types::PolicyInfo;
use crate::error::{ApiResult, ServerError};
use crate::state::{AppState, LoadedPolicies};
use jitgate_core::event::{Actor, Event, EventKind};
use jitgate_core::scope::Scope;
use jitgate_core::{AccessPath, Asset, Decision, Identity, Org};
use jitgate_policy::{DecisionInput, PolicySet};
use std::path::Path;

/// Load the set named by the configuration: a directory of `*.cedar`, or the built-in one.
pub fn load(dir: Option<&Path>) -> Result<LoadedPolicies, jitgate_policy::PolicyError> {
    match dir {
        Some(d) => Ok(LoadedPolicies {
            set: PolicySet::load_dir(d)?,
            source: d.display().to_string(),
        }),
        None => Ok(LoadedPolicies {
            set: PolicySet::from_sources(jitgate_policy::default_sources())?,
            source: "builtin".into(),
        }),
    }
}

pub fn info(p: &LoadedPolicies) -> PolicyInfo {
    PolicyInfo {
        hash: p.set.hash().to_string(),
        policies: p.set.ids().into_iter().map(String::from).collect(),
        source: p.source.clone(),
    }
}

/// Re-read the configured policies. A set that does not parse or validate is refused and the
/// previous set stays in force; the error names file, line and column.
pub async fn reload(state: &AppState, actor: Actor) -> ApiResult<PolicyInfo> {
    let loaded = load(state.config.policy_dir.as_deref())
        .map_err(|e| ServerError::Policy(format!("{e}; the previous policy set stays in force")))?;
    let info = info(&loaded);
    crate::evidence::archive_policies(&state.store, &loaded.set).await?;
    record_loaded(state, actor.clone(), &info).await?;
    state.set_policies(loaded);
    // Every active grant is decided again under the new set; those it no longer allows end.
    let ended = crate::context::reevaluate_after_reload(state, &actor).await?;
    crate::teardown::push_revocations(state, &ended).await;
    Ok(info)
}

/// Append a `policy.loaded` event when the set in force changes (and at first start).
pub async fn record_loaded(state: &AppState, actor: Actor, info: &PolicyInfo) -> ApiResult<()> {
    let mut tx = state.store.write().await?;
    let previous = tx.get_setting("policy_set_hash").await?;
    if previous.as_deref() != Some(info.hash.as_str()) {
        tx.set_setting("policy_set_hash", &info.hash).await?;
        tx.append_events(&[
            Event::new(EventKind::PolicyLoaded, actor, state.clock.now()).data(serde_json::json!({
                "hash": info.hash,
                "previous": previous,
                "policies": info.policies,
                "source": info.source,
            })),
        ])
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn decide(
    set: &PolicySet,
    requester: &Identity,
    subject: &Identity,
    orgs: &[Org],
    assets: &[Asset],
    scope: &Scope,
    path: AccessPath,
    duration_secs: i64,
) -> Decision {
    set.decide(&DecisionInput {
        requester,
        subject,
        orgs,
        assets,
        scope,
        path,
        duration_secs,
    })
}
