//! The server's token-signing keys, kept in `<data dir>/token-keys.json`.
//!
//! The file is created on first start with one fresh Ed25519 key, owner-only (0600, in a 0700
//! directory when we create it), and a file that group or others can read is refused: the
//! signing key is the one secret that lets anyone mint access to every asset.
//!
//! Rotation adds a key that becomes current and gives the previous current key a `retire_at`
//! of now + the longest a token can live, so tokens it already signed keep verifying until
//! they have all expired; after that the key is left out of [`KeyRing::public_keys`] (gateways
//! refuse its tokens as `unknown_key`) and the next rotation drops it from the file.
//!
//! Emergency retirement ([`KeyRing::retire_now`], `jitgate keys retire <kid> --now`) is for a
//! key that leaked: its `retire_at` becomes now, so gateways refuse its tokens at once
//! (`key_retired`), and it is marked `retired_early_at`. Such a key stays in the file and in
//! [`KeyRing::public_keys`] (with its past `retire_at`) until every token it could have
//! signed has expired, so that a gateway that was away and fetches the list later still
//! names the refusal `key_retired` rather than `unknown_key`. The current key cannot be
//! retired: a ring must always have a key that signs, so rotate first.
//!
//! Key ids are PASERK ids (`k4.pid.…`) of the public keys: standard, collision-free, and
//! checkable by anyone holding the public key.

use crate::claims::GrantClaims;
use crate::{b64, CredentialError, Timestamp, TOKEN_PURPOSE};
use chrono::Duration;
use ed25519_compact::{KeyPair, Seed};
use pasetors::keys::{AsymmetricPublicKey, AsymmetricSecretKey};
use pasetors::paserk::{FormatAsPaserk, Id};
use pasetors::version4::{PublicToken, V4};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use utoipa::ToSchema;
use zeroize::Zeroizing;

/// Name of the key file inside the data directory.
pub const KEY_FILE_NAME: &str = "token-keys.json";

/// First value of the file's `format` field; bumped only if the layout ever changes.
const FILE_FORMAT: &str = "jitgate-token-keys/v1";

/// A key file larger than this is not one we wrote (a key is ~250 bytes).
const MAX_KEY_FILE_LEN: u64 = 1024 * 1024;

/// A public key gateways use to verify grant tokens (served by the server, cached by gateways).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyInfo {
    /// PASERK id of the key (`k4.pid.…`); the token footer names it.
    pub kid: String,
    /// Ed25519 public key, base64url without padding (32 bytes).
    pub public_key: String,
    /// After this instant the key verifies nothing; `None` while it is current or not yet
    /// superseded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub retire_at: Option<Timestamp>,
}

/// The server's signing keys: one current key that signs, older ones kept for verification.
pub struct KeyRing {
    /// `None` for an in-memory ring (tests, fuzzing, benchmarks).
    path: Option<PathBuf>,
    keys: Vec<SigningKey>,
    /// Index into `keys` of the key that signs new tokens.
    current: usize,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("path", &self.path)
            .field("current_kid", &self.current_kid())
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

struct SigningKey {
    kid: String,
    /// 32-byte Ed25519 seed; wiped from memory on drop.
    seed: Zeroizing<[u8; 32]>,
    /// pasetors' secret key (seed ‖ public key; wipes itself on drop).
    secret: AsymmetricSecretKey<V4>,
    public_b64: String,
    created_at: Timestamp,
    retire_at: Option<Timestamp>,
    /// Set when the key was retired in an emergency, before its natural `retire_at`.
    retired_early_at: Option<Timestamp>,
}

impl SigningKey {
    fn generate(now: Timestamp) -> Result<SigningKey, CredentialError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(seed.as_mut())
            .map_err(|e| CredentialError::Crypto(format!("operating system RNG failed: {e}")))?;
        Self::from_seed(seed, now, None).map_err(CredentialError::Crypto)
    }

    fn from_seed(
        seed: Zeroizing<[u8; 32]>,
        created_at: Timestamp,
        retire_at: Option<Timestamp>,
    ) -> Result<SigningKey, String> {
        // `try_from_seed` refuses the all-zero seed, on which pasetors' own constructor panics.
        let pair = KeyPair::try_from_seed(Seed::new(*seed))
            .map_err(|e| format!("secret key is not a usable Ed25519 seed ({e})"))?;
        let secret = AsymmetricSecretKey::<V4>::from(pair.sk.as_ref())
            .map_err(|e| format!("secret key rejected by PASETO ({e:?})"))?;
        let public = AsymmetricPublicKey::<V4>::from(pair.pk.as_ref())
            .map_err(|e| format!("public key rejected by PASETO ({e:?})"))?;
        Ok(SigningKey {
            kid: paserk_id(&public)?,
            seed,
            secret,
            public_b64: b64::encode(pair.pk.as_ref()),
            created_at,
            retire_at,
            retired_early_at: None,
        })
    }

    fn copy_with_retire_at(
        &self,
        retire_at: Option<Timestamp>,
    ) -> Result<SigningKey, CredentialError> {
        let mut key = SigningKey::from_seed(self.seed.clone(), self.created_at, retire_at)
            .map_err(CredentialError::Crypto)?;
        key.retired_early_at = self.retired_early_at;
        Ok(key)
    }

    fn info(&self) -> PublicKeyInfo {
        PublicKeyInfo {
            kid: self.kid.clone(),
            public_key: self.public_b64.clone(),
            retire_at: self.retire_at,
        }
    }
}

/// `k4.pid.…` of a public key.
pub(crate) fn paserk_id(public: &AsymmetricPublicKey<V4>) -> Result<String, String> {
    let mut kid = String::new();
    FormatAsPaserk::fmt(&Id::from(public), &mut kid)
        .map_err(|_| "could not compute the key's PASERK id".to_string())?;
    Ok(kid)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: String,
    current: String,
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    kid: String,
    /// base64url Ed25519 seed (32 bytes).
    secret_key: String,
    /// base64url Ed25519 public key (32 bytes); must match the seed.
    public_key: String,
    created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retire_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_early_at: Option<Timestamp>,
}

impl KeyRing {
    /// Load `dir/token-keys.json`, or create it with one fresh key on first start.
    ///
    /// The directory is created 0700 if missing; the file is written 0600. An existing file
    /// readable or writable by group/others is refused with `key_file_insecure`; one that does
    /// not parse, or whose keys do not match their ids, with `key_file_invalid`.
    pub fn open_or_create(dir: &Path, now: Timestamp) -> Result<KeyRing, CredentialError> {
        create_private_dir(dir)?;
        let path = dir.join(KEY_FILE_NAME);
        match Self::load(&path) {
            Err(CredentialError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        let ring = KeyRing {
            path: Some(path.clone()),
            keys: vec![SigningKey::generate(now)?],
            current: 0,
        };
        match write_new_file(&path, &ring.file_bytes()?) {
            Ok(()) => Ok(ring),
            // Another process (a second server starting on the same data dir) won the race:
            // use its key rather than overwrite it.
            Err(CredentialError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Self::load(&path)
            }
            Err(e) => Err(e),
        }
    }

    fn load(path: &Path) -> Result<KeyRing, CredentialError> {
        let file = fs::File::open(path).map_err(|e| CredentialError::io(path, e))?;
        let meta = file.metadata().map_err(|e| CredentialError::io(path, e))?;
        check_owner_only(path, &meta)?;
        if !meta.is_file() || meta.len() > MAX_KEY_FILE_LEN {
            return Err(invalid(path, "not a regular file of plausible size"));
        }
        let mut bytes = Zeroizing::new(Vec::new());
        file.take(MAX_KEY_FILE_LEN)
            .read_to_end(&mut bytes)
            .map_err(|e| CredentialError::io(path, e))?;
        let parsed: KeyFile = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(path, &format!("not valid JSON of the expected shape ({e})")))?;
        if parsed.format != FILE_FORMAT {
            return Err(invalid(
                path,
                &format!("format is {:?}, expected {FILE_FORMAT:?}", parsed.format),
            ));
        }
        let mut keys = Vec::with_capacity(parsed.keys.len());
        for entry in &parsed.keys {
            let seed = b64::decode_exact::<32>(&entry.secret_key)
                .map(Zeroizing::new)
                .ok_or_else(|| {
                    invalid(
                        path,
                        &format!("secret key of {} is not 32 bytes of base64url", entry.kid),
                    )
                })?;
            let mut key = SigningKey::from_seed(seed, entry.created_at, entry.retire_at)
                .map_err(|e| invalid(path, &format!("key {}: {e}", entry.kid)))?;
            key.retired_early_at = entry.retired_early_at;
            // A mismatch means the file was edited or corrupted: signing with a key whose id
            // gateways map to another public key would only produce refused tokens.
            if key.kid != entry.kid || key.public_b64 != entry.public_key {
                return Err(invalid(
                    path,
                    &format!("key {} does not match its secret key", entry.kid),
                ));
            }
            if keys.iter().any(|k: &SigningKey| k.kid == key.kid) {
                return Err(invalid(path, &format!("key {} is listed twice", key.kid)));
            }
            keys.push(key);
        }
        let current = keys
            .iter()
            .position(|k| k.kid == parsed.current)
            .ok_or_else(|| invalid(path, "the current key is not among the keys"))?;
        if keys[current].retire_at.is_some() {
            return Err(invalid(path, "the current key has a retire_at"));
        }
        for mut entry in parsed.keys {
            zeroize::Zeroize::zeroize(&mut entry.secret_key);
        }
        Ok(KeyRing {
            path: Some(path.to_path_buf()),
            keys,
            current,
        })
    }

    /// A ring with one fresh key that lives only in memory and is never written anywhere:
    /// for tests, fuzzing and benchmarks, never for a server (its tokens die with it).
    pub fn in_memory(now: Timestamp) -> Result<KeyRing, CredentialError> {
        Ok(KeyRing {
            path: None,
            keys: vec![SigningKey::generate(now)?],
            current: 0,
        })
    }

    /// Add a fresh signing key and make it current. The previous current key verifies until
    /// `now + max_token_lifetime` (every token it signed has expired by then); keys already
    /// past their `retire_at` are dropped. The file is replaced atomically before the ring
    /// changes in memory, so a failed write leaves both as they were. Returns the new kid.
    pub fn rotate(
        &mut self,
        now: Timestamp,
        max_token_lifetime: Duration,
    ) -> Result<String, CredentialError> {
        let retire_at = now + max_token_lifetime.max(Duration::zero());
        let fresh = SigningKey::generate(now)?;
        let kid = fresh.kid.clone();

        let mut keys: Vec<SigningKey> = Vec::with_capacity(self.keys.len() + 1);
        for (i, key) in self.keys.iter().enumerate() {
            let key_retire = if i == self.current {
                Some(retire_at)
            } else {
                key.retire_at
            };
            // A key retired early stays listed until its tokens have all expired (see the
            // module notes); any other key is dropped once past its `retire_at`.
            let still_listed = key
                .retired_early_at
                .is_some_and(|t| t + max_token_lifetime > now);
            if key_retire.is_some_and(|t| t <= now) && !still_listed {
                continue;
            }
            keys.push(key.copy_with_retire_at(key_retire)?);
        }
        keys.push(fresh);
        let next = KeyRing {
            path: self.path.clone(),
            current: keys.len() - 1,
            keys,
        };
        if let Some(path) = &self.path {
            replace_file(path, &next.file_bytes()?)?;
        }
        *self = next;
        Ok(kid)
    }

    /// Id of the key that signs new tokens.
    pub fn current_kid(&self) -> &str {
        self.keys
            .get(self.current)
            .map(|k| k.kid.as_str())
            .unwrap_or_default()
    }

    /// The public keys gateways need at `now`: the current key, superseded keys whose
    /// `retire_at` is still ahead, and keys retired early (with their past `retire_at`, so
    /// gateways refuse their tokens as `key_retired`).
    pub fn public_keys(&self, now: Timestamp) -> Vec<PublicKeyInfo> {
        self.keys
            .iter()
            .filter(|k| k.retire_at.is_none_or(|t| t > now) || k.retired_early_at.is_some())
            .map(SigningKey::info)
            .collect()
    }

    /// Retire key `kid` now (emergency: the key leaked): from `now` on it verifies nothing.
    /// The file is replaced before the ring changes in memory. Refused for the current key
    /// (`key_is_current`: rotate first) and for a kid the ring does not hold (`no_such_key`).
    /// Returns `false` if the key was already retired by `now` (nothing changed).
    pub fn retire_now(&mut self, kid: &str, now: Timestamp) -> Result<bool, CredentialError> {
        let index = self.keys.iter().position(|k| k.kid == kid).ok_or_else(|| {
            CredentialError::NoSuchKey {
                kid: kid.chars().take(64).collect(),
            }
        })?;
        if index == self.current {
            return Err(CredentialError::KeyIsCurrent {
                kid: kid.to_string(),
            });
        }
        let already = self
            .keys
            .get(index)
            .is_some_and(|k| k.retired_early_at.is_some() || k.retire_at.is_some_and(|t| t <= now));
        if already {
            return Ok(false);
        }
        let mut keys = Vec::with_capacity(self.keys.len());
        for (i, key) in self.keys.iter().enumerate() {
            if i == index {
                let mut retired = key.copy_with_retire_at(Some(now))?;
                retired.retired_early_at = Some(now);
                keys.push(retired);
            } else {
                keys.push(key.copy_with_retire_at(key.retire_at)?);
            }
        }
        let next = KeyRing {
            path: self.path.clone(),
            current: self.current,
            keys,
        };
        if let Some(path) = &self.path {
            replace_file(path, &next.file_bytes()?)?;
        }
        *self = next;
        Ok(true)
    }

    /// Sign `claims` with the current key as a PASETO v4.public token, footer `{"kid":…}`,
    /// implicit assertion [`TOKEN_PURPOSE`]. Claims that a gateway would refuse for their shape
    /// (see [`GrantClaims::check_consistent`]) are refused here instead.
    pub fn issue(&self, claims: &GrantClaims) -> Result<String, CredentialError> {
        claims.check_consistent()?;
        let key = self
            .keys
            .get(self.current)
            .ok_or_else(|| CredentialError::Crypto("the key ring has no current key".into()))?;
        let payload = serde_json::to_vec(claims)
            .map_err(|e| CredentialError::BadClaims(format!("cannot serialize claims: {e}")))?;
        let footer = serde_json::to_vec(&serde_json::json!({ "kid": key.kid }))
            .map_err(|e| CredentialError::Crypto(format!("cannot serialize footer: {e}")))?;
        let token = PublicToken::sign(
            &key.secret,
            &payload,
            Some(&footer),
            Some(TOKEN_PURPOSE.as_bytes()),
        )
        .map_err(|e| CredentialError::Crypto(format!("PASETO signing failed ({e:?})")))?;
        if token.len() > crate::MAX_TOKEN_LEN {
            return Err(CredentialError::BadClaims(format!(
                "the token would be {} bytes, above the {}-byte limit gateways accept; split the grant's scope across fewer assets",
                token.len(),
                crate::MAX_TOKEN_LEN
            )));
        }
        Ok(token)
    }

    /// Where the key file lives (`None` for an in-memory ring).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn file_bytes(&self) -> Result<Zeroizing<Vec<u8>>, CredentialError> {
        let file = KeyFile {
            format: FILE_FORMAT.to_string(),
            current: self.current_kid().to_string(),
            keys: self
                .keys
                .iter()
                .map(|k| KeyEntry {
                    kid: k.kid.clone(),
                    secret_key: b64::encode(k.seed.as_ref()),
                    public_key: k.public_b64.clone(),
                    created_at: k.created_at,
                    retire_at: k.retire_at,
                    retired_early_at: k.retired_early_at,
                })
                .collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| CredentialError::Crypto(format!("cannot serialize key file: {e}")))?;
        bytes.push(b'\n');
        // Wipe the secret-bearing entry strings too.
        for mut entry in file.keys {
            zeroize::Zeroize::zeroize(&mut entry.secret_key);
        }
        Ok(Zeroizing::new(bytes))
    }
}

fn invalid(path: &Path, reason: &str) -> CredentialError {
    CredentialError::KeyFileInvalid {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

#[cfg(unix)]
fn check_owner_only(path: &Path, meta: &fs::Metadata) -> Result<(), CredentialError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CredentialError::KeyFileInsecure {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_path: &Path, _meta: &fs::Metadata) -> Result<(), CredentialError> {
    // Windows ACLs are not modelled; jitgate's supported server platforms are Unix.
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), CredentialError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| CredentialError::io(dir, e))
}

fn open_options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Created owner-only: never a moment where the secret sits in a readable file.
        options.mode(0o600);
    }
    options
}

fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), CredentialError> {
    let mut file = open_options()
        .open(path)
        .map_err(|e| CredentialError::io(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| CredentialError::io(path, e))?;
    sync_parent(path)
}

/// Write a sibling temporary file and rename it over `path`: readers see the old or the new
/// file, never half of one.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), CredentialError> {
    let tmp = path.with_extension("json.tmp");
    // A leftover from a crash mid-rotation holds nothing the real file lacks.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CredentialError::io(&tmp, e)),
    }
    let mut file = open_options()
        .open(&tmp)
        .map_err(|e| CredentialError::io(&tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| CredentialError::io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| CredentialError::io(path, e))?;
    sync_parent(path)
}

fn sync_parent(path: &Path) -> Result<(), CredentialError> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| CredentialError::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_is_a_paserk_public_id() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open_or_create(dir.path(), chrono::Utc::now()).unwrap();
        assert!(
            ring.current_kid().starts_with("k4.pid."),
            "{}",
            ring.current_kid()
        );
        assert_eq!(ring.current_kid().len(), "k4.pid.".len() + 44);
    }

    #[test]
    fn in_memory_ring_rotates_without_a_file() {
        let now = chrono::Utc::now();
        let mut ring = KeyRing::in_memory(now).unwrap();
        assert!(ring.path().is_none());
        let old = ring.current_kid().to_string();
        let new = ring.rotate(now, Duration::minutes(5)).unwrap();
        assert_ne!(old, new);
        assert_eq!(ring.public_keys(now).len(), 2);
        assert_eq!(ring.public_keys(now + Duration::minutes(5)).len(), 1);
    }

    #[test]
    fn retire_now_refuses_the_current_key_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc::now();
        let mut ring = KeyRing::open_or_create(dir.path(), now).unwrap();
        let old = ring.current_kid().to_string();
        let err = ring.retire_now(&old, now).unwrap_err();
        assert_eq!(err.code(), "key_is_current");
        assert!(err.to_string().contains("jitgate keys rotate"), "{err}");
        assert_eq!(
            ring.retire_now("k4.pid.nope", now).unwrap_err().code(),
            "no_such_key"
        );
        ring.rotate(now, Duration::days(30)).unwrap();
        assert!(ring.retire_now(&old, now).unwrap());
        assert!(!ring.retire_now(&old, now).unwrap(), "idempotent");
        // Listed with its past retire_at, in memory and after a reload.
        for ring in [ring, KeyRing::open_or_create(dir.path(), now).unwrap()] {
            let listed = ring.public_keys(now + Duration::seconds(1));
            let info = listed.iter().find(|k| k.kid == old).unwrap();
            assert_eq!(info.retire_at, Some(now));
        }
        // Kept through rotations until its tokens have all expired, then dropped.
        let mut ring = KeyRing::open_or_create(dir.path(), now).unwrap();
        ring.rotate(now + Duration::days(1), Duration::days(30))
            .unwrap();
        assert!(ring.public_keys(now).iter().any(|k| k.kid == old));
        ring.rotate(now + Duration::days(31), Duration::days(30))
            .unwrap();
        assert!(!ring.public_keys(now).iter().any(|k| k.kid == old));
    }

    #[test]
    fn all_zero_seed_is_refused_not_a_panic() {
        let err = SigningKey::from_seed(Zeroizing::new([0u8; 32]), chrono::Utc::now(), None)
            .err()
            .unwrap();
        assert!(err.contains("seed"), "{err}");
    }
}
