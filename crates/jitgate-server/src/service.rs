//! Orchestration of the lifecycle: load what a transition needs from the store, take the
//! policy decision, call the core transition, and save the result with its events in one
//! write transaction. Handlers stay thin; the scheduler and the tests call these directly.

use crate::auth::Caller;
use crate::config::parse_duration_secs;
use crate::error::{ApiResult, ServerError};
pub use crate::ids::new_id;
use crate::paging::{self, Collector, PageRequest, Paged};
use crate::state::AppState;
use crate::views::{GrantView, NewRequestBody, RequestView};
use crate::visibility::{asset_sites, can_view, visible_with};
use jitgate_core::event::{Actor, Event};
use jitgate_core::exception;
use jitgate_core::lifecycle::{self, ApprovalInput, NewRequest, Outcome};
use jitgate_core::scope::{self, Scope};
use jitgate_core::server_payload::{
    ContextChange, ContextChanged, ContextTarget, InventoryChanged,
};
use jitgate_core::{
    ApprovalVerdict, Asset, CoreError, EndReason, Grant, GrantState, Identity, IdentityStatus,
    Inventory, Org, Request, RequestState, Timestamp,
};
use jitgate_store::{GrantFilter, RequestFilter, Tx};

async fn identity(tx: &mut Tx, id: &str) -> ApiResult<Identity> {
    tx.get_identity(id)
        .await?
        .ok_or_else(|| ServerError::not_found("identity", id))
}

async fn asset(tx: &mut Tx, id: &str) -> ApiResult<Asset> {
    tx.get_asset(id)
        .await?
        .ok_or_else(|| ServerError::not_found("asset", id))
}

async fn request(tx: &mut Tx, id: &str) -> ApiResult<Request> {
    tx.get_request(id)
        .await?
        .ok_or_else(|| ServerError::not_found("request", id))
}

async fn grant(tx: &mut Tx, id: &str) -> ApiResult<Grant> {
    tx.get_grant(id)
        .await?
        .ok_or_else(|| ServerError::not_found("grant", id))
}

/// Save what a transition produced — request, grant, approval, then the events — and carry
/// out the effects that belong in its transaction (`crate::effects`). Returns the grants
/// whose revocations the caller pushes after the commit.
pub(crate) async fn save(
    tx: &mut Tx,
    state: &AppState,
    out: &Outcome,
    request_is_new: bool,
    grant_is_new: bool,
) -> ApiResult<Vec<Grant>> {
    if request_is_new {
        tx.insert_request(&out.request).await?;
    } else {
        tx.update_request(&out.request).await?;
    }
    if let Some(a) = &out.approval {
        tx.insert_approval(a).await?;
    }
    if let Some(g) = &out.grant {
        if grant_is_new {
            tx.insert_grant(g).await?;
            start_exception_clock(tx, state, &out.request, g).await?;
            // The policy's `@attestation("required")`, as decided at filing: the subject
            // owes an attestation once the grant ends (`crate::attestations`).
            if out.request.decision.obligations.attestation {
                tx.require_attestation(&g.id, &g.request_id, &g.subject)
                    .await?;
            }
        } else {
            tx.update_grant(g).await?;
        }
    }
    tx.append_events(&out.events).await?;
    crate::effects::apply_in_tx(tx, state, out, crate::effects::no_details).await
}

/// A standing exception's grant was just issued: its first re-validation falls one interval
/// from now (`exception::started`). An exception filed a moment ago has no row yet; its
/// filing starts the clock itself.
async fn start_exception_clock(
    tx: &mut Tx,
    state: &AppState,
    request: &Request,
    grant: &Grant,
) -> ApiResult<()> {
    if request.path != jitgate_core::AccessPath::Standing {
        return Ok(());
    }
    if let Some(ex) = tx.exception_of_request(&request.id).await? {
        let ex = exception::started(ex, grant);
        tx.update_exception(&ex).await?;
        state.deadline(ex.next_revalidation);
    }
    Ok(())
}

/// If a transition left the request `approved` with its window already open, issue its grant
/// in the same step (otherwise the scheduler does it when the window opens). Merging the two
/// outcomes keeps it to one save: fewer statements while the write lock is held. The
/// context was loaded for the approval just decided, in the same transaction.
fn then_activate_if_due(
    mut out: Outcome,
    loaded: &crate::context::Loaded,
    now: Timestamp,
) -> ApiResult<Outcome> {
    if !lifecycle::due_for_activation(&out.request, now) {
        return Ok(out);
    }
    let mut approvals = loaded.approvals.clone();
    approvals.extend(out.approval.clone());
    let standing = jitgate_core::governance::Standing {
        approvals: &approvals,
        ..loaded.standing()
    };
    let mut activated = lifecycle::activate(out.request, &new_id("grant"), &standing, now)?;
    out.events.append(&mut activated.events);
    out.request = activated.request;
    out.grant = activated.grant;
    out.refused = out.refused.or(activated.refused);
    out.effects.append(&mut activated.effects);
    Ok(out)
}

/// The scheduler's activation of an approved request whose window has opened: the core
/// re-decides under the current context first, and a request that no longer stands lapses.
async fn activate_if_due(
    tx: &mut Tx,
    state: &AppState,
    request: &Request,
    now: Timestamp,
) -> ApiResult<Option<Grant>> {
    if !lifecycle::due_for_activation(request, now) {
        return Ok(None);
    }
    let loaded = crate::context::load(tx, state, request, None).await?;
    let out = lifecycle::activate(request.clone(), &new_id("grant"), &loaded.standing(), now)?;
    save(tx, state, &out, false, true).await?;
    Ok(out.grant)
}

/// File a request: parse and check the scope against the inventory, decide by policy,
/// record it (and, for an allowed break-glass request, its grant). The `standing` path is
/// refused here: exceptions are filed with their terms (`crate::exceptions`).
pub async fn submit_request(
    state: &AppState,
    caller: &Caller,
    body: NewRequestBody,
) -> ApiResult<RequestView> {
    jitgate_core::exception::check_plain_request_path(body.path)?;
    Ok(submit(state, caller, body, None).await?.0)
}

/// File a request, or with `terms` a standing exception (path `standing`): the terms are
/// checked by the core before the policy is asked, and the exception row and its
/// `exception.requested` event are saved in the request's transaction.
pub(crate) async fn submit(
    state: &AppState,
    caller: &Caller,
    body: NewRequestBody,
    terms: Option<exception::Terms>,
) -> ApiResult<(RequestView, Option<exception::Exception>)> {
    let now = state.clock.now();
    let duration_secs = parse_duration_secs(&body.duration)
        .map_err(|m| CoreError::InvalidRequest(format!("duration {:?}: {m}", body.duration)))?;
    if body.scope.is_empty() {
        return Err(CoreError::InvalidScope(
            "a request needs a scope: at least one asset with rules, e.g. --asset plc-7 --modbus 'read holding 0-99 unit 1'".into(),
        )
        .into());
    }
    let mut tx = state.store.read().await?;
    let requester = caller.identity.clone();
    let subject = match &body.subject {
        Some(s) if s != &requester.id => identity(&mut tx, s).await?,
        _ => requester.clone(),
    };
    let mut assets = Vec::new();
    let mut items = Vec::new();
    for entry in &body.scope {
        let a = asset(&mut tx, &entry.asset).await?;
        items.extend(scope::parse_request(&a, entry)?);
        if !assets.iter().any(|x: &Asset| x.id == a.id) {
            assets.push(a);
        }
    }
    let scope = Scope::new(items)?;
    let orgs = tx.list_orgs().await?;
    if let Some(t) = &terms {
        let owner = tx.get_identity(&t.owner).await?;
        exception::check_terms(t, &requester, &subject, owner.as_ref(), duration_secs)?;
    }
    drop(tx);
    // Who filed it and with which key is recorded: the key's minter never approves it.
    let filed_with_key = caller.api_key.clone();

    let new = NewRequest {
        id: new_id("req"),
        requester: requester.clone(),
        subject: subject.clone(),
        scope,
        window_start: body.start,
        duration_secs,
        reason: body.reason,
        reference: body.reference,
        path: body.path,
        filed_with_key: filed_with_key.clone(),
    };
    lifecycle::validate_new(&new, now)?;
    let policies = state.policies();
    let decision = crate::policy::decide(
        &policies.set,
        &requester,
        &subject,
        &orgs,
        &assets,
        &new.scope,
        new.path,
        duration_secs,
    );
    state.metrics.decision(decision.allowed);
    let context = lifecycle::SubmitContext {
        orgs: &orgs,
        assets: &assets,
        // The caller just authenticated with it, so it is usable.
        filing_key_usable: filed_with_key.as_ref().map(|_| true),
    };
    let out = lifecycle::submit(new, decision, &context, &new_id("grant"), now)?;
    let loaded = crate::context::Loaded {
        requester: Some(requester),
        subject: Some(subject),
        orgs: orgs.clone(),
        assets: assets.clone(),
        decision: out.request.decision.clone(),
        approvals: vec![],
        filing_key_usable: context.filing_key_usable,
        exception_owner: terms.as_ref().map(|t| t.owner.clone()),
    };
    let out = then_activate_if_due(out, &loaded, now)?;
    // The exception's row (its clock started if the grant was issued at once).
    let record = match terms {
        Some(t) => {
            let ex = exception::new_exception(&new_id("exc"), t, &out.request, now);
            let ex = match &out.grant {
                Some(g) => exception::started(ex, g),
                None => ex,
            };
            let event = exception::requested_event(&ex, &out.request.requester, now)?;
            Some((ex, event))
        }
        None => None,
    };
    let mut tx = state.store.write().await?;
    // Counted again under the write lock (write transactions are serialised): the API's
    // early check alone would let concurrent submissions of one requester past the limit.
    let max = state.config.limits.max_open_requests;
    let open = open_requests(&mut tx, &out.request.requester, max).await?;
    jitgate_core::governance::check_open_requests(&out.request.requester, open, max)?;
    save(&mut tx, state, &out, true, true).await?;
    if let Some((ex, event)) = &record {
        tx.insert_exception(ex).await?;
        tx.append_events(std::slice::from_ref(event)).await?;
    }
    tx.commit().await?;
    notify_deadlines(state, &out);
    if let Some((ex, _)) = &record {
        state.deadline(ex.next_revalidation);
    }
    Ok((
        view_of(out.request, vec![], out.grant),
        record.map(|(ex, _)| ex),
    ))
}

/// How many open requests (pending, approved, active, ending) `requester` has, counted up to
/// `max + 1` (enough to tell whether the limit is reached).
pub async fn open_requests(
    tx: &mut jitgate_store::Tx,
    requester: &str,
    max: usize,
) -> Result<usize, ServerError> {
    let mut open = 0;
    for s in [
        RequestState::Pending,
        RequestState::Approved,
        RequestState::Active,
        RequestState::Ending,
    ] {
        let filter = jitgate_store::RequestFilter {
            state: Some(s),
            requester: Some(requester.to_string()),
            limit: max as i64 + 1,
            ..Default::default()
        };
        open += tx.list_requests(&filter).await?.len();
    }
    Ok(open)
}

/// The deadlines a transition created: the grant's expiry, the window's opening and closing.
fn notify_deadlines(state: &AppState, out: &Outcome) {
    if let Some(g) = &out.grant {
        state.deadline(g.expires_at);
    }
    match out.request.state {
        // Waiting for its window to open (an open one was activated in the same step).
        RequestState::Approved => state.deadline(out.request.window_start),
        // Lapses when its window closes.
        RequestState::Pending => state.deadline(out.request.window_end()),
        _ => {}
    }
}

pub fn view_of(
    request: Request,
    approvals: Vec<jitgate_core::Approval>,
    grant: Option<Grant>,
) -> RequestView {
    let mut approved_by: Vec<String> = approvals
        .iter()
        .filter(|a| a.verdict == ApprovalVerdict::Approve)
        .map(|a| a.approver.clone())
        .collect();
    approved_by.dedup();
    RequestView {
        description: request.scope.describe(),
        obligations: request.decision.obligations.clone(),
        approvals,
        approved_by,
        grant,
        request,
    }
}

/// Full view of one request, if the caller may see it.
pub async fn get_request_view(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<RequestView> {
    let mut tx = state.store.read().await?;
    let r = request(&mut tx, id).await?;
    if !can_view(&mut tx, caller, &r).await? {
        // Same answer as for a missing request: do not reveal what exists.
        return Err(ServerError::not_found("request", id));
    }
    let approvals = tx.list_approvals(id).await?;
    let g = match &r.grant_id {
        Some(gid) => tx.get_grant(gid).await?,
        None => None,
    };
    Ok(view_of(r, approvals, g))
}

/// Query options of `GET /requests`.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    /// Only requests in this state.
    pub state: Option<String>,
    /// `me`: pending requests waiting for my decision.
    pub awaiting: Option<String>,
    /// Only requests I filed or that are for me.
    pub mine: Option<bool>,
    /// Items per page (default `[limits] default_page_size`, 100; at most
    /// `max_page_size`, 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `x-next-cursor` header.
    #[param(max_length = 400)]
    pub cursor: Option<String>,
}

/// One page of the requests `caller` may see, newest first, read by keyset from the store
/// ([`crate::paging`]): hidden rows are skipped, never counted.
pub async fn list_requests(
    state: &AppState,
    caller: &Caller,
    q: RequestQuery,
    page: &PageRequest,
) -> ApiResult<Paged<RequestView>> {
    let state_filter = match q.state.as_deref() {
        Some(s) => Some(RequestState::parse(s).ok_or_else(|| {
            ServerError::BadRequest(format!(
                "unknown state {s:?}; use denied, pending, approved, active, ending, closed, withdrawn or lapsed"
            ))
        })?),
        None => None,
    };
    let awaiting_me = match q.awaiting.as_deref() {
        None => false,
        Some("me") => true,
        Some(other) => {
            return Err(ServerError::BadRequest(format!(
                "awaiting={other:?}: only `me` is supported"
            )))
        }
    };
    let mut tx = state.store.read().await?;
    if let Some(after) = &page.after {
        // A cursor names a request the caller was shown; any other is refused like a
        // garbled one, so cursors cannot probe for hidden requests.
        let shown = match tx.get_request(after).await? {
            Some(r) => can_view(&mut tx, caller, &r).await?,
            None => false,
        };
        if !shown {
            return Err(paging::invalid_cursor("requests"));
        }
    }
    let mut filter = RequestFilter {
        state: if awaiting_me {
            Some(RequestState::Pending)
        } else {
            state_filter
        },
        involving: q.mine.unwrap_or(false).then(|| caller.id().to_string()),
        after: page.after.clone(),
        limit: page.batch(),
        ..Default::default()
    };
    let mut out = Collector::new(page);
    loop {
        let batch = tx.list_requests(&filter).await?;
        let end = (batch.len() as i64) < filter.limit;
        for r in batch {
            if out.is_full() {
                break;
            }
            filter.after = Some(r.id.clone());
            if let Some(view) = request_if_listed(&mut tx, caller, r, awaiting_me).await? {
                out.push(view);
            }
        }
        if end || out.is_full() {
            break;
        }
    }
    Ok(out.finish())
}

/// `r` as listed to `caller`, or `None` when it is hidden or (with `awaiting_me`) not
/// waiting for the caller's decision.
async fn request_if_listed(
    tx: &mut Tx,
    caller: &Caller,
    r: Request,
    awaiting_me: bool,
) -> ApiResult<Option<RequestView>> {
    if !can_view(tx, caller, &r).await? {
        return Ok(None);
    }
    let approvals = tx.list_approvals(&r.id).await?;
    if awaiting_me {
        let sites = asset_sites(tx, &r.scope).await?;
        let decided = approvals.iter().any(|a| a.approver == caller.id());
        let (Some(requester), Some(subject)) = (
            tx.get_identity(&r.requester).await?,
            tx.get_identity(&r.subject).await?,
        ) else {
            return Ok(None);
        };
        let exception_owner = crate::parties::exception_owner(tx, &r).await?;
        let parties = jitgate_core::governance::Parties {
            requester: &requester,
            subject: &subject,
            exception_owner: exception_owner.as_deref(),
        };
        if decided || !lifecycle::is_eligible_approver(&r, &caller.identity, &parties, &sites) {
            return Ok(None);
        }
    }
    let g = match &r.grant_id {
        Some(gid) => tx.get_grant(gid).await?,
        None => None,
    };
    Ok(Some(view_of(r, approvals, g)))
}

/// The step-up sent with an approval.
#[derive(Debug)]
pub enum StepUpProof {
    None,
    Totp(String),
    Passkey(crate::views::PasskeyAssertion),
}

impl StepUpProof {
    /// From an approval's body: a TOTP code or a passkey assertion, not both.
    pub fn of(
        totp: Option<String>,
        passkey: Option<crate::views::PasskeyAssertion>,
    ) -> ApiResult<StepUpProof> {
        match (totp, passkey) {
            (None, None) => Ok(StepUpProof::None),
            (Some(code), None) => Ok(StepUpProof::Totp(code)),
            (None, Some(a)) => Ok(StepUpProof::Passkey(a)),
            (Some(_), Some(_)) => Err(ServerError::BadRequest(
                "send either a TOTP code or a passkey assertion as step-up, not both".into(),
            )),
        }
    }
}

/// An approver's yes or no on a request.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    id: &str,
    verdict: ApprovalVerdict,
    scope_digest: Option<String>,
    comment: String,
    step_up: StepUpProof,
) -> ApiResult<RequestView> {
    let now = state.clock.now();
    // The step-up is spent in its own transaction, kept even if the approval then fails,
    // so that a TOTP code or a passkey challenge seen once can never be replayed.
    let step_up = match step_up {
        StepUpProof::None => None,
        StepUpProof::Totp(code) => {
            let stage = jitgate_core::payload::AuthStage::StepUp;
            crate::login::step_up(state, caller.id(), &code, stage).await?;
            Some(jitgate_core::passkey::StepUpMethod::Totp)
        }
        StepUpProof::Passkey(assertion) => {
            // Bound to the request as it is now: its id and current scope digest.
            let mut tx = state.store.read().await?;
            let r = request(&mut tx, id).await?;
            drop(tx);
            let m =
                crate::passkeys::verify_step_up(state, caller, &r.id, &r.scope_digest, assertion)
                    .await?;
            Some(m)
        }
    };
    // The context now, with the current policy set's decision: the core re-decides at every
    // approval, and a request that no longer stands lapses or is denied instead. It is read
    // before the write lock, and visibility and the assets' sites are taken from it. The
    // policy decision (the costly part) is not repeated under the lock: every change of
    // context (inventory, status, policy reload) re-decides open requests under that same
    // lock, so one committed in between has already voided the request, whose state is read
    // again below. The parties and approvals are read again under the lock: conflicts of
    // interest are computed from them.
    let mut tx = state.store.read().await?;
    let r = request(&mut tx, id).await?;
    let mut loaded = crate::context::load(&mut tx, state, &r, None).await?;
    drop(tx);
    let mut sites: Vec<String> = Vec::new();
    for a in &loaded.assets {
        if !sites.contains(&a.site) {
            sites.push(a.site.clone());
        }
    }
    let visible = visible_with(
        caller,
        &r,
        loaded.requester.as_ref(),
        loaded.subject.as_ref(),
        &loaded.approvals,
        &sites,
    );
    if !visible {
        return Err(ServerError::not_found("request", id));
    }

    let mut tx = state.store.write().await?;
    let r = request(&mut tx, id).await?;
    loaded.refresh_parties(&mut tx, &r).await?;
    let approvals = loaded.approvals.clone();
    let input = ApprovalInput {
        approval_id: new_id("appr"),
        verdict,
        scope_digest: scope_digest.unwrap_or_else(|| r.scope_digest.clone()),
        comment,
        step_up,
    };
    let out = lifecycle::decide(
        r,
        &caller.identity,
        input,
        &approvals,
        &sites,
        &loaded.standing(),
        now,
    )?;
    let out = then_activate_if_due(out, &loaded, now)?;
    save(&mut tx, state, &out, false, true).await?;
    tx.commit().await?;
    if let Some(refused) = out.refused {
        return Err(refused.into());
    }
    notify_deadlines(state, &out);
    let mut all = approvals;
    all.extend(out.approval);
    Ok(view_of(out.request, all, out.grant))
}

pub async fn withdraw(state: &AppState, caller: &Caller, id: &str) -> ApiResult<RequestView> {
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let r = request(&mut tx, id).await?;
    if !can_view(&mut tx, caller, &r).await? {
        return Err(ServerError::not_found("request", id));
    }
    let out = lifecycle::withdraw(r, caller.id(), now)?;
    save(&mut tx, state, &out, false, false).await?;
    let approvals = tx.list_approvals(id).await?;
    tx.commit().await?;
    Ok(view_of(out.request, approvals, None))
}

/// An approver withdraws their approval: it stops counting; an approved request goes back
/// to pending; an active grant ends (a change of context), its sessions cut at once.
pub async fn withdraw_approval(
    state: &AppState,
    caller: &Caller,
    id: &str,
    reason: &str,
) -> ApiResult<RequestView> {
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let r = request(&mut tx, id).await?;
    if !can_view(&mut tx, caller, &r).await? {
        return Err(ServerError::not_found("request", id));
    }
    let mine = tx
        .list_approvals(id)
        .await?
        .into_iter()
        .find(|a| a.approver == caller.id())
        .ok_or_else(|| {
            ServerError::BadRequest(format!(
                "{} has no approval on request {id} to withdraw",
                caller.id()
            ))
        })?;
    let (r, effect, event) = lifecycle::withdraw_approval(r, &mine, caller.id(), reason, now)?;
    tx.withdraw_approval(id, caller.id(), now).await?;
    tx.update_request(&r).await?;
    tx.append_events(&[event]).await?;
    let mut ended = Vec::new();
    if effect == lifecycle::WithdrawalEffect::EndGrant {
        if let Some(gid) = &r.grant_id {
            let g = grant(&mut tx, gid).await?;
            if g.state == GrantState::Active {
                let what = format!("approval withdrawn by {}: {reason}", caller.id());
                ended.push(
                    crate::context::end_for_context(
                        &mut tx,
                        g,
                        what,
                        &Actor::identity(caller.id()),
                        state,
                    )
                    .await?,
                );
            }
        }
    }
    tx.commit().await?;
    crate::revocations::push_revocations(state, &ended).await;
    drop(ended);
    get_request_view(state, caller, id).await
}

pub fn grant_view(g: Grant, r: &Request, now: Timestamp) -> GrantView {
    let remaining_secs = if g.state == GrantState::Active {
        (g.expires_at - now).num_seconds().max(0)
    } else {
        0
    };
    GrantView {
        description: g.scope.describe(),
        requester: r.requester.clone(),
        reason: r.reason.clone(),
        reference: r.reference.clone(),
        remaining_secs,
        grant: g,
    }
}

pub async fn get_grant_view(state: &AppState, caller: &Caller, id: &str) -> ApiResult<GrantView> {
    let mut tx = state.store.read().await?;
    let g = grant(&mut tx, id).await?;
    let r = request(&mut tx, &g.request_id).await?;
    if !can_view(&mut tx, caller, &r).await? {
        return Err(ServerError::not_found("grant", id));
    }
    Ok(grant_view(g, &r, state.clock.now()))
}

#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GrantQuery {
    /// `active`, `ending`, `closed`, or `failed` (ended, teardown verification failed).
    pub state: Option<String>,
    /// Only grants whose subject is me.
    pub mine: Option<bool>,
    /// Items per page (default `[limits] default_page_size`, 100; at most
    /// `max_page_size`, 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `x-next-cursor` header.
    #[param(max_length = 400)]
    pub cursor: Option<String>,
}

/// One page of the grants `caller` may see, newest first (`failed`: oldest teardown first),
/// read by keyset from the store ([`crate::paging`]): hidden rows are skipped, never counted.
pub async fn list_grants(
    state: &AppState,
    caller: &Caller,
    q: GrantQuery,
    page: &PageRequest,
) -> ApiResult<Paged<GrantView>> {
    let now = state.clock.now();
    let failed = q.state.as_deref() == Some("failed");
    let state_filter = match q.state.as_deref() {
        // `failed`: ended grants whose teardown verification failed (still `ending`, retried).
        Some("failed") | None => None,
        Some(s) => Some(GrantState::parse(s).ok_or_else(|| {
            ServerError::BadRequest(format!(
                "unknown grant state {s:?}; use active, ending, closed or failed (teardown failed)"
            ))
        })?),
    };
    let mine = q.mine.unwrap_or(false);
    let mut tx = state.store.read().await?;
    if let Some(after) = &page.after {
        // A cursor names a grant the caller was shown; any other is refused like a garbled
        // one, so cursors cannot probe for hidden grants.
        let shown = match tx.get_grant(after).await? {
            Some(g) => {
                let r = request(&mut tx, &g.request_id).await?;
                can_view(&mut tx, caller, &r).await?
            }
            None => false,
        };
        if !shown {
            return Err(paging::invalid_cursor("grants"));
        }
    }
    let mut out = Collector::new(page);
    let mut after = page.after.clone();
    let batch = page.batch();
    loop {
        let grants = if failed {
            let mut gs = Vec::new();
            for t in tx
                .list_teardowns_after("failed", after.as_deref(), batch)
                .await?
            {
                gs.push(grant(&mut tx, &t.grant_id).await?);
            }
            gs
        } else {
            let filter = GrantFilter {
                state: state_filter,
                subject: mine.then(|| caller.id().to_string()),
                after: after.clone(),
                limit: batch,
            };
            tx.list_grants(&filter).await?
        };
        let end = (grants.len() as i64) < batch;
        for g in grants {
            if out.is_full() {
                break;
            }
            after = Some(g.id.clone());
            if mine && g.subject != caller.id() {
                continue;
            }
            let r = request(&mut tx, &g.request_id).await?;
            if can_view(&mut tx, caller, &r).await? {
                out.push(grant_view(g, &r, now));
            }
        }
        if end || out.is_full() {
            break;
        }
    }
    Ok(out.finish())
}

/// End a grant by revocation (`complete == false`) or completion by its subject.
pub async fn end_grant(
    state: &AppState,
    caller: &Caller,
    id: &str,
    reason: EndReason,
) -> ApiResult<GrantView> {
    let now = state.clock.now();
    // Authorize before taking the write lock; the grant is read again under it.
    let mut tx = state.store.read().await?;
    let g = grant(&mut tx, id).await?;
    let r = request(&mut tx, &g.request_id).await?;
    if !can_view(&mut tx, caller, &r).await? {
        return Err(ServerError::not_found("grant", id));
    }
    match &reason {
        EndReason::Completed { .. } => {
            let owner_of_subject = identity(&mut tx, &g.subject)
                .await
                .map(|s| s.owners.iter().any(|o| o == caller.id()))
                .unwrap_or(false);
            if caller.id() != g.subject && caller.id() != r.requester && !owner_of_subject {
                return Err(ServerError::Forbidden(format!(
                    "only the subject ({}) or requester of grant {id} can say the task is done; use `jitgate revoke` to end someone else's access",
                    g.subject
                )));
            }
        }
        EndReason::Revoked { .. } => {
            let approvers: Vec<String> = tx
                .list_approvals(&r.id)
                .await?
                .into_iter()
                .map(|a| a.approver)
                .collect();
            let may = jitgate_core::access::may_revoke(
                &caller.identity,
                &jitgate_core::access::RequestFacts {
                    requester: &r.requester,
                    subject: &g.subject,
                    approvers: &approvers,
                    ..Default::default()
                },
            );
            if !may {
                return Err(ServerError::Forbidden(format!(
                    "{} may not revoke grant {id}: revocation is for security staff, admins, its approvers and its subject",
                    caller.id()
                )));
            }
        }
        _ => {}
    }
    drop(tx);
    let mut tx = state.store.write().await?;
    let g = grant(&mut tx, id).await?;
    let r = request(&mut tx, &g.request_id).await?;
    // A grant past its expiry has already ended by expiry, whatever is asked now.
    let reason = if lifecycle::due_for_expiry(&g, now) {
        EndReason::Expired
    } else {
        reason
    };
    let out = lifecycle::end_grant(r, g, reason, Actor::identity(caller.id()), now)?;
    let to_push = save(&mut tx, state, &out, false, false).await?;
    tx.commit().await?;
    // No scheduler wake-up: ending a grant only removes a deadline. The gateways are told
    // before the caller gets the answer.
    crate::effects::push_after_commit(state, &to_push).await;
    let g = out
        .grant
        .ok_or_else(|| ServerError::Internal("end_grant returned no grant".into()))?;
    Ok(grant_view(g, &out.request, now))
}

/// Revoke an active grant inside the caller's write transaction (a review campaign's
/// "end"): the core's `end_grant` with its events and effects, like `jitgate revoke`.
/// Returns the grants whose revocation the caller pushes after its commit
/// ([`crate::effects::push_after_commit`]).
pub async fn revoke_in_tx(
    tx: &mut Tx,
    state: &AppState,
    g: Grant,
    by: &str,
    why: String,
    now: Timestamp,
) -> ApiResult<Vec<Grant>> {
    let r = request(tx, &g.request_id).await?;
    let reason = if lifecycle::due_for_expiry(&g, now) {
        EndReason::Expired
    } else {
        EndReason::Revoked {
            by: by.to_string(),
            reason: why,
        }
    };
    let out = lifecycle::end_grant(r, g, reason, Actor::identity(by), now)?;
    save(tx, state, &out, false, false).await
}

/// One pass of the scheduler: end expired grants and standing exceptions whose
/// re-validation is overdue, lapse requests whose window closed, activate approved requests
/// whose window opened. Returns how many transitions it made.
pub async fn tick(state: &AppState) -> ApiResult<usize> {
    let now = state.clock.now();
    {
        let mut tx = state.store.read().await?;
        if tx.grants_expired(now).await?.is_empty()
            && tx.requests_due(now).await?.is_empty()
            && tx.exceptions_overdue(now).await?.is_empty()
        {
            return Ok(0);
        }
    }
    let mut tx = state.store.write().await?;
    let mut n = 0;
    let mut ended = Vec::new();
    for g in tx.grants_expired(now).await? {
        let r = request(&mut tx, &g.request_id).await?;
        let out = lifecycle::end_grant(r, g, EndReason::Expired, Actor::scheduler(), now)?;
        ended.extend(save(&mut tx, state, &out, false, false).await?);
        n += 1;
    }
    // Standing exceptions whose re-validation is overdue end like any grant.
    for ex in tx.exceptions_overdue(now).await? {
        let r = request(&mut tx, &ex.request_id).await?;
        let Some(gid) = r.grant_id.clone() else {
            continue;
        };
        let g = grant(&mut tx, &gid).await?;
        if g.state != GrantState::Active {
            continue;
        }
        let out = exception::end_overdue(r, g, &ex, now)?;
        ended.extend(save(&mut tx, state, &out, false, false).await?);
        n += 1;
    }
    for r in tx.requests_due(now).await? {
        if lifecycle::due_for_lapse(&r, now) {
            let out = lifecycle::lapse(r, now)?;
            save(&mut tx, state, &out, false, false).await?;
            n += 1;
        } else if lifecycle::due_for_activation(&r, now) {
            activate_if_due(&mut tx, state, &r, now).await?;
            n += 1;
        }
    }
    tx.commit().await?;
    crate::effects::push_after_commit(state, &ended).await;
    Ok(n)
}

/// Load (upsert) an inventory. An identity going from active to disabled, or an org being
/// suspended, is recorded as a context change.
pub async fn load_inventory(state: &AppState, actor: Actor, inv: &Inventory) -> ApiResult<()> {
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let mut events = Vec::new();
    for s in &inv.sites {
        tx.upsert_site(s).await?;
    }
    let admins_before = tx.list_identities().await?;
    for o in &inv.orgs {
        let old = tx.get_org(&o.id).await?;
        if let Some(old) = &old {
            if old.status != o.status {
                events.push(context_event(
                    &actor,
                    now,
                    ContextTarget::Org,
                    &o.id,
                    ContextChange::Status(o.status.into()),
                )?);
            }
        }
        tx.upsert_org(o).await?;
    }
    for i in &inv.identities {
        let old = tx.get_identity(&i.id).await?;
        if let Some(old) = old {
            if old.status != i.status {
                events.push(context_event(
                    &actor,
                    now,
                    ContextTarget::Identity,
                    &i.id,
                    ContextChange::Status(i.status.into()),
                )?);
            }
        }
        tx.upsert_identity(i).await?;
    }
    for a in &inv.assets {
        let old = tx.get_asset(&a.id).await?;
        if let Some(old) = old {
            if old.lockout != a.lockout {
                events.push(context_event(
                    &actor,
                    now,
                    ContextTarget::Asset,
                    &a.id,
                    ContextChange::Lockout { lockout: a.lockout },
                )?);
            }
        }
        tx.upsert_asset(a).await?;
    }
    let ids = |it: &mut dyn Iterator<Item = &String>| it.cloned().collect::<Vec<_>>();
    events.push(Event::with_payload(
        actor.clone(),
        now,
        &InventoryChanged {
            sites: ids(&mut inv.sites.iter().map(|s| &s.id)),
            orgs: ids(&mut inv.orgs.iter().map(|o| &o.id)),
            identities: ids(&mut inv.identities.iter().map(|i| &i.id)),
            assets: ids(&mut inv.assets.iter().map(|a| &a.id)),
        },
    )?);
    tx.append_events(&events).await?;
    jitgate_core::governance::keeps_an_admin(&admins_before, &tx.list_identities().await?)?;
    // Every open request and active grant is re-decided under the new inventory: a locked
    // out asset, a suspended org or a disabled identity stops pending and approved requests
    // too, not only active grants.
    let ended = crate::context::reconsider_open(&mut tx, state, &actor).await?;
    tx.commit().await?;
    crate::revocations::push_revocations(state, &ended).await;
    Ok(())
}

fn context_event(
    actor: &Actor,
    now: Timestamp,
    what: ContextTarget,
    id: &str,
    change: ContextChange,
) -> ApiResult<Event> {
    let payload = ContextChanged {
        what,
        id: id.to_string(),
        change,
    };
    Ok(Event::with_payload(actor.clone(), now, &payload)?)
}

/// Disable or enable an identity; disabling is a context change that later ends its grants.
pub async fn set_identity_status(
    state: &AppState,
    caller: &Caller,
    id: &str,
    status: IdentityStatus,
    reason: &str,
) -> ApiResult<Identity> {
    caller.require_admin()?;
    if status == IdentityStatus::Disabled && reason.trim().is_empty() {
        return Err(ServerError::BadRequest(
            "disabling an identity needs a reason".into(),
        ));
    }
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let mut i = identity(&mut tx, id).await?;
    let mut ended = Vec::new();
    if i.status != status {
        let admins_before = tx.list_identities().await?;
        i.status = status;
        tx.upsert_identity(&i).await?;
        jitgate_core::governance::keeps_an_admin(&admins_before, &tx.list_identities().await?)?;
        let actor = Actor::identity(caller.id());
        tx.append_events(&[context_event(
            &actor,
            now,
            ContextTarget::Identity,
            id,
            ContextChange::IdentityStatusSet {
                status,
                reason: reason.to_string(),
            },
        )?])
        .await?;
        ended = crate::context::reconsider_open(&mut tx, state, &actor).await?;
    }
    tx.commit().await?;
    crate::revocations::push_revocations(state, &ended).await;
    Ok(i)
}

/// Check an org reference for a single upserted identity (the API's PUT), using the stored
/// sites and orgs.
pub async fn validate_identity_refs(tx: &mut Tx, i: &Identity) -> ApiResult<()> {
    let sites = tx.list_sites().await?;
    let orgs: Vec<Org> = tx.list_orgs().await?;
    let site_map = sites.iter().map(|s| (s.id.as_str(), s)).collect();
    let org_set = orgs.iter().map(|o| o.id.as_str()).collect();
    jitgate_core::inventory::validate_identity(i, &site_map, &org_set)?;
    Ok(())
}
