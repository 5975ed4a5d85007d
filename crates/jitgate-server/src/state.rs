//! Shared server state handed to every handler and to the scheduler.

use crate::config::ServerConfig;
use jitgate_core::Clock;
use jitgate_policy::PolicySet;
use jitgate_store::Store;
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

/// The policy set in force and where it came from.
pub struct LoadedPolicies {
    pub set: PolicySet,
    /// Directory path, or `builtin` for the embedded default set.
    pub source: String,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// Swapped whole on reload, so a decision always sees one consistent set.
    pub policies: Arc<RwLock<Arc<LoadedPolicies>>>,
    pub config: Arc<ServerConfig>,
    /// Wakes the scheduler when a deadline may have moved (new grant, approval, ...).
    pub wake: Arc<Notify>,
}

impl AppState {
    pub fn policies(&self) -> Arc<LoadedPolicies> {
        match self.policies.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn set_policies(&self, loaded: LoadedPolicies) {
        let new = Arc::new(loaded);
        match self.policies.write() {
            Ok(mut guard) => *guard = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}
