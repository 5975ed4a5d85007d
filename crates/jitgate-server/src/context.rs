//! The context a request stands in, loaded for the core's governance rules
//! (`jitgate_core::governance::still_allowed`, `lifecycle::reconsider`), and the pass that
//! applies a change of context to every open request and active grant.
//!
//! A change of context — an identity disabled, a vendor org suspended, an asset locked out or
//! removed, a policy reload, an API key revoked — acts on *pending* and *approved* requests
//! as well as *active* grants: the core decides, for each, whether it still stands; this
//! module only loads what the core needs and saves what it returns. Each pass runs inside the
//! write transaction that records the change, so the change and its consequences commit
//! together; the caller then pushes the revocations ([`crate::revocations::push_revocations`]).

use crate::error::{ApiResult, ServerError};
use crate::state::AppState;
use jitgate_core::event::Actor;
use jitgate_core::governance::Standing;
use jitgate_core::lifecycle::{self, EndReason};
use jitgate_core::{
    Approval, Asset, Decision, Grant, GrantState, Identity, Org, Request, RequestState, Timestamp,
};
use jitgate_store::{GrantFilter, RequestFilter, Tx};

/// Largest number of open requests or active grants examined per change (far above any
/// plant's count).
const MAX_OPEN: i64 = 100_000;

/// Everything [`Standing`] borrows, loaded now for one request.
pub struct Loaded {
    pub requester: Option<Identity>,
    pub subject: Option<Identity>,
    pub orgs: Vec<Org>,
    pub assets: Vec<Asset>,
    pub decision: Decision,
    pub approvals: Vec<Approval>,
    pub filing_key_usable: Option<bool>,
    /// The owner of the standing exception the request files (`None` for other requests).
    pub exception_owner: Option<String>,
}

impl Loaded {
    /// Read the request's approvals again under the write lock, and its parties when one is a
    /// workload: conflicts of interest depend on a workload's owners, which an inventory
    /// change may have moved since the read. (Other parties' conflicts depend on ids alone,
    /// and a status change has already voided the request under the same lock.)
    pub async fn refresh_parties(&mut self, tx: &mut Tx, r: &Request) -> ApiResult<()> {
        let is_workload = |i: &Option<Identity>| {
            i.as_ref()
                .is_none_or(|i| i.kind == jitgate_core::IdentityKind::Workload)
        };
        if is_workload(&self.requester) || is_workload(&self.subject) {
            self.requester = tx.get_identity(&r.requester).await?;
            self.subject = if r.subject == r.requester {
                self.requester.clone()
            } else {
                tx.get_identity(&r.subject).await?
            };
        }
        self.approvals = tx.list_approvals(&r.id).await?;
        Ok(())
    }

    pub fn standing(&self) -> Standing<'_> {
        Standing {
            requester: self.requester.as_ref(),
            subject: self.subject.as_ref(),
            orgs: &self.orgs,
            assets: &self.assets,
            decision: &self.decision,
            approvals: &self.approvals,
            filing_key_usable: self.filing_key_usable,
            exception_owner: self.exception_owner.as_deref(),
        }
    }
}

/// Whether an API key can still be used at `now`: not revoked, not expired, its minter (if
/// recorded) present and active.
pub async fn api_key_usable(tx: &mut Tx, key_id: &str, now: Timestamp) -> ApiResult<bool> {
    match tx.get_api_key(key_id).await? {
        Some(k) => key_record_usable(tx, &k, now).await,
        None => Ok(false),
    }
}

/// [`api_key_usable`] for a key already read.
pub async fn key_record_usable(
    tx: &mut Tx,
    k: &jitgate_store::ApiKeyRecord,
    now: Timestamp,
) -> ApiResult<bool> {
    if k.revoked || k.expires_at.is_some_and(|t| t <= now) {
        return Ok(false);
    }
    match &k.minted_by {
        None => Ok(true),
        Some(by) => Ok(tx.get_identity(by).await?.is_some_and(|i| i.is_active())),
    }
}

/// Load the context of `r` as it is now, with the current policy set's decision on it.
/// `orgs` may be passed in when the caller already holds them (a pass over many requests).
pub async fn load(
    tx: &mut Tx,
    state: &AppState,
    r: &Request,
    orgs: Option<&[Org]>,
) -> ApiResult<Loaded> {
    let now = state.clock.now();
    let requester = tx.get_identity(&r.requester).await?;
    let subject = if r.subject == r.requester {
        requester.clone()
    } else {
        tx.get_identity(&r.subject).await?
    };
    let orgs = match orgs {
        Some(o) => o.to_vec(),
        None => tx.list_orgs().await?,
    };
    let mut assets = Vec::new();
    for id in r.scope.assets() {
        if let Some(a) = tx.get_asset(&id).await? {
            assets.push(a);
        }
    }
    let approvals = tx.list_approvals(&r.id).await?;
    let filing_key_usable = match &r.filed_with_key {
        Some(k) => Some(api_key_usable(tx, &k.key_id, now).await?),
        None => None,
    };
    let decision = match (&requester, &subject) {
        (Some(req), Some(sub)) => {
            let policies = state.policies();
            crate::policy::decide(
                &policies.set,
                req,
                sub,
                &orgs,
                &assets,
                &r.scope,
                r.path,
                r.duration_secs,
            )
        }
        // A missing identity is a hold of its own; the decision is not consulted.
        _ => Decision {
            allowed: false,
            determining_policies: vec![],
            policy_set_hash: state.policies().set.hash().to_string(),
            obligations: Default::default(),
            reasons: vec!["an identity of the request is no longer in the inventory".into()],
        },
    };
    let exception_owner = crate::parties::exception_owner(tx, r).await?;
    Ok(Loaded {
        requester,
        subject,
        orgs,
        assets,
        decision,
        approvals,
        filing_key_usable,
        exception_owner,
    })
}

/// End one active grant for a change of context, in `tx` (an approval withdrawn).
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

/// After a change of context, in `tx`: ask the core whether every pending or approved
/// request and every active grant still stands, and save what it decides (requests lapsed
/// or denied, grants ended). Returns the ended grants, whose revocations the caller pushes
/// after the commit.
pub async fn reconsider_open(
    tx: &mut Tx,
    state: &AppState,
    actor: &Actor,
) -> ApiResult<Vec<Grant>> {
    let now = state.clock.now();
    let orgs = tx.list_orgs().await?;
    let mut open: Vec<(Request, Option<Grant>)> = Vec::new();
    for st in [RequestState::Pending, RequestState::Approved] {
        let filter = RequestFilter {
            state: Some(st),
            limit: MAX_OPEN,
            ..Default::default()
        };
        open.extend(
            tx.list_requests(&filter)
                .await?
                .into_iter()
                .map(|r| (r, None)),
        );
    }
    let active = tx
        .list_grants(&GrantFilter {
            state: Some(GrantState::Active),
            subject: None,
            after: None,
            limit: MAX_OPEN,
        })
        .await?;
    for g in active {
        if let Some(r) = tx.get_request(&g.request_id).await? {
            open.push((r, Some(g)));
        }
    }
    let mut ended = Vec::new();
    for (r, g) in open {
        let loaded = load(tx, state, &r, Some(&orgs)).await?;
        let Some(out) = lifecycle::reconsider(r, g, &loaded.standing(), actor.clone(), now)? else {
            continue;
        };
        tx.update_request(&out.request).await?;
        if let Some(g) = &out.grant {
            tx.update_grant(g).await?;
        }
        tx.append_events(&out.events).await?;
        ended.extend(
            crate::effects::apply_in_tx(tx, state, &out, crate::effects::no_details).await?,
        );
    }
    Ok(ended)
}

/// After a policy reload: [`reconsider_open`] in its own transaction. Returns the ended
/// grants (already committed) — the caller pushes their revocations.
pub async fn reevaluate_after_reload(state: &AppState, actor: &Actor) -> ApiResult<Vec<Grant>> {
    let mut tx = state.store.write().await?;
    let ended = reconsider_open(&mut tx, state, actor).await?;
    tx.commit().await?;
    Ok(ended)
}

/// Re-read the configured policies. A set that does not parse or validate is refused and the
/// previous set stays in force; the error names file, line and column.
pub async fn reload_policies(
    state: &AppState,
    actor: Actor,
) -> ApiResult<crate::views::PolicyInfo> {
    let loaded = crate::policy::load(state.config.policy_dir.as_deref())
        .map_err(|e| ServerError::Policy(format!("{e}; the previous policy set stays in force")))?;
    let info = crate::policy::info(&loaded);
    crate::evidence::archive_policies(&state.store, &loaded.set).await?;
    crate::policy::record_loaded(state, actor.clone(), &info).await?;
    state.set_policies(loaded);
    // Every active grant is decided again under the new set; those it no longer allows end.
    let ended = reevaluate_after_reload(state, &actor).await?;
    crate::revocations::push_revocations(state, &ended).await;
    Ok(info)
}
