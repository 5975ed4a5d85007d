//! # jitgate-core
//!
//! The vocabulary of jitgate and the rules that hold whatever the storage, transport or UI.
//! Nothing here does I/O: the server loads state from the store, calls a transition here, and
//! saves the result together with the events the transition produced, in one transaction.
//!
//! ## Layout
//! - [`access`]    — who may see and act on what through the API (one table).
//! - [`bootstrap`] — the first administrator's password on a new database, once.
//! - [`codes`]     — every API error code with its HTTP status and meaning, in one table.
//! - [`clock`]     — the injected [`Clock`] (system clock, and a manual one for tests).
//! - [`inventory`] — identities, orgs, sites/zones and assets, and the TOML inventory file.
//! - [`scope`]     — the scope language (Modbus, DNP3, SSH), its canonical form and digest.
//! - [`decision`]  — what a policy decision carries into the lifecycle: verdict + obligations.
//! - [`lifecycle`] — requests, approvals and grants, and every transition between their states.
//! - [`exception`] — standing exceptions: their terms (owner, controls, expiry,
//!   re-validation), who re-validates or ends them, when they are overdue.
//! - [`governance`] — conflicts of interest, who may hold access, whether a request still
//!   stands under the current context, free-text hygiene.
//! - [`gateway_enrolment`] — a gateway's client certificate: when its calls and its
//!   (re-)enrolment are accepted.
//! - [`ssh`]       — what an OpenSSH certificate under a grant may say: for whom, when, with
//!   which permissions (pty, port forwarding, force-command) on one asset.
//! - [`recording`] — session recordings as evidence: the chunk hash chain, the chunk framing
//!   (a fuzzed parser of untrusted bytes) and the rule for what chunk may follow what.
//! - [`federation`] — workload identity federation: trusted issuers, claim bindings, the
//!   checks of a platform JWT and the session it is exchanged for.
//! - [`passkey`]   — passkeys (WebAuthn) for step-up: the challenge bound to (approver,
//!   request, scope digest, expiry), when an assertion counts, enrolment and removal rules.
//! - [`sso`]       — OIDC sign-in for people: provider mapping rules (exclusive, checked at
//!   load), the checks of an ID token, the events of a sign-in and its refusals.
//! - [`lockout`]   — backoff and temporary lockout after failed sign-ins and step-up codes.
//! - [`findings`]  — findings over a period's evidence (shared accounts, rubber-stamping, JIT
//!   that became standing) and the standing-privilege inventory, from one read of the log.
//! - [`teardown`]  — the teardown verdict: how checks combine, which refusals prove an end,
//!   when a grant's session evidence is complete.
//! - [`attestation`] — post-session attestation: who attests (the subject, a workload's
//!   owner), once, after the session; when a required one is missing.
//! - [`campaign`]  — review campaigns as exception handling: item kinds, what keep / narrow /
//!   end does to each, who may decide (separation of duties), when a campaign closes.
//! - [`payload`]   — typed payloads of the lifecycle's events (written and read as structs).
//! - [`server_payload`] — typed payloads of the events the server records around the
//!   lifecycle (context, inventory, policy, keys, factors, reviews, teardown checks, gateway
//!   reports).
//! - [`event`]     — the evidence event shape every transition appends, and its canonical bytes.
//! - [`error`]     — [`CoreError`], one variant per rule a caller can break, each with a code.

pub mod access;
pub mod attestation;
pub mod bootstrap;
pub mod campaign;
pub mod clock;
pub mod codes;
pub mod decision;
pub mod error;
pub mod event;
pub mod exception;
pub mod federation;
pub mod findings;
pub mod gateway_enrolment;
pub mod governance;
pub mod inventory;
pub mod lifecycle;
pub mod lockout;
pub mod passkey;
pub mod payload;
pub mod recording;
pub mod scope;
pub mod server_payload;
pub mod ssh;
pub mod sso;
pub mod teardown;

pub use clock::{Clock, ManualClock, SystemClock};
pub use codes::Code;
pub use decision::{ApproverSite, Decision, Obligations};
pub use error::CoreError;
pub use event::{Actor, Event, EventKind};
pub use inventory::{
    Asset, AssetKind, Criticality, Enforcement, Identity, IdentityKind, IdentityStatus, Inventory,
    Org, OrgStatus, Site,
};
pub use lifecycle::{
    AccessPath, Approval, ApprovalVerdict, EndReason, Grant, GrantState, Request, RequestState,
};
pub use scope::{Scope, ScopeItem};

/// Timestamps are UTC everywhere; the API renders them as RFC 3339.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
