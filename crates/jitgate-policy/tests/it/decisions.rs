//! The default set against the sample plant: verdicts, determining policies, obligations
//! and the words of denials; plus the decision machinery on hand-made sets.

use crate::{decide, plant, Ask};
use jitgate_core::{AccessPath, ApproverSite, Decision, Inventory, Scope};
use jitgate_policy::{default_set, DecisionInput, PolicySet};

const H: i64 = 3600;

fn run(
    set: &PolicySet,
    inv: &Inventory,
    requester: &str,
    subject: &str,
    assets: &[(&str, &[(&str, &str)])],
    path: AccessPath,
    secs: i64,
) -> Decision {
    decide(
        set,
        inv,
        Ask {
            requester,
            subject,
            assets,
            path,
            duration_secs: secs,
        },
    )
}

fn simple(requester: &str, asset: &str, rules: &[(&str, &str)], path: AccessPath) -> Decision {
    run(
        &default_set().unwrap(),
        &plant(),
        requester,
        requester,
        &[(asset, rules)],
        path,
        H,
    )
}

fn allowed_by(d: &Decision, ids: &[&str]) {
    assert!(d.allowed, "expected allow, got {:?}", d.reasons);
    assert_eq!(d.determining_policies, ids);
    assert!(d.reasons.is_empty());
}

fn denied_by(d: &Decision, id: &str, reason: &str) {
    assert!(
        !d.allowed,
        "expected deny, got allow by {:?}",
        d.determining_policies
    );
    assert_eq!(d.determining_policies, [id]);
    let want = format!("denied by policy `{id}`: {reason}");
    assert!(
        d.reasons.iter().any(|r| r.starts_with(&want)),
        "{:?} lacks {want:?}",
        d.reasons
    );
}

#[test]
fn humans_read_brokered_assets_with_one_site_engineer() {
    let d = simple(
        "oscar",
        "plc-7",
        &[("modbus", "read holding 0-99")],
        AccessPath::Routine,
    );
    allowed_by(&d, &["human-read"]);
    let ob = &d.obligations;
    assert_eq!(ob.approvals, 1);
    assert_eq!(ob.approver_roles, ["engineer"]);
    assert_eq!(ob.approver_site, Some(ApproverSite::Asset));
    assert_eq!(ob.max_duration_secs, 8 * H);
    assert!(!ob.step_up && !ob.review);
    assert_eq!(d.policy_set_hash, default_set().unwrap().hash());
}

#[test]
fn human_writes_scale_with_criticality() {
    let d = simple(
        "bob",
        "plc-7",
        &[("modbus", "write coil 10-20 unit 1")],
        AccessPath::Planned,
    );
    allowed_by(&d, &["human-write-high-safety"]);
    assert_eq!(
        (d.obligations.approvals, d.obligations.max_duration_secs),
        (2, 4 * H)
    );
    assert!(d.obligations.step_up);
    assert_eq!(d.obligations.approver_site, Some(ApproverSite::Asset));

    let d = simple(
        "bob",
        "plc-3",
        &[("modbus", "write holding 5 unit 1")],
        AccessPath::Planned,
    );
    allowed_by(&d, &["human-write-low-medium"]);
    assert_eq!(
        (d.obligations.approvals, d.obligations.max_duration_secs),
        (1, 8 * H)
    );
    assert!(!d.obligations.step_up);
}

#[test]
fn vendors_need_an_active_org_the_planned_path_and_review() {
    let d = simple(
        "vera",
        "plc-7",
        &[("modbus", "write coil 10-20")],
        AccessPath::Planned,
    );
    allowed_by(&d, &["vendor-high-two-approvals"]);
    let ob = &d.obligations;
    assert_eq!((ob.approvals, ob.max_duration_secs), (2, 2 * H));
    assert_eq!(ob.approver_roles, ["engineer"]);
    assert!(ob.step_up && ob.review);

    let d = simple(
        "vera",
        "plc-3",
        &[("modbus", "read holding 0-9 unit 1")],
        AccessPath::Planned,
    );
    allowed_by(&d, &["vendor-one-approval"]);
    assert_eq!(d.obligations.approvals, 1);

    let d = simple(
        "vera",
        "plc-3",
        &[("modbus", "read holding 0-9 unit 1")],
        AccessPath::Routine,
    );
    assert!(!d.allowed);
    assert!(d.determining_policies.is_empty());
    assert_eq!(
        d.reasons,
        ["no policy permits vendor vera to modbus:read on plc-3 (medium) via path routine"]
    );

    let d = simple(
        "victor",
        "historian",
        &[("modbus", "read holding 0-9")],
        AccessPath::Planned,
    );
    denied_by(
        &d,
        "forbid-suspended-org",
        "the subject's organisation is suspended",
    );

    // An org the inventory does not know fails closed, like a suspended one.
    let mut inv = plant();
    inv.orgs.retain(|o| o.id != "acme-automation");
    let read: &[(&str, &str)] = &[("modbus", "read coil 0")];
    let d = run(
        &default_set().unwrap(),
        &inv,
        "vera",
        "vera",
        &[("plc-7", read)],
        AccessPath::Planned,
        H,
    );
    denied_by(&d, "forbid-suspended-org", "the subject's organisation");
}

#[test]
fn workloads_read_only_on_the_routine_path() {
    let set = default_set().unwrap();
    let inv = plant();
    let hist: &[(&str, &str)] = &[("modbus", "read holding 0-9")];
    let d = run(
        &set,
        &inv,
        "alice",
        "svc-historian",
        &[("historian", hist)],
        AccessPath::Routine,
        H,
    );
    allowed_by(&d, &["workload-read-auto"]);
    assert_eq!(
        (d.obligations.approvals, d.obligations.max_duration_secs),
        (0, H)
    );

    let d = run(
        &set,
        &inv,
        "alice",
        "svc-historian",
        &[("plc-7", hist)],
        AccessPath::Routine,
        H,
    );
    allowed_by(&d, &["workload-read-high"]);
    assert_eq!(d.obligations.approvals, 1);

    let write: &[(&str, &str)] = &[("modbus", "write holding 0-9")];
    let d = run(
        &set,
        &inv,
        "alice",
        "svc-historian",
        &[("historian", write)],
        AccessPath::Routine,
        H,
    );
    denied_by(&d, "forbid-workload-writes", "workloads may only read");

    let d = run(
        &set,
        &inv,
        "alice",
        "svc-historian",
        &[("historian", hist)],
        AccessPath::Emergency,
        600,
    );
    denied_by(
        &d,
        "forbid-emergency-non-human",
        "break-glass is for on-call plant staff",
    );

    // The owner who asks for the workload must be active too.
    let mut inv = plant();
    for i in &mut inv.identities {
        if i.id == "alice" {
            i.status = jitgate_core::IdentityStatus::Disabled;
        }
    }
    let d = run(
        &set,
        &inv,
        "alice",
        "svc-historian",
        &[("historian", hist)],
        AccessPath::Routine,
        H,
    );
    denied_by(
        &d,
        "forbid-disabled-identity",
        "the subject or the requester is disabled",
    );
}

#[test]
fn break_glass_is_for_oncall_humans_short_and_reviewed() {
    let d = simple(
        "oscar",
        "plc-7",
        &[("modbus", "write coil 1")],
        AccessPath::Emergency,
    );
    allowed_by(&d, &["break-glass-oncall"]);
    let ob = &d.obligations;
    assert_eq!((ob.approvals, ob.max_duration_secs), (0, 30 * 60));
    assert!(ob.review);

    let d = simple(
        "bob",
        "plc-7",
        &[("modbus", "write coil 1")],
        AccessPath::Emergency,
    );
    assert_eq!(
        d.reasons,
        ["no policy permits human bob to modbus:write on plc-7 (safety) via path emergency"]
    );

    let d = simple(
        "vera",
        "plc-7",
        &[("modbus", "read coil 1")],
        AccessPath::Emergency,
    );
    denied_by(
        &d,
        "forbid-emergency-non-human",
        "break-glass is for on-call plant staff",
    );
}

#[test]
fn guardrails_forbid_lockout_disabled_and_programming() {
    let d = simple(
        "alice",
        "plc-5",
        &[("modbus", "read coil 1")],
        AccessPath::Emergency,
    );
    denied_by(&d, "forbid-lockout", "the asset is locked out");

    let d = simple(
        "dave",
        "plc-3",
        &[("modbus", "read coil 1 unit 1")],
        AccessPath::Planned,
    );
    denied_by(
        &d,
        "forbid-disabled-identity",
        "the subject or the requester is disabled",
    );

    let d = simple(
        "oscar",
        "plc-3",
        &[("modbus", "programming unit 1")],
        AccessPath::Planned,
    );
    denied_by(
        &d,
        "forbid-programming-except-engineers",
        "programming/diagnostics function codes are reserved",
    );

    let d = simple(
        "alice",
        "plc-7",
        &[("modbus", "programming")],
        AccessPath::Planned,
    );
    allowed_by(&d, &["engineer-programming", "human-write-high-safety"]);
    assert_eq!(
        (d.obligations.approvals, d.obligations.max_duration_secs),
        (2, 4 * H)
    );
    assert!(d.obligations.step_up);

    let d = simple(
        "alice",
        "plc-7",
        &[("modbus", "programming")],
        AccessPath::Emergency,
    );
    denied_by(
        &d,
        "forbid-emergency-programming",
        "controller programming is not possible under break-glass",
    );
}

#[test]
fn several_assets_are_all_decided_and_obligations_combine() {
    let set = default_set().unwrap();
    let inv = plant();
    let write: &[(&str, &str)] = &[("modbus", "write coil 10-20")];
    let read: &[(&str, &str)] = &[("modbus", "read holding 0-9")];
    let d = run(
        &set,
        &inv,
        "vera",
        "vera",
        &[("plc-7", write), ("historian", read)],
        AccessPath::Planned,
        H,
    );
    allowed_by(&d, &["vendor-high-two-approvals", "vendor-one-approval"]);
    assert_eq!(
        (d.obligations.approvals, d.obligations.max_duration_secs),
        (2, 2 * H)
    );

    let d = run(
        &set,
        &inv,
        "bob",
        "bob",
        &[
            ("plc-7", read),
            ("plc-3", &[("modbus", "write coil 1 unit 1")]),
        ],
        AccessPath::Planned,
        H,
    );
    allowed_by(&d, &["human-read", "human-write-low-medium"]);
    assert_eq!(
        (d.obligations.approvals, d.obligations.max_duration_secs),
        (1, 8 * H)
    );

    // One asset denied denies the request, and the reason says which asset.
    let d = run(
        &set,
        &inv,
        "bob",
        "bob",
        &[("plc-7", read), ("plc-5", read)],
        AccessPath::Planned,
        H,
    );
    assert!(!d.allowed);
    assert_eq!(d.determining_policies, ["forbid-lockout"]);
    assert_eq!(d.reasons.len(), 1);
    assert!(d.reasons[0].ends_with("(on plc-5)"), "{:?}", d.reasons);
}

#[test]
fn an_asset_missing_from_the_input_denies() {
    let set = default_set().unwrap();
    let inv = plant();
    let asset = inv.assets.iter().find(|a| a.id == "plc-7").unwrap();
    let items = jitgate_core::scope::parse_rule(
        asset,
        jitgate_core::scope::Protocol::Modbus,
        "read coil 1",
    )
    .unwrap();
    let scope = Scope::new(items).unwrap();
    let bob = inv.identities.iter().find(|i| i.id == "bob").unwrap();
    let d = set.decide(&DecisionInput {
        requester: bob,
        subject: bob,
        orgs: &inv.orgs,
        assets: &[],
        scope: &scope,
        path: AccessPath::Planned,
        duration_secs: H,
    });
    assert!(!d.allowed);
    assert!(
        d.reasons[0].contains("plc-7 is not in the inventory"),
        "{:?}",
        d.reasons
    );
}

#[test]
fn ids_and_names_cannot_inject_policy_syntax() {
    // An identity id full of Cedar syntax is just a string to the policies.
    let set = PolicySet::from_sources(vec![(
        "p.cedar".into(),
        "@id(\"only-bob\")\n@approvals(\"0\")\npermit (principal == Jitgate::Identity::\"bob\", action, resource);".into(),
    )])
    .unwrap();
    let mut inv = plant();
    let mut evil = inv
        .identities
        .iter()
        .find(|i| i.id == "bob")
        .unwrap()
        .clone();
    evil.id = "x\", resource) || (principal == Jitgate::Identity::\"bob".into();
    evil.roles.push("\" || true || \"".into());
    inv.identities.push(evil.clone());
    let read: &[(&str, &str)] = &[("modbus", "read coil 1")];
    let d = run(
        &set,
        &inv,
        &evil.id,
        &evil.id,
        &[("plc-7", read)],
        AccessPath::Planned,
        H,
    );
    assert!(!d.allowed, "{d:?}");
    let d = run(
        &set,
        &inv,
        "bob",
        "bob",
        &[("plc-7", read)],
        AccessPath::Planned,
        H,
    );
    assert!(d.allowed, "{d:?}");
}

#[test]
fn evaluation_errors_deny_and_are_reported() {
    // A permit that matches everything, and one whose arithmetic overflows on a huge
    // duration: Cedar reports an error for the second, and jitgate must then deny.
    let set = PolicySet::from_sources(vec![(
        "p.cedar".into(),
        "@id(\"all\")\npermit (principal, action, resource);\n\n\
         @id(\"overflow\")\npermit (principal, action, resource) when { context.duration_minutes * 1000000000000 > 0 };"
            .into(),
    )])
    .unwrap();
    let inv = plant();
    let read: &[(&str, &str)] = &[("modbus", "read coil 1")];
    let ok = run(
        &set,
        &inv,
        "bob",
        "bob",
        &[("plc-7", read)],
        AccessPath::Planned,
        H,
    );
    assert!(ok.allowed);
    assert_eq!(ok.determining_policies, ["all", "overflow"]);
    let d = run(
        &set,
        &inv,
        "bob",
        "bob",
        &[("plc-7", read)],
        AccessPath::Planned,
        i64::MAX,
    );
    assert!(!d.allowed, "{d:?}");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("evaluation error") && r.contains("overflow")),
        "{:?}",
        d.reasons
    );
}

#[test]
fn conflicting_approver_sites_deny_naming_both_policies() {
    let set = PolicySet::from_sources(vec![(
        "p.cedar".into(),
        "@id(\"a\")\n@approver_site(\"asset\")\npermit (principal, action, resource);\n\n\
         @id(\"b\")\n@approver_site(\"south\")\npermit (principal, action, resource);"
            .into(),
    )])
    .unwrap();
    let read: &[(&str, &str)] = &[("modbus", "read coil 1")];
    let d = run(
        &set,
        &plant(),
        "bob",
        "bob",
        &[("plc-7", read)],
        AccessPath::Planned,
        H,
    );
    assert!(!d.allowed);
    assert!(d.reasons[0].contains("`a` and `b`"), "{:?}", d.reasons);
}

#[test]
fn permits_without_annotations_get_the_secure_defaults() {
    let set = PolicySet::from_sources(vec![(
        "p.cedar".into(),
        "@id(\"plain\")\npermit (principal, action, resource);".into(),
    )])
    .unwrap();
    let read: &[(&str, &str)] = &[("modbus", "read coil 1")];
    let d = run(
        &set,
        &plant(),
        "bob",
        "bob",
        &[("plc-7", read)],
        AccessPath::Planned,
        H,
    );
    assert_eq!(d.obligations, jitgate_core::Obligations::default());
}
