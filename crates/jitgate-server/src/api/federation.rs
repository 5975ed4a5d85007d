//! `POST /auth/federate`: exchange a platform JWT for a session (docs/federation.md). No
//! bearer: the token is the credential. The work is in [`crate::federation::exchange`].

use super::extract::{ApiJson, Peer};
use super::types::{ApiError, FederateBody, LoginResponse};
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new().route("/auth/federate", post(federate))
}

#[derive(OpenApi)]
#[openapi(paths(federate), components(schemas(FederateBody)))]
pub struct FederationDoc;

/// Exchange a JWT issued by a trusted platform (`[[federation.issuers]]`) for a short-lived
/// session of the workload its claims are bound to. Each token is taken once. Refusals:
/// `401` with `token_malformed`, `unknown_issuer`, `token_bad_signature`, `wrong_audience`,
/// `token_expired`, `token_not_yet_valid`, `token_lifetime_too_long`, `claims_not_bound`,
/// `token_replayed`; `403 identity_disabled`; `503 federation_unavailable` when the issuer's
/// keys cannot be fetched; `429` while the caller's address is in backoff or locked out.
#[utoipa::path(post, path = "/api/v1/auth/federate", request_body = FederateBody, security(()),
    responses((status = 200, body = LoginResponse), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 429, body = ApiError),
        (status = 503, body = ApiError)))]
pub(crate) async fn federate(
    State(state): State<AppState>,
    Peer(peer): Peer,
    ApiJson(body): ApiJson<FederateBody>,
) -> ApiResult<Json<LoginResponse>> {
    crate::federation::exchange::federate(&state, &body.token, peer)
        .await
        .map(Json)
}
