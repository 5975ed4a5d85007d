//! # jitgate-gateway
//!
//! Enforcement points: the code that sits between a subject's client and an OT device and
//! lets through only what the grant names. The grant's scope is compiled once per session
//! into an allow-list; nothing here calls the policy engine per frame.
//!
//! ## Layout
//! - [`modbus`] — Modbus/TCP, pure and synchronous (no I/O): MBAP framing, request decoding
//!   with the protocol's length and quantity rules, the allow-list compiled from a grant's
//!   scope, exception responses, the operation record sent to the event log, response
//!   validation, and [`modbus::inspect`] tying them together per frame. With the `sim`
//!   feature, `modbus::sim` is a fast in-memory Modbus/TCP server for tests and benchmarks.
//!   See `docs/modbus.md`.
//! - [`wire`] — messages between gateways and the server (`/api/v1/gateway/...`) and the
//!   grant-token exchange, shared by both sides.
//! - The gateway process: [`config`] (`gateway.toml`), [`runtime`] (announce to the server,
//!   refresh keys and assets, accept tunnels, the registry of live sessions), [`session`]
//!   (one tunnel: handshake, online check, the inspection loop, expiry at the edge),
//!   [`spool`] (ordered, at-least-once delivery of events with a disk spool), [`server_api`]
//!   (HTTPS calls to the server, pinned by [`server_trust`]: fingerprint or CA file),
//!   [`control`] (the WebSocket control channel: revocations and key retirements in,
//!   acknowledgements out), [`revocations`] (the persisted list of ended grants whose
//!   credentials are refused) and [`refusals`] (pre-authentication refusals counted per
//!   client address, summarised once a minute, with a throttle; pure, no I/O).
//! - Both ends of a tunnel: [`tunnel`] (the handshake messages), [`tls`] (certificates and
//!   fingerprint pinning), [`connect`] (the client side behind `jitgate connect`).

pub mod admission;
pub mod config;
pub mod connect;
pub mod control;
pub mod handshake;
pub mod live;
pub mod modbus;
pub mod online;
pub mod private;
pub mod protocol;
pub mod refusals;
pub mod relay;
pub mod revocations;
pub mod runtime;
pub mod server_api;
pub mod server_trust;
pub mod session;
pub mod spool;
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
