//! How many teardown probes this node runs at once against each gateway (see
//! [`PROBES_PER_GATEWAY`]); held in the application state, used by [`crate::teardown`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Probes one node runs at once against one gateway, each protocol's probes apart. A
/// gateway lets one source address hold [`jitgate_gateway::admission::MAX_PENDING_PER_SOURCE`]
/// (8) connections still authenticating; nodes on one host share an address, and a burst
/// of ended grants must not fill that allowance (the probes would be closed unjudged). Two per node leaves room for three nodes and a client on one host.
pub const PROBES_PER_GATEWAY: usize = 2;

/// The probe slots of each gateway (see [`PROBES_PER_GATEWAY`]).
#[derive(Debug, Default)]
pub struct ProbeSlots(Mutex<BTreeMap<String, Arc<tokio::sync::Semaphore>>>);

impl ProbeSlots {
    /// A slot to probe `gateway`, waiting at most `timeout`; `None` if none came free.
    pub async fn take(
        &self,
        gateway: &str,
        timeout: Duration,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let slots = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(gateway.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(PROBES_PER_GATEWAY)))
            .clone();
        tokio::time::timeout(timeout, slots.acquire_owned())
            .await
            .ok()?
            .ok()
    }
}
