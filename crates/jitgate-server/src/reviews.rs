//! Mandatory post-session reviews. A review is opened when a grant's use needs a person to
//! look at it afterwards — break-glass access (opened here when the grant becomes active),
//! a legacy asset whose teardown can only be partial (opened by the teardown code) — and is
//! completed by someone other than the subject and requester: security staff, an admin, or
//! an approver of the request. Reviews past their due time are notified once.

use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::notify::{self, Notice};
use crate::paging::{self, Collector, PageRequest, Paged};
use crate::state::AppState;
use jitgate_core::event::{Actor, Event};
use jitgate_core::server_payload::{ReviewCompleted, ReviewOpened};
use jitgate_core::{ApprovalVerdict, CoreError, Grant, GrantState, Request, Timestamp};
use jitgate_store::{ReviewFilter, ReviewRecord, ReviewState, StoreError, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Why a review was opened (the rule of when is the core's: `lifecycle::Effect::OpenReview`).
pub use jitgate_core::lifecycle::ReviewReason;

pub use jitgate_core::server_payload::ReviewOutcome;

/// A review as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    pub grant_id: String,
    pub request_id: String,
    /// Who used the access (may not complete the review).
    pub subject: String,
    pub reason: ReviewReason,
    /// Why it was opened, in the opener's terms.
    #[schema(value_type = Object)]
    pub detail: Value,
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub due_at: Timestamp,
    /// `open`, `overdue` (open and past `due_at`) or `done`.
    pub state: String,
    #[serde(default)]
    pub reviewer: Option<String>,
    #[serde(default)]
    pub outcome: Option<ReviewOutcome>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
}

fn view(r: ReviewRecord, now: Timestamp) -> ApiResult<ReviewView> {
    let reason = ReviewReason::parse(&r.reason).ok_or_else(|| {
        ServerError::Store(StoreError::Corrupt(format!(
            "reviews grant_id={}: unknown reason {:?}",
            r.grant_id, r.reason
        )))
    })?;
    let outcome = match r.outcome.as_deref() {
        None => None,
        Some("ok") => Some(ReviewOutcome::Ok),
        Some("finding") => Some(ReviewOutcome::Finding),
        Some(other) => {
            return Err(ServerError::Store(StoreError::Corrupt(format!(
                "reviews grant_id={}: unknown outcome {other:?}",
                r.grant_id
            ))))
        }
    };
    let state = if !r.is_open() {
        "done"
    } else if r.due_at <= now {
        "overdue"
    } else {
        "open"
    };
    Ok(ReviewView {
        grant_id: r.grant_id,
        request_id: r.request_id,
        subject: r.subject,
        reason,
        detail: r.detail,
        opened_at: r.opened_at,
        due_at: r.due_at,
        state: state.to_string(),
        reviewer: r.reviewer,
        outcome,
        note: r.note,
        completed_at: r.completed_at,
    })
}

pub use crate::config::review_due_at;

/// Open a review of `grant` for `reason`, in the caller's transaction, with a
/// `review.opened` event. Idempotent: a second call for the same grant and reason changes
/// nothing and records nothing.
pub async fn open_review(
    tx: &mut Tx,
    state: &AppState,
    grant: &Grant,
    reason: ReviewReason,
    detail: Value,
) -> ApiResult<()> {
    let now = state.clock.now();
    let due_at = review_due_at(&state.config, grant)?;
    let record = ReviewRecord {
        grant_id: grant.id.clone(),
        request_id: grant.request_id.clone(),
        subject: grant.subject.clone(),
        reason: reason.as_str().to_string(),
        detail: detail.clone(),
        opened_at: now,
        due_at,
        overdue_notified: false,
        reviewer: None,
        outcome: None,
        note: None,
        completed_at: None,
    };
    if tx.open_review(&record).await? {
        let opened = ReviewOpened {
            reason,
            subject: grant.subject.clone(),
            due_at,
            detail,
        };
        tx.append_events(&[Event::with_payload(Actor::system(), now, &opened)?
            .request(&grant.request_id)
            .grant(&grant.id)])
            .await?;
    }
    Ok(())
}

/// May `caller` complete reviews of this grant? The core's rule
/// (`jitgate_core::access::may_complete_review`) over the request's parties as they are now.
async fn authorize(tx: &mut Tx, caller: &Caller, g: &Grant, r: &Request) -> ApiResult<()> {
    use jitgate_core::access::{may_complete_review, ReviewAuthority};
    let me = caller.id();
    let approved_it = tx
        .list_approvals(&r.id)
        .await?
        .iter()
        .any(|a| a.approver == me && a.verdict == ApprovalVerdict::Approve);
    let (Some(requester), Some(subject)) = (
        tx.get_identity(&r.requester).await?,
        tx.get_identity(&r.subject).await?,
    ) else {
        // A party gone from the inventory: fall back to the ids alone (no owners known).
        return if me == r.requester || me == g.subject {
            Err(CoreError::SeparationOfDuties(format!(
                "{me} took part in request {}; its post-session review must be completed by someone else",
                r.id
            ))
            .into())
        } else if caller.is_admin() || caller.identity.has_role("security") || approved_it {
            Ok(())
        } else {
            Err(ServerError::Forbidden(format!(
                "{me} may not complete the review of grant {}: reviews are for security staff (role \
                 `security`), admins and the request's approvers",
                g.id
            )))
        };
    };
    let exception_owner = crate::parties::exception_owner(tx, r).await?;
    let parties = jitgate_core::governance::Parties {
        requester: &requester,
        subject: &subject,
        exception_owner: exception_owner.as_deref(),
    };
    match may_complete_review(&caller.identity, r, &parties, approved_it) {
        ReviewAuthority::Allowed => Ok(()),
        ReviewAuthority::Conflicted(c) => Err(CoreError::SeparationOfDuties(format!(
            "{me} {} (grant {}); its post-session review must be completed by someone else: \
             security staff, an admin or an approver of request {}",
            c.describe(),
            g.id,
            r.id
        ))
        .into()),
        ReviewAuthority::NotAuthorized => Err(ServerError::Forbidden(format!(
            "{me} may not complete the review of grant {}: reviews are for security staff (role \
             `security`), admins and the request's approvers",
            g.id
        ))),
    }
}

/// Complete the open review(s) of a grant: the one for `reason`, or every open one when no
/// reason is given. Each completion is a `review.completed` event.
pub async fn complete_review(
    state: &AppState,
    caller: &Caller,
    grant_id: &str,
    outcome: ReviewOutcome,
    note: &str,
    reason: Option<ReviewReason>,
) -> ApiResult<Vec<ReviewView>> {
    let note = note.trim();
    if outcome == ReviewOutcome::Finding && note.is_empty() {
        return Err(ServerError::InvalidBody(
            "a finding needs a note saying what was found and who follows it up (--note)".into(),
        ));
    }
    jitgate_core::governance::check_free_text("note", note, true)?;
    let now = state.clock.now();
    let mut tx = state.store.read().await?;
    let g = tx
        .get_grant(grant_id)
        .await?
        .ok_or_else(|| ServerError::not_found("grant", grant_id))?;
    let r = tx
        .get_request(&g.request_id)
        .await?
        .ok_or_else(|| ServerError::not_found("request", &g.request_id))?;
    if !crate::visibility::can_view(&mut tx, caller, &r).await? {
        return Err(ServerError::not_found("grant", grant_id));
    }
    authorize(&mut tx, caller, &g, &r).await?;
    drop(tx);

    let mut tx = state.store.write().await?;
    let all = tx
        .list_reviews(&ReviewFilter {
            grant_id: Some(grant_id.to_string()),
            ..Default::default()
        })
        .await?;
    let wanted: Vec<&ReviewRecord> = all
        .iter()
        .filter(|rv| reason.is_none_or(|want| rv.reason == want.as_str()))
        .collect();
    let open: Vec<&ReviewRecord> = wanted.iter().copied().filter(|rv| rv.is_open()).collect();
    if open.is_empty() {
        return Err(match wanted.first() {
            Some(done) => ServerError::Store(StoreError::Conflict(format!(
                "the review of grant {grant_id} was completed already by {} ({})",
                done.reviewer.as_deref().unwrap_or("?"),
                done.outcome.as_deref().unwrap_or("?")
            ))),
            None => ServerError::NotFound {
                what: "open review of grant",
                id: grant_id.to_string(),
                hint: "`jitgate reviews --open` lists the reviews waiting",
            },
        });
    }
    // Re-read under the write lock: the session must be over before it is reviewed.
    let g = tx
        .get_grant(grant_id)
        .await?
        .ok_or_else(|| ServerError::not_found("grant", grant_id))?;
    if g.state == GrantState::Active {
        return Err(CoreError::WrongState {
            what: format!("grant {grant_id}"),
            state: "active".into(),
            needed: "ended (a post-session review comes after the session; revoke or complete \
                     the grant first)"
                .into(),
        }
        .into());
    }
    let mut events = Vec::new();
    let mut done = Vec::new();
    for rv in open {
        tx.complete_review(
            grant_id,
            &rv.reason,
            caller.id(),
            outcome.as_str(),
            note,
            now,
        )
        .await?;
        events.push(
            Event::with_payload(
                Actor::identity(caller.id()),
                now,
                &ReviewCompleted {
                    reason: ReviewReason::parse(&rv.reason).ok_or_else(|| {
                        ServerError::Internal(format!("stored review reason {:?}", rv.reason))
                    })?,
                    outcome,
                    note: note.to_string(),
                    due_at: rv.due_at,
                    late: now > rv.due_at,
                },
            )?
            .request(&rv.request_id)
            .grant(grant_id),
        );
        let mut completed = rv.clone();
        completed.reviewer = Some(caller.id().to_string());
        completed.outcome = Some(outcome.as_str().to_string());
        completed.note = Some(note.to_string());
        completed.completed_at = Some(now);
        done.push(view(completed, now)?);
    }
    tx.append_events(&events).await?;
    tx.commit().await?;
    Ok(done)
}

/// Query options of `GET /reviews`.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    /// `open` (overdue included), `overdue` or `done`; default: all.
    pub state: Option<String>,
    /// Only the reviews of this grant.
    pub grant: Option<String>,
    /// Items per page (default `[limits] default_page_size`, 100; at most
    /// `max_page_size`, 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `x-next-cursor` header.
    #[param(max_length = 400)]
    pub cursor: Option<String>,
}

/// One page of the reviews the caller may see (those of requests they may see), newest
/// first, read by keyset ([`crate::paging`]). `page.after` is the review's
/// `grant_id` and `reason` ([`review_key`]).
pub async fn list_reviews(
    state: &AppState,
    caller: &Caller,
    q: ReviewQuery,
    page: &PageRequest,
) -> ApiResult<Paged<ReviewView>> {
    let now = state.clock.now();
    let filter_state = match q.state.as_deref() {
        None => None,
        Some("open") => Some(ReviewState::Open),
        Some("overdue") => Some(ReviewState::Overdue(now)),
        Some("done") => Some(ReviewState::Done),
        Some(other) => {
            return Err(ServerError::BadRequest(format!(
                "unknown review state {other:?}; use open, overdue or done"
            )))
        }
    };
    let mut tx = state.store.read().await?;
    let mut visible = std::collections::HashMap::new();
    let mut after = None;
    if let Some(key) = &page.after {
        // A cursor names a review the caller was shown; any other is refused like a
        // garbled one, so cursors cannot probe for hidden reviews.
        let parts = paging::split_key(key, 2).unwrap_or_default();
        let (grant, reason) = match parts.as_slice() {
            [g, r] => (g.clone(), r.clone()),
            _ => return Err(paging::invalid_cursor("reviews")),
        };
        let of_grant = tx
            .list_reviews(&ReviewFilter {
                grant_id: Some(grant.clone()),
                ..Default::default()
            })
            .await?;
        let shown = match of_grant.iter().find(|rv| rv.reason == reason) {
            Some(rv) => may_see(&mut tx, caller, &mut visible, &rv.request_id).await?,
            None => false,
        };
        if !shown {
            return Err(paging::invalid_cursor("reviews"));
        }
        after = Some((grant, reason));
    }
    let mut filter = ReviewFilter {
        state: filter_state,
        grant_id: q.grant,
        after,
        limit: page.batch(),
    };
    let mut out = Collector::new(page);
    loop {
        let rows = tx.list_reviews(&filter).await?;
        let end = (rows.len() as i64) < filter.limit;
        for rv in rows {
            if out.is_full() {
                break;
            }
            filter.after = Some((rv.grant_id.clone(), rv.reason.clone()));
            if may_see(&mut tx, caller, &mut visible, &rv.request_id).await? {
                out.push(view(rv, now)?);
            }
        }
        if end || out.is_full() {
            break;
        }
    }
    Ok(out.finish())
}

/// The cursor key of a review: its grant and reason.
pub fn review_key(rv: &ReviewView) -> String {
    paging::joined_key(&[rv.grant_id.as_str(), rv.reason.as_str()])
}

/// Whether the caller may see the reviews of request `id` (remembered per request).
async fn may_see(
    tx: &mut jitgate_store::Tx,
    caller: &Caller,
    seen: &mut std::collections::HashMap<String, bool>,
    id: &str,
) -> ApiResult<bool> {
    if let Some(v) = seen.get(id) {
        return Ok(*v);
    }
    let v = match tx.get_request(id).await? {
        Some(r) => crate::visibility::can_view(tx, caller, &r).await?,
        None => caller.sees_everything(),
    };
    seen.insert(id.to_string(), v);
    Ok(v)
}

/// One scheduler pass over reviews: every open review past its due time is notified
/// ([`Notice::ReviewDue`]) exactly once. Returns how many were.
pub async fn notify_overdue(state: &AppState) -> ApiResult<usize> {
    let now = state.clock.now();
    {
        let mut tx = state.store.read().await?;
        if tx.reviews_overdue_unnotified(now).await?.is_empty() {
            return Ok(0);
        }
    }
    let mut tx = state.store.write().await?;
    let due = tx.reviews_overdue_unnotified(now).await?;
    for rv in &due {
        let notice = Notice::ReviewDue {
            grant_id: rv.grant_id.clone(),
            request_id: rv.request_id.clone(),
            subject: rv.subject.clone(),
            reason: rv.reason.clone(),
            opened_at: rv.opened_at,
            due_at: rv.due_at,
            detail: rv.detail.clone(),
        };
        notify::enqueue(&mut tx, state, &notice).await?;
        tx.mark_review_overdue_notified(&rv.grant_id, &rv.reason)
            .await?;
    }
    tx.commit().await?;
    Ok(due.len())
}
