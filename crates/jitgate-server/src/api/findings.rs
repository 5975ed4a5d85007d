//! `/findings` and `/standing`: the findings and the standing-privilege inventory of a
//! period (`crate::findings::period_findings`; the rules are `jitgate_core::findings`).
//! They name other people's behaviour, so only those who see everything (security,
//! auditors) may list them.

use super::extract::ApiQuery;
use super::limits::{page_response, Page};
use super::types::ApiError;
use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::paging::{page_of, PageRequest};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use jitgate_core::findings::{
    EvidenceRefs, Finding, FindingKind, PeriodReport, Severity, StandingItem, StandingKind,
};
use jitgate_core::Timestamp;
use serde::Deserialize;
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/findings", get(list_findings))
        .route("/standing", get(list_standing))
}

/// The part of the OpenAPI document for these endpoints (merged into `/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(list_findings, list_standing),
    components(schemas(
        Finding,
        FindingKind,
        Severity,
        EvidenceRefs,
        StandingItem,
        StandingKind
    ))
)]
pub struct FindingsDoc;

/// Days a period covers when `from` is not given.
const DEFAULT_DAYS: i64 = 30;

/// Query options of `GET /findings` and `GET /standing`.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    /// Start of the period, RFC 3339 (default: 30 days before `to`).
    pub from: Option<String>,
    /// End of the period (excluded), RFC 3339 (default: now).
    pub to: Option<String>,
    /// Items per page (default `[limits] default_page_size`, 100; at most
    /// `max_page_size`, 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `x-next-cursor` header.
    #[param(max_length = 400)]
    pub cursor: Option<String>,
}

fn parse_time(name: &str, text: &str) -> Result<Timestamp, ServerError> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            ServerError::BadRequest(format!(
                "{name}={text:?} is not an RFC 3339 time ({e}); write e.g. 2026-11-01T00:00:00Z"
            ))
        })
}

/// The period a query names.
pub fn period_of(q: &PeriodQuery, now: Timestamp) -> Result<(Timestamp, Timestamp), ServerError> {
    let to = match &q.to {
        Some(t) => parse_time("to", t)?,
        None => now,
    };
    let from = match &q.from {
        Some(f) => parse_time("from", f)?,
        None => to - chrono::Duration::days(DEFAULT_DAYS),
    };
    Ok((from, to))
}

fn require_sees_everything(caller: &Caller) -> Result<(), ServerError> {
    if caller.sees_everything() {
        Ok(())
    } else {
        Err(ServerError::Forbidden(format!(
            "{} lacks the `security` or `auditor` role needed to see findings about other people",
            caller.id()
        )))
    }
}

/// What both lists begin with: who may see them, the page asked of `list`, and the
/// findings and standing inventory of the period asked.
async fn period_report(
    state: &AppState,
    caller: &Caller,
    q: &mut PeriodQuery,
    list: &str,
) -> ApiResult<(PageRequest, PeriodReport)> {
    require_sees_everything(caller)?;
    let page = Page {
        limit: q.limit,
        cursor: q.cursor.take(),
    }
    .request(list, &state.config.limits)?;
    let (from, to) = period_of(q, state.clock.now())?;
    let report = crate::findings::period_findings(state, from, to).await?;
    Ok((page, report))
}

#[utoipa::path(get, path = "/api/v1/findings", params(PeriodQuery),
    responses((status = 200, body = [Finding], description = "one page, by id; `x-next-cursor` names the next"),
        (status = 400, body = ApiError), (status = 403, body = ApiError)))]
pub(crate) async fn list_findings(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(mut q): ApiQuery<PeriodQuery>,
) -> ApiResult<Response> {
    let (page, report) = period_report(&state, &caller, &mut q, "findings").await?;
    let key = |f: &Finding| f.id.clone();
    Ok(page_response(
        "findings",
        page_of(&page, report.findings, key),
        key,
    ))
}

#[utoipa::path(get, path = "/api/v1/standing", params(PeriodQuery),
    responses((status = 200, body = [StandingItem], description = "one page, by id; `x-next-cursor` names the next"),
        (status = 400, body = ApiError), (status = 403, body = ApiError)))]
pub(crate) async fn list_standing(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(mut q): ApiQuery<PeriodQuery>,
) -> ApiResult<Response> {
    let (page, report) = period_report(&state, &caller, &mut q, "standing").await?;
    let key = |s: &StandingItem| s.id.clone();
    Ok(page_response(
        "standing",
        page_of(&page, report.standing, key),
        key,
    ))
}
