//! OIDC sign-in for people (docs/sso.md): the authorization code flow with state, nonce and
//! PKCE against the providers of `[[sso.providers]]`, for the console (a browser) and the
//! CLI (a loopback redirect). The rules are `jitgate_core::sso`; here:
//! - [`providers`] — [`Providers`], a handle the state holds: per provider its configuration,
//!   its discovery document (fetched with the `openidconnect` crate, cached) and its keys
//!   (the federation's key cache, `crate::federation::jwks`: rotation picked up, fail
//!   closed);
//! - [`flow`] — starting a sign-in, the provider's callback (code exchange, ID token
//!   checks, session and events in one transaction), the CLI's redemption.
//!
//! At start (`crate::start_with_store`) every mapping rule is checked against the inventory:
//! [`check_mappings`].

pub mod flow;
pub mod providers;

use crate::state::AppState;
pub use providers::Providers;

/// Refuse to start when a mapping rule names an identity that is not a person of the
/// inventory, two rules overlap, or an `sso_only` identity is not mapped.
pub async fn check_mappings(state: &AppState) -> Result<(), String> {
    let sso = &state.config.sso;
    if sso.providers.is_empty() && sso.sso_only.is_empty() {
        return Ok(());
    }
    let identities = {
        let mut tx = state.store.read().await.map_err(|e| e.to_string())?;
        tx.list_identities().await.map_err(|e| e.to_string())?
    };
    sso.check_identities(&identities)
}
