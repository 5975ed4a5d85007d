//! The gateways' control channels as the rest of the server sees them. [`ControlHub`] knows
//! which gateways are connected, pushes revocations to them the moment a grant ends, and
//! collects their acknowledgements for the teardown verification. The WebSocket itself
//! (`GET /api/v1/gateway/control`) is served by [`crate::api::control`]; nothing here is HTTP.

use jitgate_gateway::wire::{ControlDown, Revocation, RevocationAck};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// The settings key under which a gateway's announcement (`POST /gateway/hello`: address,
/// TLS fingerprint) is kept.
pub fn gateway_key(id: &str) -> String {
    format!("gateway/{id}")
}

/// What gateway `id` last announced (`POST /gateway/hello`); `None` before its first hello.
pub async fn announced(
    tx: &mut jitgate_store::Tx,
    id: &str,
) -> crate::error::ApiResult<Option<jitgate_gateway::wire::GatewayHello>> {
    Ok(tx
        .get_setting(&gateway_key(id))
        .await?
        .and_then(|v| serde_json::from_str(&v).ok()))
}

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
        self.send(gateway, &ControlDown::Revoke(r.clone()))
    }

    /// Send a message to one gateway's connections; `false` if it is not connected here.
    pub fn send(&self, gateway: &str, msg: &ControlDown) -> bool {
        let conns = self.lock_conns();
        let mut sent = false;
        for (_, tx) in conns.get(gateway).into_iter().flatten() {
            sent |= tx.send(msg.clone()).is_ok();
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

    pub(crate) fn record_ack(&self, gateway: &str, ack: RevocationAck) {
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

    pub(crate) fn add(&self, gateway: &str) -> (u64, mpsc::UnboundedReceiver<ControlDown>) {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock_conns()
            .entry(gateway.to_string())
            .or_default()
            .push((id, tx));
        (id, rx)
    }

    pub(crate) fn remove(&self, gateway: &str, id: u64) {
        let mut conns = self.lock_conns();
        if let Some(v) = conns.get_mut(gateway) {
            v.retain(|(c, _)| *c != id);
        }
    }
}
