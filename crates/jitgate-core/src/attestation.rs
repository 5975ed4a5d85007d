//! Post-session attestation: once a grant has ended, its subject says what was done — the
//! task done or not, the changes made, free text. It is the subject's own account, set
//! beside what the gateway recorded, so only the subject gives it (for a workload subject,
//! one of its owners: a script cannot say whether its task was done, the person responsible
//! for it can). It is given once, after the session, and never changed: the
//! `attestation.recorded` event is the record.
//!
//! A policy can require it (`@attestation("required")`, [`crate::Obligations::attestation`]);
//! a required attestation not given within the grace period after the grant ended is
//! *missing* ([`is_missing`]) and is listed in the next review campaign.

use crate::event::{millis, EventKind};
use crate::governance::check_free_text;
use crate::inventory::{Identity, IdentityKind};
use crate::lifecycle::{Grant, GrantState};
use crate::payload::Payload;
use crate::{CoreError, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most changes one attestation may list.
pub const MAX_CHANGES: usize = 50;

/// What the subject attests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationInput {
    /// Whether the task the access was asked for is done.
    pub task_done: bool,
    /// The changes made, one per entry (e.g. "setpoint HR 40 from 80 to 75"); empty when
    /// nothing was changed.
    #[serde(default)]
    pub changes: Vec<String>,
    /// Anything else the reviewer should know.
    #[serde(default)]
    pub note: String,
}

impl AttestationInput {
    /// Trimmed, checked: no empty change, no control characters, bounded sizes.
    pub fn checked(mut self) -> Result<Self, CoreError> {
        if self.changes.len() > MAX_CHANGES {
            return Err(CoreError::InvalidRequest(format!(
                "{} changes listed; an attestation lists at most {MAX_CHANGES} (summarise the rest in the note)",
                self.changes.len()
            )));
        }
        for c in &mut self.changes {
            *c = c.trim().to_string();
            if c.is_empty() {
                return Err(CoreError::InvalidRequest(
                    "an empty change was listed; say what was changed, or list no change".into(),
                ));
            }
            check_free_text("change", c, false)?;
        }
        self.note = self.note.trim().to_string();
        check_free_text("note", &self.note, true)?;
        Ok(self)
    }
}

/// Why someone may attest for a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttestedAs {
    /// The grant's subject.
    Subject,
    /// An owner of the grant's workload subject.
    OwnerOfWorkload,
}

/// May `caller` attest for `grant` now? `subject` is the grant's subject as the inventory
/// has it now (`None` when gone: then only the subject id itself may attest);
/// `already_attested` whether an attestation of this grant is recorded.
pub fn may_attest(
    caller: &Identity,
    grant: &Grant,
    subject: Option<&Identity>,
    already_attested: bool,
) -> Result<AttestedAs, CoreError> {
    let as_ = if caller.id == grant.subject {
        AttestedAs::Subject
    } else if subject.is_some_and(|s| {
        s.kind == IdentityKind::Workload && s.owners.iter().any(|o| o == &caller.id)
    }) {
        AttestedAs::OwnerOfWorkload
    } else {
        return Err(CoreError::Forbidden(format!(
            "only the subject of grant {} ({}) attests what was done with it (for a workload, one of its owners)",
            grant.id, grant.subject
        )));
    };
    if grant.state == GrantState::Active {
        return Err(CoreError::WrongState {
            what: format!("grant {}", grant.id),
            state: "active".into(),
            needed: "ended (attest after the session: `jitgate done` ends it)".into(),
        });
    }
    if already_attested {
        return Err(CoreError::AlreadyAttested {
            grant: grant.id.clone(),
        });
    }
    Ok(as_)
}

/// Is a required attestation of `grant` missing at `now`? Required, the grant ended (the
/// session is over, whatever its teardown), none given, and `grace_secs` have passed since
/// it ended.
pub fn is_missing(
    required: bool,
    grant: &Grant,
    attested: bool,
    grace_secs: i64,
    now: Timestamp,
) -> bool {
    required
        && !attested
        && grant.state != GrantState::Active
        && grant
            .ended_at
            .is_some_and(|end| end + chrono::Duration::seconds(grace_secs) <= now)
}

/// `attestation.recorded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationRecorded {
    /// The grant's subject (the actor is who attested).
    pub subject: String,
    pub attested_as: AttestedAs,
    pub task_done: bool,
    pub changes: Vec<String>,
    pub note: String,
    /// Whether the policy required it.
    pub required: bool,
    /// When the grant ended.
    #[serde(with = "millis")]
    pub ended_at: Timestamp,
}
impl Payload for AttestationRecorded {
    const KIND: EventKind = EventKind::AttestationRecorded;
}
