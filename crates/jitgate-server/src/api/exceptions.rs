//! Standing exceptions (`/exceptions`): file, list, show, re-validate, end. The work is in
//! `crate::exceptions`; the rules in `jitgate_core::exception`.

use super::extract::{ApiJson, ApiQuery};
use super::limits::{page_response, Page};
use super::types::{ApiError, EndExceptionBody, NewExceptionBody, RevalidateBody};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::exceptions::{self, ExceptionQuery};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use jitgate_core::exception::{ExceptionState, ExceptionSummary};
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/exceptions", get(list_exceptions).post(create_exception))
        .route("/exceptions/{id}", get(get_exception))
        .route("/exceptions/{id}/revalidate", post(revalidate))
        .route("/exceptions/{id}/end", post(end_exception))
}

/// The part of the OpenAPI document for these endpoints (merged into `/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(
        create_exception,
        list_exceptions,
        get_exception,
        revalidate,
        end_exception
    ),
    components(schemas(
        ExceptionSummary,
        ExceptionState,
        NewExceptionBody,
        RevalidateBody,
        EndExceptionBody
    ))
)]
pub struct ExceptionsDoc;

#[utoipa::path(post, path = "/api/v1/exceptions", request_body = NewExceptionBody,
    responses((status = 201, body = ExceptionSummary, description = "filed; `state` is `denied` when policy said no (see `state_reason`), `pending` while it waits for approvals"),
        (status = 403, body = ApiError, description = "`separation_of_duties`: the owner is the subject or tied to it by ownership"),
        (status = 404, body = ApiError), (status = 422, body = ApiError, description = "`invalid_exception`, `invalid_scope`, ...")))]
pub(crate) async fn create_exception(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewExceptionBody>,
) -> ApiResult<(StatusCode, Json<ExceptionSummary>)> {
    let limits = &state.config.limits;
    let rules: usize = body
        .scope
        .iter()
        .map(|s| (s.modbus.len() + s.dnp3.len() + s.ssh.len()).max(1))
        .sum();
    jitgate_core::governance::check_scope_size(body.scope.len(), rules, limits.max_scope_items)?;
    let summary = exceptions::request_exception(&state, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(summary)))
}

#[utoipa::path(get, path = "/api/v1/exceptions", params(ExceptionQuery),
    responses((status = 200, body = [ExceptionSummary], description = "one page, newest first; `x-next-cursor` names the next"), (status = 400, body = ApiError)))]
pub(crate) async fn list_exceptions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(mut q): ApiQuery<ExceptionQuery>,
) -> ApiResult<Response> {
    let page = Page {
        limit: q.limit,
        cursor: q.cursor.take(),
    }
    .request("exceptions", &state.config.limits)?;
    let listed = exceptions::list_exceptions(&state, &caller, q, &page).await?;
    Ok(page_response(
        "exceptions",
        listed,
        exceptions::exception_key,
    ))
}

#[utoipa::path(get, path = "/api/v1/exceptions/{id}", params(("id" = String, Path)),
    responses((status = 200, body = ExceptionSummary), (status = 404, body = ApiError)))]
pub(crate) async fn get_exception(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ExceptionSummary>> {
    Ok(Json(exceptions::get_exception(&state, &caller, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/exceptions/{id}/revalidate", params(("id" = String, Path)),
    request_body = RevalidateBody,
    responses((status = 200, body = ExceptionSummary, description = "re-validated: `next_revalidation` moved to now + interval"),
        (status = 403, body = ApiError, description = "`forbidden` (not the owner nor security / admin) or `separation_of_duties` (the subject or tied to it)"),
        (status = 404, body = ApiError),
        (status = 409, body = ApiError, description = "`revalidation_overdue` or `wrong_state` (not active)"),
        (status = 422, body = ApiError)))]
pub(crate) async fn revalidate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RevalidateBody>,
) -> ApiResult<Json<ExceptionSummary>> {
    Ok(Json(
        exceptions::revalidate(&state, &caller, &id, &body.note).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/exceptions/{id}/end", params(("id" = String, Path)),
    request_body = EndExceptionBody,
    responses((status = 200, body = ExceptionSummary, description = "ended: an active exception's grant is revoked (gateways told before this answer), a pending one withdrawn"),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError, description = "`wrong_state`: it has ended already"),
        (status = 422, body = ApiError)))]
pub(crate) async fn end_exception(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EndExceptionBody>,
) -> ApiResult<Json<ExceptionSummary>> {
    Ok(Json(
        exceptions::end_as_caller(&state, &caller, &id, &body.reason).await?,
    ))
}
