//! The subject's OpenSSH user certificate, as the gateway checks it (docs/gateway.md,
//! "SSH"). russh has already checked that the client holds the certified key (its
//! signature over the session) and that the certificate's own signature is sound; this
//! decides whether the certificate is one of jitgate's and what it claims. Pure: the CA
//! keys and the time are given.

use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::{Certificate, HashAlg, PublicKey};

/// What a valid certificate claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCertClaim {
    /// The key id: the grant id.
    pub grant_id: String,
    /// The one principal: the subject's identity id.
    pub subject: String,
    pub serial: u64,
    /// `SHA256:…` of the certified key (as the server's `credential.issued` records it).
    pub key_fingerprint: String,
    /// `SHA256:…` of the CA key that signed it.
    pub ca_fingerprint: String,
    /// Unix seconds.
    pub valid_before: u64,
}

/// Why a certificate is refused: a stable code and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRefusal {
    pub code: &'static str,
    pub message: String,
}

fn no(code: &'static str, message: impl Into<String>) -> CertRefusal {
    CertRefusal {
        code,
        message: message.into(),
    }
}

/// The user CA keys of the gateway's setup (OpenSSH lines); lines that do not parse are
/// skipped (and reported by the caller).
pub fn parse_ca_keys(lines: &[String]) -> (Vec<KeyData>, Vec<String>) {
    let mut keys = Vec::new();
    let mut bad = Vec::new();
    for line in lines {
        match PublicKey::from_openssh(line.trim()) {
            Ok(k) => keys.push(k.key_data().clone()),
            Err(e) => bad.push(format!("{line:?}: {e}")),
        }
    }
    (keys, bad)
}

/// Longest key id and principal a certificate may carry (grant and identity ids are far
/// shorter); longer ones are refused before they reach an event.
const MAX_ID: usize = 128;

/// Check `cert` at `now` (Unix seconds) against the user CA keys.
///
/// - a user certificate (not a host certificate), signed by one of `ca_keys`;
/// - valid now by the gateway's clock (its own check, whatever the client's clock says);
/// - exactly one principal (an empty list means "anyone" to OpenSSH: refused) and a key
///   id, both short printable ids;
/// - no critical option but `force-command` (which jitgate sets for a sole `command`
///   scope, enforced here by the scope itself); an unknown critical option must make a
///   certificate unusable (PROTOCOL.certkeys), so it is refused.
pub fn check_user_certificate(
    cert: &Certificate,
    ca_keys: &[KeyData],
    now: u64,
) -> Result<UserCertClaim, CertRefusal> {
    if cert.cert_type() != CertType::User {
        return Err(no(
            "not_a_user_certificate",
            "the certificate is a host certificate; present the user certificate jitgate issued for the grant",
        ));
    }
    let ca = cert.signature_key();
    if !ca_keys.iter().any(|k| k == ca) {
        return Err(no(
            "unknown_ca",
            format!(
                "the certificate is signed by {}, which is not jitgate's SSH user CA; obtain one with `jitgate ssh cert <grant>`",
                ca.fingerprint(HashAlg::Sha256)
            ),
        ));
    }
    // The signature again, now that the CA is known to be ours (russh checked it too).
    if cert.verify_signature().is_err() {
        return Err(no(
            "bad_certificate",
            "the certificate's signature is invalid",
        ));
    }
    if now < cert.valid_after() {
        return Err(no(
            "certificate_not_yet_valid",
            "the certificate is not valid yet (check the clocks)",
        ));
    }
    if now >= cert.valid_before() {
        return Err(no(
            "certificate_expired",
            "the certificate has expired; obtain a fresh one (`jitgate ssh` makes one per run)",
        ));
    }
    let principal =
        match cert.valid_principals() {
            [one] if is_id(one) => one.clone(),
            [] => return Err(no(
                "bad_certificate",
                "the certificate names no principal; jitgate certificates name the grant's subject",
            )),
            _ => {
                return Err(no(
                    "bad_certificate",
                    "the certificate must name exactly one principal, the grant's subject",
                ))
            }
        };
    let key_id = cert.key_id();
    if !is_id(key_id) {
        return Err(no(
            "bad_certificate",
            "the certificate's key id is not a grant id",
        ));
    }
    if let Some(option) = cert
        .critical_options()
        .keys()
        .find(|k| k.as_str() != "force-command")
    {
        return Err(no(
            "bad_certificate",
            format!(
                "the certificate carries the critical option {option:?}, which jitgate never sets"
            ),
        ));
    }
    Ok(UserCertClaim {
        grant_id: key_id.to_string(),
        subject: principal,
        serial: cert.serial(),
        key_fingerprint: cert.public_key().fingerprint(HashAlg::Sha256).to_string(),
        ca_fingerprint: ca.fingerprint(HashAlg::Sha256).to_string(),
        valid_before: cert.valid_before(),
    })
}

/// A short id of letters, digits, `-`, `_`, `.`, `@` (grant and identity ids).
fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::ssh_key::certificate::Builder;
    use russh::keys::ssh_key::PrivateKey;

    const NOW: u64 = 1_800_000_000;

    fn key() -> PrivateKey {
        crate::ssh::keys::new_ed25519()
    }

    fn cert_with(ca: &PrivateKey, user: &PrivateKey, f: impl FnOnce(&mut Builder)) -> Certificate {
        cert_of_type(ca, user, CertType::User, f)
    }

    fn cert_of_type(
        ca: &PrivateKey,
        user: &PrivateKey,
        ty: CertType,
        f: impl FnOnce(&mut Builder),
    ) -> Certificate {
        let mut b = Builder::new(
            [7u8; 32].to_vec(),
            user.public_key().key_data().clone(),
            NOW - 60,
            NOW + 3600,
        )
        .unwrap();
        b.serial(7).unwrap();
        b.key_id("grant-abc").unwrap();
        b.cert_type(ty).unwrap();
        b.valid_principal("alice").unwrap();
        f(&mut b);
        b.sign(ca).unwrap()
    }

    #[test]
    fn a_certificate_of_the_user_ca_names_grant_and_subject() {
        let (ca, user) = (key(), key());
        let cas = vec![ca.public_key().key_data().clone()];
        let c = check_user_certificate(&cert_with(&ca, &user, |_| {}), &cas, NOW).unwrap();
        assert_eq!(c.grant_id, "grant-abc");
        assert_eq!(c.subject, "alice");
        assert_eq!(c.serial, 7);
        assert!(c.key_fingerprint.starts_with("SHA256:"));
    }

    #[test]
    fn refusals() {
        let (ca, user, other_ca) = (key(), key(), key());
        let cas = vec![ca.public_key().key_data().clone()];
        let code = |c: &Certificate, now| check_user_certificate(c, &cas, now).unwrap_err().code;
        assert_eq!(
            code(&cert_with(&other_ca, &user, |_| {}), NOW),
            "unknown_ca"
        );
        assert_eq!(
            code(&cert_with(&ca, &user, |_| {}), NOW + 3600),
            "certificate_expired"
        );
        assert_eq!(
            code(&cert_with(&ca, &user, |_| {}), NOW - 61),
            "certificate_not_yet_valid"
        );
        let host = cert_of_type(&ca, &user, CertType::Host, |_| {});
        assert_eq!(code(&host, NOW), "not_a_user_certificate");
        let two = cert_with(&ca, &user, |b| {
            b.valid_principal("bob").unwrap();
        });
        assert_eq!(code(&two, NOW), "bad_certificate");
        let opt = cert_with(&ca, &user, |b| {
            b.critical_option("source-address", "10.0.0.0/8").unwrap();
        });
        assert_eq!(code(&opt, NOW), "bad_certificate");
        let forced = cert_with(&ca, &user, |b| {
            b.critical_option("force-command", "uptime").unwrap();
        });
        assert!(check_user_certificate(&forced, &cas, NOW).is_ok());
        // No CA configured: nothing is accepted.
        assert_eq!(
            check_user_certificate(&cert_with(&ca, &user, |_| {}), &[], NOW)
                .unwrap_err()
                .code,
            "unknown_ca"
        );
    }

    #[test]
    fn ca_lines_parse() {
        let ca = key();
        let line = ca.public_key().to_openssh().unwrap();
        let (keys, bad) = parse_ca_keys(&[line, "nonsense".into()]);
        assert_eq!(keys.len(), 1);
        assert_eq!(bad.len(), 1);
    }
}
