//! Evidence bundles: everything an auditor needs to check one grant, in one JSON file, without
//! the server or its database.
//!
//! Two signatures make a bundle checkable offline, and they cover different things:
//! - the **checkpoint** (signed when the log reached `tree_size`) commits to every event of
//!   the log; each event in the bundle carries its inclusion proof against that checkpoint's
//!   root, so an event cannot be altered, invented or taken from another log;
//! - the **attestation** (signed at export) covers the bundle as assembled: which events were
//!   selected, the determining policies' text (which the log does not contain), and the key
//!   list. It is what makes removing an event, or editing a policy's text, detectable.
//!
//! Verification is ordered so that the most precise check sees a change first: an edited
//! event fails on its own inclusion proof (`events[3] (seq 12)`), not on the attestation.
//! The parser takes untrusted bytes: it has explicit size limits, refuses unknown fields and
//! duplicate keys, and never panics (fuzzed by `fuzz/fuzz_targets/evidence_bundle.rs`).

use crate::checkpoint::{
    check_log_id, decode_hash, decode_signature, is_lower_hex, truncate, CheckpointError,
};
pub use crate::cosigned::WitnessPolicy;
use crate::merkle::{leaf_hash, verify_inclusion, Hash, MerkleError, MerkleLog};
use crate::multiproof::verify_multiproof;
use crate::timeline::{self, TimelineEntry};
use crate::verify::CLOCK_SKEW_SECS;
use crate::{EvidenceKey, EvidencePublicKey, SignedCheckpoint, Timestamp};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use jitgate_core::{Event, EventKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// The `format` of bundles this build writes: one multi-proof for all events.
pub const BUNDLE_FORMAT: &str = "jitgate-evidence-bundle/2";
/// The earlier format, still read: an inclusion proof per event.
pub const BUNDLE_FORMAT_V1: &str = "jitgate-evidence-bundle/1";

/// First line of the attested text; it contains a space, which no log id (the first line of
/// a checkpoint body) may, so one signature can never be passed off as the other.
const ATTESTATION_TAG: &str = "jitgate-evidence-bundle v1";

/// Limits on what [`verify_bundle`] accepts. The defaults fit a grant with hundreds of
/// thousands of operations; lower them for a service that verifies uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole bundle, bytes.
    pub max_bytes: usize,
    pub max_events: usize,
    /// One event's canonical text, bytes.
    pub max_event_bytes: usize,
    /// Hashes in one inclusion proof (64 covers any log of up to 2^64 events).
    pub max_proof_len: usize,
    pub max_policies: usize,
    /// One policy's text, bytes.
    pub max_policy_bytes: usize,
    /// Ids: grant, policy, key.
    pub max_id_len: usize,
    pub max_keys: usize,
    /// Recording chunks (each at most `jitgate_core::recording::MAX_CHUNK_BYTES`).
    pub max_recording_chunks: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 256 * 1024 * 1024,
            max_events: 1_000_000,
            max_event_bytes: 1024 * 1024,
            max_proof_len: 64,
            max_policies: 1024,
            max_policy_bytes: 1024 * 1024,
            max_id_len: 256,
            max_keys: 64,
            max_recording_chunks: 1_000_000,
        }
    }
}

/// A bundle as written to disk. Build one with [`Bundle::build`]; check one with
/// [`verify_bundle`] — a `Bundle` value itself is unverified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// The log the events come from (the checkpoint names it too).
    pub log_id: String,
    /// The grant this bundle is the evidence of.
    pub grant_id: String,
    /// The signed checkpoint the events' proof leads to.
    pub checkpoint: SignedCheckpoint,
    /// The grant's events in increasing seq order.
    pub events: Vec<BundleEvent>,
    /// Format 2: the multi-proof of all events in the checkpoint's tree (`crate::multiproof`),
    /// standard base64 hashes in depth-first order. Empty in format 1, where each event
    /// carries its own proof.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multiproof: Vec<String>,
    /// Determining policies' text by policy id, as the exporter had them.
    #[serde(deserialize_with = "unique_map")]
    pub policies: BTreeMap<String, String>,
    /// The evidence public keys that signed the checkpoint and the attestation (for
    /// reference: trust comes only from the keys the auditor passes in).
    pub keys: Vec<BundleKey>,
    pub attestation: Attestation,
    /// The bytes of the grant's session recordings, one entry per chunk, by session and
    /// index: each is checked against the hash its `recording.chunk` event carries
    /// (docs/evidence.md, "Recordings"). Left out when the grant has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recordings: Vec<BundleChunk>,
    /// Witness cosignatures of the checkpoint: signed-note signature lines (`— <witness>
    /// <base64>`, C2SP `tlog-cosignature`), checked against the witness keys the auditor
    /// trusts (docs/evidence.md, "Witnesses"). Left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cosignatures: Vec<String>,
}

/// One recording chunk's bytes in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleChunk {
    pub session_id: String,
    pub index: u64,
    /// Standard base64 of the chunk's bytes.
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleEvent {
    pub seq: u64,
    /// The canonical event text, verbatim as the log hashed it.
    pub canonical: String,
    /// Format 1 only: inclusion proof of leaf `seq − 1` in the checkpoint's tree, lowercase
    /// hex hashes (left out in format 2, which has one multi-proof for all events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proof: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleKey {
    pub key_id: String,
    /// Standard base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
}

/// The exporter's signature over the bundle as assembled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    pub key_id: String,
    /// How many events were exported (so a removed one is named as such).
    pub events: u64,
    /// SHA-256 (hex) of each policy's text (so an edited one is named).
    #[serde(deserialize_with = "unique_map")]
    pub policy_sha256: BTreeMap<String, String>,
    /// The recording chunks exported, as `<session>/<index>` (so a removed one is named).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recording_chunks: Vec<String>,
    /// Standard base64 Ed25519 signature over [`Bundle::attested_text`].
    pub signature: String,
}

/// Supplies inclusion proofs: an in-memory [`MerkleLog`], or a closure over whatever the
/// server keeps.
pub trait ProofSource {
    /// The multi-proof of the leaves at `indices` (strictly increasing) in the tree of
    /// `tree_size` leaves (`crate::multiproof`).
    fn multiproof(&self, indices: &[u64], tree_size: u64) -> Result<Vec<Hash>, MerkleError>;
}

impl ProofSource for MerkleLog {
    fn multiproof(&self, indices: &[u64], tree_size: u64) -> Result<Vec<Hash>, MerkleError> {
        MerkleLog::multiproof(self, indices, tree_size)
    }
}

impl<F> ProofSource for F
where
    F: Fn(&[u64], u64) -> Result<Vec<Hash>, MerkleError>,
{
    fn multiproof(&self, indices: &[u64], tree_size: u64) -> Result<Vec<Hash>, MerkleError> {
        self(indices, tree_size)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BundleError {
    #[error("bundle is {size} bytes; at most {max} are accepted")]
    TooLarge { size: usize, max: usize },
    #[error(
        "not a valid bundle (JSON line {line}, column {column}): {message}; a truncated or \
         hand-edited file gives this"
    )]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Field { path: String, message: String },
    #[error("format {found:?} is not supported; this build reads {BUNDLE_FORMAT:?}")]
    Format { found: String },
    #[error("checkpoint: {0}")]
    Checkpoint(CheckpointError),
    #[error(
        "{path} (seq {seq}): events are not in increasing seq order (seq {seq} follows seq \
         {previous}): the bundle's events were reordered or duplicated"
    )]
    Order {
        path: String,
        seq: u64,
        previous: u64,
    },
    #[error("{path} (seq {seq}): the checkpoint is older than its events: {message}")]
    CheckpointOlderThanEvents {
        path: String,
        seq: u64,
        message: String,
    },
    #[error(
        "{path} (seq {seq}): not in the log the checkpoint signed (inclusion proof: {reason}): \
         the event or its proof was altered"
    )]
    Inclusion {
        path: String,
        seq: u64,
        reason: MerkleError,
    },
    #[error(
        "events: they do not lead to the checkpoint's root ({reason}): an event's text or seq, \
         or the multi-proof, was altered, or an event is not in this log (one multi-proof \
         covers all events, so it cannot say which)"
    )]
    MultiProof { reason: MerkleError },
    #[error("{path} (seq {seq}): the canonical text is not a jitgate event: {message}")]
    NotAnEvent {
        path: String,
        seq: u64,
        message: String,
    },
    #[error("{path} (seq {seq}): the text is an event but not in the canonical form of its version (v2: RFC 8785 JCS; no version: keys sorted by UTF-8 bytes), or of an unknown version")]
    NotCanonical { path: String, seq: u64 },
    #[error("{path} (seq {seq}): does not belong to this grant's chain: {message}")]
    ForeignEvent {
        path: String,
        seq: u64,
        message: String,
    },
    #[error("{path} (seq {seq}): the timeline is not causally possible: {message}")]
    Causality {
        path: String,
        seq: u64,
        message: String,
    },
    #[error("the bundle is incomplete: {0}")]
    Incomplete(String),
    #[error("attestation: {0}")]
    Attestation(String),
    #[error("{path}: {message}")]
    Recording { path: String, message: String },
    #[error("cannot build the bundle: {0}")]
    Build(String),
    #[error("witnesses: {0}")]
    Witnesses(String),
}

fn field(path: impl Into<String>, message: impl Into<String>) -> BundleError {
    BundleError::Field {
        path: path.into(),
        message: message.into(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Bundle {
    /// Assemble and sign the bundle of one grant.
    ///
    /// `events` are `(seq, canonical text)` of the grant's events (request, decision,
    /// approvals, grant, credentials, sessions, operations, end, teardown), in any order;
    /// `proofs` gives inclusion proofs in the checkpoint's tree (leaf index = seq − 1);
    /// `signer` is the current evidence key; `known_keys` are the public evidence keys (the
    /// checkpoint may have been signed with an older one).
    pub fn build<P: ProofSource + ?Sized>(
        grant_id: &str,
        mut events: Vec<(u64, String)>,
        proofs: &P,
        checkpoint: SignedCheckpoint,
        policies: BTreeMap<String, String>,
        signer: &EvidenceKey,
        known_keys: &[EvidencePublicKey],
    ) -> Result<Bundle, BundleError> {
        let build = |m: String| BundleError::Build(m);
        events.sort_by_key(|(seq, _)| *seq);
        let cp = &checkpoint.checkpoint;
        let root = cp.root().map_err(BundleError::Checkpoint)?;
        let mut out = Vec::with_capacity(events.len());
        let mut leaves = Vec::with_capacity(events.len());
        let mut previous = 0;
        for (seq, canonical) in events {
            if seq == previous {
                return Err(build(format!("event seq {seq} is given twice")));
            }
            previous = seq;
            let index = seq
                .checked_sub(1)
                .ok_or_else(|| build("seq 0 is not an event (events count from 1)".into()))?;
            if seq > cp.tree_size {
                return Err(build(format!(
                    "event seq {seq} is not covered by the checkpoint (tree size {}): sign a \
                     newer checkpoint first",
                    cp.tree_size
                )));
            }
            leaves.push((index, leaf_hash(canonical.as_bytes())));
            out.push(BundleEvent {
                seq,
                canonical,
                proof: Vec::new(),
            });
        }
        let indices: Vec<u64> = leaves.iter().map(|(i, _)| *i).collect();
        let multiproof = proofs
            .multiproof(&indices, cp.tree_size)
            .map_err(|e| build(format!("no multi-proof for the events: {e}")))?;
        verify_multiproof(cp.tree_size, &leaves, &multiproof, &root).map_err(|e| {
            build(format!(
                "the proof source and the checkpoint disagree ({e}): are the texts the stored \
                 canonical texts, and the proof source the same log?"
            ))
        })?;
        let signer_public = signer.public();
        let checkpoint_key = if cp.key_id == signer_public.key_id {
            signer_public
        } else {
            known_keys
                .iter()
                .find(|k| k.key_id == cp.key_id)
                .cloned()
                .ok_or_else(|| {
                    build(format!(
                        "the checkpoint's key {} is not among the known keys",
                        cp.key_id
                    ))
                })?
        };
        let mut bundle = Bundle {
            format: BUNDLE_FORMAT.to_string(),
            log_id: cp.log_id.clone(),
            grant_id: grant_id.to_string(),
            events: out,
            multiproof: multiproof.iter().map(|h| B64.encode(h)).collect(),
            attestation: Attestation {
                key_id: String::new(),
                events: 0,
                policy_sha256: BTreeMap::new(),
                recording_chunks: Vec::new(),
                signature: String::new(),
            },
            recordings: Vec::new(),
            cosignatures: Vec::new(),
            policies,
            keys: vec![BundleKey {
                key_id: checkpoint_key.key_id.clone(),
                public_key: checkpoint_key.to_base64(),
            }],
            checkpoint,
        };
        bundle.attest(signer);
        Ok(bundle)
    }

    /// (Re-)sign the bundle as it now stands with `signer`: the event count, the policy
    /// digests and the key list are taken from the bundle. [`Bundle::build`] calls this; call
    /// it again only after deliberately changing a bundle (e.g. adding policy text).
    pub fn attest(&mut self, signer: &EvidenceKey) {
        let public = signer.public();
        let checkpoint_key = &self.checkpoint.checkpoint.key_id;
        self.keys
            .retain(|k| &k.key_id == checkpoint_key || k.key_id == public.key_id);
        if !self.keys.iter().any(|k| k.key_id == public.key_id) {
            self.keys.push(BundleKey {
                key_id: public.key_id.clone(),
                public_key: public.to_base64(),
            });
        }
        self.attestation = Attestation {
            key_id: public.key_id,
            events: self.events.len() as u64,
            policy_sha256: self
                .policies
                .iter()
                .map(|(id, text)| (id.clone(), sha256_hex(text.as_bytes())))
                .collect(),
            recording_chunks: self
                .recordings
                .iter()
                .map(|c| format!("{}/{}", c.session_id, c.index))
                .collect(),
            signature: String::new(),
        };
        self.attestation.signature = B64.encode(signer.sign(self.attested_text().as_bytes()));
    }

    /// Add the grant's recording chunks `(session, index, bytes)` and sign the bundle again
    /// with `signer` (the attestation lists the chunks exported).
    pub fn with_recordings(
        mut self,
        chunks: Vec<(String, u64, Vec<u8>)>,
        signer: &EvidenceKey,
    ) -> Bundle {
        let mut chunks = chunks;
        chunks.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        self.recordings = chunks
            .into_iter()
            .map(|(session_id, index, bytes)| BundleChunk {
                session_id,
                index,
                data: B64.encode(bytes),
            })
            .collect();
        self.attest(signer);
        self
    }

    /// Add witness cosignatures of the checkpoint (signature lines) and sign the bundle again.
    pub fn with_cosignatures(mut self, lines: Vec<String>, signer: &EvidenceKey) -> Bundle {
        self.cosignatures = lines
            .into_iter()
            .map(|l| l.trim_end_matches('\n').to_string())
            .collect();
        self.attest(signer);
        self
    }

    /// Compact JSON: what `jitgate evidence export` writes. Compact because proofs dominate
    /// the size (≈17 hashes per event in a log of 200,000) and indentation would add a third;
    /// `jq . bundle.json` shows it indented.
    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail; an empty string would fail verification.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Indented JSON, for reading and for tests that edit a bundle by hand.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The text the attestation signs: a tag line and the SHA-256 of a length-prefixed
    /// encoding of every field except the signature itself. Length prefixes make the encoding
    /// unambiguous whatever the fields contain.
    pub fn attested_text(&self) -> String {
        let mut h = Sha256::new();
        let mut put = |s: &str| {
            h.update(s.len().to_string().as_bytes());
            h.update(b":");
            h.update(s.as_bytes());
            h.update(b"\n");
        };
        put(&self.format);
        put(&self.log_id);
        put(&self.grant_id);
        let cp = &self.checkpoint.checkpoint;
        put(&cp.log_id);
        put(&cp.tree_size.to_string());
        put(&cp.root_hash);
        put(&cp.time);
        put(&cp.key_id);
        put(&self.checkpoint.signature);
        put(&self.events.len().to_string());
        for e in &self.events {
            put(&e.seq.to_string());
            put(&sha256_hex(e.canonical.as_bytes()));
            put(&e.proof.len().to_string());
            for p in &e.proof {
                put(p);
            }
        }
        // Format 2's one proof (format 1 bundles have none: their text is unchanged).
        if !self.multiproof.is_empty() {
            put("multiproof");
            put(&self.multiproof.len().to_string());
            for h in &self.multiproof {
                put(h);
            }
        }
        put(&self.policies.len().to_string());
        for (id, text) in &self.policies {
            put(id);
            put(&sha256_hex(text.as_bytes()));
        }
        put(&self.keys.len().to_string());
        for k in &self.keys {
            put(&k.key_id);
            put(&k.public_key);
        }
        put(&self.attestation.key_id);
        put(&self.attestation.events.to_string());
        put(&self.attestation.policy_sha256.len().to_string());
        for (id, digest) in &self.attestation.policy_sha256 {
            put(id);
            put(digest);
        }
        // Recordings only when there are some: bundles without keep their earlier text.
        if !self.recordings.is_empty() || !self.attestation.recording_chunks.is_empty() {
            put("recordings");
            put(&self.recordings.len().to_string());
            for c in &self.recordings {
                put(&c.session_id);
                put(&c.index.to_string());
                put(&sha256_hex(c.data.as_bytes()));
            }
            put(&self.attestation.recording_chunks.len().to_string());
            for c in &self.attestation.recording_chunks {
                put(c);
            }
        }
        // Cosignatures only when there are some, for the same reason.
        if !self.cosignatures.is_empty() {
            put("cosignatures");
            put(&self.cosignatures.len().to_string());
            for line in &self.cosignatures {
                put(line);
            }
        }
        format!("{ATTESTATION_TAG}\n{}\n", hex::encode(h.finalize()))
    }
}

/// Deserialize a JSON object into a map, refusing a key given twice (serde would silently keep
/// the last one, so two bundles with different bytes would verify alike).
fn unique_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of strings")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let mut m = BTreeMap::new();
            while let Some((k, v)) = a.next_entry::<String, String>()? {
                if m.contains_key(&k) {
                    return Err(serde::de::Error::custom(format!("key {k:?} appears twice")));
                }
                m.insert(k, v);
            }
            Ok(m)
        }
    }
    d.deserialize_map(V)
}

/// One verified event of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEvent {
    pub seq: u64,
    pub event: Event,
    pub canonical: String,
}

/// A bundle whose every check passed: what the timeline, the report and the CLI work from.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedBundle {
    pub log_id: String,
    pub grant_id: String,
    pub request_id: String,
    pub checkpoint: crate::Checkpoint,
    /// Key that signed the attestation.
    pub attested_by: String,
    pub events: Vec<VerifiedEvent>,
    pub policies: BTreeMap<String, String>,
    /// Things worth an auditor's attention that do not make the bundle invalid.
    pub notes: Vec<String>,
    /// The grant's session recordings, each chunk checked against its logged hash.
    pub recordings: Vec<VerifiedRecording>,
    /// Cosignatures of the checkpoint by witnesses the auditor trusts, each verified.
    pub witnesses: Vec<crate::Cosignature>,
}

/// One session's recording in a verified bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRecording {
    pub session_id: String,
    /// Chunks whose `recording.chunk` event is in the bundle.
    pub chunks: u64,
    /// Of those, chunks whose bytes are in the bundle (each matched its hash).
    pub chunks_with_bytes: u64,
    /// Bytes of the cast as the events record it.
    pub bytes: u64,
    /// The last chunk's event is there (the recorder finished).
    pub complete: bool,
    /// The cast: the chunks' bytes from the first up to the first missing one.
    pub cast: Vec<u8>,
}

impl VerifiedBundle {
    /// One entry per event, in log order.
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        self.events.iter().map(timeline::entry).collect()
    }

    /// The timeline as aligned text lines (what `jitgate evidence verify-bundle` prints).
    pub fn timeline_text(&self) -> String {
        timeline::render_text(self)
    }

    /// Events of one kind.
    pub fn of_kind(&self, kind: EventKind) -> impl Iterator<Item = &VerifiedEvent> {
        self.events.iter().filter(move |e| e.event.kind == kind)
    }
}

/// [`verify_bundle_with`] under the default [`Limits`].
pub fn verify_bundle(
    bytes: &[u8],
    trusted_keys: &[EvidencePublicKey],
) -> Result<VerifiedBundle, BundleError> {
    verify_bundle_with(bytes, trusted_keys, &Limits::default())
}

/// Parse and fully verify a bundle against the evidence public keys the auditor trusts.
pub fn verify_bundle_with(
    bytes: &[u8],
    trusted_keys: &[EvidencePublicKey],
    limits: &Limits,
) -> Result<VerifiedBundle, BundleError> {
    verify_bundle_witnessed(bytes, trusted_keys, limits, &WitnessPolicy::default())
}

/// [`verify_bundle_with`], and the checkpoint must carry valid cosignatures of at least
/// `witnesses.min` of the witnesses the auditor trusts.
pub fn verify_bundle_witnessed(
    bytes: &[u8],
    trusted_keys: &[EvidencePublicKey],
    limits: &Limits,
    witnesses: &WitnessPolicy,
) -> Result<VerifiedBundle, BundleError> {
    let bundle = parse_bundle(bytes, limits)?;
    let mut verified = verify_parsed(&bundle, trusted_keys)?;
    let body = bundle
        .checkpoint
        .checkpoint
        .body()
        .map_err(BundleError::Checkpoint)?;
    verified.witnesses =
        crate::cosigned::check(&body, &bundle.cosignatures, witnesses, &mut verified.notes)?;
    Ok(verified)
}

/// Parse a bundle and check its shape and limits (no signature or proof is checked here).
pub fn parse_bundle(bytes: &[u8], limits: &Limits) -> Result<Bundle, BundleError> {
    if bytes.len() > limits.max_bytes {
        return Err(BundleError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let bundle: Bundle = serde_json::from_slice(bytes).map_err(|e| BundleError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    check_shape(&bundle, limits)?;
    Ok(bundle)
}

fn check_id(path: &str, id: &str, limits: &Limits) -> Result<(), BundleError> {
    if id.is_empty() || id.len() > limits.max_id_len || id.chars().any(char::is_control) {
        return Err(field(
            path,
            format!(
                "must be 1–{} characters without control characters",
                limits.max_id_len
            ),
        ));
    }
    Ok(())
}

fn check_shape(b: &Bundle, limits: &Limits) -> Result<(), BundleError> {
    if b.format != BUNDLE_FORMAT && b.format != BUNDLE_FORMAT_V1 {
        return Err(BundleError::Format {
            found: truncate(&b.format, 80),
        });
    }
    let v1 = b.format == BUNDLE_FORMAT_V1;
    if v1 && !b.multiproof.is_empty() {
        return Err(field(
            "multiproof",
            "format 1 bundles carry a proof per event",
        ));
    }
    if !v1 {
        if let Some(i) = b.events.iter().position(|e| !e.proof.is_empty()) {
            return Err(field(
                format!("events[{i}].proof"),
                "format 2 bundles carry one multi-proof, not a proof per event",
            ));
        }
        // A multi-proof needs at most one hash per level per event.
        let max = limits.max_proof_len.saturating_mul(b.events.len().max(1));
        if b.multiproof.len() > max {
            return Err(field(
                "multiproof",
                format!("{} hashes; at most {max} are accepted", b.multiproof.len()),
            ));
        }
        for (j, h) in b.multiproof.iter().enumerate() {
            let ok = B64
                .decode(h)
                .ok()
                .filter(|d| d.len() == 32 && B64.encode(d) == *h)
                .is_some();
            if !ok {
                return Err(field(
                    format!("multiproof[{j}]"),
                    "not canonical standard base64 of 32 bytes",
                ));
            }
        }
    }
    check_log_id(&b.log_id).map_err(|e| field("log_id", e.to_string()))?;
    check_id("grant_id", &b.grant_id, limits)?;
    if b.events.is_empty() {
        return Err(field(
            "events",
            "no events: a bundle holds at least the request and the grant",
        ));
    }
    if b.events.len() > limits.max_events {
        return Err(field(
            "events",
            format!(
                "{} events; at most {} are accepted",
                b.events.len(),
                limits.max_events
            ),
        ));
    }
    for (i, e) in b.events.iter().enumerate() {
        if e.canonical.len() > limits.max_event_bytes {
            return Err(field(
                format!("events[{i}].canonical"),
                format!(
                    "{} bytes; at most {} are accepted",
                    e.canonical.len(),
                    limits.max_event_bytes
                ),
            ));
        }
        if e.proof.len() > limits.max_proof_len {
            return Err(field(
                format!("events[{i}].proof"),
                format!(
                    "{} hashes; at most {} are accepted",
                    e.proof.len(),
                    limits.max_proof_len
                ),
            ));
        }
        for (j, p) in e.proof.iter().enumerate() {
            if !is_lower_hex(p, 64) {
                return Err(field(
                    format!("events[{i}].proof[{j}]"),
                    "not 64 lowercase hex digits",
                ));
            }
        }
    }
    if b.policies.len() > limits.max_policies {
        return Err(field(
            "policies",
            format!("more than {} policies", limits.max_policies),
        ));
    }
    for (id, text) in &b.policies {
        check_id(&format!("policies[{id:?}]"), id, limits)?;
        if text.len() > limits.max_policy_bytes {
            return Err(field(
                format!("policies[{:?}]", truncate(id, 80)),
                format!(
                    "{} bytes; at most {} are accepted",
                    text.len(),
                    limits.max_policy_bytes
                ),
            ));
        }
    }
    if b.keys.is_empty() || b.keys.len() > limits.max_keys {
        return Err(field(
            "keys",
            format!("must list 1–{} keys", limits.max_keys),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, k) in b.keys.iter().enumerate() {
        let path = format!("keys[{i}]");
        if !is_lower_hex(&k.key_id, 16) {
            return Err(field(
                format!("{path}.key_id"),
                "not 16 lowercase hex digits",
            ));
        }
        let bytes = B64
            .decode(&k.public_key)
            .ok()
            .filter(|b| B64.encode(b) == k.public_key)
            .ok_or_else(|| {
                field(
                    format!("{path}.public_key"),
                    "not canonical standard base64",
                )
            })?;
        let public = EvidencePublicKey::from_bytes(&bytes)
            .map_err(|e| field(format!("{path}.public_key"), e.to_string()))?;
        if public.key_id != k.key_id {
            return Err(field(
                format!("{path}.key_id"),
                format!(
                    "{} is not the id of this key (its id is {})",
                    k.key_id, public.key_id
                ),
            ));
        }
        if !seen.insert(k.key_id.as_str()) {
            return Err(field(format!("{path}.key_id"), "key listed twice"));
        }
    }
    if b.recordings.len() > limits.max_recording_chunks {
        return Err(field(
            "recordings",
            format!(
                "{} chunks; at most {} are accepted",
                b.recordings.len(),
                limits.max_recording_chunks
            ),
        ));
    }
    let max_b64 = jitgate_core::recording::MAX_CHUNK_BYTES.div_ceil(3) * 4;
    for (i, c) in b.recordings.iter().enumerate() {
        if !jitgate_core::recording::valid_session_id(&c.session_id) {
            return Err(field(
                format!("recordings[{i}].session_id"),
                "1–128 characters of A-Z a-z 0-9 . _ -",
            ));
        }
        if c.data.len() > max_b64 {
            return Err(field(
                format!("recordings[{i}].data"),
                format!(
                    "more than {} bytes",
                    jitgate_core::recording::MAX_CHUNK_BYTES
                ),
            ));
        }
    }
    if b.cosignatures.len() > crate::note::MAX_SIGNATURES {
        return Err(field(
            "cosignatures",
            format!("more than {} cosignatures", crate::note::MAX_SIGNATURES),
        ));
    }
    for (i, line) in b.cosignatures.iter().enumerate() {
        crate::note::NoteSignature::parse_line(line)
            .map_err(|m| field(format!("cosignatures[{i}]"), m))?;
    }
    if b.attestation.recording_chunks.len() > limits.max_recording_chunks {
        return Err(field("attestation.recording_chunks", "too many entries"));
    }
    let a = &b.attestation;
    if !is_lower_hex(&a.key_id, 16) {
        return Err(field("attestation.key_id", "not 16 lowercase hex digits"));
    }
    if a.policy_sha256.len() > limits.max_policies {
        return Err(field("attestation.policy_sha256", "too many entries"));
    }
    for (id, d) in &a.policy_sha256 {
        check_id(&format!("attestation.policy_sha256[{id:?}]"), id, limits)?;
        if !is_lower_hex(d, 64) {
            return Err(field(
                format!("attestation.policy_sha256[{:?}]", truncate(id, 80)),
                "not 64 lowercase hex digits",
            ));
        }
    }
    if decode_signature(&a.signature).is_none() {
        return Err(field(
            "attestation.signature",
            "not 64 bytes of canonical standard base64",
        ));
    }
    Ok(())
}

/// Explain which trusted keys there are, for "not trusted" messages.
fn trusted_list(keys: &[EvidencePublicKey]) -> String {
    if keys.is_empty() {
        return "none were given".into();
    }
    keys.iter()
        .map(|k| k.key_id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn verify_parsed(b: &Bundle, trusted: &[EvidencePublicKey]) -> Result<VerifiedBundle, BundleError> {
    // Cheap checks first and signatures last: every check below names the place it fails,
    // and a signature is only needed to tell a forged checkpoint from a forged event.
    let cp = &b.checkpoint.checkpoint;
    if cp.log_id != b.log_id {
        return Err(field(
            "checkpoint.log_id",
            format!(
                "names log {:?}, the bundle {:?}",
                truncate(&cp.log_id, 80),
                b.log_id
            ),
        ));
    }
    let Some(cp_key) = trusted.iter().find(|k| k.key_id == cp.key_id) else {
        return Err(BundleError::Checkpoint(CheckpointError::UnknownKey(
            format!(
                "{} (trusted: {}); the bundle was re-signed with another key, or pass this \
             server's public key file",
                cp.key_id,
                trusted_list(trusted)
            ),
        )));
    };
    // The keys the bundle says it used must be exactly the ones it used.
    for (role, id) in [
        ("checkpoint", &cp.key_id),
        ("attestation", &b.attestation.key_id),
    ] {
        if !b.keys.iter().any(|k| &k.key_id == id) {
            return Err(field("keys", format!("the {role} key {id} is not listed")));
        }
    }
    if let Some(k) = b
        .keys
        .iter()
        .find(|k| k.key_id != cp.key_id && k.key_id != b.attestation.key_id)
    {
        return Err(field(
            "keys",
            format!("key {} is listed but signs nothing", k.key_id),
        ));
    }
    let body = cp.body().map_err(BundleError::Checkpoint)?;
    let root = cp.root().map_err(BundleError::Checkpoint)?;
    let cp_time = cp.timestamp().map_err(BundleError::Checkpoint)?;
    let cp_signature = decode_signature(&b.checkpoint.signature)
        .ok_or(BundleError::Checkpoint(CheckpointError::SignatureEncoding))?;
    let mut cp_checked = false;
    let mut check_cp_signature = || -> Result<(), BundleError> {
        if !cp_checked {
            if !cp_key.verify(body.as_bytes(), &cp_signature) {
                return Err(BundleError::Checkpoint(CheckpointError::BadSignature(
                    cp.key_id.clone(),
                )));
            }
            cp_checked = true;
        }
        Ok(())
    };

    // Order and coverage of all events before any proof: a checkpoint too old for the
    // bundle is named as such, not as the proofs it cannot satisfy.
    let mut previous = 0u64;
    for (i, e) in b.events.iter().enumerate() {
        if e.seq <= previous {
            return Err(BundleError::Order {
                path: format!("events[{i}]"),
                seq: e.seq,
                previous,
            });
        }
        previous = e.seq;
        if e.seq == 0 {
            return Err(field(
                format!("events[{i}].seq"),
                "0 is not an event (events count from 1)",
            ));
        }
    }
    if let Some((i, e)) = b
        .events
        .iter()
        .enumerate()
        .find(|(_, e)| e.seq > cp.tree_size)
    {
        check_cp_signature()?;
        return Err(BundleError::CheckpointOlderThanEvents {
            path: format!("events[{i}]"),
            seq: e.seq,
            message: format!(
                "it covers the first {} events of the log, and this is event {}",
                cp.tree_size, e.seq
            ),
        });
    }

    // Each event is in the signed tree.
    let included = |e: &BundleEvent| -> Result<(), MerkleError> {
        let proof: Vec<Hash> = e.proof.iter().filter_map(|p| decode_hash(p)).collect();
        verify_inclusion(
            &leaf_hash(e.canonical.as_bytes()),
            e.seq - 1,
            cp.tree_size,
            &proof,
            &root,
        )
    };
    let v1 = b.format == BUNDLE_FORMAT_V1;
    for (i, e) in b.events.iter().enumerate().filter(|_| v1) {
        if let Err(reason) = included(e) {
            // If no event at all leads to the root, suspect the checkpoint before the events.
            if !b.events.iter().any(|o| included(o).is_ok()) {
                check_cp_signature()?;
            }
            return Err(BundleError::Inclusion {
                path: format!("events[{i}]"),
                seq: e.seq,
                reason,
            });
        }
    }

    // Each event is a canonical jitgate event.
    let mut events = Vec::with_capacity(b.events.len());
    for (i, e) in b.events.iter().enumerate() {
        let path = format!("events[{i}]");
        let event: Event =
            serde_json::from_str(&e.canonical).map_err(|err| BundleError::NotAnEvent {
                path: path.clone(),
                seq: e.seq,
                message: err.to_string(),
            })?;
        if event.canonical_bytes() != e.canonical.as_bytes() {
            return Err(BundleError::NotCanonical { path, seq: e.seq });
        }
        events.push(VerifiedEvent {
            seq: e.seq,
            event,
            canonical: e.canonical.clone(),
        });
    }

    // Format 2: all events at once, after each was named if it is not even an event.
    if !v1 {
        let leaves: Vec<(u64, Hash)> = b
            .events
            .iter()
            .map(|e| (e.seq - 1, leaf_hash(e.canonical.as_bytes())))
            .collect();
        let proof: Vec<Hash> = b
            .multiproof
            .iter()
            .filter_map(|h| B64.decode(h).ok()?.try_into().ok())
            .collect();
        if let Err(reason) = verify_multiproof(cp.tree_size, &leaves, &proof, &root) {
            // A forged checkpoint is named as such, before the events it cannot cover; and
            // events removed or added after export are named by the attestation's count.
            check_cp_signature()?;
            if b.attestation.events != b.events.len() as u64 {
                check_attestation(b, trusted)?;
            }
            return Err(BundleError::MultiProof { reason });
        }
    }

    // Together: one request's and one grant's chain, in a possible order.
    let (request_id, mut notes) = check_chain(&b.grant_id, &events)?;
    let before_jcs = events
        .iter()
        .filter(|e| e.event.canonical_version.is_none())
        .count();
    if before_jcs > 0 {
        notes.push(format!(
            "{before_jcs} event(s) were written before canonical form version 2 (RFC 8785) and \
             were checked under version 1 (keys sorted by UTF-8 bytes); see docs/evidence.md §1"
        ));
    }

    // Recordings: every chunk's bytes against the hash the signed log holds.
    let recordings = check_recordings(b, &events, &mut notes)?;

    // The checkpoint itself, and its time against the events it covers.
    check_cp_signature()?;
    let limit = cp_time + chrono::Duration::seconds(CLOCK_SKEW_SECS);
    if let Some((i, e)) = events.iter().enumerate().find(|(_, e)| e.event.at > limit) {
        return Err(BundleError::CheckpointOlderThanEvents {
            path: format!("events[{i}]"),
            seq: e.seq,
            message: format!(
                "the checkpoint is dated {} and the event {}",
                cp.time,
                crate::rfc3339(e.event.at)
            ),
        });
    }

    // The bundle as exported: nothing removed or added, policies as exported.
    check_attestation(b, trusted)?;
    for id in determining_policies(&events) {
        if !b.policies.contains_key(&id) {
            notes.push(format!(
                "determining policy {id} has no text in the bundle (the exporter did not have it)"
            ));
        }
    }
    Ok(VerifiedBundle {
        log_id: b.log_id.clone(),
        grant_id: b.grant_id.clone(),
        request_id,
        checkpoint: cp.clone(),
        attested_by: b.attestation.key_id.clone(),
        events,
        policies: b.policies.clone(),
        notes,
        recordings,
        witnesses: Vec::new(),
    })
}

/// Check the bundle's recording chunks against the `recording.chunk` events: each chunk's
/// bytes match the logged hash (length, position, predecessor), each session's events form
/// one chain, every chunk in `recordings` has its event, and every chunk the exporter listed
/// is there. Chunks whose bytes the exporter did not have, and recordings without their
/// last chunk, are notes (the gateway was cut or could not deliver) — never silent.
fn check_recordings(
    b: &Bundle,
    events: &[VerifiedEvent],
    notes: &mut Vec<String>,
) -> Result<Vec<VerifiedRecording>, BundleError> {
    use jitgate_core::recording::{ChainState, ChunkMeta};
    use jitgate_core::server_payload::{GatewayReport, RecordingChunkDetail};
    // The logged chunks, per session, in log order.
    let mut logged: BTreeMap<String, (ChainState, Vec<(u64, ChunkMeta)>)> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if e.event.kind != EventKind::RecordingChunk {
            continue;
        }
        let path = format!("events[{i}]");
        let bad = |message: String| BundleError::Recording {
            path: format!("{path} (seq {})", e.seq),
            message,
        };
        let report = GatewayReport::of(&e.event)
            .ok_or_else(|| bad("a recording.chunk event without a gateway report".into()))?;
        let session = report
            .session_id
            .clone()
            .ok_or_else(|| bad("a recording.chunk event without a session".into()))?;
        let detail: RecordingChunkDetail = report
            .detail_as()
            .ok_or_else(|| bad("the recording.chunk detail has the wrong shape".into()))?;
        let meta = ChunkMeta::try_from((session.as_str(), &detail)).map_err(bad)?;
        let (chain, metas) = logged
            .entry(session.clone())
            .or_insert_with(|| (ChainState::new(&session), Vec::new()));
        chain
            .push(&meta)
            .map_err(|err| bad(format!("session {session}: {err}")))?;
        metas.push((e.seq, meta));
    }
    // The bytes, matched to their events.
    let mut bytes_of: BTreeMap<(String, u64), Vec<u8>> = BTreeMap::new();
    for (i, c) in b.recordings.iter().enumerate() {
        let path = format!("recordings[{i}]");
        let name = format!("chunk {} of session {}", c.index, c.session_id);
        let bad = |message: String| BundleError::Recording {
            path: path.clone(),
            message: format!("{name}: {message}"),
        };
        let data = B64
            .decode(&c.data)
            .ok()
            .filter(|d| B64.encode(d) == c.data)
            .ok_or_else(|| bad("data is not canonical standard base64".into()))?;
        let (seq, meta) = logged
            .get(&c.session_id)
            .and_then(|(_, metas)| metas.iter().find(|(_, m)| m.index == c.index))
            .ok_or_else(|| {
                bad("no recording.chunk event in the bundle records it: it was added".into())
            })?;
        if !meta.matches(&data) {
            return Err(bad(format!(
                "its {} bytes do not match the hash logged in event seq {seq} ({} bytes, hash {}): the recording was altered",
                data.len(),
                meta.length,
                hex::encode(meta.hash)
            )));
        }
        if bytes_of
            .insert((c.session_id.clone(), c.index), data)
            .is_some()
        {
            return Err(bad("given twice".into()));
        }
    }
    // What the exporter listed must be there (the list is signed with the attestation).
    for (i, listed) in b.attestation.recording_chunks.iter().enumerate() {
        let found = listed
            .rsplit_once('/')
            .and_then(|(s, n)| Some((s.to_string(), n.parse::<u64>().ok()?)))
            .is_some_and(|key| bytes_of.contains_key(&key));
        if !found {
            return Err(BundleError::Recording {
                path: format!("attestation.recording_chunks[{i}]"),
                message: format!(
                    "chunk {listed} was exported and is not in the bundle's recordings: it was removed after export"
                ),
            });
        }
    }
    let mut out = Vec::new();
    for (session, (chain, metas)) in logged {
        let mut cast = Vec::new();
        let mut with_bytes = 0;
        let mut missing = Vec::new();
        for (_, m) in &metas {
            match bytes_of.get(&(session.clone(), m.index)) {
                Some(d) => {
                    with_bytes += 1;
                    if missing.is_empty() {
                        cast.extend_from_slice(d);
                    }
                }
                None => missing.push(m.index),
            }
        }
        if !missing.is_empty() {
            notes.push(format!(
                "recording of session {session}: chunk(s) {} are logged but their bytes are not in the bundle (the server did not hold them at export)",
                missing
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !chain.complete {
            notes.push(format!(
                "recording of session {session} ends at chunk {} without its last chunk: the gateway was cut or stopped before the session's end was recorded",
                chain.next_index.saturating_sub(1)
            ));
        }
        out.push(VerifiedRecording {
            session_id: session,
            chunks: chain.next_index,
            chunks_with_bytes: with_bytes,
            bytes: chain.bytes,
            complete: chain.complete,
            cast,
        });
    }
    Ok(out)
}

fn check_attestation(b: &Bundle, trusted: &[EvidencePublicKey]) -> Result<(), BundleError> {
    let a = &b.attestation;
    let n = b.events.len() as u64;
    if a.events != n {
        return Err(BundleError::Attestation(format!(
            "the exporter signed {} events and the bundle has {n}: events were {} after export",
            a.events,
            if n < a.events { "removed" } else { "added" }
        )));
    }
    for (id, text) in &b.policies {
        match a.policy_sha256.get(id) {
            None => {
                return Err(BundleError::Attestation(format!(
                    "policies[{id:?}] was added after export"
                )))
            }
            Some(d) if *d != sha256_hex(text.as_bytes()) => {
                return Err(BundleError::Attestation(format!(
                    "policies[{id:?}]: the text differs from what the exporter signed"
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(id) = a
        .policy_sha256
        .keys()
        .find(|id| !b.policies.contains_key(*id))
    {
        return Err(BundleError::Attestation(format!(
            "policies[{id:?}] was removed after export"
        )));
    }
    let key = trusted
        .iter()
        .find(|k| k.key_id == a.key_id)
        .ok_or_else(|| {
            BundleError::Attestation(format!(
                "signed by key {}, which is not trusted (trusted: {}); the bundle was re-signed \
             with another key, or pass this server's public key file",
                a.key_id,
                trusted_list(trusted)
            ))
        })?;
    let sig = decode_signature(&a.signature)
        .ok_or_else(|| field("attestation.signature", "not 64 bytes of standard base64"))?;
    if !key.verify(b.attested_text().as_bytes(), &sig) {
        return Err(BundleError::Attestation(format!(
            "the signature by key {} does not verify: the bundle's grant id, key list or \
             proofs were changed after export",
            a.key_id
        )));
    }
    Ok(())
}

/// Determining policy ids named by the decision event(s).
pub(crate) fn determining_policies(events: &[VerifiedEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e.event.payload::<jitgate_core::payload::RequestDecided>())
        .flat_map(|d| d.determining_policies)
        .collect()
}

fn data_str<'a>(e: &'a Event, key: &str) -> Option<&'a str> {
    e.data.get(key).and_then(Value::as_str)
}

/// Lifecycle events come from the server's clock in order; their times must not go back
/// (beyond the skew allowance). Gateway events carry the gateway's time and may be delivered
/// late, so they are not held to this.
fn is_lifecycle(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::RequestSubmitted
            | EventKind::RequestDecided
            | EventKind::ApprovalRecorded
            | EventKind::RequestApproved
            | EventKind::RequestDenied
            | EventKind::GrantIssued
            | EventKind::GrantEnded
    )
}

/// Check that the events are one request's and one grant's history, in an order the
/// lifecycle allows. Returns the request id and notes.
fn check_chain(
    grant_id: &str,
    events: &[VerifiedEvent],
) -> Result<(String, Vec<String>), BundleError> {
    let notes = Vec::new();
    let Some(first) = events.first() else {
        return Err(BundleError::Incomplete("no events".into()));
    };
    let causality = |i: usize, seq: u64, message: String| BundleError::Causality {
        path: format!("events[{i}]"),
        seq,
        message,
    };
    if first.event.kind != EventKind::RequestSubmitted {
        return Err(BundleError::Incomplete(format!(
            "it starts with {} (seq {}), not request.submitted: the start of the request's \
             history is missing",
            first.event.kind.as_str(),
            first.seq
        )));
    }
    let Some(request_id) = first.event.request_id.clone() else {
        return Err(causality(
            0,
            first.seq,
            "request.submitted names no request".into(),
        ));
    };
    let scope_digest = data_str(&first.event, "scope_digest").map(String::from);
    let emergency = data_str(&first.event, "path") == Some("emergency");

    let mut state: Option<String> = None;
    let mut decided: Option<(bool, u64)> = None;
    let mut approvers: BTreeSet<&str> = BTreeSet::new();
    let mut approval_ids: BTreeSet<&str> = BTreeSet::new();
    let mut issued: Option<u64> = None;
    let mut ended: Option<u64> = None;
    let mut last_lifecycle: Option<(u64, Timestamp)> = None;

    for (i, ve) in events.iter().enumerate() {
        let e = &ve.event;
        let seq = ve.seq;
        let kind = e.kind;
        let foreign = |message: String| BundleError::ForeignEvent {
            path: format!("events[{i}]"),
            seq,
            message,
        };
        match (&e.request_id, &e.grant_id) {
            (None, None) => {
                return Err(foreign(format!(
                    "{} names neither a request nor a grant",
                    kind.as_str()
                )))
            }
            (Some(r), _) if *r != request_id => {
                return Err(foreign(format!(
                    "it is about request {r}; this bundle's request is {request_id}"
                )))
            }
            (_, Some(g)) if g != grant_id => {
                return Err(foreign(format!(
                    "it is about grant {g}; this bundle is for grant {grant_id}"
                )))
            }
            _ => {}
        }
        if let Some(a) = &e.approval_id {
            if kind == EventKind::ApprovalRecorded {
                approval_ids.insert(a);
            } else if !approval_ids.contains(a.as_str()) {
                return Err(causality(
                    i,
                    seq,
                    format!("it refers to approval {a}, which is not recorded before it"),
                ));
            }
        }
        if let Some(before) = &e.state_before {
            if state.as_deref() != Some(before.as_str()) {
                return Err(causality(
                    i,
                    seq,
                    format!(
                        "{} moves the request from {before}, but it was {} at that point",
                        kind.as_str(),
                        state.as_deref().unwrap_or("not yet decided")
                    ),
                ));
            }
        }
        // approval.recorded and the request.approved/denied that follows it describe one
        // transition; the latter moves the state.
        if kind != EventKind::ApprovalRecorded {
            if let Some(after) = &e.state_after {
                state = Some(after.clone());
            }
        }
        if is_lifecycle(kind) {
            if let Some((prev_seq, prev_at)) = last_lifecycle {
                if e.at + chrono::Duration::seconds(CLOCK_SKEW_SECS) < prev_at {
                    return Err(causality(
                        i,
                        seq,
                        format!(
                            "{} is dated {}, before event {prev_seq} ({}) that precedes it",
                            kind.as_str(),
                            crate::rfc3339(e.at),
                            crate::rfc3339(prev_at)
                        ),
                    ));
                }
            }
            last_lifecycle = Some((seq, e.at));
        }
        let need_decided = |what: &str| {
            if decided.is_none() {
                Err(causality(
                    i,
                    seq,
                    format!("{what} before the request was decided"),
                ))
            } else {
                Ok(())
            }
        };
        match kind {
            EventKind::RequestSubmitted if i > 0 => {
                return Err(causality(i, seq, "a second request.submitted".into()));
            }
            EventKind::RequestSubmitted => {}
            EventKind::RequestDecided => {
                if decided.is_some() {
                    return Err(causality(i, seq, "a second request.decided".into()));
                }
                let Some(d) = e.payload::<jitgate_core::payload::RequestDecided>() else {
                    return Err(causality(
                        i,
                        seq,
                        "request.decided does not carry a readable decision (allowed, \
                         determining policies, policy set, obligations)"
                            .into(),
                    ));
                };
                decided = Some((d.allowed, u64::from(d.obligations.approvals)));
            }
            EventKind::ApprovalRecorded => {
                need_decided("an approval")?;
                if data_str(e, "scope_digest") != scope_digest.as_deref() {
                    return Err(causality(
                        i,
                        seq,
                        format!(
                            "the approval is for scope digest {}, the request's is {}: it \
                             does not approve this scope",
                            data_str(e, "scope_digest").unwrap_or("(none)"),
                            scope_digest.as_deref().unwrap_or("(none)")
                        ),
                    ));
                }
                if data_str(e, "verdict") == Some("approve") {
                    approvers.insert(e.actor.0.as_str());
                }
            }
            EventKind::RequestApproved | EventKind::RequestDenied => {
                need_decided(kind.as_str())?;
            }
            EventKind::GrantIssued => {
                need_decided("grant.issued")?;
                if issued.is_some() {
                    return Err(causality(i, seq, "a second grant.issued".into()));
                }
                if e.grant_id.as_deref() != Some(grant_id) {
                    return Err(foreign("grant.issued names no grant".into()));
                }
                if let Some((allowed, required)) = decided {
                    if !allowed {
                        return Err(causality(
                            i,
                            seq,
                            "a grant was issued for a request policy denied".into(),
                        ));
                    }
                    if !emergency && (approvers.len() as u64) < required {
                        return Err(causality(
                            i,
                            seq,
                            format!(
                                "the grant was issued with {} of the {required} approvals the \
                                 decision requires",
                                approvers.len()
                            ),
                        ));
                    }
                }
                if data_str(e, "scope_digest") != scope_digest.as_deref() {
                    return Err(causality(
                        i,
                        seq,
                        "the grant's scope digest differs from the request's".into(),
                    ));
                }
                issued = Some(seq);
            }
            EventKind::GrantEnded => {
                if issued.is_none() {
                    return Err(causality(i, seq, "grant.ended before grant.issued".into()));
                }
                if ended.is_some() {
                    return Err(causality(i, seq, "a second grant.ended".into()));
                }
                ended = Some(seq);
            }
            _ => {
                let name = kind.as_str();
                if e.grant_id.is_some() && issued.is_none() {
                    return Err(causality(
                        i,
                        seq,
                        format!("{name} refers to the grant before grant.issued"),
                    ));
                }
                if name.starts_with("teardown.") && ended.is_none() {
                    return Err(causality(i, seq, format!("{name} before grant.ended")));
                }
            }
        }
    }
    if decided.is_none() {
        return Err(BundleError::Incomplete("it has no request.decided".into()));
    }
    if issued.is_none() {
        return Err(BundleError::Incomplete(format!(
            "it has no grant.issued for grant {grant_id}"
        )));
    }
    Ok((request_id, notes))
}
