//! Several `jitgate serve` nodes on one PostgreSQL database (docs/cluster.md).
//!
//! Each gateway holds its control channel with one node; a grant may end on any node. So:
//!
//! - **Revocations cross nodes at once.** The node that ended grants announces them
//!   (`NOTIFY jitgate_revoked`, [`crate::revocations::announce_revoked`]) right after its commit; every node's
//!   [`listen`] task pushes them to the gateways it holds. The database stays the source of
//!   truth: after the listening connection was lost, a node sends each gateway it holds the
//!   full list of ended grants again (the same `Sync` a connecting gateway gets), and the
//!   teardown of every ended grant re-announces it until its gateways acknowledge.
//! - **Acknowledgements cross nodes.** A gateway acknowledges to its node, which stores the
//!   acknowledgement and announces it (`NOTIFY jitgate_acked`); the teardown, on whichever
//!   node runs it, reads it from there ([`wait_ack`]).
//! - **Liveness**: each node beats every [`HEARTBEAT`] (`cluster_nodes`), and records which
//!   gateways it holds (`gateway_links`), so any node can say where a gateway is attached.
//!
//! On SQLite there is one node: nothing here runs, and [`wait_ack`] is the control hub's.

use crate::state::AppState;
use jitgate_gateway::wire::{ControlDown, RevocationAck};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Notifications from other nodes handled at once (each may read the database); more wait,
/// so a flood of them holds at most this many of the pool's connections.
const NOTIFICATION_HANDLERS: usize = 4;

/// Channel of stored acknowledgements (payload: [`Acked`]).
pub const ACKED_CHANNEL: &str = "jitgate_acked";
/// How often a node records that it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node not seen for this long is taken as gone (its gateway links are stale).
pub const NODE_STALE_AFTER: Duration = Duration::from_secs(10);
/// While a teardown waits for an acknowledgement that another node may receive, it also
/// reads the stored acknowledgements this often, in case a notification was lost.
const ACK_REREAD: Duration = Duration::from_millis(250);

/// Payload on [`ACKED_CHANNEL`].
#[derive(Debug, Serialize, Deserialize)]
struct Acked {
    node: String,
    gateway: String,
    grant: String,
}

pub(crate) fn is_cluster(state: &AppState) -> bool {
    state.store.backend() == jitgate_store::Backend::Postgres
}

/// Record a gateway's acknowledgement where every node sees it, then tell them.
pub async fn share_ack(state: &AppState, gateway: &str, ack: &RevocationAck) {
    if !is_cluster(state) {
        return;
    }
    let shared = async {
        let json = serde_json::to_string(ack)
            .map_err(|e| jitgate_store::StoreError::Encode(e.to_string()))?;
        state
            .store
            .put_revocation_ack(gateway, &ack.grant_id, &json, state.clock.now())
            .await?;
        let payload = serde_json::to_string(&Acked {
            node: state.node.id.clone(),
            gateway: gateway.to_string(),
            grant: ack.grant_id.clone(),
        })
        .map_err(|e| jitgate_store::StoreError::Encode(e.to_string()))?;
        state
            .store
            .read()
            .await?
            .notify(ACKED_CHANNEL, &payload)
            .await
    }
    .await;
    if let Err(e) = shared {
        tracing::warn!(%gateway, grant = %ack.grant_id, error = %e, "cannot share a revocation acknowledgement with the other nodes");
    }
}

async fn stored_ack(state: &AppState, gateway: &str, grant: &str) -> Option<RevocationAck> {
    match state.store.revocation_ack(gateway, grant).await {
        Ok(Some(json)) => serde_json::from_str(&json).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(%gateway, %grant, error = %e, "cannot read stored acknowledgements");
            None
        }
    }
}

/// A gateway's acknowledgement of a grant's revocation, received by this node or any other,
/// waiting up to `timeout`.
pub async fn wait_ack(
    state: &AppState,
    gateway: &str,
    grant: &str,
    timeout: Duration,
) -> Option<RevocationAck> {
    if !is_cluster(state) {
        return state.control.wait_ack(gateway, grant, timeout).await;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(ack) = state.control.ack(gateway, grant) {
            return Some(ack);
        }
        if let Some(ack) = stored_ack(state, gateway, grant).await {
            state.control.record_ack(gateway, ack.clone());
            return Some(ack);
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        if let Some(ack) = state
            .control
            .wait_ack(gateway, grant, left.min(ACK_REREAD))
            .await
        {
            return Some(ack);
        }
    }
}

/// Forget a finished teardown's acknowledgements, here and in the database.
pub async fn forget_acks(state: &AppState, grant: &str) {
    state.control.forget_grant(grant);
    if is_cluster(state) {
        if let Err(e) = state.store.forget_revocation_acks(grant).await {
            tracing::warn!(%grant, error = %e, "cannot forget stored acknowledgements");
        }
    }
}

/// Gateway `gateway` opened its control channel with this node.
pub async fn gateway_attached(state: &AppState, gateway: &str) {
    if is_cluster(state) {
        let now = state.clock.now();
        if let Err(e) = state.store.link_gateway(gateway, &state.node.id, now).await {
            tracing::warn!(%gateway, error = %e, "cannot record the gateway's node");
        }
    }
}

/// Gateway `gateway`'s last control channel with this node closed.
pub async fn gateway_detached(state: &AppState, gateway: &str) {
    if is_cluster(state) && !state.control.is_connected(gateway) {
        if let Err(e) = state.store.unlink_gateway(gateway, &state.node.id).await {
            tracing::warn!(%gateway, error = %e, "cannot clear the gateway's node");
        }
    }
}

/// Where each gateway is attached: gateway → node, for nodes seen lately (this node's own
/// connections count even before its first heartbeat).
pub async fn attachments(
    state: &AppState,
) -> jitgate_store::Result<std::collections::HashMap<String, String>> {
    let mut out: std::collections::HashMap<String, String> = state
        .control
        .connected()
        .into_iter()
        .map(|g| (g, state.node.id.clone()))
        .collect();
    if is_cluster(state) {
        let stale_before =
            state.clock.now() - chrono::Duration::from_std(NODE_STALE_AFTER).unwrap_or_default();
        let live: std::collections::HashSet<String> = state
            .store
            .nodes()
            .await?
            .into_iter()
            .filter(|n| n.seen_at >= stale_before)
            .map(|n| n.id)
            .collect();
        for (gateway, node, _) in state.store.gateway_links().await? {
            if live.contains(&node) && node != state.node.id {
                out.entry(gateway).or_insert(node);
            }
        }
    }
    Ok(out)
}

/// Take or renew this node's lease on `job` for `ttl` (always granted on SQLite, where this
/// node is the only one). A database error counts as not granted: the work waits.
pub async fn take_lease(state: &AppState, job: &str, ttl: Duration) -> bool {
    if !is_cluster(state) {
        return true;
    }
    let now = state.clock.now();
    let until = now + chrono::Duration::from_std(ttl).unwrap_or_default();
    match state.store.try_lease(job, &state.node.id, now, until).await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(job, error = %e, "cannot take a lease; the work waits");
            false
        }
    }
}

/// Give up this node's lease on `job`.
pub async fn release_lease(state: &AppState, job: &str) {
    if is_cluster(state) {
        if let Err(e) = state.store.release_lease(job, &state.node.id).await {
            tracing::warn!(job, error = %e, "cannot release a lease; it runs out by itself");
        }
    }
}

/// Start the heartbeat and the listener (PostgreSQL only).
pub async fn spawn(
    state: &AppState,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    if !is_cluster(state) {
        return Vec::new();
    }
    // Listening before the node serves: nothing announced after its first request is missed,
    // and `/readyz` is true from the start (the task retries if this fails).
    let first = match state.store.listen(CHANNELS).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for the other nodes yet; retrying");
            None
        }
    };
    state
        .metrics
        .listening
        .store(first.is_some(), std::sync::atomic::Ordering::Relaxed);
    vec![
        tokio::spawn(heartbeat(state.clone(), shutdown.clone())),
        tokio::spawn(listen(state.clone(), shutdown.clone(), first)),
    ]
}

/// What a node listens to.
const CHANNELS: &[&str] = &[
    crate::revocations::REVOKED_CHANNEL,
    ACKED_CHANNEL,
    crate::cluster_keys::KEYS_CHANNEL,
];

async fn heartbeat(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    // Links left by an earlier run of this node are gone with its connections.
    if let Err(e) = state.store.unlink_node(&state.node.id).await {
        tracing::warn!(error = %e, "cannot clear this node's old gateway links");
    }
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let n = &state.node;
                if let Err(e) = state.store.heartbeat(&n.id, &n.url, n.started_at, state.clock.now()).await {
                    tracing::warn!(error = %e, "cluster heartbeat failed");
                }
            }
            _ = shutdown.changed() => {
                let _ = state.store.unlink_node(&state.node.id).await;
                return;
            }
        }
    }
}

/// Receive the other nodes' announcements and act on them; after a lost connection, catch
/// up from the database.
async fn listen(
    state: AppState,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    mut first: Option<jitgate_store::Listener>,
) {
    let mut backoff = Duration::from_millis(100);
    let handlers = std::sync::Arc::new(tokio::sync::Semaphore::new(NOTIFICATION_HANDLERS));
    loop {
        let connected = match first.take() {
            Some(l) => Ok(Some(l)),
            None => state.store.listen(CHANNELS).await,
        };
        let mut listener = match connected {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for the other nodes; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        state
            .metrics
            .listening
            .store(true, std::sync::atomic::Ordering::Relaxed);
        // Whatever was announced before this connection listened: read it.
        catch_up(&state).await;
        loop {
            let received = tokio::select! {
                r = listener.recv() => r,
                _ = shutdown.changed() => return,
            };
            match received {
                // Each on its own task: handling one reads the database, and a listener
                // that waited for each read in turn fell seconds behind under load (the
                // announcements of ended grants queued behind the acknowledgements, so
                // gateways heard of revocations late and teardowns timed out waiting).
                // Their order does not matter: each push and each read is idempotent.
                Ok(Some(n)) => {
                    let Ok(permit) = handlers.clone().acquire_owned().await else {
                        return;
                    };
                    let state = state.clone();
                    tokio::spawn(async move {
                        on_notification(&state, &n.channel, &n.payload).await;
                        drop(permit);
                    });
                }
                Ok(None) => catch_up(&state).await,
                Err(e) => {
                    tracing::warn!(error = %e, "lost the listening connection; reconnecting");
                    state
                        .metrics
                        .listening
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

async fn on_notification(state: &AppState, channel: &str, payload: &str) {
    match channel {
        crate::revocations::REVOKED_CHANNEL => {
            crate::revocations::on_announcement(state, payload).await;
        }
        ACKED_CHANNEL => {
            let Ok(a) = serde_json::from_str::<Acked>(payload) else {
                tracing::warn!(payload, "unreadable acknowledgement announcement ignored");
                return;
            };
            if a.node == state.node.id {
                return;
            }
            if let Some(ack) = stored_ack(state, &a.gateway, &a.grant).await {
                state.control.record_ack(&a.gateway, ack);
            }
        }
        crate::cluster_keys::KEYS_CHANNEL if payload != state.node.id => {
            crate::cluster_keys::reload(state).await;
        }
        _ => {}
    }
}

/// Send every gateway this node holds the full list of ended grants it must refuse, and
/// take the shared keys again (a rotation may have been announced meanwhile).
async fn catch_up(state: &AppState) {
    crate::cluster_keys::reload(state).await;
    for gateway in state.control.connected() {
        match crate::revocations::revocations_for_gateway(state, &gateway).await {
            Ok(revoked) => {
                state.control.send(&gateway, &ControlDown::Sync { revoked });
            }
            Err(e) => tracing::warn!(%gateway, error = %e, "cannot list revocations to catch up"),
        }
    }
}
