//! Typed payloads of the events the server records about everything around the lifecycle:
//! changes of context and inventory, the policy set in force, keys, authentication factors,
//! reviews, teardown checks, credentials issued and what gateways report. Like
//! [`crate::payload`], each is the exact JSON earlier versions wrote with `json!` (same keys,
//! optional keys left out when absent), so logs written before keep verifying and reading.

use crate::event::{millis, EventKind};
use crate::inventory::{IdentityStatus, OrgStatus};
use crate::lifecycle::ReviewReason;
use crate::payload::Payload;
use crate::teardown::{CheckOutcome, TeardownVerdict};
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a `context.changed` event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextTarget {
    Org,
    Identity,
    Asset,
}

/// The change itself, as each target records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ContextChange {
    /// An identity disabled or enabled by an administrator, with the reason given.
    IdentityStatusSet {
        status: IdentityStatus,
        reason: String,
    },
    /// An asset locked out or released (inventory load).
    Lockout { lockout: bool },
    /// An org's or identity's new status (inventory load).
    Status(PartyStatus),
}

/// The status of an org or an identity, as a `context.changed` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartyStatus {
    Active,
    /// Orgs only.
    Suspended,
    /// Identities only.
    Disabled,
}

impl From<OrgStatus> for PartyStatus {
    fn from(s: OrgStatus) -> Self {
        match s {
            OrgStatus::Active => PartyStatus::Active,
            OrgStatus::Suspended => PartyStatus::Suspended,
        }
    }
}

impl From<IdentityStatus> for PartyStatus {
    fn from(s: IdentityStatus) -> Self {
        match s {
            IdentityStatus::Active => PartyStatus::Active,
            IdentityStatus::Disabled => PartyStatus::Disabled,
        }
    }
}

/// `context.changed`: an org, identity or asset changed in a way that can end access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextChanged {
    pub what: ContextTarget,
    pub id: String,
    pub change: ContextChange,
}
impl Payload for ContextChanged {
    const KIND: EventKind = EventKind::ContextChanged;
}

/// `inventory.changed`: the ids an inventory load upserted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryChanged {
    pub sites: Vec<String>,
    pub orgs: Vec<String>,
    pub identities: Vec<String>,
    pub assets: Vec<String>,
}
impl Payload for InventoryChanged {
    const KIND: EventKind = EventKind::InventoryChanged;
}

/// `policy.loaded`: the policy set now in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyLoaded {
    pub hash: String,
    /// Hash of the set it replaced (`null` at first start).
    pub previous: Option<String>,
    pub policies: Vec<String>,
    /// Directory path, or `builtin`.
    pub source: String,
}
impl Payload for PolicyLoaded {
    const KIND: EventKind = EventKind::PolicyLoaded;
}

/// Which key a `key.rotated` event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyPurpose {
    /// The grant-token signing keys.
    TokenSigning,
    /// The evidence (checkpoint) key.
    Evidence,
}

/// `key.rotated`: a new key, or (with `retired_kid`) an emergency retirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotated {
    pub key: KeyPurpose,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_kid: Option<String>,
    /// Retired at once (`keys retire --now`), not at the end of its tokens' lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<bool>,
    /// The key was not retired already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
    /// Connected gateways the retirement was pushed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateways_notified: Option<Vec<String>>,
}
impl Payload for KeyRotated {
    const KIND: EventKind = EventKind::KeyRotated;
}

/// What a witness found wrong with the evidence log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WitnessAlarmKind {
    /// Two signed checkpoints that cannot both be true (same size, other root; or no
    /// consistency proof from the cosigned one).
    Fork,
    /// A checkpoint of fewer events than one the witness cosigned: the log shrank.
    Rollback,
}

/// `evidence.witness_alarm`: a witness refused to cosign and stopped. Both checkpoints were
/// signed by the log (the server checked); `log_agrees_with_cosigned` says whether the log
/// the server holds today still has the root the witness cosigned at that size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessAlarm {
    pub witness: String,
    pub alarm: WitnessAlarmKind,
    pub message: String,
    pub cosigned_size: u64,
    pub cosigned_root: String,
    pub presented_size: u64,
    pub presented_root: String,
    pub log_agrees_with_cosigned: bool,
}
impl Payload for WitnessAlarm {
    const KIND: EventKind = EventKind::WitnessAlarm;
}

/// An authentication factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Totp,
    ApiKey,
    /// A gateway's client certificate (mutual TLS).
    ClientCertificate,
}

/// `auth.enrolled`: a TOTP enrolment confirmed, or an API key minted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthEnrolled {
    pub factor: Factor,
    /// For API keys: the workload the key authenticates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
    pub expires_at: Option<Timestamp>,
    /// For client certificates: `sha256:<hex>` of the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// For client certificates: first enrolment (by API key alone) or renewal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment: Option<crate::gateway_enrolment::EnrolmentKind>,
}
impl Payload for AuthEnrolled {
    const KIND: EventKind = EventKind::AuthEnrolled;
}

/// `auth.revoked`: an API key revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRevoked {
    pub factor: Factor,
    pub identity: String,
    pub key_id: String,
    pub reason: String,
}
impl Payload for AuthRevoked {
    const KIND: EventKind = EventKind::AuthRevoked;
}

/// `auth.client_cert_refused`: a gateway's call or enrolment refused for its client
/// certificate. Recorded at most once per gateway, reason and ten minutes (a gateway
/// retrying with backoff would otherwise flood the log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertRefused {
    /// The identity the bearer credentials authenticated.
    pub identity: String,
    pub reason: crate::gateway_enrolment::RefusalReason,
    /// `sha256:<hex>` of the certificate presented, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presented: Option<String>,
    /// The client's address.
    pub source: String,
}
impl Payload for ClientCertRefused {
    const KIND: EventKind = EventKind::AuthClientCertRefused;
}

/// `review.opened`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewOpened {
    pub reason: ReviewReason,
    pub subject: String,
    #[serde(with = "millis")]
    pub due_at: Timestamp,
    /// What made the review necessary (e.g. the legacy assets and their compensating
    /// controls), as the opener described it.
    pub detail: Value,
}
impl Payload for ReviewOpened {
    const KIND: EventKind = EventKind::ReviewOpened;
}

/// What the reviewer concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewOutcome {
    /// Nothing to follow up.
    Ok,
    /// Something needs follow-up; the note says what.
    Finding,
}

impl ReviewOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewOutcome::Ok => "ok",
            ReviewOutcome::Finding => "finding",
        }
    }
}

/// `review.completed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewCompleted {
    pub reason: ReviewReason,
    pub outcome: ReviewOutcome,
    pub note: String,
    #[serde(with = "millis")]
    pub due_at: Timestamp,
    pub late: bool,
}
impl Payload for ReviewCompleted {
    const KIND: EventKind = EventKind::ReviewCompleted;
}

/// The checks of a teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// The gateway acknowledged the revocation with the sessions it closed.
    SessionsClosed,
    /// A probe with a fresh credential for the ended grant was refused by the gateway.
    CredentialRefused,
    /// Nothing stays authorized downstream (per asset).
    Downstream,
    /// Every closed session's `session.ended` reached the log (failed only when the
    /// gateway's event delivery is stuck).
    SessionsRecorded,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::SessionsClosed => "sessions_closed",
            CheckKind::CredentialRefused => "credential_refused",
            CheckKind::Downstream => "downstream",
            CheckKind::SessionsRecorded => "sessions_recorded",
        }
    }
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `teardown.check`: one check of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeardownCheck {
    pub attempt: i64,
    pub check: CheckKind,
    /// The gateway (first two checks) or asset (downstream) it is about.
    pub target: String,
    pub outcome: CheckOutcome,
    /// What was seen, in words.
    pub detail: String,
    /// What was seen, as data (acknowledgement, probe answer, compensating controls).
    pub evidence: Value,
}
impl Payload for TeardownCheck {
    const KIND: EventKind = EventKind::TeardownCheck;
}

/// What the server adds to a `teardown.verdict` about the attempt (see
/// [`crate::payload::TeardownVerdictData`] for the verdict itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeardownTally {
    pub verdict: TeardownVerdict,
    pub attempt: i64,
    pub checks: usize,
    pub failed: usize,
    pub partial: usize,
    /// When a failed teardown is tried again (a verdict that is not final).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
    pub next_attempt_at: Option<Timestamp>,
}
impl Payload for TeardownTally {
    const KIND: EventKind = EventKind::TeardownVerdict;
}

impl TeardownTally {
    /// Add the tally's keys to a `teardown.verdict` event (other events are left alone).
    pub fn add_to(&self, e: &mut crate::event::Event) -> Result<(), crate::CoreError> {
        if e.kind != EventKind::TeardownVerdict {
            return Ok(());
        }
        let tally = serde_json::to_value(self)
            .map_err(|err| crate::CoreError::InvalidRequest(format!("teardown tally: {err}")))?;
        if let (Some(data), Value::Object(tally)) = (e.data.as_object_mut(), tally) {
            data.extend(tally);
        }
        Ok(())
    }
}

/// `credential.issued`: a grant token for one asset, bound to a client key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialIssued {
    pub token_fingerprint: String,
    pub token_id: String,
    pub asset: String,
    pub gateway: String,
    pub client_key: String,
    #[serde(with = "millis")]
    pub expires_at: Timestamp,
}
impl Payload for CredentialIssued {
    const KIND: EventKind = EventKind::CredentialIssued;
}

/// `credential.issued` for an OpenSSH certificate under a grant (`jitgate_core::ssh`): the
/// subject's user certificate, or a target certificate a gateway asked for one session. The
/// `credential` field tells it from a grant token's [`CredentialIssued`]; read either with
/// [`IssuedCredential`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshCertificateIssued {
    pub credential: SshCredential,
    pub asset: String,
    /// The grant id, as the certificate's key id.
    pub key_id: String,
    pub principal: String,
    /// Decimal text of the 64-bit serial.
    pub serial: String,
    /// `SHA256:<base64>` (OpenSSH's notation) of the certified public key.
    pub key_fingerprint: String,
    /// `SHA256:<base64>` of the CA key that signed it.
    pub ca_fingerprint: String,
    #[serde(with = "millis")]
    pub valid_after: Timestamp,
    #[serde(with = "millis")]
    pub valid_before: Timestamp,
    /// OpenSSH extensions granted (`permit-pty`, `permit-port-forwarding`).
    pub extensions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_command: Option<String>,
    /// For a target certificate: the gateway that asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}
impl Payload for SshCertificateIssued {
    const KIND: EventKind = EventKind::CredentialIssued;
}

/// Which OpenSSH certificate was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SshCredential {
    /// Signed by the SSH user CA; the subject presents it to the gateway.
    SshUserCertificate,
    /// Signed by the host-access CA; the gateway presents it to the asset.
    SshTargetCertificate,
}

/// The payload of any `credential.issued` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IssuedCredential {
    Ssh(SshCertificateIssued),
    Token(CredentialIssued),
}
impl Payload for IssuedCredential {
    const KIND: EventKind = EventKind::CredentialIssued;
}

/// What a gateway reported (`session.started`, `session.refused`, `session.ended`,
/// `operation`), as the server records it: the gateway's sequence number and session, and
/// the gateway's own detail (its shape is the gateway protocol's; see docs/gateway.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayReport {
    pub gseq: i64,
    pub session_id: Option<String>,
    pub detail: Value,
    /// A refused session's grant id as the client claimed it, when the grant does not exist
    /// or is not on this gateway's assets (so the event is not linked to that grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_grant_id: Option<String>,
}

/// A gateway's detail of `session.started` (every protocol).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStartedDetail {
    pub subject: String,
    pub asset: String,
    /// The protocol the session speaks (`modbus`, `ssh`, …). Absent in events recorded
    /// before gateways reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The device address the gateway relays to.
    #[serde(default)]
    pub device: Option<String>,
    /// The client's address as the gateway saw it.
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(default)]
    pub token_id: Option<String>,
    #[serde(default, with = "opt_millis")]
    pub expires_at: Option<Timestamp>,
}

/// A gateway's detail of `session.ended` (every protocol).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEndedDetail {
    /// `client_closed`, `expired`, `revoked: …`, `client_error: …`, …
    pub reason: String,
    #[serde(default)]
    pub operations: u64,
    #[serde(default)]
    pub denied: u64,
    #[serde(default)]
    pub bytes_from_client: u64,
    #[serde(default)]
    pub bytes_to_client: u64,
}

/// A gateway's detail of a `session.refused` once the token named a real grant (refusals
/// before that are counted into summaries, see docs/gateway.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRefusedDetail {
    /// The tunnel refusal code (`grant_revoked`, `scope_mismatch`, …).
    pub code: String,
    pub reason: String,
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(default)]
    pub token_fingerprint: Option<String>,
}

/// The part of an `operation`'s detail every protocol writes; the rest (function, address
/// range, object group, …) is the protocol's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationOutcome {
    /// Relayed to the device (`true`) or refused by the gateway (`false`).
    pub allowed: bool,
}

/// A gateway's detail of `recording.chunk`: one closed chunk of the session's recording
/// (`jitgate_core::recording`: what the hash covers, and the chain rule). The session is
/// the report's `session_id`, the grant the event's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingChunkDetail {
    /// 0, 1, 2, … without gaps.
    pub index: u64,
    /// Offset of the chunk's first byte in the whole asciicast file.
    pub offset: u64,
    /// The chunk's length in bytes.
    pub length: u64,
    /// The recording ends with this chunk.
    pub last: bool,
    /// Lowercase hex SHA-256 of the previous chunk (64 zeros for chunk 0).
    pub prev_hash: String,
    /// Lowercase hex SHA-256 of this chunk (`jitgate_core::recording::chunk_hash`).
    pub hash: String,
}

impl GatewayReport {
    /// The detail read as one of the shapes above (`None` when it has another shape).
    pub fn detail_as<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_value(self.detail.clone()).ok()
    }

    /// The kinds of event a gateway reports.
    pub const KINDS: [EventKind; 5] = [
        EventKind::SessionStarted,
        EventKind::SessionRefused,
        EventKind::SessionEnded,
        EventKind::Operation,
        EventKind::RecordingChunk,
    ];

    /// The event recording this report as `kind` (one of [`GatewayReport::KINDS`]).
    pub fn event(
        &self,
        kind: EventKind,
        actor: crate::event::Actor,
        at: Timestamp,
    ) -> Result<crate::event::Event, crate::CoreError> {
        self.clone().into_event(kind, actor, at)
    }

    /// [`GatewayReport::event`], taking the report: its detail moves into the event's data
    /// as it is, not copied (the server records every operation this way). The data is
    /// exactly what serialising the report gives (a test compares them).
    pub fn into_event(
        self,
        kind: EventKind,
        actor: crate::event::Actor,
        at: Timestamp,
    ) -> Result<crate::event::Event, crate::CoreError> {
        if !Self::KINDS.contains(&kind) {
            return Err(crate::CoreError::InvalidRequest(format!(
                "{} is not an event a gateway reports",
                kind.as_str()
            )));
        }
        let mut data = serde_json::Map::new();
        data.insert("gseq".into(), self.gseq.into());
        data.insert(
            "session_id".into(),
            self.session_id.map_or(Value::Null, Value::String),
        );
        data.insert("detail".into(), self.detail);
        if let Some(claimed) = self.claimed_grant_id {
            data.insert("claimed_grant_id".into(), Value::String(claimed));
        }
        Ok(crate::event::Event::new(kind, actor, at).data(Value::Object(data)))
    }

    /// The JCS text of the data [`GatewayReport::into_event`] gives a report whose detail
    /// has the JCS text `detail_jcs`: `{"claimed_grant_id"?, "detail", "gseq",
    /// "session_id"}` in that (sorted) order. With [`crate::event::Event::canonical_bytes_with_data`]
    /// the server writes a reported event's canonical bytes from the text it received.
    pub fn data_jcs(
        gseq: i64,
        session_id: Option<&str>,
        detail_jcs: &[u8],
        claimed_grant_id: Option<&str>,
    ) -> Vec<u8> {
        use crate::event::{write_jcs_number, write_scalar};
        let mut out = Vec::with_capacity(detail_jcs.len() + 96);
        out.push(b'{');
        if let Some(claimed) = claimed_grant_id {
            out.extend_from_slice(b"\"claimed_grant_id\":");
            write_scalar(claimed, &mut out);
            out.push(b',');
        }
        out.extend_from_slice(b"\"detail\":");
        out.extend_from_slice(detail_jcs);
        out.extend_from_slice(b",\"gseq\":");
        write_jcs_number(&gseq.into(), &mut out);
        out.extend_from_slice(b",\"session_id\":");
        match session_id {
            Some(id) => write_scalar(id, &mut out),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
        out
    }

    /// The report an event of one of [`GatewayReport::KINDS`] carries.
    pub fn of(e: &crate::event::Event) -> Option<GatewayReport> {
        if !Self::KINDS.contains(&e.kind) {
            return None;
        }
        serde_json::from_value(e.data.clone()).ok()
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::event::{Actor, Event};
    use chrono::TimeZone;
    use serde_json::json;

    fn t() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap()
    }

    #[test]
    fn a_report_written_from_its_text_has_the_canonical_bytes_of_its_event() {
        let details = [
            r#"{"function":"operate","allowed":false,"reason":"binary-output 3 is not granted","objects":[{"group":12,"variation":1,"range":[3,3]}]}"#,
            r#"{"subject":"ana","asset":"rtu-12","expires_at":"2026-11-01T09:00:00.000Z","peer":null}"#,
            r#"{"é":"é","z":1.5e300,"a":-9007199254740993}"#,
            "null",
        ];
        for detail in details {
            for (session, claimed, gseq) in [
                (Some("s-1"), None, 1),
                (None, Some("g-forged\"\n"), 9_007_199_254_740_993),
            ] {
                let report = GatewayReport {
                    gseq,
                    session_id: session.map(str::to_string),
                    detail: serde_json::from_str(detail).unwrap(),
                    claimed_grant_id: claimed.map(str::to_string),
                };
                let event = report
                    .into_event(EventKind::Operation, Actor::identity("gw-1"), t())
                    .unwrap()
                    .grant("g-1")
                    .request("r-1");
                let mut detail_jcs = Vec::new();
                crate::event::write_jcs_text(detail, &mut detail_jcs).unwrap();
                let data = GatewayReport::data_jcs(gseq, session, &detail_jcs, claimed);
                assert_eq!(
                    String::from_utf8(event.canonical_bytes_with_data(&data)).unwrap(),
                    String::from_utf8(event.canonical_bytes()).unwrap(),
                    "detail {detail}"
                );
            }
        }
    }

    #[test]
    fn context_changes_keep_the_json_earlier_versions_wrote_and_read_back() {
        let cases = [
            (
                ContextChange::Status(OrgStatus::Suspended.into()),
                json!("suspended"),
            ),
            (
                ContextChange::Status(IdentityStatus::Disabled.into()),
                json!("disabled"),
            ),
            (
                ContextChange::Lockout { lockout: true },
                json!({"lockout": true}),
            ),
            (
                ContextChange::IdentityStatusSet {
                    status: IdentityStatus::Disabled,
                    reason: "left the company".into(),
                },
                json!({"status": "disabled", "reason": "left the company"}),
            ),
        ];
        for (change, expected) in cases {
            let payload = ContextChanged {
                what: ContextTarget::Identity,
                id: "oscar".into(),
                change: change.clone(),
            };
            let e = Event::with_payload(Actor::system(), t(), &payload).unwrap();
            assert_eq!(e.kind, EventKind::ContextChanged);
            assert_eq!(
                e.data,
                json!({"what": "identity", "id": "oscar", "change": expected})
            );
            assert_eq!(e.payload::<ContextChanged>().unwrap().change, change);
        }
    }

    #[test]
    fn optional_keys_are_left_out_and_times_have_milliseconds() {
        let rotated = KeyRotated {
            key: KeyPurpose::TokenSigning,
            new_kid: Some("k2".into()),
            previous_kid: None,
            retired_kid: None,
            now: None,
            changed: None,
            gateways_notified: None,
        };
        let e = Event::with_payload(Actor::system(), t(), &rotated).unwrap();
        assert_eq!(e.data, json!({"key": "token-signing", "new_kid": "k2"}));
        let key = AuthEnrolled {
            factor: Factor::ApiKey,
            identity: Some("historian-sync".into()),
            key_id: Some("key-1".into()),
            name: Some("sync".into()),
            minted_by: Some("erin".into()),
            expires_at: Some(t()),
            fingerprint: None,
            enrolment: None,
        };
        let e = Event::with_payload(Actor::system(), t(), &key).unwrap();
        assert_eq!(e.data["expires_at"], json!("2026-11-01T08:00:00.000Z"));
        assert_eq!(e.payload::<AuthEnrolled>(), Some(key));
        let totp = Event::new(EventKind::AuthEnrolled, Actor::system(), t())
            .data(json!({"factor": "totp"}));
        assert_eq!(totp.payload::<AuthEnrolled>().unwrap().factor, Factor::Totp);
    }

    #[test]
    fn credential_issued_reads_back_as_token_or_ssh_certificate() {
        // A grant token's payload, as earlier versions wrote it.
        let token = Event::new(EventKind::CredentialIssued, Actor::system(), t()).data(json!({
            "token_fingerprint": "sha256:00", "token_id": "tok-1", "asset": "plc-7",
            "gateway": "gw-north", "client_key": "AAAA", "expires_at": "2026-11-01T08:00:00.000Z",
        }));
        assert!(matches!(
            token.payload::<IssuedCredential>(),
            Some(IssuedCredential::Token(CredentialIssued { ref token_id, .. })) if token_id == "tok-1"
        ));
        let cert = SshCertificateIssued {
            credential: SshCredential::SshUserCertificate,
            asset: "hmi-1".into(),
            key_id: "g-1".into(),
            principal: "vera".into(),
            serial: "18446744073709551615".into(),
            key_fingerprint: "SHA256:abc".into(),
            ca_fingerprint: "SHA256:def".into(),
            valid_after: t(),
            valid_before: t(),
            extensions: vec!["permit-pty".into()],
            force_command: None,
            gateway: None,
        };
        let e = Event::with_payload(Actor::identity("vera"), t(), &cert).unwrap();
        assert_eq!(e.kind, EventKind::CredentialIssued);
        assert_eq!(e.data["credential"], json!("ssh_user_certificate"));
        assert!(e.data.get("gateway").is_none());
        assert_eq!(
            e.payload::<IssuedCredential>(),
            Some(IssuedCredential::Ssh(cert))
        );
    }

    #[test]
    fn a_teardown_tally_joins_only_the_verdict_event() {
        let tally = TeardownTally {
            verdict: TeardownVerdict::Failed,
            attempt: 2,
            checks: 3,
            failed: 1,
            partial: 0,
            next_attempt_at: Some(t()),
        };
        let mut verdict = Event::new(EventKind::TeardownVerdict, Actor::scheduler(), t())
            .data(json!({"verdict": "failed", "final": false}));
        tally.add_to(&mut verdict).unwrap();
        assert_eq!(verdict.data["attempt"], json!(2));
        assert_eq!(verdict.data["final"], json!(false));
        assert_eq!(
            verdict.data["next_attempt_at"],
            json!("2026-11-01T08:00:00.000Z")
        );
        let mut other =
            Event::new(EventKind::GrantEnded, Actor::scheduler(), t()).data(json!({"a": 1}));
        tally.add_to(&mut other).unwrap();
        assert_eq!(other.data, json!({"a": 1}));
    }

    #[test]
    fn a_gateway_report_taken_into_an_event_has_the_data_serialising_it_gives() {
        for (session_id, claimed_grant_id) in [
            (None, None),
            (Some("s-1"), None),
            (None, Some("g-forged")),
            (Some("s-2"), Some("g-9")),
        ] {
            let report = GatewayReport {
                gseq: 9_007_199_254_740_993,
                session_id: session_id.map(String::from),
                detail: json!({"allowed": true, "objects": [{"group": 60, "variation": 1}], "z": null}),
                claimed_grant_id: claimed_grant_id.map(String::from),
            };
            let expected = serde_json::to_value(&report).unwrap();
            let e = report
                .clone()
                .into_event(EventKind::Operation, Actor::identity("gw-north"), t())
                .unwrap();
            assert_eq!(e.data, expected);
            let by_ref = report
                .event(EventKind::Operation, Actor::identity("gw-north"), t())
                .unwrap();
            assert_eq!(by_ref.canonical_bytes(), e.canonical_bytes());
        }
    }

    #[test]
    fn gateway_reports_are_only_gateway_kinds_and_read_their_detail() {
        let report = GatewayReport {
            gseq: 7,
            session_id: Some("s-1".into()),
            detail: serde_json::to_value(SessionEndedDetail {
                reason: "client_closed".into(),
                operations: 3,
                denied: 1,
                bytes_from_client: 36,
                bytes_to_client: 60,
            })
            .unwrap(),
            claimed_grant_id: None,
        };
        let gw = Actor::identity("gw-north");
        assert!(report
            .event(EventKind::GrantIssued, gw.clone(), t())
            .is_err());
        let e = report.event(EventKind::SessionEnded, gw, t()).unwrap();
        assert!(e.data.get("claimed_grant_id").is_none());
        let back = GatewayReport::of(&e).unwrap();
        assert_eq!(back.detail_as::<SessionEndedDetail>().unwrap().denied, 1);
        assert!(back.detail_as::<OperationOutcome>().is_none());
        let op = Event::new(EventKind::Operation, Actor::identity("gw-north"), t()).data(
            json!({"gseq": 8, "session_id": "s-1", "detail": {"allowed": false, "function": 6}}),
        );
        let outcome = GatewayReport::of(&op)
            .unwrap()
            .detail_as::<OperationOutcome>();
        assert_eq!(outcome, Some(OperationOutcome { allowed: false }));
    }
}
