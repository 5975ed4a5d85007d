//! Requests, approvals and grants, and every transition between their states.
//!
//! ```text
//! request ──policy──> denied
//!    └─> pending ──approvals met──> approved ──window opens──> active ──end──> ending ──> closed
//!           └── withdrawn / lapsed      └── withdrawn / lapsed
//! emergency: request ──policy allows break-glass──> active at once (short TTL, review required)
//! ```
//!
//! Each transition is a function that checks the rules, returns the new values and the
//! events to append, or a typed [`CoreError`]. The caller saves both in one transaction.
//! Ids are passed in (the core has no randomness) and time comes from the caller's clock.

use crate::decision::{ApproverSite, Decision};
use crate::event::{Actor, Event, EventKind};
use crate::governance::{self, FiledWithKey, Hold, Parties, Standing};
use crate::inventory::{Identity, IdentityKind};
use crate::payload;
use crate::scope::Scope;
use crate::{CoreError, Timestamp};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How far in the past a requested start may lie (clock skew between client and server).
const START_SKEW: i64 = 300;
/// How far ahead a planned window may be requested.
const MAX_LEAD_DAYS: i64 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccessPath {
    /// Planned maintenance, scheduled in advance.
    Planned,
    /// Routine support.
    Routine,
    /// Break-glass: active at once, short, loud, reviewed afterwards.
    Emergency,
    /// A standing exception (`crate::exception`): long, owned, re-validated.
    Standing,
}

impl AccessPath {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessPath::Planned => "planned",
            AccessPath::Routine => "routine",
            AccessPath::Emergency => "emergency",
            AccessPath::Standing => "standing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    Denied,
    Pending,
    Approved,
    Active,
    Ending,
    Closed,
    Withdrawn,
    Lapsed,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Denied => "denied",
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Active => "active",
            RequestState::Ending => "ending",
            RequestState::Closed => "closed",
            RequestState::Withdrawn => "withdrawn",
            RequestState::Lapsed => "lapsed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GrantState {
    Active,
    /// Ended; teardown (closing sessions, refusing the credential) under way or unverified.
    Ending,
    Closed,
}

impl GrantState {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Active => "active",
            GrantState::Ending => "ending",
            GrantState::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Request {
    pub id: String,
    pub requester: String,
    pub subject: String,
    pub scope: Scope,
    pub scope_digest: String,
    #[schema(value_type = String, format = DateTime)]
    pub window_start: Timestamp,
    pub duration_secs: i64,
    pub reason: String,
    pub reference: String,
    pub path: AccessPath,
    pub state: RequestState,
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// Why the request reached its current state, when not obvious (denial, lapse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    /// Set when the requester authenticated with an API key: which key, minted by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filed_with_key: Option<FiledWithKey>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl Request {
    /// The window closes here; a request not activated by then lapses.
    pub fn window_end(&self) -> Timestamp {
        self.window_start + Duration::seconds(self.duration_secs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalVerdict {
    Approve,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Approval {
    pub id: String,
    pub request_id: String,
    pub approver: String,
    pub verdict: ApprovalVerdict,
    /// The digest of the exact scope this approver saw and approved.
    pub scope_digest: String,
    #[serde(default)]
    pub comment: String,
    /// The approver proved a fresh TOTP code.
    pub step_up: bool,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EndReason {
    /// expires-at passed.
    Expired,
    Revoked {
        by: String,
        reason: String,
    },
    /// The subject said the task is done.
    Completed {
        by: String,
    },
    /// Identity disabled, org suspended, asset locked out, policy no longer allows it, ...
    ContextChanged {
        what: String,
    },
    /// A standing exception's re-validation was not done by its due date
    /// (`crate::exception`).
    RevalidationOverdue,
}

impl EndReason {
    pub fn label(&self) -> &'static str {
        match self {
            EndReason::Expired => "expired",
            EndReason::Revoked { .. } => "revoked",
            EndReason::Completed { .. } => "completed",
            EndReason::ContextChanged { .. } => "context_changed",
            EndReason::RevalidationOverdue => "revalidation_overdue",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    pub id: String,
    pub request_id: String,
    pub subject: String,
    /// Copied from the request at issue and never changed.
    pub scope: Scope,
    pub scope_digest: String,
    #[schema(value_type = String, format = DateTime)]
    pub not_before: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    pub state: GrantState,
    pub emergency: bool,
    pub review_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// Everything needed to file a request; the decision is taken by the caller beforehand.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub id: String,
    pub requester: Identity,
    pub subject: Identity,
    pub scope: Scope,
    /// `None` = now.
    pub window_start: Option<Timestamp>,
    pub duration_secs: i64,
    pub reason: String,
    pub reference: String,
    pub path: AccessPath,
    /// The API key the requester authenticated with, if any.
    pub filed_with_key: Option<FiledWithKey>,
}

/// What a transition produced: the values to save and the events to append.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub request: Request,
    pub grant: Option<Grant>,
    pub approval: Option<Approval>,
    pub events: Vec<Event>,
    /// The transition was refused, and the outcome records why (e.g. a request that no
    /// longer stands is lapsed or denied): save the outcome, then answer with this error.
    pub refused: Option<CoreError>,
    /// What the server carries out besides saving: notices, reviews, revocations.
    pub effects: Vec<Effect>,
}

/// An effect of a transition, decided here and carried out by the server: in the same
/// transaction (notices, reviews) or right after its commit (revocations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Tell the request's eligible approvers that it waits for them.
    AskApprovers,
    /// Announce a grant that became active (break-glass: that the glass was broken).
    AnnounceGrant,
    /// Open a post-session review of the grant.
    OpenReview(ReviewReason),
    /// Push the grant's revocation to the gateways fronting its assets, at once.
    PushRevocation,
}

/// Why a post-session review is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// Break-glass access: used without approval, so it is looked at afterwards (opened
    /// when the grant is issued).
    BreakGlass,
    /// A legacy asset kept local accounts: teardown was `partial`, someone checks the
    /// compensating controls (opened when the teardown is final).
    LegacyAsset,
    /// The policy that allowed the grant asks for a review afterwards (`@review("true")`,
    /// e.g. every vendor session); opened when the grant's teardown is final.
    Policy,
}

impl ReviewReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewReason::BreakGlass => "break_glass",
            ReviewReason::LegacyAsset => "legacy_asset",
            ReviewReason::Policy => "policy",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "break_glass" => Some(ReviewReason::BreakGlass),
            "legacy_asset" => Some(ReviewReason::LegacyAsset),
            "policy" => Some(ReviewReason::Policy),
            _ => None,
        }
    }
}

fn wrong_state(what: String, state: &str, needed: &str) -> CoreError {
    CoreError::WrongState {
        what,
        state: state.into(),
        needed: needed.into(),
    }
}

/// Checks that hold for any request before policy is consulted.
pub fn validate_new(new: &NewRequest, now: Timestamp) -> Result<(), CoreError> {
    let bad = |m: &str| Err(CoreError::InvalidRequest(m.to_string()));
    if new.reason.trim().is_empty() {
        return bad("a reason is required (--reason): say what work the access is for");
    }
    governance::check_free_text("reason", &new.reason, true)?;
    governance::check_free_text("reference", &new.reference, false)?;
    if new.duration_secs <= 0 {
        return bad("duration must be positive, e.g. --for 2h");
    }
    if new.path == AccessPath::Standing {
        // A standing exception's expiry has its own bound (`exception::check_terms`).
        if new.duration_secs > 86_400 * crate::exception::MAX_EXPIRY_DAYS {
            return Err(CoreError::InvalidException(format!(
                "an exception lasts at most {} days",
                crate::exception::MAX_EXPIRY_DAYS
            )));
        }
    } else if new.duration_secs > 86_400 * 30 {
        return bad(
            "duration is limited to 30 days; long-lived access is what jitgate exists to avoid",
        );
    }
    if !new.requester.is_active() {
        return Err(CoreError::IdentityDisabled(new.requester.id.clone()));
    }
    if !new.subject.is_active() {
        return Err(CoreError::IdentityDisabled(new.subject.id.clone()));
    }
    governance::may_hold_access(&new.requester)?;
    governance::may_hold_access(&new.subject)?;
    if new.subject.id != new.requester.id {
        let owns = new.subject.kind == IdentityKind::Workload
            && new.subject.owners.iter().any(|o| o == &new.requester.id);
        if !owns {
            return Err(CoreError::Forbidden(format!(
                "{} may request only for themself or for a workload they own; {} is not theirs",
                new.requester.id, new.subject.id
            )));
        }
    }
    if let Some(start) = new.window_start {
        if start < now - Duration::seconds(START_SKEW) {
            return bad("the window start is in the past; omit --start to begin now");
        }
        if start > now + Duration::days(MAX_LEAD_DAYS) {
            return bad("the window start is more than 90 days ahead");
        }
        if new.path == AccessPath::Emergency && start > now + Duration::seconds(START_SKEW) {
            return bad("break-glass (--path emergency) starts now; use --path planned for a scheduled window");
        }
    }
    Ok(())
}

/// File a request with the policy decision taken on it.
///
/// A denial is a recorded outcome (state `denied`, with the reasons), not an error. An
/// allowed break-glass request is active at once: `grant_id` names its grant.
pub fn submit(
    new: NewRequest,
    decision: Decision,
    context: &SubmitContext<'_>,
    grant_id: &str,
    now: Timestamp,
) -> Result<Outcome, CoreError> {
    validate_new(&new, now)?;
    if decision.allowed && new.duration_secs > decision.obligations.max_duration_secs {
        return Err(CoreError::DurationAboveMaximum {
            requested_secs: new.duration_secs,
            max_secs: decision.obligations.max_duration_secs,
        });
    }
    let start = match new.window_start {
        Some(s) if s > now && new.path != AccessPath::Emergency => s,
        _ => now,
    };
    let mut request = Request {
        scope_digest: new.scope.digest(),
        id: new.id,
        requester: new.requester.id.clone(),
        subject: new.subject.id.clone(),
        scope: new.scope,
        window_start: start,
        duration_secs: new.duration_secs,
        reason: new.reason,
        reference: new.reference,
        path: new.path,
        state: RequestState::Pending,
        decision,
        grant_id: None,
        state_reason: None,
        filed_with_key: new.filed_with_key,
        created_at: now,
        updated_at: now,
    };
    // What holds whatever the policy set says (lockout, suspension, a revoked filing key)
    // turns an allowed decision into a denial, recorded with its reason.
    let standing = Standing {
        requester: Some(&new.requester),
        subject: Some(&new.subject),
        orgs: context.orgs,
        assets: context.assets,
        decision: &request.decision,
        approvals: &[],
        filing_key_usable: context.filing_key_usable,
        exception_owner: None,
    };
    if let Err(hold) = governance::still_allowed(&request, &standing, false) {
        if request.decision.allowed {
            request.decision.allowed = false;
            request.decision.reasons.push(hold.to_string());
        }
    }
    let actor = Actor::identity(&request.requester);
    let submitted = payload::RequestSubmitted {
        requester: request.requester.clone(),
        subject: request.subject.clone(),
        scope_digest: request.scope_digest.clone(),
        scope: request.scope.canonical(),
        window_start: request.window_start,
        duration_secs: request.duration_secs,
        reason: request.reason.clone(),
        reference: request.reference.clone(),
        path: request.path,
    };
    let mut events =
        vec![Event::with_payload(actor.clone(), now, &submitted)?.request(&request.id)];
    let decided = payload::RequestDecided {
        allowed: request.decision.allowed,
        determining_policies: request.decision.determining_policies.clone(),
        policy_set_hash: request.decision.policy_set_hash.clone(),
        obligations: request.decision.obligations.clone(),
        reasons: request.decision.reasons.clone(),
    };
    if !request.decision.allowed {
        request.state = RequestState::Denied;
        request.state_reason = Some(request.decision.reasons.join("; "));
        events.push(
            Event::with_payload(Actor::system(), now, &decided)?
                .request(&request.id)
                .states(None, RequestState::Denied.as_str()),
        );
        return Ok(Outcome {
            request,
            grant: None,
            approval: None,
            events,
            refused: None,
            effects: vec![],
        });
    }
    let after =
        if request.path == AccessPath::Emergency || request.decision.obligations.approvals == 0 {
            RequestState::Approved
        } else {
            RequestState::Pending
        };
    request.state = after;
    events.push(
        Event::with_payload(Actor::system(), now, &decided)?
            .request(&request.id)
            .states(None, after.as_str()),
    );
    if request.path == AccessPath::Emergency {
        let mut out = issue(request, grant_id, now)?;
        events.append(&mut out.events);
        out.events = events;
        return Ok(out);
    }
    let effects = if request.state == RequestState::Pending {
        vec![Effect::AskApprovers]
    } else {
        vec![]
    };
    Ok(Outcome {
        request,
        grant: None,
        approval: None,
        events,
        refused: None,
        effects,
    })
}

/// The checks every approver must pass, for approving and for denying alike.
fn check_approver(
    request: &Request,
    approver: &Identity,
    parties: &Parties<'_>,
    existing: &[Approval],
    asset_sites: &[String],
    now: Timestamp,
) -> Result<(), CoreError> {
    match request.state {
        RequestState::Pending => {}
        RequestState::Lapsed => return Err(CoreError::Lapsed(request.id.clone())),
        other => {
            return Err(wrong_state(
                format!("request {}", request.id),
                other.as_str(),
                "pending",
            ))
        }
    }
    if now >= request.window_end() {
        return Err(CoreError::Lapsed(request.id.clone()));
    }
    if !approver.is_active() {
        return Err(CoreError::IdentityDisabled(approver.id.clone()));
    }
    if approver.kind != IdentityKind::Human {
        return Err(CoreError::NotEligible(format!(
            "{} is a {}; only the plant's own people approve access",
            approver.id,
            approver.kind.as_str()
        )));
    }
    if let Some(conflict) = governance::conflict_of_interest(&approver.id, request, parties) {
        return Err(CoreError::ConflictOfInterest {
            who: approver.id.clone(),
            request: request.id.clone(),
            conflict: conflict.describe().to_string(),
        });
    }
    let ob = &request.decision.obligations;
    let missing: Vec<&String> = ob
        .approver_roles
        .iter()
        .filter(|r| !approver.has_role(r))
        .collect();
    if !missing.is_empty() {
        return Err(CoreError::NotEligible(format!(
            "request {} needs approvers with role(s) {:?}; {} lacks {:?}",
            request.id, ob.approver_roles, approver.id, missing
        )));
    }
    if !ob.approver_groups.is_empty() && !ob.approver_groups.iter().any(|g| approver.in_group(g)) {
        return Err(CoreError::NotEligible(format!(
            "request {} needs an approver from group(s) {:?}; {} is in none",
            request.id, ob.approver_groups, approver.id
        )));
    }
    match &ob.approver_site {
        Some(ApproverSite::Asset) => {
            if let Some(site) = asset_sites.iter().find(|s| !approver.at_site(s)) {
                return Err(CoreError::NotEligible(format!(
                    "request {} needs approvers of the asset's site {site}; {} is not at that site",
                    request.id, approver.id
                )));
            }
        }
        Some(ApproverSite::Named(site)) if !approver.at_site(site) => {
            return Err(CoreError::NotEligible(format!(
                "request {} needs approvers of site {site}; {} is not at that site",
                request.id, approver.id
            )));
        }
        _ => {}
    }
    if existing.iter().any(|a| a.approver == approver.id) {
        return Err(CoreError::AlreadyApproved {
            approver: approver.id.clone(),
            request: request.id.clone(),
        });
    }
    Ok(())
}

/// Could `identity` decide on `request` (ignoring its state and earlier decisions)? Used to
/// show approvers their inbox; [`decide`] checks the same rules and says which one failed.
pub fn is_eligible_approver(
    request: &Request,
    identity: &Identity,
    parties: &Parties<'_>,
    asset_sites: &[String],
) -> bool {
    let mut probe = request.clone();
    probe.state = RequestState::Pending;
    let far_before_end = probe.window_end() - Duration::seconds(1);
    check_approver(
        &probe,
        identity,
        parties,
        &[],
        asset_sites,
        far_before_end.min(probe.created_at),
    )
    .is_ok()
}

/// An approver's decision on a request.
#[derive(Debug, Clone)]
pub struct ApprovalInput {
    pub approval_id: String,
    pub verdict: ApprovalVerdict,
    /// The digest the approver was shown; must equal the request's.
    pub scope_digest: String,
    pub comment: String,
    /// The step-up the server verified for this approval: a fresh TOTP code, or a passkey
    /// assertion that `passkey::check_step_up` accepted for this request and scope digest.
    pub step_up: Option<crate::passkey::StepUpMethod>,
}

/// Record an approver's yes or no. `existing` are the approvals already recorded;
/// `asset_sites` are the sites of the request's assets (for site-bound eligibility).
///
/// `standing` is the request's context loaded now, with the current policy set's decision:
/// a request that no longer stands is lapsed or denied instead (the outcome's `refused`
/// says why), whoever approves it.
pub fn decide(
    mut request: Request,
    approver: &Identity,
    input: ApprovalInput,
    existing: &[Approval],
    asset_sites: &[String],
    standing: &Standing<'_>,
    now: Timestamp,
) -> Result<Outcome, CoreError> {
    let (Some(requester), Some(subject)) = (standing.requester, standing.subject) else {
        let missing = if standing.requester.is_none() {
            &request.requester
        } else {
            &request.subject
        };
        let hold = Hold::IdentityRemoved {
            identity: missing.clone(),
        };
        return void(request, hold, now);
    };
    let parties = Parties {
        requester,
        subject,
        exception_owner: standing.exception_owner,
    };
    check_approver(&request, approver, &parties, existing, asset_sites, now)?;
    if input.scope_digest != request.scope_digest {
        return Err(CoreError::ScopeDigestMismatch {
            given: input.scope_digest,
            actual: request.scope_digest.clone(),
        });
    }
    if input.verdict == ApprovalVerdict::Deny && input.comment.trim().is_empty() {
        return Err(CoreError::InvalidRequest(
            "a denial needs a comment (--comment) telling the requester why".into(),
        ));
    }
    governance::check_free_text("comment", &input.comment, true)?;
    if let Err(hold) = governance::still_allowed(&request, standing, false) {
        return void(request, hold, now);
    }
    if input.verdict == ApprovalVerdict::Approve
        && request.decision.obligations.step_up
        && input.step_up.is_none()
    {
        return Err(CoreError::StepUpRequired);
    }
    // A policy that names the passkey accepts nothing else (a TOTP code can be phished).
    if input.verdict == ApprovalVerdict::Approve
        && request.decision.obligations.step_up_passkey
        && !matches!(
            input.step_up,
            Some(crate::passkey::StepUpMethod::Passkey { .. })
        )
    {
        return Err(CoreError::PasskeyRequired);
    }
    let approval = Approval {
        id: input.approval_id,
        request_id: request.id.clone(),
        approver: approver.id.clone(),
        verdict: input.verdict,
        scope_digest: input.scope_digest,
        comment: input.comment,
        step_up: input.step_up.is_some(),
        at: now,
    };
    let before = request.state;
    // Approvals recorded earlier count only if their approver is not conflicted today (an
    // approver who since became an owner of the workload no longer counts).
    let mut counting = governance::counting_approvers(&request, existing, &parties);
    if approval.verdict == ApprovalVerdict::Approve {
        counting.insert(approver.id.as_str());
    }
    let approvals_so_far = counting.len() as u32;
    let after = match approval.verdict {
        ApprovalVerdict::Deny => RequestState::Denied,
        ApprovalVerdict::Approve if approvals_so_far >= request.decision.obligations.approvals => {
            RequestState::Approved
        }
        ApprovalVerdict::Approve => RequestState::Pending,
    };
    let actor = Actor::identity(&approver.id);
    let recorded = payload::ApprovalRecorded {
        verdict: approval.verdict,
        scope_digest: approval.scope_digest.clone(),
        comment: approval.comment.clone(),
        step_up: approval.step_up,
        step_up_method: input.step_up.clone(),
        approvals: approvals_so_far,
        required: request.decision.obligations.approvals,
    };
    let mut events = vec![Event::with_payload(actor.clone(), now, &recorded)?
        .request(&request.id)
        .approval(&approval.id)
        .states(Some(before.as_str()), after.as_str())];
    if after != before {
        let kind = if after == RequestState::Denied {
            EventKind::RequestDenied
        } else {
            EventKind::RequestApproved
        };
        events.push(
            Event::new(kind, actor, now)
                .request(&request.id)
                .approval(&approval.id)
                .states(Some(before.as_str()), after.as_str()),
        );
        if after == RequestState::Denied {
            request.state_reason = Some(format!("denied by {}: {}", approver.id, approval.comment));
        }
    }
    request.state = after;
    request.updated_at = now;
    Ok(Outcome {
        request,
        grant: None,
        approval: Some(approval),
        events,
        refused: None,
        effects: vec![],
    })
}

/// The requester (or subject) takes back a request that has not become active.
pub fn withdraw(mut request: Request, by: &str, now: Timestamp) -> Result<Outcome, CoreError> {
    if by != request.requester && by != request.subject {
        return Err(CoreError::Forbidden(format!(
            "only the requester or subject of {} can withdraw it",
            request.id
        )));
    }
    let before = request.state;
    if !matches!(before, RequestState::Pending | RequestState::Approved) {
        return Err(wrong_state(
            format!("request {}", request.id),
            before.as_str(),
            "pending or approved",
        ));
    }
    request.state = RequestState::Withdrawn;
    request.updated_at = now;
    let event = Event::new(EventKind::RequestWithdrawn, Actor::identity(by), now)
        .request(&request.id)
        .states(Some(before.as_str()), RequestState::Withdrawn.as_str());
    Ok(Outcome {
        request,
        grant: None,
        approval: None,
        events: vec![event],
        refused: None,
        effects: vec![],
    })
}

/// Close an ended grant once its teardown verdict is final (`verified` or `partial`): the
/// grant and its request become `closed`.
///
/// `legacy_assets`: whether any asset of the grant is `legacy` (a review is opened).
/// `session_ended_seqs` are the sequence numbers of the `session.ended` events of every
/// session under the grant ([`crate::teardown::sessions_recorded`]): the verdict names them,
/// and is only recorded once they are in the log.
pub fn close_grant(
    mut request: Request,
    mut grant: Grant,
    verdict: crate::teardown::TeardownVerdict,
    session_ended_seqs: &[i64],
    legacy_assets: bool,
    now: Timestamp,
) -> Result<Outcome, CoreError> {
    if !verdict.is_final() {
        return Err(CoreError::InvalidRequest(format!(
            "teardown verdict {} does not close grant {}",
            verdict.as_str(),
            grant.id
        )));
    }
    if grant.state != GrantState::Ending {
        return Err(wrong_state(
            format!("grant {}", grant.id),
            grant.state.as_str(),
            "ending",
        ));
    }
    grant.state = GrantState::Closed;
    let before = request.state;
    request.state = RequestState::Closed;
    request.updated_at = now;
    let event = Event::new(EventKind::TeardownVerdict, Actor::scheduler(), now)
        .request(&request.id)
        .grant(&grant.id)
        .states(Some(before.as_str()), RequestState::Closed.as_str())
        .data(
            serde_json::to_value(payload::TeardownVerdictData {
                verdict,
                is_final: true,
                session_ended_events: session_ended_seqs.to_vec(),
            })
            .map_err(|e| CoreError::InvalidRequest(format!("event payload: {e}")))?,
        );
    // Reviews after the fact: a legacy asset's local accounts (its compensating controls are
    // checked), and the policy's own demand (break-glass has its review from the start).
    let mut effects = Vec::new();
    if legacy_assets {
        effects.push(Effect::OpenReview(ReviewReason::LegacyAsset));
    }
    if grant.review_required && !grant.emergency {
        effects.push(Effect::OpenReview(ReviewReason::Policy));
    }
    Ok(Outcome {
        request,
        grant: Some(grant),
        approval: None,
        events: vec![event],
        refused: None,
        effects,
    })
}

/// What withdrawing an approval does to its request.
#[derive(Debug, Clone, PartialEq)]
pub enum WithdrawalEffect {
    /// The request was still pending: one approval fewer.
    StillPending,
    /// The request was approved (window not open): it is pending again.
    BackToPending,
    /// The grant is active: it must end (a context change).
    EndGrant,
}

/// An approver withdraws their approval of a request. Only the approver themself can; the
/// request must not have ended. Returns the request as it is afterwards, the effect, and the
/// event. Ending an active grant is the caller's next step ([`end_grant`] with
/// [`EndReason::ContextChanged`]), so that every end of a grant goes through one path.
pub fn withdraw_approval(
    mut request: Request,
    approval: &Approval,
    by: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(Request, WithdrawalEffect, Event), CoreError> {
    if approval.approver != by {
        return Err(CoreError::Forbidden(format!(
            "only {} can withdraw their own approval",
            approval.approver
        )));
    }
    if approval.verdict != ApprovalVerdict::Approve {
        return Err(CoreError::InvalidRequest(
            "only an approval can be withdrawn; a denial already ended the request".into(),
        ));
    }
    if reason.trim().is_empty() {
        return Err(CoreError::InvalidRequest(
            "withdrawing an approval needs a reason (--reason)".into(),
        ));
    }
    governance::check_free_text("reason", reason, true)?;
    let before = request.state;
    let effect = match before {
        RequestState::Pending => WithdrawalEffect::StillPending,
        RequestState::Approved => {
            request.state = RequestState::Pending;
            WithdrawalEffect::BackToPending
        }
        RequestState::Active => WithdrawalEffect::EndGrant,
        other => {
            return Err(wrong_state(
                format!("request {}", request.id),
                other.as_str(),
                "pending, approved or active",
            ))
        }
    };
    request.updated_at = now;
    let withdrawn = payload::ApprovalWithdrawn {
        approval_id: approval.id.clone(),
        approved_at: approval.at,
        scope_digest: approval.scope_digest.clone(),
        reason: reason.to_string(),
    };
    let mut event = Event::with_payload(Actor::identity(by), now, &withdrawn)?.request(&request.id);
    event.approval_id = Some(approval.id.clone());
    if request.state != before {
        event = event.states(Some(before.as_str()), request.state.as_str());
    }
    Ok((request, effect, event))
}

/// Is this request due to be activated (approved and its window open)?
pub fn due_for_activation(request: &Request, now: Timestamp) -> bool {
    request.state == RequestState::Approved
        && now >= request.window_start
        && now < request.window_end()
}

/// Is this request due to lapse (not active and its window closed)?
pub fn due_for_lapse(request: &Request, now: Timestamp) -> bool {
    matches!(
        request.state,
        RequestState::Pending | RequestState::Approved
    ) && now >= request.window_end()
}

/// Issue the grant of an approved request whose window is open, if the request still stands
/// under `standing` (loaded now, with the current policy set's decision); otherwise it lapses
/// or is denied, with the reason (the outcome's `refused` says why). The grant never
/// outlives the window nor the policy maximum.
pub fn activate(
    request: Request,
    grant_id: &str,
    standing: &Standing<'_>,
    now: Timestamp,
) -> Result<Outcome, CoreError> {
    if request.state == RequestState::Approved && now < request.window_end() {
        if let Err(hold) = governance::still_allowed(&request, standing, true) {
            return void(request, hold, now);
        }
    }
    issue(request, grant_id, now)
}

fn issue(mut request: Request, grant_id: &str, now: Timestamp) -> Result<Outcome, CoreError> {
    if request.state != RequestState::Approved {
        return Err(wrong_state(
            format!("request {}", request.id),
            request.state.as_str(),
            "approved",
        ));
    }
    if now >= request.window_end() {
        return Err(CoreError::Lapsed(request.id.clone()));
    }
    if now < request.window_start {
        return Err(CoreError::InvalidRequest(format!(
            "request {} opens at {}; it is activated then",
            request.id,
            crate::event::rfc3339(request.window_start)
        )));
    }
    let ob = &request.decision.obligations;
    let expires_at = request
        .window_end()
        .min(now + Duration::seconds(ob.max_duration_secs));
    let emergency = request.path == AccessPath::Emergency;
    let grant = Grant {
        id: grant_id.to_string(),
        request_id: request.id.clone(),
        subject: request.subject.clone(),
        scope: request.scope.clone(),
        scope_digest: request.scope_digest.clone(),
        not_before: now,
        expires_at,
        state: GrantState::Active,
        emergency,
        review_required: ob.review || emergency,
        ended_at: None,
        end_reason: None,
        created_at: now,
    };
    let before = request.state;
    request.state = RequestState::Active;
    request.grant_id = Some(grant.id.clone());
    request.updated_at = now;
    let issued = payload::GrantIssued {
        subject: grant.subject.clone(),
        scope_digest: grant.scope_digest.clone(),
        not_before: grant.not_before,
        expires_at: grant.expires_at,
        emergency: grant.emergency,
        review_required: grant.review_required,
    };
    let event = Event::with_payload(Actor::scheduler(), now, &issued)?
        .request(&request.id)
        .grant(&grant.id)
        .states(Some(before.as_str()), RequestState::Active.as_str());
    Ok(Outcome {
        request,
        grant: Some(grant),
        approval: None,
        events: vec![event],
        refused: None,
        effects: if emergency {
            vec![
                Effect::AnnounceGrant,
                Effect::OpenReview(ReviewReason::BreakGlass),
            ]
        } else {
            vec![Effect::AnnounceGrant]
        },
    })
}

/// A pending or approved request whose window closed without becoming active.
pub fn lapse(mut request: Request, now: Timestamp) -> Result<Outcome, CoreError> {
    if !due_for_lapse(&request, now) {
        return Err(wrong_state(
            format!("request {}", request.id),
            request.state.as_str(),
            "pending or approved with its window closed",
        ));
    }
    let before = request.state;
    request.state = RequestState::Lapsed;
    request.state_reason = Some(format!(
        "window closed at {} before the request became active",
        crate::event::rfc3339(request.window_end())
    ));
    request.updated_at = now;
    let event = Event::new(EventKind::RequestLapsed, Actor::scheduler(), now)
        .request(&request.id)
        .states(Some(before.as_str()), RequestState::Lapsed.as_str());
    Ok(Outcome {
        request,
        grant: None,
        approval: None,
        events: vec![event],
        refused: None,
        effects: vec![],
    })
}

/// Is this grant past its expiry?
pub fn due_for_expiry(grant: &Grant, now: Timestamp) -> bool {
    grant.state == GrantState::Active && now >= grant.expires_at
}

/// End an active grant (expiry, revocation, completion or context change).
///
/// `actor` is who ended it; for `Completed`, the caller has checked it is the subject (or
/// the owner of a workload subject).
pub fn end_grant(
    mut request: Request,
    mut grant: Grant,
    reason: EndReason,
    actor: Actor,
    now: Timestamp,
) -> Result<Outcome, CoreError> {
    if grant.state != GrantState::Active {
        return Err(wrong_state(
            format!("grant {}", grant.id),
            grant.state.as_str(),
            "active",
        ));
    }
    if let EndReason::Revoked { reason, .. } = &reason {
        if reason.trim().is_empty() {
            return Err(CoreError::InvalidRequest(
                "a revocation needs a reason (--reason)".into(),
            ));
        }
        governance::check_free_text("reason", reason, true)?;
    }
    // An expiry is recorded at the moment it took effect, even when noticed late (e.g. the
    // server was down): access ended at expires-at, not when we got round to writing it.
    let ended_at = match reason {
        EndReason::Expired => grant.expires_at.min(now),
        _ => now.min(grant.expires_at),
    };
    grant.state = GrantState::Ending;
    grant.ended_at = Some(ended_at);
    grant.end_reason = Some(reason.clone());
    let before = request.state;
    request.state = RequestState::Ending;
    request.updated_at = now;
    let ended = payload::GrantEnded {
        end_reason: reason,
        ended_at,
        expires_at: grant.expires_at,
    };
    let event = Event::with_payload(actor, now, &ended)?
        .request(&request.id)
        .grant(&grant.id)
        .states(Some(before.as_str()), RequestState::Ending.as_str());
    Ok(Outcome {
        request,
        grant: Some(grant),
        approval: None,
        events: vec![event],
        refused: None,
        effects: vec![Effect::PushRevocation],
    })
}

/// What a request's filing is checked against besides the policy decision.
#[derive(Debug, Clone, Copy)]
pub struct SubmitContext<'a> {
    pub orgs: &'a [crate::Org],
    pub assets: &'a [crate::Asset],
    /// For a request filed with an API key: whether the key is usable (see [`Standing`]).
    pub filing_key_usable: Option<bool>,
}

/// A pending or approved request that no longer stands under the current context: denied
/// when the policy set now says no, lapsed otherwise (an identity disabled, an asset locked
/// out, ...). The outcome carries [`CoreError::NoLongerAllowed`] in `refused`.
pub fn void(mut request: Request, hold: Hold, now: Timestamp) -> Result<Outcome, CoreError> {
    let before = request.state;
    if !matches!(before, RequestState::Pending | RequestState::Approved) {
        return Err(wrong_state(
            format!("request {}", request.id),
            before.as_str(),
            "pending or approved",
        ));
    }
    let (after, kind) = match hold {
        Hold::PolicyDenies { .. } | Hold::DurationAboveMaximum { .. } => {
            (RequestState::Denied, EventKind::RequestDenied)
        }
        _ => (RequestState::Lapsed, EventKind::RequestLapsed),
    };
    let reason = hold.to_string();
    request.state = after;
    request.state_reason = Some(reason.clone());
    request.updated_at = now;
    // Denied by the policy now: a `request.denied` (the filing's `request.decided` stays the
    // only decision event); otherwise a `request.lapsed`. Both carry the same typed payload.
    let voided = payload::RequestVoided {
        hold: hold.clone(),
        reason: reason.clone(),
    };
    let data = serde_json::to_value(&voided)
        .map_err(|e| CoreError::InvalidRequest(format!("event payload: {e}")))?;
    let event = Event::new(kind, Actor::system(), now)
        .request(&request.id)
        .states(Some(before.as_str()), after.as_str())
        .data(data);
    let refused = CoreError::NoLongerAllowed {
        request: request.id.clone(),
        why: reason,
        outcome: after.as_str().to_string(),
    };
    Ok(Outcome {
        request,
        grant: None,
        approval: None,
        events: vec![event],
        refused: Some(refused),
        effects: vec![],
    })
}

/// After a change of context (inventory, an identity's or org's status, a policy reload,
/// an API key revoked): does this open request or active grant still stand? `None` when it
/// does (or is not open); otherwise the outcome that voids the request or ends the grant.
pub fn reconsider(
    request: Request,
    grant: Option<Grant>,
    standing: &Standing<'_>,
    actor: Actor,
    now: Timestamp,
) -> Result<Option<Outcome>, CoreError> {
    match (request.state, grant) {
        (RequestState::Pending, _) => match governance::still_allowed(&request, standing, false) {
            Ok(()) => Ok(None),
            Err(hold) => void(request, hold, now).map(Some),
        },
        (RequestState::Approved, _) => match governance::still_allowed(&request, standing, true) {
            Ok(()) => Ok(None),
            Err(hold) => void(request, hold, now).map(Some),
        },
        (RequestState::Active, Some(g)) if g.state == GrantState::Active => {
            let reason = if due_for_expiry(&g, now) {
                EndReason::Expired
            } else {
                match governance::still_allowed(&request, standing, true) {
                    Ok(()) => return Ok(None),
                    Err(hold) => EndReason::ContextChanged {
                        what: hold.to_string(),
                    },
                }
            };
            end_grant(request, g, reason, actor, now).map(Some)
        }
        _ => Ok(None),
    }
}
