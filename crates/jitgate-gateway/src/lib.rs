//! # jitgate-gateway
//!
//! Enforcement points: the code that sits between a subject's client and an OT device and
//! lets through only what the grant names. The grant's scope is compiled once per session
//! into an allow-list; nothing here calls the policy engine per frame.
//!
//! ## Layout
//!
//! One session machinery, shared by every protocol, and a module per protocol behind a
//! small trait (docs/design-as-built.md, "Protocol seam"; docs/gateway.md, "Adding a
//! protocol").
//!
//! - Shared session machinery:
//!   - [`admission`] — before any TLS: the connection cap, connections still
//!     authenticating per source, the throttle; `[client_limits]` in `gateway.toml`.
//!   - [`handshake`] — the tunnel's credential check (token, proof of possession) for
//!     protocols that travel in the tunnel; [`online`] — the online grant check every
//!     session passes, whatever its credential.
//!   - [`live`] — the live-session registry and the [`live::SessionHandle`] a session
//!     holds: cut signal (revocation, key retirement, shutdown, expiry, idle timeout),
//!     events, `session.ended`, closed-session records for revocation acknowledgements.
//!     A protocol that terminates the client's connection itself (SSH) uses this directly.
//!   - [`spool`] (every event written ahead to a file in `state_dir` before it is
//!     acknowledged, [`spool::wal`]; ordered, at-least-once delivery from it),
//!     [`refusals`] (pre-authentication refusals counted per client address, summarised
//!     once a minute, with a throttle; pure, no I/O), [`revocations`] (the persisted list
//!     of ended grants, and applying revocations and key retirements to live sessions).
//! - The seam for framed protocols: [`protocol`] (the [`protocol::FrameProtocol`] trait:
//!   compile an allow-list once per session, delimit frames, decide, check answers; pure),
//!   [`relay`] (the generic relay loop doing the I/O and the evidence), [`session`] (one
//!   tunnel connection front to back: admission, TLS, handshake, then the relay),
//!   [`lanes`] (the threads sessions run on: one current-thread runtime per CPU, a session
//!   on one of them from accept to end).
//! - Protocols: [`modbus`] — Modbus/TCP, pure and synchronous (no I/O): MBAP framing,
//!   request decoding with the protocol's length and quantity rules, the allow-list
//!   compiled from a grant's scope, exception responses, the operation record sent to the
//!   event log, response validation, [`modbus::inspect`] tying them together per frame, and
//!   [`modbus::proto::Modbus`], its `FrameProtocol`. With the `sim` feature, `modbus::sim`
//!   is a fast in-memory Modbus/TCP server for tests and benchmarks. See `docs/modbus.md`.
//!   [`dnp3`] — DNP3 over TCP on the same seam ([`dnp3::Dnp3`]): whole request fragments
//!   framed and decided by `jitgate-dnp3`, refusals answered with IIN bits, responses and
//!   unsolicited responses read and bounded, operation records; `dnp3::sim` (feature
//!   `sim`) a simulated outstation. See `docs/gateway.md`, "DNP3", and `docs/dnp3.md`.
//!   [`ssh`] — the SSH server (`ssh_listen`): OpenSSH user certificates, the per-channel
//!   allow-list compiled from the scope, the connection to the asset with a per-session
//!   certificate and a pinned host key, the relay, the cut, the recording hook
//!   ([`ssh::record`]) and the teardown's SSH probe. It uses the session machinery as a
//!   library (no `FrameProtocol`). See `docs/gateway.md`, "SSH".
//! - The gateway process: [`config`] (`gateway.toml`), [`runtime`] (the [`runtime::Gateway`]
//!   every session shares; announce to the server, refresh keys and assets, accept
//!   tunnels), [`server_api`] (HTTPS calls to the server, pinned by [`server_trust`]:
//!   fingerprint or CA file), [`control`] (the WebSocket control channel: revocations and
//!   key retirements in, acknowledgements out).
//! - [`wire`] — messages between gateways and the server (`/api/v1/gateway/...`) and the
//!   grant-token exchange, shared by both sides.
//! - [`enrolment`] — the gateway's client certificate for mutual TLS to the server: the
//!   request, the identity it names, renewal, its files (shared with the server).
//! - Both ends of a tunnel: [`tunnel`] (the handshake messages), [`tls`] (certificates and
//!   fingerprint pinning), [`connect`] (the client side behind `jitgate connect`).

pub mod admission;
pub mod config;
pub mod connect;
pub mod control;
pub mod dnp3;
pub mod enrolment;
pub mod handshake;
pub mod lanes;
pub mod live;
pub mod live_journal;
pub mod metrics;
pub mod modbus;
pub mod online;
pub mod private;
pub mod protocol;
pub mod recording;
pub mod refusals;
pub mod relay;
pub mod revocations;
pub mod runtime;
pub mod server_api;
pub mod server_trust;
pub mod session;
pub mod spool;
pub mod ssh;
pub mod tls;
pub mod tunnel;
pub mod wire;

/// A new session id: `sess-` + 12 random characters.
pub fn new_session_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..12)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("sess-{tail}")
}
