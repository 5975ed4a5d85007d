//! Changes of context that end active grants on their own: an identity disabled, a vendor
//! org suspended, an asset locked out (e.g. a safety shutdown), a policy reload after which
//! the grant's request would no longer be allowed, an approver withdrawing an approval.
//!
//! Each runs inside the write transaction that records the change, so the change and the
//! ends of the grants it affects commit together; the caller then pushes the revocations
//! ([`crate::teardown::push_revocations`]) after the commit.

use crate::error::{ApiResult, ServerError};
use crate::state::AppState;
use jitgate_core::event::Actor;
use jitgate_core::lifecycle::{self, EndReason};
use jitgate_core::{Grant, GrantState, OrgStatus};
use jitgate_store::{GrantFilter, Tx};

/// Largest number of active grants examined per change (far above any plant's count).
const MAX_ACTIVE: i64 = 100_000;

/// A change that may end grants.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    IdentityDisabled(String),
    OrgSuspended(String),
    AssetLockedOut(String),
}

impl Change {
    fn describe(&self) -> String {
        match self {
            Change::IdentityDisabled(id) => format!("identity {id} disabled"),
            Change::OrgSuspended(id) => format!("org {id} suspended"),
            Change::AssetLockedOut(id) => format!("asset {id} locked out"),
        }
    }
}

/// The inventory changes between `old` and `new` values that end grants.
pub fn identity_change(
    old: Option<&jitgate_core::Identity>,
    new: &jitgate_core::Identity,
) -> Option<Change> {
    let was_active = old.is_none_or(|o| o.status == jitgate_core::IdentityStatus::Active);
    (was_active && new.status == jitgate_core::IdentityStatus::Disabled)
        .then(|| Change::IdentityDisabled(new.id.clone()))
}

pub fn org_change(old: Option<&jitgate_core::Org>, new: &jitgate_core::Org) -> Option<Change> {
    let was_active = old.is_none_or(|o| o.status == OrgStatus::Active);
    (was_active && new.status == OrgStatus::Suspended).then(|| Change::OrgSuspended(new.id.clone()))
}

pub fn asset_change(
    old: Option<&jitgate_core::Asset>,
    new: &jitgate_core::Asset,
) -> Option<Change> {
    let was_open = old.is_none_or(|o| !o.lockout);
    (was_open && new.lockout).then(|| Change::AssetLockedOut(new.id.clone()))
}

async fn active_grants(tx: &mut Tx) -> ApiResult<Vec<Grant>> {
    Ok(tx
        .list_grants(&GrantFilter {
            state: Some(GrantState::Active),
            subject: None,
            limit: MAX_ACTIVE,
        })
        .await?)
}

/// End one grant for a change of context, in `tx`.
pub async fn end_for_context(
    tx: &mut Tx,
    g: Grant,
    what: String,
    actor: &Actor,
    state: &AppState,
) -> ApiResult<Grant> {
    let now = state.clock.now();
    let r = tx
        .get_request(&g.request_id)
        .await?
        .ok_or_else(|| ServerError::not_found("request", &g.request_id))?;
    let reason = if lifecycle::due_for_expiry(&g, now) {
        EndReason::Expired
    } else {
        EndReason::ContextChanged { what }
    };
    let out = lifecycle::end_grant(r, g, reason, actor.clone(), now)?;
    tx.update_request(&out.request).await?;
    let ended = out
        .grant
        .ok_or_else(|| ServerError::Internal("end_grant returned no grant".into()))?;
    tx.update_grant(&ended).await?;
    tx.append_events(&out.events).await?;
    Ok(ended)
}

/// End, in `tx`, every active grant a change affects. Returns the ended grants.
pub async fn end_affected(
    tx: &mut Tx,
    state: &AppState,
    actor: &Actor,
    changes: &[Change],
) -> ApiResult<Vec<Grant>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut ended = Vec::new();
    for g in active_grants(tx).await? {
        let mut hit = None;
        for c in changes {
            let affected = match c {
                Change::IdentityDisabled(id) => &g.subject == id,
                Change::OrgSuspended(org) => tx
                    .get_identity(&g.subject)
                    .await?
                    .is_some_and(|s| s.org.as_deref() == Some(org.as_str())),
                Change::AssetLockedOut(asset) => g.scope.assets().iter().any(|a| a == asset),
            };
            if affected {
                hit = Some(c.describe());
                break;
            }
        }
        if let Some(what) = hit {
            ended.push(end_for_context(tx, g, what, actor, state).await?);
        }
    }
    Ok(ended)
}

/// After a policy reload: decide every active grant's request again under the new set and
/// end those it no longer allows. Returns the ended grants (already committed) — the caller
/// pushes their revocations.
pub async fn reevaluate_after_reload(state: &AppState, actor: &Actor) -> ApiResult<Vec<Grant>> {
    let policies = state.policies();
    let mut tx = state.store.write().await?;
    let orgs = tx.list_orgs().await?;
    let mut ended = Vec::new();
    for g in active_grants(&mut tx).await? {
        let Some(r) = tx.get_request(&g.request_id).await? else {
            continue;
        };
        let (Some(requester), Some(subject)) = (
            tx.get_identity(&r.requester).await?,
            tx.get_identity(&r.subject).await?,
        ) else {
            continue;
        };
        let mut assets = Vec::new();
        for id in r.scope.assets() {
            if let Some(a) = tx.get_asset(&id).await? {
                assets.push(a);
            }
        }
        let decision = crate::policy::decide(
            &policies.set,
            &requester,
            &subject,
            &orgs,
            &assets,
            &r.scope,
            r.path,
            r.duration_secs,
        );
        if !decision.allowed {
            let why = if decision.reasons.is_empty() {
                decision.determining_policies.join(", ")
            } else {
                decision.reasons.join("; ")
            };
            let what = format!(
                "policy set {} no longer allows it ({why})",
                decision.policy_set_hash
            );
            ended.push(end_for_context(&mut tx, g, what, actor, state).await?);
        }
    }
    tx.commit().await?;
    Ok(ended)
}
