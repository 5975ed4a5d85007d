//! Messages between gateways and the server (`/api/v1/gateway/...`), shared by both sides.

use jitgate_core::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /gateway/hello`: a gateway announces where clients reach it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayHello {
    /// `host:port` clients connect their tunnels to.
    pub address: String,
    /// `sha256:<hex>` of the gateway's TLS certificate (DER); clients pin it.
    pub tls_fingerprint: String,
    /// `host:port` of the gateway's SSH listener (`ssh_listen`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_address: Option<String>,
    /// The gateway's SSH host key (OpenSSH public key line), for clients' `known_hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_host_key: Option<String>,
}

/// What a gateway needs to enforce offline: the token-verification keys and its assets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GatewaySetup {
    pub gateway_id: String,
    #[schema(value_type = Vec<Object>)]
    pub token_keys: Vec<jitgate_credential::PublicKeyInfo>,
    pub assets: Vec<jitgate_core::Asset>,
    /// The SSH user CA's public keys (OpenSSH lines): user certificates signed by one of
    /// them are the SSH credential (docs/credentials.md, "SSH certificates").
    #[serde(default)]
    pub ssh_user_ca_keys: Vec<String>,
    /// Highest gateway event sequence number already recorded (resume delivery after it).
    pub delivered_seq: i64,
}

/// The server's current view of a grant, for a gateway's online check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrantStatus {
    pub grant_id: String,
    pub state: jitgate_core::GrantState,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// `sha256:<hex>` of the grant's canonical scope (what the approvers approved): the
    /// gateway refuses a token whose `scope_digest` differs (`scope_mismatch`).
    pub scope_digest: String,
    /// The identity the grant is for: the gateway refuses a token for anyone else
    /// (`subject_mismatch`).
    pub subject: String,
    /// The grant's scope: what an SSH session may do (an SSH certificate does not carry
    /// it). Absent from older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub scope: Option<jitgate_core::Scope>,
}

/// One thing a gateway saw: a session starting, refused or ending, or an operation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayEvent {
    /// Per-gateway sequence number, strictly increasing, kept across gateway restarts;
    /// the server records each once, so redelivery after an outage duplicates nothing.
    pub gseq: i64,
    /// `session.started`, `session.refused`, `session.ended` or `operation`.
    pub kind: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    #[serde(default)]
    pub grant_id: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayEventBatch {
    pub events: Vec<GatewayEvent>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GatewayEventAck {
    /// Highest gseq now recorded for this gateway.
    pub delivered_seq: i64,
    pub recorded: usize,
}

/// The answer to `POST /gateway/recordings/{session}/chunks/{index}` (the body is the
/// chunk's frame, `jitgate_core::recording`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordingChunkAck {
    pub session_id: String,
    pub index: u64,
    /// `stored`, or `already_stored` for a retry of the same bytes.
    pub status: String,
}

/// `POST /grants/{id}/token`: the subject asks for a credential bound to a fresh key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The client's Ed25519 public key, base64url (32 bytes): the token is bound to it.
    pub public_key: String,
    /// The asset to reach (default: the grant's only asset).
    #[serde(default)]
    pub asset: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub token: String,
    /// `sha256:<hex>` of the token, as recorded in the evidence log.
    pub token_fingerprint: String,
    pub asset: String,
    pub gateway_id: String,
    pub gateway_address: String,
    /// Pin for the gateway's TLS certificate.
    pub gateway_fingerprint: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// The tunnel protocols the grant gives on the asset (`modbus`, `dnp3`): what a
    /// `jitgate connect` session can speak there.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub protocols: Vec<jitgate_core::scope::Protocol>,
}

/// Server → gateway, over the control channel (`GET /api/v1/gateway/control`, WebSocket,
/// one JSON object per text message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlDown {
    /// End every live session of the grant now and refuse its credential until it expires.
    /// The gateway answers with [`ControlUp::Ack`].
    Revoke(Revocation),
    /// Sent first on every (re)connection: every ended grant whose credential could still
    /// be valid, so that a gateway that was away catches up. Each is acknowledged. The
    /// gateway also fetches the token keys again on it, so a key retired while it was away
    /// is refused from then on.
    Sync { revoked: Vec<Revocation> },
    /// A token-signing key was retired in an emergency (`jitgate keys retire <kid> --now`):
    /// refuse every token it signed (`key_retired`) and cut the live sessions opened with
    /// one. Not acknowledged: the gateway's next key refresh confirms it anyway.
    RetireKey { kid: String },
}

/// One ended grant, as a gateway must enforce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revocation {
    pub grant_id: String,
    /// `revoked`, `expired`, `completed`, `context_changed`, `revalidation_overdue`.
    pub reason: String,
    /// The credential's own expiry: after it the entry can be forgotten.
    #[serde(with = "jitgate_core::event::millis")]
    pub expires_at: Timestamp,
    /// Who ended the grant (revoked or completed it), for the message a cut user reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    /// Why, in the ender's words (a revocation's reason, the change of context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Gateway → server, over the control channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlUp {
    /// The grant is in the gateway's revocation list (persisted) and none of its sessions
    /// is live any more; `sessions` are the ones the gateway saw under it.
    Ack(RevocationAck),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevocationAck {
    pub grant_id: String,
    /// Live sessions of the grant after the revocation was applied (0 when all closed).
    pub live_sessions: usize,
    pub sessions: Vec<SessionClosed>,
    /// When the revocation entered the gateway's (persisted) list.
    #[serde(with = "jitgate_core::event::millis")]
    pub revoked_at: Timestamp,
}

/// A session under a grant, as closed at the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionClosed {
    pub session_id: String,
    #[serde(with = "jitgate_core::event::millis")]
    pub closed_at: Timestamp,
    pub reason: String,
    pub bytes_from_client: u64,
    pub bytes_to_client: u64,
    pub operations: u64,
    pub denied: u64,
}
