//! `GET /reports/compliance`: the signed compliance report of a period and a site, as JSON
//! (the signed report) or as its printable page. The work is in [`crate::compliance`].

use super::extract::ApiQuery;
use super::types::ApiError;
use crate::auth::Caller;
use crate::compliance::{compliance_report, ReportScope};
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use jitgate_core::Timestamp;
use serde::Deserialize;
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new().route("/reports/compliance", get(get_compliance_report))
}

/// The part of the OpenAPI document for these endpoints (merged into `/openapi.json`).
#[derive(OpenApi)]
#[openapi(paths(get_compliance_report))]
pub struct ComplianceDoc;

/// The two forms of the report.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// The signed report (`jitgate-compliance-report/1`).
    #[default]
    Json,
    /// The printable page, which carries the signed report and verifies as a whole.
    Html,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComplianceQuery {
    /// Period start (RFC 3339), inclusive. With `to`; without both, the last full calendar
    /// month (UTC).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// Period end (RFC 3339), exclusive; not in the future; at most 366 days after `from`.
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    /// Restrict to the grants naming an asset of this site (inventory site id).
    #[param(max_length = 200)]
    site: Option<String>,
    #[serde(default)]
    format: ReportFormat,
}

/// The compliance report of a period (and a site): counts and trends of grants, exposure,
/// teardowns, break-glass reviews and enforcement, mapped to NIST CSF 2.0, NIST SP 800-207
/// and the OWASP NHI Top 10, signed with the evidence key over a checkpoint signed now.
/// Security, audit and admin roles. Verify offline: `jitgate evidence verify-report`.
#[utoipa::path(get, path = "/api/v1/reports/compliance", params(ComplianceQuery),
    responses((status = 200, description = "the signed report (JSON) or its page (HTML)",
               content((Object = "application/json"), (String = "text/html"))),
              (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError),
              (status = 409, body = ApiError), (status = 500, body = ApiError)))]
pub(crate) async fn get_compliance_report(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ComplianceQuery>,
) -> ApiResult<Response> {
    let (from, to) = match (q.from, q.to) {
        (Some(from), Some(to)) => (from, to),
        (None, None) => crate::compliance::last_full_month(state.clock.now()),
        _ => {
            return Err(crate::error::ServerError::BadRequest(
                "give both `from` and `to`, or neither for the last full calendar month".into(),
            ))
        }
    };
    let signed = compliance_report(
        &state,
        &caller,
        ReportScope {
            from,
            to,
            site: q.site,
        },
    )
    .await?;
    Ok(match q.format {
        ReportFormat::Json => (
            [(header::CONTENT_TYPE, "application/json")],
            signed.to_json(),
        )
            .into_response(),
        ReportFormat::Html => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                // No scripts run on the page (its data block is JSON); keep it that way.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'",
                ),
            ],
            signed.to_html(),
        )
            .into_response(),
    })
}
