//! The CA that issues gateways their client certificates (mutual TLS), kept in
//! `<data_dir>/tls/gateway-ca-{cert,key}.pem` (0600; generated on the first start with TLS,
//! whether the server's own certificate comes from files or is generated), and the record of
//! each gateway's current certificate (the `settings` row `gateway/<id>/client_cert`).
//!
//! Certificates name the gateway only as the URI `urn:jitgate:gateway:<identity>`: the names
//! a signing request asks for are ignored, so a gateway cannot obtain a certificate for
//! another identity or for a server name.

use crate::files::{private_dir, write_private};
use jitgate_core::Timestamp;
use jitgate_gateway::enrolment::IDENTITY_URI_PREFIX;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File names in `data_dir/tls/`.
pub const CA_CERT_FILE: &str = "gateway-ca-cert.pem";
pub const CA_KEY_FILE: &str = "gateway-ca-key.pem";

/// The gateway CA, loaded.
pub struct GatewayCa {
    issuer: rcgen::Certificate,
    key: rcgen::KeyPair,
    /// The CA certificate as stored (what the TLS layer trusts client certificates to).
    pub cert: CertificateDer<'static>,
    pub cert_file: PathBuf,
}

/// A certificate issued to a gateway.
#[derive(Debug, Clone)]
pub struct Issued {
    pub pem: String,
    pub fingerprint: String,
    pub serial: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

/// What the server remembers of a gateway's current certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentRecord {
    pub fingerprint: String,
    pub serial: String,
    #[serde(with = "jitgate_core::event::millis")]
    pub not_after: Timestamp,
    #[serde(with = "jitgate_core::event::millis")]
    pub enrolled_at: Timestamp,
}

/// When each gateway's client-certificate refusal was last recorded, so that a gateway
/// retrying with backoff does not write an event every few seconds.
#[derive(Debug, Default)]
pub struct RefusalWindow {
    seen: std::sync::Mutex<
        std::collections::HashMap<
            (String, jitgate_core::gateway_enrolment::RefusalReason),
            Timestamp,
        >,
    >,
}

impl RefusalWindow {
    /// Is this the first refusal of `identity` for `reason` in the last `window_secs`?
    pub fn first_in_window(
        &self,
        identity: &str,
        reason: jitgate_core::gateway_enrolment::RefusalReason,
        now: Timestamp,
        window_secs: i64,
    ) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: entries past their window are dropped when the map grows.
        if seen.len() > 4096 {
            seen.retain(|_, at| (now - *at).num_seconds() < window_secs);
        }
        let key = (identity.to_string(), reason);
        match seen.get(&key) {
            Some(at) if (now - *at).num_seconds() < window_secs => false,
            _ => {
                seen.insert(key, now);
                true
            }
        }
    }
}

/// The `settings` key of a gateway's record.
pub fn record_key(gateway: &str) -> String {
    format!("gateway/{gateway}/client_cert")
}

/// A CA generated in the data directory: fixed name and validity, so its certificate can be
/// rebuilt from its key to sign with (the server CA and the gateway CA both use this).
pub fn ca_params(common_name: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2125, 1, 1);
    params
}

impl GatewayCa {
    /// Load the CA from `tls_dir`, or create it there.
    pub fn load_or_generate(tls_dir: &Path) -> Result<GatewayCa, String> {
        let cert_file = tls_dir.join(CA_CERT_FILE);
        let key_file = tls_dir.join(CA_KEY_FILE);
        let fail = |what: &str, e: String| format!("[tls] gateway CA: {what}: {e}");
        let key = if key_file.exists() {
            let pem = std::fs::read_to_string(&key_file)
                .map_err(|e| fail(&key_file.display().to_string(), e.to_string()))?;
            rcgen::KeyPair::from_pem(&pem)
                .map_err(|e| fail(&key_file.display().to_string(), e.to_string()))?
        } else {
            private_dir(tls_dir).map_err(|e| fail("directory", e.to_string()))?;
            let key = rcgen::KeyPair::generate().map_err(|e| fail("key", e.to_string()))?;
            write_private(&key_file, key.serialize_pem().as_bytes())
                .map_err(|e| fail(&key_file.display().to_string(), e.to_string()))?;
            key
        };
        // The certificate is rebuilt from fixed parameters and the key: the same name and
        // key every time, so certificates issued before still chain to it.
        let issuer = ca_params("jitgate gateway CA")
            .self_signed(&key)
            .map_err(|e| fail("certificate", e.to_string()))?;
        if !cert_file.exists() {
            write_private(&cert_file, issuer.pem().as_bytes())
                .map_err(|e| fail(&cert_file.display().to_string(), e.to_string()))?;
        }
        // Trust the stored certificate (the one gateways' certificates were issued under).
        let stored = std::fs::read(&cert_file)
            .map_err(|e| fail(&cert_file.display().to_string(), e.to_string()))?;
        let cert = rustls_pemfile::certs(&mut stored.as_slice())
            .find_map(Result::ok)
            .ok_or_else(|| fail(&cert_file.display().to_string(), "no certificate".into()))?;
        Ok(GatewayCa {
            issuer,
            key,
            cert,
            cert_file,
        })
    }

    /// Sign `csr_pem`'s public key into a client certificate for `gateway`, valid from
    /// `now` (less five minutes of clock skew) for `lifetime`.
    pub fn issue(
        &self,
        csr_pem: &str,
        gateway: &str,
        now: Timestamp,
        lifetime: chrono::Duration,
    ) -> Result<Issued, String> {
        let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| {
            format!("csr is not a PEM certificate signing request with a valid signature: {e}")
        })?;
        let uri = format!("{IDENTITY_URI_PREFIX}{gateway}");
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, gateway);
        params.subject_alt_names = vec![rcgen::SanType::URI(
            rcgen::Ia5String::try_from(uri.as_str())
                .map_err(|e| format!("gateway id {gateway:?} cannot be named in a URI: {e}"))?,
        )];
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let serial: [u8; 16] = rand::random();
        // A positive serial: clear the top bit.
        let mut serial = serial.to_vec();
        if let Some(b) = serial.first_mut() {
            *b &= 0x7f;
        }
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let not_before = now - chrono::Duration::minutes(5);
        let not_after = now + lifetime;
        params.not_before = to_offset(not_before)?;
        params.not_after = to_offset(not_after)?;
        let cert = params
            .signed_by(&csr.public_key, &self.issuer, &self.key)
            .map_err(|e| format!("signing the certificate: {e}"))?;
        Ok(Issued {
            pem: cert.pem(),
            fingerprint: jitgate_gateway::tls::fingerprint(cert.der()),
            serial: hex::encode(serial),
            not_before,
            not_after,
        })
    }
}

fn to_offset(t: Timestamp) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn issued_certificates_name_only_the_gateway_and_chain_to_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = GatewayCa::load_or_generate(&dir.path().join("tls")).unwrap();
        // The request asks for a server name and another gateway: both are ignored.
        let key = rcgen::KeyPair::generate().unwrap();
        let mut asked = rcgen::CertificateParams::new(vec!["jitgate.example".into()]).unwrap();
        asked.subject_alt_names.push(rcgen::SanType::URI(
            rcgen::Ia5String::try_from("urn:jitgate:gateway:gw-south").unwrap(),
        ));
        let csr = asked.serialize_request(&key).unwrap().pem().unwrap();
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        let issued = ca
            .issue(&csr, "gw-north", now, chrono::Duration::days(90))
            .unwrap();
        let der = rustls_pemfile::certs(&mut issued.pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            jitgate_gateway::enrolment::certificate_gateway(&der).as_deref(),
            Some("gw-north")
        );
        let (nb, na) = jitgate_gateway::enrolment::validity(&der).unwrap();
        assert_eq!(na, (now + chrono::Duration::days(90)).timestamp());
        assert!(nb < now.timestamp());
        // rustls' own client-certificate verifier accepts it under the CA.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert.clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            jitgate_gateway::tls::provider(),
        )
        .build()
        .unwrap();
        let at = rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            (now.timestamp() + 60) as u64,
        ));
        verifier.verify_client_cert(&der, &[], at).unwrap();
        // Reloading gives the same CA (certificates issued before keep chaining).
        let again = GatewayCa::load_or_generate(&dir.path().join("tls")).unwrap();
        assert_eq!(again.cert, ca.cert);
    }

    #[test]
    fn a_request_with_a_bad_signature_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = GatewayCa::load_or_generate(dir.path()).unwrap();
        let now = chrono::Utc::now();
        let e = ca
            .issue("not a csr", "gw", now, chrono::Duration::days(1))
            .unwrap_err();
        assert!(e.contains("certificate signing request"), "{e}");
    }
}
