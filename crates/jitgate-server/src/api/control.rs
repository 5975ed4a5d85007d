//! `GET /api/v1/gateway/control`: the gateways' control channel, a WebSocket authenticated
//! with the gateway's API key, carried by [`crate::control::ControlHub`].
//!
//! On every connection the server first sends the list of ended grants whose credentials
//! could still be valid and that involve the gateway's assets (`ControlDown::Sync`): a
//! gateway that was down or cut off during a revocation catches up before anything else.

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use jitgate_gateway::wire::{ControlDown, ControlUp};
use std::time::Duration;

/// How often the server pings each gateway (the gateway treats 30 s of silence as a loss).
const PING_EVERY: Duration = Duration::from_secs(10);

/// `GET /api/v1/gateway/control`: upgrade to the control channel (gateways only).
pub(crate) async fn control(
    State(state): State<AppState>,
    caller: Caller,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    caller.require_gateway()?;
    let gateway = caller.id().to_string();
    Ok(ws.on_upgrade(move |socket| serve(state, gateway, socket)))
}

async fn serve(state: AppState, gateway: String, socket: WebSocket) {
    let (id, mut down) = state.control.add(&gateway);
    crate::cluster::gateway_attached(&state, &gateway).await;
    tracing::info!(%gateway, node = %state.node.id, "gateway control channel connected");
    let (mut sink, mut stream) = socket.split();
    // Catch-up first: every ended grant the gateway must still refuse, or acknowledge to a
    // teardown still under way.
    match crate::revocations::revocations_for_gateway(&state, &gateway).await {
        Ok(revoked) => {
            if let Ok(text) = serde_json::to_string(&ControlDown::Sync { revoked }) {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    state.control.remove(&gateway, id);
                    crate::cluster::gateway_detached(&state, &gateway).await;
                    return;
                }
            }
        }
        Err(e) => tracing::error!(%gateway, error = %e, "cannot list revocations for the sync"),
    }
    state
        .teardown_retry_now
        .store(true, std::sync::atomic::Ordering::SeqCst);
    state.teardown_wake.notify_one();
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            Some(msg) = down.recv() => {
                let Ok(text) = serde_json::to_string(&msg) else { continue };
                if sink.send(Message::Text(text.into())).await.is_err() { break; }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<ControlUp>(&text) {
                    Ok(ControlUp::Ack(ack)) => {
                        // Measured first, so whoever waits for the acknowledgement finds it
                        // counted (one point read per acknowledgement).
                        observe_cut(&state, &ack).await;
                        state.control.record_ack(&gateway, ack.clone());
                        // Off the channel's loop: the teardown may run on another node.
                        let (state, gateway) = (state.clone(), gateway.clone());
                        tokio::spawn(async move {
                            crate::cluster::share_ack(&state, &gateway, &ack).await;
                        });
                    }
                    Err(e) => tracing::warn!(%gateway, error = %e, "control channel: message ignored"),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() { break; }
            }
            _ = shutdown.changed() => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
        }
    }
    state.control.remove(&gateway, id);
    crate::cluster::gateway_detached(&state, &gateway).await;
    tracing::info!(%gateway, "gateway control channel closed");
}

/// Revocation-to-cut (or expiry-to-cut) of an acknowledgement that closed sessions, for the
/// metrics: from the grant's end (its expiry, for an expired grant) to now.
async fn observe_cut(state: &AppState, ack: &jitgate_gateway::wire::RevocationAck) {
    if ack.sessions.is_empty() {
        return;
    }
    let Ok(mut tx) = state.store.read().await else {
        return;
    };
    let Ok(Some(g)) = tx.get_grant(&ack.grant_id).await else {
        return;
    };
    let expired = matches!(g.end_reason, Some(jitgate_core::EndReason::Expired));
    let from = if expired {
        Some(g.expires_at)
    } else {
        g.ended_at
    };
    if let Some(from) = from {
        let ms = (state.clock.now() - from).num_milliseconds();
        state.metrics.cut_acknowledged(expired, ms as f64 / 1000.0);
    }
}
