//! `GET /sessions`: gateway sessions under grants, read from the event log.
//!
//! The gateways report `session.started`, `operation` and `session.ended` events (see
//! `api::gateway::gateway_events`); a session is live when it started and has not ended.
//! Only grants that are `active` or `ending` can have live sessions (a grant is `closed`
//! once its teardown verified every session closed), so only their events are read.
//! Terminating a session is revoking its grant (`POST /grants/{id}/revoke`).

use super::extract::ApiQuery;
use super::limits::{page_response, Page};
use super::types::ApiError;
use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::paging::{self, page_of};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use jitgate_core::server_payload::{
    GatewayReport, OperationOutcome, SessionEndedDetail, SessionStartedDetail,
};
use jitgate_core::{EventKind, Grant, GrantState, Timestamp};
use jitgate_store::{EventFilter, GrantFilter};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new().route("/sessions", get(list_sessions))
}

#[derive(OpenApi)]
#[openapi(paths(list_sessions), components(schemas(SessionView)))]
pub struct SessionsDoc;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    /// `true`: only sessions still open.
    pub live: Option<bool>,
    /// Only the sessions of this grant (any grant state).
    pub grant: Option<String>,
    /// Items per page (default `[limits] default_page_size`, 100; at most
    /// `max_page_size`, 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `x-next-cursor` header.
    #[param(max_length = 400)]
    pub cursor: Option<String>,
}

/// One connection through a gateway under a grant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub session_id: String,
    pub grant_id: String,
    pub request_id: String,
    /// Who uses the access.
    pub subject: String,
    pub asset: String,
    /// `modbus`, `ssh`, … as the gateway reported it.
    pub protocol: String,
    /// The gateway that reported the session.
    pub gateway: String,
    /// The client's address as the gateway saw it.
    #[serde(default)]
    pub peer: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// When the grant (and so the session) expires.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    pub live: bool,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    /// Why it ended (`grant_revoked`, `expired`, `client_closed`, ...).
    #[serde(default)]
    pub end_reason: Option<String>,
    /// Operations so far (allowed and denied).
    pub operations: u64,
    /// Operations the gateway refused.
    pub denied: u64,
}

/// Security, audit, admin and operations staff watch every session; others their own.
fn sees_all_sessions(caller: &Caller) -> bool {
    caller.sees_everything() || caller.identity.has_role("operator")
}

#[utoipa::path(get, path = "/api/v1/sessions", params(SessionQuery),
    responses((status = 200, body = Vec<SessionView>, description = "one page, newest first; `x-next-cursor` names the next"), (status = 404, body = ApiError)))]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SessionQuery>,
) -> ApiResult<Response> {
    let page = Page {
        limit: q.limit,
        cursor: q.cursor.clone(),
    }
    .request("sessions", &state.config.limits)?;
    let all = sees_all_sessions(&caller);
    let mut tx = state.store.read().await?;
    let grants: Vec<Grant> = match &q.grant {
        Some(id) => {
            let g = tx
                .get_grant(id)
                .await?
                .ok_or_else(|| ServerError::not_found("grant", id))?;
            let r = tx
                .get_request(&g.request_id)
                .await?
                .ok_or_else(|| ServerError::not_found("grant", id))?;
            if !(all
                || g.subject == caller.id()
                || crate::visibility::can_view(&mut tx, &caller, &r).await?)
            {
                return Err(ServerError::not_found("grant", id));
            }
            vec![g]
        }
        None => {
            let mut out = Vec::new();
            for s in [GrantState::Active, GrantState::Ending] {
                out.extend(
                    tx.list_grants(&GrantFilter {
                        state: Some(s),
                        subject: (!all).then(|| caller.id().to_string()),
                        after: None,
                        limit: 10_000,
                    })
                    .await?,
                );
            }
            out
        }
    };
    let mut sessions = Vec::new();
    for g in grants {
        let mut of_grant: Vec<SessionView> = Vec::new();
        let mut after = None;
        loop {
            let page = tx
                .list_events(&EventFilter {
                    grant_id: Some(g.id.clone()),
                    after_seq: after,
                    limit: 1000,
                    ..Default::default()
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.seq);
            let full = page.len() >= 1000;
            for e in page {
                fold(&mut of_grant, &g, e.event);
            }
            if !full {
                break;
            }
        }
        sessions.extend(of_grant);
    }
    if q.live == Some(true) {
        sessions.retain(|s| s.live);
    }
    // Held in memory (the sessions of open grants, or of one grant), paged by keyset on
    // (started_at descending, session id).
    Ok(page_response(
        "sessions",
        page_of(&page, sessions, session_key),
        session_key,
    ))
}

/// Sorts newest first: the start time counted down from the largest, then the id.
fn session_key(s: &SessionView) -> String {
    let down = i64::MAX - s.started_at.timestamp_millis();
    paging::joined_key(&[&format!("{down:020}"), &s.session_id])
}

/// The session's protocol. Gateways name it since SSH came; before, the only protocol was
/// Modbus, and the SSH server's first sessions are known by their certificate's token id.
fn protocol_of(d: &SessionStartedDetail) -> String {
    match &d.protocol {
        Some(p) => p.clone(),
        None if d
            .token_id
            .as_deref()
            .is_some_and(|t| t.starts_with("ssh-cert:")) =>
        {
            "ssh".into()
        }
        None => "modbus".into(),
    }
}

/// Apply one event of a grant to its sessions.
fn fold(sessions: &mut Vec<SessionView>, g: &Grant, e: jitgate_core::Event) {
    let Some(report) = GatewayReport::of(&e) else {
        return;
    };
    let Some(sid) = report.session_id.clone() else {
        return;
    };
    match e.kind {
        EventKind::SessionStarted => {
            let started = report.detail_as::<SessionStartedDetail>();
            sessions.push(SessionView {
                session_id: sid,
                grant_id: g.id.clone(),
                request_id: g.request_id.clone(),
                subject: started
                    .as_ref()
                    .map_or_else(|| g.subject.clone(), |d| d.subject.clone()),
                asset: started
                    .as_ref()
                    .map(|d| d.asset.clone())
                    .unwrap_or_default(),
                protocol: started.as_ref().map(protocol_of).unwrap_or_default(),
                gateway: e.actor.0.clone(),
                peer: started.and_then(|d| d.peer),
                started_at: e.at,
                expires_at: g.expires_at,
                live: true,
                ended_at: None,
                end_reason: None,
                operations: 0,
                denied: 0,
            })
        }
        EventKind::Operation => {
            if let Some(s) = sessions.iter_mut().find(|s| s.session_id == sid) {
                s.operations += 1;
                if report
                    .detail_as::<OperationOutcome>()
                    .is_some_and(|o| !o.allowed)
                {
                    s.denied += 1;
                }
            }
        }
        EventKind::SessionEnded => {
            if let Some(s) = sessions.iter_mut().find(|s| s.session_id == sid) {
                s.live = false;
                s.ended_at = Some(e.at);
                // The gateway's own totals win (operations it could not report one by one).
                if let Some(ended) = report.detail_as::<SessionEndedDetail>() {
                    s.end_reason = Some(ended.reason);
                    s.operations = s.operations.max(ended.operations);
                    s.denied = s.denied.max(ended.denied);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_is_the_gateways_word_or_known_from_older_events() {
        let started = |protocol: Option<&str>, token: Option<&str>| SessionStartedDetail {
            subject: "alice".into(),
            asset: "historian".into(),
            protocol: protocol.map(Into::into),
            device: None,
            peer: None,
            token_id: token.map(Into::into),
            expires_at: None,
        };
        assert_eq!(protocol_of(&started(Some("dnp3"), None)), "dnp3");
        assert_eq!(protocol_of(&started(None, Some("ssh-cert:42"))), "ssh");
        assert_eq!(protocol_of(&started(None, Some("tok-1"))), "modbus");
    }
}
