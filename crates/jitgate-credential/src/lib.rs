//! # jitgate-credential
//!
//! The credential a subject presents at a gateway: a short-lived **grant token** in a standard
//! format (PASETO v4.public, Ed25519) that names the grant, the gateway it is for, the asset
//! endpoints and scope items behind that gateway, and a **confirmation key** — the public half of
//! a per-session key the client holds. A stolen token is useless without that key: the gateway
//! makes the client sign a fresh challenge with it (proof of possession) before a session starts.
//! Gateways verify everything offline, from the server's published public keys.
//! The protocol and every check are described in `docs/credentials.md`.
//!
//! ## Layout
//! - [`claims`]  — [`GrantClaims`] / [`AssetClaim`] (the token payload), their consistency rules,
//!   and [`GrantClaims::for_grant`], which derives claims from an active grant.
//! - [`keyring`] — [`KeyRing`], the server's signing keys in `token-keys.json` (owner-only file),
//!   rotation, emergency retirement ([`KeyRing::retire_now`]), the public-key list for
//!   gateways, and [`KeyRing::issue`].
//! - [`verify`]  — [`Verifier`], the gateway-side token check in a fixed order, and
//!   [`token_fingerprint`] for the evidence log.
//! - [`pop`]     — proof of possession: [`Challenge`], [`NonceCache`] (single-use nonces),
//!   [`ClientKey`] (the client's per-session key) and [`verify_pop`].
//! - [`error`]   — [`CredentialError`], each refusal with a stable code.
//!
//! No home-made token format: the token is plain PASETO v4.public (via `pasetors`); the only
//! encoding of our own is the proof-of-possession message, built with PASETO's PAE so its
//! fields cannot be confused with one another.

pub mod claims;
pub mod error;
pub mod keyring;
pub mod pop;
pub mod verify;

pub use claims::{AssetClaim, GrantClaims};
pub use error::CredentialError;
pub use keyring::{KeyRing, PublicKeyInfo, KEY_FILE_NAME};
pub use pop::{verify_pop, Challenge, ClientKey, NonceCache};
pub use verify::{token_fingerprint, token_kid, Verifier, MAX_TOKEN_LEN};

/// Timestamps are UTC everywhere (same type as in `jitgate-core`).
pub type Timestamp = jitgate_core::Timestamp;

/// PASETO implicit assertion of every grant token. It is signed but not carried, so a PASETO
/// token some other system signed for another purpose with a shared key never verifies as a
/// grant token, and the claim layout can change under a new version string.
pub const TOKEN_PURPOSE: &str = "jitgate-grant-token/v1";

/// base64url without padding: the encoding PASETO uses, and the one for every key and
/// signature this crate exchanges.
pub(crate) mod b64 {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    pub fn encode(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decode exactly `N` bytes; anything else (wrong length, padding, other alphabet) is `None`.
    /// Inputs are length-checked first so an attacker's string is never decoded at length.
    pub fn decode_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
        if text.len() != base64::encoded_len(N, false)? {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        bytes.try_into().ok()
    }
}
