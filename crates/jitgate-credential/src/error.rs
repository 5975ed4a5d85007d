//! One variant per way a credential can be refused or a key store can be unusable, each with a
//! stable code (documented in `docs/credentials.md`) so the server, the gateway's evidence
//! events and the CLI can all name the same reason.

use crate::Timestamp;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CredentialError {
    #[error("grant token is {len} bytes, more than the {max}-byte limit; request a new token with `jitgate connect`")]
    TokenTooLong { len: usize, max: usize },

    #[error("grant token is malformed ({0}); present the token exactly as the server issued it")]
    TokenMalformed(String),

    #[error("grant token was signed with key {kid}, which this gateway does not know; refresh the gateway's public keys from the server, or request a new token")]
    UnknownKey { kid: String },

    #[error("grant token was signed with key {kid}, which has been retired; every token it signed is refused. Request a new token (it is signed with the current key)")]
    KeyRetired { kid: String },

    #[error("there is no token-signing key {kid}; `jitgate keys show` lists the keys")]
    NoSuchKey { kid: String },

    #[error("key {kid} is the current signing key and cannot be retired: rotate first (`jitgate keys rotate`), then retire it (`jitgate keys retire {kid} --now`)")]
    KeyIsCurrent { kid: String },

    #[error("grant token signature is invalid (forged or altered token); request a new token from the server")]
    BadSignature,

    #[error("grant token is for gateway {actual:?}, not this gateway ({expected:?}); request a token for the gateway that fronts the asset")]
    WrongAudience { expected: String, actual: String },

    #[error("grant token is not valid before {not_before}; wait for the grant's window or check this machine's clock")]
    NotYetValid { not_before: Timestamp },

    #[error(
        "grant token expired at {expires_at}; request a new token (the grant may have ended too)"
    )]
    Expired { expires_at: Timestamp },

    #[error("grant token claims are invalid: {0}")]
    BadClaims(String),

    #[error("proof of possession failed: the signature does not match the token's confirmation key; sign the gateway's challenge with the key the token was issued to")]
    BadPopSignature,

    #[error("challenge nonce is unknown or was already used (replay); ask the gateway for a fresh challenge")]
    NonceUnknownOrReplayed,

    #[error("challenge issued at {issued_at} has expired; ask the gateway for a fresh challenge and answer it promptly")]
    ChallengeExpired { issued_at: Timestamp },

    #[error("grant cannot be given a token: {0}")]
    GrantNotUsable(String),

    #[error("public key {kid:?} is invalid: {reason}; fetch the gateway's key list from the server again")]
    InvalidPublicKey { kid: String, reason: String },

    #[error("token key file {path} is readable or writable by group/others (mode {mode:o}); run `chmod 600 {path}` and make sure no one else has read it, else rotate the keys")]
    KeyFileInsecure { path: PathBuf, mode: u32 },

    #[error("token key file {path} is invalid: {reason}; restore it from backup, or move it away to create a fresh key (tokens already issued will then be refused)")]
    KeyFileInvalid { path: PathBuf, reason: String },

    #[error("token key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cryptographic operation failed: {0}")]
    Crypto(String),
}

impl CredentialError {
    /// The stable, documented error code of this error (never changes once released).
    pub fn code(&self) -> &'static str {
        match self {
            CredentialError::TokenTooLong { .. } => "token_too_long",
            CredentialError::TokenMalformed(_) => "token_malformed",
            CredentialError::UnknownKey { .. } => "unknown_key",
            CredentialError::KeyRetired { .. } => "key_retired",
            CredentialError::NoSuchKey { .. } => "no_such_key",
            CredentialError::KeyIsCurrent { .. } => "key_is_current",
            CredentialError::BadSignature => "bad_signature",
            CredentialError::WrongAudience { .. } => "wrong_audience",
            CredentialError::NotYetValid { .. } => "not_yet_valid",
            CredentialError::Expired { .. } => "expired",
            CredentialError::BadClaims(_) => "bad_claims",
            CredentialError::BadPopSignature => "bad_pop_signature",
            CredentialError::NonceUnknownOrReplayed => "nonce_unknown_or_replayed",
            CredentialError::ChallengeExpired { .. } => "challenge_expired",
            CredentialError::GrantNotUsable(_) => "grant_not_usable",
            CredentialError::InvalidPublicKey { .. } => "invalid_public_key",
            CredentialError::KeyFileInsecure { .. } => "key_file_insecure",
            CredentialError::KeyFileInvalid { .. } => "key_file_invalid",
            CredentialError::Io { .. } => "io",
            CredentialError::Crypto(_) => "crypto",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CredentialError::Io {
            path: path.into(),
            source,
        }
    }
}
