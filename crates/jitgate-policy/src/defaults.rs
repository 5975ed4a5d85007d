//! The default OT policy set, embedded from the repository's `policies/` directory so that
//! `jitgate up` works without any file on disk. A test checks this list matches the
//! directory, so a new `.cedar` file there cannot be forgotten here.

use crate::error::PolicyError;
use crate::set::PolicySet;

const DEFAULTS: &[(&str, &str)] = &[
    (
        "00-guardrails.cedar",
        include_str!("../../../policies/00-guardrails.cedar"),
    ),
    (
        "10-humans.cedar",
        include_str!("../../../policies/10-humans.cedar"),
    ),
    (
        "20-vendors.cedar",
        include_str!("../../../policies/20-vendors.cedar"),
    ),
    (
        "30-workloads.cedar",
        include_str!("../../../policies/30-workloads.cedar"),
    ),
    (
        "40-break-glass.cedar",
        include_str!("../../../policies/40-break-glass.cedar"),
    ),
    (
        "50-exceptions.cedar",
        include_str!("../../../policies/50-exceptions.cedar"),
    ),
];

/// The default policy files as `(file name, text)`, ready for [`PolicySet::from_sources`]
/// (or to be written out as a starting point for a plant's own set).
pub fn default_sources() -> Vec<(String, String)> {
    DEFAULTS
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// The default policy set, loaded and validated.
pub fn default_set() -> Result<PolicySet, PolicyError> {
    PolicySet::from_sources(default_sources())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_match_the_policies_directory() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
            .map(|p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        on_disk.sort();
        assert_eq!(on_disk, default_sources());
        let from_dir = PolicySet::load_dir(dir).unwrap();
        assert_eq!(from_dir.hash(), default_set().unwrap().hash());
    }
}
