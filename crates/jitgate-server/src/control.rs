//! The server's end of the gateways' control channel (`GET /api/v1/gateway/control`, a
//! WebSocket authenticated with the gateway's API key). [`ControlHub`] knows which gateways
//! are connected, pushes revocations to them the moment a grant ends, and collects their
//! acknowledgements for the teardown verification.
//!
//! On every connection the server first sends the list of ended grants whose credentials
//! could still be valid and that involve the gateway's assets ([`ControlDown::Sync`]): a
//! gateway that was down or cut off during a revocation catches up before anything else.

use crate::api::gateway::require_gateway;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use jitgate_gateway::wire::{ControlDown, ControlUp, Revocation, RevocationAck};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// How often the server pings each gateway (the gateway treats 30 s of silence as a loss).
const PING_EVERY: Duration = Duration::from_secs(10);

/// Open connections per gateway id: (connection id, where to send its messages).
type Connections = HashMap<String, Vec<(u64, mpsc::UnboundedSender<ControlDown>)>>;

#[derive(Default)]
pub struct ControlHub {
    next_conn: AtomicU64,
    /// Connected gateways: id → (connection id, sender) — a gateway may briefly have two
    /// connections while it reconnects; revocations go to all of them.
    conns: Mutex<Connections>,
    /// Latest acknowledgement per (gateway, grant).
    acks: Mutex<HashMap<(String, String), RevocationAck>>,
    ack_arrived: Notify,
}

impl ControlHub {
    fn lock_conns(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_connected(&self, gateway: &str) -> bool {
        self.lock_conns()
            .get(gateway)
            .is_some_and(|v| !v.is_empty())
    }

    pub fn connected(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .lock_conns()
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Push a revocation to a gateway; `false` if it is not connected (the sync on its next
    /// connection delivers it, and the teardown retries until acknowledged).
    pub fn revoke(&self, gateway: &str, r: &Revocation) -> bool {
        let conns = self.lock_conns();
        let mut sent = false;
        for (_, tx) in conns.get(gateway).into_iter().flatten() {
            sent |= tx.send(ControlDown::Revoke(r.clone())).is_ok();
        }
        sent
    }

    /// Send a message to every connected gateway; returns the ids of those it reached.
    pub fn broadcast(&self, msg: &ControlDown) -> Vec<String> {
        let conns = self.lock_conns();
        let mut reached: Vec<String> = conns
            .iter()
            .filter(|(_, senders)| {
                senders
                    .iter()
                    .fold(false, |sent, (_, tx)| tx.send(msg.clone()).is_ok() || sent)
            })
            .map(|(id, _)| id.clone())
            .collect();
        reached.sort();
        reached
    }

    pub fn ack(&self, gateway: &str, grant: &str) -> Option<RevocationAck> {
        self.acks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(gateway.to_string(), grant.to_string()))
            .cloned()
    }

    /// Wait for a gateway's acknowledgement of a grant's revocation, up to `timeout`.
    pub async fn wait_ack(
        &self,
        gateway: &str,
        grant: &str,
        timeout: Duration,
    ) -> Option<RevocationAck> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.ack_arrived.notified();
            if let Some(a) = self.ack(gateway, grant) {
                return Some(a);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.ack(gateway, grant);
            }
        }
    }

    fn record_ack(&self, gateway: &str, ack: RevocationAck) {
        self.acks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((gateway.to_string(), ack.grant_id.clone()), ack);
        self.ack_arrived.notify_waiters();
    }

    /// Forget acknowledgements of finished teardowns (memory stays bounded).
    pub fn forget_grant(&self, grant: &str) {
        self.acks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(_, g), _| g != grant);
    }

    fn add(&self, gateway: &str) -> (u64, mpsc::UnboundedReceiver<ControlDown>) {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock_conns()
            .entry(gateway.to_string())
            .or_default()
            .push((id, tx));
        (id, rx)
    }

    fn remove(&self, gateway: &str, id: u64) {
        let mut conns = self.lock_conns();
        if let Some(v) = conns.get_mut(gateway) {
            v.retain(|(c, _)| *c != id);
        }
    }
}

/// `GET /api/v1/gateway/control`: upgrade to the control channel (gateways only).
pub(crate) async fn control(
    State(state): State<AppState>,
    caller: Caller,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    require_gateway(&caller)?;
    let gateway = caller.id().to_string();
    Ok(ws.on_upgrade(move |socket| serve(state, gateway, socket)))
}

async fn serve(state: AppState, gateway: String, socket: WebSocket) {
    let (id, mut down) = state.control.add(&gateway);
    tracing::info!(%gateway, "gateway control channel connected");
    let (mut sink, mut stream) = socket.split();
    // Catch-up first: every ended grant the gateway must still refuse.
    match crate::teardown::revocations_for_gateway(&state, &gateway).await {
        Ok(revoked) => {
            if let Ok(text) = serde_json::to_string(&ControlDown::Sync { revoked }) {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    state.control.remove(&gateway, id);
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
                    Ok(ControlUp::Ack(ack)) => state.control.record_ack(&gateway, ack),
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
    tracing::info!(%gateway, "gateway control channel closed");
}
