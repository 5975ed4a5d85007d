//! Evidence endpoints: the event log, its hash chain, in-place verification, checkpoints,
//! evidence keys, and per-grant bundles and reports. The work is in [`crate::evidence`].

use super::extract::{ApiJson, ApiQuery};
use super::limits::{page_response, page_response_after, Page};
use super::types::{ApiError, ChainStatus, EventView};
use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::paging::Paged;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jitgate_core::event::Actor;
use jitgate_store::EventFilter;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list_events))
        .route("/evidence/chain", get(chain_status))
        .route("/evidence/verify", get(verify_log))
        .route(
            "/evidence/checkpoints",
            get(list_checkpoints).post(sign_checkpoint),
        )
        .route("/evidence/keys", get(evidence_keys))
        .route("/evidence/witness", get(witness_checkpoint))
        .route("/evidence/witness/cosignatures", post(witness_cosignatures))
        .route("/evidence/witness/alarms", post(witness_alarm))
        .route("/evidence/keys/rotate", post(rotate_evidence_key))
        .route("/grants/{id}/evidence", get(export_bundle))
        .route("/grants/{id}/evidence/report", get(grant_report))
}

pub use crate::views::{
    CheckpointView, EvidenceKeyView, EvidenceKeysView, LogProblemView, LogVerifyView,
    SignedCheckpointView,
};

// ---------------------------------------------------------------- events and chain

fn require_evidence_role(caller: &Caller, what: &str) -> ApiResult<()> {
    if caller.sees_everything() {
        Ok(())
    } else {
        Err(ServerError::Forbidden(format!(
            "{what} is for security, audit and admin roles"
        )))
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventQuery {
    request: Option<String>,
    grant: Option<String>,
    /// Only events with a sequence number greater than this (to tail the log).
    after: Option<i64>,
    /// Items per page (default `[limits] default_page_size`, 100; at most
    /// `max_page_size`, 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The previous page's `x-next-cursor` header.
    #[param(max_length = 400)]
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/events", params(EventQuery), responses((status = 200, body = Vec<EventView>, description = "one page, oldest first; `x-next-cursor` names the next")))]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Response> {
    let page = Page {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request("events", &state.config.limits)?;
    // The key is the sequence number: the log only grows, so no lookup is needed.
    let cursor_seq = match &page.after {
        Some(k) => Some(
            k.parse::<i64>()
                .map_err(|_| crate::paging::invalid_cursor("events"))?,
        ),
        None => None,
    };
    let after_seq = match (cursor_seq, q.after) {
        (Some(c), Some(a)) => Some(c.max(a)),
        (c, a) => c.or(a),
    };
    let mut tx = state.store.read().await?;
    if !caller.sees_everything() {
        // Others see the events of one request or grant they may view.
        let request_id = match (&q.request, &q.grant) {
            (Some(r), _) => r.clone(),
            (None, Some(g)) => tx.get_grant(g).await?.ok_or_else(|| ServerError::not_found("grant", g))?.request_id,
            (None, None) => {
                return Err(ServerError::Forbidden(
                    "the whole event log is for security, audit and admin roles; pass --request or --grant".into(),
                ))
            }
        };
        let r = tx
            .get_request(&request_id)
            .await?
            .ok_or_else(|| ServerError::not_found("request", &request_id))?;
        if !crate::visibility::can_view(&mut tx, &caller, &r).await? {
            return Err(ServerError::not_found("request", &request_id));
        }
    }
    let filter = EventFilter {
        request_id: q.request,
        grant_id: q.grant,
        after_seq,
        limit: page.limit as i64 + 1,
    };
    let mut events = tx.list_events(&filter).await?;
    let more = events.len() > page.limit;
    events.truncate(page.limit);
    let items = events
        .into_iter()
        .map(|e| EventView {
            seq: e.seq,
            hash: e.hash,
            prev_hash: e.prev_hash,
            event: e.event,
        })
        .collect();
    Ok(page_response(
        "events",
        Paged { items, more },
        |e: &EventView| e.seq.to_string(),
    ))
}

#[utoipa::path(get, path = "/api/v1/evidence/chain", responses((status = 200, body = ChainStatus)))]
pub(crate) async fn chain_status(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ChainStatus>> {
    require_evidence_role(&caller, "verifying the event chain")?;
    let report = state.store.read_snapshot().await?.verify_chain().await?;
    Ok(Json(ChainStatus {
        events: report.events,
        head: report.head,
        ok: report.first_bad.is_none(),
        first_bad_seq: report.first_bad.as_ref().map(|(s, _)| *s),
        problem: report.first_bad.map(|(_, p)| p),
    }))
}

// ---------------------------------------------------------------- log, checkpoints, keys

/// Recompute the hash chain, the Merkle tree and every checkpoint over the database, and
/// name the first altered, deleted, inserted or reordered event, or bad checkpoint. Answers
/// 200 either way: `ok` says whether the log holds.
#[utoipa::path(get, path = "/api/v1/evidence/verify",
    responses((status = 200, body = LogVerifyView), (status = 403, body = ApiError)))]
pub(crate) async fn verify_log(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<LogVerifyView>> {
    require_evidence_role(&caller, "verifying the evidence log")?;
    crate::evidence::verify(&state).await.map(Json)
}

#[utoipa::path(get, path = "/api/v1/evidence/checkpoints", params(Page),
    responses((status = 200, body = Vec<SignedCheckpointView>, description = "one page, by tree size; `x-next-cursor` names the next"), (status = 403, body = ApiError)))]
pub(crate) async fn list_checkpoints(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Response> {
    require_evidence_role(&caller, "reading checkpoints")?;
    let page = page.request("evidence/checkpoints", &state.config.limits)?;
    let after = match &page.after {
        Some(k) => Some(
            k.parse::<i64>()
                .map_err(|_| crate::paging::invalid_cursor("evidence/checkpoints"))?,
        ),
        None => None,
    };
    let mut rows = crate::evidence::checkpoints_after(&state, after, page.limit + 1).await?;
    let more = rows.len() > page.limit;
    rows.truncate(page.limit);
    // The key of a checkpoint is where it is stored, which its view does not show.
    let next = more
        .then(|| rows.last().map(|(pos, _)| pos.to_string()))
        .flatten();
    let min = rows
        .iter()
        .map(|(_, c)| c.checkpoint.tree_size)
        .min()
        .unwrap_or(u64::MAX);
    let cosigned = crate::evidence::witness::cosignatures_from(&state, min).await?;
    let items: Vec<SignedCheckpointView> = rows
        .into_iter()
        .map(|(_, c)| {
            let at = c.checkpoint.timestamp().ok();
            let witnesses = cosigned
                .iter()
                .filter(|w| {
                    w.tree_size as u64 == c.checkpoint.tree_size
                        && w.root_hash == c.checkpoint.root_hash
                        && Some(w.at) == at
                })
                .map(|w| w.witness.clone())
                .collect();
            SignedCheckpointView {
                witnesses,
                ..c.into()
            }
        })
        .collect();
    Ok(page_response_after("evidence/checkpoints", items, next))
}

/// Sign a checkpoint of the whole log now (even if the log did not grow).
#[utoipa::path(post, path = "/api/v1/evidence/checkpoints",
    responses((status = 200, body = SignedCheckpointView), (status = 403, body = ApiError),
              (status = 409, body = ApiError)))]
pub(crate) async fn sign_checkpoint(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<SignedCheckpointView>> {
    require_evidence_role(&caller, "signing checkpoints")?;
    let signed = crate::evidence::sign_checkpoint(&state, true)
        .await?
        .ok_or_else(|| ServerError::Internal("a forced checkpoint was not signed".into()))?;
    Ok(Json(signed.into()))
}

fn keys_view(state: &AppState) -> EvidenceKeysView {
    let ev = &state.evidence;
    EvidenceKeysView {
        log_id: ev.log_id.clone(),
        current_key_id: ev.current_key_id(),
        keys: ev
            .public_keys()
            .into_iter()
            .map(|k| EvidenceKeyView {
                public_key: k.to_base64(),
                key_id: k.key_id,
            })
            .collect(),
        key_file: ev.public_key_file(),
        vkeys: crate::evidence::witness::log_vkeys(state)
            .map(|v| v.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
    }
}

#[utoipa::path(get, path = "/api/v1/evidence/keys", responses((status = 200, body = EvidenceKeysView)))]
pub(crate) async fn evidence_keys(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<EvidenceKeysView>> {
    Ok(Json(keys_view(&state)))
}

/// Add a new evidence key and make it current (admin). Old public keys are kept.
#[utoipa::path(post, path = "/api/v1/evidence/keys/rotate",
    responses((status = 200, body = EvidenceKeysView), (status = 403, body = ApiError)))]
pub(crate) async fn rotate_evidence_key(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<EvidenceKeysView>> {
    caller.require_admin()?;
    crate::evidence::rotate_key(&state, Actor::identity(caller.id())).await?;
    Ok(Json(keys_view(&state)))
}

// ---------------------------------------------------------------- witnesses

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct WitnessQuery {
    /// Size of the last checkpoint the witness cosigned (0 the first time).
    #[serde(default)]
    old: u64,
}

/// The latest checkpoint for a witness: the body of a C2SP `tlog-witness` `add-checkpoint`
/// request — `old <size>`, the consistency proof from that size (base64 lines), a blank line,
/// and the checkpoint as a signed note (docs/evidence.md, "Witnesses").
#[utoipa::path(get, path = "/api/v1/evidence/witness", params(WitnessQuery),
    responses((status = 200, description = "add-checkpoint body", content_type = "text/plain"),
              (status = 403, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn witness_checkpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<WitnessQuery>,
) -> ApiResult<Response> {
    require_evidence_role(&caller, "witnessing checkpoints")?;
    let body = crate::evidence::witness::for_witness(&state, q.old).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
}

/// Cosignatures of a stored checkpoint: the checkpoint note with the witnesses' signature
/// lines appended. Kept only for witnesses in `evidence.witnesses`.
#[utoipa::path(post, path = "/api/v1/evidence/witness/cosignatures",
    request_body(content = String, content_type = "text/plain", description = "the cosigned checkpoint note"),
    responses((status = 200, body = crate::evidence::witness::CosignaturesAccepted),
              (status = 400, body = ApiError), (status = 403, body = ApiError),
              (status = 409, body = ApiError)))]
pub(crate) async fn witness_cosignatures(
    State(state): State<AppState>,
    caller: Caller,
    body: String,
) -> ApiResult<Json<crate::evidence::witness::CosignaturesAccepted>> {
    require_evidence_role(&caller, "posting cosignatures")?;
    crate::evidence::witness::accept_cosignatures(&state, &body)
        .await
        .map(Json)
}

/// A witness found the log forked or rolled back: recorded as an `evidence.witness_alarm`
/// event. Both notes must be checkpoints this log signed.
#[utoipa::path(post, path = "/api/v1/evidence/witness/alarms",
    request_body = crate::evidence::witness::AlarmReport,
    responses((status = 200, description = "recorded; the body says whether the server's log still has the cosigned root"),
              (status = 400, body = ApiError), (status = 403, body = ApiError)))]
pub(crate) async fn witness_alarm(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(report): ApiJson<crate::evidence::witness::AlarmReport>,
) -> ApiResult<Json<serde_json::Value>> {
    require_evidence_role(&caller, "reporting a witness alarm")?;
    let agrees =
        crate::evidence::witness::record_alarm(&state, Actor::identity(caller.id()), report)
            .await?;
    Ok(Json(
        serde_json::json!({ "recorded": true, "log_agrees_with_cosigned": agrees }),
    ))
}

// ---------------------------------------------------------------- bundles and reports

/// The grant's evidence bundle (`jitgate-evidence-bundle/2`, docs/evidence.md §6): every
/// event of its request and grant with one multi-proof against a signed checkpoint, the
/// determining policies' text, and the exporter's attestation.
#[utoipa::path(get, path = "/api/v1/grants/{id}/evidence", params(("id" = String, Path)),
    responses((status = 200, description = "the bundle (JSON)", content_type = "application/json"),
              (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn export_bundle(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let bundle = crate::evidence::export(&state, &caller, &id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        bundle.to_json(),
    )
        .into_response())
}

/// The grant's audit report: one self-contained HTML page made from its verified bundle.
#[utoipa::path(get, path = "/api/v1/grants/{id}/evidence/report", params(("id" = String, Path)),
    responses((status = 200, description = "the report", content_type = "text/html"),
              (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn grant_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let html = crate::evidence::report(&state, &caller, &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page has no scripts or external assets; keep it that way in browsers too.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        html,
    )
        .into_response())
}
