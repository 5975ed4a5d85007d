//! The evidence event: one per lifecycle transition, appended in the same transaction as the
//! state change.
//!
//! The shape is designed for the tamper-evident log: [`Event::canonical_bytes`] is a
//! deterministic encoding (JSON, keys sorted, no whitespace, times as RFC 3339 with
//! milliseconds in UTC) that the store hashes into a chain (`hash = SHA-256(prev_hash ||
//! canonical)`), and that a Merkle tree can later take as its leaves unchanged.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod jcs_text;

pub use jcs_text::write_jcs_text;

/// Who caused a transition: an identity, or the system itself (scheduler, startup).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct Actor(pub String);

impl Actor {
    pub fn identity(id: &str) -> Self {
        Actor(id.to_string())
    }
    /// The scheduler ending grants at expiry and lapsing requests.
    pub fn scheduler() -> Self {
        Actor("system:scheduler".into())
    }
    pub fn system() -> Self {
        Actor("system".into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum EventKind {
    #[serde(rename = "request.submitted")]
    RequestSubmitted,
    #[serde(rename = "request.decided")]
    RequestDecided,
    #[serde(rename = "approval.recorded")]
    ApprovalRecorded,
    #[serde(rename = "request.approved")]
    RequestApproved,
    #[serde(rename = "request.denied")]
    RequestDenied,
    #[serde(rename = "request.withdrawn")]
    RequestWithdrawn,
    #[serde(rename = "request.lapsed")]
    RequestLapsed,
    #[serde(rename = "grant.issued")]
    GrantIssued,
    #[serde(rename = "grant.ended")]
    GrantEnded,
    #[serde(rename = "context.changed")]
    ContextChanged,
    #[serde(rename = "inventory.changed")]
    InventoryChanged,
    #[serde(rename = "policy.loaded")]
    PolicyLoaded,
    #[serde(rename = "auth.enrolled")]
    AuthEnrolled,
    /// A credential of jitgate's own (an API key) was revoked.
    #[serde(rename = "auth.revoked")]
    AuthRevoked,
    /// Someone signed in with a password (and TOTP when enrolled).
    #[serde(rename = "auth.login")]
    AuthLogin,
    /// A call or enrolment refused for its gateway client certificate (missing, another
    /// identity's, superseded): the API key may be in someone else's hands.
    #[serde(rename = "auth.client_cert_refused")]
    AuthClientCertRefused,
    /// A sign-in or step-up code was refused (wrong password or code, unknown or disabled
    /// identity); the client was told only `unauthenticated`.
    #[serde(rename = "auth.login_failed")]
    AuthLoginFailed,
    /// An identity or a source address was locked out after too many failures.
    #[serde(rename = "auth.locked")]
    AuthLocked,
    /// A workload exchanged a platform JWT for a session (`crate::federation`).
    #[serde(rename = "auth.federated")]
    AuthFederated,
    /// A platform JWT was refused at exchange, with the typed reason.
    #[serde(rename = "auth.federation_refused")]
    AuthFederationRefused,
    /// A person enrolled a passkey (WebAuthn) for step-up (`crate::passkey`).
    #[serde(rename = "auth.passkey_enrolled")]
    AuthPasskeyEnrolled,
    /// A person removed one of their passkeys.
    #[serde(rename = "auth.passkey_removed")]
    AuthPasskeyRemoved,
    /// A passkey registration or step-up assertion was refused, with the typed reason.
    #[serde(rename = "auth.passkey_refused")]
    AuthPasskeyRefused,
    /// A person signed in through an OpenID provider (`crate::sso`).
    #[serde(rename = "auth.sso")]
    AuthSso,
    /// An SSO sign-in was refused, with the typed reason.
    #[serde(rename = "auth.sso_refused")]
    AuthSsoRefused,
    /// An administrator ended a lockout.
    #[serde(rename = "auth.unlocked")]
    AuthUnlocked,
    /// Someone changed their own password (their other sessions ended).
    #[serde(rename = "auth.password_changed")]
    AuthPasswordChanged,
    /// An administrator set someone else's password (that person's sessions ended).
    #[serde(rename = "auth.password_reset")]
    AuthPasswordReset,
    /// A mandatory post-session review of a grant was opened (break-glass, legacy asset).
    #[serde(rename = "review.opened")]
    ReviewOpened,
    /// Someone other than the subject completed a post-session review: `ok` or `finding`.
    #[serde(rename = "review.completed")]
    ReviewCompleted,
    /// A grant token was issued to the subject (its fingerprint, never the token).
    #[serde(rename = "credential.issued")]
    CredentialIssued,
    /// A gateway accepted a session under a grant.
    #[serde(rename = "session.started")]
    SessionStarted,
    /// A gateway refused a session (bad token, replayed proof, grant not active, ...).
    #[serde(rename = "session.refused")]
    SessionRefused,
    #[serde(rename = "session.ended")]
    SessionEnded,
    /// One protocol operation in a session, allowed or denied, as the gateway saw it.
    #[serde(rename = "operation")]
    Operation,
    /// One closed chunk of a session's recording: its place and hash in the recording's
    /// hash chain (`jitgate_core::recording`); the bytes are stored beside the log.
    #[serde(rename = "recording.chunk")]
    RecordingChunk,
    #[serde(rename = "key.rotated")]
    KeyRotated,
    /// An approver withdrew an approval (it stops counting; an active grant ends).
    #[serde(rename = "approval.withdrawn")]
    ApprovalWithdrawn,
    /// A gateway was told to end a grant (control channel), or acknowledged it.
    #[serde(rename = "revocation.sent")]
    RevocationSent,
    /// One check of a grant's teardown with its evidence (sessions closed, credential
    /// refused, downstream authorization gone).
    #[serde(rename = "teardown.check")]
    TeardownCheck,
    /// The teardown verdict: `verified`, `partial` or `failed`.
    #[serde(rename = "teardown.verdict")]
    TeardownVerdict,
    /// A witness found the evidence log forked or rolled back and stopped cosigning.
    #[serde(rename = "evidence.witness_alarm")]
    WitnessAlarm,
    /// A standing exception was filed with its terms (owner, controls, re-validation).
    #[serde(rename = "exception.requested")]
    ExceptionRequested,
    /// An exception's owner (or security staff) confirmed it is still needed.
    #[serde(rename = "exception.revalidated")]
    ExceptionRevalidated,
    /// Someone ended an exception at once (with the reason).
    #[serde(rename = "exception.ended")]
    ExceptionEnded,
    /// The subject (or a workload subject's owner) attested what was done under an ended
    /// grant (`crate::attestation`).
    #[serde(rename = "attestation.recorded")]
    AttestationRecorded,
    /// A review campaign was opened over a period with the items it lists
    /// (`crate::campaign`).
    #[serde(rename = "campaign.opened")]
    CampaignOpened,
    /// A reviewer decided one campaign item (keep, narrow, end) and what it did.
    #[serde(rename = "campaign.item_decided")]
    CampaignItemDecided,
    /// A campaign was closed, every item decided.
    #[serde(rename = "campaign.closed")]
    CampaignClosed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RequestSubmitted => "request.submitted",
            EventKind::RequestDecided => "request.decided",
            EventKind::ApprovalRecorded => "approval.recorded",
            EventKind::RequestApproved => "request.approved",
            EventKind::RequestDenied => "request.denied",
            EventKind::RequestWithdrawn => "request.withdrawn",
            EventKind::RequestLapsed => "request.lapsed",
            EventKind::GrantIssued => "grant.issued",
            EventKind::GrantEnded => "grant.ended",
            EventKind::ContextChanged => "context.changed",
            EventKind::InventoryChanged => "inventory.changed",
            EventKind::PolicyLoaded => "policy.loaded",
            EventKind::AuthEnrolled => "auth.enrolled",
            EventKind::AuthRevoked => "auth.revoked",
            EventKind::AuthLogin => "auth.login",
            EventKind::AuthClientCertRefused => "auth.client_cert_refused",
            EventKind::AuthLoginFailed => "auth.login_failed",
            EventKind::AuthLocked => "auth.locked",
            EventKind::AuthFederated => "auth.federated",
            EventKind::AuthFederationRefused => "auth.federation_refused",
            EventKind::AuthPasskeyEnrolled => "auth.passkey_enrolled",
            EventKind::AuthPasskeyRemoved => "auth.passkey_removed",
            EventKind::AuthPasskeyRefused => "auth.passkey_refused",
            EventKind::AuthSso => "auth.sso",
            EventKind::AuthSsoRefused => "auth.sso_refused",
            EventKind::AuthUnlocked => "auth.unlocked",
            EventKind::AuthPasswordChanged => "auth.password_changed",
            EventKind::AuthPasswordReset => "auth.password_reset",
            EventKind::ReviewOpened => "review.opened",
            EventKind::ReviewCompleted => "review.completed",
            EventKind::CredentialIssued => "credential.issued",
            EventKind::SessionStarted => "session.started",
            EventKind::SessionRefused => "session.refused",
            EventKind::SessionEnded => "session.ended",
            EventKind::Operation => "operation",
            EventKind::RecordingChunk => "recording.chunk",
            EventKind::KeyRotated => "key.rotated",
            EventKind::ApprovalWithdrawn => "approval.withdrawn",
            EventKind::RevocationSent => "revocation.sent",
            EventKind::TeardownCheck => "teardown.check",
            EventKind::TeardownVerdict => "teardown.verdict",
            EventKind::WitnessAlarm => "evidence.witness_alarm",
            EventKind::ExceptionRequested => "exception.requested",
            EventKind::ExceptionRevalidated => "exception.revalidated",
            EventKind::ExceptionEnded => "exception.ended",
            EventKind::AttestationRecorded => "attestation.recorded",
            EventKind::CampaignOpened => "campaign.opened",
            EventKind::CampaignItemDecided => "campaign.item_decided",
            EventKind::CampaignClosed => "campaign.closed",
        }
    }
}

/// One evidence event. The store assigns its sequence number and chain hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub kind: EventKind,
    pub actor: Actor,
    #[serde(with = "millis")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_after: Option<String>,
    /// Kind-specific details (scope digest, decision, end reason, ...).
    #[serde(default)]
    pub data: serde_json::Value,
    /// How the canonical text is written: absent in events written before format version 2
    /// (keys sorted by their UTF-8 bytes), [`CANONICAL_JCS`] from then on (RFC 8785). Each
    /// event is checked under its own version, so old logs keep verifying.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "v")]
    pub canonical_version: Option<u8>,
}

/// The canonical form version of events written as RFC 8785 (JCS).
pub const CANONICAL_JCS: u8 = 2;

impl Event {
    pub fn new(kind: EventKind, actor: Actor, at: Timestamp) -> Self {
        Event {
            kind,
            actor,
            at,
            request_id: None,
            approval_id: None,
            grant_id: None,
            state_before: None,
            state_after: None,
            data: serde_json::Value::Null,
            canonical_version: Some(CANONICAL_JCS),
        }
    }

    pub fn request(mut self, id: &str) -> Self {
        self.request_id = Some(id.to_string());
        self
    }
    pub fn approval(mut self, id: &str) -> Self {
        self.approval_id = Some(id.to_string());
        self
    }
    pub fn grant(mut self, id: &str) -> Self {
        self.grant_id = Some(id.to_string());
        self
    }
    pub fn states(mut self, before: Option<&str>, after: &str) -> Self {
        self.state_before = before.map(String::from);
        self.state_after = Some(after.to_string());
        self
    }
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }

    /// Deterministic bytes, the ones the log hashes (what makes it tamper-evident): for
    /// [`CANONICAL_JCS`] events the RFC 8785 JSON Canonicalization Scheme, which any JCS
    /// implementation reproduces; for events from before (no version) JSON with keys sorted by
    /// their UTF-8 bytes and no whitespace. Empty for an unknown version, which therefore
    /// never verifies.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        match self.canonical_version {
            None => {
                let Ok(v) = serde_json::to_value(self) else {
                    return Vec::new();
                };
                canonical_json(&v).into_bytes()
            }
            Some(CANONICAL_JCS) => {
                let mut data = Vec::with_capacity(128);
                write_jcs(&self.data, &mut data);
                self.canonical_bytes_with_data(&data)
            }
            Some(_) => Vec::new(),
        }
    }

    /// The JCS canonical bytes of this event with `data_jcs` (JCS text) as its `data`, the
    /// event's own `data` ignored: every field but `data` as serde writes it, sorted, and
    /// `data` as given — what [`Event::canonical_bytes`] gives for a version-2 event whose
    /// data has that text. The server records a gateway's operations this way, their
    /// detail canonicalised from the text it arrived in ([`write_jcs_text`]) rather than
    /// through a `Value`. Empty for events of version 1.
    pub fn canonical_bytes_with_data(&self, data_jcs: &[u8]) -> Vec<u8> {
        if self.canonical_version != Some(CANONICAL_JCS) {
            return Vec::new();
        }
        // The fields as serde writes them (strings; `v` the number 2), in JCS order: the
        // keys are ASCII, so their byte order. A property test compares the whole with a
        // reference JCS of the event serialised by serde.
        let at = rfc3339(self.at);
        let fields: [(&str, Option<&str>); 9] = [
            ("actor", Some(self.actor.0.as_str())),
            ("approval_id", self.approval_id.as_deref()),
            ("at", Some(at.as_str())),
            ("data", None),
            ("grant_id", self.grant_id.as_deref()),
            ("kind", Some(self.kind.as_str())),
            ("request_id", self.request_id.as_deref()),
            ("state_after", self.state_after.as_deref()),
            ("state_before", self.state_before.as_deref()),
        ];
        let mut out = Vec::with_capacity(160 + data_jcs.len());
        out.push(b'{');
        for (key, value) in fields {
            if key == "data" {
                out.extend_from_slice(b"\"data\":");
                out.extend_from_slice(data_jcs);
                out.push(b',');
            } else if let Some(value) = value {
                write_scalar(key, &mut out);
                out.push(b':');
                write_scalar(value, &mut out);
                out.push(b',');
            }
        }
        out.extend_from_slice(b"\"v\":");
        out.extend_from_slice(CANONICAL_JCS.to_string().as_bytes());
        out.push(b'}');
        out
    }
}

/// The event kind of a stored event's canonical text, found without parsing it: readers of
/// the whole log (findings, the compliance report) skip most events — operations — by kind,
/// and walking each one's `data` just to learn that cost as much as the read itself.
///
/// Why the last `"kind":"` is the event's own: both canonical forms sort keys and write no
/// whitespace, so the top-level keys come in the order `actor`, `approval_id`, `at`, `data`,
/// `grant_id`, `kind`, `request_id`, `state_after`, `state_before`, `v` — every `"kind"` key
/// nested in `data` comes before the event's own, and what follows it holds only strings and
/// a number. Inside a JSON string a quote is always escaped, so the pattern cannot occur
/// there. Text that does not have this shape (not canonical) is parsed instead.
pub fn kind_of_canonical(canonical: &str) -> Option<&str> {
    const KEY: &str = "\"kind\":\"";
    if let Some(at) = canonical.rfind(KEY) {
        let rest = &canonical[at + KEY.len()..];
        if let Some(end) = rest.find('"') {
            return Some(&rest[..end]);
        }
    }
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        kind: &'a str,
    }
    serde_json::from_str::<Head<'_>>(canonical)
        .ok()
        .map(|h| h.kind)
}

/// JSON with every object's keys sorted (by their UTF-8 bytes) and no whitespace.
///
/// Sorting is done here, explicitly: `serde_json::Map` keeps insertion order whenever any
/// crate in the build enables serde_json's `preserve_order` feature, so relying on its
/// iteration order would make the bytes — and every hash over them — depend on the build.
pub fn canonical_json(v: &serde_json::Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_canonical(v, &mut out);
    // serde_json writes UTF-8 only; the fallback is never taken.
    String::from_utf8(out).unwrap_or_default()
}

/// Keys and scalars are written by serde_json's compact writer straight into `out` — the
/// same bytes as their `Display` (`Value::to_string`), without a `String` each: the
/// server encodes every recorded operation this way, and the allocations were most of it.
fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    write_sorted(v, out, false);
}

/// RFC 8785 (JCS). Written here rather than through a general canonicalizer because the
/// server encodes every recorded operation this way (the general one took 3.7× as long):
/// strings, booleans and null are what serde_json's compact writer produces (its escapes are
/// exactly JCS's: `\"`, `\\`, `\b \f \n \r \t`, other controls as lowercase `\u00xx`);
/// keys sort by UTF-16 code units (byte order when every key is ASCII, which is the same);
/// numbers are written as ECMAScript does, by `ryu-js`. Tested against
/// `serde_json_canonicalizer` (tests/it/canonical_jcs.rs).
pub fn write_jcs(v: &serde_json::Value, out: &mut Vec<u8>) {
    write_sorted(v, out, true);
}

/// JSON with sorted keys and no whitespace: version 1 (`jcs` false: keys by UTF-8 bytes,
/// serde_json's numbers) or RFC 8785 (`jcs` true: keys by UTF-16 units, ECMAScript numbers).
fn write_sorted(v: &serde_json::Value, out: &mut Vec<u8>, jcs: bool) {
    use serde_json::Value;
    match v {
        Value::Object(map) => write_object(map.iter().collect(), out, jcs),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_sorted(item, out, jcs);
            }
            out.push(b']');
        }
        Value::Number(n) if jcs => write_jcs_number(n, out),
        scalar => write_scalar(scalar, out),
    }
}

/// An object's entries, sorted as [`write_sorted`] sorts them, each value written sorted.
fn write_object(mut entries: Vec<(&String, &serde_json::Value)>, out: &mut Vec<u8>, jcs: bool) {
    if !jcs || entries.iter().all(|(k, _)| k.is_ascii()) {
        entries.sort_by(|a, b| a.0.cmp(b.0));
    } else {
        entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    }
    out.push(b'{');
    for (i, (k, child)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_scalar(k.as_str(), out);
        out.push(b':');
        write_sorted(child, out, jcs);
    }
    out.push(b'}');
}

/// Integers of at most 2^53 in magnitude are exact IEEE doubles and ECMAScript writes them as
/// plain digits; every other number is written as the double it denotes.
pub(crate) fn write_jcs_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    const EXACT: u64 = 1 << 53;
    if let Some(i) = n.as_u64().filter(|i| *i <= EXACT) {
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= EXACT) {
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        let f = n.as_f64().unwrap_or(0.0);
        // JSON has no NaN or infinity; -0 is written "0" (ryu-js does so too).
        let mut buf = ryu_js::Buffer::new();
        out.extend_from_slice(buf.format(f).as_bytes());
    }
}

pub(crate) fn write_scalar<T: Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    // Writing a string, number, bool or null into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// Times in events are RFC 3339 with exactly millisecond precision, so the encoding of an
/// event read back from any database is byte-identical to the one written.
pub mod millis {
    use crate::Timestamp;
    use chrono::SecondsFormat;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// RFC 3339 text of a timestamp as used in event data (UTC, milliseconds).
pub fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_of_canonical_is_the_events_own_never_one_nested_in_its_data() {
        for version in [None, Some(CANONICAL_JCS)] {
            let mut e = Event::new(EventKind::Operation, Actor::system(), Timestamp::default())
                .grant("g-1")
                .data(serde_json::json!({
                    "kind": "grant.ended",
                    "detail": {"kind": "request.submitted", "note": "\"kind\":\"x\""},
                    "z": [{"kind": "session.started"}]
                }));
            e.canonical_version = version;
            let text = String::from_utf8(e.canonical_bytes()).unwrap();
            assert_eq!(kind_of_canonical(&text), Some("operation"), "{text}");
        }
        // Not canonical (spaces, another key order): parsed instead.
        assert_eq!(
            kind_of_canonical(r#"{ "kind" : "grant.issued", "data": {"kind": "x"} }"#),
            Some("grant.issued")
        );
        assert_eq!(kind_of_canonical("not json"), None);
    }

    #[test]
    fn canonical_json_sorts_keys_whatever_the_map_order() {
        // Built in reverse order: with serde_json's `preserve_order` the map iterates like
        // this; the canonical text must not.
        let mut inner = serde_json::Map::new();
        inner.insert("y".into(), serde_json::json!(2));
        inner.insert("b".into(), serde_json::json!([3, {"d": 1, "c": 2}]));
        let mut outer = serde_json::Map::new();
        outer.insert("z".into(), serde_json::json!("é\n"));
        outer.insert("a".into(), serde_json::Value::Object(inner));
        assert_eq!(
            canonical_json(&serde_json::Value::Object(outer)),
            r#"{"a":{"b":[3,{"c":2,"d":1}],"y":2},"z":"é\n"}"#
        );
    }

    /// The canonical text as it was first written (a `String` per key and scalar): the
    /// writer must give the same bytes, or every chain hash recorded before would break.
    fn canonical_as_first_written(v: &serde_json::Value, out: &mut String) {
        use serde_json::Value;
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical_as_first_written(&map[k.as_str()], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical_as_first_written(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }

    #[test]
    fn canonical_json_is_byte_identical_to_the_first_encoding() {
        let v = serde_json::json!({
            "quote\"back\\slash": "tab\t nul\u{0} bell\u{7} del\u{7f} \u{2028} ünï ☃ 😀",
            "numbers": [0, -1, 18446744073709551615u64, -9223372036854775808i64, 1.5, -0.25, 1e300, 3.0],
            "nested": {"Z": null, "a": true, "b": false, "": [], "ä": {}, "A": [[{"k": "v"}]]},
            "device_latency_us": 123,
            "function": "read_holding_registers"
        });
        let mut first = String::new();
        canonical_as_first_written(&v, &mut first);
        assert_eq!(canonical_json(&v), first);
        assert!(first.contains(r#""quote\"back\\slash""#), "{first}");
    }
}
