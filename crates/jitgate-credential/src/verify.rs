//! Gateway-side verification of grant tokens, offline, from the server's public keys.
//!
//! [`Verifier::verify`] is the parser of untrusted bytes for credentials: it refuses anything
//! over [`MAX_TOKEN_LEN`] before looking inside, reads only the footer before the signature is
//! checked (to pick the key), and parses the claims only after the signature holds. The order
//! of checks is fixed and documented in `docs/credentials.md`.

use crate::claims::GrantClaims;
use crate::keyring::{paserk_id, PublicKeyInfo};
use crate::{b64, CredentialError, Timestamp, TOKEN_PURPOSE};
use chrono::Duration;
use pasetors::keys::AsymmetricPublicKey;
use pasetors::token::UntrustedToken;
use pasetors::version4::{PublicToken, V4};
use pasetors::Public;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Longest token accepted (16 KiB). Real tokens are 1-3 KiB; the limit bounds the work an
/// unauthenticated peer can cause before the signature check.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Longest footer accepted: `{"kid":"k4.pid.<44 chars>"}` is 61 bytes.
const MAX_FOOTER_LEN: usize = 256;

const HEADER: &str = "v4.public.";

/// Verifies grant tokens against a set of public keys. Cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: HashMap<String, VerifyKey>,
    leeway: Duration,
}

#[derive(Debug, Clone)]
struct VerifyKey {
    key: AsymmetricPublicKey<V4>,
    retire_at: Option<Timestamp>,
    /// Retired at once by the server's order (emergency retirement), whatever the clock says.
    retired: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Footer {
    kid: String,
}

impl Verifier {
    /// A verifier for `keys` (as served by the server). Each key must be a valid Ed25519 public
    /// key whose PASERK id is its `kid`, so a tampered key list cannot map an id to another key.
    pub fn new(keys: &[PublicKeyInfo]) -> Result<Verifier, CredentialError> {
        let mut map = HashMap::with_capacity(keys.len());
        for info in keys {
            let bad = |reason: &str| CredentialError::InvalidPublicKey {
                kid: info.kid.clone(),
                reason: reason.to_string(),
            };
            let bytes = b64::decode_exact::<32>(&info.public_key)
                .ok_or_else(|| bad("not 32 bytes of base64url"))?;
            ed25519_compact::PublicKey::new(bytes)
                .validate()
                .map_err(|_| bad("not a valid Ed25519 public key"))?;
            let key = AsymmetricPublicKey::<V4>::from(&bytes)
                .map_err(|_| bad("rejected by PASETO v4"))?;
            if paserk_id(&key).map_err(|e| bad(&e))? != info.kid {
                return Err(bad("the kid is not the PASERK id of this public key"));
            }
            map.insert(
                info.kid.clone(),
                VerifyKey {
                    key,
                    retire_at: info.retire_at,
                    retired: false,
                },
            );
        }
        Ok(Verifier {
            keys: map,
            leeway: Duration::zero(),
        })
    }

    /// Accept tokens up to `leeway` before `nbf` and after `exp` (clock skew between server
    /// and gateway). Default: none. Negative values count as none.
    pub fn with_leeway(mut self, leeway: Duration) -> Verifier {
        self.leeway = leeway.max(Duration::zero());
        self
    }

    /// Check `token` for gateway `expected_gateway` at `now` and return its claims.
    ///
    /// Order: length, `v4.public.` header, token structure, footer kid known and not retired,
    /// signature with the implicit assertion, claims JSON, audience, validity window, claim
    /// consistency (scope items on the named assets, valid confirmation key).
    pub fn verify(
        &self,
        token: &str,
        expected_gateway: &str,
        now: Timestamp,
    ) -> Result<GrantClaims, CredentialError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(CredentialError::TokenTooLong {
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        if !token.starts_with(HEADER) {
            return Err(malformed("it does not start with `v4.public.`"));
        }
        // PASETO's footer is optional; ours always names the key, so three parts are malformed.
        if token.split('.').count() != 4 {
            return Err(malformed(
                "expected four dot-separated parts (version, purpose, payload, footer)",
            ));
        }
        let untrusted = UntrustedToken::<Public, V4>::try_from(token)
            .map_err(|e| malformed(&format!("not a PASETO v4.public token ({e:?})")))?;

        let footer = untrusted.untrusted_footer();
        if footer.len() > MAX_FOOTER_LEN {
            return Err(malformed("footer too long"));
        }
        let footer: Footer =
            serde_json::from_slice(footer).map_err(|_| malformed("footer is not {\"kid\": …}"))?;
        let key = self
            .keys
            .get(&footer.kid)
            .ok_or_else(|| CredentialError::UnknownKey {
                kid: printable(&footer.kid),
            })?;
        if key.retired || key.retire_at.is_some_and(|t| now >= t) {
            return Err(CredentialError::KeyRetired {
                kid: printable(&footer.kid),
            });
        }

        let trusted =
            PublicToken::verify(&key.key, &untrusted, None, Some(TOKEN_PURPOSE.as_bytes()))
                .map_err(|_| CredentialError::BadSignature)?;

        let claims: GrantClaims = serde_json::from_str(trusted.payload())
            .map_err(|e| CredentialError::BadClaims(format!("payload is not grant claims: {e}")))?;

        if claims.audience != expected_gateway {
            return Err(CredentialError::WrongAudience {
                expected: expected_gateway.to_string(),
                actual: claims.audience,
            });
        }
        if claims.expires_at <= claims.not_before {
            return Err(CredentialError::BadClaims("exp must be after nbf".into()));
        }
        if now + self.leeway < claims.not_before {
            return Err(CredentialError::NotYetValid {
                not_before: claims.not_before,
            });
        }
        if now >= claims.expires_at + self.leeway {
            return Err(CredentialError::Expired {
                expires_at: claims.expires_at,
            });
        }
        claims.check_consistent()?;
        Ok(claims)
    }

    /// Refuse every token signed by `kid` from now on, whatever its `retire_at` says (the
    /// server retired the key in an emergency). Returns whether the key was known.
    pub fn retire(&mut self, kid: &str) -> bool {
        match self.keys.get_mut(kid) {
            Some(k) => {
                k.retired = true;
                true
            }
            None => false,
        }
    }

    /// Key ids this verifier knows (for the gateway's status report).
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.keys.keys().cloned().collect();
        kids.sort();
        kids
    }
}

fn malformed(reason: &str) -> CredentialError {
    CredentialError::TokenMalformed(reason.to_string())
}

/// The kid goes into error messages and evidence; keep it short and printable whatever the
/// (still unauthenticated) footer held.
fn printable(kid: &str) -> String {
    kid.chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// The key id a token's footer names, or `None` if the token has no readable footer. Only
/// meaningful for a token that [`Verifier::verify`] accepted (before that the footer is
/// untrusted text); the gateway uses it to find the live sessions of a retired key.
pub fn token_kid(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let untrusted = UntrustedToken::<Public, V4>::try_from(token).ok()?;
    let footer = untrusted.untrusted_footer();
    if footer.len() > MAX_FOOTER_LEN {
        return None;
    }
    serde_json::from_slice::<Footer>(footer).ok().map(|f| f.kid)
}

/// `sha256:<hex>` of a token, for evidence and logs: it identifies the token without being
/// usable as one (never log tokens themselves).
pub fn token_fingerprint(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(
            token_fingerprint(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let v = Verifier::new(&[]).unwrap();
        let now = chrono::Utc::now();
        for t in [
            "",
            ".",
            "v4.public.",
            "v4.public..",
            "v4.public...",
            "v4.public.AAAA.AAAA",
            "v4.public.!!!!.e30",
            "v4.local.AAAA.AAAA",
            "v4.public.AAAA.e30.x",
        ] {
            let err = v.verify(t, "gw", now).unwrap_err();
            assert_eq!(err.code(), "token_malformed", "{t:?}: {err}");
        }
    }

    #[test]
    fn printable_kid_is_bounded() {
        assert_eq!(printable(&"x\n".repeat(100)).len(), 64);
        assert!(!printable("a\nb").contains('\n'));
    }
}
