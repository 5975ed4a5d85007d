//! Proof of possession: only the holder of the key named in a token's `cnf` can use it.
//!
//! 1. The gateway issues a fresh random 32-byte challenge ([`NonceCache::issue`]).
//! 2. The client signs, with its per-session [`ClientKey`], the message
//!    `PAE("jitgate-pop/v1", nonce, SHA-256(token), gateway id)` ([`ClientKey::sign_pop`]).
//! 3. The gateway consumes the nonce (single use, short-lived) and checks the signature
//!    against the verified token's `cnf` ([`verify_pop`]).
//!
//! Binding the token's hash stops a proof made for one token being replayed with another;
//! binding the gateway id stops a gateway that received a proof relaying it to a different
//! gateway; the nonce stops replay of an old proof. PAE is PASETO's pre-authentication
//! encoding (length-prefixed pieces), so no field can be shifted into another.

use crate::claims::GrantClaims;
use crate::{b64, CredentialError, Timestamp};
use chrono::Duration;
use ed25519_compact::{KeyPair, Seed, Signature};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use zeroize::Zeroizing;

/// Domain separation of proof-of-possession signatures; never valid as anything else.
pub const POP_DOMAIN: &str = "jitgate-pop/v1";

/// A base64url Ed25519 signature is 86 characters; anything much longer is not one.
const MAX_SIGNATURE_B64_LEN: usize = 128;

/// A gateway's challenge to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub nonce: [u8; 32],
    pub issued_at: Timestamp,
}

impl Challenge {
    /// A challenge with 32 bytes from the operating system's RNG.
    pub fn new(now: Timestamp) -> Self {
        let mut nonce = [0u8; 32];
        OsRng.fill_bytes(&mut nonce);
        Challenge {
            nonce,
            issued_at: now,
        }
    }

    /// The nonce as base64url, for the wire.
    pub fn nonce_b64(&self) -> String {
        b64::encode(self.nonce)
    }

    /// Parse a nonce received as base64url (exactly 32 bytes).
    pub fn parse_nonce(text: &str) -> Result<[u8; 32], CredentialError> {
        b64::decode_exact::<32>(text).ok_or(CredentialError::NonceUnknownOrReplayed)
    }
}

/// The client's per-session Ed25519 key; its public half goes into the token as `cnf`.
/// (`Clone` so one `jitgate connect` can open several tunnels with the same key.)
#[derive(Clone)]
pub struct ClientKey {
    pair: KeyPair,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("public", &self.public_b64())
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// A fresh key from the operating system's RNG.
    pub fn generate() -> Self {
        loop {
            let mut seed = Zeroizing::new([0u8; 32]);
            OsRng.fill_bytes(seed.as_mut());
            // Only the all-zero seed is refused (probability 2^-256); draw again.
            if let Ok(pair) = KeyPair::try_from_seed(Seed::new(*seed)) {
                return ClientKey { pair };
            }
        }
    }

    /// The public key, base64url (32 bytes): the `cnf` to ask the server to bind the token to.
    pub fn public_b64(&self) -> String {
        b64::encode(self.pair.pk.as_ref())
    }

    /// Sign the proof of possession for `token` at `gateway`, answering challenge `nonce`.
    /// Returns the signature as base64url.
    pub fn sign_pop(&self, nonce: &[u8; 32], token: &str, gateway: &str) -> String {
        let signature = self.pair.sk.sign(pop_message(nonce, token, gateway), None);
        b64::encode(signature.as_ref())
    }
}

/// Check a proof of possession against the token's confirmation key. `claims` must come from
/// [`crate::Verifier::verify`] of the same `token`, and `gateway` is the verifying gateway's id.
pub fn verify_pop(
    claims: &GrantClaims,
    nonce: &[u8; 32],
    token: &str,
    gateway: &str,
    signature_b64: &str,
) -> Result<(), CredentialError> {
    if claims.audience != gateway {
        return Err(CredentialError::WrongAudience {
            expected: gateway.to_string(),
            actual: claims.audience.clone(),
        });
    }
    if signature_b64.len() > MAX_SIGNATURE_B64_LEN {
        return Err(CredentialError::BadPopSignature);
    }
    let bytes = b64::decode_exact::<64>(signature_b64).ok_or(CredentialError::BadPopSignature)?;
    let signature = Signature::new(bytes);
    claims
        .cnf_key()?
        .verify(pop_message(nonce, token, gateway), &signature)
        .map_err(|_| CredentialError::BadPopSignature)
}

/// `PAE(POP_DOMAIN, nonce, SHA-256(token), gateway)`.
fn pop_message(nonce: &[u8; 32], token: &str, gateway: &str) -> Vec<u8> {
    let token_hash = Sha256::digest(token.as_bytes());
    pae(&[
        POP_DOMAIN.as_bytes(),
        nonce,
        token_hash.as_slice(),
        gateway.as_bytes(),
    ])
}

/// PASETO's pre-authentication encoding: piece count, then each piece's length and bytes,
/// lengths as 64-bit little-endian with the top bit clear.
fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    fn le64(n: usize) -> [u8; 8] {
        ((n as u64) & (u64::MAX >> 1)).to_le_bytes()
    }
    let mut out = Vec::with_capacity(8 + pieces.iter().map(|p| 8 + p.len()).sum::<usize>());
    out.extend_from_slice(&le64(pieces.len()));
    for piece in pieces {
        out.extend_from_slice(&le64(piece.len()));
        out.extend_from_slice(piece);
    }
    out
}

/// Challenges a gateway issued and has not yet seen answered.
///
/// Each nonce can be consumed once, within `ttl` of its issue. Memory is bounded: at most
/// `max_entries` outstanding challenges; beyond that the oldest is forgotten (its client must
/// ask again), so a flood of connection attempts cannot grow the gateway without limit.
#[derive(Debug)]
pub struct NonceCache {
    ttl: Duration,
    max_entries: usize,
    /// nonce → (issue sequence, issued at)
    live: HashMap<[u8; 32], (u64, Timestamp)>,
    /// issue sequence → nonce, oldest first, for expiry and eviction.
    order: BTreeMap<u64, [u8; 32]>,
    next_seq: u64,
}

impl NonceCache {
    /// A cache whose challenges live `ttl` (e.g. 30 s) and of which at most `max_entries`
    /// (at least 1) are outstanding.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        NonceCache {
            ttl,
            max_entries: max_entries.max(1),
            live: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Issue and remember a fresh challenge.
    pub fn issue(&mut self, now: Timestamp) -> Challenge {
        self.purge(now);
        while self.live.len() >= self.max_entries {
            match self.order.pop_first() {
                Some((_, nonce)) => {
                    self.live.remove(&nonce);
                }
                None => break,
            }
        }
        let challenge = Challenge::new(now);
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.live.insert(challenge.nonce, (seq, now));
        self.order.insert(seq, challenge.nonce);
        challenge
    }

    /// Use up `nonce`. Unknown, already used, or evicted nonces are `nonce_unknown_or_replayed`;
    /// ones older than the ttl are `challenge_expired`. Either way the nonce is gone afterwards.
    pub fn consume(&mut self, nonce: &[u8; 32], now: Timestamp) -> Result<(), CredentialError> {
        let (seq, issued_at) = self
            .live
            .remove(nonce)
            .ok_or(CredentialError::NonceUnknownOrReplayed)?;
        self.order.remove(&seq);
        if now >= issued_at + self.ttl {
            return Err(CredentialError::ChallengeExpired { issued_at });
        }
        Ok(())
    }

    /// Outstanding challenges (for metrics and tests).
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Drop challenges past their ttl, oldest first.
    fn purge(&mut self, now: Timestamp) {
        while let Some((&seq, nonce)) = self.order.first_key_value() {
            let expired = self
                .live
                .get(nonce)
                .is_none_or(|(_, issued_at)| now >= *issued_at + self.ttl);
            if !expired {
                break;
            }
            let nonce = *nonce;
            self.order.remove(&seq);
            self.live.remove(&nonce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_paseto_reference_vectors() {
        // From the PASETO specification (Common.md, PAE).
        assert_eq!(hex::encode(pae(&[])), "0000000000000000");
        assert_eq!(hex::encode(pae(&[b""])), "01000000000000000000000000000000");
        assert_eq!(
            hex::encode(pae(&[b"test"])),
            "0100000000000000040000000000000074657374"
        );
    }

    #[test]
    fn nonce_is_single_use() {
        let now = chrono::Utc::now();
        let mut cache = NonceCache::new(Duration::seconds(30), 8);
        let c = cache.issue(now);
        cache.consume(&c.nonce, now).unwrap();
        assert_eq!(
            cache.consume(&c.nonce, now).unwrap_err().code(),
            "nonce_unknown_or_replayed"
        );
        assert_eq!(
            cache.consume(&[7u8; 32], now).unwrap_err().code(),
            "nonce_unknown_or_replayed"
        );
    }

    #[test]
    fn nonce_expires() {
        let now = chrono::Utc::now();
        let mut cache = NonceCache::new(Duration::seconds(30), 8);
        let c = cache.issue(now);
        let err = cache
            .consume(&c.nonce, now + Duration::seconds(30))
            .unwrap_err();
        assert_eq!(err.code(), "challenge_expired");
        // Expired nonces are purged on the next issue, not kept forever.
        let _ = cache.issue(now);
        let _ = cache.issue(now + Duration::seconds(31));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn memory_is_bounded_and_oldest_goes_first() {
        let now = chrono::Utc::now();
        let mut cache = NonceCache::new(Duration::seconds(30), 3);
        let first = cache.issue(now);
        let rest: Vec<Challenge> = (0..10).map(|_| cache.issue(now)).collect();
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.order.len(), 3);
        assert!(cache.consume(&first.nonce, now).is_err());
        cache.consume(&rest[9].nonce, now).unwrap();
    }

    #[test]
    fn nonce_b64_round_trips() {
        let c = Challenge::new(chrono::Utc::now());
        assert_eq!(Challenge::parse_nonce(&c.nonce_b64()).unwrap(), c.nonce);
        assert!(Challenge::parse_nonce("AAAA").is_err());
    }
}
