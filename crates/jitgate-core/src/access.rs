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
//! Post-session reviews: never by anyone conflicted on the request (requester, subject, an
//! owner of a workload party, the filing key's minter); then admins, security and its
//! approvers. API keys: minted, listed and revoked by admins and the workload's owners; the
//! minter sees and revokes its own; security also revokes; auditors see.
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

/// Who may complete a grant's post-session review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAuthority {
    Allowed,
    /// Never the requester, the subject, an owner of a workload party, the key's minter.
    Conflicted(crate::governance::Conflict),
    /// Reviews are for security staff, admins and the request's approvers.
    NotAuthorized,
}

/// May `caller` complete the review of `request`'s grant? `approved_it`: the caller recorded
/// an approval of the request.
pub fn may_complete_review(
    caller: &Identity,
    request: &crate::lifecycle::Request,
    parties: &crate::governance::Parties<'_>,
    approved_it: bool,
) -> ReviewAuthority {
    if let Some(c) = crate::governance::conflict_of_interest(&caller.id, request, parties) {
        return ReviewAuthority::Conflicted(c);
    }
    if caller.has_role("admin") || caller.has_role("security") || approved_it {
        ReviewAuthority::Allowed
    } else {
        ReviewAuthority::NotAuthorized
    }
}

/// May `caller` mint keys for `workload` (and list and revoke them)? Admins and its owners.
pub fn may_manage_workload_keys(caller: &Identity, workload: &Identity) -> bool {
    caller.has_role("admin") || workload.owners.iter().any(|o| o == &caller.id)
}

/// May `caller` see an API key (never its secret)? Who sees everything, its minter, and
/// whoever manages its workload.
pub fn may_see_api_key(
    caller: &Identity,
    workload: Option<&Identity>,
    minted_by: Option<&str>,
) -> bool {
    sees_everything(caller)
        || minted_by == Some(caller.id.as_str())
        || workload.is_some_and(|w| may_manage_workload_keys(caller, w))
}

/// May `caller` revoke an API key? Security staff too (a leaked key is an incident).
pub fn may_revoke_api_key(
    caller: &Identity,
    workload: Option<&Identity>,
    minted_by: Option<&str>,
) -> bool {
    caller.has_role("admin")
        || caller.has_role("security")
        || minted_by == Some(caller.id.as_str())
        || workload.is_some_and(|w| may_manage_workload_keys(caller, w))
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
    fn api_key_table() {
        use IdentityKind::*;
        let mut svc = who("svc", Workload, &[], &[], None);
        svc.owners = vec!["alice".into()];
        // (caller, sees, revokes, mints)
        let rows = [
            (
                who("alice", Human, &["engineer"], &[], None),
                true,
                true,
                true,
            ),
            (
                who("bob", Human, &["engineer"], &[], None),
                true,
                true,
                false,
            ), // minted it
            (who("sam", Human, &["admin"], &[], None), true, true, true),
            (
                who("sec", Human, &["security"], &[], None),
                true,
                true,
                false,
            ),
            (
                who("aud", Human, &["auditor"], &[], None),
                true,
                false,
                false,
            ),
            (
                who("carol", Human, &["engineer"], &[], None),
                false,
                false,
                false,
            ),
            (who("svc", Workload, &[], &[], None), false, false, false),
        ];
        for (caller, sees, revokes, mints) in rows {
            assert_eq!(
                may_see_api_key(&caller, Some(&svc), Some("bob")),
                sees,
                "{} sees",
                caller.id
            );
            assert_eq!(
                may_revoke_api_key(&caller, Some(&svc), Some("bob")),
                revokes,
                "{} revokes",
                caller.id
            );
            assert_eq!(
                may_manage_workload_keys(&caller, &svc),
                mints,
                "{} mints",
                caller.id
            );
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
