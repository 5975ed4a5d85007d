//! Witness cosignatures on a bundle's checkpoint: which witnesses the auditor trusts, how many
//! must have cosigned, and the check.
//!
//! A cosignature by a trusted witness that does not verify fails the bundle (it was altered,
//! or made for another checkpoint); lines by witnesses the auditor did not name are ignored,
//! as the signed-note standard requires, and counted in a note.

use crate::bundle::BundleError;
use crate::note::{verify_cosignature, Cosignature, NoteSignature, Vkey, TYPE_COSIGNATURE};
use std::collections::BTreeSet;

/// The witnesses an auditor trusts, and how many of them must have cosigned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WitnessPolicy {
    /// Witness vkeys (type 0x04).
    pub keys: Vec<Vkey>,
    /// Distinct trusted witnesses whose valid cosignature is required.
    pub min: usize,
}

impl WitnessPolicy {
    /// Every vkey must be a cosigner key; `min` cannot exceed the witnesses named.
    pub fn new(keys: Vec<Vkey>, min: usize) -> Result<WitnessPolicy, String> {
        if let Some(k) = keys.iter().find(|k| k.sig_type != TYPE_COSIGNATURE) {
            return Err(format!(
                "{} is not a witness key (its type is 0x{:02x}; a witness vkey has type 0x04): \
                 pass the key `jitgate evidence witness` printed",
                k.name, k.sig_type
            ));
        }
        let names: BTreeSet<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        if min > names.len() {
            return Err(format!(
                "--min-witnesses {min} is more than the {} witness key(s) given",
                names.len()
            ));
        }
        Ok(WitnessPolicy { keys, min })
    }
}

/// Check `lines` (cosignatures of the checkpoint whose signed text is `body`).
pub(crate) fn check(
    body: &str,
    lines: &[String],
    policy: &WitnessPolicy,
    notes: &mut Vec<String>,
) -> Result<Vec<Cosignature>, BundleError> {
    let mut valid: Vec<Cosignature> = Vec::new();
    let mut unknown = 0usize;
    for (i, line) in lines.iter().enumerate() {
        let mut known = false;
        for key in &policy.keys {
            match verify_cosignature(line, key, body) {
                Ok(Some(c)) => {
                    known = true;
                    if !valid.iter().any(|v| v.witness == c.witness) {
                        valid.push(c);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(BundleError::Witnesses(format!(
                        "cosignatures[{i}]: {e} (a cosignature by a trusted witness must be of \
                         this very checkpoint)"
                    )))
                }
            }
        }
        if !known {
            unknown += 1;
        }
    }
    if unknown > 0 {
        let names: BTreeSet<String> = lines
            .iter()
            .filter_map(|l| NoteSignature::parse_line(l).ok())
            .filter(|s| !valid.iter().any(|v| v.witness == s.name))
            .map(|s| s.name)
            .collect();
        let names: Vec<String> = names.into_iter().collect();
        notes.push(format!(
            "{unknown} cosignature(s) by witnesses not given with --witness-key were not checked ({})",
            names.join(", ")
        ));
    }
    if valid.len() < policy.min {
        let trusted: Vec<&str> = policy.keys.iter().map(|k| k.name.as_str()).collect();
        return Err(BundleError::Witnesses(format!(
            "{} of the trusted witnesses ({}) cosigned the checkpoint; at least {} required. \
             The checkpoint was not seen by enough witnesses: export the bundle again once \
             they have cosigned a checkpoint covering it (`jitgate evidence checkpoints` shows \
             cosignatures)",
            valid.len(),
            trusted.join(", "),
            policy.min
        )));
    }
    Ok(valid)
}
