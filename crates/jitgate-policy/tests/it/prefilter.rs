//! The pre-filter must never change a decision: decide a large grid of requests with and
//! without it, on the default set plus policies of every shape the pre-filter reads (and
//! some it must not misread), and compare everything.

use crate::plant;
use jitgate_core::scope::{parse_request, ScopeRequest};
use jitgate_core::{AccessPath, Scope};
use jitgate_policy::{default_sources, DecisionInput, PolicySet};

const SHAPES: &str = r#"
@id("s-principal-eq")
@approvals("2")
permit (principal == Jitgate::Identity::"carol", action, resource) when { resource.site == "north" };

@id("s-principal-in")
permit (principal in Jitgate::Identity::"sam", action == Jitgate::Action::"request", resource is Jitgate::Asset);

@id("s-resource-in")
@max_duration("2h")
permit (principal, action, resource is Jitgate::Asset in Jitgate::Asset::"hmi-1") when { context.path == "routine" };

@id("s-rank-flipped")
@step_up("true")
permit (principal, action, resource) when { 1 >= resource.criticality_rank && ["planned", "emergency"].contains(context.path) };

@id("s-rank-eq")
permit (principal, action, resource) when { resource.criticality_rank == 2 && principal.kind == "vendor" };

@id("s-unless")
@review("true")
permit (principal, action, resource) when { principal.org == "acme-automation" } unless { !context.writes };

@id("s-or-across")
permit (principal, action, resource) when { principal.kind == "workload" || resource.zone == "dmz" };

@id("s-negated-eq")
permit (principal, action, resource) when { !(context.path == "planned") && resource.kind == "historian" };

@id("s-two-whens")
@approvals("0")
permit (principal, action, resource) when { resource.enforcement == "legacy" } when { principal.roles.contains("security") };

@id("s-forbid-zone")
@reason("no writes in the substation on the routine path")
forbid (principal, action, resource) when { resource.zone == "substation" && context.writes && context.path == "routine" };

@id("s-forbid-criticality")
@reason("no SSH commands on safety assets")
forbid (principal, action, resource) when { resource.criticality == "safety" && context.operations.contains("ssh:command") };

@id("s-overflow")
permit (principal, action, resource) when { principal.kind == "human" && context.duration_minutes * 100000000000000 > 0 };

@id("s-groups")
@approver_group("controls-north")
permit (principal, action, resource) when { principal.groups.contains("controls-north") && context.protocols.contains("ssh") };

@id("s-flags")
permit (principal, action, resource) when { principal.active && principal.org_active && !context.requester_is_subject && resource.lockout == false };
"#;

#[test]
fn prefiltered_decisions_equal_full_evaluation() {
    let mut sources = default_sources();
    sources.push(("90-shapes.cedar".into(), SHAPES.into()));
    let set = PolicySet::from_sources(sources).unwrap();
    let inv = plant();
    let rules: [(&str, &str); 8] = [
        ("modbus", "read holding 0-9"),
        ("modbus", "write coil 1"),
        ("modbus", "programming"),
        ("dnp3", "read class 0"),
        ("dnp3", "operate binary-output 1"),
        ("ssh", "shell"),
        ("ssh", "command uptime"),
        ("modbus", "readonly"),
    ];
    let mut compared = 0;
    let mut allowed = 0;
    // `s-overflow` errors for humans asking for very long durations: errors must survive
    // the pre-filter too.
    let mut errors = 0;
    for subject in &inv.identities {
        let requesters: Vec<&str> = match subject.owners.first() {
            Some(owner) => vec![owner.as_str(), "bob"],
            None => vec![subject.id.as_str(), "alice"],
        };
        for requester_id in requesters {
            let requester = inv
                .identities
                .iter()
                .find(|i| i.id == requester_id)
                .unwrap();
            for asset in &inv.assets {
                for (protocol, rule) in rules {
                    let mut req = ScopeRequest {
                        asset: asset.id.clone(),
                        ..Default::default()
                    };
                    let unit = asset
                        .endpoints
                        .modbus
                        .as_ref()
                        .map(|m| m.unit_ids[0])
                        .unwrap_or(1);
                    match protocol {
                        "modbus" => req.modbus.push(format!("{rule} unit {unit}")),
                        "dnp3" => req.dnp3.push(rule.into()),
                        _ => req.ssh.push(rule.into()),
                    }
                    let Ok(items) = parse_request(asset, &req) else {
                        continue;
                    };
                    let scope = Scope::new(items).unwrap();
                    for path in [
                        AccessPath::Planned,
                        AccessPath::Routine,
                        AccessPath::Emergency,
                    ] {
                        for duration_secs in [1800, 4 * 3600, i64::MAX] {
                            let input = DecisionInput {
                                requester,
                                subject,
                                orgs: &inv.orgs,
                                assets: &inv.assets,
                                scope: &scope,
                                path,
                                duration_secs,
                            };
                            let fast = set.decide(&input);
                            let full = set.decide_without_prefilter(&input);
                            compared += 1;
                            allowed += usize::from(full.allowed);
                            errors += usize::from(
                                full.reasons.iter().any(|r| r.contains("evaluation error")),
                            );
                            assert_eq!(
                                fast, full,
                                "{requester_id} for {} on {} {rule} via {path:?}",
                                subject.id, asset.id
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(compared > 2000, "{compared}");
    assert!(errors > 0);
    // A grid where everything is denied (or allowed) would prove little.
    assert!(
        allowed > compared / 20 && allowed < compared * 19 / 20,
        "{allowed}/{compared}"
    );
}

/// The two multi-asset requests the server sends most (read here, write there) agree too.
#[test]
fn multi_asset_requests_agree() {
    let mut sources = default_sources();
    sources.push(("90-shapes.cedar".into(), SHAPES.into()));
    let set = PolicySet::from_sources(sources).unwrap();
    let inv = plant();
    let get = |id: &str| inv.assets.iter().find(|a| a.id == id).unwrap();
    let mut items = Vec::new();
    for (asset, rule) in [
        ("plc-7", "read holding 0-9"),
        ("plc-3", "write coil 1 unit 1"),
        ("historian", "read coil 0"),
    ] {
        let req = ScopeRequest {
            asset: asset.into(),
            modbus: vec![rule.into()],
            ..Default::default()
        };
        items.extend(parse_request(get(asset), &req).unwrap());
    }
    let scope = Scope::new(items).unwrap();
    for who in ["alice", "bob", "vera", "oscar", "sam"] {
        let id = inv.identities.iter().find(|i| i.id == who).unwrap();
        for path in [
            AccessPath::Planned,
            AccessPath::Routine,
            AccessPath::Emergency,
        ] {
            let input = DecisionInput {
                requester: id,
                subject: id,
                orgs: &inv.orgs,
                assets: &inv.assets,
                scope: &scope,
                path,
                duration_secs: 1800,
            };
            assert_eq!(
                set.decide(&input),
                set.decide_without_prefilter(&input),
                "{who} {path:?}"
            );
        }
    }
}
