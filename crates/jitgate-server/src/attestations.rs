//! Post-session attestations: the subject of an ended grant (or an owner of a workload
//! subject) says what was done — task done or not, the changes made, a note — once, as an
//! `attestation.recorded` event. Whether a grant owes one was recorded when it was issued
//! (`@attestation("required")`); one not given within the grace period after the grant
//! ended (`review_due_after`, the same as post-session reviews) is *missing* and is listed
//! here and in the next review campaign. The rules are `jitgate_core::attestation`.

use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::paging::{Collector, PageRequest, Paged};
use crate::state::AppState;
use jitgate_core::attestation::{self, AttestationInput, AttestationRecorded};
use jitgate_core::event::{Actor, Event};
use jitgate_core::Timestamp;
use jitgate_store::{AttestationFilter, AttestationRecord, Tx};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An attestation (given, or owed) as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttestationView {
    pub grant_id: String,
    pub request_id: String,
    /// The grant's subject.
    pub subject: String,
    /// The policy required it.
    pub required: bool,
    /// `given`, `missing` (required, not given within the grace period after the grant
    /// ended) or `waiting` (required, not given yet, still within the grace period or the
    /// grant still active).
    pub state: String,
    #[serde(default)]
    pub attester: Option<String>,
    #[serde(default)]
    pub task_done: Option<bool>,
    #[serde(default)]
    pub changes: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub attested_at: Option<Timestamp>,
}

/// Seconds after a grant's end within which a required attestation is due.
pub fn grace_secs(state: &AppState) -> ApiResult<i64> {
    state
        .config
        .review_due_after_secs()
        .map_err(|e| ServerError::Internal(format!("configuration: {e}")))
}

fn view(a: AttestationRecord, missing: bool) -> AttestationView {
    let state = if a.attested_at.is_some() {
        "given"
    } else if missing {
        "missing"
    } else {
        "waiting"
    };
    AttestationView {
        state: state.to_string(),
        grant_id: a.grant_id,
        request_id: a.request_id,
        subject: a.subject,
        required: a.required,
        attester: a.attester,
        task_done: a.task_done,
        changes: a.changes,
        note: a.note,
        attested_at: a.attested_at,
    }
}

/// Record the caller's attestation of grant `grant_id`.
pub async fn record(
    state: &AppState,
    caller: &Caller,
    grant_id: &str,
    input: AttestationInput,
) -> ApiResult<AttestationView> {
    let input = input.checked()?;
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
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
    let subject = tx.get_identity(&g.subject).await?;
    let owed = tx.get_attestation(grant_id).await?;
    let attested = owed.as_ref().is_some_and(|a| a.attested_at.is_some());
    let attested_as = attestation::may_attest(&caller.identity, &g, subject.as_ref(), attested)?;
    let required = owed
        .as_ref()
        .map_or(r.decision.obligations.attestation, |a| a.required);
    let ended_at = g.ended_at.ok_or_else(|| {
        ServerError::Internal(format!("grant {grant_id} has ended but has no end time"))
    })?;
    let record = AttestationRecord {
        grant_id: g.id.clone(),
        request_id: g.request_id.clone(),
        subject: g.subject.clone(),
        required,
        attester: Some(caller.id().to_string()),
        task_done: Some(input.task_done),
        changes: input.changes.clone(),
        note: Some(input.note.clone()),
        attested_at: Some(now),
    };
    tx.record_attestation(&record).await?;
    let event = Event::with_payload(
        Actor::identity(caller.id()),
        now,
        &AttestationRecorded {
            subject: g.subject.clone(),
            attested_as,
            task_done: input.task_done,
            changes: input.changes,
            note: input.note,
            required,
            ended_at,
        },
    )?
    .request(&g.request_id)
    .grant(&g.id);
    tx.append_events(&[event]).await?;
    tx.commit().await?;
    Ok(view(record, false))
}

/// The attestation of one grant (given or owed). 404 when the grant owes none and none was
/// given.
pub async fn get(state: &AppState, caller: &Caller, grant_id: &str) -> ApiResult<AttestationView> {
    let now = state.clock.now();
    let grace = grace_secs(state)?;
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
    let a = tx
        .get_attestation(grant_id)
        .await?
        .ok_or(ServerError::NotFound {
            what: "attestation of grant",
            id: grant_id.to_string(),
            hint: "its policy did not require one and none was given: `jitgate attest` gives one",
        })?;
    let missing = attestation::is_missing(a.required, &g, a.attested_at.is_some(), grace, now);
    Ok(view(a, missing))
}

/// Query options of `GET /attestations`.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttestationQuery {
    /// `true`: the required attestations missing (not given within the grace period after
    /// the grant ended); default: the attestations given.
    pub missing: Option<bool>,
    /// Items per page (default `[limits] default_page_size`, 100; at most
    /// `max_page_size`, 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `x-next-cursor` header.
    #[param(max_length = 400)]
    pub cursor: Option<String>,
}

/// Required attestations missing at `now` for grants that ended in `[from, to)` (every
/// one, for a campaign; visibility is the caller's concern).
pub async fn missing_in(
    tx: &mut Tx,
    state: &AppState,
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
) -> ApiResult<Vec<AttestationRecord>> {
    let cutoff = now - chrono::Duration::seconds(grace_secs(state)?);
    let mut out = Vec::new();
    let mut filter = AttestationFilter {
        missing_before: Some(cutoff),
        ended_in: Some((from, to)),
        after: None,
        limit: 500,
    };
    loop {
        let rows = tx.list_attestations(&filter).await?;
        let end = (rows.len() as i64) < filter.limit;
        filter.after = rows.last().map(|a| a.grant_id.clone());
        out.extend(rows);
        if end {
            break;
        }
    }
    Ok(out)
}

/// One page of attestations (given, or with `missing` the required ones missing) of the
/// grants the caller may see, newest grant first.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    q: AttestationQuery,
    page: &PageRequest,
) -> ApiResult<Paged<AttestationView>> {
    let now = state.clock.now();
    let missing = q.missing.unwrap_or(false);
    let cutoff = now - chrono::Duration::seconds(grace_secs(state)?);
    let mut tx = state.store.read().await?;
    if let Some(after) = &page.after {
        // A cursor names an attestation the caller was shown; any other is refused.
        let shown = match tx.get_attestation(after).await? {
            Some(a) => may_see(&mut tx, caller, &a.request_id).await?,
            None => false,
        };
        if !shown {
            return Err(crate::paging::invalid_cursor("attestations"));
        }
    }
    let mut filter = AttestationFilter {
        missing_before: missing.then_some(cutoff),
        ended_in: None,
        after: page.after.clone(),
        limit: page.batch(),
    };
    let mut out = Collector::new(page);
    loop {
        let rows = tx.list_attestations(&filter).await?;
        let end = (rows.len() as i64) < filter.limit;
        for a in rows {
            if out.is_full() {
                break;
            }
            filter.after = Some(a.grant_id.clone());
            if may_see(&mut tx, caller, &a.request_id).await? {
                out.push(view(a, missing));
            }
        }
        if end || out.is_full() {
            break;
        }
    }
    Ok(out.finish())
}

async fn may_see(tx: &mut Tx, caller: &Caller, request_id: &str) -> ApiResult<bool> {
    Ok(match tx.get_request(request_id).await? {
        Some(r) => crate::visibility::can_view(tx, caller, &r).await?,
        None => caller.sees_everything(),
    })
}
