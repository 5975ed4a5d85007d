//! Standing exceptions: access that must stay standing (break-glass accounts, deterministic
//! batch jobs, devices that cannot take short-lived credentials), kept narrow, named, owned
//! and re-validated.
//!
//! An exception is an ordinary request on the `standing` path ([`AccessPath::Standing`]):
//! the policy decides it, approvers approve it under the same separation of duties, and on
//! activation an ordinary grant is issued that lasts until the exception's expiry. What this
//! module adds are the exception's own terms and rules:
//!
//! - [`check_terms`] — an owner who is a person, never the subject nor tied to it by
//!   ownership; at least one compensating control; an expiry of at most
//!   [`MAX_EXPIRY_DAYS`]; a re-validation interval between [`MIN_REVALIDATION_DAYS`] and
//!   [`MAX_REVALIDATION_DAYS`] (and no longer than the exception).
//! - [`may_revalidate`] / [`revalidate`] — the owner, or security / admin staff, never the
//!   subject nor anyone tied to it by ownership, re-validates before it is due; the next due
//!   date moves to now + interval.
//! - [`is_overdue`] / [`end_overdue`] — an exception whose re-validation is overdue ends
//!   (grant end reason `revalidation_overdue`), through the scheduler.
//! - [`may_end`] / [`end`] — the owner, security / admin, the subject or requester end it at
//!   once.
//! - [`credential_lifetime`] — the credentials of a standing grant stay short-lived.

use crate::event::{Actor, Event};
use crate::governance;
use crate::inventory::{Identity, IdentityKind};
use crate::lifecycle::{
    self, AccessPath, EndReason, Grant, GrantState, Outcome, Request, RequestState,
};
use crate::payload::{ExceptionEnded, ExceptionRevalidated};
use crate::{CoreError, Timestamp};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest an exception may last (its hard end).
pub const MAX_EXPIRY_DAYS: i64 = 365;
/// Shortest re-validation interval.
pub const MIN_REVALIDATION_DAYS: i64 = 1;
/// Longest re-validation interval.
pub const MAX_REVALIDATION_DAYS: i64 = 90;
/// At most this many compensating controls (each is free text).
pub const MAX_CONTROLS: usize = 20;
/// Longest a credential (grant token) issued under a standing grant lives: the exception is
/// long, what the client holds is not. The client asks for a fresh token when it ends.
pub const CREDENTIAL_MAX_SECS: i64 = 12 * 3_600;
/// Roles that may re-validate or end any exception (besides its owner).
pub const STAFF_ROLES: &[&str] = &["security", "admin"];

/// The terms an exception is requested with, besides the request itself (subject, scope,
/// reason, reference, duration = time to expiry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Terms {
    /// The person accountable for the exception (identity id).
    pub owner: String,
    /// What limits the risk while the access stands (at least one).
    pub controls: Vec<String>,
    /// How often the owner confirms it is still needed, in seconds.
    pub revalidate_every_secs: i64,
}

/// A standing exception as stored: its terms, the request (and grant) it rides on, and its
/// re-validation clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Exception {
    pub id: String,
    pub request_id: String,
    pub owner: String,
    pub controls: Vec<String>,
    pub revalidate_every_secs: i64,
    /// The hard end (the request's window end; the grant never outlives it).
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// Re-validation is due by then; from activation on, past it the exception ends.
    #[schema(value_type = String, format = DateTime)]
    pub next_revalidation: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_revalidated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_revalidated_by: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// Where an exception stands, derived from its request and grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionState {
    /// Waiting for approvals or for its start.
    Pending,
    /// Its grant is active and re-validation is not overdue.
    Active,
    /// Its grant is active but re-validation is overdue: the scheduler ends it.
    Overdue,
    /// Denied by the policy or an approver.
    Denied,
    /// Ended (expired, overdue, ended, withdrawn, lapsed); teardown may still be under way.
    Ended,
}

impl ExceptionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionState::Pending => "pending",
            ExceptionState::Active => "active",
            ExceptionState::Overdue => "overdue",
            ExceptionState::Denied => "denied",
            ExceptionState::Ended => "ended",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// The exception's state from its request's state (and the clock, for `overdue`).
pub fn state_of(exception: &Exception, request: RequestState, now: Timestamp) -> ExceptionState {
    match request {
        RequestState::Pending | RequestState::Approved => ExceptionState::Pending,
        RequestState::Active if is_overdue(exception, now) => ExceptionState::Overdue,
        RequestState::Active => ExceptionState::Active,
        RequestState::Denied => ExceptionState::Denied,
        RequestState::Ending
        | RequestState::Closed
        | RequestState::Withdrawn
        | RequestState::Lapsed => ExceptionState::Ended,
    }
}

/// One exception as every reader sees it: the exception list and detail (API, CLI,
/// console), the standing-privilege inventory and review campaigns. Built by [`summarize`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExceptionSummary {
    pub id: String,
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    pub state: ExceptionState,
    pub subject: String,
    pub requester: String,
    pub assets: Vec<String>,
    /// The scope in words, one line per rule.
    pub scope: Vec<String>,
    pub reason: String,
    pub reference: String,
    pub owner: String,
    pub controls: Vec<String>,
    pub revalidate_every_secs: i64,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// Re-validation is due by then (meaningful while pending or active).
    #[schema(value_type = String, format = DateTime)]
    pub next_revalidation: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_revalidated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_revalidated_by: Option<String>,
    /// Sessions started under its grant (from the evidence log).
    pub uses: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_use: Option<Timestamp>,
    /// Why it ended (`expired`, `revalidation_overdue`, `revoked`, ...), once its grant ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    /// Why the request is where it is (a denial's reasons, a withdrawal), when not obvious.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// The shared view of an exception from what it rides on and how it was used.
pub fn summarize(
    exception: &Exception,
    request: &Request,
    grant: Option<&Grant>,
    uses: i64,
    last_use: Option<Timestamp>,
    now: Timestamp,
) -> ExceptionSummary {
    ExceptionSummary {
        id: exception.id.clone(),
        request_id: request.id.clone(),
        grant_id: request.grant_id.clone(),
        state: state_of(exception, request.state, now),
        subject: request.subject.clone(),
        requester: request.requester.clone(),
        assets: request.scope.assets(),
        scope: request.scope.describe(),
        reason: request.reason.clone(),
        reference: request.reference.clone(),
        owner: exception.owner.clone(),
        controls: exception.controls.clone(),
        revalidate_every_secs: exception.revalidate_every_secs,
        expires_at: grant.map_or(exception.expires_at, |g| g.expires_at),
        next_revalidation: exception.next_revalidation,
        last_revalidated_at: exception.last_revalidated_at,
        last_revalidated_by: exception.last_revalidated_by.clone(),
        uses,
        last_use,
        end_reason: grant
            .and_then(|g| g.end_reason.as_ref())
            .map(|r| r.label().to_string()),
        state_reason: request.state_reason.clone(),
        created_at: exception.created_at,
    }
}

fn invalid(m: String) -> Result<(), CoreError> {
    Err(CoreError::InvalidException(m))
}

/// Is `a` tied to `b` by ownership (either owns the other)?
fn related(a: &Identity, b: &Identity) -> bool {
    a.owners.iter().any(|o| o == &b.id) || b.owners.iter().any(|o| o == &a.id)
}

/// Check an exception's terms before the policy is consulted. `owner` is the owner as found
/// in the inventory (`None`: unknown); `duration_secs` the time from start to expiry.
pub fn check_terms(
    terms: &Terms,
    requester: &Identity,
    subject: &Identity,
    owner: Option<&Identity>,
    duration_secs: i64,
) -> Result<(), CoreError> {
    let Some(owner) = owner else {
        return invalid(format!(
            "owner {:?} is not an identity in the inventory; name the person accountable for the exception (--owner)",
            terms.owner
        ));
    };
    if owner.kind != IdentityKind::Human {
        return invalid(format!(
            "owner {} is a {}; an exception's owner is a person of the plant",
            owner.id,
            owner.kind.as_str()
        ));
    }
    if !owner.is_active() {
        return Err(CoreError::IdentityDisabled(owner.id.clone()));
    }
    if owner.id == subject.id {
        return Err(CoreError::SeparationOfDuties(format!(
            "{} is the exception's subject; its owner must be someone else, who answers for it",
            owner.id
        )));
    }
    if related(owner, subject) {
        return Err(CoreError::SeparationOfDuties(format!(
            "owner {} and subject {} are tied by ownership; name an owner independent of the subject",
            owner.id, subject.id
        )));
    }
    if owner.id == requester.id || related(owner, requester) {
        return Err(CoreError::SeparationOfDuties(format!(
            "owner {} filed the exception or is tied to its requester; name an independent owner",
            owner.id
        )));
    }
    if terms.controls.is_empty() {
        return invalid(
            "at least one compensating control is required (--control), e.g. --control 'sessions recorded and reviewed weekly'".into(),
        );
    }
    if terms.controls.len() > MAX_CONTROLS {
        return invalid(format!(
            "{} compensating controls; at most {MAX_CONTROLS}",
            terms.controls.len()
        ));
    }
    for c in &terms.controls {
        if c.trim().is_empty() {
            return invalid("a compensating control is empty; describe each one".into());
        }
        governance::check_free_text("control", c, false)?;
    }
    if duration_secs <= 0 {
        return invalid("the exception's expiry must lie in the future (--expires-in 90d)".into());
    }
    if duration_secs > MAX_EXPIRY_DAYS * 86_400 {
        return invalid(format!(
            "an exception lasts at most {MAX_EXPIRY_DAYS} days; request a new one when it ends"
        ));
    }
    let every = terms.revalidate_every_secs;
    if !(MIN_REVALIDATION_DAYS * 86_400..=MAX_REVALIDATION_DAYS * 86_400).contains(&every) {
        return invalid(format!(
            "the re-validation interval must be between {MIN_REVALIDATION_DAYS} and {MAX_REVALIDATION_DAYS} days (--revalidate-every 30d)"
        ));
    }
    if every > duration_secs {
        return invalid(
            "the re-validation interval is longer than the exception itself; shorten it or lengthen the expiry".into(),
        );
    }
    Ok(())
}

/// A request on the `standing` path is filed only as an exception (with its terms), never as
/// a plain request: a standing grant without an owner and a re-validation clock would be
/// exactly the unmanaged standing access exceptions exist to prevent.
pub fn check_plain_request_path(path: AccessPath) -> Result<(), CoreError> {
    if path == AccessPath::Standing {
        return Err(CoreError::InvalidRequest(
            "the standing path is for exceptions: use `jitgate exception request` (POST /api/v1/exceptions)".into(),
        ));
    }
    Ok(())
}

/// The exception record for a request just filed. The first re-validation falls one
/// interval after the start; activation moves it ([`started`]).
pub fn new_exception(id: &str, terms: Terms, request: &Request, now: Timestamp) -> Exception {
    Exception {
        id: id.to_string(),
        request_id: request.id.clone(),
        owner: terms.owner,
        controls: terms.controls,
        revalidate_every_secs: terms.revalidate_every_secs,
        expires_at: request.window_end(),
        next_revalidation: request.window_start + Duration::seconds(terms.revalidate_every_secs),
        last_revalidated_at: None,
        last_revalidated_by: None,
        created_at: now,
    }
}

/// The `exception.requested` event recording a new exception's terms, on its request.
pub fn requested_event(
    exception: &Exception,
    by: &str,
    now: Timestamp,
) -> Result<Event, CoreError> {
    let payload = crate::payload::ExceptionRequested {
        exception_id: exception.id.clone(),
        owner: exception.owner.clone(),
        controls: exception.controls.clone(),
        revalidate_every_secs: exception.revalidate_every_secs,
        expires_at: exception.expires_at,
    };
    Ok(Event::with_payload(Actor::identity(by), now, &payload)?.request(&exception.request_id))
}

/// The exception once its grant is issued: the first re-validation falls one interval after
/// the grant begins (time spent waiting for approvals does not count against it).
pub fn started(mut exception: Exception, grant: &Grant) -> Exception {
    exception.next_revalidation =
        grant.not_before + Duration::seconds(exception.revalidate_every_secs);
    exception
}

/// Is re-validation overdue at `now`?
pub fn is_overdue(exception: &Exception, now: Timestamp) -> bool {
    now >= exception.next_revalidation
}

/// Is `who` tied to the subject: the subject itself, an owner of it, or owned by it?
fn tied_to_subject(who: &Identity, subject_id: &str, subject: Option<&Identity>) -> bool {
    who.id == subject_id
        || who.owners.iter().any(|o| o == subject_id)
        || subject.is_some_and(|s| s.owners.iter().any(|o| o == &who.id))
}

/// May `caller` re-validate `exception` (whose subject is `subject_id`, loaded as `subject`
/// when it still exists, filed by `requester`)? The owner or security / admin staff; never
/// the subject, its requester, nor anyone tied to the subject by ownership — whatever their
/// roles.
pub fn may_revalidate(
    caller: &Identity,
    exception: &Exception,
    subject_id: &str,
    subject: Option<&Identity>,
    requester: &str,
) -> Result<(), CoreError> {
    if !caller.is_active() {
        return Err(CoreError::IdentityDisabled(caller.id.clone()));
    }
    if caller.kind != IdentityKind::Human {
        return Err(CoreError::Forbidden(format!(
            "{} is a {}; a person re-validates an exception",
            caller.id,
            caller.kind.as_str()
        )));
    }
    if tied_to_subject(caller, subject_id, subject) || caller.id == requester {
        return Err(CoreError::SeparationOfDuties(format!(
            "{} is the subject of exception {}, filed it, or is tied to its subject by ownership; its owner or security staff re-validate it",
            caller.id, exception.id
        )));
    }
    if caller.id != exception.owner && !STAFF_ROLES.iter().any(|r| caller.has_role(r)) {
        return Err(CoreError::Forbidden(format!(
            "only the owner of exception {} ({}) or security / admin staff re-validate it",
            exception.id, exception.owner
        )));
    }
    Ok(())
}

/// Re-validate an active exception before it is due: the next due date moves to now +
/// interval, and an `exception.revalidated` event records who, when and the note. The caller
/// has checked [`may_revalidate`]. An overdue exception cannot be re-validated: it ends.
pub fn revalidate(
    mut exception: Exception,
    request: &Request,
    by: &str,
    note: &str,
    now: Timestamp,
) -> Result<(Exception, Event), CoreError> {
    if request.state != RequestState::Active {
        return Err(CoreError::WrongState {
            what: format!("exception {}", exception.id),
            state: request.state.as_str().into(),
            needed: "active".into(),
        });
    }
    if is_overdue(&exception, now) {
        return Err(CoreError::RevalidationOverdue {
            exception: exception.id.clone(),
            due: crate::event::rfc3339(exception.next_revalidation),
        });
    }
    if note.trim().is_empty() {
        return Err(CoreError::InvalidRequest(
            "a re-validation needs a note (--note) saying why the access is still needed".into(),
        ));
    }
    governance::check_free_text("note", note, true)?;
    let previous_due = exception.next_revalidation;
    exception.next_revalidation = now + Duration::seconds(exception.revalidate_every_secs);
    exception.last_revalidated_at = Some(now);
    exception.last_revalidated_by = Some(by.to_string());
    let payload = ExceptionRevalidated {
        exception_id: exception.id.clone(),
        note: note.to_string(),
        previous_due,
        next_revalidation: exception.next_revalidation,
    };
    let event = Event::with_payload(Actor::identity(by), now, &payload)?.request(&request.id);
    let event = match &request.grant_id {
        Some(g) => event.grant(g),
        None => event,
    };
    Ok((exception, event))
}

/// May `caller` end `exception` at once? Its owner, security / admin staff, or the subject and
/// requester themselves (giving access up needs no independence).
pub fn may_end(
    caller: &Identity,
    exception: &Exception,
    request: &Request,
) -> Result<(), CoreError> {
    let staff = STAFF_ROLES.iter().any(|r| caller.has_role(r));
    if caller.id == exception.owner
        || staff
        || caller.id == request.subject
        || caller.id == request.requester
    {
        return Ok(());
    }
    Err(CoreError::Forbidden(format!(
        "only the owner of exception {} ({}), security / admin staff, or its subject end it",
        exception.id, exception.owner
    )))
}

/// End an exception at once: an active one's grant ends as revoked (its revocation pushed to
/// the gateways); a pending or approved one is withdrawn. Either way an `exception.ended`
/// event records who and why.
pub fn end(
    mut request: Request,
    grant: Option<Grant>,
    exception: &Exception,
    by: &str,
    reason: &str,
    now: Timestamp,
) -> Result<Outcome, CoreError> {
    if reason.trim().is_empty() {
        return Err(CoreError::InvalidRequest(
            "ending an exception needs a reason (--reason)".into(),
        ));
    }
    governance::check_free_text("reason", reason, true)?;
    let ended = ExceptionEnded {
        exception_id: exception.id.clone(),
        reason: reason.to_string(),
    };
    let event = Event::with_payload(Actor::identity(by), now, &ended)?.request(&request.id);
    match (request.state, grant) {
        (RequestState::Active, Some(g)) if g.state == GrantState::Active => {
            let why = if lifecycle::due_for_expiry(&g, now) {
                EndReason::Expired
            } else {
                EndReason::Revoked {
                    by: by.to_string(),
                    reason: reason.to_string(),
                }
            };
            let gid = g.id.clone();
            let mut out = lifecycle::end_grant(request, g, why, Actor::identity(by), now)?;
            out.events.push(event.grant(&gid));
            Ok(out)
        }
        (RequestState::Pending | RequestState::Approved, _) => {
            let before = request.state;
            request.state = RequestState::Withdrawn;
            request.state_reason = Some(format!("exception ended by {by}: {reason}"));
            request.updated_at = now;
            let withdrawn = Event::new(
                crate::event::EventKind::RequestWithdrawn,
                Actor::identity(by),
                now,
            )
            .request(&request.id)
            .states(Some(before.as_str()), RequestState::Withdrawn.as_str());
            Ok(Outcome {
                request,
                grant: None,
                approval: None,
                events: vec![withdrawn, event],
                refused: None,
                effects: vec![],
            })
        }
        (state, _) => Err(CoreError::WrongState {
            what: format!("exception {}", exception.id),
            state: state.as_str().into(),
            needed: "pending, approved or active".into(),
        }),
    }
}

/// End the grant of an exception whose re-validation is overdue (the scheduler's step):
/// end reason `revalidation_overdue`, revocation pushed like any end.
pub fn end_overdue(
    request: Request,
    grant: Grant,
    exception: &Exception,
    now: Timestamp,
) -> Result<Outcome, CoreError> {
    if !is_overdue(exception, now) {
        return Err(CoreError::WrongState {
            what: format!("exception {}", exception.id),
            state: "re-validated".into(),
            needed: "overdue".into(),
        });
    }
    // An expiry reached first is recorded as such.
    let reason = if lifecycle::due_for_expiry(&grant, now) {
        EndReason::Expired
    } else {
        EndReason::RevalidationOverdue
    };
    lifecycle::end_grant(request, grant, reason, Actor::scheduler(), now)
}

/// How long a credential issued now under `grant` may live: the grant's own end, and for a
/// standing grant at most [`CREDENTIAL_MAX_SECS`] (or `default_max` if shorter).
pub fn credential_lifetime(path: AccessPath, default_max: Duration) -> Duration {
    if path == AccessPath::Standing {
        default_max.min(Duration::seconds(CREDENTIAL_MAX_SECS))
    } else {
        default_max
    }
}
