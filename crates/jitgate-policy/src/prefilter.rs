//! Skipping policies that certainly cannot match, so a decision stays fast with hundreds of
//! policies.
//!
//! Why: Cedar evaluates every policy of a set on every request, and rebuilds each policy's
//! condition expression to do so (a few microseconds per policy). Plant policy sets grow
//! per site, per team, per supplier and per asset, so most policies are about *other*
//! people, sites or paths. At load we read, from each policy's scope and the top-level
//! conjuncts of its `when` clauses, simple facts the request must have for the policy to
//! match — `principal.kind == "vendor"`, `context.path` in {planned, routine},
//! `resource.site == "north"`, `resource.criticality_rank >= 2`, `!context.writes`,
//! `principal.roles.contains("engineer")`, `principal.sites.contains(resource.site)`,
//! `principal == Jitgate::Identity::"bob"` ... At decision time only the policies whose
//! facts hold are handed to Cedar (as a policy set cached per combination).
//!
//! Soundness: a policy is skipped only when one of its top-level conjuncts is false for the
//! request. Then its condition is false whatever the other conjuncts say, so it can neither
//! permit nor forbid: the verdict, determining policies and obligations are exactly Cedar's
//! on the full set. The one difference: an evaluation *error* inside a skipped policy (say an
//! overflow in a later conjunct) is not reported, because the policy is not evaluated; such
//! a policy could not have matched anyway. Forms not recognised are simply not used for
//! skipping. `principal in X` is read as `principal == X` because jitgate entities have no
//! parents (see `entities.rs`); revisit this file if the schema ever gains a hierarchy.
//! A test decides many requests both ways and compares.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// String-valued attributes a guard can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrDim {
    PrincipalKind,
    PrincipalOrg,
    Path,
    Site,
    Zone,
    AssetKind,
    Criticality,
    Enforcement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BoolDim {
    Writes,
    Lockout,
    RequesterIsSubject,
    PrincipalActive,
    OrgActive,
}

/// Set-valued attributes a guard can test for one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetDim {
    Roles,
    Groups,
    Sites,
    Operations,
    Protocols,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cond {
    /// The attribute's value must be one of these.
    Str(StrDim, Vec<String>),
    Bool(BoolDim, bool),
    /// The set must contain this member: `principal.roles.contains("engineer")`.
    Contains(SetDim, String),
    /// `principal.sites.contains(resource.site)`
    AtAssetSite,
    /// `resource.criticality_rank <cmp> n`
    Rank(Cmp, i64),
    /// The principal / resource must be this entity (`"Type::\"id\""` form is avoided:
    /// type and id are kept apart so no escaping question arises).
    Principal(String, String),
    Resource(String, String),
}

/// What must hold for one policy to possibly match.
#[derive(Debug, Clone, Default)]
pub(crate) struct Guard {
    conds: Vec<Cond>,
}

/// The request facts guards are checked against (one asset's evaluation).
pub(crate) struct Facts<'a> {
    pub principal: (&'a str, &'a str),
    pub resource: (&'a str, &'a str),
    pub principal_kind: &'a str,
    pub principal_org: &'a str,
    pub path: &'a str,
    pub site: &'a str,
    pub zone: &'a str,
    pub asset_kind: &'a str,
    pub criticality: &'a str,
    pub enforcement: &'a str,
    pub rank: i64,
    pub writes: bool,
    pub lockout: bool,
    pub requester_is_subject: bool,
    pub principal_active: bool,
    pub org_active: bool,
    pub roles: &'a [String],
    pub groups: &'a [String],
    pub sites: &'a [String],
    pub operations: &'a std::collections::BTreeSet<String>,
    pub protocols: &'a std::collections::BTreeSet<&'static str>,
}

impl Facts<'_> {
    fn str(&self, d: StrDim) -> &str {
        match d {
            StrDim::PrincipalKind => self.principal_kind,
            StrDim::PrincipalOrg => self.principal_org,
            StrDim::Path => self.path,
            StrDim::Site => self.site,
            StrDim::Zone => self.zone,
            StrDim::AssetKind => self.asset_kind,
            StrDim::Criticality => self.criticality,
            StrDim::Enforcement => self.enforcement,
        }
    }
    fn contains(&self, d: SetDim, member: &str) -> bool {
        match d {
            SetDim::Roles => self.roles.iter().any(|r| r == member),
            SetDim::Groups => self.groups.iter().any(|g| g == member),
            SetDim::Sites => self.sites.iter().any(|s| s == member),
            SetDim::Operations => self.operations.contains(member),
            SetDim::Protocols => self.protocols.contains(member),
        }
    }

    fn bool(&self, d: BoolDim) -> bool {
        match d {
            BoolDim::Writes => self.writes,
            BoolDim::Lockout => self.lockout,
            BoolDim::RequesterIsSubject => self.requester_is_subject,
            BoolDim::PrincipalActive => self.principal_active,
            BoolDim::OrgActive => self.org_active,
        }
    }
}

impl Guard {
    /// Read the guard of a policy from its JSON form (Cedar's EST). Anything unexpected
    /// yields fewer conditions, never a wrong one.
    pub(crate) fn from_est(est: &Value) -> Guard {
        let mut conds = Vec::new();
        if let Some(c) = scope_cond(est.get("principal"), Cond::Principal) {
            conds.push(c);
        }
        if let Some(c) = scope_cond(est.get("resource"), Cond::Resource) {
            conds.push(c);
        }
        for clause in est
            .get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(body) = clause.get("body") else {
                continue;
            };
            match clause.get("kind").and_then(Value::as_str) {
                Some("when") => {
                    let mut conjuncts = Vec::new();
                    flatten_and(body, &mut conjuncts);
                    conds.extend(conjuncts.into_iter().filter_map(atom));
                }
                // `unless { resource.lockout }` is `when { !resource.lockout }`.
                Some("unless") => {
                    if let Some(Cond::Bool(d, v)) = atom(body) {
                        conds.push(Cond::Bool(d, !v));
                    }
                }
                _ => {}
            }
        }
        Guard { conds }
    }

    pub(crate) fn admits(&self, f: &Facts<'_>) -> bool {
        self.conds.iter().all(|c| match c {
            Cond::Str(d, any) => any.iter().any(|v| v == f.str(*d)),
            Cond::Bool(d, v) => f.bool(*d) == *v,
            Cond::Contains(d, member) => f.contains(*d, member),
            Cond::AtAssetSite => f.sites.iter().any(|s| s == f.site),
            Cond::Rank(cmp, n) => match cmp {
                Cmp::Lt => f.rank < *n,
                Cmp::Le => f.rank <= *n,
                Cmp::Gt => f.rank > *n,
                Cmp::Ge => f.rank >= *n,
                Cmp::Eq => f.rank == *n,
            },
            Cond::Principal(t, id) => f.principal == (t.as_str(), id.as_str()),
            Cond::Resource(t, id) => f.resource == (t.as_str(), id.as_str()),
        })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.conds.len()
    }
}

/// `principal == E`, `principal in E`, `principal is T in E` → must be E.
fn scope_cond(scope: Option<&Value>, make: fn(String, String) -> Cond) -> Option<Cond> {
    let scope = scope?;
    let entity = match scope.get("op").and_then(Value::as_str)? {
        "==" | "in" => scope.get("entity")?,
        "is" => scope.get("in")?.get("entity")?,
        _ => return None,
    };
    let ty = entity.get("type")?.as_str()?;
    let id = entity.get("id")?.as_str()?;
    Some(make(ty.to_string(), id.to_string()))
}

fn flatten_and<'a>(e: &'a Value, out: &mut Vec<&'a Value>) {
    match e.get("&&") {
        Some(and) => {
            if let (Some(l), Some(r)) = (and.get("left"), and.get("right")) {
                flatten_and(l, out);
                flatten_and(r, out);
            }
        }
        None => out.push(e),
    }
}

/// `principal.kind` → Some(("principal", "kind")).
fn attr_of(e: &Value) -> Option<(&str, &str)> {
    let dot = e.get(".")?;
    let var = dot.get("left")?.get("Var")?.as_str()?;
    Some((var, dot.get("attr")?.as_str()?))
}

fn str_dim(e: &Value) -> Option<StrDim> {
    Some(match attr_of(e)? {
        ("principal", "kind") => StrDim::PrincipalKind,
        ("principal", "org") => StrDim::PrincipalOrg,
        ("context", "path") => StrDim::Path,
        ("resource", "site") => StrDim::Site,
        ("resource", "zone") => StrDim::Zone,
        ("resource", "kind") => StrDim::AssetKind,
        ("resource", "criticality") => StrDim::Criticality,
        ("resource", "enforcement") => StrDim::Enforcement,
        _ => return None,
    })
}

fn bool_dim(e: &Value) -> Option<BoolDim> {
    Some(match attr_of(e)? {
        ("context", "writes") => BoolDim::Writes,
        ("resource", "lockout") => BoolDim::Lockout,
        ("context", "requester_is_subject") => BoolDim::RequesterIsSubject,
        ("principal", "active") => BoolDim::PrincipalActive,
        ("principal", "org_active") => BoolDim::OrgActive,
        _ => return None,
    })
}

fn set_dim(e: &Value) -> Option<SetDim> {
    Some(match attr_of(e)? {
        ("principal", "roles") => SetDim::Roles,
        ("principal", "groups") => SetDim::Groups,
        ("principal", "sites") => SetDim::Sites,
        ("context", "operations") => SetDim::Operations,
        ("context", "protocols") => SetDim::Protocols,
        _ => return None,
    })
}

fn is_rank(e: &Value) -> bool {
    attr_of(e) == Some(("resource", "criticality_rank"))
}

fn literal_str(e: &Value) -> Option<&str> {
    e.get("Value")?.as_str()
}

/// One conjunct as a condition, if it has a recognised shape.
fn atom(e: &Value) -> Option<Cond> {
    if let Some(d) = bool_dim(e) {
        return Some(Cond::Bool(d, true));
    }
    if let Some(arg) = e.get("!").and_then(|n| n.get("arg")) {
        return bool_dim(arg).map(|d| Cond::Bool(d, false));
    }
    if let Some((d, values)) = str_choice(e) {
        return Some(Cond::Str(d, values));
    }
    // `principal.roles.contains("engineer")`, `principal.sites.contains(resource.site)`
    if let Some(c) = e.get("contains") {
        let (set, member) = (c.get("left")?, c.get("right")?);
        let d = set_dim(set)?;
        if let Some(m) = literal_str(member) {
            return Some(Cond::Contains(d, m.to_string()));
        }
        if d == SetDim::Sites && str_dim(member) == Some(StrDim::Site) {
            return Some(Cond::AtAssetSite);
        }
        return None;
    }
    for (op, cmp, flipped) in [
        ("<", Cmp::Lt, Cmp::Gt),
        ("<=", Cmp::Le, Cmp::Ge),
        (">", Cmp::Gt, Cmp::Lt),
        (">=", Cmp::Ge, Cmp::Le),
        ("==", Cmp::Eq, Cmp::Eq),
    ] {
        let Some(b) = e.get(op) else { continue };
        let (l, r) = (b.get("left")?, b.get("right")?);
        if is_rank(l) {
            return r.get("Value")?.as_i64().map(|n| Cond::Rank(cmp, n));
        }
        if is_rank(r) {
            return l.get("Value")?.as_i64().map(|n| Cond::Rank(flipped, n));
        }
    }
    None
}

/// `X == "a"`, `"a" == X`, `X == "a" || X == "b"`, `["a", "b"].contains(X)` → (X, [a, b]).
fn str_choice(e: &Value) -> Option<(StrDim, Vec<String>)> {
    if let Some(eq) = e.get("==") {
        let (l, r) = (eq.get("left")?, eq.get("right")?);
        if let (Some(d), Some(v)) = (str_dim(l), literal_str(r)) {
            return Some((d, vec![v.to_string()]));
        }
        if let (Some(v), Some(d)) = (literal_str(l), str_dim(r)) {
            return Some((d, vec![v.to_string()]));
        }
        return None;
    }
    if let Some(or) = e.get("||") {
        let (dl, mut vl) = str_choice(or.get("left")?)?;
        let (dr, vr) = str_choice(or.get("right")?)?;
        if dl != dr {
            return None;
        }
        vl.extend(vr);
        return Some((dl, vl));
    }
    if let Some(c) = e.get("contains") {
        let d = str_dim(c.get("right")?)?;
        let values = c
            .get("left")?
            .get("Set")?
            .as_array()?
            .iter()
            .map(|v| literal_str(v).map(str::to_string))
            .collect::<Option<Vec<_>>>()?;
        return Some((d, values));
    }
    None
}

/// Cedar policy sets for the subsets of policies seen so far, keyed by which policies are
/// in (one bit per policy, in id order). Bounded: when full it is emptied and refilled, so
/// memory stays small whatever the traffic.
#[derive(Debug, Default)]
pub(crate) struct SubsetCache {
    sets: RwLock<HashMap<Vec<u64>, Arc<cedar_policy::PolicySet>>>,
}

/// Distinct subsets kept; a plant's traffic uses far fewer (they follow kinds, paths and
/// sites, not individual requests).
const CACHE_LIMIT: usize = 512;

impl SubsetCache {
    pub(crate) fn get_or_build(
        &self,
        key: Vec<u64>,
        build: impl FnOnce() -> Option<cedar_policy::PolicySet>,
    ) -> Option<Arc<cedar_policy::PolicySet>> {
        if let Ok(sets) = self.sets.read() {
            if let Some(set) = sets.get(&key) {
                return Some(Arc::clone(set));
            }
        }
        let set = Arc::new(build()?);
        // A poisoned lock only means another thread panicked mid-insert; deciding without
        // caching is still correct.
        if let Ok(mut sets) = self.sets.write() {
            if sets.len() >= CACHE_LIMIT {
                sets.clear();
            }
            sets.insert(key, Arc::clone(&set));
        }
        Some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn guard(src: &str) -> Guard {
        let set = cedar_policy::PolicySet::from_str(src).unwrap();
        let p = set.policies().next().unwrap();
        Guard::from_est(&p.to_json().unwrap())
    }

    fn facts() -> Facts<'static> {
        static ROLES: [String; 0] = [];
        static OPS: std::sync::OnceLock<std::collections::BTreeSet<String>> =
            std::sync::OnceLock::new();
        static PROTOS: std::sync::OnceLock<std::collections::BTreeSet<&'static str>> =
            std::sync::OnceLock::new();
        Facts {
            roles: &ROLES,
            groups: &ROLES,
            sites: &ROLES,
            operations: OPS.get_or_init(|| ["modbus:write".to_string()].into()),
            protocols: PROTOS.get_or_init(|| ["modbus"].into()),
            principal: ("Jitgate::Identity", "bob"),
            resource: ("Jitgate::Asset", "plc-7"),
            principal_kind: "human",
            principal_org: "plant",
            path: "planned",
            site: "north",
            zone: "cell-1",
            asset_kind: "plc",
            criticality: "safety",
            enforcement: "brokered",
            rank: 3,
            writes: true,
            lockout: false,
            requester_is_subject: true,
            principal_active: true,
            org_active: true,
        }
    }

    #[test]
    fn recognised_conjuncts_become_conditions() {
        let g = guard(
            r#"permit (principal == Jitgate::Identity::"bob", action, resource in Jitgate::Asset::"plc-7")
            when { principal.kind == "human" && (context.path == "planned" || context.path == "routine")
                   && context.writes && 2 <= resource.criticality_rank && ["north", "south"].contains(resource.site)
                   && principal.kind != "vendor" }
            unless { resource.lockout };"#,
        );
        // principal, resource, kind, path, writes, rank, site, !lockout (`!=` is not a guard)
        assert_eq!(g.len(), 8);
        assert!(g.admits(&facts()));
        for change in [
            |f: &mut Facts<'static>| f.principal = ("Jitgate::Identity", "alice"),
            |f: &mut Facts<'static>| f.resource = ("Jitgate::Asset", "plc-8"),
            |f: &mut Facts<'static>| f.principal_kind = "vendor",
            |f: &mut Facts<'static>| f.path = "emergency",
            |f: &mut Facts<'static>| f.writes = false,
            |f: &mut Facts<'static>| f.rank = 1,
            |f: &mut Facts<'static>| f.site = "east",
            |f: &mut Facts<'static>| f.lockout = true,
        ] {
            let mut f = facts();
            change(&mut f);
            assert!(!g.admits(&f));
        }
    }

    #[test]
    fn set_membership_is_a_guard() {
        let g = guard(
            r#"permit (principal, action, resource)
            when { principal.roles.contains("engineer") && context.operations.contains("modbus:write")
                   && principal.sites.contains(resource.site) && context.protocols.contains("modbus") };"#,
        );
        assert_eq!(g.len(), 4);
        let sites = ["north".to_string()];
        let roles = ["engineer".to_string()];
        let f = Facts {
            roles: &roles,
            sites: &sites,
            ..facts()
        };
        assert!(g.admits(&f));
        assert!(!g.admits(&Facts { roles: &sites, ..f }));
        let elsewhere = ["south".to_string()];
        let f = Facts {
            roles: &roles,
            sites: &elsewhere,
            ..facts()
        };
        assert!(!g.admits(&f));
        // Membership tests on other sets are not read.
        let g = guard(
            r#"permit (principal, action, resource) when { [principal.kind].contains("human") };"#,
        );
        assert_eq!(g.len(), 0);
    }

    #[test]
    fn disjunctions_across_attributes_are_not_guards() {
        let g = guard(
            r#"permit (principal, action, resource)
            when { principal.kind == "human" || context.path == "planned" };"#,
        );
        assert_eq!(g.len(), 0);
        let g =
            guard(r#"permit (principal, action, resource) when { !(principal.kind == "human") };"#);
        assert_eq!(g.len(), 0);
    }
}
