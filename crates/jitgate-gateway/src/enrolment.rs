//! The gateway's client certificate (mutual TLS to the server), shared by both sides.
//!
//! A gateway makes its own key pair (it never leaves `state_dir`, 0600) and sends a
//! certificate signing request to `POST /api/v1/gateway/enrol`. The server signs a
//! certificate with its gateway CA naming the gateway's identity as the URI
//! `urn:jitgate:gateway:<identity>` (whatever names the request asked for), and records its
//! fingerprint. The rules for accepting calls and renewals are in
//! `jitgate_core::gateway_enrolment`.

use crate::tls::{fingerprint, TlsError};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use utoipa::ToSchema;

/// The SAN URI prefix naming a gateway identity in its client certificate.
pub const IDENTITY_URI_PREFIX: &str = "urn:jitgate:gateway:";
/// The client certificate, in the gateway's state directory.
pub const CERT_FILE: &str = "client-cert.pem";
/// Its private key (0600).
pub const KEY_FILE: &str = "client-key.pem";

/// `POST /gateway/enrol`: a certificate signing request (PEM, PKCS#10).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub csr: String,
}

/// The certificate the server issued.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Enrolled {
    pub gateway_id: String,
    /// PEM certificate, signed by the server's gateway CA.
    pub certificate: String,
    /// `sha256:<hex>` of the certificate (DER).
    pub fingerprint: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// `first` (by API key alone) or `renewal` (with the current certificate).
    #[schema(value_type = String, example = "first")]
    pub kind: jitgate_core::gateway_enrolment::EnrolmentKind,
}

/// The identity a certificate names (`urn:jitgate:gateway:<id>`), if exactly one.
pub fn certificate_gateway(cert: &CertificateDer<'_>) -> Option<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
    let san = parsed.subject_alternative_name().ok()??;
    let mut ids = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::URI(uri) => uri.strip_prefix(IDENTITY_URI_PREFIX),
        _ => None,
    });
    let id = ids.next()?;
    // Two identities in one certificate would be ambiguous: accept neither.
    if ids.next().is_some() || id.is_empty() {
        return None;
    }
    Some(id.to_string())
}

/// `(not_before, not_after)` of a certificate, Unix seconds.
pub fn validity(cert: &CertificateDer<'_>) -> Option<(i64, i64)> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
    Some((
        parsed.validity().not_before.timestamp(),
        parsed.validity().not_after.timestamp(),
    ))
}

/// A new key pair and a certificate signing request for it: (key PEM, CSR PEM).
pub fn new_request(gateway: &str) -> Result<(String, String), TlsError> {
    let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, gateway);
    let csr = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((key.serialize_pem(), csr))
}

/// The gateway's enrolled client identity, as loaded from its state directory.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub certs: Vec<CertificateDer<'static>>,
    key_pem: String,
    pub fingerprint: String,
    pub not_before: i64,
    pub not_after: i64,
}

impl ClientIdentity {
    pub fn key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        rustls_pemfile::private_key(&mut self.key_pem.as_bytes())
            .ok()
            .flatten()
            .ok_or(TlsError::NoPem {
                path: KEY_FILE.into(),
                what: "private key",
            })
    }

    /// Renew once less than a third of the lifetime remains (or it has expired).
    pub fn due_for_renewal(&self, now_unix: i64) -> bool {
        let third = (self.not_after - self.not_before).max(0) / 3;
        now_unix >= self.not_after - third
    }
}

fn paths(state_dir: &Path) -> (PathBuf, PathBuf) {
    (state_dir.join(CERT_FILE), state_dir.join(KEY_FILE))
}

/// Load the enrolled certificate and key, if the state directory holds them.
pub fn load(state_dir: &Path) -> Result<Option<ClientIdentity>, TlsError> {
    let (cert_path, key_path) = paths(state_dir);
    if !cert_path.exists() || !key_path.exists() {
        return Ok(None);
    }
    let (certs, _) = crate::tls::load_pem(&cert_path, &key_path)?;
    let key_pem = std::fs::read_to_string(&key_path).map_err(|source| TlsError::Read {
        path: key_path.display().to_string(),
        source,
    })?;
    identity(certs, key_pem).map(Some)
}

fn identity(
    certs: Vec<CertificateDer<'static>>,
    key_pem: String,
) -> Result<ClientIdentity, TlsError> {
    let first = certs.first().ok_or(TlsError::NoPem {
        path: CERT_FILE.into(),
        what: "certificate",
    })?;
    let (not_before, not_after) = validity(first)
        .ok_or_else(|| TlsError::Config(format!("{CERT_FILE}: not a readable certificate")))?;
    Ok(ClientIdentity {
        fingerprint: fingerprint(first),
        certs,
        key_pem,
        not_before,
        not_after,
    })
}

/// Store a newly issued certificate with its key. Each file is written aside and renamed
/// into place, so neither is ever half-written; a crash between the two renames leaves a
/// key that does not match the certificate, which the next start reports (the operator then
/// resets the enrolment).
pub fn save(state_dir: &Path, key_pem: &str, cert_pem: &str) -> Result<ClientIdentity, TlsError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .filter_map(Result::ok)
        .collect();
    let identity = identity(certs, key_pem.to_string())?;
    let (cert_path, key_path) = paths(state_dir);
    write_replacing(&key_path, key_pem.as_bytes())?;
    write_replacing(&cert_path, cert_pem.as_bytes())?;
    Ok(identity)
}

fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let tmp = path.with_extension("pem.new");
    let fail = |source| TlsError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut f = crate::private::options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_naming(uris: &[&str]) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = uris
            .iter()
            .map(|u| rcgen::SanType::URI(rcgen::Ia5String::try_from(*u).unwrap()))
            .collect();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn the_identity_is_read_from_exactly_one_gateway_uri() {
        let one = cert_naming(&["urn:jitgate:gateway:gw-north"]);
        assert_eq!(certificate_gateway(&one).as_deref(), Some("gw-north"));
        let two = cert_naming(&["urn:jitgate:gateway:a", "urn:jitgate:gateway:b"]);
        assert_eq!(certificate_gateway(&two), None);
        let other = cert_naming(&["https://example.org/gw"]);
        assert_eq!(certificate_gateway(&other), None);
        let empty = cert_naming(&["urn:jitgate:gateway:"]);
        assert_eq!(certificate_gateway(&empty), None);
    }

    #[test]
    fn renewal_is_due_in_the_last_third() {
        let id = ClientIdentity {
            certs: vec![],
            key_pem: String::new(),
            fingerprint: String::new(),
            not_before: 0,
            not_after: 90,
        };
        assert!(!id.due_for_renewal(59));
        assert!(id.due_for_renewal(60));
        assert!(id.due_for_renewal(1000));
    }

    #[test]
    fn saved_identities_load_back_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["gw".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let saved = save(dir.path(), &key.serialize_pem(), &cert.pem()).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        assert_eq!(saved.fingerprint, loaded.fingerprint);
        assert!(loaded.key().is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
