//! One key set for every node on one PostgreSQL database (docs/cluster.md, "Keys").
//!
//! Each node keeps its keys as files in its data directory, as a single server does. On
//! PostgreSQL those files are also kept in the database, **sealed** (ChaCha20-Poly1305, the
//! file name as associated data) under `cluster.key` — 32 random bytes, the one secret an
//! operator copies to every node. At start ([`sync_at_start`], before anything opens a key)
//! a node writes the database's copies over its own files, or, on the first node, uploads
//! its files; after a rotation ([`publish`]) the rotating node uploads the changed files and
//! announces them (`NOTIFY jitgate_keys`), and every other node reloads them
//! ([`reload`]): tokens any node signs verify at every gateway, and a key retired on one
//! node is retired at the gateways of all.
//!
//! Without `cluster.key` a node refuses to join a database that holds keys already: two key
//! sets on one database would make tokens of one node unknown at the gateways of another.

use crate::state::AppState;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};

/// The sealing key in the data directory.
pub const CLUSTER_KEY_FILE: &str = "cluster.key";
/// Channel announcing that the shared key files changed (payload: the announcing node).
pub const KEYS_CHANNEL: &str = "jitgate_keys";
/// The key files every node shares: token signing, evidence, TOTP sealing, SSH CAs, and the
/// CA of gateways' client certificates (when the server speaks TLS).
pub const SHARED_FILES: &[&str] = &[
    jitgate_credential::keyring::KEY_FILE_NAME,
    crate::evidence::keys::SECRET_KEY_FILE,
    crate::evidence::keys::PUBLIC_KEYS_FILE,
    crate::secrets::TOTP_KEY_FILE,
    crate::ssh_ca::KEY_FILE,
    "tls/gateway-ca-cert.pem",
    "tls/gateway-ca-key.pem",
];
const SETTING_PREFIX: &str = "cluster-key-file/";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn setting(name: &str) -> String {
    format!("{SETTING_PREFIX}{name}")
}

fn is_cluster(store: &jitgate_store::Store) -> bool {
    store.backend() == jitgate_store::Backend::Postgres
}

/// The sealing key, read from (or, on the first node, created in) the data directory.
struct Sealer {
    key: LessSafeKey,
    path: PathBuf,
}

impl Sealer {
    fn from_bytes(bytes: &[u8], path: PathBuf) -> Result<Sealer, String> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| {
            format!(
                "{}: a cluster key is 32 bytes, this file has {}",
                path.display(),
                bytes.len()
            )
        })?;
        Ok(Sealer {
            key: LessSafeKey::new(unbound),
            path,
        })
    }

    fn seal(&self, name: &str, plain: &[u8]) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "no randomness for a nonce".to_string())?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut buf,
            )
            .map_err(|_| format!("sealing {name} failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(B64.encode(out))
    }

    fn open(&self, name: &str, sealed: &str) -> Result<Vec<u8>, String> {
        let wrong = || {
            format!(
                "the database's copy of {name} does not open with {}: this is not the cluster's \
                 key; copy cluster.key from a node of this cluster (docs/cluster.md)",
                self.path.display()
            )
        };
        let raw = B64.decode(sealed).map_err(|_| wrong())?;
        if raw.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut buf)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

async fn stored_names(store: &jitgate_store::Store) -> Result<Vec<(String, String)>, String> {
    let mut tx = store.read().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for name in SHARED_FILES {
        if let Some(v) = tx
            .get_setting(&setting(name))
            .await
            .map_err(|e| e.to_string())?
        {
            out.push((name.to_string(), v));
        }
    }
    Ok(out)
}

fn sealer(data_dir: &Path, create: bool) -> Result<Option<Sealer>, String> {
    let path = data_dir.join(CLUSTER_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            crate::files::check_private(&path, "it seals every key of the cluster")?;
            Sealer::from_bytes(&bytes, path).map(Some)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let mut bytes = vec![0u8; 32];
            SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| "no randomness for the cluster key".to_string())?;
            crate::files::write_private(&path, &bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Sealer::from_bytes(&bytes, path).map(Some)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Write the database's key files into `data_dir` (PostgreSQL; before any key is opened).
/// On the first node nothing is stored yet: it creates `cluster.key`, and its files are
/// uploaded by [`upload_missing`] once created.
pub async fn sync_at_start(store: &jitgate_store::Store, data_dir: &Path) -> Result<(), String> {
    if !is_cluster(store) {
        return Ok(());
    }
    let stored = stored_names(store).await?;
    let Some(sealer) = sealer(data_dir, stored.is_empty())? else {
        return Err(format!(
            "this database already holds a cluster's keys, sealed under its cluster.key, and \
             {} has none: copy cluster.key (0600) from a node of this cluster into the data \
             directory and start again (docs/cluster.md)",
            data_dir.display()
        ));
    };
    for (name, sealed) in stored {
        let plain = sealer.open(&name, &sealed)?;
        crate::files::replace_private(&data_dir.join(&name), &plain)?;
    }
    Ok(())
}

/// Upload the key files the database does not hold yet (after they were created at start).
pub async fn upload_missing(store: &jitgate_store::Store, data_dir: &Path) -> Result<(), String> {
    if !is_cluster(store) {
        return Ok(());
    }
    let Some(sealer) = sealer(data_dir, false)? else {
        return Ok(());
    };
    let mut tx = store.write().await.map_err(|e| e.to_string())?;
    for name in SHARED_FILES {
        let key = setting(name);
        if tx
            .get_setting(&key)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            continue;
        }
        match std::fs::read(data_dir.join(name)) {
            Ok(plain) => tx
                .set_setting(&key, &sealer.seal(name, &plain)?)
                .await
                .map_err(|e| e.to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", data_dir.join(name).display())),
        }
    }
    tx.commit().await.map_err(|e| e.to_string())
}

/// After a rotation on this node: store the changed files and tell the other nodes.
pub async fn publish(state: &AppState, names: &[&str]) {
    if !is_cluster(&state.store) {
        return;
    }
    let dir = &state.config.data_dir;
    let published = async {
        let sealer = sealer(dir, false)?.ok_or("cluster.key is missing")?;
        let mut tx = state.store.write().await.map_err(|e| e.to_string())?;
        for name in names {
            let plain = std::fs::read(dir.join(name))
                .map_err(|e| format!("{}: {e}", dir.join(name).display()))?;
            tx.set_setting(&setting(name), &sealer.seal(name, &plain)?)
                .await
                .map_err(|e| e.to_string())?;
        }
        tx.notify(KEYS_CHANNEL, &state.node.id)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())
    }
    .await;
    if let Err(e) = published {
        tracing::error!(error = %e, "the other nodes did not get the rotated keys; they keep the previous ones until this is fixed");
    }
}

/// Another node changed the shared keys: take the database's copies and reload them. Keys
/// newly retired are pushed to this node's gateways at once, as on the retiring node.
pub async fn reload(state: &AppState) {
    let dir = state.config.data_dir.clone();
    let reloaded = async {
        sync_at_start(&state.store, &dir).await?;
        let now = state.clock.now();
        let ring = jitgate_credential::KeyRing::open_or_create(&dir, now)
            .map_err(|e| format!("token-signing keys: {e}"))?;
        let retired: Vec<String> = {
            let mut current = state.keyring();
            let before: std::collections::HashSet<String> = current
                .public_keys(now)
                .into_iter()
                .filter(|k| k.retire_at.is_some_and(|t| t <= now))
                .map(|k| k.kid)
                .collect();
            *current = ring;
            current
                .public_keys(now)
                .into_iter()
                .filter(|k| k.retire_at.is_some_and(|t| t <= now) && !before.contains(&k.kid))
                .map(|k| k.kid)
                .collect()
        };
        for kid in retired {
            state
                .control
                .broadcast(&jitgate_gateway::wire::ControlDown::RetireKey { kid });
        }
        state.evidence.reload_keys(&dir)
    }
    .await;
    match reloaded {
        Ok(()) => tracing::info!("shared keys reloaded after a change on another node"),
        Err(e) => tracing::error!(error = %e, "cannot reload the shared keys"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sealed_files_open_only_with_the_cluster_key_and_under_their_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let ours = sealer(dir.path(), true).unwrap().unwrap();
        let again = sealer(dir.path(), false).unwrap().unwrap();
        let sealed = ours.seal("token-keys.json", b"secret").unwrap();
        assert_eq!(again.open("token-keys.json", &sealed).unwrap(), b"secret");
        // Copied onto another file's name: refused.
        assert!(again.open("totp.key", &sealed).is_err());
        // Another cluster's key: refused, with what to do.
        let other = tempfile::tempdir().unwrap();
        let theirs = sealer(other.path(), true).unwrap().unwrap();
        let err = theirs.open("token-keys.json", &sealed).unwrap_err();
        assert!(err.contains("copy cluster.key"), "{err}");
        // No key and not allowed to create one: none.
        let empty = tempfile::tempdir().unwrap();
        assert!(sealer(empty.path(), false).unwrap().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_cluster_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        sealer(dir.path(), true).unwrap();
        let path = dir.path().join(CLUSTER_KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = sealer(dir.path(), false).err().unwrap();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
