//! Request and response bodies of the HTTP API (`/api/v1`, re-exported there as `api::types`).
//! The CLI uses these same types, so client and server cannot drift apart. Plain serde
//! structs (their `ToSchema` derives feed the OpenAPI document): any layer may build them.

use jitgate_core::decision::Obligations;
use jitgate_core::scope::ScopeRequest;
use jitgate_core::{AccessPath, Approval, Event, Grant, Identity, Request, Timestamp};
use jitgate_evidence::{Checkpoint, SignedCheckpoint};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error the API returns: a stable machine code and a message saying what to do.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// Stable error code, e.g. `separation_of_duties`; see docs/api.md for the list.
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub identity: String,
    pub password: String,
    /// Current TOTP code; required once the identity has enrolled TOTP.
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer <token>`; short-lived.
    pub token: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    pub identity: Identity,
    pub totp_enrolled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub identity: Identity,
    /// `session` (a `jgs_` session token) or `api_key` (workload key).
    pub auth: String,
    /// How the caller authenticated: `password`, `federated_jwt` or `api_key`.
    #[serde(default)]
    pub auth_method: String,
    pub totp_enrolled: bool,
}

/// `POST /auth/federate`: a JWT issued by a trusted platform (docs/federation.md).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FederateBody {
    /// The compact JWT (`header.payload.signature`).
    #[schema(max_length = 16384)]
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpEnrollResponse {
    /// Base32 secret to type into an authenticator app.
    pub secret: String,
    /// `otpauth://` URL (render as a QR code).
    pub otpauth_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCodeBody {
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreateBody {
    /// The workload the key authenticates.
    pub identity: String,
    #[schema(max_length = 2000)]
    pub name: String,
    /// How long the key works, e.g. `30d` (default 90d, at most 365d).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyCreated {
    pub id: String,
    /// Shown once; only its hash is stored. Use as `Authorization: Bearer <key>`.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<jitgate_core::Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequestBody {
    /// Who will use the access; default = the caller. May be a workload the caller owns.
    #[serde(default)]
    pub subject: Option<String>,
    /// Rules per asset, e.g. `{"asset":"plc-7","modbus":["read holding 0-99 unit 1"]}`.
    /// At most `[limits] max_scope_items` rules in all (default 64).
    #[schema(max_items = 64)]
    pub scope: Vec<ScopeRequest>,
    /// Human duration: `30m`, `2h`, `1h30m`.
    pub duration: String,
    #[schema(max_length = 2000)]
    pub reason: String,
    /// Work order / change / incident / supplier case id.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub reference: String,
    pub path: AccessPath,
    /// Window start (RFC 3339); default now.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start: Option<Timestamp>,
}

/// `POST /exceptions`: a standing exception (docs/exceptions.md).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExceptionBody {
    /// Who holds the standing access; default = the caller. May be a workload the caller
    /// owns (a batch job, a break-glass account).
    #[serde(default)]
    pub subject: Option<String>,
    /// Rules per asset, as in a request.
    #[schema(max_items = 64)]
    pub scope: Vec<ScopeRequest>,
    /// Time to the hard end: `90d`, `180d` (at most 365 days).
    pub expires_in: String,
    /// How often the owner re-validates it: `30d` (1 to 90 days).
    pub revalidate_every: String,
    /// The person accountable: never the subject nor tied to it by ownership.
    pub owner: String,
    /// Compensating controls, at least one (free text each).
    #[schema(max_items = 20)]
    pub controls: Vec<String>,
    #[schema(max_length = 2000)]
    pub reason: String,
    /// Work order / change / risk acceptance id.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub reference: String,
}

/// `POST /exceptions/{id}/revalidate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevalidateBody {
    /// Why the access is still needed (recorded in the evidence).
    #[schema(max_length = 2000)]
    pub note: String,
}

/// `POST /exceptions/{id}/end`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndExceptionBody {
    #[schema(max_length = 2000)]
    pub reason: String,
}

/// A request with what a person needs to judge it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    #[serde(flatten)]
    pub request: Request,
    /// The scope in plain words, one line per item.
    pub description: Vec<String>,
    pub approvals: Vec<Approval>,
    /// Distinct approvers who said yes so far.
    pub approved_by: Vec<String>,
    pub obligations: Obligations,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// Digest of the scope you reviewed (from `GET /requests/{id}`); must match.
    pub scope_digest: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub comment: String,
    /// Current TOTP code; one way of the step-up the decision may demand.
    #[serde(default)]
    pub totp: Option<String>,
    /// A passkey assertion answering a challenge from
    /// `POST /requests/{id}/step-up/passkey`: the other way of the step-up.
    #[serde(default)]
    pub passkey: Option<PasskeyAssertion>,
}

/// A passkey's answer to a challenge (`navigator.credentials.get`), with the challenge id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyAssertion {
    pub challenge_id: String,
    /// The WebAuthn `PublicKeyCredential` as JSON (binary fields base64url without
    /// padding): `id`, `rawId`, `type`, `response` {`authenticatorData`, `clientDataJSON`,
    /// `signature`, `userHandle`}.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// A WebAuthn ceremony begun: pass `public_key` to `navigator.credentials.create` or
/// `.get` (binary fields are base64url), and send the answer with `challenge_id` before
/// `expires_at`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PasskeyCeremony {
    pub challenge_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// `{"publicKey": {...}}`: the creation or request options.
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

/// An enrolled passkey.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PasskeyView {
    /// base64url of the WebAuthn credential id.
    pub credential_id: String,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRegisterBody {
    /// What to call it, e.g. "laptop" or "security key" (1 to 64 characters).
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRegisterFinishBody {
    pub challenge_id: String,
    /// The WebAuthn `PublicKeyCredential` from `navigator.credentials.create`, as JSON
    /// (binary fields base64url without padding): `id`, `rawId`, `type`, `response`
    /// {`attestationObject`, `clientDataJSON`}.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRemoveBody {
    /// A current TOTP code; needed unless the session was opened in the last 5 minutes.
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyStepUpBody {
    /// Digest of the scope you reviewed (from `GET /requests/{id}`); the challenge is bound
    /// to it and to the request.
    pub scope_digest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyBody {
    #[schema(max_length = 2000)]
    pub comment: String,
    /// Digest of the scope you reviewed; optional for denials.
    #[serde(default)]
    pub scope_digest: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[schema(max_length = 2000)]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    #[serde(flatten)]
    pub grant: Grant,
    pub requester: String,
    pub reason: String,
    pub reference: String,
    pub description: Vec<String>,
    /// Seconds until expiry (0 once ended or expired).
    pub remaining_secs: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub seq: i64,
    pub hash: String,
    pub prev_hash: String,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryLoadBody {
    /// The inventory file's TOML text.
    pub toml: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InventorySummary {
    pub sites: usize,
    pub orgs: usize,
    pub identities: usize,
    pub assets: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyInfo {
    pub hash: String,
    pub policies: Vec<String>,
    /// Directory the set was loaded from (`builtin` for the embedded default set).
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChainStatus {
    pub events: i64,
    pub head: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// At least 12 characters, not one character repeated, no control characters.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
}

/// `POST /auth/password`: change one's own password.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    /// The password in force now.
    pub current: String,
    /// The new one, at least 12 characters.
    pub new: String,
    /// The current TOTP code, when TOTP is enrolled.
    #[serde(default)]
    pub totp: Option<String>,
}

/// Sessions ended (`POST /auth/password`, `POST /auth/logout/everywhere`, a reset).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionsEnded {
    pub sessions_ended: u64,
}

/// `POST /identities/{id}/unlock`: what the unlock forgot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnlockView {
    pub identity: String,
    /// The identity was locked out.
    pub was_locked: bool,
    /// Failures counted before the unlock.
    pub failures: u32,
}

pub use jitgate_gateway::wire::{
    GatewayEvent, GatewayEventAck, GatewayEventBatch, GatewayHello, GatewaySetup, GrantStatus,
    TokenRequest, TokenResponse,
};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeysInfo {
    pub current_kid: String,
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<jitgate_credential::PublicKeyInfo>,
}

/// `POST /keys/{kid}/retire`: retire a token-signing key now (it leaked).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireKeyBody {
    /// Must be `true`: retirement is immediate. (Without an emergency there is nothing to
    /// do: `POST /keys/rotate` already retires the previous key once its tokens expire.)
    pub now: bool,
}

/// The answer to a key retirement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyRetired {
    pub retired_kid: String,
    /// `false` when the key was already retired (nothing changed; gateways were told again).
    pub changed: bool,
    /// Gateways whose control channel was up and got the order at once; the others refuse
    /// the key when they reconnect (they fetch the key list again then).
    pub gateways_notified: Vec<String>,
    pub current_kid: String,
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<jitgate_credential::PublicKeyInfo>,
}

// ---------------------------------------------------------------- evidence

/// What `GET /evidence/verify` found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogVerifyView {
    pub ok: bool,
    pub log_id: String,
    /// Rows read.
    pub events: u64,
    /// Events verified from the start (chain and Merkle tree) before the first problem.
    pub verified: u64,
    /// How many events the store's chain head records.
    pub chain_head: i64,
    /// Hex Merkle root of the first `verified` events.
    pub root_hash: String,
    /// Chain hash of the last verified event.
    pub head_hash: String,
    /// Checkpoints stored.
    pub checkpoints: usize,
    /// Checkpoints whose signature and root both verified.
    pub checkpoints_verified: usize,
    /// Tree size of the largest verified checkpoint; later events are chain-protected only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_checkpoint: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<LogProblemView>,
}

/// The first problem in the log (see docs/evidence.md for every kind).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogProblemView {
    /// `altered`, `deleted`, `inserted`, `reordered`, `broken-link`, `malformed`,
    /// `truncated`, `bad-checkpoint`, `root-mismatch`, `checkpoint-regression`,
    /// `foreign-checkpoint`.
    pub kind: String,
    /// The event (or, for checkpoint problems, the checkpoint's tree size).
    pub seq: i64,
    pub message: String,
}

/// A signed checkpoint, exactly as `jitgate-evidence` writes it (and bundles carry it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpointView {
    pub checkpoint: CheckpointView,
    /// Standard base64 of the Ed25519 signature over the checkpoint's text.
    pub signature: String,
    /// Witnesses whose cosignature of this checkpoint the server holds (docs/evidence.md,
    /// "Witnesses").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointView {
    pub log_id: String,
    pub tree_size: u64,
    /// Lowercase hex Merkle root of the first `tree_size` events.
    pub root_hash: String,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Evidence key that signed it.
    pub key_id: String,
}

impl From<SignedCheckpoint> for SignedCheckpointView {
    fn from(s: SignedCheckpoint) -> Self {
        let c = s.checkpoint;
        SignedCheckpointView {
            checkpoint: CheckpointView {
                log_id: c.log_id,
                tree_size: c.tree_size,
                root_hash: c.root_hash,
                time: c.time,
                key_id: c.key_id,
            },
            signature: s.signature,
            witnesses: Vec::new(),
        }
    }
}

impl From<SignedCheckpointView> for SignedCheckpoint {
    fn from(s: SignedCheckpointView) -> Self {
        let c = s.checkpoint;
        SignedCheckpoint {
            checkpoint: Checkpoint {
                log_id: c.log_id,
                tree_size: c.tree_size,
                root_hash: c.root_hash,
                time: c.time,
                key_id: c.key_id,
            },
            signature: s.signature,
        }
    }
}

/// The server's evidence keys (public halves only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvidenceKeysView {
    pub log_id: String,
    /// The key that signs new checkpoints and bundles.
    pub current_key_id: String,
    /// Every key, oldest first (old keys verify old checkpoints).
    pub keys: Vec<EvidenceKeyView>,
    /// The public key file auditors pass with `--key`.
    pub key_file: String,
    /// The same keys as signed-note vkeys (`<log id>+<key hash>+<base64 key>`), what
    /// witnesses take with `--log-key` (docs/evidence.md, "Witnesses").
    #[serde(default)]
    pub vkeys: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvidenceKeyView {
    pub key_id: String,
    /// Standard base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
}

/// `GET /ssh/ca`: jitgate's two SSH CAs' public keys, in OpenSSH format.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SshCaView {
    /// Signs the certificates subjects present to gateways (`jitgate ssh`). Gateways trust it.
    pub user_ca: SshCaKeyView,
    /// Signs the per-session certificates gateways present to assets. Put its `public_key`
    /// in each asset's `TrustedUserCAKeys` file.
    pub host_access_ca: SshCaKeyView,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SshCaKeyView {
    /// One OpenSSH public key line, e.g. `ssh-ed25519 AAAA… jitgate-ssh-user-ca`.
    pub public_key: String,
    /// `SHA256:<base64>`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
}

/// `POST /grants/{id}/ssh-certificate`: the subject asks for an OpenSSH user certificate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SshCertificateBody {
    /// The asset to reach (default: the grant's only asset with SSH scope).
    #[serde(default)]
    #[schema(max_length = 64)]
    pub asset: Option<String>,
    /// One OpenSSH public key line (`ssh-ed25519 AAAA… [comment]`, as in a `.pub` file):
    /// Ed25519 (also `sk-`), ECDSA, or RSA of at least 3072 bits. A key is certified for one
    /// grant only.
    #[schema(max_length = 8192)]
    pub public_key: String,
}

/// `POST /gateway/ssh/target-certificate`: a gateway asks for the certificate it presents
/// to the asset for one session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetCertificateBody {
    #[schema(max_length = 256)]
    pub grant_id: String,
    #[schema(max_length = 64)]
    pub asset: String,
    /// The gateway's fresh per-session public key, one OpenSSH line.
    #[schema(max_length = 8192)]
    pub public_key: String,
}

/// An OpenSSH certificate issued under a grant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SshCertificateView {
    /// The certificate, one OpenSSH line (`ssh-ed25519-cert-v01@openssh.com AAAA…`): save it
    /// as the file `-o CertificateFile=` names.
    pub certificate: String,
    /// The grant id.
    pub key_id: String,
    /// The one principal: the subject (user certificate) or the asset's account (target).
    pub principals: Vec<String>,
    /// Decimal text of the random 64-bit serial.
    pub serial: String,
    #[schema(value_type = String, format = DateTime)]
    pub valid_after: Timestamp,
    /// Never after the grant's expiry.
    #[schema(value_type = String, format = DateTime)]
    pub valid_before: Timestamp,
    /// `permit-pty` (scope `shell`), `permit-port-forwarding` (scope `forward`); never agent
    /// or X11 forwarding nor `permit-user-rc`.
    pub extensions: Vec<String>,
    /// Set when the scope on the asset is exactly one `command` (and no shell or sftp).
    #[serde(default)]
    pub force_command: Option<String>,
    pub asset: String,
    /// `SHA256:<base64>` of the certified public key.
    pub key_fingerprint: String,
    /// `SHA256:<base64>` of the CA that signed it.
    pub ca_fingerprint: String,
    /// User certificates: where the asset's gateway takes SSH (`host:port`, as the gateway
    /// announced it); absent when it announced no SSH listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ssh_address: Option<String>,
    /// User certificates: the gateway's SSH host key (OpenSSH public key line) as the
    /// gateway announced it to the server; clients pin it (`known_hosts`) instead of
    /// trusting it on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ssh_host_key: Option<String>,
}

/// One session's recording, as `GET /recordings` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordingView {
    pub session_id: String,
    pub grant_id: String,
    /// The gateway that recorded it.
    pub gateway: String,
    /// Chunks whose hash is in the evidence log.
    pub chunks: u64,
    /// Of those, chunks whose bytes the server holds.
    pub stored_chunks: u64,
    /// Bytes of the whole cast as far as recorded.
    pub bytes: u64,
    /// The last chunk (closed when the session ended) was recorded.
    pub complete: bool,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}
