//! `teardown <grant>` (each check of a grant's teardown and its evidence), `gateways`
//! (control-channel status), `unapprove <request>` (withdraw your approval).

use super::http::decode;
use super::{usage, Ctx};
use crate::output::{out, outln};
use jitgate_core::teardown::CheckOutcome;
use jitgate_server::api::enrol::{EnrolmentReset, ResetEnrolmentBody};
use jitgate_server::api::teardown::{
    GatewayStatus, TeardownView, TeardownWait, WithdrawApprovalBody,
};
use jitgate_server::api::types::RequestView;

pub async fn show(ctx: &Ctx, grant: &str) -> anyhow::Result<()> {
    let raw = ctx.http.get(&["grants", grant, "teardown"], &[]).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let view: TeardownView = decode(raw)?;
    out!("{}", render(&view));
    Ok(())
}

/// The teardown as text: verdict line, then one block per check.
pub fn render(v: &TeardownView) -> String {
    let mut out = format!(
        "grant {} — teardown {} (grant {}, attempt {})\n",
        v.grant_id,
        v.verdict.to_uppercase(),
        v.grant_state.as_str(),
        v.attempts
    );
    match v.verdict.as_str() {
        "pending" if v.grant_state.as_str() == "active" => {
            out.push_str("  the grant has not ended; its teardown runs when it does\n")
        }
        "pending" => out.push_str(match v.waiting_for {
            Some(TeardownWait::Gateways) => "  waiting for a gateway that could not be asked yet (not connected, restarting or busy); retried shortly; failed with an alert if that lasts 30 s (90 s when the gateway acknowledged and only its probe could not get through)\n",
            Some(TeardownWait::SessionEnded) => "  waiting for the gateway's session.ended events to reach the log\n",
            None => "  the checks have not run yet\n",
        }),
        "failed" => out.push_str(&format!(
            "  retried automatically{}\n",
            v.next_attempt_at
                .map(|t| format!(", next at {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
                .unwrap_or_default()
        )),
        _ => {}
    }
    for c in &v.checks {
        let mark = match c.outcome {
            CheckOutcome::Ok => "ok     ",
            CheckOutcome::Partial => "PARTIAL",
            CheckOutcome::Failed => "FAILED ",
        };
        out.push_str(&format!(
            "  [{mark}] {:<18} {:<14} {}\n",
            c.check, c.target, c.detail
        ));
        if let Some(sessions) = c.evidence.get("sessions").and_then(|s| s.as_array()) {
            for s in sessions {
                out.push_str(&format!(
                    "            session {} closed {} ({}): {} operations ({} denied), {} bytes in, {} bytes out\n",
                    s["session_id"].as_str().unwrap_or("?"),
                    s["closed_at"].as_str().unwrap_or("?"),
                    s["reason"].as_str().unwrap_or("?"),
                    s["operations"],
                    s["denied"],
                    s["bytes_from_client"],
                    s["bytes_to_client"],
                ));
            }
        }
        if let Some(code) = c.evidence.get("refusal_code").and_then(|s| s.as_str()) {
            out.push_str(&format!(
                "            probe credential {} refused with {code}\n",
                c.evidence["probe_token_fingerprint"]
                    .as_str()
                    .unwrap_or("?")
            ));
        }
        if let Some(controls) = c
            .evidence
            .get("compensating_controls")
            .and_then(|s| s.as_array())
        {
            let names: Vec<&str> = controls.iter().filter_map(|x| x.as_str()).collect();
            out.push_str(&format!(
                "            compensating controls required: {}; a post-session review is open\n",
                names.join(", ")
            ));
        }
    }
    out
}

pub async fn gateways(ctx: &Ctx, page: &super::PageArgs) -> anyhow::Result<()> {
    let raw = ctx.list(&["gateways"], &[], page).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let list: Vec<GatewayStatus> = decode(raw)?;
    if list.is_empty() {
        outln!("no gateways in the inventory (identities with the `gateway` role)");
        return Ok(());
    }
    outln!(
        "{:<16} {:<9} {:<20} {:<22} {:<24} ASSETS",
        "GATEWAY",
        "CONTROL",
        "NODE",
        "ADDRESS",
        "CERTIFICATE UNTIL"
    );
    for g in list {
        outln!(
            "{:<16} {:<9} {:<20} {:<22} {:<24} {}",
            g.id,
            if g.control_connected { "up" } else { "DOWN" },
            g.attached_to.as_deref().unwrap_or("-"),
            g.address.unwrap_or_else(|| "(never announced)".into()),
            g.client_certificate
                .map(|c| c.not_after.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|| "(not enrolled)".into()),
            g.assets.join(", ")
        );
    }
    Ok(())
}

pub async fn reset_enrolment(ctx: &Ctx, gateway: &str, reason: String) -> anyhow::Result<()> {
    if reason.trim().is_empty() {
        return Err(usage("--reason is empty: say why the enrolment is reset"));
    }
    let raw = ctx
        .http
        .post(
            &["gateways", gateway, "reset-enrolment"],
            &ResetEnrolmentBody { reason },
        )
        .await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let reset: EnrolmentReset = decode(raw)?;
    match reset.previous_fingerprint {
        Some(fp) => outln!(
            "{gateway}: certificate {fp} is no longer accepted; the gateway enrols again with \
             its API key at its next start (after its client-cert.pem and client-key.pem are removed)"
        ),
        None => outln!("{gateway}: no certificate was enrolled; it may enrol with its API key"),
    }
    Ok(())
}

pub async fn unapprove(ctx: &Ctx, request: &str, reason: String) -> anyhow::Result<()> {
    if reason.trim().is_empty() {
        return Err(usage(
            "--reason is empty: say why you withdraw your approval",
        ));
    }
    let raw = ctx
        .http
        .post(
            &["requests", request, "approval", "withdraw"],
            &WithdrawApprovalBody { reason },
        )
        .await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let view: RequestView = decode(raw)?;
    outln!(
        "approval withdrawn: request {} is now {}{}",
        view.request.id,
        view.request.state.as_str(),
        match &view.grant {
            Some(g) if g.state.as_str() != "active" =>
                format!("; grant {} is {}", g.id, g.state.as_str()),
            _ => String::new(),
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_text_shows_each_check_with_its_evidence() {
        let view: TeardownView = serde_json::from_value(serde_json::json!({
            "grant_id": "grant-abc",
            "grant_state": "ending",
            "verdict": "failed",
            "attempts": 2,
            "next_attempt_at": "2026-11-22T20:00:04Z",
            "updated_at": "2026-11-22T20:00:00Z",
            "checks": [
                {"check": "sessions_closed", "target": "gw-north", "outcome": "ok",
                 "detail": "gateway gw-north acknowledged the revocation",
                 "evidence": {"sessions": [{"session_id": "sess-1", "closed_at": "2026-11-22T19:59:59.120Z",
                    "reason": "grant_revoked", "operations": 12, "denied": 1,
                    "bytes_from_client": 144, "bytes_to_client": 120}]}},
                {"check": "credential_refused", "target": "gw-north", "outcome": "failed",
                 "detail": "cannot probe gateway gw-north", "evidence": {}},
                {"check": "downstream", "target": "plc-legacy-1", "outcome": "partial",
                 "detail": "legacy asset: local account",
                 "evidence": {"compensating_controls": ["jump-host-isolation", "post-session-review"]}}
            ]
        }))
        .unwrap();
        let text = render(&view);
        assert!(
            text.starts_with("grant grant-abc — teardown FAILED (grant ending, attempt 2)"),
            "{text}"
        );
        assert!(
            text.contains("retried automatically, next at 2026-11-22 20:00:04 UTC"),
            "{text}"
        );
        assert!(text.contains("[ok     ] sessions_closed"), "{text}");
        assert!(text.contains("session sess-1 closed 2026-11-22T19:59:59.120Z (grant_revoked): 12 operations (1 denied)"), "{text}");
        assert!(text.contains("[FAILED ] credential_refused"), "{text}");
        assert!(text.contains("[PARTIAL] downstream"), "{text}");
        assert!(
            text.contains(
                "compensating controls required: jump-host-isolation, post-session-review"
            ),
            "{text}"
        );
    }
}
