//! Gateways' client certificates at work: every call of a gateway identity checked against
//! its enrolled certificate, enrolment and renewal, and an administrator's reset. The rules
//! are `jitgate_core::gateway_enrolment`'s; this loads the record, applies them and records
//! the outcome in the evidence.

use crate::auth::Caller;
use crate::error::ServerError;
use crate::gateway_ca::{record_key, EnrolmentRecord};
use crate::state::AppState;
use jitgate_core::event::Actor;
use jitgate_core::gateway_enrolment::{self, PresentedCert, RefusalReason};
use jitgate_core::server_payload::{AuthEnrolled, AuthRevoked, ClientCertRefused, Factor};
use jitgate_core::{Event, IdentityKind};
use jitgate_gateway::enrolment::Enrolled;

/// A refusal is recorded at most once per gateway and reason in this window.
const REFUSAL_EVENT_WINDOW_SECS: i64 = 600;

fn is_gateway(caller: &Caller) -> bool {
    caller.identity.kind == IdentityKind::Workload && caller.identity.has_role("gateway")
}

/// The certificate on record for `gateway`, if any.
pub async fn record(
    state: &AppState,
    gateway: &str,
) -> Result<Option<EnrolmentRecord>, ServerError> {
    let mut tx = state.store.read().await?;
    let raw = tx.get_setting(&record_key(gateway)).await?;
    Ok(raw.and_then(|v| serde_json::from_str(&v).ok()))
}

/// Accept this call? Only with TLS on (over plain HTTP no certificate can be presented, and
/// the server refuses plain HTTP off loopback unless told the network is trusted).
pub async fn check_call(
    state: &AppState,
    caller: &Caller,
    presented: Option<&PresentedCert>,
    source: &str,
) -> Result<(), ServerError> {
    if state.gateway_ca.is_none() {
        return Ok(());
    }
    let gateway = is_gateway(caller);
    let enrolled = if gateway {
        record(state, caller.id()).await?.map(|r| r.fingerprint)
    } else {
        None
    };
    let mode = state.config.tls.gateway_client_certs;
    match gateway_enrolment::check_call(mode, caller.id(), gateway, presented, enrolled.as_deref())
    {
        Ok(()) => Ok(()),
        Err(refusal) => {
            note_refusal(state, caller.id(), refusal.reason(), presented, source).await;
            Err(refusal.into())
        }
    }
}

/// Issue (or renew) the caller's client certificate for the signing request `csr`.
pub async fn enrol(
    state: &AppState,
    caller: &Caller,
    presented: Option<&PresentedCert>,
    source: &str,
    csr: &str,
) -> Result<Enrolled, ServerError> {
    caller.require_gateway()?;
    let Some(ca) = state.gateway_ca.clone() else {
        return Err(ServerError::BadRequest(
            "this server speaks plain HTTP: client certificates need TLS. Turn on `[tls]` and \
             point the gateway at the https:// URL"
                .into(),
        ));
    };
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let key = record_key(caller.id());
    let enrolled: Option<EnrolmentRecord> = tx
        .get_setting(&key)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok());
    let kind = match gateway_enrolment::check_enrolment(
        caller.id(),
        presented,
        enrolled.as_ref().map(|r| r.fingerprint.as_str()),
    ) {
        Ok(kind) => kind,
        Err(refusal) => {
            drop(tx);
            note_refusal(state, caller.id(), refusal.reason(), presented, source).await;
            return Err(refusal.into());
        }
    };
    let lifetime = chrono::Duration::days(i64::from(state.config.tls.gateway_cert_days));
    let issued = ca
        .issue(csr, caller.id(), now, lifetime)
        .map_err(ServerError::BadRequest)?;
    let rec = EnrolmentRecord {
        fingerprint: issued.fingerprint.clone(),
        serial: issued.serial.clone(),
        not_after: issued.not_after,
        enrolled_at: now,
    };
    let text = serde_json::to_string(&rec).map_err(|e| ServerError::Internal(e.to_string()))?;
    tx.set_setting(&key, &text).await?;
    let payload = AuthEnrolled {
        factor: Factor::ClientCertificate,
        identity: Some(caller.id().to_string()),
        key_id: Some(issued.serial.clone()),
        name: None,
        minted_by: None,
        expires_at: Some(issued.not_after),
        fingerprint: Some(issued.fingerprint.clone()),
        enrolment: Some(kind),
    };
    tx.append_events(&[Event::with_payload(
        Actor::identity(caller.id()),
        now,
        &payload,
    )?])
    .await?;
    tx.commit().await?;
    tracing::info!(gateway = caller.id(), fingerprint = %issued.fingerprint, ?kind,
        "gateway client certificate issued");
    Ok(Enrolled {
        gateway_id: caller.id().to_string(),
        certificate: issued.pem,
        fingerprint: issued.fingerprint,
        not_before: issued.not_before.timestamp(),
        not_after: issued.not_after.timestamp(),
        kind,
    })
}

/// An administrator forgets `gateway`'s certificate: its calls are refused until it enrols
/// again (with its API key alone, which is then accepted once).
pub async fn reset(
    state: &AppState,
    caller: &Caller,
    gateway: &str,
    reason: &str,
) -> Result<Option<EnrolmentRecord>, ServerError> {
    caller.require_admin()?;
    jitgate_core::governance::check_free_text("reason", reason, false)?;
    if reason.trim().is_empty() {
        return Err(ServerError::BadRequest(
            "say why the enrolment is reset (--reason)".into(),
        ));
    }
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let target = tx
        .get_identity(gateway)
        .await?
        .ok_or_else(|| ServerError::NotFound {
            what: "identity",
            id: gateway.to_string(),
            hint: "list gateways with `jitgate gateways`",
        })?;
    if !(target.kind == IdentityKind::Workload && target.has_role("gateway")) {
        return Err(ServerError::BadRequest(format!(
            "{gateway} is not a gateway (a workload identity with the `gateway` role)"
        )));
    }
    let key = record_key(gateway);
    let previous: Option<EnrolmentRecord> = tx
        .get_setting(&key)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok());
    tx.delete_setting(&key).await?;
    let payload = AuthRevoked {
        factor: Factor::ClientCertificate,
        identity: gateway.to_string(),
        key_id: previous
            .as_ref()
            .map(|r| r.fingerprint.clone())
            .unwrap_or_else(|| "(none enrolled)".into()),
        reason: reason.to_string(),
    };
    tx.append_events(&[Event::with_payload(
        Actor::identity(caller.id()),
        now,
        &payload,
    )?])
    .await?;
    tx.commit().await?;
    Ok(previous)
}

/// Record a refusal in the evidence, once per gateway and reason per window: a gateway (or
/// whoever holds its API key) retrying would otherwise write an event every few seconds.
async fn note_refusal(
    state: &AppState,
    identity: &str,
    reason: RefusalReason,
    presented: Option<&PresentedCert>,
    source: &str,
) {
    tracing::warn!(
        identity,
        ?reason,
        source,
        "gateway client certificate refused"
    );
    let now = state.clock.now();
    if !state
        .cert_refusals
        .first_in_window(identity, reason, now, REFUSAL_EVENT_WINDOW_SECS)
    {
        return;
    }
    let payload = ClientCertRefused {
        identity: identity.to_string(),
        reason,
        presented: presented.map(|p| p.fingerprint.clone()),
        source: source.to_string(),
    };
    let result = async {
        let mut tx = state.store.write().await?;
        tx.append_events(&[Event::with_payload(Actor::system(), now, &payload)?])
            .await?;
        tx.commit().await?;
        Ok::<_, ServerError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not record a client-certificate refusal");
    }
}
