//! Integration tests of jitgate-evidence: the tree against RFC 9162, tampered logs, bundles
//! and their refusals, the report and the SIEM encodings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bundle;
mod compliance;
mod fixtures;
mod log;
mod merkle;
mod report;
mod witness;
