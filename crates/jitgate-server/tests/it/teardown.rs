//! Revocation reaching live sessions, context changes ending grants, and the teardown
//! verification — in process: the real server and gateway on loopback (control channel
//! over a real WebSocket, probes over real TLS tunnels), the simulated PLC as the device.

use super::gateway::{grant, read_holding, refused_code, rig, rig_at, token_for, Rig};
use super::*;
use jitgate_credential::ClientKey;
use jitgate_gateway::connect::{open_tunnel, Target};
use std::time::{Duration, Instant};

/// Wait until the gateway's control channel is up (it connects right after start).
pub(crate) async fn control_up(r: &Rig) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !r
        .gw
        .gateway
        .control_connected
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        assert!(Instant::now() < deadline, "control channel never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll a grant's teardown until its verdict is `want` (or fail after 30 s).
pub(crate) async fn teardown_until(h: &mut Harness, grant: &str, want: &str) -> Value {
    teardown_when(h, grant, &format!("verdict {want}"), |v| {
        v["verdict"] == want
    })
    .await
}

/// The teardown once an attempt ran and waits for gateways (`waiting_for: gateways`).
async fn until_waiting_for_gateways(h: &mut Harness, grant: &str) -> Value {
    let v = teardown_when(h, grant, "waiting for gateways", |v| {
        v["waiting_for"] == "gateways"
    })
    .await;
    assert_eq!(v["verdict"], "pending", "{v:#}");
    v
}

/// Poll a grant's teardown until `done` holds of it (or fail after 30 s).
pub(crate) async fn teardown_when(
    h: &mut Harness,
    grant: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, v) = h
            .call(
                "sam",
                "GET",
                &format!("/api/v1/grants/{grant}/teardown"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "teardown of {grant} never reached {what}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn check<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {t:#}"))
}

/// A live session: alice's grant, a token, an open tunnel that has read once.
async fn live_session(
    r: &mut Rig,
) -> (
    String,
    Target,
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) {
    let g = grant(&mut r.h).await;
    let key = ClientKey::generate();
    let t = token_for(&mut r.h, &g, &key).await;
    let target = Target {
        token: t,
        key,
        protocol: None,
    };
    let (mut live, _) = open_tunnel(&target).await.unwrap();
    read_holding(&mut live, 0, 1).await.unwrap();
    (g, target, live)
}

/// The session is cut within a second: reads fail (EOF or reset) by then.
///
/// The revocation travels to the gateway on the control channel while the caller goes on:
/// a read sent at once may race it (and be answered, the grant's scope still being what
/// it was a moment ago); what the gateway promises is the cut within milliseconds of the
/// message (docs/gateway.md, "The control channel"), so reads are retried until one fails,
/// and a session still answering after a second fails the test.
pub(crate) async fn assert_cut(live: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut answered = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, read_holding(live, 0, 1)).await {
            Ok(Err(_)) => return,
            Ok(Ok(v)) if Instant::now() < deadline => {
                answered += 1;
                assert!(answered < 10_000, "the session keeps answering: {v:?}");
            }
            Ok(Ok(v)) => panic!("the session still answers 1 s after the grant ended: {v:?}"),
            Err(_) => panic!("the session neither answered nor closed within 1 s"),
        }
    }
}

/// The verdict is `verified` with each check's evidence as promised.
fn assert_verified(t: &Value, sessions: usize, reason: &str) {
    assert_eq!(t["grant_state"], "closed", "{t:#}");
    let closed = check(t, "sessions_closed");
    assert_eq!(closed["outcome"], "ok", "{t:#}");
    assert_eq!(closed["target"], "gw-north");
    let listed = closed["evidence"]["sessions"].as_array().unwrap();
    assert_eq!(listed.len(), sessions, "{t:#}");
    for s in listed {
        assert!(s["reason"].as_str().unwrap().contains(reason), "{s}");
        assert!(s["operations"].as_u64().unwrap() >= 1, "{s}");
        assert!(s["bytes_from_client"].as_u64().unwrap() > 0, "{s}");
    }
    assert_eq!(closed["evidence"]["live_sessions"], 0);
    let refused = check(t, "credential_refused");
    assert_eq!(refused["outcome"], "ok", "{t:#}");
    assert_eq!(
        refused["evidence"]["refusal_code"], "grant_revoked",
        "{t:#}"
    );
    assert_eq!(check(t, "downstream")["outcome"], "ok");
}

/// The live session is cut, its token is refused by the revocation list, and the teardown
/// is `verified` with one session closed for `reason`.
async fn cut_refused_verified(
    h: &mut Harness,
    g: &str,
    target: &Target,
    live: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    reason: &str,
) {
    assert_cut(live).await;
    assert_eq!(refused_code(open_tunnel(target).await), "grant_revoked");
    let t = teardown_until(h, g, "verified").await;
    assert_verified(&t, 1, reason);
}

#[tokio::test]
async fn revocation_cuts_the_live_session_and_the_teardown_is_verified() {
    jitgate_testkit::each_backend(|store| async move {
        let mut r = rig(store).await;
        control_up(&r).await;
        let (g, target, mut live) = live_session(&mut r).await;
        let (s, v) =
            r.h.call(
                "sam",
                "POST",
                &format!("/api/v1/grants/{g}/revoke"),
                Some(json!({"reason": "contractor left the site"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // Cut; the same token again is refused by the gateway's revocation list; verified.
        cut_refused_verified(&mut r.h, &g, &target, &mut live, "grant_revoked").await;
        // The chain records each check and the verdict.
        let (_, events) =
            r.h.call("sam", "GET", &format!("/api/v1/events?grant={g}"), None)
                .await;
        let kinds: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.iter().filter(|k| **k == "teardown.check").count(), 3);
        let verdict_at = kinds.iter().position(|k| *k == "teardown.verdict").unwrap();
        let last_check = kinds.iter().rposition(|k| *k == "teardown.check").unwrap();
        assert!(verdict_at > last_check, "{kinds:?}");
        // Evidence order: the session's end is in the log before the verdict, and the
        // verdict names it.
        let all = events.as_array().unwrap();
        let ended: Vec<i64> = all
            .iter()
            .filter(|e| e["kind"] == "session.ended")
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(ended.len(), 1, "{kinds:?}");
        let verdict = &all[verdict_at];
        assert!(verdict["seq"].as_i64().unwrap() > ended[0], "{kinds:?}");
        assert_eq!(
            verdict["data"]["session_ended_events"],
            json!(ended),
            "{verdict}"
        );
        // The probe's refusal is in the log too (delivered by the gateway's spool).
        let events = super::gateway::events_until(&mut r.h, &format!("grant={g}"), |ev| {
            ev.iter().filter(|e| e["kind"] == "session.refused").count() >= 2
        })
        .await;
        assert!(events
            .iter()
            .any(|e| e["kind"] == "session.refused"
                && e["data"]["detail"]["code"] == "grant_revoked"));
        let (_, closed) =
            r.h.call("sam", "GET", "/api/v1/grants?state=closed", None)
                .await;
        assert!(closed.as_array().unwrap().iter().any(|x| x["id"] == g));
        // The cut is measured (revocation to the gateway's acknowledgement) and the verdict
        // counted.
        let (_, metrics) = r.h.call("sam", "GET", "/metrics", None).await;
        let metrics = metrics.as_str().unwrap();
        assert!(
            metrics.contains("jitgate_revocation_to_cut_seconds_count 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("jitgate_teardown_verdicts_total{verdict=\"verified\"} 1\n"),
            "{metrics}"
        );
        r.gw.stop().await;
        r.h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn disabling_the_subject_or_locking_out_the_asset_ends_the_grant() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut r = rig(store).await;
    control_up(&r).await;

    // Identity disabled.
    let (g, target, mut live) = live_session(&mut r).await;
    let (s, v) =
        r.h.call(
            "sam",
            "POST",
            "/api/v1/identities/alice/disable",
            Some(json!({"reason": "left the company"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    cut_refused_verified(&mut r.h, &g, &target, &mut live, "grant_context_changed").await;
    let (_, gv) =
        r.h.call("sam", "GET", &format!("/api/v1/grants/{g}"), None)
            .await;
    assert_eq!(gv["end_reason"]["what"], "identity alice disabled");
    let (s, _) =
        r.h.call(
            "sam",
            "POST",
            "/api/v1/identities/alice/enable",
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Asset locked out (a safety shutdown), through the inventory API.
    let (g, target, mut live) = live_session(&mut r).await;
    let (_, mut asset) = r.h.call("sam", "GET", "/api/v1/assets/plc-7", None).await;
    asset["lockout"] = json!(true);
    let (s, v) =
        r.h.call("sam", "PUT", "/api/v1/assets/plc-7", Some(asset))
            .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    cut_refused_verified(&mut r.h, &g, &target, &mut live, "grant_context_changed").await;
    r.gw.stop().await;
    r.h.stop().await;
}

#[tokio::test]
async fn withdrawing_an_approval_ends_the_active_grant() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut r = rig(store).await;
    control_up(&r).await;
    let (g, target, mut live) = live_session(&mut r).await;
    let (_, gv) =
        r.h.call("sam", "GET", &format!("/api/v1/grants/{g}"), None)
            .await;
    let req = gv["request_id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/requests/{req}/approval/withdraw");
    // Only the approver can withdraw their approval, and a reason is required.
    for (who, reason, want) in [
        ("alice", "x", StatusCode::BAD_REQUEST),
        ("bob", " ", StatusCode::UNPROCESSABLE_ENTITY),
        ("bob", "the work order was cancelled", StatusCode::OK),
    ] {
        let (s, v) =
            r.h.call(who, "POST", &path, Some(json!({ "reason": reason })))
                .await;
        assert_eq!(s, want, "{who} {reason:?}: {v}");
    }
    let (_, v) =
        r.h.call("sam", "GET", &format!("/api/v1/requests/{req}"), None)
            .await;
    assert!(v["approvals"].as_array().unwrap().is_empty(), "{v}");
    cut_refused_verified(&mut r.h, &g, &target, &mut live, "grant_context_changed").await;
    r.gw.stop().await;
    r.h.stop().await;
}

#[tokio::test]
async fn a_gateway_away_during_the_revocation_waits_then_fails_until_it_returns() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    // The server's clock starts 40 s behind the gateway's, so that moving it past the 30 s
    // grace below leaves the probe credentials it signs valid at the gateway.
    let behind = jitgate_core::teardown::RECONNECT_GRACE + chrono::Duration::seconds(10);
    let mut r = rig_at(store, crate::start_time() - behind).await;
    control_up(&r).await;
    let (g, target, mut live) = live_session(&mut r).await;
    // The gateway dies (its sessions with it), then the grant is revoked.
    let Rig { h, gw, config, .. } = r;
    let mut h = h;
    gw.stop().await;
    assert_cut(&mut live).await;
    let (s, _) = h
        .call(
            "sam",
            "POST",
            &format!("/api/v1/grants/{g}/revoke"),
            Some(json!({"reason": "incident"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // First it waits for the gateway: pending, no verdict, no alert, each check marked as
    // one the gateway never judged.
    let t = until_waiting_for_gateways(&mut h, &g).await;
    assert_eq!(t["grant_state"], "ending");
    for name in ["sessions_closed", "credential_refused"] {
        assert_eq!(check(&t, name)["not_judged"], true, "{name}: {t:#}");
    }
    let (_, events) = h
        .call(
            "sam",
            "GET",
            &format!("/api/v1/events?grant={g}&limit=500"),
            None,
        )
        .await;
    assert!(
        !events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "teardown.check" || e["kind"] == "teardown.verdict"),
        "nothing recorded while waiting: {events:#}"
    );
    // 30 s after the teardown started, a gateway still away is a failure.
    h.clock
        .advance(jitgate_core::teardown::RECONNECT_GRACE + chrono::Duration::seconds(3));
    h.state().teardown_wake.notify_one();
    let t = teardown_until(&mut h, &g, "failed").await;
    assert_eq!(t["grant_state"], "ending");
    assert_eq!(check(&t, "sessions_closed")["outcome"], "failed");
    assert!(
        check(&t, "sessions_closed")["detail"]
            .as_str()
            .unwrap()
            .contains("did not acknowledge"),
        "{t:#}"
    );
    assert_eq!(check(&t, "credential_refused")["outcome"], "failed");
    let (_, failed) = h
        .call("sam", "GET", "/api/v1/grants?state=failed", None)
        .await;
    assert!(
        failed.as_array().unwrap().iter().any(|x| x["id"] == g),
        "{failed:#}"
    );
    // It comes back (same state directory): it catches up on the revocation, and the
    // retried teardown is verified.
    let gw = jitgate_gateway::runtime::start(config).await.unwrap();
    let t = teardown_until(&mut h, &g, "verified").await;
    assert!(t["attempts"].as_i64().unwrap() >= 2, "{t:#}");
    assert_eq!(
        check(&t, "credential_refused")["evidence"]["refusal_code"],
        "grant_revoked"
    );
    let target = Target {
        token: jitgate_gateway::wire::TokenResponse {
            gateway_address: gw.addr.to_string(),
            ..target.token
        },
        key: target.key,
        protocol: None,
    };
    assert_eq!(refused_code(open_tunnel(&target).await), "grant_revoked");
    let (_, failed) = h
        .call("sam", "GET", "/api/v1/grants?state=failed", None)
        .await;
    assert!(failed.as_array().unwrap().is_empty(), "{failed:#}");
    gw.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn the_revocation_list_survives_a_gateway_restart() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut r = rig(store).await;
    control_up(&r).await;
    let (g, target, mut live) = live_session(&mut r).await;
    r.h.call(
        "sam",
        "POST",
        &format!("/api/v1/grants/{g}/revoke"),
        Some(json!({"reason": "test"})),
    )
    .await;
    assert_cut(&mut live).await;
    teardown_until(&mut r.h, &g, "verified").await;
    let Rig { h, gw, config, .. } = r;
    gw.stop().await;
    let text = std::fs::read_to_string(config.state_dir.join("revoked.jsonl")).unwrap();
    let line: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["grant_id"] == g.as_str())
        .unwrap_or_else(|| panic!("{g} not in the revocation list: {text}"));
    assert_eq!(line["reason"], "revoked", "{line}");
    let gw = jitgate_gateway::runtime::start(config).await.unwrap();
    // Before any word from the control channel, the list on disk already refuses it.
    assert!(gw.gateway.revoked_reason(&g).is_some());
    let target = Target {
        token: jitgate_gateway::wire::TokenResponse {
            gateway_address: gw.addr.to_string(),
            ..target.token
        },
        key: target.key,
        protocol: None,
    };
    assert_eq!(refused_code(open_tunnel(&target).await), "grant_revoked");
    gw.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn a_legacy_asset_gives_a_partial_verdict_naming_its_limitation() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut h = Harness::start(store).await;
    // Legacy assets: engineers, planned work, one engineer of the asset's site approves.
    let req = h
        .request(
            "alice",
            json!({
                "scope": [{"asset": "plc-legacy-1", "modbus": ["read holding 0-9 unit 1"]}],
                "duration": "1h",
                "reason": "pump station check",
                "reference": "WO-77",
                "path": "planned",
            }),
        )
        .await;
    let (s, v) = h.approve("carol", &req, None).await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    let g = v["grant"]["id"].as_str().unwrap().to_string();
    let (s, v) = h
        .call(
            "alice",
            "POST",
            &format!("/api/v1/grants/{g}/complete"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    let t = teardown_until(&mut h, &g, "partial").await;
    assert_eq!(t["grant_state"], "closed");
    let d = check(&t, "downstream");
    assert_eq!(d["outcome"], "partial");
    assert!(
        d["detail"]
            .as_str()
            .unwrap()
            .contains("local maintenance account"),
        "{d}"
    );
    assert_eq!(
        d["evidence"]["compensating_controls"],
        json!([
            "jump-host-isolation",
            "password-rotation-after-use",
            "post-session-review"
        ])
    );
    let (_, reviews) = h
        .call("sam", "GET", "/api/v1/reviews?state=open", None)
        .await;
    assert!(
        reviews
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["grant_id"] == g && x["reason"] == "legacy_asset"),
        "{reviews:#}"
    );
    // The policy for legacy assets (`@review("true")`) asks for its own review too.
    assert!(
        reviews
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["grant_id"] == g && x["reason"] == "policy"),
        "{reviews:#}"
    );
    h.stop().await;
}

#[tokio::test]
async fn suspending_a_vendor_org_ends_its_peoples_grants() {
    jitgate_testkit::each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let req = h
            .request(
                "vera",
                json!({
                    "scope": [{"asset": "plc-3", "modbus": ["read holding 0-9 unit 1"]}],
                    "duration": "1h",
                    "reason": "firmware inventory",
                    "reference": "PO-4411",
                    "path": "planned",
                }),
            )
            .await;
        let secret = super::lifecycle::enroll_totp(&mut h, "bob").await;
        let code = jitgate_server::auth::totp_code_at(&secret, jitgate_core::Clock::now(&*h.clock))
            .unwrap();
        let (s, v) = h.approve("bob", &req, Some(code)).await;
        assert_eq!(s, StatusCode::OK, "{v:#}");
        let g = v["grant"]["id"].as_str().unwrap().to_string();
        let (_, orgs) = h.call("sam", "GET", "/api/v1/orgs", None).await;
        let mut org = orgs
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == "acme-automation")
            .unwrap()
            .clone();
        org["status"] = json!("suspended");
        let (s, v) = h
            .call("sam", "PUT", "/api/v1/orgs/acme-automation", Some(org))
            .await;
        assert_eq!(s, StatusCode::OK, "{v:#}");
        let (_, gv) = h
            .call("sam", "GET", &format!("/api/v1/grants/{g}"), None)
            .await;
        assert_eq!(gv["state"], "ending", "{gv:#}");
        assert_eq!(gv["end_reason"]["kind"], "context_changed");
        assert_eq!(gv["end_reason"]["what"], "org acme-automation suspended");
        h.stop().await;
    })
    .await;
}
