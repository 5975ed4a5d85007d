//! Gateways authenticate to the server with a client certificate bound to their identity
//! (mutual TLS) as well as their API key: these are the rules for accepting a gateway's call
//! and its (re-)enrolment.
//!
//! A gateway enrols once with its API key alone (first enrolment: the server has no
//! certificate on record for it) and receives a certificate naming its identity. From then
//! on the record holds that certificate's fingerprint, and:
//!
//! - a gateway's call is accepted only with the certificate on record (when certificates
//!   are `required`, the server's default with TLS on): a stolen API key is useless without
//!   the private key, which never leaves the gateway host;
//! - renewing needs the certificate on record; enrolling again with the API key alone is
//!   refused until an administrator resets the enrolment (a stolen key cannot replace the
//!   real gateway's certificate with the thief's own);
//! - a certificate naming another identity than the credentials is refused for every
//!   caller, gateway or not.

use serde::{Deserialize, Serialize};

/// `[tls] gateway_client_certs`: must gateways present their certificate?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientCertMode {
    /// Every call of a gateway identity needs its enrolled certificate (except the first
    /// enrolment itself).
    #[default]
    Required,
    /// Gateways without a certificate are accepted on their API key alone; a presented
    /// certificate must still be the one on record.
    Optional,
}

/// What the TLS layer verified: a certificate chaining to the server's gateway CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCert {
    /// The gateway identity the certificate names.
    pub gateway: String,
    /// `sha256:<hex>` of the certificate.
    pub fingerprint: String,
}

/// Why a gateway's certificate (or its absence) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertRefusal {
    #[error(
        "gateway {gateway} must present its client certificate: it enrols automatically on \
         its first start against an https:// server; if its state directory was lost, an \
         administrator runs `jitgate gateways reset-enrolment {gateway}` and the gateway is \
         restarted"
    )]
    Missing { gateway: String },
    #[error(
        "the client certificate is issued to {cert_for}, but the credentials are {caller}'s; \
         each gateway uses its own certificate and API key"
    )]
    OtherIdentity { cert_for: String, caller: String },
    #[error(
        "the client certificate {presented} of {gateway} is not its current one (superseded \
         by a renewal, or the enrolment was reset); restart the gateway to enrol again, or ask \
         an administrator to run `jitgate gateways reset-enrolment {gateway}`"
    )]
    NotCurrent { gateway: String, presented: String },
    #[error(
        "gateway {gateway} is already enrolled (certificate {enrolled}); renewing needs that \
         certificate. If the gateway lost it, an administrator runs `jitgate gateways \
         reset-enrolment {gateway}` first"
    )]
    AlreadyEnrolled { gateway: String, enrolled: String },
}

impl CertRefusal {
    pub fn code(&self) -> crate::Code {
        match self {
            CertRefusal::Missing { .. } => crate::Code::ClientCertificateRequired,
            CertRefusal::OtherIdentity { .. } | CertRefusal::NotCurrent { .. } => {
                crate::Code::ClientCertificateRefused
            }
            CertRefusal::AlreadyEnrolled { .. } => crate::Code::AlreadyEnrolled,
        }
    }

    /// Why, as recorded in the evidence.
    pub fn reason(&self) -> RefusalReason {
        match self {
            CertRefusal::Missing { .. } => RefusalReason::Missing,
            CertRefusal::OtherIdentity { .. } => RefusalReason::OtherIdentity,
            CertRefusal::NotCurrent { .. } => RefusalReason::NotCurrent,
            CertRefusal::AlreadyEnrolled { .. } => RefusalReason::AlreadyEnrolled,
        }
    }
}

/// [`CertRefusal`] without its details, for the evidence (`auth.client_cert_refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    Missing,
    OtherIdentity,
    NotCurrent,
    AlreadyEnrolled,
}

/// Accept a call? `caller` authenticated by its bearer credentials; `is_gateway`: it is a
/// workload with the `gateway` role; `enrolled`: the fingerprint on record for it.
pub fn check_call(
    mode: ClientCertMode,
    caller: &str,
    is_gateway: bool,
    presented: Option<&PresentedCert>,
    enrolled: Option<&str>,
) -> Result<(), CertRefusal> {
    if let Some(p) = presented {
        if p.gateway != caller {
            return Err(CertRefusal::OtherIdentity {
                cert_for: p.gateway.clone(),
                caller: caller.to_string(),
            });
        }
    }
    if !is_gateway {
        return Ok(());
    }
    match (presented, enrolled) {
        (Some(p), Some(e)) if p.fingerprint == e => Ok(()),
        (Some(p), _) => Err(CertRefusal::NotCurrent {
            gateway: caller.to_string(),
            presented: p.fingerprint.clone(),
        }),
        (None, _) if mode == ClientCertMode::Optional => Ok(()),
        (None, _) => Err(CertRefusal::Missing {
            gateway: caller.to_string(),
        }),
    }
}

/// What an accepted enrolment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrolmentKind {
    /// Nothing on record: the API key alone vouches for the gateway.
    First,
    /// The current certificate was presented.
    Renewal,
}

/// May the gateway `caller` enrol (or renew) now?
pub fn check_enrolment(
    caller: &str,
    presented: Option<&PresentedCert>,
    enrolled: Option<&str>,
) -> Result<EnrolmentKind, CertRefusal> {
    if let Some(p) = presented {
        if p.gateway != caller {
            return Err(CertRefusal::OtherIdentity {
                cert_for: p.gateway.clone(),
                caller: caller.to_string(),
            });
        }
    }
    match (presented, enrolled) {
        (_, None) => Ok(EnrolmentKind::First),
        (Some(p), Some(e)) if p.fingerprint == e => Ok(EnrolmentKind::Renewal),
        (Some(p), Some(_)) => Err(CertRefusal::NotCurrent {
            gateway: caller.to_string(),
            presented: p.fingerprint.clone(),
        }),
        (None, Some(e)) => Err(CertRefusal::AlreadyEnrolled {
            gateway: caller.to_string(),
            enrolled: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ClientCertMode::{Optional, Required};

    fn cert(gw: &str, fp: &str) -> PresentedCert {
        PresentedCert {
            gateway: gw.into(),
            fingerprint: fp.into(),
        }
    }

    #[test]
    fn a_gateway_call_needs_the_certificate_on_record() {
        let current = cert("gw-north", "sha256:aa");
        assert_eq!(
            check_call(
                Required,
                "gw-north",
                true,
                Some(&current),
                Some("sha256:aa")
            ),
            Ok(())
        );
        let missing = check_call(Required, "gw-north", true, None, Some("sha256:aa"));
        assert_eq!(missing.unwrap_err().reason(), RefusalReason::Missing);
        // Superseded by a renewal, or never enrolled (reset): refused in either mode.
        let old = cert("gw-north", "sha256:old");
        for mode in [Required, Optional] {
            let e = check_call(mode, "gw-north", true, Some(&old), Some("sha256:aa"));
            assert_eq!(e.unwrap_err().reason(), RefusalReason::NotCurrent);
            let e = check_call(mode, "gw-north", true, Some(&current), None);
            assert_eq!(e.unwrap_err().reason(), RefusalReason::NotCurrent);
        }
        assert_eq!(
            check_call(Optional, "gw-north", true, None, Some("sha256:aa")),
            Ok(())
        );
    }

    #[test]
    fn a_certificate_never_stands_in_for_another_identity() {
        let south = cert("gw-south", "sha256:bb");
        for (caller, is_gateway) in [("gw-north", true), ("alice", false)] {
            for mode in [Required, Optional] {
                let e = check_call(mode, caller, is_gateway, Some(&south), Some("sha256:bb"));
                assert_eq!(e.unwrap_err().code(), crate::Code::ClientCertificateRefused);
            }
        }
        let e = check_enrolment("gw-north", Some(&south), None).unwrap_err();
        assert_eq!(e.reason(), RefusalReason::OtherIdentity);
    }

    #[test]
    fn people_and_other_workloads_need_no_certificate() {
        assert_eq!(check_call(Required, "alice", false, None, None), Ok(()));
    }

    #[test]
    fn enrolment_first_by_key_then_only_with_the_current_certificate() {
        assert_eq!(check_enrolment("gw", None, None), Ok(EnrolmentKind::First));
        let current = cert("gw", "sha256:aa");
        assert_eq!(
            check_enrolment("gw", Some(&current), Some("sha256:aa")),
            Ok(EnrolmentKind::Renewal)
        );
        // A stolen API key cannot replace the enrolled certificate.
        let e = check_enrolment("gw", None, Some("sha256:aa")).unwrap_err();
        assert_eq!(e.code(), crate::Code::AlreadyEnrolled);
        let stale = cert("gw", "sha256:old");
        let e = check_enrolment("gw", Some(&stale), Some("sha256:aa")).unwrap_err();
        assert_eq!(e.reason(), RefusalReason::NotCurrent);
        // After an administrator's reset, the gateway enrols again.
        assert_eq!(
            check_enrolment("gw", Some(&stale), None),
            Ok(EnrolmentKind::First)
        );
    }
}
