//! The evidence key pair files in the data directory: the current secret key (owner-only)
//! and every public key the log ever had (what auditors are given).

use jitgate_evidence::{EvidenceKey, EvidencePublicKey};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The current evidence secret key, one line (`jitgate-evidence-secret-key v1 …`), mode 0600.
pub const SECRET_KEY_FILE: &str = "evidence-key.secret";
/// Every evidence public key, oldest first (`jitgate-evidence-key v1 …` lines).
pub const PUBLIC_KEYS_FILE: &str = "evidence-keys.pub";

/// The evidence keys in the data directory: the current signing key and every public key.
pub struct EvidenceKeys {
    dir: PathBuf,
    current: EvidenceKey,
    /// Oldest first; includes the current key.
    public: Vec<EvidencePublicKey>,
}

impl std::fmt::Debug for EvidenceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceKeys")
            .field("dir", &self.dir)
            .field("current", &self.current.public().key_id)
            .field("keys", &self.public.len())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is readable or writable by others (mode {mode:o}): it holds the evidence signing key; chmod 600 it")]
    Insecure { path: PathBuf, mode: u32 },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl EvidenceKeys {
    /// Load the keys from `dir`, or create them on first start.
    ///
    /// A missing secret key with an existing public key file (the secret was lost) gets a new
    /// key added to the file, so everything signed before still verifies.
    pub fn open_or_create(dir: &Path) -> Result<EvidenceKeys, KeyFileError> {
        create_private_dir(dir)?;
        let secret_path = dir.join(SECRET_KEY_FILE);
        let public_path = dir.join(PUBLIC_KEYS_FILE);
        let mut public = match std::fs::read_to_string(&public_path) {
            Ok(text) => {
                EvidencePublicKey::parse_file(&text).map_err(|e| KeyFileError::Invalid {
                    path: public_path.clone(),
                    message: e.to_string(),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(KeyFileError::Io {
                    path: public_path,
                    source,
                })
            }
        };
        let current = match read_secret(&secret_path)? {
            Some(key) => key,
            None => {
                if !public.is_empty() {
                    tracing::warn!(
                        path = %secret_path.display(),
                        "the evidence secret key is missing; creating a new one (the public key \
                         file keeps the old keys, so earlier checkpoints still verify)"
                    );
                }
                let key = EvidenceKey::generate().map_err(|e| KeyFileError::Invalid {
                    path: secret_path.clone(),
                    message: e.to_string(),
                })?;
                // Public key first: a crash in between leaves a listed key that signed
                // nothing, never a signing key nobody can verify.
                public.push(key.public());
                write_atomic(&public_path, public_file_text(&public).as_bytes(), 0o644)?;
                write_atomic(&secret_path, key.to_text().as_bytes(), 0o600)?;
                key
            }
        };
        let keys = EvidenceKeys {
            dir: dir.to_path_buf(),
            current,
            public,
        };
        if !keys.public.contains(&keys.current.public()) {
            // Written by a crash between the two writes of a rotation, or edited by hand.
            let mut public = keys.public.clone();
            public.push(keys.current.public());
            write_atomic(&public_path, public_file_text(&public).as_bytes(), 0o644)?;
            return Ok(EvidenceKeys { public, ..keys });
        }
        Ok(keys)
    }

    pub fn current(&self) -> &EvidenceKey {
        &self.current
    }

    pub fn current_id(&self) -> String {
        self.current.public().key_id
    }

    /// Every public key, oldest first.
    pub fn public(&self) -> &[EvidencePublicKey] {
        &self.public
    }

    /// The public key file auditors pass with `--key`.
    pub fn public_file(&self) -> String {
        public_file_text(&self.public)
    }

    /// Add a fresh key and make it current; returns its id. Files are replaced atomically,
    /// the public key file first.
    pub fn rotate(&mut self) -> Result<String, KeyFileError> {
        let secret_path = self.dir.join(SECRET_KEY_FILE);
        let key = EvidenceKey::generate().map_err(|e| KeyFileError::Invalid {
            path: secret_path.clone(),
            message: e.to_string(),
        })?;
        let mut public = self.public.clone();
        public.push(key.public());
        write_atomic(
            &self.dir.join(PUBLIC_KEYS_FILE),
            public_file_text(&public).as_bytes(),
            0o644,
        )?;
        write_atomic(&secret_path, key.to_text().as_bytes(), 0o600)?;
        let id = key.public().key_id;
        self.public = public;
        self.current = key;
        Ok(id)
    }
}

fn public_file_text(keys: &[EvidencePublicKey]) -> String {
    let mut text = String::from(
        "# jitgate evidence public keys, oldest first. Give this file to auditors through a\n\
         # trusted channel: `jitgate evidence verify-bundle <bundle> --key <this file>`.\n",
    );
    for k in keys {
        text.push_str(&k.to_line());
    }
    text
}

fn read_secret(path: &Path) -> Result<Option<EvidenceKey>, KeyFileError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(KeyFileError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = file.metadata().map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Insecure {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    if meta.len() > 4096 {
        return Err(KeyFileError::Invalid {
            path: path.to_path_buf(),
            message: "too large for a key file".into(),
        });
    }
    // The text holds the secret seed: wiped from memory when dropped.
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::Read::read_to_string(&mut std::io::Read::take(file, 4096), &mut text).map_err(io)?;
    EvidenceKey::from_text(&text)
        .map(Some)
        .map_err(|e| KeyFileError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

fn create_private_dir(dir: &Path) -> Result<(), KeyFileError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| KeyFileError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Write `bytes` to a temporary file beside `path` (with `mode`), flush it to disk, and
/// rename it over `path`: readers see the old file or the new one, never half of one.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyFileError> {
    let tmp = path.with_extension("tmp");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| KeyFileError::Io { path: p, source }
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(parent) = path.parent() {
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_owner_only_and_rotation_keeps_old_public_keys() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let keys = EvidenceKeys::open_or_create(&data).unwrap();
        let first = keys.current_id();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.join(SECRET_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "secret key file is owner-only");
        }
        assert!(!std::fs::read_to_string(data.join(SECRET_KEY_FILE))
            .unwrap()
            .is_empty());
        // Reopening gives the same key.
        let mut keys = EvidenceKeys::open_or_create(&data).unwrap();
        assert_eq!(keys.current_id(), first);
        let second = keys.rotate().unwrap();
        assert_ne!(first, second);
        let reopened = EvidenceKeys::open_or_create(&data).unwrap();
        assert_eq!(reopened.current_id(), second);
        let file = std::fs::read_to_string(data.join(PUBLIC_KEYS_FILE)).unwrap();
        let listed = EvidencePublicKey::parse_file(&file).unwrap();
        let ids: Vec<_> = listed.iter().map(|k| k.key_id.clone()).collect();
        assert_eq!(ids, vec![first, second]);
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        EvidenceKeys::open_or_create(dir.path()).unwrap();
        let path = dir.path().join(SECRET_KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = EvidenceKeys::open_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, KeyFileError::Insecure { .. }), "{err}");
    }

    #[test]
    fn a_lost_secret_key_is_replaced_and_old_keys_stay_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let first = EvidenceKeys::open_or_create(dir.path())
            .unwrap()
            .current_id();
        std::fs::remove_file(dir.path().join(SECRET_KEY_FILE)).unwrap();
        let keys = EvidenceKeys::open_or_create(dir.path()).unwrap();
        assert_ne!(keys.current_id(), first);
        assert_eq!(keys.public().len(), 2);
        assert_eq!(keys.public()[0].key_id, first);
    }
}
