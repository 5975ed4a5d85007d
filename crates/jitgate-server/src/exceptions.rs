//! Standing exceptions: filing one (a request on the `standing` path with its terms, decided
//! and approved like any request), listing and showing them with their uses, re-validating
//! and ending them. The rules are `jitgate_core::exception`'s; the overdue end is part of
//! the scheduler's pass (`service::tick`).
//!
//! For other features: [`summaries`] lists every exception as
//! [`jitgate_core::exception::ExceptionSummary`] (state, subject, assets, owner, expiry,
//! next re-validation, uses, last use) without visibility filtering — the standing-privilege
//! inventory and review campaigns read it — and [`end_exception`] ends one with a reason (a
//! review campaign's "end" decision).

use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::paging::{self, Collector, PageRequest, Paged};
use crate::service;
use crate::state::AppState;
use crate::views::{NewExceptionBody, NewRequestBody};
use crate::visibility::can_view;
use jitgate_core::exception::{self, ExceptionState, ExceptionSummary, Terms};
use jitgate_core::{AccessPath, CoreError, Identity, Timestamp};
use jitgate_store::{ExceptionFilter, ExceptionRecord, Tx};

pub(crate) fn summary_of(rec: &ExceptionRecord, now: Timestamp) -> ExceptionSummary {
    exception::summarize(
        &rec.exception,
        &rec.request,
        rec.grant.as_ref(),
        rec.uses,
        rec.last_use,
        now,
    )
}

async fn record(tx: &mut Tx, id: &str) -> ApiResult<ExceptionRecord> {
    let ex = tx
        .get_exception(id)
        .await?
        .ok_or_else(|| ServerError::not_found("exception", id))?;
    Ok(tx.exception_record(ex).await?)
}

/// Who sees an exception: whoever sees its request, and its owner.
async fn may_see(tx: &mut Tx, caller: &Caller, rec: &ExceptionRecord) -> ApiResult<bool> {
    Ok(rec.exception.owner == caller.id() || can_view(tx, caller, &rec.request).await?)
}

/// File a standing exception: the core checks its terms, the policy decides it on the
/// `standing` path, approvers approve it like any request.
pub async fn request_exception(
    state: &AppState,
    caller: &Caller,
    body: NewExceptionBody,
) -> ApiResult<ExceptionSummary> {
    let every = crate::config::parse_duration_secs(&body.revalidate_every).map_err(|m| {
        CoreError::InvalidException(format!("revalidate_every {:?}: {m}", body.revalidate_every))
    })?;
    let terms = Terms {
        owner: body.owner,
        controls: body.controls,
        revalidate_every_secs: every,
    };
    let request = NewRequestBody {
        subject: body.subject,
        scope: body.scope,
        duration: body.expires_in,
        reason: body.reason,
        reference: body.reference,
        path: AccessPath::Standing,
        start: None,
    };
    let (view, ex) = service::submit(state, caller, request, Some(terms)).await?;
    let ex = ex.ok_or_else(|| ServerError::Internal("exception not recorded".into()))?;
    let now = state.clock.now();
    Ok(exception::summarize(
        &ex,
        &view.request,
        view.grant.as_ref(),
        0,
        None,
        now,
    ))
}

/// Query options of `GET /exceptions`.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExceptionQuery {
    /// `pending`, `active`, `overdue`, `denied` or `ended`.
    pub state: Option<String>,
    /// Only exceptions owned by this identity.
    pub owner: Option<String>,
    /// Items per page (default `[limits] default_page_size`, 100; at most
    /// `max_page_size`, 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `x-next-cursor` header.
    #[param(max_length = 400)]
    pub cursor: Option<String>,
}

/// The key a page of exceptions continues after.
pub fn exception_key(s: &ExceptionSummary) -> String {
    s.id.clone()
}

/// One page of the exceptions `caller` may see, newest first.
pub async fn list_exceptions(
    state: &AppState,
    caller: &Caller,
    q: ExceptionQuery,
    page: &PageRequest,
) -> ApiResult<Paged<ExceptionSummary>> {
    let now = state.clock.now();
    let want = match q.state.as_deref() {
        None => None,
        Some(s) => Some(ExceptionState::parse(s).ok_or_else(|| {
            ServerError::BadRequest(format!(
                "unknown exception state {s:?}; use pending, active, overdue, denied or ended"
            ))
        })?),
    };
    let mut tx = state.store.read().await?;
    if let Some(after) = &page.after {
        // A cursor names an exception the caller was shown; any other is refused like a
        // garbled one, so cursors cannot probe for hidden exceptions.
        let shown = match tx.get_exception(after).await? {
            Some(ex) => {
                let rec = tx.exception_record(ex).await?;
                may_see(&mut tx, caller, &rec).await?
            }
            None => false,
        };
        if !shown {
            return Err(paging::invalid_cursor("exceptions"));
        }
    }
    let mut filter = ExceptionFilter {
        owner: q.owner,
        after: page.after.clone(),
        limit: page.batch(),
    };
    let mut out = Collector::new(page);
    loop {
        let rows = tx.list_exceptions(&filter).await?;
        let end = (rows.len() as i64) < filter.limit;
        for ex in rows {
            if out.is_full() {
                break;
            }
            filter.after = Some(ex.id.clone());
            let rec = tx.exception_record(ex).await?;
            let summary = summary_of(&rec, now);
            if want.is_some_and(|w| w != summary.state) {
                continue;
            }
            if may_see(&mut tx, caller, &rec).await? {
                out.push(summary);
            }
        }
        if end || out.is_full() {
            break;
        }
    }
    Ok(out.finish())
}

pub async fn get_exception(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<ExceptionSummary> {
    let mut tx = state.store.read().await?;
    let rec = record(&mut tx, id).await?;
    if !may_see(&mut tx, caller, &rec).await? {
        return Err(ServerError::not_found("exception", id));
    }
    Ok(summary_of(&rec, state.clock.now()))
}

/// The owner (or security / admin staff, never anyone tied to the subject) confirms the
/// exception is still needed: the next re-validation moves to now + interval.
pub async fn revalidate(
    state: &AppState,
    caller: &Caller,
    id: &str,
    note: &str,
) -> ApiResult<ExceptionSummary> {
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let rec = record(&mut tx, id).await?;
    if !may_see(&mut tx, caller, &rec).await? {
        return Err(ServerError::not_found("exception", id));
    }
    let subject = tx.get_identity(&rec.request.subject).await?;
    exception::may_revalidate(
        &caller.identity,
        &rec.exception,
        &rec.request.subject,
        subject.as_ref(),
        &rec.request.requester,
    )?;
    // Overdue but not yet ended by the scheduler: refused, it ends (see the core).
    let (ex, event) =
        exception::revalidate(rec.exception.clone(), &rec.request, caller.id(), note, now)?;
    tx.update_exception(&ex).await?;
    tx.append_events(&[event]).await?;
    tx.commit().await?;
    state.deadline(ex.next_revalidation);
    let rec = ExceptionRecord {
        exception: ex,
        ..rec
    };
    Ok(summary_of(&rec, now))
}

/// End an exception at once with a reason: an active one's grant ends (revoked, the
/// revocation pushed to the gateways before this returns), a pending one is withdrawn. For
/// the API, and for a review campaign's "end" decision (`by` is who decided).
pub async fn end_exception(
    state: &AppState,
    by: &Identity,
    id: &str,
    reason: &str,
) -> ApiResult<ExceptionSummary> {
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let (summary, to_push) = end_exception_in_tx(&mut tx, state, by, id, reason, now).await?;
    tx.commit().await?;
    crate::effects::push_after_commit(state, &to_push).await;
    Ok(summary)
}

/// [`end_exception`] inside the caller's write transaction (a review campaign records its
/// decision in the same one). Returns the exception as it is now and the grants whose
/// revocation the caller pushes after its commit ([`crate::effects::push_after_commit`]).
pub async fn end_exception_in_tx(
    tx: &mut Tx,
    state: &AppState,
    by: &Identity,
    id: &str,
    reason: &str,
    now: Timestamp,
) -> ApiResult<(ExceptionSummary, Vec<jitgate_core::Grant>)> {
    let rec = record(tx, id).await?;
    exception::may_end(by, &rec.exception, &rec.request)?;
    let out = exception::end(
        rec.request.clone(),
        rec.grant.clone(),
        &rec.exception,
        &by.id,
        reason,
        now,
    )?;
    let to_push = service::save(tx, state, &out, false, false).await?;
    let rec = ExceptionRecord {
        request: out.request,
        grant: out.grant.or(rec.grant),
        ..rec
    };
    Ok((summary_of(&rec, now), to_push))
}

/// `end_exception` for an API caller, who must be able to see the exception first.
pub async fn end_as_caller(
    state: &AppState,
    caller: &Caller,
    id: &str,
    reason: &str,
) -> ApiResult<ExceptionSummary> {
    {
        let mut tx = state.store.read().await?;
        let rec = record(&mut tx, id).await?;
        if !may_see(&mut tx, caller, &rec).await? {
            return Err(ServerError::not_found("exception", id));
        }
    }
    end_exception(state, &caller.identity, id, reason).await
}

/// Every exception (no visibility filter: for server-side consumers such as the
/// standing-privilege inventory and review campaigns), newest first, as summaries at `now`.
pub async fn summaries(
    tx: &mut Tx,
    filter: &ExceptionFilter,
    now: Timestamp,
) -> ApiResult<Vec<ExceptionSummary>> {
    Ok(tx
        .list_exception_records(filter)
        .await?
        .iter()
        .map(|r| summary_of(r, now))
        .collect())
}
