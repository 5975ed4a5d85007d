//! `GET /metrics` (Prometheus, OpenMetrics text) and `GET /readyz` over the node's
//! [`crate::metrics::Metrics`].

use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use std::sync::atomic::Ordering;

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    if !(caller.sees_everything() || caller.is_admin()) {
        return Err(ServerError::Forbidden(
            "metrics are for security, audit and admin staff (and their monitoring's API key)"
                .into(),
        ));
    }
    let m = &state.metrics;
    {
        let mut tx = state.store.read().await?;
        m.grants.clear();
        for (grant_state, n) in tx.count_grants_by_state().await? {
            m.grants.get_or_create(&vec![("state", grant_state)]).set(n);
        }
    }
    m.gateways.clear();
    for (gateway, node) in crate::cluster::attachments(&state).await? {
        m.gateways
            .get_or_create(&vec![("gateway", gateway), ("node", node)])
            .set(1);
    }
    let mut text = String::new();
    encode(&mut text, &m.registry)
        .map_err(|e| ServerError::Internal(format!("encoding metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `GET /readyz`: 200 when this node can serve, 503 naming what is wrong.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    match state.store.read().await {
        Ok(mut tx) => {
            if let Err(e) = tx.chain_tip().await {
                problems.push(format!("database: {e}"));
            }
        }
        Err(e) => problems.push(format!("database: {e}")),
    }
    let cluster = state.store.backend() == jitgate_store::Backend::Postgres;
    if cluster && !state.metrics.listening.load(Ordering::Relaxed) {
        problems.push(
            "not listening for the other nodes (revocations from them would not reach this node's gateways)"
                .into(),
        );
    }
    let body = serde_json::json!({
        "ready": problems.is_empty(),
        "node": state.node.id,
        "problems": problems,
    });
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
