//! [`Evidence`]: the evidence state of one server process (log id, keys, the Merkle tree
//! over the log as this server checked it), held in [`crate::state::AppState`]. It knows
//! nothing of the rest of the server; the operations over it are in [`crate::evidence`].

use super::keys::EvidenceKeys;
use crate::config::evidence::EvidenceConfig;
use jitgate_evidence::{EvidencePublicKey, MerkleLog};
use jitgate_store::Store;
use std::path::Path;
use std::sync::Mutex;

/// Settings key of the log id.
const LOG_ID_SETTING: &str = "evidence/log_id";

/// The server's evidence state (one per server process).
pub struct Evidence {
    pub log_id: String,
    keys: Mutex<EvidenceKeys>,
    pub(super) tree: tokio::sync::Mutex<Tree>,
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evidence")
            .field("log_id", &self.log_id)
            .finish_non_exhaustive()
    }
}

/// The Merkle tree over the log as this server checked it.
#[derive(Default)]
pub(super) struct Tree {
    pub(super) log: MerkleLog,
    /// Chain hash of the last leaf (hex).
    pub(super) head: String,
    /// Built (and so verified); `false` until first use, and again after a row that does not
    /// continue the chain was seen.
    pub(super) built: bool,
}

impl Evidence {
    /// Open (or create) the evidence keys in `data_dir` and settle the log id.
    pub async fn open(
        config: &EvidenceConfig,
        data_dir: &Path,
        store: &Store,
    ) -> Result<Evidence, String> {
        let keys = EvidenceKeys::open_or_create(data_dir).map_err(|e| e.to_string())?;
        let mut tx = store.write().await.map_err(|e| e.to_string())?;
        let stored = tx
            .get_setting(LOG_ID_SETTING)
            .await
            .map_err(|e| e.to_string())?;
        let log_id = match (stored, &config.log_id) {
            (Some(s), Some(c)) if &s != c => {
                return Err(format!(
                    "evidence.log_id is {c:?} but this database's log is {s:?}: a log keeps its \
                     id for life (its checkpoints name it); set evidence.log_id = {s:?} or remove it"
                ))
            }
            (Some(s), _) => s,
            (None, configured) => {
                let id = match configured {
                    Some(c) => c.clone(),
                    None => {
                        let mut bytes = [0u8; 8];
                        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
                        format!("jitgate/{}", hex::encode(bytes))
                    }
                };
                tx.set_setting(LOG_ID_SETTING, &id)
                    .await
                    .map_err(|e| e.to_string())?;
                id
            }
        };
        tx.commit().await.map_err(|e| e.to_string())?;
        tracing::info!(%log_id, key_id = %keys.current_id(), "evidence log and key ready");
        Ok(Evidence {
            log_id,
            keys: Mutex::new(keys),
            tree: tokio::sync::Mutex::new(Tree::default()),
        })
    }

    /// Read the key files again (another node of the cluster rotated the key).
    pub fn reload_keys(&self, data_dir: &Path) -> Result<(), String> {
        let fresh = EvidenceKeys::open_or_create(data_dir).map_err(|e| e.to_string())?;
        *self.keys() = fresh;
        Ok(())
    }

    pub(super) fn keys(&self) -> std::sync::MutexGuard<'_, EvidenceKeys> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `sign` with the current evidence signing key (the key never leaves this type).
    pub fn with_current_key<T>(&self, sign: impl FnOnce(&jitgate_evidence::EvidenceKey) -> T) -> T {
        sign(self.keys().current())
    }

    /// Every trusted public key (the key file's), oldest first.
    pub fn public_keys(&self) -> Vec<EvidencePublicKey> {
        self.keys().public().to_vec()
    }

    pub fn current_key_id(&self) -> String {
        self.keys().current_id()
    }

    /// The public key file text.
    pub fn public_key_file(&self) -> String {
        self.keys().public_file()
    }
}
