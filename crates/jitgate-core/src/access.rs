//! Who may see and act on what through the API — one model, tested as a table below.
//!
//! The server loads the facts about a request ([`RequestFacts`]) and asks here; no handler
//! carries a rule of its own. It is plain Rust rather than Cedar: the rules are few, fixed
//! by the product (not by each plant), and evaluated on every list row, where a Cedar
//! evaluation per row would cost more than the rest of the request. Plants shape *access to
//! assets* in Cedar; *access to jitgate's own records* is this table.
//!
//! | caller                                   | sees a request / grant | revokes | device addresses |
//! |------------------------------------------|------------------------|---------|------------------|
//! | admin, security, auditor                 | all                    | admin, security | yes      |
//! | its requester or subject                 | yes                    | yes     | —                |
//! | an owner of its workload subject         | yes                    | no      | —                |
//! | one of its approvers                     | yes                    | yes     | —                |
//! | plant staff (human) at an asset's site   | yes                    | no      | yes (humans)     |
//! | eligible approver elsewhere, while it waits for approvers | yes  | no      | —                |
//! | a vendor of the same org as a party      | yes                    | no      | no               |
//! | anyone else, workloads (other than as a party) | no               | no      | no               |
//!
//! A request that needed no approver (break-glass, auto-approved) or was denied outright is
//! never visible from another site through approver eligibility.

use crate::inventory::{Identity, IdentityKind};
use crate::lifecycle::RequestState;

/// Roles that see every record (they are asked about everything).
pub const SEE_ALL_ROLES: &[&str] = &["admin", "security", "auditor"];

/// The facts about one request that visibility depends on, loaded by the server.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    pub requester: &'a str,
    pub subject: &'a str,
    pub state: Option<RequestState>,
    /// Approvals the request needs (0: break-glass or auto-approved).
    pub approvals_needed: u32,
    /// Owners of the subject, if it is a workload.
    pub subject_owners: &'a [String],
    /// Orgs of the requester and subject (vendors see their own org's requests).
    pub party_orgs: &'a [String],
    /// Everyone who recorded an approval or denial on it.
    pub approvers: &'a [String],
    /// Sites of its assets.
    pub asset_sites: &'a [String],
    /// Whether the caller is an eligible approver of it (the lifecycle's rule).
    pub caller_eligible: bool,
}

pub fn sees_everything(caller: &Identity) -> bool {
    SEE_ALL_ROLES.iter().any(|r| caller.has_role(r))
}

/// May `caller` see this request (and its grant, sessions, timeline and evidence)?
pub fn may_see_request(caller: &Identity, f: &RequestFacts<'_>) -> bool {
    if sees_everything(caller) || caller.id == f.requester || caller.id == f.subject {
        return true;
    }
    match caller.kind {
        IdentityKind::Workload => false,
        IdentityKind::Vendor => caller
            .org
            .as_ref()
            .is_some_and(|org| f.party_orgs.iter().any(|o| o == org)),
        IdentityKind::Human => {
            f.subject_owners.iter().any(|o| o == &caller.id)
                || f.approvers.iter().any(|a| a == &caller.id)
                || f.asset_sites.iter().any(|s| caller.at_site(s))
                || (f.state == Some(RequestState::Pending)
                    && f.approvals_needed > 0
                    && f.caller_eligible)
        }
    }
}

/// May `caller` revoke the grant of this request?
pub fn may_revoke(caller: &Identity, f: &RequestFacts<'_>) -> bool {
    caller.has_role("admin")
        || caller.has_role("security")
        || caller.id == f.subject
        || caller.id == f.requester
        || f.approvers.iter().any(|a| a == &caller.id)
}

/// May `caller` see assets' device addresses (IP:port of PLCs, RTUs, ...)? Plant staff and
/// security need them; vendors and workloads reach devices only through a gateway and get
/// the address in their grant's credential, never from the inventory.
pub fn may_see_device_addresses(caller: &Identity) -> bool {
    sees_everything(caller) || caller.kind == IdentityKind::Human
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::IdentityStatus;

    fn who(
        id: &str,
        kind: IdentityKind,
        roles: &[&str],
        sites: &[&str],
        org: Option<&str>,
    ) -> Identity {
        Identity {
            id: id.into(),
            kind,
            name: String::new(),
            org: org.map(Into::into),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            groups: vec![],
            sites: sites.iter().map(|s| s.to_string()).collect(),
            owners: vec![],
            status: IdentityStatus::Active,
        }
    }

    #[test]
    fn visibility_table() {
        use IdentityKind::*;
        let north = vec!["north".to_string()];
        let owners = vec!["alice".to_string()];
        let approvers = vec!["bob".to_string()];
        let orgs = vec!["acme".to_string()];
        let base = RequestFacts {
            requester: "vera",
            subject: "vera",
            state: Some(RequestState::Active),
            approvals_needed: 1,
            subject_owners: &owners,
            party_orgs: &orgs,
            approvers: &approvers,
            asset_sites: &north,
            caller_eligible: true,
        };
        let break_glass = RequestFacts {
            approvals_needed: 0,
            approvers: &[],
            subject_owners: &[],
            ..base.clone()
        };
        let pending = RequestFacts {
            state: Some(RequestState::Pending),
            ..base.clone()
        };
        // (caller, facts, sees, revokes)
        let rows: Vec<(Identity, &RequestFacts, bool, bool)> = vec![
            (
                who("sam", Human, &["security"], &[], None),
                &base,
                true,
                true,
            ),
            (
                who("audrey", Human, &["auditor"], &[], None),
                &base,
                true,
                false,
            ),
            (
                who("vera", Vendor, &[], &[], Some("acme")),
                &base,
                true,
                true,
            ),
            (
                who("alice", Human, &["engineer"], &["south"], None),
                &base,
                true,
                false,
            ),
            (
                who("bob", Human, &["engineer"], &["south"], None),
                &base,
                true,
                true,
            ),
            (
                who("dave", Human, &["engineer"], &["north"], None),
                &base,
                true,
                false,
            ),
            (
                who("carol", Human, &["engineer"], &["south"], None),
                &base,
                false,
                false,
            ),
            (
                who("carol", Human, &["engineer"], &["south"], None),
                &pending,
                true,
                false,
            ),
            (
                who("carol", Human, &["engineer"], &["south"], None),
                &break_glass,
                false,
                false,
            ),
            (
                who("victor", Vendor, &[], &[], Some("oldco")),
                &base,
                false,
                false,
            ),
            (
                who("vic2", Vendor, &[], &[], Some("acme")),
                &base,
                true,
                false,
            ),
            (
                who("svc", Workload, &[], &["north"], None),
                &base,
                false,
                false,
            ),
            (
                who("gw", Workload, &["gateway"], &["north"], None),
                &break_glass,
                false,
                false,
            ),
        ];
        for (caller, facts, sees, revokes) in rows {
            assert_eq!(may_see_request(&caller, facts), sees, "{} sees", caller.id);
            assert_eq!(may_revoke(&caller, facts), revokes, "{} revokes", caller.id);
        }
    }

    #[test]
    fn device_addresses_for_plant_people_only() {
        use IdentityKind::*;
        assert!(may_see_device_addresses(&who(
            "dave",
            Human,
            &["engineer"],
            &["north"],
            None
        )));
        assert!(!may_see_device_addresses(&who(
            "vera",
            Vendor,
            &[],
            &[],
            Some("acme")
        )));
        assert!(!may_see_device_addresses(&who(
            "svc",
            Workload,
            &[],
            &[],
            None
        )));
    }
}
