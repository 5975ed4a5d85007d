//! Integration tests of jitgate-policy: the default set against the sample plant, loading
//! errors with their locations, the shipped scenarios, and the policy-set hash.

// Test helpers stop loudly on anything unexpected; that is what a test is for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod decisions;
mod loading;
mod prefilter;
mod scenarios;

use jitgate_core::scope::{parse_request, ScopeRequest};
use jitgate_core::{AccessPath, Decision, Inventory, Scope};
use jitgate_policy::{DecisionInput, PolicySet};

pub const PLANT: &str = include_str!("../../../../examples/plant.toml");
pub const SCENARIOS: &str = include_str!("../../../../policies/scenarios.toml");
pub const POLICY_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");

pub fn plant() -> Inventory {
    Inventory::from_toml(PLANT).unwrap()
}

/// A request in the shorthand of the tests: `("modbus", "write coil 1")` rules on one asset.
pub struct Ask<'a> {
    pub requester: &'a str,
    pub subject: &'a str,
    pub assets: &'a [(&'a str, &'a [(&'a str, &'a str)])],
    pub path: AccessPath,
    pub duration_secs: i64,
}

pub fn decide(set: &PolicySet, inv: &Inventory, ask: Ask<'_>) -> Decision {
    let find = |id: &str| inv.identities.iter().find(|i| i.id == id).unwrap();
    let mut items = Vec::new();
    for (asset_id, rules) in ask.assets {
        let asset = inv.assets.iter().find(|a| a.id == *asset_id).unwrap();
        let mut req = ScopeRequest {
            asset: asset_id.to_string(),
            ..Default::default()
        };
        for (protocol, rule) in *rules {
            match *protocol {
                "modbus" => req.modbus.push(rule.to_string()),
                "dnp3" => req.dnp3.push(rule.to_string()),
                "ssh" => req.ssh.push(rule.to_string()),
                other => panic!("protocol {other}"),
            }
        }
        items.extend(parse_request(asset, &req).unwrap());
    }
    let scope = Scope::new(items).unwrap();
    set.decide(&DecisionInput {
        requester: find(ask.requester),
        subject: find(ask.subject),
        orgs: &inv.orgs,
        assets: &inv.assets,
        scope: &scope,
        path: ask.path,
        duration_secs: ask.duration_secs,
    })
}
