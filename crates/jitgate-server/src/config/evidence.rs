//! `[evidence]`: the log id and the checkpoint interval (see [`crate::evidence`]).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[evidence]` in the server configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// The log id checkpoints name (1–255 printable ASCII characters, no spaces). Default:
    /// chosen at first start (`jitgate/<16 hex digits>`) and kept in the database; once
    /// checkpoints exist it cannot change.
    #[serde(default)]
    pub log_id: Option<String>,
    /// How often to sign a checkpoint when the log grew, e.g. `60s`; `0s` turns periodic
    /// checkpoints off (on-demand and shutdown checkpoints remain).
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval: String,
    /// Witnesses whose cosignatures the server keeps: their vkeys, as `jitgate evidence
    /// witness` prints them (`<name>+<key hash>+<base64 key>`). Empty: no witnesses.
    #[serde(default)]
    pub witnesses: Vec<String>,
}

fn default_checkpoint_interval() -> String {
    "60s".into()
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            log_id: None,
            checkpoint_interval: default_checkpoint_interval(),
            witnesses: Vec::new(),
        }
    }
}

impl EvidenceConfig {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(id) = &self.log_id {
            check_log_id(id).map_err(|m| format!("evidence.log_id: {m}"))?;
        }
        self.interval()?;
        let mut names = std::collections::BTreeSet::new();
        for (i, text) in self.witnesses.iter().enumerate() {
            let vkey = jitgate_evidence::Vkey::parse(text)
                .map_err(|e| format!("evidence.witnesses[{i}]: {e}"))?;
            if vkey.sig_type != jitgate_evidence::note::TYPE_COSIGNATURE {
                return Err(format!(
                    "evidence.witnesses[{i}]: {} is not a witness key (type 0x{:02x}; a witness \
                     key has type 0x04): use the line `jitgate evidence witness` printed",
                    vkey.name, vkey.sig_type
                ));
            }
            if !names.insert(vkey.name.clone()) {
                return Err(format!(
                    "evidence.witnesses[{i}]: witness {} is named twice",
                    vkey.name
                ));
            }
        }
        Ok(())
    }

    /// `None` when periodic checkpoints are off.
    pub fn interval(&self) -> Result<Option<Duration>, String> {
        let secs = super::parse_duration_secs(&self.checkpoint_interval).map_err(|m| {
            format!(
                "evidence.checkpoint_interval {:?}: {m}",
                self.checkpoint_interval
            )
        })?;
        Ok((secs > 0).then(|| Duration::from_secs(secs.unsigned_abs())))
    }
}

fn check_log_id(id: &str) -> Result<(), String> {
    // No `+`: the log id is the key name of the checkpoint's signed-note signature, and a
    // plus sign separates a vkey's parts.
    if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| b.is_ascii_graphic() && b != b'+') {
        return Err(format!(
            "{id:?} is not 1–255 printable ASCII characters without spaces or plus signs"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn config_validates_log_id_and_interval() {
        let ok = EvidenceConfig::default();
        assert!(ok.validate().is_ok());
        assert_eq!(ok.interval().unwrap(), Some(Duration::from_secs(60)));
        let off = EvidenceConfig {
            checkpoint_interval: "0s".into(),
            ..EvidenceConfig::default()
        };
        assert_eq!(off.interval().unwrap(), None);
        let bad = EvidenceConfig {
            log_id: Some("plant 1".into()),
            ..EvidenceConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("log_id"));
    }
}
