//! The first sign-in of a new deployment (`jitgate bootstrap`): on a database where nobody
//! can sign in yet, one administrator named in the inventory gets a password. The rule is
//! here so it cannot drift between callers: bootstrap is a one-time door, and a door that
//! stays open is a standing credential anybody with the server's configuration could use.

use crate::inventory::{Identity, IdentityKind};

/// Why a bootstrap is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapRefusal {
    #[error("identity {0} is not in the inventory; load the inventory (`inventory = \"...\"` in the server configuration) and name an administrator from it")]
    UnknownIdentity(String),
    #[error("{0} is a workload; bootstrap names a person with the `admin` role")]
    NotAPerson(String),
    #[error("{0} does not have the `admin` role; name an administrator from the inventory")]
    NotAnAdmin(String),
    #[error("{0} is not active in the inventory")]
    Inactive(String),
    #[error("already bootstrapped: administrator {0} can sign in; an administrator sets passwords with `jitgate identities set-password`")]
    AlreadyDone(String),
}

/// May `candidate` (looked up as `id`) receive the first password, when `admins_who_can_sign_in`
/// are the administrators that already have one?
pub fn check(
    id: &str,
    candidate: Option<&Identity>,
    admins_who_can_sign_in: &[String],
) -> Result<(), BootstrapRefusal> {
    if let Some(admin) = admins_who_can_sign_in.first() {
        return Err(BootstrapRefusal::AlreadyDone(admin.clone()));
    }
    let who = candidate.ok_or_else(|| BootstrapRefusal::UnknownIdentity(id.to_string()))?;
    if who.kind == IdentityKind::Workload {
        return Err(BootstrapRefusal::NotAPerson(id.to_string()));
    }
    if !who.has_role("admin") {
        return Err(BootstrapRefusal::NotAnAdmin(id.to_string()));
    }
    if !who.is_active() {
        return Err(BootstrapRefusal::Inactive(id.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::IdentityStatus;

    fn person(id: &str, roles: &[&str]) -> Identity {
        Identity {
            id: id.into(),
            kind: IdentityKind::Human,
            name: String::new(),
            org: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            groups: vec![],
            sites: vec![],
            owners: vec![],
            status: IdentityStatus::Active,
        }
    }

    #[test]
    fn only_an_active_admin_person_and_only_once() {
        let sam = person("sam", &["security", "admin"]);
        assert_eq!(check("sam", Some(&sam), &[]), Ok(()));
        assert_eq!(
            check("sam", Some(&sam), &["ada".into()]),
            Err(BootstrapRefusal::AlreadyDone("ada".into()))
        );
        assert_eq!(
            check("bob", None, &[]),
            Err(BootstrapRefusal::UnknownIdentity("bob".into()))
        );
        let alice = person("alice", &["engineer"]);
        assert_eq!(
            check("alice", Some(&alice), &[]),
            Err(BootstrapRefusal::NotAnAdmin("alice".into()))
        );
        let mut svc = person("svc", &["admin"]);
        svc.kind = IdentityKind::Workload;
        assert_eq!(
            check("svc", Some(&svc), &[]),
            Err(BootstrapRefusal::NotAPerson("svc".into()))
        );
        let mut gone = person("gone", &["admin"]);
        gone.status = IdentityStatus::Disabled;
        assert_eq!(
            check("gone", Some(&gone), &[]),
            Err(BootstrapRefusal::Inactive("gone".into()))
        );
    }
}
