//! # jitgate-evidence
//!
//! The tamper-evident evidence of jitgate, checkable offline: a Merkle tree over the event
//! log (RFC 9162), checkpoints signed with the evidence key, per-grant bundles an auditor can
//! verify without the server, the audit report, and SIEM encodings of events.
//!
//! Pure library: no files, no network, no clock — callers pass bytes, keys and times in. It
//! depends on `jitgate-core` for the event shape and nothing of the server or the store, so
//! the same code runs in an auditor's offline tool.
//!
//! ## Layout
//! - [`merkle`]     — leaf/node hashing, [`MerkleLog`] (roots and proofs at any size),
//!   [`RootBuilder`] (streaming root), and RFC 9162 inclusion/consistency verification.
//! - [`checkpoint`] — [`EvidenceKey`] / [`EvidencePublicKey`] (Ed25519, key ids, key files)
//!   and [`SignedCheckpoint`] (tree size, root, time; its signed text).
//! - [`multiproof`] — one proof for many leaves (bundles of format 2).
//! - [`note`]       — C2SP signed notes: checkpoints as standard notes, vkeys, witness
//!   cosignatures (Ed25519, type 0x04).
//! - [`witness`]    — the witness's decision on a checkpoint (C2SP `tlog-witness`
//!   `add-checkpoint`): cosign only if consistent; forks and rollbacks are alarms.
//! - [`cosigned`]   — [`WitnessPolicy`] and the check of a bundle's checkpoint cosignatures.
//! - [`verify`]     — [`verify_log`]: the store's hash chain + Merkle roots + checkpoints in
//!   one streaming pass, naming the first altered / deleted / inserted / reordered event.
//! - [`bundle`]     — [`Bundle`] (build, JSON) and [`verify_bundle`] (limits, proofs,
//!   signatures, the grant's causal chain) → [`VerifiedBundle`].
//! - [`timeline`]   — a verified bundle as timeline entries and aligned text.
//! - [`report`]     — [`report_html`]: the one-page audit report with the control mapping.
//! - [`compliance`] — the signed compliance report of a period and site (figures, charts,
//!   framework mapping), as JSON and as a page that verifies itself.
//! - [`siem`]       — [`to_ocsf_json`] and [`to_syslog_5424`].
//!
//! The byte formats (leaf encoding, checkpoint text, key files, bundle JSON) are specified in
//! `docs/evidence.md`; change them only with a new format version.

pub mod bundle;
pub mod checkpoint;
pub mod compliance;
pub mod cosigned;
pub mod merkle;
pub mod multiproof;
pub mod note;
pub mod report;
pub mod siem;
pub mod timeline;
pub mod verify;
pub mod witness;

pub use bundle::{
    parse_bundle, verify_bundle, verify_bundle_with, verify_bundle_witnessed, Attestation, Bundle,
    BundleChunk, BundleError, BundleEvent, BundleKey, Limits, ProofSource, VerifiedBundle,
    VerifiedEvent, VerifiedRecording, WitnessPolicy, BUNDLE_FORMAT,
};
pub use checkpoint::{
    key_id_of, Checkpoint, CheckpointError, EvidenceKey, EvidencePublicKey, KeyError,
    SignedCheckpoint,
};
pub use merkle::{
    empty_root, leaf_hash, node_hash, verify_consistency, verify_inclusion, Hash, MerkleError,
    MerkleLog, RootBuilder,
};
pub use multiproof::{multiproof_root, verify_multiproof};
pub use note::{cosign, verify_cosignature, Cosignature, Note, NoteError, Vkey};
pub use report::report_html;
pub use siem::{to_ocsf_json, to_syslog_5424};
pub use timeline::TimelineEntry;
pub use verify::{
    verify_log, LeafRef, LogProblem, LogReport, LogVerifier, StoredLeaf, GENESIS_HASH,
};
pub use witness::{add_checkpoint, AddCheckpoint, Refusal, WitnessedCheckpoint};

/// Times are UTC, as everywhere in jitgate.
pub type Timestamp = jitgate_core::Timestamp;

/// RFC 3339, UTC, milliseconds: the one spelling of a time in evidence.
pub fn rfc3339(t: Timestamp) -> String {
    jitgate_core::event::rfc3339(t)
}
