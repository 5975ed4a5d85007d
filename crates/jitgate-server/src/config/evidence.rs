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
}

fn default_checkpoint_interval() -> String {
    "60s".into()
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            log_id: None,
            checkpoint_interval: default_checkpoint_interval(),
        }
    }
}

impl EvidenceConfig {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(id) = &self.log_id {
            check_log_id(id).map_err(|m| format!("evidence.log_id: {m}"))?;
        }
        self.interval()?;
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
    if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{id:?} is not 1–255 printable ASCII characters without spaces"
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
