//! The gateway's `/metrics` (Prometheus, OpenMetrics text) and `/readyz`, on their own
//! listener (`metrics_listen`, off by default: bind it to a management address only — it
//! answers without authentication, and says nothing beyond counts and the server in use).

use crate::runtime::Gateway;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The metrics text of `gw` now.
pub fn render(gw: &Gateway) -> String {
    let mut registry = Registry::with_prefix("jitgate_gateway");
    let live = Gauge::<i64>::default();
    live.set(gw.live.count() as i64);
    registry.register("live_sessions", "Sessions open now, every protocol", live);
    let stats = &gw.events.stats;
    let operations = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
    operations
        .get_or_create(&vec![("verdict", "allowed")])
        .inc_by(stats.operations_allowed.load(Ordering::Relaxed));
    operations
        .get_or_create(&vec![("verdict", "refused")])
        .inc_by(stats.operations_refused.load(Ordering::Relaxed));
    registry.register(
        "operations",
        "Operations checked against grants since the gateway started",
        operations,
    );
    let waiting = Gauge::<i64>::default();
    waiting.set(stats.waiting.load(Ordering::Relaxed) as i64);
    registry.register(
        "events_waiting",
        "Events not yet acknowledged by the server (memory and spool file)",
        waiting,
    );
    let control = Family::<Vec<(&'static str, String)>, Gauge>::default();
    control
        .get_or_create(&vec![("server", gw.api.server())])
        .set(i64::from(gw.control_connected.load(Ordering::SeqCst)));
    registry.register(
        "control_connected",
        "1 while the control channel to the server node in use is up",
        control,
    );
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &registry);
    text
}

/// Serve `/metrics` and `/readyz` on `listener` until `stop`.
pub async fn serve(
    gw: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/readyz", axum::routing::get(readyz))
        .with_state(gw);
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "metrics listener failed");
    }
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&gw),
    )
        .into_response()
}

/// Ready when the control channel to a server node is up: without it revocations cannot
/// arrive, so a load balancer should send new sessions elsewhere.
async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    if gw.control_connected.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no control channel to any server node\n",
        )
            .into_response()
    }
}
