//! Teardown verification (`/grants/{id}/teardown`), the gateways' control-channel status
//! (`/gateways`), and withdrawing an approval (`/requests/{id}/approval/withdraw`).

use super::extract::{ApiJson, ApiQuery};
use super::limits::{page_response, Page};
use super::types::{ApiError, RequestView};
use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::paging::page_of;
use crate::state::AppState;
use crate::teardown::Check;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use jitgate_core::{GrantState, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/grants/{id}/teardown", get(get_teardown))
        .route("/gateways", get(list_gateways))
        .route("/requests/{id}/approval/withdraw", post(withdraw_approval))
}

#[derive(OpenApi)]
#[openapi(
    paths(get_teardown, list_gateways, withdraw_approval),
    components(schemas(
        TeardownView,
        TeardownWait,
        Check,
        GatewayStatus,
        GatewayCertView,
        WithdrawApprovalBody
    ))
)]
pub struct TeardownDoc;

/// What a `pending` teardown waits for, with no verdict and no alert yet (docs/teardown.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TeardownWait {
    /// A gateway could not be asked yet (not connected, restarting, or too busy to take
    /// the probe); `failed` with an alert if that lasts 30 s (90 s when the gateway
    /// acknowledged and only its probe could not get through).
    Gateways,
    /// The gateways closed the sessions; their `session.ended` events are on their way.
    SessionEnded,
}

/// A grant's teardown: the verdict and every check with its evidence.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TeardownView {
    pub grant_id: String,
    /// The grant's state: `active` (not ended yet), `ending` (teardown under way or
    /// failed) or `closed` (verdict final).
    pub grant_state: GrantState,
    /// `pending` (not run yet), `verified`, `partial` or `failed`.
    pub verdict: String,
    pub attempts: i64,
    /// Why a `pending` teardown that has run is not decided yet (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<TeardownWait>,
    pub checks: Vec<Check>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<Timestamp>,
}

#[utoipa::path(get, path = "/api/v1/grants/{id}/teardown", params(("id" = String, Path)),
    responses((status = 200, body = TeardownView), (status = 404, body = ApiError)))]
pub(crate) async fn get_teardown(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TeardownView>> {
    // The record first, then the grant: the verdict and the grant's close commit together,
    // so a final verdict is never shown next to a grant still `ending`.
    let record = {
        let mut tx = state.store.read().await?;
        tx.get_teardown(&id).await?
    };
    // Visibility is the grant's.
    let grant = crate::service::get_grant_view(&state, &caller, &id)
        .await?
        .grant;
    let view = match record {
        Some(t) => TeardownView {
            grant_id: id,
            grant_state: grant.state,
            waiting_for: if t.report["waiting_for_gateways"] == true {
                Some(TeardownWait::Gateways)
            } else if t.report.get("waiting_for_session_ended").is_some() {
                Some(TeardownWait::SessionEnded)
            } else {
                None
            },
            verdict: t.verdict,
            attempts: t.attempts,
            checks: serde_json::from_value(t.report["checks"].clone()).map_err(|e| {
                ServerError::Internal(format!("stored teardown report of {}: {e}", grant.id))
            })?,
            next_attempt_at: t.next_attempt_at,
            updated_at: Some(t.updated_at),
        },
        None => TeardownView {
            grant_id: id,
            grant_state: grant.state,
            verdict: "pending".into(),
            attempts: 0,
            waiting_for: None,
            checks: Vec::new(),
            next_attempt_at: None,
            updated_at: None,
        },
    };
    Ok(Json(view))
}

/// A gateway known to the server: where it listens and whether its control channel is up.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GatewayStatus {
    pub id: String,
    /// The address it announced, if it ever did.
    pub address: Option<String>,
    pub control_connected: bool,
    /// The server node holding its control channel (several nodes on one PostgreSQL).
    pub attached_to: Option<String>,
    /// Assets it fronts.
    pub assets: Vec<String>,
    /// Its enrolled client certificate (mutual TLS), if any.
    #[serde(default)]
    pub client_certificate: Option<GatewayCertView>,
}

/// A gateway's enrolled client certificate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GatewayCertView {
    pub fingerprint: String,
    #[schema(value_type = String, format = DateTime)]
    pub not_after: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub enrolled_at: Timestamp,
}

#[utoipa::path(get, path = "/api/v1/gateways", params(Page),
    responses((status = 200, body = Vec<GatewayStatus>, description = "one page, by id; `x-next-cursor` names the next")))]
pub(crate) async fn list_gateways(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Response> {
    if !(caller.sees_everything() || caller.is_admin()) {
        return Err(ServerError::Forbidden(
            "the gateway list is for security, audit and admin staff".into(),
        ));
    }
    let page = page.request("gateways", &state.config.limits)?;
    let mut tx = state.store.read().await?;
    let assets = tx.list_assets().await?;
    let attachments = crate::cluster::attachments(&state).await?;
    let mut out = Vec::new();
    for i in tx.list_identities().await? {
        if !i.has_role("gateway") {
            continue;
        }
        let address = crate::control::announced(&mut tx, &i.id)
            .await?
            .map(|h| h.address);
        let client_certificate = tx
            .get_setting(&crate::gateway_ca::record_key(&i.id))
            .await?
            .and_then(|v| serde_json::from_str::<crate::gateway_ca::EnrolmentRecord>(&v).ok())
            .map(|r| GatewayCertView {
                fingerprint: r.fingerprint,
                not_after: r.not_after,
                enrolled_at: r.enrolled_at,
            });
        out.push(GatewayStatus {
            client_certificate,
            control_connected: attachments.contains_key(&i.id),
            attached_to: attachments.get(&i.id).cloned(),
            assets: assets
                .iter()
                .filter(|a| a.gateway.as_deref() == Some(i.id.as_str()))
                .map(|a| a.id.clone())
                .collect(),
            id: i.id,
            address,
        });
    }
    let key = |g: &GatewayStatus| g.id.clone();
    Ok(page_response("gateways", page_of(&page, out, key), key))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawApprovalBody {
    /// Why (recorded in the evidence log).
    #[schema(max_length = 2000)]
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/approval/withdraw", params(("id" = String, Path)),
    request_body = WithdrawApprovalBody,
    responses((status = 200, body = RequestView), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn withdraw_approval(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WithdrawApprovalBody>,
) -> ApiResult<Json<RequestView>> {
    crate::service::withdraw_approval(&state, &caller, &id, &body.reason)
        .await
        .map(Json)
}
