//! What a policy decision hands to the lifecycle. The policy crate produces it from Cedar;
//! the lifecycle only reads it, so the rules for approvals live in one place.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which site an approver must belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind", content = "site")]
pub enum ApproverSite {
    /// The site of the asset(s) in the request (every asset's site, if several).
    Asset,
    /// A named site.
    Named(String),
}

/// Obligations a decision attaches to an allowed request, combined over the determining
/// policies so that the strictest wins (most approvals, shortest maximum, any step-up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Obligations {
    /// Number of distinct approvers needed (0 = none, e.g. break-glass).
    pub approvals: u32,
    /// Approvers must hold every one of these roles.
    #[serde(default)]
    pub approver_roles: Vec<String>,
    /// Approvers must be in at least one of these groups (empty = no group condition).
    #[serde(default)]
    pub approver_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_site: Option<ApproverSite>,
    /// Longest grant allowed, in seconds.
    pub max_duration_secs: i64,
    /// Approvers must prove a fresh TOTP code or a passkey when approving.
    #[serde(default)]
    pub step_up: bool,
    /// Step-up must be a passkey (`@step_up("passkey")`): a TOTP code, which can be phished
    /// or read off, does not do. Implies `step_up`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub step_up_passkey: bool,
    /// A post-session review by someone other than the subject is required.
    #[serde(default)]
    pub review: bool,
    /// The subject must attest what was done once the grant has ended
    /// (`@attestation("required")`, `crate::attestation`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attestation: bool,
}

impl Default for Obligations {
    /// Secure defaults when a policy says nothing: one approval, at most one hour.
    fn default() -> Self {
        Obligations {
            approvals: 1,
            approver_roles: vec![],
            approver_groups: vec![],
            approver_site: None,
            max_duration_secs: 3600,
            step_up: false,
            step_up_passkey: false,
            review: false,
            attestation: false,
        }
    }
}

/// The verdict of the policy set on one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    pub allowed: bool,
    /// Ids (the `@id` annotations) of the policies that determined the verdict.
    pub determining_policies: Vec<String>,
    /// `sha256:` digest of the whole policy set that was evaluated.
    pub policy_set_hash: String,
    /// Meaningful only when `allowed`.
    pub obligations: Obligations,
    /// For a denial: which rule said no and why, in words.
    #[serde(default)]
    pub reasons: Vec<String>,
}
