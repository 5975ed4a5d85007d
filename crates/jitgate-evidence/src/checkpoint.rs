//! Evidence keys and signed checkpoints.
//!
//! A checkpoint commits the server to the log as it stood: "the first `tree_size` events have
//! Merkle root `root_hash`". Its signed text is a C2SP-checkpoint-like body, one field per
//! line, each ending in `\n`:
//!
//! ```text
//! <log id>
//! <tree size, decimal>
//! <root hash, standard base64>
//! <time, RFC 3339 UTC with milliseconds>
//! ```
//!
//! signed with Ed25519 by the *evidence key* — a key of its own, never the token-signing key,
//! so that rotating or leaking one does not touch the other. Each checkpoint names its key by
//! `key_id` (the first 8 bytes of SHA-256 of the public key, hex), so after a rotation old
//! checkpoints keep verifying against the old public key while new ones use the new key.
//!
//! Every field has exactly one accepted spelling (lowercase hex, canonical time), so no byte
//! of a checkpoint can change without the signature failing.

use crate::Timestamp;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// First word of a public key file line.
pub const KEY_FILE_TAG: &str = "jitgate-evidence-key";
/// First word of a secret key file line.
pub const SECRET_KEY_FILE_TAG: &str = "jitgate-evidence-secret-key";
/// Longest log id accepted (it is one line of the signed text).
pub const MAX_LOG_ID_LEN: usize = 255;
/// Longest key file accepted, so a wrong path (a disk image, a log) fails fast.
pub const MAX_KEY_FILE_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("the system random number generator failed: {0}")]
    Random(String),
    #[error("an evidence secret key is 32 bytes; got {0}")]
    SecretLength(usize),
    #[error("an Ed25519 public key is 32 bytes; got {0}")]
    PublicLength(usize),
    #[error("not a valid Ed25519 public key (it is not a point on the curve, or a weak key)")]
    InvalidPublic,
    #[error("key file line {line}: {message}")]
    File { line: usize, message: String },
    #[error("key file is {size} bytes; at most {max} are accepted: is this the right file?")]
    FileTooLarge { size: usize, max: usize },
    #[error("key file holds no key: expected lines `{KEY_FILE_TAG} v1 <key id> <base64 key>`")]
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckpointError {
    #[error("log id {0:?} is not 1–{MAX_LOG_ID_LEN} printable ASCII characters without spaces")]
    LogId(String),
    #[error("root_hash {0:?} is not 64 lowercase hex digits")]
    RootHash(String),
    #[error("time {0:?} is not RFC 3339 UTC with milliseconds, e.g. 2026-05-04T10:00:00.000Z")]
    Time(String),
    #[error("key_id {0:?} is not 16 lowercase hex digits")]
    KeyId(String),
    #[error("signature is not 64 bytes of standard base64")]
    SignatureEncoding,
    #[error("checkpoint is signed by key {0}, which is not among the trusted evidence keys")]
    UnknownKey(String),
    #[error(
        "checkpoint signature does not verify with key {0}: the checkpoint was altered or forged"
    )]
    BadSignature(String),
}

/// The key id of an Ed25519 public key: hex of the first 8 bytes of its SHA-256.
pub fn key_id_of(public: &[u8; 32]) -> String {
    let digest = Sha256::digest(public);
    hex::encode(&digest[..8])
}

/// The server's evidence signing key. The caller stores it (owner-only, in the data dir);
/// this type never touches the file system.
#[derive(Clone)]
pub struct EvidenceKey {
    signing: SigningKey,
}

impl std::fmt::Debug for EvidenceKey {
    // Never print secret material, even in debug logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceKey")
            .field("key_id", &self.public().key_id)
            .finish_non_exhaustive()
    }
}

impl EvidenceKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        use rand::RngCore as _;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(EvidenceKey::from_seed(seed))
    }

    fn from_seed(seed: [u8; 32]) -> Self {
        EvidenceKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The 32-byte Ed25519 seed: what the caller persists.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::SecretLength(bytes.len()))?;
        Ok(EvidenceKey::from_seed(seed))
    }

    /// One line, `jitgate-evidence-secret-key v1 <key id> <base64 seed>\n`, for a secret file.
    pub fn to_text(&self) -> String {
        format!(
            "{SECRET_KEY_FILE_TAG} v1 {} {}\n",
            self.public().key_id,
            B64.encode(self.to_bytes())
        )
    }

    /// Parse [`EvidenceKey::to_text`]; the key id must match the key.
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        let mut found = None;
        for (n, line) in key_lines(text)? {
            if found.is_some() {
                return Err(KeyError::File {
                    line: n,
                    message: "a secret key file holds exactly one key".into(),
                });
            }
            let (id, bytes) = parse_key_line(line, n, SECRET_KEY_FILE_TAG)?;
            let key = EvidenceKey::from_bytes(&bytes).map_err(|e| KeyError::File {
                line: n,
                message: e.to_string(),
            })?;
            if key.public().key_id != id {
                return Err(KeyError::File {
                    line: n,
                    message: format!(
                        "key id {id} does not match the key (its id is {})",
                        key.public().key_id
                    ),
                });
            }
            found = Some(key);
        }
        found.ok_or(KeyError::Empty)
    }

    pub fn public(&self) -> EvidencePublicKey {
        let bytes = self.signing.verifying_key().to_bytes();
        EvidencePublicKey {
            key_id: key_id_of(&bytes),
            bytes,
        }
    }

    /// Ed25519 signature over `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// Sign a checkpoint of this log: the checkpoint names this key.
    pub fn sign_checkpoint(
        &self,
        log_id: &str,
        tree_size: u64,
        root: &crate::Hash,
        time: Timestamp,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        let checkpoint = Checkpoint {
            log_id: log_id.to_string(),
            tree_size,
            root_hash: hex::encode(root),
            time: crate::rfc3339(time),
            key_id: self.public().key_id,
        };
        let body = checkpoint.body()?;
        Ok(SignedCheckpoint {
            signature: B64.encode(self.sign(body.as_bytes())),
            checkpoint,
        })
    }
}

/// A public evidence key: what auditors are given (`--key <file>`) and what verifies
/// checkpoints and bundles.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EvidencePublicKey {
    /// Hex of the first 8 bytes of SHA-256 of `bytes`; derived, never chosen.
    pub key_id: String,
    pub bytes: [u8; 32],
}

impl EvidencePublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::PublicLength(bytes.len()))?;
        let vk = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublic)?;
        if vk.is_weak() {
            return Err(KeyError::InvalidPublic);
        }
        Ok(EvidencePublicKey {
            key_id: key_id_of(&bytes),
            bytes,
        })
    }

    /// One key file line: `jitgate-evidence-key v1 <key id> <base64 public key>\n`.
    pub fn to_line(&self) -> String {
        format!(
            "{KEY_FILE_TAG} v1 {} {}\n",
            self.key_id,
            B64.encode(self.bytes)
        )
    }

    /// Standard base64 of the 32 key bytes (as bundles carry it).
    pub fn to_base64(&self) -> String {
        B64.encode(self.bytes)
    }

    /// Parse a public key file: one key per line (several after rotations), `#` comments and
    /// blank lines ignored. Each line's key id must match its key.
    pub fn parse_file(text: &str) -> Result<Vec<EvidencePublicKey>, KeyError> {
        let mut keys: Vec<EvidencePublicKey> = Vec::new();
        for (n, line) in key_lines(text)? {
            let (id, bytes) = parse_key_line(line, n, KEY_FILE_TAG)?;
            let key = EvidencePublicKey::from_bytes(&bytes).map_err(|e| KeyError::File {
                line: n,
                message: e.to_string(),
            })?;
            if key.key_id != id {
                return Err(KeyError::File {
                    line: n,
                    message: format!(
                        "key id {id} does not match the key (its id is {})",
                        key.key_id
                    ),
                });
            }
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(keys)
    }

    /// Verify an Ed25519 signature (strict: rejects malleable signatures and weak keys, so
    /// a signature is evidence of exactly one message by exactly one key).
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(vk) = VerifyingKey::from_bytes(&self.bytes) else {
            return false;
        };
        vk.verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

/// Text of a key file as `(line number, line)` for the lines that are not blank or comments.
fn key_lines(text: &str) -> Result<Vec<(usize, &str)>, KeyError> {
    if text.len() > MAX_KEY_FILE_LEN {
        return Err(KeyError::FileTooLarge {
            size: text.len(),
            max: MAX_KEY_FILE_LEN,
        });
    }
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect())
}

fn parse_key_line(line: &str, n: usize, tag: &str) -> Result<(String, Vec<u8>), KeyError> {
    let err = |message: String| KeyError::File { line: n, message };
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [t, "v1", id, key] if *t == tag => {
            let bytes = B64
                .decode(key)
                .map_err(|e| err(format!("the key is not standard base64: {e}")))?;
            Ok(((*id).to_string(), bytes))
        }
        [t, v, ..] if *t == tag => Err(err(format!(
            "unsupported version {v:?}; this build reads v1"
        ))),
        _ => Err(err(format!(
            "expected `{tag} v1 <key id> <base64 key>`, found {:?}",
            truncate(line, 80)
        ))),
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// What a checkpoint asserts. Fields are kept as their exact text so what was signed is what
/// is stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub log_id: String,
    pub tree_size: u64,
    /// Lowercase hex of the Merkle root of the first `tree_size` events.
    pub root_hash: String,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Which evidence key signed it.
    pub key_id: String,
}

impl Checkpoint {
    /// The exact text that is signed. Fails if a field is not in its one accepted spelling.
    pub fn body(&self) -> Result<String, CheckpointError> {
        let root = self.root()?;
        self.timestamp()?;
        check_log_id(&self.log_id)?;
        if !is_lower_hex(&self.key_id, 16) {
            return Err(CheckpointError::KeyId(self.key_id.clone()));
        }
        Ok(format!(
            "{}\n{}\n{}\n{}\n",
            self.log_id,
            self.tree_size,
            B64.encode(root),
            self.time
        ))
    }

    /// The root hash as bytes.
    pub fn root(&self) -> Result<crate::Hash, CheckpointError> {
        decode_hash(&self.root_hash)
            .ok_or_else(|| CheckpointError::RootHash(self.root_hash.clone()))
    }

    /// The time as a timestamp; only the canonical spelling is accepted.
    pub fn timestamp(&self) -> Result<Timestamp, CheckpointError> {
        parse_canonical_time(&self.time).ok_or_else(|| CheckpointError::Time(self.time.clone()))
    }
}

/// A checkpoint and the evidence key's signature over [`Checkpoint::body`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// Standard base64 of the 64-byte Ed25519 signature.
    pub signature: String,
}

impl SignedCheckpoint {
    /// Verify the signature with the trusted key the checkpoint names.
    pub fn verify<'k>(
        &self,
        keys: &'k [EvidencePublicKey],
    ) -> Result<&'k EvidencePublicKey, CheckpointError> {
        let body = self.checkpoint.body()?;
        let signature =
            decode_signature(&self.signature).ok_or(CheckpointError::SignatureEncoding)?;
        let key = keys
            .iter()
            .find(|k| k.key_id == self.checkpoint.key_id)
            .ok_or_else(|| CheckpointError::UnknownKey(self.checkpoint.key_id.clone()))?;
        if !key.verify(body.as_bytes(), &signature) {
            return Err(CheckpointError::BadSignature(key.key_id.clone()));
        }
        Ok(key)
    }
}

pub(crate) fn check_log_id(id: &str) -> Result<(), CheckpointError> {
    // No spaces and no control characters: the log id is the first line of the signed text,
    // and other signed texts (bundle attestations) start with a line containing a space, so
    // the two can never be confused.
    if id.is_empty() || id.len() > MAX_LOG_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CheckpointError::LogId(truncate(id, 80)));
    }
    Ok(())
}

pub(crate) fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// 64 lowercase hex digits → hash (uppercase is refused: one spelling per value).
pub(crate) fn decode_hash(s: &str) -> Option<crate::Hash> {
    if !is_lower_hex(s, 64) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Standard padded base64 of exactly 64 bytes, in its canonical spelling.
pub(crate) fn decode_signature(s: &str) -> Option<[u8; 64]> {
    // 64 bytes are 88 characters with padding; the length check also bounds the work.
    if s.len() != 88 {
        return None;
    }
    let bytes = B64.decode(s).ok()?;
    let sig: [u8; 64] = bytes.try_into().ok()?;
    // The base64 engine refuses non-zero trailing bits, so the spelling is unique; check anyway.
    (B64.encode(sig) == s).then_some(sig)
}

/// RFC 3339, UTC, milliseconds, `Z` — and nothing else.
pub(crate) fn parse_canonical_time(s: &str) -> Option<Timestamp> {
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .ok()?
        .with_timezone(&chrono::Utc);
    (crate::rfc3339(t) == s).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_round_trips_and_ids_are_derived() {
        let key = EvidenceKey::generate().unwrap();
        let back = EvidenceKey::from_text(&key.to_text()).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
        let public = key.public();
        assert_eq!(public.key_id.len(), 16);
        let parsed = EvidencePublicKey::parse_file(&format!(
            "# rotated 2026-05\n\n{}{}",
            public.to_line(),
            EvidenceKey::generate().unwrap().public().to_line()
        ))
        .unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0], public);
        let lying = public.to_line().replace(&public.key_id, "0000000000000000");
        let err = EvidencePublicKey::parse_file(&lying).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        assert_eq!(
            EvidencePublicKey::parse_file("# nothing\n"),
            Err(KeyError::Empty)
        );
        assert!(EvidencePublicKey::parse_file("jitgate-evidence-key v2 a b").is_err());
    }

    #[test]
    fn the_key_file_example_in_the_docs_parses() {
        let text = "# jitgate evidence keys of plant-1\n\
            jitgate-evidence-key v1 34750f98bd59fcfc iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=\n\
            jitgate-evidence-key v1 6a3803d5f059902a gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q=\n";
        let keys = EvidencePublicKey::parse_file(text).unwrap();
        assert_eq!(keys[0], EvidenceKey::from_bytes(&[1; 32]).unwrap().public());
        assert_eq!(keys[1], EvidenceKey::from_bytes(&[2; 32]).unwrap().public());
    }

    #[test]
    fn checkpoints_sign_and_verify_and_name_their_key() {
        let key = EvidenceKey::generate().unwrap();
        let other = EvidenceKey::generate().unwrap();
        let t = chrono::DateTime::parse_from_rfc3339("2026-05-04T10:00:00.123Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let cp = key
            .sign_checkpoint("jitgate/plant-1", 7, &[7u8; 32], t)
            .unwrap();
        assert_eq!(
            cp.checkpoint.body().unwrap(),
            format!(
                "jitgate/plant-1\n7\n{}\n2026-05-04T10:00:00.123Z\n",
                B64.encode([7u8; 32])
            )
        );
        assert!(cp.verify(&[other.public(), key.public()]).is_ok());
        assert_eq!(
            cp.verify(&[other.public()]),
            Err(CheckpointError::UnknownKey(key.public().key_id))
        );
        let mut bad = cp.clone();
        bad.checkpoint.tree_size = 8;
        assert!(matches!(
            bad.verify(&[key.public()]),
            Err(CheckpointError::BadSignature(_))
        ));
        let mut upper = cp.clone();
        upper.checkpoint.time = "2026-05-04T10:00:00.123+00:00".into();
        assert!(matches!(
            upper.verify(&[key.public()]),
            Err(CheckpointError::Time(_))
        ));
        assert!(key.sign_checkpoint("has space", 1, &[0; 32], t).is_err());
    }
}
