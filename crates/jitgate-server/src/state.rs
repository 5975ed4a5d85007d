//! Shared server state handed to every handler and to the scheduler.

use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::views::KeysInfo;
use jitgate_core::{Clock, Timestamp};
use jitgate_credential::{GrantClaims, KeyRing, PublicKeyInfo};
use jitgate_policy::PolicySet;
use jitgate_store::Store;
use std::sync::Mutex;
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
    /// Wakes the scheduler when a deadline may have moved earlier (new grant, approval, ...).
    pub wake: Arc<Notify>,
    /// When the scheduler will next look (unix ms); a new deadline earlier than this wakes it.
    pub next_wake_ms: Arc<std::sync::atomic::AtomicI64>,
    /// Token-signing keys (in the data directory, owner-only).
    pub keyring: Arc<Mutex<KeyRing>>,
    /// Evidence key, log id and the Merkle tree over the log (see `crate::evidence`).
    pub evidence: Arc<crate::evidence::log::Evidence>,
    /// Connected gateways' control channels: revocations out, acknowledgements in.
    pub control: Arc<crate::control::ControlHub>,
    /// Wakes the teardown worker (a grant ended, a gateway connected).
    pub teardown_wake: Arc<Notify>,
    /// Set when a gateway (re)connects: retry failed teardowns now, not at their backoff.
    pub teardown_retry_now: Arc<std::sync::atomic::AtomicBool>,
    /// Teardown probes in flight per gateway from this node.
    pub probe_slots: Arc<crate::probe_slots::ProbeSlots>,
    /// Becomes `true` when the server stops (long-lived connections close on it).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Webhooks in force (keys read at start) and the delivery worker's wake-up.
    pub notifier: Arc<crate::notify::webhooks::Notifier>,
    /// The password-hashing pool and the sign-ins being checked.
    pub throttle: Arc<crate::throttle::Throttle>,
    /// The key TOTP secrets are stored under (`totp.key` in the data directory).
    pub totp_key: Arc<crate::secrets::TotpKey>,
    /// The CA of gateways' client certificates; `None` when the server speaks plain HTTP.
    pub gateway_ca: Option<Arc<crate::gateway_ca::GatewayCa>>,
    /// Client-certificate refusals recorded lately (one event per gateway and reason per
    /// window).
    pub cert_refusals: Arc<crate::gateway_ca::RefusalWindow>,
    /// Prometheus metrics of this node (`crate::metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This node: its name and URL among the nodes on one database ([`crate::cluster`]).
    pub node: Arc<crate::node::Node>,
    /// The SSH user and host-access CAs (`ssh-ca-keys.json` in the data directory).
    pub ssh_cas: Arc<crate::ssh_ca::SshCas>,
    /// Trusted issuers of workload federation and their cached keys.
    pub federation: Arc<crate::federation::jwks::Issuers>,
    /// OpenID providers people sign in with, their discovery documents and keys.
    pub sso: Arc<crate::sso::providers::Providers>,
}

/// Longest a grant token can live; old signing keys stay published this long after rotation.
pub const MAX_TOKEN_LIFETIME_DAYS: i64 = 30;

impl AppState {
    pub fn policies(&self) -> Arc<LoadedPolicies> {
        match self.policies.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Tell the scheduler about a new deadline; it is only woken if it would otherwise look
    /// too late (it looks at least once a second anyway).
    pub fn deadline(&self, at: Timestamp) {
        if at.timestamp_millis() < self.next_wake_ms.load(std::sync::atomic::Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    pub(crate) fn keyring(&self) -> std::sync::MutexGuard<'_, KeyRing> {
        self.keyring.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn keyring_public(&self, now: Timestamp) -> Vec<PublicKeyInfo> {
        self.keyring().public_keys(now)
    }

    pub fn issue_token(&self, claims: &GrantClaims) -> Result<String, ServerError> {
        self.keyring()
            .issue(claims)
            .map_err(|e| ServerError::Internal(format!("signing a grant token: {e}")))
    }

    pub fn keys_info(&self) -> KeysInfo {
        let ring = self.keyring();
        KeysInfo {
            current_kid: ring.current_kid().to_string(),
            keys: ring.public_keys(self.clock.now()),
        }
    }

    pub fn rotate_keys(&self) -> Result<String, ServerError> {
        self.keyring()
            .rotate(
                self.clock.now(),
                chrono::Duration::days(MAX_TOKEN_LIFETIME_DAYS),
            )
            .map_err(|e| ServerError::Internal(format!("key rotation: {e}")))
    }

    pub fn set_policies(&self, loaded: LoadedPolicies) {
        let new = Arc::new(loaded);
        match self.policies.write() {
            Ok(mut guard) => *guard = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}
