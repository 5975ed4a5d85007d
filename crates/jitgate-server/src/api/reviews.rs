//! Post-session reviews (`/reviews`, `/grants/{id}/review`) and the notification outbox
//! (`/notifications`, security and admins only). The rules live in `crate::reviews`; the
//! outbox is read straight from the store.

use super::extract::{ApiJson, ApiQuery};
use super::limits::{page_response, Page};
use super::types::ApiError;
use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::paging::Paged;
use crate::reviews::{self, ReviewOutcome, ReviewQuery, ReviewReason, ReviewView};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use jitgate_core::Timestamp;
use jitgate_store::NotificationFilter;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reviews", get(list_reviews))
        .route("/grants/{id}/review", post(complete_review))
        .route("/notifications", get(list_notifications))
}

/// The part of the OpenAPI document for these endpoints (merged into `/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(list_reviews, complete_review, list_notifications),
    components(schemas(ReviewView, ReviewBody, ReviewReason, ReviewOutcome, NotificationView))
)]
pub struct ReviewsDoc;

/// `POST /grants/{id}/review`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    pub outcome: ReviewOutcome,
    /// What was checked or found; required for `finding`.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub note: String,
    /// Which review of the grant; default: every open one.
    #[serde(default)]
    pub reason: Option<ReviewReason>,
}

/// One outbox row: a notice on its way to (or delivered at) one webhook.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NotificationView {
    /// Delivery id, as sent in `X-Jitgate-Delivery`.
    pub id: String,
    /// Name of the configured webhook (its URL and key are never shown).
    pub webhook: String,
    /// Notice kind, e.g. `grant.active`.
    pub kind: String,
    /// `pending` or `delivered`.
    pub state: String,
    pub attempts: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When the next attempt is due (pending only).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<Timestamp>,
    /// Why the last attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The notice's headline.
    pub title: String,
    /// The envelope as stored (the JSON body receivers of format `json` get).
    #[schema(value_type = Object)]
    pub payload: Value,
}

#[utoipa::path(get, path = "/api/v1/reviews", params(ReviewQuery),
    responses((status = 200, body = [ReviewView], description = "one page, newest first; `x-next-cursor` names the next"), (status = 400, body = ApiError)))]
pub(crate) async fn list_reviews(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(mut q): ApiQuery<ReviewQuery>,
) -> ApiResult<Response> {
    let page = Page {
        limit: q.limit,
        cursor: q.cursor.take(),
    }
    .request("reviews", &state.config.limits)?;
    let listed = reviews::list_reviews(&state, &caller, q, &page).await?;
    Ok(page_response("reviews", listed, reviews::review_key))
}

#[utoipa::path(post, path = "/api/v1/grants/{id}/review", params(("id" = String, Path)),
    request_body = ReviewBody,
    responses((status = 200, body = [ReviewView]), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError)))]
pub(crate) async fn complete_review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> ApiResult<Json<Vec<ReviewView>>> {
    Ok(Json(
        reviews::complete_review(&state, &caller, &id, body.outcome, &body.note, body.reason)
            .await?,
    ))
}

/// Query options of `GET /notifications`.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    /// `pending` or `delivered`; default: both.
    pub state: Option<String>,
    /// Only this webhook's.
    pub webhook: Option<String>,
    /// Items per page (default `[limits] default_page_size`, 100; at most
    /// `max_page_size`, 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `x-next-cursor` header.
    #[param(max_length = 400)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/notifications", params(NotificationQuery),
    responses((status = 200, body = [NotificationView], description = "one page, newest first; `x-next-cursor` names the next"), (status = 403, body = ApiError)))]
pub(crate) async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> ApiResult<Response> {
    if !(caller.is_admin() || caller.identity.has_role("security")) {
        return Err(ServerError::Forbidden(format!(
            "{} lacks the `security` or `admin` role needed to see outgoing notifications",
            caller.id()
        )));
    }
    let delivered = match q.state.as_deref() {
        None => None,
        Some("pending") => Some(false),
        Some("delivered") => Some(true),
        Some(other) => {
            return Err(ServerError::BadRequest(format!(
                "unknown notification state {other:?}; use pending or delivered"
            )))
        }
    };
    let page = Page {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request("notifications", &state.config.limits)?;
    let mut tx = state.store.read().await?;
    // Every row is visible to whoever may list: one read of one more than the page.
    let mut rows = tx
        .list_notifications(&NotificationFilter {
            delivered,
            webhook: q.webhook,
            after: page.after.clone(),
            limit: page.limit as i64 + 1,
        })
        .await?;
    let more = rows.len() > page.limit;
    rows.truncate(page.limit);
    let items = rows
        .into_iter()
        .map(|n| NotificationView {
            state: crate::notify::delivery_state(&n).to_string(),
            next_attempt_at: n.delivered_at.is_none().then_some(n.next_attempt_at),
            title: n
                .payload
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            id: n.id,
            webhook: n.webhook,
            kind: n.kind,
            attempts: n.attempts,
            created_at: n.created_at,
            delivered_at: n.delivered_at,
            last_error: n.last_error,
            payload: n.payload,
        })
        .collect();
    Ok(page_response(
        "notifications",
        Paged { items, more },
        |n: &NotificationView| n.id.clone(),
    ))
}
