//! Post-session attestation and review campaigns, on both backends with a manual clock: a
//! period with a break-glass grant, a legacy asset's partial teardown, a grant whose policy
//! required an attestation that never came, and a normal grant; the campaign lists exactly
//! the first three. "End" on the still-active break-glass grant revokes it; every decision
//! is an event; closing early is refused.

use super::*;
use jitgate_core::Clock;
use jitgate_testkit::each_backend;
use std::time::{Duration, Instant};

/// The sample policies plus one that asks for an attestation of human reads of the
/// historian (the sample asks it of vendors on high and safety assets, whose approvals
/// need step-up; this keeps the scenario to one approval).
fn policies_with_attestation() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "cedar") {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        dir.path().join("50-attest-historian.cedar"),
        r#"@id("historian-read-attested")
@approvals("1")
@approver_role("engineer")
@approver_site("asset")
@max_duration("8h")
@attestation("required")
permit (principal, action == Jitgate::Action::"request", resource)
when {
  principal.kind == "human" &&
  resource.kind == "historian" &&
  !context.writes &&
  context.path == "planned"
};
"#,
    )
    .unwrap();
    dir
}

async fn start(store: jitgate_store::Store, policies: &tempfile::TempDir) -> Harness {
    let clock = Arc::new(ManualClock::new(start_time()));
    let dir = policies.path().to_path_buf();
    Harness::start_configured(store, clock, move |c| {
        c.policy_dir = Some(dir);
        // Short, so the clock moves less than the teardown's wait for gateways (30 s): the
        // brokered grants here have no gateway, and their teardowns stay `pending`.
        c.review_due_after = "5s".into();
        // No gateway runs here: a brokered grant's teardown waits this long for one to
        // acknowledge (in real time), so it stays `pending` for the whole test instead of
        // turning `failed` — which a campaign would rightly list — on a slow machine.
        c.teardown_timeout = "5m".into();
    })
    .await
}

fn ask(asset: &str, rule: &str, duration: &str, path: &str) -> Value {
    json!({
        "scope": [{"asset": asset, "modbus": [rule]}],
        "duration": duration, "reason": "campaign scenario", "reference": "WO-17", "path": path,
    })
}

/// File as `who`, approve as `approver`, return the grant id.
async fn granted(h: &mut Harness, who: &str, approver: &str, body: Value) -> String {
    let req = h.request(who, body).await;
    let (s, v) = h.approve(approver, &req, None).await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    v["grant"]["id"].as_str().unwrap().to_string()
}

async fn complete(h: &mut Harness, who: &str, g: &str) {
    let (s, v) = h
        .call(who, "POST", &format!("/api/v1/grants/{g}/complete"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
}

/// Poll until the teardown of `g` is `partial` (the teardown worker runs on its own).
async fn until_partial(h: &mut Harness, g: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = h
            .call("sam", "GET", &format!("/api/v1/grants/{g}/teardown"), None)
            .await;
        if v["verdict"] == "partial" {
            return;
        }
        assert!(Instant::now() < deadline, "teardown of {g}: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn keys(campaign: &Value) -> Vec<String> {
    let mut k: Vec<String> = campaign["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

async fn decide(
    h: &mut Harness,
    who: &str,
    c: &str,
    key: &str,
    decision: &str,
) -> (StatusCode, Value) {
    h.call(
        who,
        "POST",
        &format!("/api/v1/campaigns/{c}/items/{key}/decision"),
        Some(json!({"decision": decision, "note": format!("{decision}: checked with the shift log")})),
    )
    .await
}

#[tokio::test]
async fn a_campaign_lists_only_the_exceptions_of_its_period_and_end_revokes() {
    each_backend(|store| async move {
        let policies = policies_with_attestation();
        let mut h = start(store, &policies).await;
        let from = h.clock.now() - chrono::Duration::seconds(1);

        // A normal grant: requested, approved, used, completed; nothing to review.
        let normal = granted(&mut h, "alice", "bob", read_plc7()).await;
        complete(&mut h, "alice", &normal).await;
        // A grant whose policy required an attestation; bob never gives it.
        let owed = granted(
            &mut h,
            "bob",
            "alice",
            ask("historian", "read holding 0-9 unit 1", "1h", "planned"),
        )
        .await;
        let (_, g) = h
            .call(
                "bob",
                "GET",
                &format!("/api/v1/grants/{owed}/attestation"),
                None,
            )
            .await;
        assert_eq!(g["state"], "waiting", "{g:#}");
        // Attesting while the grant is active is refused: the session is not over.
        let (s, v) = h
            .call(
                "bob",
                "POST",
                &format!("/api/v1/grants/{owed}/attestation"),
                Some(json!({"task_done": true})),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::CONFLICT, Some("wrong_state")),
            "{v:#}"
        );
        complete(&mut h, "bob", &owed).await;
        // A legacy asset: teardown can only be partial.
        let legacy = granted(
            &mut h,
            "alice",
            "carol",
            ask("plc-legacy-1", "read holding 0-9 unit 1", "1h", "planned"),
        )
        .await;
        complete(&mut h, "alice", &legacy).await;
        until_partial(&mut h, &legacy).await;
        // Break-glass, still active when the campaign is decided (30 minutes).
        let bg = h
            .request(
                "alice",
                ask("plc-7", "read holding 0-99 unit 1", "30m", "emergency"),
            )
            .await;
        let bg = bg["grant"]["id"].as_str().unwrap().to_string();

        // Past the grace period (5 s) the owed attestation is missing.
        let (_, missing) = h
            .call("sam", "GET", "/api/v1/attestations?missing=true", None)
            .await;
        assert_eq!(missing, json!([]), "still within the grace period");
        h.clock.advance(chrono::Duration::seconds(6));
        let (s, missing) = h
            .call("sam", "GET", "/api/v1/attestations?missing=true", None)
            .await;
        assert_eq!(s, StatusCode::OK);
        let listed: Vec<&str> = missing
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["grant_id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, [owed.as_str()], "{missing:#}");
        assert_eq!(missing[0]["state"], "missing");

        let to = h.clock.now() + chrono::Duration::seconds(1);
        // Only security staff and admins open campaigns.
        let body = json!({"period_start": from, "period_end": to});
        let (s, v) = h
            .call("bob", "POST", "/api/v1/campaigns", Some(body.clone()))
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{v:#}"
        );
        let (s, c) = h.call("sam", "POST", "/api/v1/campaigns", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{c:#}");
        let mut want = vec![
            format!("attestation:{owed}"),
            format!("break_glass:{bg}"),
            format!("teardown:{legacy}"),
        ];
        want.sort();
        assert_eq!(
            keys(&c),
            want,
            "exactly these, and not the normal grant {normal}: {c:#}"
        );
        let teardown = c["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["key"] == format!("teardown:{legacy}"))
            .unwrap();
        assert_eq!(
            teardown["kind"],
            json!({"kind": "teardown", "grant_id": legacy, "verdict": "partial"})
        );
        assert_eq!(
            (c["total"].as_u64(), c["decided"].as_u64()),
            (Some(3), Some(0))
        );
        let id = c["id"].as_str().unwrap().to_string();

        // A campaign on the south site holds only the legacy asset's item.
        let (s, south) = h
            .call(
                "sam",
                "POST",
                "/api/v1/campaigns",
                Some(json!({"period_start": from, "period_end": to, "site": "south"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{south:#}");
        assert_eq!(keys(&south), [format!("teardown:{legacy}")]);

        // Closing before every item is decided is refused, saying how many are left.
        let (s, v) = h
            .call(
                "sam",
                "POST",
                &format!("/api/v1/campaigns/{id}/close"),
                None,
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::CONFLICT, Some("campaign_incomplete")),
            "{v:#}"
        );
        assert!(
            v["message"].as_str().unwrap().contains("3 undecided"),
            "{v:#}"
        );

        // A decision needs a note.
        let (s, v) = h
            .call(
                "sam",
                "POST",
                &format!("/api/v1/campaigns/{id}/items/break_glass:{bg}/decision"),
                Some(json!({"decision": "keep", "note": "  "})),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")),
            "{v:#}"
        );

        // "End" on the active break-glass grant revokes it at once.
        let (s, v) = decide(&mut h, "sam", &id, &format!("break_glass:{bg}"), "end").await;
        assert_eq!(s, StatusCode::OK, "{v:#}");
        assert_eq!(v["effect"], json!({"kind": "revoke_grant", "grant_id": bg}));
        let (_, g) = h
            .call("sam", "GET", &format!("/api/v1/grants/{bg}"), None)
            .await;
        assert_eq!(g["state"], "ending", "{g:#}");
        assert_eq!(g["end_reason"]["kind"], "revoked");
        assert_eq!(g["end_reason"]["by"], "sam");
        // Decided once.
        let (s, v) = decide(&mut h, "sam", &id, &format!("break_glass:{bg}"), "keep").await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::CONFLICT, Some("already_decided")),
            "{v:#}"
        );
        // "End" on a grant that has ended already records that nothing was left to end.
        let (s, v) = decide(&mut h, "sam", &id, &format!("attestation:{owed}"), "end").await;
        assert_eq!(s, StatusCode::OK, "{v:#}");
        assert_eq!(
            v["effect"],
            json!({"kind": "grant_already_ended", "grant_id": owed})
        );
        let (s, v) = decide(&mut h, "sam", &id, &format!("teardown:{legacy}"), "narrow").await;
        assert_eq!(s, StatusCode::OK, "{v:#}");
        assert_eq!(v["effect"], json!({"kind": "record_only"}));

        let (s, c) = h
            .call(
                "sam",
                "POST",
                &format!("/api/v1/campaigns/{id}/close"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{c:#}");
        assert_eq!(
            (c["state"].as_str(), c["decided"].as_u64()),
            (Some("closed"), Some(3))
        );
        let (s, v) = h
            .call(
                "sam",
                "POST",
                &format!("/api/v1/campaigns/{id}/close"),
                None,
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::CONFLICT, Some("wrong_state")),
            "{v:#}"
        );

        // The decisions are evidence.
        let opened = events_of(&mut h, "campaign.opened").await;
        assert_eq!(opened.len(), 2, "{opened:?}");
        let decided = events_of(&mut h, "campaign.item_decided").await;
        assert_eq!(decided.len(), 3, "{decided:?}");
        let ended = decided
            .iter()
            .find(|e| e["data"]["decision"] == "end" && e["grant_id"] == bg)
            .unwrap();
        assert_eq!(ended["actor"], "sam");
        assert_eq!(ended["data"]["item"]["kind"], "break_glass");
        assert!(ended["data"]["note"]
            .as_str()
            .unwrap()
            .contains("shift log"));
        let closed = events_of(&mut h, "campaign.closed").await;
        assert_eq!(closed.len(), 1);
        assert_eq!(
            (
                closed[0]["data"]["kept"].as_u64(),
                closed[0]["data"]["narrowed"].as_u64(),
                closed[0]["data"]["ended"].as_u64()
            ),
            (Some(0), Some(1), Some(2))
        );
        let revoked = events_of(&mut h, "grant.ended").await;
        assert!(
            revoked
                .iter()
                .any(|e| e["grant_id"] == bg && e["data"]["end_reason"]["kind"] == "revoked"),
            "{revoked:?}"
        );

        // The list pages like every list.
        let (s, list) = h
            .call("sam", "GET", "/api/v1/campaigns?limit=1", None)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 1);
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn reviewers_are_never_a_party_of_the_item_and_attestations_are_the_subjects() {
    each_backend(|store| async move {
        let policies = policies_with_attestation();
        let mut h = start(store, &policies).await;
        let from = h.clock.now() - chrono::Duration::seconds(1);
        let legacy = granted(&mut h, "alice", "carol", ask("plc-legacy-1", "read holding 0-9 unit 1", "1h", "planned")).await;
        complete(&mut h, "alice", &legacy).await;
        until_partial(&mut h, &legacy).await;
        // alice joins security afterwards: she still never reviews her own access.
        let (_, mut alice) = h.call("sam", "GET", "/api/v1/identities/alice", None).await;
        alice["roles"] = json!(["engineer", "oncall", "security"]);
        let (s, v) = h.call("sam", "PUT", "/api/v1/identities/alice", Some(alice)).await;
        assert!(s.is_success(), "{v:#}");
        let to = h.clock.now() + chrono::Duration::seconds(1);
        let (s, c) = h
            .call("alice", "POST", "/api/v1/campaigns", Some(json!({"period_start": from, "period_end": to})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c:#}");
        let id = c["id"].as_str().unwrap().to_string();
        let key = format!("teardown:{legacy}");
        assert_eq!(keys(&c), std::slice::from_ref(&key));
        let (s, v) = decide(&mut h, "alice", &id, &key, "keep").await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("separation_of_duties")), "{v:#}");
        // carol approved it but is no reviewer: campaign decisions are for security/admin.
        let (s, v) = decide(&mut h, "carol", &id, &key, "keep").await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{v:#}");
        let (s, _) = decide(&mut h, "sam", &id, &key, "keep").await;
        assert_eq!(s, StatusCode::OK);

        // The attestation is the subject's alone, once.
        let (s, v) = h
            .call("carol", "POST", &format!("/api/v1/grants/{legacy}/attestation"), Some(json!({"task_done": true})))
            .await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{v:#}");
        let body = json!({"task_done": false, "changes": ["pump P2 setpoint 40 -> 38"], "note": "rest postponed"});
        let (s, v) = h
            .call("alice", "POST", &format!("/api/v1/grants/{legacy}/attestation"), Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v:#}");
        assert_eq!((v["state"].as_str(), v["required"].as_bool(), v["task_done"].as_bool()), (Some("given"), Some(false), Some(false)));
        let (s, v) = h
            .call("alice", "POST", &format!("/api/v1/grants/{legacy}/attestation"), Some(body))
            .await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::CONFLICT, Some("already_attested")), "{v:#}");
        let recorded = events_of(&mut h, "attestation.recorded").await;
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0]["actor"], "alice");
        assert_eq!(recorded[0]["grant_id"], legacy);
        assert_eq!(recorded[0]["data"]["attested_as"], "subject");
        assert_eq!(recorded[0]["data"]["changes"], json!(["pump P2 setpoint 40 -> 38"]));
        let (s, given) = h.call("sam", "GET", "/api/v1/attestations", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(given.as_array().unwrap().len(), 1, "{given:#}");
        // Bad input is named.
        let (s, v) = h
            .call("alice", "POST", &format!("/api/v1/grants/{legacy}/attestation"), Some(json!({"task_done": "yes"})))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v:#}");
        let (s, v) = h
            .call("alice", "POST", &format!("/api/v1/grants/{legacy}/attestation"), Some(json!({"task_done": true, "changes": [" "]})))
            .await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")), "{v:#}");
        h.stop().await;
    })
    .await;
}
