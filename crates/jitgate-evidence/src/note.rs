//! Signed notes (C2SP `signed-note`), the standard text form of checkpoints (C2SP
//! `tlog-checkpoint`) and witness cosignatures (C2SP `tlog-cosignature`, Ed25519, type 0x04).
//!
//! A jitgate checkpoint's signed text was always a valid checkpoint note body (origin = log
//! id, tree size, base64 root hash, and one extension line: the time). So the server's
//! existing Ed25519 signature over that text *is* a signed-note signature: the note form only
//! adds the standard signature line, `— <log id> base64(key hash ‖ signature)`, where the key
//! hash is `SHA-256(log id ‖ 0x0A ‖ 0x01 ‖ public key)[:4]`. Nothing is re-signed, and every
//! checkpoint ever stored has a note form.
//!
//! A witness cosignature is a second signature line on the same note, by another key:
//! `— <witness name> base64(key hash ‖ u64 big-endian timestamp ‖ signature)`, the signature
//! over `cosignature/v1\ntime <timestamp>\n` followed by the note text, and the key hash
//! computed with type byte 0x04. Keys travel as *vkeys*: `<name>+<hex key hash>+base64(type ‖
//! public key)`.
//!
//! Parsers here take untrusted text: bounded sizes, one accepted spelling of every value, no
//! panics (fuzzed by `fuzz/fuzz_targets/evidence_note.rs`).

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::{EvidenceKey, EvidencePublicKey};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Signature type byte of a log's own Ed25519 signature.
pub const TYPE_ED25519: u8 = 0x01;
/// Signature type byte of a timestamped Ed25519 cosignature.
pub const TYPE_COSIGNATURE: u8 = 0x04;
/// Longest note accepted (text and signatures).
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// Most signature lines accepted on one note (the standard asks for at least 16).
pub const MAX_SIGNATURES: usize = 64;
/// The domain-separation header of an Ed25519 cosignature.
const COSIGNATURE_HEADER: &str = "cosignature/v1\n";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NoteError {
    #[error("note is {0} bytes; at most {MAX_NOTE_BYTES} are accepted")]
    TooLarge(usize),
    #[error("note contains a control character other than newline")]
    ControlCharacter,
    #[error(
        "note has no signature block (the text, a blank line, then `— <name> <signature>` lines)"
    )]
    NoSignatures,
    #[error("note has more than {MAX_SIGNATURES} signature lines")]
    TooManySignatures,
    #[error("signature line {0}: {1}")]
    SignatureLine(usize, String),
    #[error("key name {0:?} is empty or contains a space or a plus sign")]
    KeyName(String),
    #[error("vkey {0:?}: {1}")]
    Vkey(String, String),
    #[error("the note is not a checkpoint: {0}")]
    NotACheckpoint(String),
    #[error("no signature by the trusted key {0} on this note")]
    NotSigned(String),
    #[error("the signature by {0} does not verify: the note was altered or forged")]
    BadSignature(String),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
}

/// `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]`: the key hash of signed notes.
pub fn key_hash(name: &str, sig_type: u8, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', sig_type]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Key names: non-empty, no Unicode spaces, no `+` (the vkey separator), no control characters.
pub fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty()
        || name.len() > 255
        || name
            .chars()
            .any(|c| c == '+' || c.is_whitespace() || c.is_control())
    {
        return Err(NoteError::KeyName(crate::checkpoint::truncate(name, 80)));
    }
    Ok(())
}

/// A verifier key: a name, a signature type and an Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vkey {
    pub name: String,
    pub sig_type: u8,
    pub public: EvidencePublicKey,
}

impl Vkey {
    /// The vkey of a log's evidence key (type 0x01, named by the log id).
    pub fn for_log(log_id: &str, key: &EvidencePublicKey) -> Result<Vkey, NoteError> {
        check_key_name(log_id)?;
        Ok(Vkey {
            name: log_id.to_string(),
            sig_type: TYPE_ED25519,
            public: key.clone(),
        })
    }

    /// The vkey of a witness (type 0x04).
    pub fn for_cosigner(name: &str, key: &EvidencePublicKey) -> Result<Vkey, NoteError> {
        check_key_name(name)?;
        Ok(Vkey {
            name: name.to_string(),
            sig_type: TYPE_COSIGNATURE,
            public: key.clone(),
        })
    }

    pub fn key_hash(&self) -> [u8; 4] {
        key_hash(&self.name, self.sig_type, &self.public.bytes)
    }

    /// Parse `<name>+<8 hex digits>+<base64(type ‖ 32-byte key)>`; the key hash must match.
    pub fn parse(text: &str) -> Result<Vkey, NoteError> {
        let text = text.trim();
        let bad = |m: &str| NoteError::Vkey(crate::checkpoint::truncate(text, 120), m.into());
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected <name>+<key hash>+<base64 key>"));
        };
        check_key_name(name)?;
        if !crate::checkpoint::is_lower_hex(hash, 8) {
            return Err(bad("the key hash is not 8 lowercase hex digits"));
        }
        let raw = B64
            .decode(key)
            .ok()
            .filter(|b| B64.encode(b) == key)
            .ok_or_else(|| bad("the key is not canonical standard base64"))?;
        let (&sig_type, public) = raw.split_first().ok_or_else(|| bad("the key is empty"))?;
        if sig_type != TYPE_ED25519 && sig_type != TYPE_COSIGNATURE {
            return Err(bad(&format!(
                "signature type 0x{sig_type:02x} is not supported (0x01 Ed25519, 0x04 Ed25519 cosignature)"
            )));
        }
        let public = EvidencePublicKey::from_bytes(public).map_err(|e| bad(&e.to_string()))?;
        let vkey = Vkey {
            name: name.to_string(),
            sig_type,
            public,
        };
        if hex::encode(vkey.key_hash()) != hash {
            return Err(bad("the key hash does not match the name and key"));
        }
        Ok(vkey)
    }

    /// Parse one vkey per line (blank lines and `#` comments ignored).
    pub fn parse_lines(text: &str) -> Result<Vec<Vkey>, NoteError> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(Vkey::parse)
            .collect()
    }

    fn matches(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.key_hash == self.key_hash()
    }
}

impl std::fmt::Display for Vkey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(self.sig_type);
        raw.extend_from_slice(&self.public.bytes);
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_hash()),
            B64.encode(raw)
        )
    }
}

/// One signature line: `— <name> base64(key hash ‖ signature bytes)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_hash: [u8; 4],
    /// What follows the key hash (a log signature: 64 bytes; a cosignature: 8 + 64).
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line, ending in a newline.
    pub fn line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_hash);
        raw.extend_from_slice(&self.signature);
        format!("\u{2014} {} {}\n", self.name, B64.encode(raw))
    }

    /// Parse one line (with or without its newline).
    pub fn parse_line(line: &str) -> Result<NoteSignature, String> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or("does not start with an em dash and a space")?;
        let (name, sig) = rest
            .split_once(' ')
            .ok_or("expected `— <name> <base64 signature>`")?;
        check_key_name(name).map_err(|e| e.to_string())?;
        let raw = B64
            .decode(sig)
            .ok()
            .filter(|b| B64.encode(b) == sig)
            .ok_or("the signature is not canonical standard base64")?;
        if raw.len() < 5 || raw.len() > 4 + 8 + 64 {
            return Err(format!(
                "{} signature bytes; a key hash and an Ed25519 signature are expected",
                raw.len()
            ));
        }
        Ok(NoteSignature {
            name: name.to_string(),
            key_hash: [raw[0], raw[1], raw[2], raw[3]],
            signature: raw[4..].to_vec(),
        })
    }
}

/// A parsed signed note: the text (ending in a newline) and its signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parse a signed note. The text is separated from the signatures by the last blank line.
    pub fn parse(note: &str) -> Result<Note, NoteError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge(note.len()));
        }
        if note.chars().any(|c| c != '\n' && c.is_control()) {
            return Err(NoteError::ControlCharacter);
        }
        let split = note.rfind("\n\n").ok_or(NoteError::NoSignatures)?;
        let text = &note[..=split];
        let block = &note[split + 2..];
        if block.is_empty() || !block.ends_with('\n') {
            return Err(NoteError::NoSignatures);
        }
        let mut signatures = Vec::new();
        for (i, line) in block.split_terminator('\n').enumerate() {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(
                NoteSignature::parse_line(line).map_err(|m| NoteError::SignatureLine(i + 1, m))?,
            );
        }
        Ok(Note {
            text: text.to_string(),
            signatures,
        })
    }

    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }

    /// The log's signature by `vkey` (type 0x01): present and valid, or an error.
    /// Signatures by other keys are ignored, as the standard requires.
    pub fn verify_log_signature(&self, vkey: &Vkey) -> Result<(), NoteError> {
        let sig = self
            .signatures
            .iter()
            .find(|s| vkey.matches(s))
            .ok_or_else(|| NoteError::NotSigned(vkey.to_string()))?;
        let bytes: [u8; 64] = sig
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| NoteError::BadSignature(vkey.name.clone()))?;
        if !vkey.public.verify(self.text.as_bytes(), &bytes) {
            return Err(NoteError::BadSignature(vkey.name.clone()));
        }
        Ok(())
    }
}

/// A witness's statement that it saw this checkpoint, consistent with everything it saw before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    pub witness: String,
    /// When the witness cosigned, seconds since the Unix epoch.
    pub timestamp: u64,
    /// The signature line as it travels (`— <witness> …\n`).
    pub line: String,
}

/// The message an Ed25519 cosignature signs.
fn cosigned_message(timestamp: u64, note_text: &str) -> String {
    format!("{COSIGNATURE_HEADER}time {timestamp}\n{note_text}")
}

/// Cosign a checkpoint's note text as witness `name` at `timestamp` (Unix seconds).
pub fn cosign(
    key: &EvidenceKey,
    name: &str,
    note_text: &str,
    timestamp: u64,
) -> Result<Cosignature, NoteError> {
    check_key_name(name)?;
    let public = key.public();
    let mut signature = Vec::with_capacity(72);
    signature.extend_from_slice(&timestamp.to_be_bytes());
    signature.extend_from_slice(&key.sign(cosigned_message(timestamp, note_text).as_bytes()));
    let sig = NoteSignature {
        name: name.to_string(),
        key_hash: key_hash(name, TYPE_COSIGNATURE, &public.bytes),
        signature,
    };
    Ok(Cosignature {
        witness: name.to_string(),
        timestamp,
        line: sig.line(),
    })
}

/// Check one cosignature line against a witness vkey over `note_text`. `Ok(None)` when the
/// line is by another key (ignored, as the standard requires); an error when it is by this
/// key and does not verify.
pub fn verify_cosignature(
    line: &str,
    vkey: &Vkey,
    note_text: &str,
) -> Result<Option<Cosignature>, NoteError> {
    let sig = NoteSignature::parse_line(line).map_err(|m| NoteError::SignatureLine(1, m))?;
    if vkey.sig_type != TYPE_COSIGNATURE || !vkey.matches(&sig) {
        return Ok(None);
    }
    let bad = || NoteError::BadSignature(vkey.name.clone());
    if sig.signature.len() != 72 {
        return Err(bad());
    }
    let (time, signature) = sig.signature.split_at(8);
    let timestamp = u64::from_be_bytes(time.try_into().map_err(|_| bad())?);
    if timestamp > i64::MAX as u64 {
        return Err(bad());
    }
    let signature: [u8; 64] = signature.try_into().map_err(|_| bad())?;
    if !vkey.public.verify(
        cosigned_message(timestamp, note_text).as_bytes(),
        &signature,
    ) {
        return Err(bad());
    }
    Ok(Some(Cosignature {
        witness: vkey.name.clone(),
        timestamp,
        line: sig.line(),
    }))
}

impl SignedCheckpoint {
    /// The checkpoint as a C2SP signed note: its signed text, a blank line, and the log's
    /// signature line (key name = log id).
    pub fn to_signed_note(&self, key: &EvidencePublicKey) -> Result<String, NoteError> {
        let text = self.checkpoint.body()?;
        let vkey = Vkey::for_log(&self.checkpoint.log_id, key)?;
        let signature = crate::checkpoint::decode_signature(&self.signature)
            .ok_or(CheckpointError::SignatureEncoding)?;
        let sig = NoteSignature {
            name: vkey.name.clone(),
            key_hash: vkey.key_hash(),
            signature: signature.to_vec(),
        };
        Ok(format!("{text}\n{}", sig.line()))
    }

    /// Read a checkpoint note signed by one of the log's `vkeys` (other signatures, such as
    /// cosignatures, are ignored here).
    pub fn from_signed_note(note: &str, vkeys: &[Vkey]) -> Result<SignedCheckpoint, NoteError> {
        let parsed = Note::parse(note)?;
        let mut checkpoint = checkpoint_of_text(&parsed.text)?;
        let mut last_error = None;
        let candidates = vkeys
            .iter()
            .filter(|v| v.sig_type == TYPE_ED25519 && v.name == checkpoint.log_id);
        for vkey in candidates {
            match parsed.verify_log_signature(vkey) {
                Ok(()) => {
                    checkpoint.key_id = vkey.public.key_id.clone();
                    let sig = parsed
                        .signatures
                        .iter()
                        .find(|s| vkey.matches(s))
                        .ok_or_else(|| NoteError::NotSigned(vkey.to_string()))?;
                    return Ok(SignedCheckpoint {
                        checkpoint,
                        signature: B64.encode(&sig.signature),
                    });
                }
                // Not signed by this key (another of the log's keys may have signed it), or
                // signed and altered: keep the most telling error.
                Err(e @ NoteError::BadSignature(_)) => last_error = Some(e),
                Err(e) => {
                    last_error.get_or_insert(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| NoteError::NotSigned(checkpoint.log_id.clone())))
    }
}

/// The checkpoint a note text states. The key id is not in the text: the caller fills it in
/// from the key whose signature verified.
fn checkpoint_of_text(text: &str) -> Result<Checkpoint, NoteError> {
    let fields = checkpoint_fields(text)?;
    Ok(Checkpoint {
        log_id: fields.origin.to_string(),
        tree_size: fields.tree_size,
        root_hash: hex::encode(fields.root),
        time: fields.time.to_string(),
        key_id: String::new(),
    })
}

/// The lines of a jitgate checkpoint note text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointText<'a> {
    pub origin: &'a str,
    pub tree_size: u64,
    pub root: crate::Hash,
    /// The time extension line (RFC 3339 UTC with milliseconds).
    pub time: &'a str,
}

/// Parse a checkpoint note text: exactly four lines (origin, tree size without leading zeros,
/// standard base64 of 32 bytes, time), each ending in a newline.
pub fn checkpoint_fields(text: &str) -> Result<CheckpointText<'_>, NoteError> {
    let bad = |m: &str| NoteError::NotACheckpoint(m.into());
    let lines: Vec<&str> = text
        .strip_suffix('\n')
        .ok_or_else(|| bad("the text does not end in a newline"))?
        .split('\n')
        .collect();
    let [origin, size, root, time] = lines.as_slice() else {
        return Err(bad(
            "expected four lines: log id, tree size, root hash, time",
        ));
    };
    crate::checkpoint::check_log_id(origin)?;
    let tree_size: u64 = size
        .parse()
        .ok()
        .filter(|n: &u64| n.to_string() == *size)
        .ok_or_else(|| bad("the tree size is not a decimal number without leading zeros"))?;
    let root: crate::Hash = B64
        .decode(root)
        .ok()
        .filter(|b| B64.encode(b) == *root)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("the root hash is not standard base64 of 32 bytes"))?;
    crate::checkpoint::parse_canonical_time(time)
        .ok_or_else(|| CheckpointError::Time((*time).to_string()))?;
    Ok(CheckpointText {
        origin,
        tree_size,
        root,
        time,
    })
}
