//! A standing exception at the gateway, in process: the real server and gateway on loopback,
//! the simulated PLC as the historian. The workload's live Modbus session under its
//! exception is cut when re-validation becomes overdue (the scheduler's pass on the manual
//! clock), its token is refused, the teardown is verified, and the session counts as a use.

use super::exceptions::{active_exception, add_people, relogin};
use super::gateway::{read_holding, refused_code, rig};
use super::teardown::{assert_cut, check, control_up, teardown_when};
use super::*;
use jitgate_credential::ClientKey;
use jitgate_gateway::connect::{open_tunnel, Target};
use jitgate_gateway::wire::TokenResponse;
use jitgate_testkit::each_backend;

#[tokio::test]
async fn a_live_session_under_an_exception_is_cut_when_revalidation_is_overdue() {
    each_backend(|store| async move {
        let mut r = rig(store).await;
        control_up(&r).await;
        // The historian is the simulated PLC (unit 1), behind gw-north.
        {
            let mut tx = r.h.state().store.write().await.unwrap();
            let mut asset = tx.get_asset("historian").await.unwrap().unwrap();
            asset.endpoints.modbus.as_mut().unwrap().address = r.plc.local_addr().to_string();
            tx.upsert_asset(&asset).await.unwrap();
            tx.commit().await.unwrap();
        }
        r.gw.gateway.refresh_now().await.unwrap();
        add_people(&mut r.h).await;
        let ex = active_exception(&mut r.h, "180d", "1d").await;
        let id = ex["id"].as_str().unwrap().to_string();
        let g = ex["grant_id"].as_str().unwrap().to_string();

        // The workload signs in with a key its owner minted, and gets a short token.
        let (s, key) =
            r.h.call(
                "alice",
                "POST",
                "/api/v1/api-keys",
                Some(json!({"identity": "svc-historian", "name": "export"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{key}");
        r.h.set_token("svc-historian", key["key"].as_str().unwrap());
        let client = ClientKey::generate();
        let (s, v) =
            r.h.call(
                "svc-historian",
                "POST",
                &format!("/api/v1/grants/{g}/token"),
                Some(json!({"public_key": client.public_b64()})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let token: TokenResponse = serde_json::from_value(v).unwrap();
        let issued_at = jitgate_core::Clock::now(r.h.clock.as_ref());
        assert_eq!(
            token.expires_at.timestamp(),
            issued_at.timestamp() + jitgate_core::exception::CREDENTIAL_MAX_SECS,
            "the token lives 12 hours, not the exception's 180 days"
        );
        let target = Target {
            token,
            key: client,
            protocol: None,
        };
        let (mut live, _) = open_tunnel(&target).await.unwrap();
        read_holding(&mut live, 0, 1).await.unwrap();

        // A day and a minute later nobody has re-validated: the scheduler ends the grant and
        // the gateway cuts the live session at once.
        r.h.clock
            .advance(chrono::Duration::days(1) + chrono::Duration::minutes(1));
        r.h.tick().await;
        assert_cut(&mut live).await;
        assert_eq!(refused_code(open_tunnel(&target).await), "grant_revoked");

        // The gateway keeps the wall clock and the teardown's probe is signed on the server's:
        // bring the server's clock back to the wall clock so the probe is judged on the
        // revocation alone (as in production, where both clocks agree). An attempt made
        // while the clocks disagreed failed on the probe's times; ask the worker to retry
        // (its hook for a gateway that reconnected) until it has seen the agreeing clocks.
        r.h.clock
            .set(chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0).unwrap());
        relogin(&mut r.h, &["sam", "oscar"]).await;
        let retry = r.h.state().teardown_retry_now.clone();
        let t = teardown_when(&mut r.h, &g, "verified", |v| {
            retry.store(true, std::sync::atomic::Ordering::SeqCst);
            v["verdict"] == "verified"
        })
        .await;
        let closed = check(&t, "sessions_closed");
        let sessions = closed["evidence"]["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 1, "{t:#}");
        assert!(
            sessions[0]["reason"]
                .as_str()
                .unwrap()
                .contains("revalidation_overdue"),
            "{t:#}"
        );
        assert_eq!(
            check(&t, "credential_refused")["evidence"]["refusal_code"],
            "grant_revoked"
        );

        let (_, grant) =
            r.h.call("sam", "GET", &format!("/api/v1/grants/{g}"), None)
                .await;
        assert_eq!(
            grant["end_reason"]["kind"], "revalidation_overdue",
            "{grant}"
        );
        // Every use is logged: the session is the exception's one use.
        let (_, v) =
            r.h.call("oscar", "GET", &format!("/api/v1/exceptions/{id}"), None)
                .await;
        assert_eq!(v["uses"], 1, "{v}");
        assert!(v["last_use"].is_string(), "{v}");
        assert_eq!(v["end_reason"], "revalidation_overdue", "{v}");
        r.gw.stop().await;
        r.h.stop().await;
    })
    .await;
}
