//! # jitgate-policy
//!
//! Policy-as-code for jitgate, on [Cedar](https://www.cedarpolicy.com). A plant writes its
//! access rules as Cedar policies; this crate validates them against jitgate's schema,
//! decides requests with them, and turns the annotations of the policies that allowed a
//! request into its obligations (approvals, approvers, maximum duration, step-up, review).
//! Cedar types stay inside the crate: callers see jitgate-core's [`Decision`] and plain
//! Rust types. The schema, annotations and default set are documented in
//! `docs/policies.md`.
//!
//! ## Layout
//! - [`set`]         — [`PolicySet`]: loading files, `@id` re-identification, error
//!   locations (`file:line:column`), strict validation, the policy-set hash.
//! - [`decide`]      — [`DecisionInput`] and [`PolicySet::decide`]: one Cedar evaluation per
//!   asset, verdicts and obligations combined strictly, denials explained.
//! - `entities`      — domain objects → Cedar entities and context (typed constructors only,
//!   never Cedar's parser, so user-supplied names cannot inject policy syntax).
//! - `prefilter`     — skipping policies that certainly cannot match a request (by kind,
//!   path, site, ...) so decisions stay fast with hundreds of policies; sound by construction.
//! - `annotations`   — reading and checking `@approvals`, `@max_duration`, ...; combining
//!   obligations of several permits.
//! - [`schema`]      — the embedded `jitgate.cedarschema`.
//! - [`defaults`]    — the default OT policy set, embedded from the repository's `policies/`.
//! - [`scenario`]    — `jitgate policy test`: TOML scenarios run against a set + inventory.
//! - [`duration`]    — humane durations (`30m`, `1h30m`, `1d`) used by annotations/scenarios.
//! - [`error`]       — [`PolicyError`].

mod annotations;
pub mod decide;
pub mod defaults;
pub mod duration;
mod entities;
pub mod error;
mod prefilter;
pub mod scenario;
pub mod schema;
pub mod set;

pub use decide::DecisionInput;
pub use defaults::{default_set, default_sources};
pub use duration::{format_duration, parse_duration};
pub use error::PolicyError;
pub use jitgate_core::Decision;
pub use scenario::{run_scenarios, ScenarioResult};
pub use schema::SCHEMA_SRC;
pub use set::{PolicyEffect, PolicyInfo, PolicySet};

#[cfg(test)]
mod tests {
    /// The server shares one set between request handlers and swaps it on reload.
    #[test]
    fn policy_set_is_shareable_across_threads() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<crate::PolicySet>();
    }
}
