//! Ending a grant everywhere, and proving it.
//!
//! The moment a grant ends (revoked, completed, expired, or a change of context) the server
//! pushes a revocation to every gateway fronting one of its assets ([`crate::revocations::push_revocations`],
//! called right after the commit, before the API answers). Then the teardown worker
//! ([`run`]) verifies, for every ended grant, and records each check as an event:
//!
//! 1. `sessions_closed` — each gateway acknowledges the revocation over the control channel
//!    with the sessions it closed (id, close time, bytes, operation counts) and no live one.
//! 2. `credential_refused` — the server probes each gateway: it opens a real tunnel and
//!    presents a freshly signed credential for the ended grant, bound to a throw-away key
//!    (the subject's own token never leaves the subject). The gateway must refuse it. When
//!    the gateway has an SSH listener and the grant names SSH access on one of its assets,
//!    a second probe presents a fresh user certificate for the grant there ([`ssh_probe`]).
//! 3. `downstream` — per asset: a brokered asset behind a gateway keeps nothing once 1 and
//!    2 hold; a `legacy` asset keeps local accounts jitgate cannot revoke, so the verdict is
//!    `partial`, naming the limitation and the compensating controls, and a post-session
//!    review is opened; an asset no gateway fronts cannot be checked (`partial`).
//!
//! Verdict: `failed` if any check failed (an alert is raised and the teardown retried, with
//! backoff, until it succeeds — the grant stays `ending`), else `partial` if any check is
//! partial, else `verified`. A final verdict closes the grant and its request.
//!
//! Checks run concurrently, one task per grant; their results go to one writer task that
//! saves everything that has arrived in a single write transaction (see `writer`).

use crate::error::{ApiResult, ServerError};
use crate::probe_slots::PROBES_PER_GATEWAY;
use crate::revocations::{grant_assets, revocation_of};
use crate::state::AppState;
use jitgate_core::event::{Actor, Event};
use jitgate_core::lifecycle;
use jitgate_core::scope::Protocol;
use jitgate_core::server_payload::{CheckKind, TeardownCheck, TeardownTally};
use jitgate_core::ssh::CertificateKind;
use jitgate_core::teardown::{
    waits_for_gateways, CheckOutcome, DownstreamFacts, FailedCheck, TeardownVerdict,
};
use jitgate_core::{Asset, Enforcement, Grant, GrantState, Timestamp};
use jitgate_credential::{AssetClaim, ClientKey, GrantClaims};
use jitgate_gateway::connect::{ConnectError, Target};
use jitgate_gateway::wire::{GatewayHello, Revocation, TokenResponse};
use jitgate_store::TeardownRecord;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How many attempts may find a grant's sessions closed but their `session.ended` events not
/// yet in the log before that counts as a failed check (attempts are ~50 ms apart).
const MAX_WAITS_FOR_SESSION_EVIDENCE: i64 = 200;

/// Longest wait between two attempts of a failed teardown.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// How long the worker lets ended grants gather after being woken (see `run`).
const WAKE_GATHER: Duration = Duration::from_millis(10);

/// One check of a teardown and its evidence.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Check {
    pub check: CheckKind,
    /// The gateway (first two checks) or asset (downstream) it is about.
    pub target: String,
    /// `ok`, `partial` or `failed`.
    pub outcome: CheckOutcome,
    /// What was seen, in words.
    pub detail: String,
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// Failed because the gateway could not be asked (not connected, or the probe's
    /// connection refused, closed or unanswered before the gateway judged it); see
    /// [`jitgate_core::teardown::waits_for_gateways`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_judged: bool,
}

impl Check {
    fn new(
        check: CheckKind,
        target: &str,
        outcome: CheckOutcome,
        detail: String,
        evidence: serde_json::Value,
    ) -> Self {
        Check {
            check,
            target: target.into(),
            outcome,
            detail,
            evidence,
            not_judged: false,
        }
    }

    /// A failed check the gateway never judged.
    fn not_judged(
        check: CheckKind,
        gateway: &str,
        detail: String,
        evidence: serde_json::Value,
    ) -> Self {
        Check {
            not_judged: true,
            ..Check::new(check, gateway, CheckOutcome::Failed, detail, evidence)
        }
    }
}

/// The check for a probe that found no free slot within the timeout.
fn no_probe_slot(gateway: &str, timeout: Duration) -> Check {
    Check::not_judged(
        CheckKind::CredentialRefused,
        gateway,
        format!(
            "this node already had {PROBES_PER_GATEWAY} probes of gateway {gateway} in flight for {}; probing again shortly",
            humantime::format_duration(timeout)
        ),
        json!({ "probes_in_flight": PROBES_PER_GATEWAY }),
    )
}

/// The verdict over a set of checks (the rule is the core's).
pub fn verdict_of(checks: &[Check]) -> TeardownVerdict {
    jitgate_core::teardown::verdict_of(checks.iter().map(|c| c.outcome))
}

/// The teardown worker: runs the checks of every ended grant whose teardown is due, each in
/// its own task, until shutdown.
pub async fn run(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let inflight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let (to_writer, from_checks) = mpsc::unbounded_channel();
    let writer_task = tokio::spawn(writer(state.clone(), from_checks));
    loop {
        // A gateway that just reconnected may turn failed teardowns into verified ones:
        // retry those at once instead of waiting for their backoff.
        let retry_all = state
            .teardown_retry_now
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        let now = state.clock.now();
        let horizon = if retry_all {
            now + chrono::Duration::days(365)
        } else {
            now
        };
        let due = match state.store.read().await {
            Ok(mut tx) => tx.teardowns_due(horizon).await,
            Err(e) => Err(e),
        };
        match due {
            Ok(ids) => {
                for id in ids {
                    let fresh = inflight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id.clone());
                    if !fresh {
                        continue;
                    }
                    // Several nodes: one attempt at a time per grant, cluster-wide.
                    if !crate::cluster::take_lease(
                        &state,
                        &teardown_job(&id),
                        teardown_lease(&state),
                    )
                    .await
                    {
                        inflight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&id);
                        continue;
                    }
                    let state = state.clone();
                    let inflight = inflight.clone();
                    let to_writer = to_writer.clone();
                    tokio::spawn(async move {
                        if let Err(e) = run_one(&state, &id, &to_writer).await {
                            tracing::error!(grant = %id, error = %e, "teardown attempt could not be recorded; retrying");
                        }
                        crate::cluster::release_lease(&state, &teardown_job(&id)).await;
                        inflight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&id);
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list due teardowns"),
        }
        let sleep = match state.store.read().await {
            Ok(mut tx) => match tx.next_teardown_retry().await {
                Ok(Some(t)) => (t - state.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_millis(50), Duration::from_secs(1)),
                _ => Duration::from_secs(1),
            },
            Err(_) => Duration::from_secs(1),
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = state.teardown_wake.notified() => {
                // Let a burst of ended grants (a busy revoke API, an expiry wave, a policy
                // reload) gather, so it is listed and started once, not once per grant.
                // Revocations were already pushed; only their verification waits.
                tokio::time::sleep(WAKE_GATHER).await;
            }
            _ = shutdown.changed() => {
                writer_task.abort();
                return;
            }
        }
    }
}

/// The lease that makes one node at a time run a grant's teardown attempt.
fn teardown_job(grant: &str) -> String {
    format!("teardown:{grant}")
}

/// Long enough for one attempt (acknowledgement wait, then the probes, then the write);
/// if the node holding it dies, another takes the grant over when it runs out.
fn teardown_lease(state: &AppState) -> Duration {
    let timeout = state
        .config
        .teardown_timeout()
        .unwrap_or(Duration::from_secs(5));
    timeout * 3 + Duration::from_secs(30)
}

/// One attempt at a grant's teardown: all checks, then the verdict, recorded in one write.
async fn run_one(
    state: &AppState,
    grant_id: &str,
    writer: &mpsc::UnboundedSender<Attempt>,
) -> ApiResult<&'static str> {
    let g = {
        let mut tx = state.store.read().await?;
        tx.get_grant(grant_id)
            .await?
            .ok_or_else(|| ServerError::not_found("grant", grant_id))?
    };
    if g.state != GrantState::Ending {
        return Ok("closed");
    }
    let timeout = state
        .config
        .teardown_timeout()
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    let (assets, missing) = grant_assets(state, &g).await?;
    let r = revocation_of(&g);
    let mut by_gateway: BTreeMap<String, Vec<Asset>> = BTreeMap::new();
    for a in &assets {
        if let Some(gw) = &a.gateway {
            by_gateway.entry(gw.clone()).or_default().push(a.clone());
        }
    }
    let gateway_checks = futures_util::future::join_all(
        by_gateway
            .iter()
            .map(|(gw, gw_assets)| check_gateway(state, gw, gw_assets, &g, &r, timeout)),
    )
    .await;
    let mut checks: Vec<Check> = gateway_checks.into_iter().flatten().collect();
    checks.extend(downstream_checks(state, &g, &assets).await?);
    for id in missing {
        checks.push(Check::new(
            CheckKind::Downstream,
            &id,
            CheckOutcome::Partial,
            format!(
                "asset {id} is no longer in the inventory; jitgate cannot say what remains on it"
            ),
            json!({}),
        ));
    }
    let verdict = verdict_of(&checks);
    // The grant's session evidence, read after the checks (so after the gateway's
    // acknowledgement) and outside the writer's lock: an end found now stays in the log.
    // The sessions that must have ended in the log: those it shows started, and those each
    // gateway acknowledged closing (their events may not have arrived at all yet).
    let sessions = if verdict.is_final() {
        let mut tx = state.store.read().await?;
        let mut evidence = tx.session_evidence(&g.id).await?;
        for c in checks
            .iter()
            .filter(|c| c.check == CheckKind::SessionsClosed)
        {
            let acked = c.evidence["sessions"].as_array().into_iter().flatten();
            for id in acked.filter_map(|s| s["session_id"].as_str()) {
                if !evidence.started.iter().any(|s| s == id) {
                    evidence.started.push(id.to_string());
                }
            }
        }
        Some(jitgate_core::teardown::sessions_recorded(&evidence))
    } else {
        None
    };
    let (written, saved) = oneshot::channel();
    writer
        .send(Attempt {
            grant: g,
            assets,
            checks,
            sessions,
            written,
        })
        .map_err(|_| ServerError::Internal("the teardown writer has stopped".into()))?;
    saved
        .await
        .map_err(|_| ServerError::Internal("the teardown writer has stopped".into()))??;
    Ok(verdict.as_str())
}

/// Sessions closed and credential refused, at one gateway.
async fn check_gateway(
    state: &AppState,
    gateway: &str,
    assets: &[Asset],
    g: &Grant,
    r: &Revocation,
    timeout: Duration,
) -> Vec<Check> {
    // (Re)send unless already acknowledged: the push at the end may have gone nowhere. A
    // gateway attached to another node gets it through that node.
    if state.control.ack(gateway, &g.id).is_none() && !state.control.revoke(gateway, r) {
        crate::revocations::announce_revoked(state, std::slice::from_ref(&g.id)).await;
    }
    let sessions = match crate::cluster::wait_ack(state, gateway, &g.id, timeout).await {
        Some(ack) if ack.live_sessions == 0 => Check::new(
            CheckKind::SessionsClosed,
            gateway,
            CheckOutcome::Ok,
            format!(
                "gateway {gateway} acknowledged the revocation: {} session(s) under the grant, none live",
                ack.sessions.len()
            ),
            serde_json::to_value(&ack).unwrap_or_default(),
        ),
        Some(ack) => Check::new(
            CheckKind::SessionsClosed,
            gateway,
            CheckOutcome::Failed,
            format!(
                "gateway {gateway} still reports {} live session(s) under the grant",
                ack.live_sessions
            ),
            serde_json::to_value(&ack).unwrap_or_default(),
        ),
        None => {
            let attached = crate::cluster::attachments(state)
                .await
                .ok()
                .and_then(|a| a.get(gateway).cloned());
            let check = Check::new(
                CheckKind::SessionsClosed,
                gateway,
                CheckOutcome::Failed,
                format!(
                    "gateway {gateway} did not acknowledge the revocation within {} ({}); retrying until it does",
                    humantime::format_duration(timeout),
                    match &attached {
                        Some(node) => format!("its control channel is up, on node {node}"),
                        None => "it is not connected".into(),
                    }
                ),
                json!({"connected": attached.is_some(), "node": attached}),
            );
            // Not connected to any node: the gateway cannot have been asked.
            Check {
                not_judged: attached.is_none(),
                ..check
            }
        }
    };
    let probe = probe(state, gateway, assets, g, timeout).await;
    let mut checks = vec![sessions, probe];
    if let Some(ssh) = ssh_probe(state, gateway, assets, g, timeout).await {
        checks.push(ssh);
    }
    checks
}

/// The SSH listener's probe: a user certificate for the ended grant, signed now by the SSH
/// user CA for a throw-away key and valid for a minute (never recorded as issued: it is
/// the probe's, like the probe token), presented to the gateway's SSH listener as the
/// asset. The gateway must refuse it with a code proving it knows the grant ended. `None`
/// when the gateway announced no SSH listener or the grant names no SSH access on its
/// assets.
async fn ssh_probe(
    state: &AppState,
    gateway: &str,
    assets: &[Asset],
    g: &Grant,
    timeout: Duration,
) -> Option<Check> {
    use jitgate_core::ssh::{CertificateKind, CertificatePlan, SshPermissions};
    use jitgate_gateway::ssh::probe::ProbeOutcome;
    let hello = announced(state, gateway).await?;
    let address = hello.ssh_address.clone()?;
    let (asset, permissions) = assets.iter().find_map(|a| {
        a.endpoints.ssh.as_ref()?;
        SshPermissions::for_asset(g.scope.items(), &a.id).map(|p| (a, p))
    })?;
    let failed = |detail: String, evidence| {
        Some(Check::new(
            CheckKind::CredentialRefused,
            gateway,
            CheckOutcome::Failed,
            detail,
            evidence,
        ))
    };
    let key = match jitgate_gateway::ssh::probe::probe_key() {
        Ok(k) => k,
        Err(e) => return failed(format!("cannot make the SSH probe key: {e}"), json!({})),
    };
    let public = match crate::ssh_ca::parse_public_key(&key.public_key) {
        Ok(p) => p,
        Err(e) => return failed(format!("cannot read the SSH probe key: {e}"), json!({})),
    };
    let now = state.clock.now();
    let whole = |t: Timestamp| chrono::DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t);
    let plan = CertificatePlan {
        kind: CertificateKind::User,
        key_id: g.id.clone(),
        principal: g.subject.clone(),
        asset: asset.id.clone(),
        permissions,
        valid_after: whole(now - chrono::Duration::seconds(60)),
        valid_before: whole(now + chrono::Duration::seconds(60)),
    };
    let signed = match state
        .ssh_cas
        .sign(crate::ssh_ca::CaRole::User, &plan, &public)
    {
        Ok(s) => s,
        Err(e) => {
            return failed(
                format!("cannot sign the SSH probe certificate: {e}"),
                json!({}),
            )
        }
    };
    let mut evidence = json!({
        "protocol": "ssh",
        "gateway_ssh_address": address,
        "asset": asset.id,
        "probe_certificate_serial": signed.serial.to_string(),
        "probe_key_fingerprint": signed.key_fingerprint,
    });
    let Some(_slot) = state
        .probe_slots
        .take(&format!("{gateway} ssh"), timeout)
        .await
    else {
        return Some(no_probe_slot(gateway, timeout));
    };
    let outcome = jitgate_gateway::ssh::probe::probe(
        &address,
        hello.ssh_host_key.as_deref(),
        &asset.id,
        key,
        &signed.line,
        timeout,
    )
    .await;
    match outcome {
        Ok(ProbeOutcome::Refused { code, message }) => {
            evidence["refusal_code"] = json!(code);
            evidence["refusal"] = json!(message);
            if jitgate_core::teardown::refusal_proves_end(&code) {
                Some(Check::new(
                    CheckKind::CredentialRefused,
                    gateway,
                    CheckOutcome::Ok,
                    format!("gateway {gateway} refused a valid SSH certificate for the ended grant ({code})"),
                    evidence,
                ))
            } else {
                failed(
                    format!("gateway {gateway} refused the SSH probe with {code}, which does not show it knows the grant ended (expected {})", jitgate_core::teardown::PROOF_OF_END_CODES.join(" or ")),
                    evidence,
                )
            }
        }
        Ok(ProbeOutcome::AuthRejected) => failed(
            format!("gateway {gateway} rejected the SSH probe at authentication without a reason, which does not show it knows the grant ended (does it trust the SSH user CA?)"),
            evidence,
        ),
        Ok(ProbeOutcome::Accepted { exit_status }) => {
            evidence["exit_status"] = json!(exit_status);
            failed(
                format!("gateway {gateway} ACCEPTED an SSH certificate for the ended grant"),
                evidence,
            )
        }
        Ok(ProbeOutcome::NotReached { reason }) => Some(Check::not_judged(
            CheckKind::CredentialRefused,
            gateway,
            format!("the SSH probe did not reach gateway {gateway}'s judgement: {reason}"),
            evidence,
        )),
        Err(e) => failed(format!("cannot probe gateway {gateway}'s SSH listener: {e}"), evidence),
    }
}

/// What a gateway last announced (`POST /gateway/hello`); `None` also when unreadable.
async fn announced(state: &AppState, gateway: &str) -> Option<GatewayHello> {
    let mut tx = state.store.read().await.ok()?;
    crate::control::announced(&mut tx, gateway)
        .await
        .ok()
        .flatten()
}

/// Present a credential for the ended grant to the gateway, through a real tunnel, and
/// expect a refusal.
async fn probe(
    state: &AppState,
    gateway: &str,
    assets: &[Asset],
    g: &Grant,
    timeout: Duration,
) -> Check {
    let failed = |detail: String, evidence| {
        Check::new(
            CheckKind::CredentialRefused,
            gateway,
            CheckOutcome::Failed,
            detail,
            evidence,
        )
    };
    let Some(hello) = announced(state, gateway).await else {
        return failed(
            format!("gateway {gateway} has never announced its address; cannot probe it"),
            json!({}),
        );
    };
    let now = state.clock.now();
    // The probe presents the grant as if it were still active, with a fresh expiry, so a
    // refusal can only come from the gateway knowing the grant ended (its revocation list or
    // its online check), never from the token's own expiry.
    let mut as_if_active = g.clone();
    as_if_active.state = GrantState::Active;
    as_if_active.not_before = now - chrono::Duration::seconds(1);
    as_if_active.expires_at = now + chrono::Duration::seconds(60);
    let key = ClientKey::generate();
    let mut last_err = String::new();
    for asset in assets {
        let endpoints: Vec<AssetClaim> = [Protocol::Modbus, Protocol::Dnp3, Protocol::Ssh]
            .into_iter()
            .filter_map(|p| AssetClaim::from_asset(asset, p))
            .collect();
        let claims = match GrantClaims::for_grant(
            &as_if_active,
            gateway,
            &endpoints,
            &key.public_b64(),
            now,
            chrono::Duration::seconds(60),
        ) {
            Ok(c) => c,
            Err(e) => {
                last_err = e.to_string();
                continue;
            }
        };
        let token = match state.issue_token(&claims) {
            Ok(t) => t,
            Err(e) => return failed(format!("cannot sign the probe credential: {e}"), json!({})),
        };
        let fingerprint = jitgate_credential::token_fingerprint(&token);
        let target = Target {
            token: TokenResponse {
                token,
                token_fingerprint: fingerprint.clone(),
                asset: asset.id.clone(),
                gateway_id: gateway.to_string(),
                gateway_address: hello.address.clone(),
                gateway_fingerprint: hello.tls_fingerprint.clone(),
                expires_at: as_if_active.expires_at,
                protocols: Vec::new(),
            },
            key,
            // Named, so an asset the grant reaches by Modbus and DNP3 is probed all the same.
            protocol: jitgate_core::scope::tunnel_protocols(g.scope.items(), asset)
                .first()
                .copied(),
        };
        let evidence = json!({
            "probe_token_fingerprint": fingerprint,
            "probe_token_id": claims.token_id,
            "gateway_address": hello.address,
            "asset": asset.id,
        });
        let Some(_slot) = state.probe_slots.take(gateway, timeout).await else {
            return no_probe_slot(gateway, timeout);
        };
        return match tokio::time::timeout(timeout, jitgate_gateway::connect::open_tunnel(&target)).await {
            Ok(Err(ConnectError::Refused { code, message }))
                if jitgate_core::teardown::refusal_proves_end(&code) =>
            {
                let mut evidence = evidence;
                evidence["refusal_code"] = json!(code);
                evidence["refusal"] = json!(message);
                Check::new(
                    CheckKind::CredentialRefused,
                    gateway,
                    CheckOutcome::Ok,
                    format!("gateway {gateway} refused a valid credential for the ended grant ({code})"),
                    evidence,
                )
            }
            // A refusal for another reason (an unknown key, the gateway unable to reach the
            // server, ...) says nothing about whether the gateway knows the grant ended.
            Ok(Err(ConnectError::Refused { code, message })) => {
                let mut evidence = evidence;
                evidence["refusal_code"] = json!(code);
                evidence["refusal"] = json!(message);
                failed(
                    format!("gateway {gateway} refused the probe with {code}, which does not show it knows the grant ended (expected {})", jitgate_core::teardown::PROOF_OF_END_CODES.join(" or ")),
                    evidence,
                )
            }
            Ok(Ok(_)) => failed(
                format!("gateway {gateway} ACCEPTED a credential for the ended grant; the session was closed at once"),
                evidence,
            ),
            // The connection, its TLS handshake or the tunnel's opening failed: refused,
            // closed before the handshake (a gateway restarting, or at its per-address limit
            // of connections still authenticating), or broken. The gateway never judged it.
            Ok(Err(e @ (ConnectError::Gateway { .. } | ConnectError::Tunnel(_)))) => Check::not_judged(
                CheckKind::CredentialRefused,
                gateway,
                format!("the probe did not reach gateway {gateway}'s judgement: {e}"),
                evidence,
            ),
            Ok(Err(e)) => failed(format!("cannot probe gateway {gateway}: {e}"), evidence),
            Err(_) => Check::not_judged(
                CheckKind::CredentialRefused,
                gateway,
                format!("gateway {gateway} did not answer the probe within {}", humantime::format_duration(timeout)),
                evidence,
            ),
        };
    }
    failed(
        format!("no probe credential could be made for gateway {gateway}: {last_err}"),
        json!({}),
    )
}

/// What remains on each asset itself once the gateway checks hold (the rule is
/// [`jitgate_core::teardown::downstream`]); for SSH, from the target certificates issued
/// under the grant.
async fn downstream_checks(state: &AppState, g: &Grant, assets: &[Asset]) -> ApiResult<Vec<Check>> {
    let issued = {
        let mut tx = state.store.read().await?;
        tx.ssh_certificates_for_grant(&g.id).await?
    };
    let now = state.clock.now();
    Ok(assets
        .iter()
        .map(|a| {
            let facts = DownstreamFacts {
                asset: a,
                ssh_granted: g
                    .scope
                    .items()
                    .iter()
                    .any(|i| i.protocol() == Protocol::Ssh && i.asset() == a.id),
                target_certificates: issued
                    .iter()
                    .filter(|c| c.asset == a.id && c.kind == CertificateKind::Target.as_str())
                    .map(|c| c.valid_before)
                    .collect(),
            };
            let d = jitgate_core::teardown::downstream(&facts, now);
            Check::new(
                CheckKind::Downstream,
                &a.id,
                d.outcome,
                d.detail,
                d.evidence,
            )
        })
        .collect())
}

/// One finished attempt on its way to the store, and where to say it was written.
pub(crate) struct Attempt {
    grant: Grant,
    assets: Vec<Asset>,
    checks: Vec<Check>,
    /// For a final verdict: the `session.ended` sequence numbers of every session under the
    /// grant, or the sessions whose end is not in the log yet.
    sessions: Option<Result<Vec<i64>, Vec<String>>>,
    written: oneshot::Sender<ApiResult<()>>,
}

/// The teardown writer: saves finished attempts, as many as have arrived in one write
/// transaction. Teardowns finish in bursts (a policy reload, an expiry wave, a busy revoke
/// API); one transaction per grant would compete with the API for the (serialised) write
/// lock. If a batch fails, each attempt is written on its own so one bad row blocks no other.
async fn writer(state: AppState, mut rx: mpsc::UnboundedReceiver<Attempt>) {
    const BATCH: usize = 256;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        let together = async {
            let now = state.clock.now();
            let mut tx = state.store.write().await?;
            let mut closed = Vec::new();
            for a in &batch {
                if record_in(&mut tx, &state, a, now).await? {
                    closed.push(a.grant.id.clone());
                }
            }
            tx.commit().await?;
            Ok::<_, ServerError>(closed)
        }
        .await;
        match together {
            Ok(closed) => {
                for id in closed {
                    crate::cluster::forget_acks(&state, &id).await;
                }
                for a in batch {
                    let _ = a.written.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, attempts = batch.len(), "writing teardowns together failed; writing them one by one");
                for a in batch {
                    let one = async {
                        let mut tx = state.store.write().await?;
                        let closed = record_in(&mut tx, &state, &a, state.clock.now()).await?;
                        tx.commit().await?;
                        if closed {
                            crate::cluster::forget_acks(&state, &a.grant.id).await;
                        }
                        Ok(())
                    }
                    .await;
                    let _ = a.written.send(one);
                }
            }
        }
    }
}

/// Save one attempt in `tx`: each check as an event, the record, and — when final — the
/// close. Returns whether the grant was closed.
async fn record_in(
    tx: &mut jitgate_store::Tx,
    state: &AppState,
    a: &Attempt,
    now: Timestamp,
) -> ApiResult<bool> {
    let (g, assets) = (&a.grant, &a.assets);
    let Some(g_now) = tx.get_grant(&g.id).await? else {
        return Ok(false);
    };
    if g_now.state != GrantState::Ending {
        return Ok(false); // closed by another attempt meanwhile
    }
    let previous = tx.get_teardown(&g.id).await?;
    let attempts = previous.as_ref().map_or(0, |p| p.attempts) + 1;
    // Evidence order: a final verdict is recorded only once every session under the grant
    // has its `session.ended` in the log (the gateway delivers it over the event spool,
    // which may trail the acknowledgement by milliseconds). Until then the attempt is
    // `pending` and retried at once, without an alert; if the ends never arrive, that is a
    // failed check of its own.
    let mut checks = a.checks.clone();
    let mut ended_seqs = Vec::new();
    if let Some(sessions) = &a.sessions {
        match sessions.clone() {
            Ok(seqs) => ended_seqs = seqs,
            Err(missing) if attempts <= MAX_WAITS_FOR_SESSION_EVIDENCE => {
                tx.put_teardown(&TeardownRecord {
                    grant_id: g.id.clone(),
                    verdict: "pending".into(),
                    report: json!({ "checks": checks, "attempt": attempts, "waiting_for_session_ended": missing }),
                    attempts,
                    next_attempt_at: Some(now),
                    started_at: previous.as_ref().map_or(now, |p| p.started_at),
                    updated_at: now,
                })
                .await?;
                return Ok(false);
            }
            Err(missing) => checks.push(Check::new(
                CheckKind::SessionsRecorded,
                &g.id,
                CheckOutcome::Failed,
                format!(
                    "the gateway closed the sessions but the log has no session.ended for {}; the gateway's event delivery is stuck",
                    missing.join(", ")
                ),
                json!({ "missing": missing }),
            )),
        }
    }
    let checks = &checks;
    let verdict = verdict_of(checks);
    // Gateways that could not be asked yet (this node just started, a gateway restarting or
    // too busy to take the probe): wait for them rather than fail (no events, no alert);
    // retried shortly, or at once when a gateway connects (`teardown_retry_now`).
    let failed: Vec<FailedCheck> = checks
        .iter()
        .filter(|c| c.outcome == CheckOutcome::Failed)
        .map(|c| FailedCheck {
            kind: c.check,
            not_judged: c.not_judged,
        })
        .collect();
    let started_at = previous.as_ref().map_or(now, |p| p.started_at);
    if waits_for_gateways(&failed, now - state.node.started_at, now - started_at) {
        tx.put_teardown(&TeardownRecord {
            grant_id: g.id.clone(),
            verdict: "pending".into(),
            report: json!({ "checks": checks, "attempt": attempts, "waiting_for_gateways": true }),
            attempts,
            next_attempt_at: Some(now + chrono::Duration::seconds(2)),
            started_at: previous.as_ref().map_or(now, |p| p.started_at),
            updated_at: now,
        })
        .await?;
        return Ok(false);
    }
    let mut events: Vec<Event> = checks
        .iter()
        .map(|c| {
            let check = TeardownCheck {
                attempt: attempts,
                check: c.check,
                target: c.target.clone(),
                outcome: c.outcome,
                detail: c.detail.clone(),
                evidence: c.evidence.clone(),
            };
            Ok(Event::with_payload(Actor::scheduler(), now, &check)?
                .request(&g.request_id)
                .grant(&g.id))
        })
        .collect::<ApiResult<_>>()?;
    let final_verdict = verdict.is_final();
    state.metrics.teardown_verdict(verdict.as_str());
    let next_attempt_at: Option<Timestamp> = (!final_verdict).then(|| {
        let backoff = Duration::from_secs(1 << attempts.clamp(0, 5)).min(RETRY_MAX);
        now + chrono::Duration::from_std(backoff).unwrap_or_default()
    });
    let tally = TeardownTally {
        verdict,
        attempt: attempts,
        checks: checks.len(),
        failed: checks
            .iter()
            .filter(|c| c.outcome == CheckOutcome::Failed)
            .count(),
        partial: checks
            .iter()
            .filter(|c| c.outcome == CheckOutcome::Partial)
            .count(),
        next_attempt_at,
    };
    let mut closing = None;
    if final_verdict {
        let r = tx
            .get_request(&g.request_id)
            .await?
            .ok_or_else(|| ServerError::not_found("request", &g.request_id))?;
        let legacy = assets.iter().any(|a| a.enforcement == Enforcement::Legacy);
        let mut out = lifecycle::close_grant(r, g_now, verdict, &ended_seqs, legacy, now)?;
        for e in &mut out.events {
            tally.add_to(e)?;
        }
        tx.update_request(&out.request).await?;
        if let Some(closed) = &out.grant {
            tx.update_grant(closed).await?;
        }
        events.append(&mut out.events);
        closing = Some(out);
    } else {
        let pending = jitgate_core::payload::TeardownVerdictData {
            verdict,
            is_final: false,
            session_ended_events: Vec::new(),
        };
        let mut event = Event::with_payload(Actor::scheduler(), now, &pending)?
            .request(&g.request_id)
            .grant(&g.id);
        tally.add_to(&mut event)?;
        events.push(event);
    }
    tx.append_events(&events).await?;
    let newly_failed = !final_verdict
        && previous
            .as_ref()
            .is_none_or(|p| TeardownVerdict::parse(&p.verdict) != Some(TeardownVerdict::Failed));
    if newly_failed {
        tracing::error!(grant = %g.id, "ALERT: teardown failed; see `jitgate teardown {}`", g.id);
        crate::notify::enqueue(
            tx,
            state,
            &crate::notify::Notice::TeardownFailed {
                grant_id: g.id.clone(),
                request_id: g.request_id.clone(),
                subject: g.subject.clone(),
                detail: json!({
                    "failed": checks.iter().filter(|c| c.outcome == CheckOutcome::Failed).map(|c| &c.detail).collect::<Vec<_>>(),
                    "attempt": attempts,
                }),
            },
        )
        .await?;
    }
    if let Some(out) = &closing {
        // The reviews the core asked for: one for all the grant's legacy assets (their
        // limitations and the compensating controls to check), and the policy's own.
        let legacy: Vec<serde_json::Value> = assets
            .iter()
            .filter(|a| a.enforcement == Enforcement::Legacy)
            .map(|a| {
                json!({
                    "asset": a.id,
                    "limitation": a.limitation,
                    "compensating_controls": a.compensating_controls,
                })
            })
            .collect();
        crate::effects::apply_in_tx(tx, state, out, |reason| match reason {
            lifecycle::ReviewReason::LegacyAsset => json!({ "verdict": verdict, "assets": legacy }),
            _ => json!({ "verdict": verdict }),
        })
        .await?;
    }
    tx.put_teardown(&TeardownRecord {
        grant_id: g.id.clone(),
        verdict: verdict.as_str().to_string(),
        report: json!({ "checks": checks, "attempt": attempts }),
        attempts,
        next_attempt_at,
        started_at: previous.as_ref().map_or(now, |p| p.started_at),
        updated_at: now,
    })
    .await?;
    Ok(final_verdict)
}
