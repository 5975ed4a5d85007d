//! Secrets at rest: TOTP secrets are stored encrypted (ChaCha20-Poly1305) under a key kept
//! in the data directory (`totp.key`, 32 random bytes, mode 0600), never in clear. A stored
//! value reads `enc1:` then base64url of nonce (12 bytes) ‖ ciphertext ‖ tag; the identity is
//! the associated data, so a secret copied onto another identity's row does not decrypt.
//! Secrets stored in clear by earlier versions are encrypted at start
//! ([`encrypt_stored_totp`]).

use crate::error::ServerError;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};

pub const TOTP_KEY_FILE: &str = "totp.key";
const PREFIX: &str = "enc1:";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub struct TotpKey {
    key: LessSafeKey,
    path: PathBuf,
}

impl std::fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TotpKey({})", self.path.display())
    }
}

impl TotpKey {
    /// The key in `data_dir`, created (0600) when missing. A key file of the wrong size, or
    /// readable by others, stops the start.
    pub fn open_or_create(data_dir: &Path) -> Result<TotpKey, String> {
        let path = data_dir.join(TOTP_KEY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => {
                check_private(&path)?;
                b
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = vec![0u8; 32];
                SystemRandom::new()
                    .fill(&mut b)
                    .map_err(|_| "no randomness for the TOTP key".to_string())?;
                write_private(&path, &b)?;
                b
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| {
            format!(
                "{}: a TOTP key is 32 bytes, this file has {}",
                path.display(),
                bytes.len()
            )
        })?;
        Ok(TotpKey {
            key: LessSafeKey::new(unbound),
            path,
        })
    }

    pub fn seal(&self, identity: &str, secret: &str) -> Result<String, ServerError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ServerError::Internal("no randomness for a TOTP nonce".into()))?;
        let mut buf = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(identity.as_bytes()),
                &mut buf,
            )
            .map_err(|_| ServerError::Internal("encrypting a TOTP secret failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}", B64.encode(out)))
    }

    /// The secret in clear; a value without the `enc1:` prefix is one stored in clear by an
    /// earlier version (encrypted at the next start).
    pub fn open(&self, identity: &str, stored: &str) -> Result<String, ServerError> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let wrong = || {
            ServerError::Internal(format!(
                "the TOTP secret of {identity} does not decrypt with {}; was the key file replaced?",
                self.path.display()
            ))
        };
        let raw = B64.decode(b64).map_err(|_| wrong())?;
        if raw.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(identity.as_bytes()), &mut buf)
            .map_err(|_| wrong())?;
        String::from_utf8(plain.to_vec()).map_err(|_| wrong())
    }
}

/// Whether a stored value is encrypted.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Encrypt every TOTP secret still stored in clear; returns how many were.
pub async fn encrypt_stored_totp(
    store: &jitgate_store::Store,
    key: &TotpKey,
) -> Result<usize, ServerError> {
    let mut tx = store.write().await?;
    let mut n = 0;
    for (identity, stored) in tx.list_totp_secrets().await? {
        if !is_sealed(&stored) {
            let sealed = key.seal(&identity, &stored)?;
            tx.replace_totp_secret(&identity, &sealed).await?;
            n += 1;
        }
    }
    tx.commit().await?;
    Ok(n)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable by others (mode {:o}); it decrypts every TOTP secret: chmod 600 it",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bound_to_the_identity_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = TotpKey::open_or_create(dir.path()).unwrap();
        let sealed = key.seal("alice", "JBSWY3DPEHPK3PXP").unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(
            sealed,
            key.seal("alice", "JBSWY3DPEHPK3PXP").unwrap(),
            "fresh nonce"
        );
        assert_eq!(key.open("alice", &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        assert!(key.open("bob", &sealed).is_err(), "bound to the identity");
        assert_eq!(key.open("alice", "CLEARTEXT").unwrap(), "CLEARTEXT");
        // The same file opens again; another data dir's key does not decrypt.
        let again = TotpKey::open_or_create(dir.path()).unwrap();
        assert_eq!(again.open("alice", &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        let other = tempfile::tempdir().unwrap();
        let other = TotpKey::open_or_create(other.path()).unwrap();
        assert!(other.open("alice", &sealed).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(TOTP_KEY_FILE);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(TotpKey::open_or_create(dir.path())
                .unwrap_err()
                .contains("chmod 600"));
        }
    }
}
