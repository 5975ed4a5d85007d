//! Mapping jitgate's domain objects onto the Cedar schema: an [`Identity`] becomes a
//! `Jitgate::Identity` entity, an [`Asset`] a `Jitgate::Asset`, and the request's scope on
//! one asset becomes the context. Every value goes in through a typed constructor
//! (`new_string`, `new_set`, ...), never through Cedar's parser, so no name or id coming
//! from a user can change the meaning of what Cedar evaluates.
//!
//! Entities are built without parents (no hierarchy): the pre-filter relies on it to read
//! `principal in X` as `principal == X`.

use crate::error::PolicyError;
use cedar_policy::{Context, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use jitgate_core::{Asset, Criticality, Enforcement, Identity, Org, OrgStatus};
use std::collections::BTreeSet;
use std::str::FromStr;

const IDENTITY_TYPE: &str = "Jitgate::Identity";
const ASSET_TYPE: &str = "Jitgate::Asset";

/// Cedar names parsed once per policy set instead of once per decision.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    identity: EntityTypeName,
    asset: EntityTypeName,
    pub(crate) action: EntityUid,
}

impl Names {
    pub(crate) fn new() -> Result<Self, PolicyError> {
        let ty = |s: &str| {
            EntityTypeName::from_str(s).map_err(|e| PolicyError::Schema(format!("{s}: {e}")))
        };
        let action_ty = ty("Jitgate::Action")?;
        Ok(Names {
            identity: ty(IDENTITY_TYPE)?,
            asset: ty(ASSET_TYPE)?,
            action: EntityUid::from_type_name_and_id(action_ty, EntityId::new("request")),
        })
    }

    /// Type names as they appear in a policy's JSON form (for the pre-filter).
    pub(crate) fn identity_type(&self) -> &'static str {
        IDENTITY_TYPE
    }

    pub(crate) fn asset_type(&self) -> &'static str {
        ASSET_TYPE
    }

    pub(crate) fn identity_uid(&self, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.identity.clone(), EntityId::new(id))
    }

    pub(crate) fn asset_uid(&self, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.asset.clone(), EntityId::new(id))
    }
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_string())
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.into_iter().map(string))
}

/// Is the identity's organisation active? No org: nothing can suspend it. An org the
/// inventory does not know counts as suspended, so a dangling reference fails closed.
pub(crate) fn org_active(identity: &Identity, orgs: &[Org]) -> bool {
    match &identity.org {
        None => true,
        Some(id) => orgs
            .iter()
            .any(|o| &o.id == id && o.status == OrgStatus::Active),
    }
}

pub(crate) fn identity(names: &Names, i: &Identity, orgs: &[Org]) -> Result<Entity, String> {
    let attrs = [
        ("kind", string(i.kind.as_str())),
        ("org", string(i.org.as_deref().unwrap_or(""))),
        ("roles", strings(i.roles.iter().map(String::as_str))),
        ("groups", strings(i.groups.iter().map(String::as_str))),
        ("sites", strings(i.sites.iter().map(String::as_str))),
        ("active", RestrictedExpression::new_bool(i.is_active())),
        (
            "org_active",
            RestrictedExpression::new_bool(org_active(i, orgs)),
        ),
    ];
    Entity::new_with_tags(
        names.identity_uid(&i.id),
        attrs.into_iter().map(|(k, v)| (k.to_string(), v)),
        [],
        [],
    )
    .map_err(|e| format!("identity {}: {e}", i.id))
}

pub(crate) fn criticality_rank(c: Criticality) -> i64 {
    match c {
        Criticality::Low => 0,
        Criticality::Medium => 1,
        Criticality::High => 2,
        Criticality::Safety => 3,
    }
}

pub(crate) fn asset(names: &Names, a: &Asset) -> Result<Entity, String> {
    let enforcement = match a.enforcement {
        Enforcement::Brokered => "brokered",
        Enforcement::Legacy => "legacy",
    };
    let attrs = [
        ("kind", string(a.kind.as_str())),
        ("site", string(&a.site)),
        ("zone", string(a.zone.as_deref().unwrap_or(""))),
        ("criticality", string(a.criticality.as_str())),
        (
            "criticality_rank",
            RestrictedExpression::new_long(criticality_rank(a.criticality)),
        ),
        ("enforcement", string(enforcement)),
        ("lockout", RestrictedExpression::new_bool(a.lockout)),
    ];
    Entity::new_with_tags(
        names.asset_uid(&a.id),
        attrs.into_iter().map(|(k, v)| (k.to_string(), v)),
        [],
        [],
    )
    .map_err(|e| format!("asset {}: {e}", a.id))
}

/// What the request asks for on one asset: the context half of a Cedar request.
pub(crate) struct AssetAsk<'a> {
    pub path: &'a str,
    pub operations: &'a BTreeSet<String>,
    pub protocols: &'a BTreeSet<&'static str>,
    pub writes: bool,
    pub duration_minutes: i64,
    pub requester_is_subject: bool,
    pub requester: &'a EntityUid,
}

pub(crate) fn context(ask: &AssetAsk<'_>) -> Result<Context, String> {
    let pairs = [
        ("path", string(ask.path)),
        (
            "operations",
            strings(ask.operations.iter().map(String::as_str)),
        ),
        ("protocols", strings(ask.protocols.iter().copied())),
        ("writes", RestrictedExpression::new_bool(ask.writes)),
        (
            "duration_minutes",
            RestrictedExpression::new_long(ask.duration_minutes),
        ),
        (
            "requester_is_subject",
            RestrictedExpression::new_bool(ask.requester_is_subject),
        ),
        (
            "requester",
            RestrictedExpression::new_entity_uid(ask.requester.clone()),
        ),
    ];
    Context::from_pairs(pairs.into_iter().map(|(k, v)| (k.to_string(), v)))
        .map_err(|e| format!("context: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::Entities;
    use jitgate_core::{AccessPath, Inventory};

    const PLANT: &str = include_str!("../../../examples/plant.toml");

    /// Every identity and asset of the sample plant, and a context, conform to the schema
    /// (release builds skip this check per decision, so it must hold by construction).
    #[test]
    fn mapping_conforms_to_the_schema() {
        let inv = Inventory::from_toml(PLANT).unwrap();
        let schema = crate::schema::load().unwrap();
        let names = Names::new().unwrap();
        let mut all: Vec<Entity> = inv
            .identities
            .iter()
            .map(|i| identity(&names, i, &inv.orgs).unwrap())
            .collect();
        all.extend(inv.assets.iter().map(|a| asset(&names, a).unwrap()));
        Entities::from_entities(all, Some(&schema)).unwrap();

        let requester = names.identity_uid("alice");
        let ops = BTreeSet::from(["modbus:read".to_string()]);
        let protocols = BTreeSet::from(["modbus"]);
        let ask = AssetAsk {
            path: AccessPath::Planned.as_str(),
            operations: &ops,
            protocols: &protocols,
            writes: false,
            duration_minutes: 60,
            requester_is_subject: true,
            requester: &requester,
        };
        cedar_policy::Request::new(
            requester.clone(),
            names.action.clone(),
            names.asset_uid("plc-7"),
            context(&ask).unwrap(),
            Some(&schema),
        )
        .unwrap();
    }

    #[test]
    fn unknown_or_suspended_orgs_are_not_active() {
        let inv = Inventory::from_toml(PLANT).unwrap();
        let get = |id: &str| inv.identities.iter().find(|i| i.id == id).unwrap();
        assert!(org_active(get("vera"), &inv.orgs));
        assert!(!org_active(get("victor"), &inv.orgs));
        assert!(org_active(get("svc-historian"), &inv.orgs)); // no org
        assert!(!org_active(get("vera"), &[]));
    }
}
