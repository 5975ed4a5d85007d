use super::*;
use jitgate_testkit::each_backend;

pub(crate) async fn enroll_totp(h: &mut Harness, who: &str) -> String {
    let (s, v) = h.call(who, "POST", "/api/v1/auth/totp/enroll", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(v["otpauth_url"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let code = jitgate_server::auth::totp_code_at(&secret, h.clock.now_ts()).unwrap();
    let (s, v) = h
        .call(
            who,
            "POST",
            "/api/v1/auth/totp/confirm",
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    // Move past the step just used, so the next code is fresh.
    h.clock.advance(chrono::Duration::seconds(30));
    secret
}

pub(crate) trait NowTs {
    fn now_ts(&self) -> Timestamp;
}
impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        jitgate_core::Clock::now(self)
    }
}

#[tokio::test]
async fn request_approve_grant_revoke_with_events() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        for who in ["alice", "bob", "carol", "sam"] {
            h.login(who).await; // sign-ins are events of their own
        }
        let events_before = h.event_count().await;
        let req = h.request("alice", read_plc7()).await;
        assert_eq!(req["state"], "pending", "{req}");
        assert_eq!(
            req["decision"]["determining_policies"],
            json!(["human-read"])
        );
        assert_eq!(req["obligations"]["approvals"], 1);
        assert!(req["scope_digest"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(
            req["description"][0],
            "Modbus read holding 0–99 on plc-7 (unit 1)"
        );

        // bob sees it in his inbox; carol (other site) does not.
        let (_, inbox) = h
            .call("bob", "GET", "/api/v1/requests?awaiting=me", None)
            .await;
        assert!(
            inbox
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == req["id"]),
            "{inbox}"
        );
        let (_, inbox) = h
            .call("carol", "GET", "/api/v1/requests?awaiting=me", None)
            .await;
        assert!(inbox.as_array().unwrap().is_empty(), "{inbox}");

        let (s, approved) = h.approve("bob", &req, None).await;
        assert_eq!(s, StatusCode::OK, "{approved}");
        assert_eq!(approved["state"], "active");
        assert_eq!(
            approved["approvals"][0]["scope_digest"],
            req["scope_digest"]
        );
        let grant_id = approved["grant"]["id"].as_str().unwrap().to_string();
        assert_eq!(approved["grant"]["scope_digest"], req["scope_digest"]);

        let (_, grants) = h
            .call(
                "alice",
                "GET",
                "/api/v1/grants?state=active&mine=true",
                None,
            )
            .await;
        assert_eq!(grants.as_array().unwrap().len(), 1, "{grants}");
        assert_eq!(grants[0]["remaining_secs"], 3600);

        // carol is not involved and may not revoke; sam (security) may.
        let (s, v) = h
            .call(
                "carol",
                "POST",
                &format!("/api/v1/grants/{grant_id}/revoke"),
                Some(json!({"reason": "x"})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        let (s, v) = h
            .call(
                "sam",
                "POST",
                &format!("/api/v1/grants/{grant_id}/revoke"),
                Some(json!({"reason": "walkthrough finished"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["state"], "ending");
        assert_eq!(v["end_reason"]["kind"], "revoked");
        assert_eq!(v["end_reason"]["by"], "sam");

        let rid = req["id"].as_str().unwrap();
        let (_, events) = h
            .call(
                "alice",
                "GET",
                &format!("/api/v1/events?request={rid}"),
                None,
            )
            .await;
        let kinds: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "request.submitted",
                "request.decided",
                "approval.recorded",
                "request.approved",
                "grant.issued",
                "grant.ended"
            ]
        );
        let ended = &events[5];
        assert_eq!(ended["grant_id"], grant_id.as_str());
        assert_eq!(
            (
                ended["state_before"].as_str(),
                ended["state_after"].as_str()
            ),
            (Some("active"), Some("ending"))
        );
        assert_eq!(h.event_count().await, events_before + 6);
        let (_, chain) = h.call("sam", "GET", "/api/v1/evidence/chain", None).await;
        assert_eq!(chain["ok"], true, "{chain}");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn vendor_needs_two_engineers_with_step_up_and_totp_cannot_be_replayed() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let bob_secret = enroll_totp(&mut h, "bob").await;
        let alice_secret = enroll_totp(&mut h, "alice").await;
        let req = h.request("vera", write_plc7("2h")).await;
        assert_eq!(req["state"], "pending", "{req}");
        assert_eq!(req["obligations"]["approvals"], 2);
        assert_eq!(req["obligations"]["step_up"], true);

        let (s, v) = h.approve("bob", &req, None).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("step_up_required")),
            "{v}"
        );
        let (s, v) = h.approve("bob", &req, Some("000000".into())).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("bad_totp")),
            "{v}"
        );

        let code = jitgate_server::auth::totp_code_at(&bob_secret, h.clock.now_ts()).unwrap();
        let (s, v) = h.approve("bob", &req, Some(code.clone())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["state"], "pending");
        assert_eq!(v["approvals"][0]["step_up"], true);

        // The same code again is a replay, even for another decision.
        let (s, v) = h.approve("bob", &req, Some(code)).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("bad_totp")),
            "{v}"
        );
        assert!(
            v["message"].as_str().unwrap().contains("already used"),
            "{v}"
        );

        // With a fresh code, bob still counts once.
        h.clock.advance(chrono::Duration::seconds(30));
        let code = jitgate_server::auth::totp_code_at(&bob_secret, h.clock.now_ts()).unwrap();
        let (s, v) = h.approve("bob", &req, Some(code)).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::CONFLICT, Some("already_approved")),
            "{v}"
        );

        // Someone who has not enrolled TOTP cannot satisfy step-up.
        let (s, v) = h.approve("carol", &req, Some("123456".into())).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("bad_totp")),
            "{v}"
        );

        let code = jitgate_server::auth::totp_code_at(&alice_secret, h.clock.now_ts()).unwrap();
        let (s, v) = h.approve("alice", &req, Some(code)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["state"], "active", "{v}");
        assert_eq!(v["approved_by"], json!(["bob", "alice"]));
        let grant = &v["grant"];
        assert_eq!(grant["review_required"], true);

        // Logging in now needs TOTP for bob.
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"identity": "bob", "password": password("bob")})),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("totp_required")),
            "{v}"
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn visibility_follows_involvement_and_vendor_org() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let alices = h.request("alice", read_plc7()).await;
        let veras = h.request("vera", write_plc7("1h")).await;
        let a = alices["id"].as_str().unwrap();
        let v = veras["id"].as_str().unwrap();
        // A vendor of another org sees neither; vera sees only her own.
        let (s, _) = h
            .call("victor", "GET", &format!("/api/v1/requests/{v}"), None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = h
            .call("vera", "GET", &format!("/api/v1/requests/{a}"), None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, list) = h.call("vera", "GET", "/api/v1/requests", None).await;
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [v]);
        // Security sees everything.
        let (_, list) = h.call("sam", "GET", "/api/v1/requests", None).await;
        assert_eq!(list.as_array().unwrap().len(), 2);
        // A vendor cannot approve anything, and cannot read the whole event log.
        let (s, _) = h.approve("victor", &alices, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, body) = h.call("vera", "GET", "/api/v1/events", None).await;
        assert_eq!(
            (s, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn break_glass_is_immediate_for_oncall_and_refused_to_vendors() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let mut body = write_plc7("30m");
        body["path"] = json!("emergency");
        let v = h.request("oscar", body.clone()).await;
        assert_eq!(v["state"], "active", "{v}");
        assert_eq!(v["grant"]["emergency"], true);
        assert_eq!(v["grant"]["review_required"], true);

        let v = h.request("vera", body.clone()).await;
        assert_eq!(v["state"], "denied", "{v}");
        let reasons = v["decision"]["reasons"].to_string();
        assert!(
            reasons.contains("policy `"),
            "a denial names its rule: {reasons}"
        );

        body["duration"] = json!("2h");
        let (s, v) = h
            .call("oscar", "POST", "/api/v1/requests", Some(body))
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("duration_above_maximum")
            ),
            "{v}"
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn scheduler_expires_grants_and_lapses_requests() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let mut body = write_plc7("30m");
        body["path"] = json!("emergency");
        let bg = h.request("oscar", body).await;
        let gid = bg["grant"]["id"].as_str().unwrap().to_string();
        let pending = h.request("alice", read_plc7()).await;

        h.clock.advance(chrono::Duration::minutes(29));
        h.tick().await;
        let (_, g) = h
            .call("oscar", "GET", &format!("/api/v1/grants/{gid}"), None)
            .await;
        assert_eq!(g["state"], "active");

        h.clock.advance(chrono::Duration::minutes(2));
        h.tick().await;
        let (_, g) = h
            .call("oscar", "GET", &format!("/api/v1/grants/{gid}"), None)
            .await;
        assert_eq!(g["state"], "ending", "{g}");
        assert_eq!(g["end_reason"]["kind"], "expired");
        assert_eq!(g["ended_at"], g["expires_at"]);

        h.clock.advance(chrono::Duration::minutes(30));
        h.tick().await;
        let (_, r) = h
            .call(
                "alice",
                "GET",
                &format!("/api/v1/requests/{}", pending["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(r["state"], "lapsed", "{r}");
        let (s, v) = h.approve("bob", &pending, None).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::CONFLICT, Some("request_lapsed")),
            "{v}"
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn planned_window_opens_later() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let start = h.clock.now_ts() + chrono::Duration::hours(2);
        let mut body = read_plc7();
        body["start"] = json!(start.to_rfc3339());
        let req = h.request("alice", body).await;
        let (_, v) = h.approve("bob", &req, None).await;
        assert_eq!(v["state"], "approved", "not active before its window: {v}");
        h.clock.advance(chrono::Duration::hours(2));
        h.tick().await; // the background scheduler may have done it already
        let (_, v) = h
            .call(
                "alice",
                "GET",
                &format!("/api/v1/requests/{}", req["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(v["state"], "active");
        assert_eq!(
            v["grant"]["not_before"].as_str().unwrap(),
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn workloads_use_api_keys_and_only_read() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        // bob is not an owner of svc-historian; alice is.
        let body = json!({"identity": "svc-historian", "name": "nightly export"});
        let (s, _) = h
            .call("bob", "POST", "/api/v1/api-keys", Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, key) = h
            .call("alice", "POST", "/api/v1/api-keys", Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "{key}");
        let key = key["key"].as_str().unwrap().to_string();
        assert!(key.starts_with("jgk_"));
        h.set_token("svc-historian", &key);
        let (_, me) = h
            .call("svc-historian", "GET", "/api/v1/auth/whoami", None)
            .await;
        assert_eq!(me["auth"], "api_key");

        let mut read = json!({
            "scope": [{"asset": "historian", "modbus": ["read input 0-9"]}],
            "duration": "30m", "reason": "nightly export", "path": "routine"
        });
        let v = h.request("svc-historian", read.clone()).await;
        assert_eq!(
            v["state"], "active",
            "low-criticality reads by workloads are auto-approved: {v}"
        );
        read["scope"][0]["modbus"] = json!(["write holding 0-9"]);
        let v = h.request("svc-historian", read.clone()).await;
        assert_eq!(v["state"], "denied", "{v}");
        assert!(
            v["state_reason"]
                .as_str()
                .unwrap()
                .contains("forbid-workload-writes"),
            "{v}"
        );

        // alice may request on behalf of the workload she owns; bob may not.
        read["subject"] = json!("svc-historian");
        read["scope"][0]["modbus"] = json!(["read input 0-9"]);
        let v = h.request("alice", read.clone()).await;
        assert_eq!(v["subject"], "svc-historian");
        let (s, v) = h.call("bob", "POST", "/api/v1/requests", Some(read)).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{v}"
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn disabling_an_identity_is_a_context_change_and_locks_it_out() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        h.login("vera").await;
        let (s, _) = h
            .call(
                "bob",
                "POST",
                "/api/v1/identities/vera/disable",
                Some(json!({"reason": "left acme"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "only admins disable identities");
        let (s, v) = h
            .call(
                "sam",
                "POST",
                "/api/v1/identities/vera/disable",
                Some(json!({"reason": "left acme"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "disabled");
        let (s, v) = h.call("vera", "GET", "/api/v1/auth/whoami", None).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("identity_disabled")),
            "{v}"
        );
        let (_, events) = h.call("sam", "GET", "/api/v1/events", None).await;
        let last = events.as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["kind"], "context.changed");
        assert_eq!(last["data"]["id"], "vera");
        assert_eq!(last["data"]["change"]["status"], "disabled");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn openapi_document_lists_the_api() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let h = Harness::start(store).await;
    let (s, doc) = h.raw("GET", "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/requests",
        "/api/v1/requests/{id}/approve",
        "/api/v1/grants/{id}/revoke",
        "/api/v1/auth/login",
    ] {
        assert!(doc["paths"].get(path).is_some(), "missing {path}");
    }
    assert!(doc["components"]["schemas"].get("NewRequestBody").is_some());
    h.stop().await;
}
