//! The server's side of policy: loading the set in force (a directory or the built-in
//! default), recording which set is in force, and taking decisions. Reloading (which also
//! reconsiders every open request and grant) is a change of context:
//! [`crate::context::reload_policies`].

use crate::error::ApiResult;
use crate::state::{AppState, LoadedPolicies};
use crate::views::PolicyInfo;
use jitgate_core::event::{Actor, Event};
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

/// Append a `policy.loaded` event when the set in force changes (and at first start).
pub async fn record_loaded(state: &AppState, actor: Actor, info: &PolicyInfo) -> ApiResult<()> {
    let mut tx = state.store.write().await?;
    let previous = tx.get_setting("policy_set_hash").await?;
    if previous.as_deref() != Some(info.hash.as_str()) {
        tx.set_setting("policy_set_hash", &info.hash).await?;
        let loaded = jitgate_core::server_payload::PolicyLoaded {
            hash: info.hash.clone(),
            previous,
            policies: info.policies.clone(),
            source: info.source.clone(),
        };
        tx.append_events(&[Event::with_payload(actor, state.clock.now(), &loaded)?])
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
