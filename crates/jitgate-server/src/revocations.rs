//! Revocations: what a gateway enforces for an ended grant, pushed over the control channel
//! the moment the grant ends ([`push_revocations`], after the commit that ended it) and sent
//! again to every gateway that connects ([`revocations_for_gateway`]). The teardown worker
//! then verifies that they took effect (see [`crate::teardown`]).

use crate::error::ApiResult;
use crate::state::AppState;
use jitgate_core::lifecycle::EndReason;
use jitgate_core::{Asset, Grant};
use jitgate_gateway::wire::Revocation;
use std::collections::HashSet;

/// The revocation a gateway enforces for an ended grant.
pub(crate) fn revocation_of(g: &Grant) -> Revocation {
    let (ended_by, note) = match &g.end_reason {
        Some(EndReason::Revoked { by, reason }) => (Some(by.clone()), Some(reason.clone())),
        Some(EndReason::Completed { by }) => (Some(by.clone()), None),
        Some(EndReason::ContextChanged { what }) => (None, Some(what.clone())),
        Some(EndReason::RevalidationOverdue) => (
            None,
            Some("the standing exception was not re-validated in time".into()),
        ),
        Some(EndReason::Expired) | None => (None, None),
    };
    Revocation {
        grant_id: g.id.clone(),
        reason: g
            .end_reason
            .as_ref()
            .map(|r| r.label().to_string())
            .unwrap_or_else(|| "ended".into()),
        expires_at: g.expires_at,
        ended_by,
        note,
    }
}

/// The grant's assets as stored (assets removed from the inventory are skipped: they have
/// no gateway to ask, and the downstream check names them).
pub(crate) async fn grant_assets(
    state: &AppState,
    g: &Grant,
) -> ApiResult<(Vec<Asset>, Vec<String>)> {
    let mut tx = state.store.read().await?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in g.scope.assets() {
        match tx.get_asset(&id).await? {
            Some(a) => found.push(a),
            None => missing.push(id),
        }
    }
    Ok((found, missing))
}

/// Push the revocation of ended grants to every gateway fronting one of their assets, at
/// once (called right after the commit that ended them): those attached to this node
/// directly, those attached to other nodes through them ([`crate::cluster`]). Then wake the
/// teardown worker.
pub async fn push_revocations(state: &AppState, grants: &[Grant]) {
    push_local(state, grants).await;
    let ids: Vec<String> = grants.iter().map(|g| g.id.clone()).collect();
    announce_revoked(state, &ids).await;
    state.teardown_wake.notify_one();
}

/// Push the revocation of ended grants to the gateways attached to this node.
pub(crate) async fn push_local(state: &AppState, grants: &[Grant]) {
    for g in grants {
        match grant_assets(state, g).await {
            Ok((assets, _)) => {
                let r = revocation_of(g);
                let gateways: HashSet<&str> =
                    assets.iter().filter_map(|a| a.gateway.as_deref()).collect();
                for gw in gateways {
                    if !state.control.revoke(gw, &r) {
                        tracing::debug!(grant = %g.id, gateway = %gw, "gateway not attached to this node; another node or its reconnection delivers the revocation");
                    }
                }
            }
            Err(e) => {
                tracing::error!(grant = %g.id, error = %e, "cannot push the revocation; the teardown worker retries")
            }
        }
    }
}

/// Every ended grant a gateway must still refuse (its credential not yet expired), for the
/// sync sent on each control-channel connection.
pub async fn revocations_for_gateway(
    state: &AppState,
    gateway: &str,
) -> ApiResult<Vec<Revocation>> {
    let now = state.clock.now();
    let mut tx = state.store.read().await?;
    let fronted: HashSet<String> = tx
        .list_assets()
        .await?
        .into_iter()
        .filter(|a| a.gateway.as_deref() == Some(gateway))
        .map(|a| a.id)
        .collect();
    let mut out = Vec::new();
    for (grant_id, expires_at, scope) in tx.ended_unexpired_grants(now).await? {
        if scope.assets().iter().any(|a| fronted.contains(a)) {
            out.push(match tx.get_grant(&grant_id).await? {
                Some(g) => revocation_of(&g),
                None => Revocation {
                    grant_id,
                    reason: "ended".into(),
                    expires_at,
                    ended_by: None,
                    note: None,
                },
            });
        }
    }
    Ok(out)
}

/// Channel of ended grants between server nodes (payload: [`Revoked`]; docs/cluster.md).
pub const REVOKED_CHANNEL: &str = "jitgate_revoked";
/// Grant ids per notification (each ≈ 40 bytes; PostgreSQL takes < 8000 bytes).
const IDS_PER_NOTIFICATION: usize = 100;

/// Payload on [`REVOKED_CHANNEL`].
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Revoked {
    node: String,
    grants: Vec<String>,
}

/// Tell the other nodes that these grants ended (after the commit that ended them).
pub async fn announce_revoked(state: &AppState, grant_ids: &[String]) {
    if state.store.backend() != jitgate_store::Backend::Postgres || grant_ids.is_empty() {
        return;
    }
    let sent = async {
        let mut tx = state.store.read().await?;
        for chunk in grant_ids.chunks(IDS_PER_NOTIFICATION) {
            let payload = serde_json::to_string(&Revoked {
                node: state.node.id.clone(),
                grants: chunk.to_vec(),
            })
            .map_err(|e| jitgate_store::StoreError::Encode(e.to_string()))?;
            tx.notify(REVOKED_CHANNEL, &payload).await?;
        }
        Ok::<_, jitgate_store::StoreError>(())
    }
    .await;
    if let Err(e) = sent {
        // The teardown of each grant announces it again until its gateways acknowledge.
        tracing::warn!(error = %e, "cannot announce ended grants to the other nodes; the teardown retries");
    }
}

/// Another node announced ended grants: push them to the gateways attached to this node.
pub async fn on_announcement(state: &AppState, payload: &str) {
    let Ok(r) = serde_json::from_str::<Revoked>(payload) else {
        tracing::warn!(payload, "unreadable revocation announcement ignored");
        return;
    };
    if r.node == state.node.id {
        return; // pushed already, before it was announced
    }
    let mut grants = Vec::new();
    if let Ok(mut tx) = state.store.read().await {
        for id in &r.grants {
            if let Ok(Some(g)) = tx.get_grant(id).await {
                grants.push(g);
            }
        }
    }
    push_local(state, &grants).await;
}
