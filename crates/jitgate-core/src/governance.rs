//! The rules that make an approval *bind* the access it approves, whoever tries to get round
//! them and at whatever moment of the lifecycle:
//!
//! - [`conflict_of_interest`] — who can never decide on a request: its requester, its subject,
//!   an owner of a workload requester or subject, whoever minted the API key that filed it.
//!   Computed from ids only, so an approval recorded earlier is re-checked against today's
//!   owners ([`counting_approvers`]).
//! - [`may_hold_access`] — identities that never file requests nor receive grants (gateways).
//! - [`still_allowed`] — does a request still stand *now*: requester and subject active, the
//!   subject's org not suspended, every asset present and not locked out, the filing API key
//!   still valid, the current policy set still allowing it, its approvals still counting.
//!   Called at each approval, at activation, and for every open request or active grant when
//!   the context changes (inventory, status, policy reload). These hold whatever the Cedar
//!   policies say: a plant's edited policy set cannot re-open a locked-out asset.
//! - [`check_free_text`] — free text shown to approvers carries no control characters.

use crate::decision::Decision;
use crate::inventory::{Asset, Identity, IdentityKind, Org, OrgStatus};
use crate::lifecycle::{Approval, ApprovalVerdict, Request};
use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// The role of gateway identities: they enforce access, they never hold it.
pub const GATEWAY_ROLE: &str = "gateway";

/// How a request was filed when its requester authenticated with an API key: the key's id
/// and who minted it. The minter stands behind the workload's request, so they never
/// approve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FiledWithKey {
    pub key_id: String,
    /// `None` for keys minted before minters were recorded (then nobody is excluded by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_by: Option<String>,
}

/// Why an identity may not decide on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Conflict {
    /// Filed the request.
    Requester,
    /// Would use the access.
    Subject,
    /// Owns the workload that filed the request.
    OwnsRequester,
    /// Owns the workload that would use the access.
    OwnsSubject,
    /// Minted the API key the request was filed with.
    MintedFilingKey,
    /// Is the owner of the standing exception requested: the owner answers for it and
    /// re-validates it alone afterwards, so granting it takes someone else.
    OwnsException,
}

impl Conflict {
    pub fn describe(self) -> &'static str {
        match self {
            Conflict::Requester => "filed the request",
            Conflict::Subject => {
                "is the subject of the request; nobody approves access for themself"
            }
            Conflict::OwnsRequester => "owns the workload that filed the request",
            Conflict::OwnsSubject => "owns the workload that would use the access",
            Conflict::MintedFilingKey => "minted the API key the request was filed with",
            Conflict::OwnsException => {
                "is the owner of the standing exception requested; the owner answers for it and re-validates it, so someone else grants it"
            }
        }
    }
}

/// The identities a request involves, as they are now (owners may have changed since filing).
#[derive(Debug, Clone, Copy)]
pub struct Parties<'a> {
    pub requester: &'a Identity,
    pub subject: &'a Identity,
    /// The owner named in the terms, when the request is a standing exception.
    pub exception_owner: Option<&'a str>,
}

/// Whether `approver` is conflicted on `request`, and why (the first reason found).
pub fn conflict_of_interest(
    approver: &str,
    request: &Request,
    parties: &Parties<'_>,
) -> Option<Conflict> {
    let owns =
        |i: &Identity| i.kind == IdentityKind::Workload && i.owners.iter().any(|o| o == approver);
    // The subject first: when one person is both, "would use the access" is the reason
    // that matters to them.
    if approver == request.subject {
        Some(Conflict::Subject)
    } else if approver == request.requester {
        Some(Conflict::Requester)
    } else if owns(parties.requester) {
        Some(Conflict::OwnsRequester)
    } else if owns(parties.subject) {
        Some(Conflict::OwnsSubject)
    } else if request
        .filed_with_key
        .as_ref()
        .and_then(|k| k.minted_by.as_deref())
        == Some(approver)
    {
        Some(Conflict::MintedFilingKey)
    } else if parties.exception_owner == Some(approver) {
        Some(Conflict::OwnsException)
    } else {
        None
    }
}

/// The distinct approvers whose approvals count today: approvals (not denials, not withdrawn)
/// by identities not conflicted on the request under its current parties.
pub fn counting_approvers<'a>(
    request: &Request,
    approvals: &'a [Approval],
    parties: &Parties<'_>,
) -> std::collections::BTreeSet<&'a str> {
    approvals
        .iter()
        .filter(|a| a.verdict == ApprovalVerdict::Approve)
        .filter(|a| conflict_of_interest(&a.approver, request, parties).is_none())
        .map(|a| a.approver.as_str())
        .collect()
}

/// Gateways enforce access; an identity with the gateway role never files a request nor
/// receives a grant (its API key sits on a machine in the plant network).
pub fn may_hold_access(identity: &Identity) -> Result<(), CoreError> {
    if identity.has_role(GATEWAY_ROLE) {
        return Err(CoreError::Forbidden(format!(
            "{} has the `{GATEWAY_ROLE}` role: gateways enforce access and never request or hold it",
            identity.id
        )));
    }
    Ok(())
}

/// Everything a request's standing depends on, loaded now by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    /// `None` when the identity is no longer in the inventory.
    pub requester: Option<&'a Identity>,
    pub subject: Option<&'a Identity>,
    pub orgs: &'a [Org],
    /// The request's assets as the inventory has them now (missing ones are absent).
    pub assets: &'a [Asset],
    /// The current policy set's decision on the request, taken now.
    pub decision: &'a Decision,
    /// The recorded approvals of the request.
    pub approvals: &'a [Approval],
    /// For a request filed with an API key: whether that key is still usable (not revoked,
    /// not expired, its minter active). `None` when not filed with a key.
    pub filing_key_usable: Option<bool>,
    /// The owner in the terms of a standing exception (`None` for other requests).
    pub exception_owner: Option<&'a str>,
}

/// Why a request or grant no longer stands. Each is a context change; the text goes into the
/// request's state reason and the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hold {
    IdentityRemoved {
        identity: String,
    },
    IdentityDisabled {
        identity: String,
    },
    OrgSuspended {
        org: String,
    },
    AssetRemoved {
        asset: String,
    },
    AssetLockedOut {
        asset: String,
    },
    FilingKeyUnusable {
        key_id: String,
    },
    PolicyDenies {
        policy_set_hash: String,
        why: String,
    },
    DurationAboveMaximum {
        requested_secs: i64,
        max_secs: i64,
    },
    ApprovalsNoLongerMet {
        counting: u32,
        required: u32,
    },
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::IdentityRemoved { identity } => write!(f, "identity {identity} is no longer in the inventory"),
            Hold::IdentityDisabled { identity } => write!(f, "identity {identity} disabled"),
            Hold::OrgSuspended { org } => write!(f, "org {org} suspended"),
            Hold::AssetRemoved { asset } => write!(f, "asset {asset} is no longer in the inventory"),
            Hold::AssetLockedOut { asset } => write!(f, "asset {asset} locked out"),
            Hold::FilingKeyUnusable { key_id } => {
                write!(f, "API key {key_id} that filed it was revoked, expired or its minter disabled")
            }
            Hold::PolicyDenies { policy_set_hash, why } => {
                write!(f, "policy set {policy_set_hash} no longer allows it ({why})")
            }
            Hold::DurationAboveMaximum { requested_secs, max_secs } => write!(
                f,
                "policy now allows at most {max_secs}s; {requested_secs}s were requested"
            ),
            Hold::ApprovalsNoLongerMet { counting, required } => write!(
                f,
                "only {counting} of the {required} approval(s) it needs still count (an approver is now conflicted)"
            ),
        }
    }
}

/// Does `request` still stand under the current context? `check_approvals` is set where the
/// request is past its approvals (approved, active): their count is checked again.
pub fn still_allowed(
    request: &Request,
    now: &Standing<'_>,
    check_approvals: bool,
) -> Result<(), Hold> {
    let mut parties = Vec::new();
    for (id, who) in [
        (&request.requester, now.requester),
        (&request.subject, now.subject),
    ] {
        let Some(who) = who else {
            return Err(Hold::IdentityRemoved {
                identity: id.clone(),
            });
        };
        if !who.is_active() {
            return Err(Hold::IdentityDisabled {
                identity: id.clone(),
            });
        }
        parties.push(who);
    }
    for who in &parties {
        if let Some(org) = &who.org {
            let active = now
                .orgs
                .iter()
                .any(|o| &o.id == org && o.status == OrgStatus::Active);
            if !active {
                return Err(Hold::OrgSuspended { org: org.clone() });
            }
        }
    }
    for id in request.scope.assets() {
        match now.assets.iter().find(|a| a.id == id) {
            None => return Err(Hold::AssetRemoved { asset: id }),
            Some(a) if a.lockout => return Err(Hold::AssetLockedOut { asset: id }),
            Some(_) => {}
        }
    }
    if let (Some(k), Some(false)) = (&request.filed_with_key, now.filing_key_usable) {
        return Err(Hold::FilingKeyUnusable {
            key_id: k.key_id.clone(),
        });
    }
    if !now.decision.allowed {
        let why = if now.decision.reasons.is_empty() {
            now.decision.determining_policies.join(", ")
        } else {
            now.decision.reasons.join("; ")
        };
        return Err(Hold::PolicyDenies {
            policy_set_hash: now.decision.policy_set_hash.clone(),
            why,
        });
    }
    if request.duration_secs > now.decision.obligations.max_duration_secs {
        return Err(Hold::DurationAboveMaximum {
            requested_secs: request.duration_secs,
            max_secs: now.decision.obligations.max_duration_secs,
        });
    }
    if check_approvals && request.path != crate::AccessPath::Emergency {
        let (Some(requester), Some(subject)) = (now.requester, now.subject) else {
            return Ok(());
        };
        let parties = Parties {
            requester,
            subject,
            exception_owner: now.exception_owner,
        };
        let counting = counting_approvers(request, now.approvals, &parties).len() as u32;
        // The obligations in force are those recorded at filing; a stricter policy since
        // then is a re-decision, and the stricter count applies.
        let required = request
            .decision
            .obligations
            .approvals
            .max(now.decision.obligations.approvals);
        if counting < required {
            return Err(Hold::ApprovalsNoLongerMet { counting, required });
        }
    }
    Ok(())
}

/// An inventory change must not leave the server without an active administrator (a human
/// with the `admin` role) when it had one: nobody could then administer it. `before` and
/// `after` are every identity before and after the change.
pub fn keeps_an_admin(before: &[Identity], after: &[Identity]) -> Result<(), CoreError> {
    let admins = |all: &[Identity]| {
        all.iter()
            .filter(|i| i.kind == IdentityKind::Human && i.is_active() && i.has_role("admin"))
            .count()
    };
    if admins(before) > 0 && admins(after) == 0 {
        return Err(CoreError::LastAdministrator);
    }
    Ok(())
}

/// Longest free-text field accepted (reason, reference, comment).
pub const MAX_TEXT: usize = 2000;

/// Refuse control characters in free text that approvers and auditors will read: C0 controls
/// (newline and tab allowed where `multiline`), DEL, C1 controls, and the bidirectional
/// overrides that reorder what a terminal or browser shows (a request's reason must not be
/// able to print a fake scope line or hide the real one).
pub fn check_free_text(field: &str, text: &str, multiline: bool) -> Result<(), CoreError> {
    if text.len() > MAX_TEXT {
        return Err(CoreError::TextTooLong {
            field: field.to_string(),
            len: text.len(),
            max: MAX_TEXT,
        });
    }
    let bad = text.chars().find(|&c| {
        let allowed_ws = multiline && (c == '\n' || c == '\t');
        (c.is_control() && !allowed_ws)
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
    });
    match bad {
        Some(c) => Err(CoreError::ControlCharacter {
            field: field.to_string(),
            code_point: format!("U+{:04X}", c as u32),
        }),
        None => Ok(()),
    }
}

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in bytes (argon2 hashes it all; a cap keeps that bounded).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The password policy, one pure rule every place that sets a password calls: at least
/// [`MIN_PASSWORD_CHARS`] characters, at most [`MAX_PASSWORD_BYTES`] bytes, no control
/// characters (NUL included), and not one character repeated.
pub fn check_password(password: &str) -> Result<(), CoreError> {
    let weak = |why: String| Err(CoreError::WeakPassword(why));
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return weak(format!(
            "passwords need at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return weak(format!(
            "passwords are limited to {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    if let Some(c) = password.chars().find(|c| c.is_control()) {
        return weak(format!(
            "passwords may not carry control characters (found U+{:04X})",
            c as u32
        ));
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return weak("a password of one repeated character is refused; choose another".into());
    }
    Ok(())
}

/// Refuse a request whose scope is larger than `max_items` rules in all (each protocol rule
/// of each entry counts one; an entry without rules counts one).
pub fn check_scope_size(entries: usize, rules: usize, max_items: usize) -> Result<(), CoreError> {
    let items = rules.max(entries);
    if items > max_items {
        return Err(CoreError::TooManyScopeItems(format!(
            "the scope has {items} items; a request may carry at most {max_items} (split the work into several requests)"
        )));
    }
    Ok(())
}

/// Refuse a new request when its requester already has `open` requests (pending, approved,
/// active) and the limit is `max`.
pub fn check_open_requests(requester: &str, open: usize, max: usize) -> Result<(), CoreError> {
    if open >= max {
        return Err(CoreError::TooManyOpenRequests {
            requester: requester.to_string(),
            open,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn password_policy() {
        use super::check_password;
        assert!(check_password("short").is_err());
        assert!(check_password(&"\0".repeat(16)).is_err());
        assert!(check_password(&"a".repeat(16)).is_err());
        assert!(check_password("correct horse\u{7}battery").is_err());
        assert!(check_password(&"ab".repeat(600)).is_err());
        assert!(check_password("test-password-of-alice").is_ok());
    }

    #[test]
    fn scope_and_open_request_limits() {
        assert!(super::check_scope_size(1, 64, 64).is_ok());
        assert!(super::check_scope_size(1, 65, 64).is_err());
        assert!(super::check_scope_size(70, 0, 64).is_err());
        assert!(super::check_open_requests("a", 19, 20).is_ok());
        assert!(super::check_open_requests("a", 20, 20).is_err());
    }

    use super::*;

    #[test]
    fn free_text_refuses_escapes_and_bidi_but_keeps_newlines_where_allowed() {
        assert!(check_free_text("reason", "check valves\nWO-1", true).is_ok());
        assert!(check_free_text("reference", "WO-1\n", false).is_err());
        for evil in [
            "a\u{1b}[2Jb",
            "a\rb",
            "x\u{7f}",
            "\u{9b}31m",
            "a\u{202e}b",
            "a\u{2066}",
        ] {
            let err = check_free_text("reason", evil, true).unwrap_err();
            assert_eq!(err.code(), "control_character", "{evil:?}");
        }
        assert!(check_free_text("reason", "Ventil prüfen — ok ✓", true).is_ok());
        assert!(check_free_text("reason", &"x".repeat(MAX_TEXT + 1), true).is_err());
    }
}
