//! Post-session attestations (`/grants/{id}/attestation`, `/attestations`) and review
//! campaigns (`/campaigns`). The rules live in `crate::attestations`, `crate::campaigns` and
//! the core; these handlers only parse, page and answer.

use super::extract::{ApiJson, ApiQuery};
use super::limits::{page_response, Page};
use super::types::ApiError;
use crate::attestations::{self, AttestationQuery, AttestationView};
use crate::auth::Caller;
use crate::campaigns::{self, CampaignItemView, CampaignView, OpenCampaignBody};
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use jitgate_core::attestation::AttestationInput;
use jitgate_core::campaign::{DecisionEffect, ItemDecision, ItemKind};
use jitgate_core::teardown::TeardownVerdict;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/grants/{id}/attestation",
            get(get_attestation).post(attest),
        )
        .route("/attestations", get(list_attestations))
        .route("/campaigns", get(list_campaigns).post(open_campaign))
        .route("/campaigns/{id}", get(get_campaign))
        .route("/campaigns/{id}/items/{key}/decision", post(decide_item))
        .route("/campaigns/{id}/close", post(close_campaign))
}

/// The part of the OpenAPI document for these endpoints (merged into `/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(
        attest,
        get_attestation,
        list_attestations,
        open_campaign,
        list_campaigns,
        get_campaign,
        decide_item,
        close_campaign
    ),
    components(schemas(
        AttestationInput,
        AttestationView,
        OpenCampaignBody,
        CampaignView,
        CampaignItemView,
        DecisionBody,
        ItemKind,
        ItemDecision,
        DecisionEffect,
        TeardownVerdict
    ))
)]
pub struct CampaignsDoc;

/// `POST /campaigns/{id}/items/{key}/decision`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    pub decision: ItemDecision,
    /// What was checked and why this decision (required).
    #[schema(max_length = 2000)]
    pub note: String,
}

#[utoipa::path(post, path = "/api/v1/grants/{id}/attestation", params(("id" = String, Path)),
    request_body = AttestationInput,
    responses((status = 201, body = AttestationView), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn attest(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AttestationInput>,
) -> ApiResult<(StatusCode, Json<AttestationView>)> {
    let v = attestations::record(&state, &caller, &id, body).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(get, path = "/api/v1/grants/{id}/attestation", params(("id" = String, Path)),
    responses((status = 200, body = AttestationView), (status = 404, body = ApiError)))]
pub(crate) async fn get_attestation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AttestationView>> {
    Ok(Json(attestations::get(&state, &caller, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/attestations", params(AttestationQuery),
    responses((status = 200, body = [AttestationView], description = "one page, newest grant first; `x-next-cursor` names the next"), (status = 400, body = ApiError)))]
pub(crate) async fn list_attestations(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(mut q): ApiQuery<AttestationQuery>,
) -> ApiResult<Response> {
    let page = Page {
        limit: q.limit,
        cursor: q.cursor.take(),
    }
    .request("attestations", &state.config.limits)?;
    let listed = attestations::list(&state, &caller, q, &page).await?;
    Ok(page_response(
        "attestations",
        listed,
        |a: &AttestationView| a.grant_id.clone(),
    ))
}

#[utoipa::path(post, path = "/api/v1/campaigns", request_body = OpenCampaignBody,
    responses((status = 201, body = CampaignView), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 422, body = ApiError)))]
pub(crate) async fn open_campaign(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<OpenCampaignBody>,
) -> ApiResult<(StatusCode, Json<CampaignView>)> {
    let v = campaigns::open(&state, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(get, path = "/api/v1/campaigns", params(Page),
    responses((status = 200, body = [CampaignView], description = "one page, newest first, without items; `x-next-cursor` names the next"), (status = 403, body = ApiError)))]
pub(crate) async fn list_campaigns(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Page>,
) -> ApiResult<Response> {
    let page = q.request("campaigns", &state.config.limits)?;
    let listed = campaigns::list(&state, &caller, &page).await?;
    Ok(page_response("campaigns", listed, |c: &CampaignView| {
        c.id.clone()
    }))
}

#[utoipa::path(get, path = "/api/v1/campaigns/{id}", params(("id" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 403, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn get_campaign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    Ok(Json(campaigns::get(&state, &caller, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/campaigns/{id}/items/{key}/decision",
    params(("id" = String, Path), ("key" = String, Path)), request_body = DecisionBody,
    responses((status = 200, body = CampaignItemView), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn decide_item(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, key)): Path<(String, String)>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> ApiResult<Json<CampaignItemView>> {
    Ok(Json(
        campaigns::decide(&state, &caller, &id, &key, body.decision, &body.note).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/campaigns/{id}/close", params(("id" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn close_campaign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    Ok(Json(campaigns::close(&state, &caller, &id).await?))
}
