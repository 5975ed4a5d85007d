//! Workload identity federation (docs/federation.md): a workload presents a JWT its platform
//! issued (CI job, Kubernetes service account, SPIFFE JWT-SVID) and gets a short-lived
//! `jgs_` session for the workload identity the token's claims are bound to, with no static
//! key. The rules are `jitgate_core::federation`; here:
//! - [`jwks`] — the issuers' keys: fetched, cached, fetched again on an unknown `kid`
//!   (rate-limited) or when old; fail closed. A handle the state holds.
//! - [`exchange`] — `POST /auth/federate`: source backoff, signature, core checks, replay
//!   record, session and events in one transaction; refusals logged and counted.
//!
//! At start (`crate::start_with_store`) every binding is checked against the inventory:
//! [`check_bindings`].

pub mod exchange;
pub mod jwks;

use crate::state::AppState;

/// Refuse to start when a binding names an identity that is not a workload of the
/// inventory (the core's `validate_trust`, on the identities stored after the inventory
/// file was loaded).
pub async fn check_bindings(state: &AppState) -> Result<(), String> {
    if state.config.federation.issuers.is_empty() {
        return Ok(());
    }
    let identities = {
        let mut tx = state.store.read().await.map_err(|e| e.to_string())?;
        tx.list_identities().await.map_err(|e| e.to_string())?
    };
    state.config.federation.check_identities(&identities)
}
