//! Gateways' client certificates over the API: `POST /gateway/enrol` (first enrolment with the
//! API key alone, renewal with the current certificate) and
//! `POST /gateways/{id}/reset-enrolment` (administrators). The rules are in
//! `crate::gateway_auth` and `jitgate_core::gateway_enrolment`.

use super::extract::{ApiJson, Enrolling};
use super::types::ApiError;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use jitgate_gateway::enrolment::{EnrolRequest, Enrolled};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/gateway/enrol", post(enrol))
        .route("/gateways/{id}/reset-enrolment", post(reset_enrolment))
}

/// The part of the OpenAPI document for these endpoints (merged into `/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(enrol, reset_enrolment),
    components(schemas(EnrolRequest, Enrolled, ResetEnrolmentBody, EnrolmentReset))
)]
pub struct EnrolDoc;

/// `POST /gateways/{id}/reset-enrolment`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetEnrolmentBody {
    /// Why (recorded in the evidence log).
    #[schema(max_length = 2000)]
    pub reason: String,
}

/// What a reset forgot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentReset {
    pub gateway_id: String,
    /// The fingerprint of the certificate that is no longer accepted, if one was enrolled.
    pub previous_fingerprint: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/gateway/enrol", request_body = EnrolRequest,
    responses((status = 200, body = Enrolled), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 409, body = ApiError)))]
pub(crate) async fn enrol(
    State(state): State<AppState>,
    enrolling: Enrolling,
    ApiJson(body): ApiJson<EnrolRequest>,
) -> ApiResult<Json<Enrolled>> {
    let enrolled = crate::gateway_auth::enrol(
        &state,
        &enrolling.caller,
        enrolling.client_cert.as_ref(),
        &enrolling.source,
        &body.csr,
    )
    .await?;
    Ok(Json(enrolled))
}

#[utoipa::path(post, path = "/api/v1/gateways/{id}/reset-enrolment",
    params(("id" = String, Path, description = "the gateway identity")),
    request_body = ResetEnrolmentBody,
    responses((status = 200, body = EnrolmentReset), (status = 400, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn reset_enrolment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResetEnrolmentBody>,
) -> ApiResult<Json<EnrolmentReset>> {
    let previous = crate::gateway_auth::reset(&state, &caller, &id, &body.reason).await?;
    Ok(Json(EnrolmentReset {
        gateway_id: id,
        previous_fingerprint: previous.map(|r| r.fingerprint),
    }))
}
