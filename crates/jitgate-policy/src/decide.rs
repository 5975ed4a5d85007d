//! Deciding a request: one Cedar evaluation per asset of the scope, then the verdicts and
//! obligations combined. The request is allowed only if every asset is allowed; the
//! obligations are the strictest combination over every permit that allowed any asset.
//!
//! Anything unexpected while deciding — an asset missing from the inventory, a Cedar
//! evaluation error, permits whose approver sites conflict — is a denial whose reasons say
//! what happened, never an allow and never a panic.

use crate::annotations;
use crate::entities::{self, AssetAsk};
use crate::prefilter::Facts;
use crate::set::PolicySet;
use cedar_policy::{Entities, Entity, EntityUid, Request};
use jitgate_core::scope::Protocol;
use jitgate_core::{
    AccessPath, Asset, Decision, Enforcement, Identity, Obligations, Org, Scope, ScopeItem,
};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Everything a decision looks at. Borrowed, so the caller keeps its own copies.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    /// Who files the request.
    pub requester: &'a Identity,
    /// Who will use the access (the requester, or a workload the requester owns).
    pub subject: &'a Identity,
    /// The inventory's organisations, for the status of the subject's and requester's org.
    pub orgs: &'a [Org],
    /// The assets named by the scope (others are ignored; a missing one denies).
    pub assets: &'a [Asset],
    pub scope: &'a Scope,
    pub path: AccessPath,
    pub duration_secs: i64,
}

/// Outcome of one asset's evaluation.
enum AssetVerdict {
    /// Allowed by these permit policies.
    Allowed(Vec<String>),
    /// Denied: the forbid policies that matched (maybe none) and the reasons in words.
    Denied {
        forbids: Vec<String>,
        reasons: Vec<String>,
    },
}

/// What is the same for every asset of one request.
struct Common<'a> {
    input: &'a DecisionInput<'a>,
    several: bool,
    identities: Vec<Entity>,
    subject_uid: EntityUid,
    requester_uid: EntityUid,
    subject_org_active: bool,
    prefilter: bool,
}

/// In debug builds (every test) each request and entity set is checked against the schema,
/// so a mapping bug fails loudly; release builds skip the check, which costs about as much
/// as evaluating the policies.
const CHECK_AGAINST_SCHEMA: bool = cfg!(debug_assertions);

impl PolicySet {
    /// Decide a request. Never fails: problems become a denial with reasons.
    pub fn decide(&self, input: &DecisionInput<'_>) -> Decision {
        self.decide_inner(input, true)
    }

    /// [`PolicySet::decide`] with every policy handed to Cedar (no pre-filter). For the
    /// equivalence checks of tests and benchmarks; gives the same decisions, only slower.
    #[doc(hidden)]
    pub fn decide_without_prefilter(&self, input: &DecisionInput<'_>) -> Decision {
        self.decide_inner(input, false)
    }

    fn decide_inner(&self, input: &DecisionInput<'_>, prefilter: bool) -> Decision {
        let assets = input.scope.assets();
        let requester_is_subject = input.requester.id == input.subject.id;

        let mut identities = Vec::with_capacity(2);
        let mut problems = Vec::new();
        match entities::identity(&self.names, input.subject, input.orgs) {
            Ok(e) => identities.push(e),
            Err(e) => problems.push(e),
        }
        if !requester_is_subject {
            match entities::identity(&self.names, input.requester, input.orgs) {
                Ok(e) => identities.push(e),
                Err(e) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            return self.denied(Vec::new(), internal(problems));
        }
        let common = Common {
            input,
            several: assets.len() > 1,
            identities,
            subject_uid: self.names.identity_uid(&input.subject.id),
            requester_uid: self.names.identity_uid(&input.requester.id),
            subject_org_active: entities::org_active(input.subject, input.orgs),
            prefilter,
        };

        let mut permits: BTreeSet<String> = BTreeSet::new();
        let mut forbids: BTreeSet<String> = BTreeSet::new();
        let mut reasons: Vec<String> = Vec::new();
        for asset_id in &assets {
            let verdict = match input.assets.iter().find(|a| &a.id == asset_id) {
                Some(asset) => self.decide_asset(&common, asset),
                None => AssetVerdict::Denied {
                    forbids: Vec::new(),
                    reasons: vec![format!(
                        "asset {asset_id} is not in the inventory; check the asset id (`jitgate assets list`)"
                    )],
                },
            };
            match verdict {
                AssetVerdict::Allowed(ids) => permits.extend(ids),
                AssetVerdict::Denied {
                    forbids: f,
                    reasons: r,
                } => {
                    forbids.extend(f);
                    for reason in r {
                        if !reasons.contains(&reason) {
                            reasons.push(reason);
                        }
                    }
                }
            }
        }
        if !reasons.is_empty() {
            return self.denied(forbids.into_iter().collect(), reasons);
        }
        if permits.is_empty() {
            // Only reachable with an empty scope, which `Scope::new` refuses; deny anyway.
            return self.denied(Vec::new(), vec!["the request names no asset".into()]);
        }
        let parts = permits
            .iter()
            .filter_map(|id| Some((id.as_str(), self.policies.get(id)?.obligations.as_ref()?)));
        match annotations::combine(parts) {
            Ok(obligations) => Decision {
                allowed: true,
                determining_policies: permits.into_iter().collect(),
                policy_set_hash: self.hash.clone(),
                obligations,
                reasons: Vec::new(),
            },
            Err(conflict) => self.denied(permits.into_iter().collect(), vec![conflict]),
        }
    }

    fn decide_asset(&self, common: &Common<'_>, asset: &Asset) -> AssetVerdict {
        let input = common.input;
        let items: Vec<&ScopeItem> = input
            .scope
            .items()
            .iter()
            .filter(|i| i.asset() == asset.id)
            .collect();
        let operations: BTreeSet<String> = items.iter().map(|i| i.operation()).collect();
        let protocols: BTreeSet<&'static str> = items
            .iter()
            .map(|i| i.protocol())
            .map(Protocol::as_str)
            .collect();
        let writes = !items.iter().all(|i| i.is_read());
        let requester_is_subject = input.requester.id == input.subject.id;
        let ask = AssetAsk {
            path: input.path.as_str(),
            operations: &operations,
            protocols: &protocols,
            writes,
            // Rounded up, so a policy limit in minutes is never exceeded by a few seconds.
            duration_minutes: input.duration_secs.max(0).saturating_add(59) / 60,
            requester_is_subject,
            requester: &common.requester_uid,
        };
        // With several assets, say which one a reason is about (the "no policy permits"
        // sentence already names it).
        let on = |reason: String| {
            if common.several {
                format!("{reason} (on {})", asset.id)
            } else {
                reason
            }
        };
        let resource_uid = self.names.asset_uid(&asset.id);
        let built = (|| {
            let resource = entities::asset(&self.names, asset)?;
            let context = entities::context(&ask)?;
            let schema = CHECK_AGAINST_SCHEMA.then_some(&self.schema);
            let request = Request::new(
                common.subject_uid.clone(),
                self.names.action.clone(),
                resource_uid.clone(),
                context,
                schema,
            )
            .map_err(|e| format!("request: {e}"))?;
            let mut all = common.identities.clone();
            all.push(resource);
            let entities =
                Entities::from_entities(all, schema).map_err(|e| format!("entities: {e}"))?;
            Ok::<_, String>((request, entities))
        })();
        let (request, entities) = match built {
            Ok(x) => x,
            Err(e) => {
                let reasons = internal(vec![e]).into_iter().map(on).collect();
                return AssetVerdict::Denied {
                    forbids: Vec::new(),
                    reasons,
                };
            }
        };

        let subset;
        let policies = if common.prefilter {
            let enforcement = match asset.enforcement {
                Enforcement::Brokered => "brokered",
                Enforcement::Legacy => "legacy",
            };
            let facts = Facts {
                principal: (self.names.identity_type(), &input.subject.id),
                resource: (self.names.asset_type(), &asset.id),
                principal_kind: input.subject.kind.as_str(),
                principal_org: input.subject.org.as_deref().unwrap_or(""),
                path: input.path.as_str(),
                site: &asset.site,
                zone: asset.zone.as_deref().unwrap_or(""),
                asset_kind: asset.kind.as_str(),
                criticality: asset.criticality.as_str(),
                enforcement,
                rank: entities::criticality_rank(asset.criticality),
                writes,
                lockout: asset.lockout,
                requester_is_subject,
                principal_active: input.subject.is_active(),
                org_active: common.subject_org_active,
                roles: &input.subject.roles,
                groups: &input.subject.groups,
                sites: &input.subject.sites,
                operations: &operations,
                protocols: &protocols,
            };
            subset = self.subset_for(&facts);
            subset.as_deref().unwrap_or(&self.cedar)
        } else {
            &self.cedar
        };

        let response = self.authorizer.is_authorized(&request, policies, &entities);
        let diagnostics = response.diagnostics();
        let mut matched: Vec<String> = diagnostics.reason().map(|id| id.to_string()).collect();
        matched.sort();
        let errors: Vec<String> = diagnostics
            .errors()
            .map(|e| on(format!("evaluation error, so the request is denied: {e}")))
            .collect();
        if !errors.is_empty() {
            let forbids = matched
                .into_iter()
                .filter(|id| self.is_forbid(id))
                .collect();
            return AssetVerdict::Denied {
                forbids,
                reasons: errors,
            };
        }
        match response.decision() {
            cedar_policy::Decision::Allow => AssetVerdict::Allowed(matched),
            cedar_policy::Decision::Deny if matched.is_empty() => AssetVerdict::Denied {
                forbids: Vec::new(),
                reasons: vec![format!(
                    "no policy permits {} {} to {} on {} ({}) via path {}",
                    input.subject.kind.as_str(),
                    input.subject.id,
                    operations.iter().cloned().collect::<Vec<_>>().join(", "),
                    asset.id,
                    asset.criticality.as_str(),
                    input.path.as_str()
                )],
            },
            cedar_policy::Decision::Deny => {
                let reasons = matched
                    .iter()
                    .map(
                        |id| match self.policies.get(id).and_then(|p| p.reason.as_deref()) {
                            Some(reason) => on(format!("denied by policy `{id}`: {reason}")),
                            None => on(format!("denied by policy `{id}`")),
                        },
                    )
                    .collect();
                AssetVerdict::Denied {
                    forbids: matched,
                    reasons,
                }
            }
        }
    }

    /// The Cedar set of the policies whose guards admit `facts`; `None` means use the full
    /// set (every policy admitted, or the subset could not be built).
    fn subset_for(&self, facts: &Facts<'_>) -> Option<Arc<cedar_policy::PolicySet>> {
        let mut key = vec![0u64; self.prefilter.len().div_ceil(64)];
        let mut all = true;
        for (i, (_, guard)) in self.prefilter.iter().enumerate() {
            if guard.admits(facts) {
                key[i / 64] |= 1 << (i % 64);
            } else {
                all = false;
            }
        }
        if all {
            return None;
        }
        self.subsets.get_or_build(key, || {
            let chosen = self
                .prefilter
                .iter()
                .filter(|(_, g)| g.admits(facts))
                .map(|(p, _)| p.clone());
            cedar_policy::PolicySet::from_policies(chosen).ok()
        })
    }

    fn is_forbid(&self, id: &str) -> bool {
        self.policies
            .get(id)
            .is_some_and(|p| p.obligations.is_none())
    }

    fn denied(&self, determining: Vec<String>, reasons: Vec<String>) -> Decision {
        Decision {
            allowed: false,
            determining_policies: determining,
            policy_set_hash: self.hash.clone(),
            obligations: Obligations::default(),
            reasons,
        }
    }
}

fn internal(problems: Vec<String>) -> Vec<String> {
    problems
        .into_iter()
        .map(|p| {
            format!("internal error building the policy request, so the request is denied: {p}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jitgate_core::scope::{parse_rule, Protocol};
    use jitgate_core::Inventory;

    const PLANT: &str = include_str!("../../../examples/plant.toml");

    /// The pre-filter really narrows the set (equality with full evaluation is tested in
    /// tests/it/prefilter.rs).
    #[test]
    fn prefilter_hands_cedar_a_small_subset() {
        let set = crate::default_set().unwrap();
        let inv = Inventory::from_toml(PLANT).unwrap();
        let bob = inv.identities.iter().find(|i| i.id == "bob").unwrap();
        let plc = inv.assets.iter().find(|a| a.id == "plc-7").unwrap();
        let facts = Facts {
            principal: ("Jitgate::Identity", "bob"),
            resource: ("Jitgate::Asset", "plc-7"),
            principal_kind: bob.kind.as_str(),
            principal_org: "plant",
            path: "planned",
            site: &plc.site,
            zone: "cell-1",
            asset_kind: "plc",
            criticality: "safety",
            enforcement: "brokered",
            rank: 3,
            writes: false,
            lockout: false,
            requester_is_subject: true,
            principal_active: true,
            org_active: true,
            roles: &bob.roles,
            groups: &bob.groups,
            sites: &bob.sites,
            operations: &["modbus:read".to_string()].into(),
            protocols: &["modbus"].into(),
        };
        let subset = set.subset_for(&facts).unwrap();
        let n = subset.policies().count();
        assert!(n > 0 && n <= set.len() / 2, "{n} of {}", set.len());
        assert!(subset
            .policies()
            .any(|p| p.id().to_string() == "human-read"));
        // Same facts, same cached set.
        assert!(Arc::ptr_eq(&subset, &set.subset_for(&facts).unwrap()));

        let scope = Scope::new(parse_rule(plc, Protocol::Modbus, "read coil 1").unwrap()).unwrap();
        let input = DecisionInput {
            requester: bob,
            subject: bob,
            orgs: &inv.orgs,
            assets: &inv.assets,
            scope: &scope,
            path: AccessPath::Planned,
            duration_secs: 3600,
        };
        assert_eq!(set.decide(&input).determining_policies, ["human-read"]);
    }
}
