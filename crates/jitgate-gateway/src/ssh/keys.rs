//! Host keys: the gateway's own SSH host key (made once in `state_dir`, owner-only), and
//! the pins of the assets' host keys — the inventory's `host_key` when it has one, else
//! the key first seen (trust on first use, recorded as an event and kept in
//! `state_dir/ssh_known_assets`).

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::{HashAlg, LineEnding, PrivateKey};
use russh::keys::PublicKey;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The gateway's SSH host key file in `state_dir`.
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";
/// First-seen host keys of assets without an inventory `host_key`.
pub const KNOWN_ASSETS_FILE: &str = "ssh_known_assets";

/// A new Ed25519 key (the seed from the operating system's generator).
pub fn new_ed25519() -> PrivateKey {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}

/// Load the gateway's host key, or make an Ed25519 one (0600 from its first byte).
pub fn load_or_create_host_key(state_dir: &Path) -> Result<PrivateKey, String> {
    load_or_create(&state_dir.join(HOST_KEY_FILE)).map(|(key, _)| key)
}

/// Keys vaulted for assets that cannot trust jitgate's host-access CA
/// (`endpoints.ssh.auth = "vaulted_key"`): `state_dir/ssh-vault/<asset>`, owner-only.
pub const VAULT_DIR: &str = "ssh-vault";

/// The vaulted key file of `asset` (asset ids are inventory ids: no path separators).
fn vault_path(state_dir: &Path, asset: &str) -> Result<PathBuf, String> {
    if asset.is_empty() || asset.contains(['/', '\\']) || asset.starts_with('.') {
        return Err(format!("{asset:?} is not an asset id"));
    }
    Ok(state_dir.join(VAULT_DIR).join(asset))
}

/// The key the gateway logs in to `asset` with, if one was made
/// (`jitgate gateway vault-key`).
pub fn load_vault_key(state_dir: &Path, asset: &str) -> Result<Option<PrivateKey>, String> {
    let path = vault_path(state_dir, asset)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => PrivateKey::from_openssh(text.trim_start())
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Make `asset`'s vaulted key if there is none (never replaced: the asset trusts it), and
/// say whether it was made now.
pub fn create_vault_key(state_dir: &Path, asset: &str) -> Result<(PrivateKey, bool), String> {
    let path = vault_path(state_dir, asset)?;
    crate::private::state_dir(&state_dir.join(VAULT_DIR))
        .map_err(|e| format!("{}: {e}", state_dir.join(VAULT_DIR).display()))?;
    load_or_create(&path)
}

/// Read an OpenSSH private key, or make an Ed25519 one there (0600 from its first byte).
fn load_or_create(path: &Path) -> Result<(PrivateKey, bool), String> {
    match std::fs::read_to_string(path) {
        Ok(text) => PrivateKey::from_openssh(text.trim_start())
            .map(|k| (k, false))
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = new_ed25519();
            let pem = key
                .to_openssh(LineEnding::LF)
                .map_err(|e| format!("encoding an SSH key: {e}"))?;
            let mut f = crate::private::options()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            f.write_all(pem.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((key, true))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// `SHA256:…` of a public key, as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// What pinning says about an asset's host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// It is the pinned key (inventory or first seen).
    Matches,
    /// No pin existed: this key is now the asset's (trust on first use; record it).
    FirstUse,
    /// Another key than the pinned one: refuse the session.
    Mismatch { expected: String },
}

/// The assets' host keys the gateway trusts: first seen ones, persisted.
pub struct KnownAssets {
    path: PathBuf,
    keys: Mutex<HashMap<String, String>>,
}

impl KnownAssets {
    /// Read `state_dir/ssh_known_assets` (`<asset> <openssh public key>` per line).
    pub fn load(state_dir: &Path) -> Result<KnownAssets, String> {
        let path = state_dir.join(KNOWN_ASSETS_FILE);
        let mut keys = HashMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let Some((asset, key)) = line.split_once(' ') else {
                        return Err(format!("{}: malformed line {line:?}", path.display()));
                    };
                    keys.insert(asset.to_string(), key.trim().to_string());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        Ok(KnownAssets {
            path,
            keys: Mutex::new(keys),
        })
    }

    /// Check `seen` for `asset` against the inventory's pin, else the first-seen one; a key
    /// seen first is kept (file appended before this returns).
    pub fn check(
        &self,
        asset: &str,
        inventory_pin: Option<&str>,
        seen: &PublicKey,
    ) -> Result<Pin, String> {
        if let Some(pin) = inventory_pin {
            return Ok(compare(pin, seen));
        }
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pin) = keys.get(asset) {
            return Ok(compare(pin, seen));
        }
        let line = seen
            .to_openssh()
            .map_err(|e| format!("encoding {asset}'s host key: {e}"))?;
        let mut f = crate::private::options()
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        f.write_all(format!("{asset} {line}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        keys.insert(asset.to_string(), line);
        Ok(Pin::FirstUse)
    }
}

/// Compare by key material (the comment of a pinned line does not matter).
fn compare(pin: &str, seen: &PublicKey) -> Pin {
    match PublicKey::from_openssh(pin.trim()) {
        Ok(p) if p.key_data() == seen.key_data() => Pin::Matches,
        Ok(p) => Pin::Mismatch {
            expected: fingerprint(&p),
        },
        Err(_) => Pin::Mismatch {
            expected: format!("an unreadable pin ({pin:?})"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> PublicKey {
        new_ed25519().public_key().clone()
    }

    #[test]
    fn host_key_is_made_once_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_host_key(dir.path()).unwrap();
        let b = load_or_create_host_key(dir.path()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(HOST_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn pins_first_use_then_mismatch_and_inventory_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, k2) = (public(), public());
        let known = KnownAssets::load(dir.path()).unwrap();
        assert_eq!(known.check("hmi-1", None, &k1).unwrap(), Pin::FirstUse);
        assert_eq!(known.check("hmi-1", None, &k1).unwrap(), Pin::Matches);
        assert!(matches!(
            known.check("hmi-1", None, &k2).unwrap(),
            Pin::Mismatch { .. }
        ));
        // Persisted across restarts.
        let again = KnownAssets::load(dir.path()).unwrap();
        assert_eq!(again.check("hmi-1", None, &k1).unwrap(), Pin::Matches);
        assert!(matches!(
            again.check("hmi-1", None, &k2).unwrap(),
            Pin::Mismatch { .. }
        ));
        // The inventory's pin decides when there is one.
        let line = k2.to_openssh().unwrap();
        assert_eq!(
            again.check("hmi-1", Some(&line), &k2).unwrap(),
            Pin::Matches
        );
        assert!(matches!(
            again.check("ews-1", Some(&line), &k1).unwrap(),
            Pin::Mismatch { .. }
        ));
    }
}
