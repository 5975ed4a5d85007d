//! The standing-privilege inventory: everything that grants access outside a just-in-time
//! grant, in one list, each with its exposure in the period (hours standing, since when,
//! last use):
//!
//! - legacy assets, whose local accounts jitgate cannot revoke (teardown only `partial`);
//! - SSH assets the gateway logs in to with a vaulted key (a standing key on the asset);
//! - API keys without an expiry;
//! - identities holding a standing means of access that did not use it in the period;
//! - standing exceptions (the register's entries, passed in as [`StandingExceptionInput`]);
//! - JIT access that became standing (the coverage and back-to-back findings).
//!
//! The server gathers the inputs (inventory, API keys, exceptions); the log read gives the
//! use ([`UsageTracker`]: last session per asset and subject, partial teardowns, when an
//! asset first appeared in the inventory) — state bounded by the assets and identities.

use super::coverage::StandingJit;
use super::{Ctx, EvidenceRefs, FindingKind};
use crate::event::Event;
use crate::inventory::{Asset, Enforcement, SshTargetAuth};
use crate::server_payload::{CheckKind, InventoryChanged, TeardownCheck};
use crate::teardown::CheckOutcome;
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

/// What kind of standing access an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StandingKind {
    /// A legacy asset keeps local accounts jitgate cannot revoke.
    LegacyLocalAccounts,
    /// The gateway logs in to the asset's SSH server with a key kept in its vault: the key
    /// stays authorized on the asset between grants.
    VaultedGatewayKey,
    /// An API key that never expires.
    ApiKeyWithoutExpiry,
    /// An identity holds a standing means of access (an API key, an exception) and did not
    /// use it in the period.
    UnusedAccess,
    /// An entry of the exceptions register.
    StandingException,
    /// Grants on one asset that cover most of the period, or are renewed back to back.
    JitBecameStanding,
}

impl StandingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StandingKind::LegacyLocalAccounts => "legacy_local_accounts",
            StandingKind::VaultedGatewayKey => "vaulted_gateway_key",
            StandingKind::ApiKeyWithoutExpiry => "api_key_without_expiry",
            StandingKind::UnusedAccess => "unused_access",
            StandingKind::StandingException => "standing_exception",
            StandingKind::JitBecameStanding => "jit_became_standing",
        }
    }
}

/// One entry of the standing-privilege inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StandingItem {
    /// Stable: kind and what it is about (the key lists are paged by).
    pub id: String,
    pub kind: StandingKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Hours of the period during which the access stood (two decimals).
    pub exposure_hours: f64,
    /// Since when it stands, where known.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
    /// Its last use seen in the log (up to the end of the period).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used: Option<Timestamp>,
    /// One line for a person: what stands and what to do about it.
    pub detail: String,
    /// Events that support it (partial teardowns, the grants).
    pub evidence: EvidenceRefs,
}

/// An entry of the exceptions register, as the inventory needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingExceptionInput {
    pub id: String,
    pub subject: String,
    pub assets: Vec<String>,
    pub owner: String,
    /// When it started to stand (its approval), where known.
    pub since: Option<Timestamp>,
    pub expires_at: Timestamp,
    pub revalidation_due: Timestamp,
    pub last_used: Option<Timestamp>,
}

/// An API key, as the inventory needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyInput {
    pub id: String,
    pub identity: String,
    pub name: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked: bool,
}

/// What the server gathers besides the log.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandingInputs<'a> {
    pub assets: &'a [Asset],
    pub api_keys: &'a [ApiKeyInput],
    pub exceptions: &'a [StandingExceptionInput],
}

/// Use of assets and identities seen while reading the log.
#[derive(Debug, Default)]
pub(crate) struct UsageTracker {
    /// asset → last `session.started` on it.
    asset_last: HashMap<String, Timestamp>,
    /// identity → last time it acted (filed, approved, had a session).
    identity_last: HashMap<String, Timestamp>,
    /// identity → it acted inside the period.
    active_in_period: HashMap<String, bool>,
    /// asset → `partial` downstream teardown checks in the period.
    partial: HashMap<String, EvidenceRefs>,
    /// asset → the first `inventory.changed` naming it.
    first_listed: HashMap<String, Timestamp>,
}

impl UsageTracker {
    pub fn acted(&mut self, identity: &str, at: Timestamp, ctx: &Ctx<'_>) {
        let last = self.identity_last.entry(identity.to_string()).or_insert(at);
        *last = (*last).max(at);
        if ctx.period.contains(at) {
            self.active_in_period.insert(identity.to_string(), true);
        }
    }

    pub fn session(&mut self, subject: &str, asset: &str, at: Timestamp, ctx: &Ctx<'_>) {
        self.acted(subject, at, ctx);
        let last = self.asset_last.entry(asset.to_string()).or_insert(at);
        *last = (*last).max(at);
    }

    pub fn teardown_check(&mut self, seq: i64, e: &Event, ctx: &Ctx<'_>) {
        if !ctx.period.contains(e.at) {
            return;
        }
        if let Some(c) = e.payload::<TeardownCheck>() {
            if c.check == CheckKind::Downstream && c.outcome == CheckOutcome::Partial {
                self.partial.entry(c.target).or_default().push(seq, ctx.cap);
            }
        }
    }

    pub fn inventory(&mut self, e: &Event) {
        if let Some(p) = e.payload::<InventoryChanged>() {
            for a in p.assets {
                self.first_listed.entry(a).or_insert(e.at);
            }
        }
    }
}

fn hours(secs: i64) -> f64 {
    (secs as f64 / 36.0).round() / 100.0
}

/// The inventory, sorted by id.
pub(crate) fn inventory(
    inputs: &StandingInputs<'_>,
    usage: &UsageTracker,
    jit: &[StandingJit],
    ctx: &Ctx<'_>,
) -> Vec<StandingItem> {
    let period = ctx.period;
    let mut out = Vec::new();
    for a in inputs.assets {
        let since = usage.first_listed.get(&a.id).copied();
        let exposure = hours(period.overlap_secs(since.unwrap_or(period.from), period.to));
        let last_used = usage.asset_last.get(&a.id).copied();
        let evidence = usage.partial.get(&a.id).cloned().unwrap_or_default();
        if a.enforcement == Enforcement::Legacy {
            let limitation = a
                .limitation
                .as_deref()
                .unwrap_or("local accounts stay on the device");
            out.push(StandingItem {
                id: format!("{}:{}", StandingKind::LegacyLocalAccounts.as_str(), a.id),
                kind: StandingKind::LegacyLocalAccounts,
                subject: None,
                asset: Some(a.id.clone()),
                exposure_hours: exposure,
                since,
                last_used,
                detail: format!(
                    "{limitation}; {} partial teardown(s) in the period; compensating controls: {}",
                    evidence.total(),
                    if a.compensating_controls.is_empty() {
                        "none recorded".to_string()
                    } else {
                        a.compensating_controls.join(", ")
                    }
                ),
                evidence: evidence.clone(),
            });
        }
        if let Some(ssh) = &a.endpoints.ssh {
            if ssh.auth == SshTargetAuth::VaultedKey {
                out.push(StandingItem {
                    id: format!("{}:{}", StandingKind::VaultedGatewayKey.as_str(), a.id),
                    kind: StandingKind::VaultedGatewayKey,
                    subject: a.gateway.clone(),
                    asset: Some(a.id.clone()),
                    exposure_hours: exposure,
                    since,
                    last_used,
                    detail: format!(
                        "the gateway's vaulted key stays in {}'s authorized_keys on {}: have the asset trust jitgate's host-access CA instead",
                        ssh.account.as_deref().unwrap_or("the account"),
                        ssh.host
                    ),
                    evidence,
                });
            }
        }
    }
    // Identities with a standing means of access, and whether they used it.
    // (identity, what it holds, seconds of the period it held it)
    let mut standing_holders: Vec<(String, String, i64)> = Vec::new();
    for k in inputs.api_keys {
        if k.revoked || k.expires_at.is_some_and(|t| t <= period.from) {
            continue;
        }
        let held = period.overlap_secs(k.created_at, k.expires_at.unwrap_or(period.to));
        standing_holders.push((k.identity.clone(), format!("API key {}", k.id), held));
        if k.expires_at.is_some() {
            continue;
        }
        out.push(StandingItem {
            id: format!("{}:{}", StandingKind::ApiKeyWithoutExpiry.as_str(), k.id),
            kind: StandingKind::ApiKeyWithoutExpiry,
            subject: Some(k.identity.clone()),
            asset: None,
            exposure_hours: hours(period.overlap_secs(k.created_at, period.to)),
            since: Some(k.created_at),
            last_used: usage.identity_last.get(&k.identity).copied(),
            detail: format!(
                "API key {} ({:?}) of {} never expires: revoke it and mint one with an expiry",
                k.id, k.name, k.identity
            ),
            evidence: EvidenceRefs::default(),
        });
    }
    for x in inputs.exceptions {
        if x.expires_at <= period.from {
            continue;
        }
        let held = period.overlap_secs(x.since.unwrap_or(period.from), x.expires_at);
        standing_holders.push((x.subject.clone(), format!("exception {}", x.id), held));
        let overdue = x.revalidation_due < period.to;
        out.push(StandingItem {
            id: format!("{}:{}", StandingKind::StandingException.as_str(), x.id),
            kind: StandingKind::StandingException,
            subject: Some(x.subject.clone()),
            asset: x.assets.first().filter(|_| x.assets.len() == 1).cloned(),
            exposure_hours: hours(
                period.overlap_secs(x.since.unwrap_or(period.from), x.expires_at),
            ),
            since: x.since,
            last_used: x.last_used,
            detail: format!(
                "exception {} on {} owned by {}, expires {}{}",
                x.id,
                x.assets.join(", "),
                x.owner,
                crate::event::rfc3339(x.expires_at),
                if overdue {
                    "; re-validation overdue"
                } else {
                    ""
                }
            ),
            evidence: EvidenceRefs::default(),
        });
    }
    standing_holders.sort();
    let mut reported: Vec<&str> = Vec::new();
    for (identity, _, _) in &standing_holders {
        if usage.active_in_period.contains_key(identity) || reported.contains(&identity.as_str()) {
            continue;
        }
        reported.push(identity);
        let all: Vec<&str> = standing_holders
            .iter()
            .filter(|(i, _, _)| i == identity)
            .map(|(_, m, _)| m.as_str())
            .collect();
        // Exposed while any of them was held (the longest, as they may overlap).
        let held = standing_holders
            .iter()
            .filter(|(i, _, _)| i == identity)
            .map(|(_, _, h)| *h)
            .max()
            .unwrap_or(0);
        out.push(StandingItem {
            id: format!("{}:{}", StandingKind::UnusedAccess.as_str(), identity),
            kind: StandingKind::UnusedAccess,
            subject: Some(identity.clone()),
            asset: None,
            exposure_hours: hours(held),
            since: None,
            last_used: usage.identity_last.get(identity).copied(),
            detail: format!(
                "{identity} holds {} and did not use it in the period: remove what is not needed",
                all.join(", ")
            ),
            evidence: EvidenceRefs::default(),
        });
    }
    for j in jit {
        let what = match j.kind {
            FindingKind::BackToBackRenewal => "renewed",
            _ => "covered",
        };
        out.push(StandingItem {
            id: format!(
                "{}:{}:{}@{}",
                StandingKind::JitBecameStanding.as_str(),
                what,
                j.subject,
                j.asset
            ),
            kind: StandingKind::JitBecameStanding,
            subject: Some(j.subject.clone()),
            asset: Some(j.asset.clone()),
            exposure_hours: hours(j.covered_secs),
            since: j.since,
            last_used: j.last,
            detail: format!(
                "{}: {}; make it an exception with an owner and a re-validation, or narrow the work",
                j.kind.as_str(),
                j.detail
            ),
            evidence: j.evidence.clone(),
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// An optional time as RFC 3339 with milliseconds (left out when absent).
mod opt_millis {
    use crate::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&crate::event::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "crate::event::millis")] Timestamp);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}
