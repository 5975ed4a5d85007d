//! Passkeys (WebAuthn) for step-up: enrolment, list and removal under `/auth/passkeys`, and
//! the step-up ceremony bound to one request (`/requests/{id}/step-up/passkey`), whose
//! answer is sent with the approval (`ApproveBody::passkey`). The work is
//! `crate::passkeys`; the rules are `jitgate_core::passkey`.

use super::extract::ApiJson;
use super::types::{
    ApiError, PasskeyAssertion, PasskeyCeremony, PasskeyRegisterBody, PasskeyRegisterFinishBody,
    PasskeyRemoveBody, PasskeyStepUpBody, PasskeyView,
};
use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use jitgate_core::CoreError;
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/passkeys", get(list_passkeys))
        .route("/auth/passkeys/register/begin", post(begin_registration))
        .route("/auth/passkeys/register/finish", post(finish_registration))
        .route("/auth/passkeys/{id}/remove", post(remove_passkey))
        .route("/requests/{id}/step-up/passkey", post(begin_step_up))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        list_passkeys,
        begin_registration,
        finish_registration,
        remove_passkey,
        begin_step_up
    ),
    components(schemas(
        PasskeyAssertion,
        PasskeyCeremony,
        PasskeyView,
        PasskeyRegisterBody,
        PasskeyRegisterFinishBody,
        PasskeyRemoveBody,
        PasskeyStepUpBody
    ))
)]
pub struct PasskeysDoc;

/// The caller's passkeys, by credential id, paged like every list.
#[utoipa::path(get, path = "/api/v1/auth/passkeys", params(super::limits::Page),
    responses((status = 200, body = Vec<PasskeyView>, description = "the caller's passkeys, one page by credential id; `x-next-cursor` names the next")))]
async fn list_passkeys(
    State(state): State<AppState>,
    caller: Caller,
    super::extract::ApiQuery(page): super::extract::ApiQuery<super::limits::Page>,
) -> ApiResult<axum::response::Response> {
    let page = page.request("auth/passkeys", &state.config.limits)?;
    let mut all = crate::passkeys::list(&state, &caller).await?;
    all.sort_by(|a, b| a.credential_id.cmp(&b.credential_id));
    let mut items: Vec<PasskeyView> = all
        .into_iter()
        .filter(|p| page.after.as_ref().is_none_or(|a| p.credential_id > *a))
        .collect();
    let more = items.len() > page.limit;
    items.truncate(page.limit);
    let next = more
        .then(|| items.last().map(|p| p.credential_id.clone()))
        .flatten();
    Ok(super::limits::page_response_after(
        "auth/passkeys",
        items,
        next,
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/passkeys/register/begin", request_body = PasskeyRegisterBody,
    responses((status = 200, body = PasskeyCeremony), (status = 403, body = ApiError), (status = 422, body = ApiError)))]
async fn begin_registration(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PasskeyRegisterBody>,
) -> ApiResult<Json<PasskeyCeremony>> {
    crate::passkeys::begin_registration(&state, &caller, &body.name)
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/api/v1/auth/passkeys/register/finish", request_body = PasskeyRegisterFinishBody,
    responses((status = 201, body = PasskeyView), (status = 401, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
async fn finish_registration(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PasskeyRegisterFinishBody>,
) -> ApiResult<(StatusCode, Json<PasskeyView>)> {
    let v =
        crate::passkeys::finish_registration(&state, &caller, &body.challenge_id, body.credential)
            .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(post, path = "/api/v1/auth/passkeys/{id}/remove", params(("id" = String, Path, description = "the credential id")),
    request_body = PasskeyRemoveBody,
    responses((status = 204, description = "removed"), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
async fn remove_passkey(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasskeyRemoveBody>,
) -> ApiResult<StatusCode> {
    crate::passkeys::remove(&state, &caller, &id, body.totp.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/step-up/passkey", params(("id" = String, Path)),
    request_body = PasskeyStepUpBody,
    responses((status = 200, body = PasskeyCeremony), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn begin_step_up(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasskeyStepUpBody>,
) -> ApiResult<Json<PasskeyCeremony>> {
    // Only a request the caller may see, and only for the scope they reviewed.
    let view = crate::service::get_request_view(&state, &caller, &id).await?;
    let r = &view.request;
    if body.scope_digest != r.scope_digest {
        return Err(ServerError::Core(CoreError::ScopeDigestMismatch {
            given: body.scope_digest,
            actual: r.scope_digest.clone(),
        }));
    }
    crate::passkeys::begin_step_up(&state, &caller, &r.id, &r.scope_digest)
        .await
        .map(Json)
}
