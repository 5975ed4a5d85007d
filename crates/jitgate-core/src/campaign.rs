//! Review campaigns: access review as exception handling. A campaign covers a period (and
//! optionally a site) and lists only what still needs a person's judgement — standing
//! exceptions, findings, break-glass grants, `partial` or `failed` teardowns, missing
//! attestations — never every entitlement: what was requested, approved, used and torn
//! down as designed is already evidenced, and re-certifying it teaches reviewers to click
//! through. Each item gets a decision (keep, narrow, end) with a note; "end" acts at once.
//!
//! The rules live here: what an item is ([`ItemKind`]), what each decision does to each kind
//! ([`effect_of`]), who may decide ([`may_decide`], the separation of duties of
//! [`crate::governance`] extended to items without a request), and when a campaign may
//! close ([`may_close`]). The server gathers the items, loads the parties and carries out
//! the effect in the decision's transaction.

use crate::event::{millis, EventKind};
use crate::governance::{conflict_of_interest, Conflict, Parties};
use crate::inventory::{Identity, IdentityKind};
use crate::lifecycle::{GrantState, Request};
use crate::payload::Payload;
use crate::teardown::TeardownVerdict;
use crate::{CoreError, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest period one campaign may cover.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// Roles that open, decide and close campaigns.
pub const REVIEWER_ROLES: &[&str] = &["security", "admin"];

/// What a campaign item is about. Stored and recorded as this tagged JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ItemKind {
    /// Break-glass access issued in the period: used without approval.
    BreakGlass { grant_id: String },
    /// A grant whose teardown in the period was `partial` (legacy local accounts remain) or
    /// `failed` (the end could not be proven).
    Teardown {
        grant_id: String,
        verdict: TeardownVerdict,
    },
    /// A grant whose policy required an attestation, none given within the grace period.
    MissingAttestation { grant_id: String },
    /// A standing exception of the exceptions register.
    Exception { id: String },
    /// A finding of the evidence analysis (shared account, rubber-stamping, JIT that
    /// became standing); `finding` names its kind.
    Finding { id: String, finding: String },
}

impl ItemKind {
    /// The item's key within its campaign: unique per thing reviewed and reason.
    pub fn key(&self) -> String {
        match self {
            ItemKind::BreakGlass { grant_id } => format!("break_glass:{grant_id}"),
            ItemKind::Teardown { grant_id, .. } => format!("teardown:{grant_id}"),
            ItemKind::MissingAttestation { grant_id } => format!("attestation:{grant_id}"),
            ItemKind::Exception { id } => format!("exception:{id}"),
            ItemKind::Finding { id, .. } => format!("finding:{id}"),
        }
    }

    /// The grant the item is about, for the kinds that are about one.
    pub fn grant_id(&self) -> Option<&str> {
        match self {
            ItemKind::BreakGlass { grant_id }
            | ItemKind::Teardown { grant_id, .. }
            | ItemKind::MissingAttestation { grant_id } => Some(grant_id),
            ItemKind::Exception { .. } | ItemKind::Finding { .. } => None,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            ItemKind::BreakGlass { .. } => "break_glass",
            ItemKind::Teardown { .. } => "teardown",
            ItemKind::MissingAttestation { .. } => "missing_attestation",
            ItemKind::Exception { .. } => "exception",
            ItemKind::Finding { .. } => "finding",
        }
    }
}

/// A reviewer's decision on one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemDecision {
    /// Acceptable as it is; the note says why.
    Keep,
    /// Acceptable but too wide: the note says what to narrow (policy, scope, exception).
    Narrow,
    /// Not acceptable: ended at once.
    End,
}

impl ItemDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemDecision::Keep => "keep",
            ItemDecision::Narrow => "narrow",
            ItemDecision::End => "end",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "keep" => Some(ItemDecision::Keep),
            "narrow" => Some(ItemDecision::Narrow),
            "end" => Some(ItemDecision::End),
            _ => None,
        }
    }
}

/// What a decision does, decided here and carried out by the server in the decision's
/// transaction. Recorded with the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DecisionEffect {
    /// Only the record: keep, or narrow (the note names what to narrow; narrowing a policy
    /// or scope is a change of its own, made where those are made).
    RecordOnly,
    /// The grant is still active: revoke it through the revocation path (gateways cut its
    /// sessions, teardown verification follows).
    RevokeGrant { grant_id: String },
    /// The grant had ended already; nothing is left to end. Recorded as such.
    GrantAlreadyEnded { grant_id: String },
    /// End the standing exception at once (the exceptions register's own ending).
    EndException { id: String },
    /// Act on the finding: end the access it is about (the findings' own hook).
    EndFinding { id: String },
    /// Narrow the standing exception (the register's own narrowing, by its owner).
    NarrowException { id: String },
}

/// What `decision` on an item of `kind` does. `grant_state` is the state now of the item's
/// grant (for the kinds about a grant).
pub fn effect_of(
    kind: &ItemKind,
    decision: ItemDecision,
    grant_state: Option<GrantState>,
) -> Result<DecisionEffect, CoreError> {
    Ok(match (decision, kind) {
        (ItemDecision::Keep, _) => DecisionEffect::RecordOnly,
        (ItemDecision::Narrow, ItemKind::Exception { id }) => {
            DecisionEffect::NarrowException { id: id.clone() }
        }
        (ItemDecision::Narrow, _) => DecisionEffect::RecordOnly,
        (ItemDecision::End, ItemKind::Exception { id }) => {
            DecisionEffect::EndException { id: id.clone() }
        }
        (ItemDecision::End, ItemKind::Finding { id, .. }) => {
            DecisionEffect::EndFinding { id: id.clone() }
        }
        (ItemDecision::End, k) => {
            let grant_id = k.grant_id().unwrap_or_default().to_string();
            match grant_state {
                Some(GrantState::Active) => DecisionEffect::RevokeGrant { grant_id },
                Some(_) => DecisionEffect::GrantAlreadyEnded { grant_id },
                None => {
                    return Err(CoreError::InvalidRequest(format!(
                        "grant {grant_id} of the item is not in the store; it cannot be ended"
                    )))
                }
            }
        }
    })
}

/// The note every decision needs: what was looked at and why this decision.
pub fn check_note(note: &str) -> Result<(), CoreError> {
    if note.trim().is_empty() {
        return Err(CoreError::InvalidRequest(
            "a campaign decision needs a note saying what was checked and why (--note)".into(),
        ));
    }
    crate::governance::check_free_text("note", note, true)
}

/// Who an item involves, as the inventory has them now.
#[derive(Debug, Clone, Copy)]
pub enum ItemParties<'a> {
    /// An item about a grant: its request and the request's parties (`None` for a party no
    /// longer in the inventory; then no owners are known, the ids still exclude).
    Grant {
        request: &'a Request,
        requester: Option<&'a Identity>,
        subject: Option<&'a Identity>,
        /// The owner of the standing exception the request filed (`None` otherwise).
        exception_owner: Option<&'a str>,
    },
    /// An item without a request (exception, finding): who holds or used the access.
    Subject {
        id: &'a str,
        identity: Option<&'a Identity>,
    },
}

/// Why a reviewer may not decide an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Campaign decisions are for people (humans) with the security or admin role.
    NotAReviewer,
    /// The reviewer is a party of the item (subject, requester, owner, key minter).
    Conflicted(Conflict),
}

impl Refusal {
    pub fn into_error(self, reviewer: &str, item: &str) -> CoreError {
        match self {
            Refusal::NotAReviewer => CoreError::Forbidden(format!(
                "{reviewer} may not decide campaign items: that is for people with the `security` or `admin` role"
            )),
            Refusal::Conflicted(c) => CoreError::SeparationOfDuties(format!(
                "{reviewer} {} (item {item}); someone else must decide it",
                describe(c)
            )),
        }
    }
}

fn describe(c: Conflict) -> &'static str {
    match c {
        Conflict::Subject => "is the item's subject; nobody reviews their own access",
        other => other.describe(),
    }
}

/// May `reviewer` decide an item with these parties? Never the subject, never an identity
/// related to the subject by ownership (owner of a workload subject, or the workload of an
/// owner), never the requester of the grant concerned nor an owner of a workload requester,
/// nor whoever minted the key that filed it; and only security staff or admins.
pub fn may_decide(reviewer: &Identity, parties: &ItemParties<'_>) -> Result<(), Refusal> {
    let me = reviewer.id.as_str();
    // A workload reviewer owned by the subject would be the subject deciding by proxy.
    let owned_by = |who: &str| {
        reviewer.kind == IdentityKind::Workload && reviewer.owners.iter().any(|o| o == who)
    };
    let owns = |i: Option<&Identity>| {
        i.is_some_and(|i| i.kind == IdentityKind::Workload && i.owners.iter().any(|o| o == me))
    };
    match parties {
        ItemParties::Grant {
            request,
            requester,
            subject,
            exception_owner,
        } => {
            if let (Some(requester), Some(subject)) = (requester, subject) {
                let p = Parties {
                    requester,
                    subject,
                    exception_owner: *exception_owner,
                };
                if let Some(c) = conflict_of_interest(me, request, &p) {
                    return Err(Refusal::Conflicted(c));
                }
            } else if *exception_owner == Some(me) {
                return Err(Refusal::Conflicted(Conflict::OwnsException));
            } else if me == request.subject {
                return Err(Refusal::Conflicted(Conflict::Subject));
            } else if me == request.requester {
                return Err(Refusal::Conflicted(Conflict::Requester));
            } else if owns(*subject) {
                return Err(Refusal::Conflicted(Conflict::OwnsSubject));
            } else if owns(*requester) {
                return Err(Refusal::Conflicted(Conflict::OwnsRequester));
            }
            if owned_by(&request.subject) {
                return Err(Refusal::Conflicted(Conflict::Subject));
            }
            if owned_by(&request.requester) {
                return Err(Refusal::Conflicted(Conflict::Requester));
            }
        }
        ItemParties::Subject { id, identity } => {
            if me == *id || owned_by(id) {
                return Err(Refusal::Conflicted(Conflict::Subject));
            }
            if owns(*identity) {
                return Err(Refusal::Conflicted(Conflict::OwnsSubject));
            }
        }
    }
    // People judge: a workload's or a vendor's key never decides, whatever its roles.
    if reviewer.kind == IdentityKind::Human && REVIEWER_ROLES.iter().any(|r| reviewer.has_role(r)) {
        Ok(())
    } else {
        Err(Refusal::NotAReviewer)
    }
}

/// May a campaign be opened over `[from, to)`? A real period, not in the future, bounded.
pub fn check_period(from: Timestamp, to: Timestamp, now: Timestamp) -> Result<(), CoreError> {
    if to <= from {
        return Err(CoreError::InvalidRequest(format!(
            "the period ends ({}) before it starts ({}); give --from before --to",
            crate::event::rfc3339(to),
            crate::event::rfc3339(from)
        )));
    }
    if from > now {
        return Err(CoreError::InvalidRequest(
            "the period starts in the future; a campaign reviews what happened".into(),
        ));
    }
    if to - from > chrono::Duration::days(MAX_PERIOD_DAYS) {
        return Err(CoreError::InvalidRequest(format!(
            "a campaign covers at most {MAX_PERIOD_DAYS} days; open one per period"
        )));
    }
    Ok(())
}

/// The state of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    Open,
    Closed,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Open => "open",
            CampaignState::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(CampaignState::Open),
            "closed" => Some(CampaignState::Closed),
            _ => None,
        }
    }
}

/// May a decision be recorded on an item: the campaign open, the item not decided yet.
pub fn may_record(
    campaign: &str,
    state: CampaignState,
    item: &str,
    decided: Option<ItemDecision>,
) -> Result<(), CoreError> {
    if state == CampaignState::Closed {
        return Err(CoreError::WrongState {
            what: format!("campaign {campaign}"),
            state: "closed".into(),
            needed: "open (open a new campaign to review again)".into(),
        });
    }
    if let Some(d) = decided {
        return Err(CoreError::AlreadyDecided {
            item: item.to_string(),
            decision: d.as_str().to_string(),
        });
    }
    Ok(())
}

/// May the campaign close? Only open, and only once every item is decided.
pub fn may_close(
    campaign: &str,
    state: CampaignState,
    total: usize,
    decided: usize,
) -> Result<(), CoreError> {
    if state == CampaignState::Closed {
        return Err(CoreError::WrongState {
            what: format!("campaign {campaign}"),
            state: "closed".into(),
            needed: "open".into(),
        });
    }
    if decided < total {
        return Err(CoreError::CampaignIncomplete {
            campaign: campaign.to_string(),
            undecided: total - decided,
        });
    }
    Ok(())
}

/// `campaign.opened`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignOpened {
    pub campaign_id: String,
    #[serde(with = "millis")]
    pub period_start: Timestamp,
    #[serde(with = "millis")]
    pub period_end: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The keys of the items listed.
    pub items: Vec<String>,
}
impl Payload for CampaignOpened {
    const KIND: EventKind = EventKind::CampaignOpened;
}

/// `campaign.item_decided`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignItemDecided {
    pub campaign_id: String,
    pub item: ItemKind,
    pub decision: ItemDecision,
    pub note: String,
    pub effect: DecisionEffect,
}
impl Payload for CampaignItemDecided {
    const KIND: EventKind = EventKind::CampaignItemDecided;
}

/// `campaign.closed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignClosed {
    pub campaign_id: String,
    pub kept: usize,
    pub narrowed: usize,
    pub ended: usize,
}
impl Payload for CampaignClosed {
    const KIND: EventKind = EventKind::CampaignClosed;
}
