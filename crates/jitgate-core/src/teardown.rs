//! The rules of a teardown verdict: how checks combine, which gateway refusal proves that a
//! grant ended, and when the evidence of a grant's sessions is complete enough to say so.
//! The server runs the checks (I/O); what they mean is decided here.

use crate::inventory::{Asset, Enforcement, SshTargetAuth};
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// The outcome of one teardown check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    Ok,
    /// Holds as far as jitgate can see, with a documented limitation (legacy asset).
    Partial,
    Failed,
}

/// A teardown's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TeardownVerdict {
    Verified,
    Partial,
    Failed,
}

impl TeardownVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            TeardownVerdict::Verified => "verified",
            TeardownVerdict::Partial => "partial",
            TeardownVerdict::Failed => "failed",
        }
    }
    /// The verdict `as_str` names (as stored by the teardown table).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "verified" => Some(TeardownVerdict::Verified),
            "partial" => Some(TeardownVerdict::Partial),
            "failed" => Some(TeardownVerdict::Failed),
            _ => None,
        }
    }
    /// `verified` and `partial` close the grant; `failed` is retried.
    pub fn is_final(self) -> bool {
        self != TeardownVerdict::Failed
    }
}

/// `failed` if any check failed, else `partial` if any is partial, else `verified`.
pub fn verdict_of(outcomes: impl IntoIterator<Item = CheckOutcome>) -> TeardownVerdict {
    let mut verdict = TeardownVerdict::Verified;
    for o in outcomes {
        match o {
            CheckOutcome::Failed => return TeardownVerdict::Failed,
            CheckOutcome::Partial => verdict = TeardownVerdict::Partial,
            CheckOutcome::Ok => {}
        }
    }
    verdict
}

/// Refusal codes with which a gateway shows it *knows* the grant ended (its revocation list,
/// or the server's answer to its online check). Any other refusal — an unknown signing key,
/// an unreachable server, a bad handshake — says nothing about the grant, so it proves
/// nothing: the probe's credential is otherwise valid.
pub const PROOF_OF_END_CODES: &[&str] = &["grant_revoked", "grant_not_active"];

/// Does a probe refused with `code` prove that the gateway knows the grant ended?
pub fn refusal_proves_end(code: &str) -> bool {
    PROOF_OF_END_CODES.contains(&code)
}

/// A grant's session events as they are in the log.
#[derive(Debug, Clone, Default)]
pub struct SessionEvidence {
    /// Session ids that must have ended: those with a `session.started` event, and those a
    /// gateway acknowledged closing (whose events may not have reached the log yet).
    pub started: Vec<String>,
    /// Session ids with a `session.ended` event, and that event's sequence number.
    pub ended: Vec<(String, i64)>,
}

/// Is every started session's end in the log? `Ok` with the sequence numbers of the
/// `session.ended` events (the verdict names them); `Err` with the sessions still missing
/// theirs. A verdict recorded before them would say "verified" over an incomplete record.
pub fn sessions_recorded(ev: &SessionEvidence) -> Result<Vec<i64>, Vec<String>> {
    let missing: Vec<String> = ev
        .started
        .iter()
        .filter(|s| !ev.ended.iter().any(|(e, _)| e == *s))
        .cloned()
        .collect();
    if missing.is_empty() {
        let mut seqs: Vec<i64> = ev.ended.iter().map(|(_, seq)| *seq).collect();
        seqs.sort_unstable();
        Ok(seqs)
    } else {
        Err(missing)
    }
}

/// How long a teardown waits, without a verdict or an alert, for gateways that could not be
/// asked: after a server node starts (its gateways reconnect; their backoff is at most a few
/// seconds), and after a grant's teardown starts (a gateway restarting, or too busy with
/// connections from the server's address to take the probe). It leaves room for a slow
/// network and a TLS handshake; past it, a gateway that still cannot be asked is a failure.
pub const RECONNECT_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// How long a teardown waits when the gateway *did* acknowledge the revocation over its
/// control channel and only its probes could not be judged: [`RECONNECT_GRACE`] plus one
/// window of the gateway's pre-authentication throttle (60 s, `jitgate_gateway::refusals`),
/// which closes every connection from an address that kept failing — the server's probes
/// too, when the server shares its address (one host, NAT) with clients that fail.
pub const PROBE_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(90);

/// A teardown attempt's failed check, as far as waiting matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedCheck {
    pub kind: crate::server_payload::CheckKind,
    /// The gateway never judged the grant: for `sessions_closed`, it holds no control
    /// channel with any node; for a probe, the connection was refused, closed or timed out
    /// before the gateway answered the credential (it was down, restarting, or at its
    /// per-address limit of connections still authenticating). Such a check shows neither
    /// that the gateway knows the grant ended nor that it does not.
    pub not_judged: bool,
}

/// Does a failed attempt only show gateways that could not be asked yet? Then it is not a
/// failure: the attempt waits (no verdict, no alert) and runs again shortly, or at once when
/// a gateway connects. Only while the node or the teardown is younger than
/// [`RECONNECT_GRACE`] ([`PROBE_GRACE`] when every gateway acknowledged and only probes
/// went unjudged), and only when every failed check is one the gateway never judged;
/// anything the gateway did answer (a connected gateway that does not acknowledge, a probe
/// accepted or refused for another reason, a stuck log) fails at once, and past the grace a
/// gateway that still cannot be asked fails too. The revocation was pushed before any of
/// this, so waiting delays only the alert, never the cut.
pub fn waits_for_gateways(
    failed: &[FailedCheck],
    since_node_start: chrono::TimeDelta,
    since_teardown_start: chrono::TimeDelta,
) -> bool {
    use crate::server_payload::CheckKind;
    let grace = if failed.iter().any(|c| c.kind == CheckKind::SessionsClosed) {
        RECONNECT_GRACE
    } else {
        PROBE_GRACE
    };
    !failed.is_empty()
        && since_node_start.min(since_teardown_start) < grace
        && failed.iter().all(|c| {
            c.not_judged
                && matches!(
                    c.kind,
                    CheckKind::SessionsClosed | CheckKind::CredentialRefused
                )
        })
}

#[cfg(test)]
mod reconnection_tests {
    use super::*;
    use crate::server_payload::CheckKind;

    fn unjudged(kind: CheckKind) -> FailedCheck {
        FailedCheck {
            kind,
            not_judged: true,
        }
    }

    fn judged(kind: CheckKind) -> FailedCheck {
        FailedCheck {
            kind,
            not_judged: false,
        }
    }

    #[test]
    fn only_gateways_not_yet_asked_wait_and_only_within_the_grace() {
        let soon = chrono::TimeDelta::seconds(3);
        let long = chrono::TimeDelta::hours(5);
        let away = [unjudged(CheckKind::SessionsClosed)];
        let busy = [unjudged(CheckKind::CredentialRefused)];
        // Just after the node started, or just after the teardown started.
        assert!(waits_for_gateways(&away, soon, long));
        assert!(waits_for_gateways(&away, long, soon));
        assert!(waits_for_gateways(&busy, long, soon));
        assert!(waits_for_gateways(&[away[0], busy[0]], long, soon));
        // Nothing failed: nothing to wait for.
        assert!(!waits_for_gateways(&[], soon, soon));
        // Past the grace on both clocks, a gateway that cannot be asked is a failure.
        assert!(!waits_for_gateways(&away, long, RECONNECT_GRACE));
        assert!(!waits_for_gateways(
            &[away[0], busy[0]],
            long,
            RECONNECT_GRACE
        ));
        // A gateway that acknowledged, whose probes alone went unjudged (its throttle may
        // be closing the server's address for a minute), gets the longer grace.
        assert!(waits_for_gateways(&busy, long, RECONNECT_GRACE));
        assert!(!waits_for_gateways(&busy, PROBE_GRACE, long));
        // Anything the gateway answered fails at once: connected and silent, a probe
        // refused for another reason or accepted.
        assert!(!waits_for_gateways(
            &[judged(CheckKind::SessionsClosed)],
            soon,
            soon
        ));
        assert!(!waits_for_gateways(
            &[away[0], judged(CheckKind::CredentialRefused)],
            soon,
            soon
        ));
        // A stuck log or a downstream failure is never about reaching a gateway.
        assert!(!waits_for_gateways(
            &[unjudged(CheckKind::SessionsRecorded)],
            soon,
            soon
        ));
        assert!(!waits_for_gateways(
            &[unjudged(CheckKind::Downstream)],
            soon,
            soon
        ));
    }
}

/// What the teardown knows of one asset of an ended grant, for its `downstream` check.
#[derive(Debug, Clone)]
pub struct DownstreamFacts<'a> {
    pub asset: &'a Asset,
    /// The grant named SSH access on the asset.
    pub ssh_granted: bool,
    /// `valid_before` of every target certificate issued under the grant for the asset
    /// (one per SSH session the gateway opened to it).
    pub target_certificates: Vec<Timestamp>,
}

/// The `downstream` check's result: what remains on the asset itself once the gateway
/// checks hold, said plainly, with the evidence behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct DownstreamCheck {
    pub outcome: CheckOutcome,
    pub detail: String,
    pub evidence: serde_json::Value,
}

/// What remains on the asset: nothing for a brokered asset behind a gateway (for SSH, the
/// per-session target certificates are reported with the last one's expiry); a legacy
/// asset's local accounts, a key vaulted at the gateway (it stands on the asset between
/// grants), or an asset no gateway fronts are `partial`, with the limitation named.
pub fn downstream(f: &DownstreamFacts<'_>, now: Timestamp) -> DownstreamCheck {
    let a = f.asset;
    let check = |outcome, detail: String, evidence| DownstreamCheck {
        outcome,
        detail,
        evidence,
    };
    let ssh = a.endpoints.ssh.as_ref().filter(|_| f.ssh_granted);
    match (a.enforcement, &a.gateway) {
        (Enforcement::Legacy, _) => check(
            CheckOutcome::Partial,
            format!(
                "legacy asset: {}",
                a.limitation.clone().unwrap_or_else(|| {
                    "the device cannot enforce expiry; jitgate cannot verify that authorization on it ended".into()
                })
            ),
            json!({
                "enforcement": "legacy",
                "limitation": a.limitation,
                "compensating_controls": a.compensating_controls,
                "review": "opened",
            }),
        ),
        (Enforcement::Brokered, None) => check(
            CheckOutcome::Partial,
            format!(
                "no jitgate gateway fronts {}; jitgate cannot verify that access to it ended",
                a.id
            ),
            json!({"enforcement": "brokered", "gateway": null}),
        ),
        (Enforcement::Brokered, Some(gw)) => match ssh {
            Some(e) if e.auth == SshTargetAuth::VaultedKey => check(
                CheckOutcome::Partial,
                format!(
                    "a key vaulted at gateway {gw} stays authorized for account {} on {} between grants: only the gateway holds it and every login with it is recorded, but jitgate cannot end it on the asset",
                    e.account.as_deref().unwrap_or("?"),
                    a.id
                ),
                json!({
                    "enforcement": "brokered",
                    "gateway": gw,
                    "target_auth": "vaulted_key",
                    "account": e.account,
                    "limitation": "standing key on the asset, held only by the gateway",
                }),
            ),
            Some(e) => {
                let last = f.target_certificates.iter().max().copied();
                let certs = match last {
                    None => "no target certificate was issued under the grant (no SSH session reached the asset)".to_string(),
                    Some(t) if t <= now => format!(
                        "{} target certificate(s) for account {} were issued under the grant, one per session; the last expired at {}",
                        f.target_certificates.len(),
                        e.account.as_deref().unwrap_or("?"),
                        t.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                    Some(t) => format!(
                        "{} target certificate(s) for account {} were issued under the grant, one per session; the last is valid until {} (its key existed only in gateway {gw}'s memory for its session, which is closed)",
                        f.target_certificates.len(),
                        e.account.as_deref().unwrap_or("?"),
                        t.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                };
                check(
                    CheckOutcome::Ok,
                    format!("brokered: SSH to {} passes only through gateway {gw}; {certs}", a.id),
                    json!({
                        "enforcement": "brokered",
                        "gateway": gw,
                        "target_auth": "certificate",
                        "target_certificates": f.target_certificates.len(),
                        "target_certificates_valid_until": last.map(|t| t.to_rfc3339()),
                    }),
                )
            }
            None => check(
                CheckOutcome::Ok,
                format!(
                    "brokered: access to {} passes only through gateway {gw}; no authorization remains on the device",
                    a.id
                ),
                json!({"enforcement": "brokered", "gateway": gw}),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_is_the_worst_outcome() {
        use CheckOutcome::*;
        assert_eq!(verdict_of([Ok, Ok]), TeardownVerdict::Verified);
        assert_eq!(verdict_of([Ok, Partial]), TeardownVerdict::Partial);
        assert_eq!(verdict_of([Partial, Failed, Ok]), TeardownVerdict::Failed);
        assert_eq!(verdict_of([]), TeardownVerdict::Verified);
    }

    #[test]
    fn only_refusals_that_know_the_grant_ended_prove_it() {
        assert!(refusal_proves_end("grant_revoked"));
        assert!(refusal_proves_end("grant_not_active"));
        for code in [
            "unknown_key",
            "server_unreachable",
            "bad_handshake",
            "expired",
            "wrong_asset",
        ] {
            assert!(!refusal_proves_end(code), "{code}");
        }
    }

    #[test]
    fn sessions_recorded_needs_every_end() {
        let mut ev = SessionEvidence {
            started: vec!["s1".into(), "s2".into()],
            ended: vec![("s2".into(), 9)],
        };
        assert_eq!(sessions_recorded(&ev), Err(vec!["s1".to_string()]));
        ev.ended.push(("s1".into(), 12));
        assert_eq!(sessions_recorded(&ev), Ok(vec![9, 12]));
        assert_eq!(sessions_recorded(&SessionEvidence::default()), Ok(vec![]));
    }

    fn asset(
        enforcement: Enforcement,
        gateway: Option<&str>,
        auth: Option<SshTargetAuth>,
    ) -> Asset {
        let mut a: Asset = serde_json::from_value(json!({
            "id": "hmi-1", "name": "HMI", "kind": "hmi", "site": "s", "zone": "z",
            "criticality": "high", "enforcement": "brokered",
        }))
        .unwrap();
        a.enforcement = enforcement;
        a.gateway = gateway.map(String::from);
        a.endpoints.ssh = auth.map(|auth| crate::inventory::SshEndpoint {
            host: "10.0.0.5:22".into(),
            account: Some("ops".into()),
            host_key: None,
            auth,
        });
        a
    }

    fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn downstream_reports_what_stands_on_the_asset() {
        let facts = |a: &Asset, ssh, certs: Vec<Timestamp>| {
            downstream(
                &DownstreamFacts {
                    asset: a,
                    ssh_granted: ssh,
                    target_certificates: certs,
                },
                at(0),
            )
        };
        let legacy = asset(Enforcement::Legacy, Some("gw"), None);
        assert_eq!(facts(&legacy, false, vec![]).outcome, CheckOutcome::Partial);
        let alone = asset(Enforcement::Brokered, None, None);
        assert_eq!(facts(&alone, false, vec![]).outcome, CheckOutcome::Partial);
        let modbus = asset(Enforcement::Brokered, Some("gw"), None);
        assert_eq!(facts(&modbus, false, vec![]).outcome, CheckOutcome::Ok);

        // A vaulted key stands on the asset: partial, naming the account and the gateway.
        let vaulted = asset(
            Enforcement::Brokered,
            Some("gw"),
            Some(SshTargetAuth::VaultedKey),
        );
        let c = facts(&vaulted, true, vec![]);
        assert_eq!(c.outcome, CheckOutcome::Partial);
        assert!(
            c.detail.contains("account ops") && c.detail.contains("gateway gw"),
            "{}",
            c.detail
        );
        assert_eq!(c.evidence["target_auth"], "vaulted_key");
        // ... but only when the grant used SSH on it.
        assert_eq!(facts(&vaulted, false, vec![]).outcome, CheckOutcome::Ok);

        // Per-session certificates: the last one's expiry is reported, past or not.
        let certs = asset(
            Enforcement::Brokered,
            Some("gw"),
            Some(SshTargetAuth::Certificate),
        );
        let c = facts(&certs, true, vec![at(-400), at(120)]);
        assert_eq!(c.outcome, CheckOutcome::Ok);
        assert_eq!(c.evidence["target_certificates"], 2);
        assert_eq!(
            c.evidence["target_certificates_valid_until"],
            at(120).to_rfc3339()
        );
        assert!(c.detail.contains("valid until"), "{}", c.detail);
        let c = facts(&certs, true, vec![at(-400)]);
        assert!(c.detail.contains("expired at"), "{}", c.detail);
        let c = facts(&certs, true, vec![]);
        assert!(c.detail.contains("no target certificate"), "{}", c.detail);
    }
}
