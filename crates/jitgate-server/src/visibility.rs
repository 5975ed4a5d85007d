//! Who may see a request (and so its grant, evidence, reviews and sessions): the core's
//! access table (`jitgate_core::access`) over the facts loaded here. Every "not found or
//! not yours" answer of the API goes through [`can_view`] before anything about the request
//! is revealed.

use crate::auth::Caller;
use crate::error::ApiResult;
use jitgate_core::lifecycle;
use jitgate_core::scope::Scope;
use jitgate_core::{Identity, IdentityKind, Request};
use jitgate_store::Tx;

/// The sites of a scope's assets, as stored now.
pub(crate) async fn asset_sites(tx: &mut Tx, scope: &Scope) -> ApiResult<Vec<String>> {
    let mut sites = Vec::new();
    for id in scope.assets() {
        // An asset removed from the inventory after the request keeps its site unknown;
        // site-bound approvals then fail closed.
        if let Some(a) = tx.get_asset(&id).await? {
            if !sites.contains(&a.site) {
                sites.push(a.site);
            }
        }
    }
    Ok(sites)
}

/// Who may see a request: the core's access table (`jitgate_core::access`), over the facts
/// loaded here.
/// The grant `id` for its subject, who alone obtains its credentials (token, SSH
/// certificate): not the requester, not an approver. Someone else who may see the grant is
/// told it is not theirs (`forbidden`); anyone else learns nothing of it (`not_found`).
pub(crate) async fn grant_of_subject(
    tx: &mut Tx,
    caller: &Caller,
    id: &str,
) -> ApiResult<jitgate_core::Grant> {
    let g = tx
        .get_grant(id)
        .await?
        .ok_or_else(|| crate::error::ServerError::not_found("grant", id))?;
    if g.subject == caller.id() {
        return Ok(g);
    }
    let visible = match tx.get_request(&g.request_id).await? {
        Some(r) => can_view(tx, caller, &r).await?,
        None => false,
    };
    Err(if visible {
        crate::error::ServerError::Forbidden(format!(
            "grant {id} is for {}; only its subject can obtain its credentials",
            g.subject
        ))
    } else {
        crate::error::ServerError::not_found("grant", id)
    })
}

pub async fn can_view(tx: &mut Tx, caller: &Caller, r: &Request) -> ApiResult<bool> {
    let me = &caller.identity;
    // The cheap answers first: no loading for staff who see everything or for the parties.
    if jitgate_core::access::sees_everything(me) || me.id == r.requester || me.id == r.subject {
        return Ok(true);
    }
    if me.kind == IdentityKind::Workload {
        return Ok(false);
    }
    let requester = tx.get_identity(&r.requester).await?;
    let subject = tx.get_identity(&r.subject).await?;
    let approvals = tx.list_approvals(&r.id).await?;
    let sites = asset_sites(tx, &r.scope).await?;
    Ok(visible_with(
        caller,
        r,
        requester.as_ref(),
        subject.as_ref(),
        &approvals,
        &sites,
    ))
}

/// [`can_view`] over facts already loaded (no queries).
pub fn visible_with(
    caller: &Caller,
    r: &Request,
    requester: Option<&Identity>,
    subject: Option<&Identity>,
    approvals: &[jitgate_core::Approval],
    sites: &[String],
) -> bool {
    let me = &caller.identity;
    let party_orgs: Vec<String> = [requester, subject]
        .into_iter()
        .filter_map(|i| i.and_then(|i| i.org.clone()))
        .collect();
    let subject_owners = subject.map(|s| s.owners.clone()).unwrap_or_default();
    let approvers: Vec<String> = approvals.iter().map(|a| a.approver.clone()).collect();
    let caller_eligible = match (requester, subject) {
        (Some(requester), Some(subject)) => lifecycle::is_eligible_approver(
            r,
            me,
            // The owner of a standing exception may not grant it but may see it: as far as
            // seeing goes, it counts like any approver.
            &jitgate_core::governance::Parties {
                requester,
                subject,
                exception_owner: None,
            },
            sites,
        ),
        _ => false,
    };
    jitgate_core::access::may_see_request(
        me,
        &jitgate_core::access::RequestFacts {
            requester: &r.requester,
            subject: &r.subject,
            state: Some(r.state),
            approvals_needed: r.decision.obligations.approvals,
            subject_owners: &subject_owners,
            party_orgs: &party_orgs,
            approvers: &approvers,
            asset_sites: sites,
            caller_eligible,
        },
    )
}
