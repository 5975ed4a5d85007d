//! Policy scenarios: a TOML file of example requests and the verdict each should get, run
//! against a policy set and an inventory (`jitgate policy test`). They are the plant's
//! regression tests for its policies: edit a policy, run the scenarios, see what changed.
//!
//! A scenario "allows" only if the decision allows **and** the requested duration fits the
//! decision's maximum — a request longer than the maximum is refused when filed, so a
//! scenario expecting `allow` for it should fail and say so.

use crate::decide::DecisionInput;
use crate::duration::{format_duration, parse_duration};
use crate::error::PolicyError;
use crate::set::PolicySet;
use jitgate_core::scope::{parse_request, ScopeRequest};
use jitgate_core::{AccessPath, Decision, Inventory, Scope};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default, rename = "scenario")]
    scenarios: Vec<Spec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Allow,
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: String,
    requester: String,
    #[serde(default)]
    subject: Option<String>,
    asset: String,
    #[serde(default)]
    modbus: Vec<String>,
    #[serde(default)]
    dnp3: Vec<String>,
    #[serde(default)]
    ssh: Vec<String>,
    path: AccessPath,
    #[serde(default)]
    duration: Option<String>,
    expect: Expect,
    #[serde(default)]
    expect_policies: Option<Vec<String>>,
    #[serde(default)]
    expect_approvals: Option<u32>,
    #[serde(default)]
    expect_approver_roles: Option<Vec<String>>,
    #[serde(default)]
    expect_step_up: Option<bool>,
    #[serde(default)]
    expect_review: Option<bool>,
    #[serde(default)]
    expect_attestation: Option<bool>,
    #[serde(default)]
    expect_max_duration: Option<String>,
    #[serde(default)]
    expect_reason: Option<String>,
}

/// The outcome of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub passed: bool,
    /// What the policy set actually decided.
    pub decision: Decision,
    /// On a mismatch: what was expected and what happened, in words.
    pub message: Option<String>,
}

/// Scenarios without `duration` ask for one hour.
const DEFAULT_DURATION_SECS: i64 = 3600;

/// Run every `[[scenario]]` of `text` against `set`, resolving identities and assets in
/// `inventory`. A malformed file or a scenario naming something unknown is an error; a
/// scenario whose verdict differs from its expectation is a failed [`ScenarioResult`].
pub fn run_scenarios(
    set: &PolicySet,
    inventory: &Inventory,
    text: &str,
) -> Result<Vec<ScenarioResult>, PolicyError> {
    let file: ScenarioFile = toml::from_str(text)
        .map_err(|e| PolicyError::ScenarioFile(e.to_string().trim().to_string()))?;
    if file.scenarios.is_empty() {
        return Err(PolicyError::ScenarioFile(
            "no [[scenario]] tables; see docs/policies.md for the format".into(),
        ));
    }
    let mut names = BTreeSet::new();
    let mut results = Vec::with_capacity(file.scenarios.len());
    for spec in &file.scenarios {
        if !names.insert(spec.name.as_str()) {
            return Err(scenario_error(
                spec,
                "another scenario has the same name; names must be unique",
            ));
        }
        results.push(run_one(set, inventory, spec)?);
    }
    Ok(results)
}

fn scenario_error(spec: &Spec, message: impl Into<String>) -> PolicyError {
    PolicyError::Scenario {
        name: spec.name.clone(),
        message: message.into(),
    }
}

fn run_one(set: &PolicySet, inv: &Inventory, spec: &Spec) -> Result<ScenarioResult, PolicyError> {
    let identity = |id: &str| {
        inv.identities
            .iter()
            .find(|i| i.id == id)
            .ok_or_else(|| scenario_error(spec, format!("identity {id} is not in the inventory")))
    };
    let requester = identity(&spec.requester)?;
    let subject = identity(spec.subject.as_deref().unwrap_or(&spec.requester))?;
    let asset = inv
        .assets
        .iter()
        .find(|a| a.id == spec.asset)
        .ok_or_else(|| {
            scenario_error(
                spec,
                format!("asset {} is not in the inventory", spec.asset),
            )
        })?;
    let rules = ScopeRequest {
        asset: spec.asset.clone(),
        modbus: spec.modbus.clone(),
        dnp3: spec.dnp3.clone(),
        ssh: spec.ssh.clone(),
    };
    let scope = parse_request(asset, &rules)
        .and_then(Scope::new)
        .map_err(|e| scenario_error(spec, e.to_string()))?;
    let duration_secs = match &spec.duration {
        Some(d) => parse_duration(d).map_err(|e| scenario_error(spec, format!("duration: {e}")))?,
        None => DEFAULT_DURATION_SECS,
    };
    let expect_max = match &spec.expect_max_duration {
        Some(d) => Some(
            parse_duration(d)
                .map_err(|e| scenario_error(spec, format!("expect_max_duration: {e}")))?,
        ),
        None => None,
    };

    let decision = set.decide(&DecisionInput {
        requester,
        subject,
        orgs: &inv.orgs,
        assets: std::slice::from_ref(asset),
        scope: &scope,
        path: spec.path,
        duration_secs,
    });

    let mut problems = Vec::new();
    let ob = &decision.obligations;
    let too_long = decision.allowed && duration_secs > ob.max_duration_secs;
    let allowed = decision.allowed && !too_long;
    match (spec.expect, allowed) {
        (Expect::Allow, false) if too_long => problems.push(format!(
            "expected allow, but the policies allow at most {} and the scenario asks for {}",
            format_duration(ob.max_duration_secs),
            format_duration(duration_secs)
        )),
        (Expect::Allow, false) => problems.push(format!(
            "expected allow, got deny: {}",
            decision.reasons.join("; ")
        )),
        (Expect::Deny, true) => problems.push(format!(
            "expected deny, got allow by {}",
            decision.determining_policies.join(", ")
        )),
        _ => {}
    }
    if let Some(want) = &spec.expect_policies {
        let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
        let got: BTreeSet<&str> = decision
            .determining_policies
            .iter()
            .map(String::as_str)
            .collect();
        if want != got {
            problems.push(format!(
                "expected determining policies [{}], got [{}]",
                want.into_iter().collect::<Vec<_>>().join(", "),
                got.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    // Obligation expectations only mean something when the policies allow.
    let check_obligation = |problems: &mut Vec<String>, what: &str, want: String, got: String| {
        if !decision.allowed {
            problems.push(format!("expected {what} {want}, but the request is denied"));
        } else if want != got {
            problems.push(format!("expected {what} {want}, got {got}"));
        }
    };
    if let Some(n) = spec.expect_approvals {
        check_obligation(
            &mut problems,
            "approvals",
            n.to_string(),
            ob.approvals.to_string(),
        );
    }
    if let Some(roles) = &spec.expect_approver_roles {
        let mut want = roles.clone();
        want.sort();
        want.dedup();
        check_obligation(
            &mut problems,
            "approver roles",
            want.join(", "),
            ob.approver_roles.join(", "),
        );
    }
    if let Some(b) = spec.expect_step_up {
        check_obligation(
            &mut problems,
            "step_up",
            b.to_string(),
            ob.step_up.to_string(),
        );
    }
    if let Some(b) = spec.expect_review {
        check_obligation(
            &mut problems,
            "review",
            b.to_string(),
            ob.review.to_string(),
        );
    }
    if let Some(b) = spec.expect_attestation {
        check_obligation(
            &mut problems,
            "attestation",
            b.to_string(),
            ob.attestation.to_string(),
        );
    }
    if let Some(secs) = expect_max {
        check_obligation(
            &mut problems,
            "max duration",
            format_duration(secs),
            format_duration(ob.max_duration_secs),
        );
    }
    if let Some(needle) = &spec.expect_reason {
        if !decision.reasons.iter().any(|r| r.contains(needle.as_str())) {
            problems.push(format!(
                "expected a reason containing {needle:?}, got [{}]",
                decision.reasons.join("; ")
            ));
        }
    }
    Ok(ScenarioResult {
        name: spec.name.clone(),
        passed: problems.is_empty(),
        decision,
        message: (!problems.is_empty()).then(|| problems.join("; ")),
    })
}
