//! Each kind of bad input gets its own error code, and leaves state and events unchanged.

use super::*;
use jitgate_core::Clock;
use jitgate_testkit::each_backend;

async fn expect_error(
    h: &mut Harness,
    who: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
    code: &str,
) -> String {
    h.login(who).await; // a sign-in is an event of its own
    let before = h.event_count().await;
    let (s, v) = h.call(who, method, path, body).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (status, Some(code)),
        "{method} {path}: {v}"
    );
    let message = v["message"].as_str().unwrap().to_string();
    assert!(message.len() > 15, "the message says what to do: {message}");
    assert_eq!(
        h.event_count().await,
        before,
        "a refused call appends no event ({code})"
    );
    message
}

#[tokio::test]
async fn refused_requests_say_why_and_change_nothing() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let mut body = read_plc7();
        body["scope"][0]["asset"] = json!("plc-99");
        let m = expect_error(
            &mut h,
            "alice",
            "POST",
            "/api/v1/requests",
            Some(body),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        assert!(m.contains("plc-99") && m.contains("jitgate assets"), "{m}");

        let mut body = read_plc7();
        body["subject"] = json!("nobody");
        expect_error(
            &mut h,
            "alice",
            "POST",
            "/api/v1/requests",
            Some(body),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;

        let mut body = read_plc7();
        body["scope"][0]["modbus"] = json!(["read holding 0-99 unit 9"]);
        expect_error(
            &mut h,
            "alice",
            "POST",
            "/api/v1/requests",
            Some(body),
            StatusCode::UNPROCESSABLE_ENTITY,
            "scope_not_exposed",
        )
        .await;

        let mut body = read_plc7();
        body["scope"][0]["dnp3"] = json!(["read class 0"]);
        expect_error(
            &mut h,
            "alice",
            "POST",
            "/api/v1/requests",
            Some(body),
            StatusCode::UNPROCESSABLE_ENTITY,
            "scope_not_exposed",
        )
        .await;

        let mut body = read_plc7();
        body["scope"][0]["modbus"] = json!(["write input 0-9"]);
        expect_error(
            &mut h,
            "alice",
            "POST",
            "/api/v1/requests",
            Some(body),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_scope",
        )
        .await;

        let m = expect_error(
            &mut h,
            "vera",
            "POST",
            "/api/v1/requests",
            Some(write_plc7("3h")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "duration_above_maximum",
        )
        .await;
        assert!(m.contains("7200"), "{m}");

        let mut body = read_plc7();
        body["duration"] = json!("forever");
        expect_error(
            &mut h,
            "alice",
            "POST",
            "/api/v1/requests",
            Some(body),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;

        let mut body = read_plc7();
        body["reason"] = json!("  ");
        expect_error(
            &mut h,
            "alice",
            "POST",
            "/api/v1/requests",
            Some(body),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;

        let mut body = read_plc7();
        body["duration"] = json!(7200);
        expect_error(
            &mut h,
            "alice",
            "POST",
            "/api/v1/requests",
            Some(body),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        )
        .await;

        let mut body = read_plc7();
        body["colour"] = json!("blue");
        let m = expect_error(
            &mut h,
            "alice",
            "POST",
            "/api/v1/requests",
            Some(body),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        )
        .await;
        assert!(m.contains("colour"), "{m}");

        // Malformed JSON, sent raw.
        let token = h.login("alice").await;
        let before = h.event_count().await;
        let resp = h
            .http
            .post(format!("{}/api/v1/requests", h.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{\"scope\": [")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["code"], "malformed_json", "{v}");
        assert_eq!(h.event_count().await, before);

        let (s, v) = h
            .call("alice", "GET", "/api/v1/requests?state=sleeping", None)
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request"))
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn refused_approvals_say_why_and_change_nothing() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let req = h.request("alice", read_plc7()).await;
        let id = req["id"].as_str().unwrap().to_string();
        let approve = |digest: &Value| json!({"scope_digest": digest, "comment": "ok"});
        let path = format!("/api/v1/requests/{id}/approve");

        expect_error(
            &mut h,
            "alice",
            "POST",
            &path,
            Some(approve(&req["scope_digest"])),
            StatusCode::FORBIDDEN,
            "separation_of_duties",
        )
        .await;
        expect_error(
            &mut h,
            "oscar",
            "POST",
            &path,
            Some(approve(&req["scope_digest"])),
            StatusCode::FORBIDDEN,
            "not_eligible_approver",
        )
        .await;
        expect_error(
            &mut h,
            "bob",
            "POST",
            &path,
            Some(approve(&json!("sha256:0000"))),
            StatusCode::CONFLICT,
            "scope_digest_mismatch",
        )
        .await;
        expect_error(
            &mut h,
            "bob",
            "POST",
            &format!("/api/v1/requests/{id}/deny"),
            Some(json!({"comment": " "})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
        expect_error(
            &mut h,
            "bob",
            "POST",
            "/api/v1/requests/req-nothere/approve",
            Some(approve(&req["scope_digest"])),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;

        let (s, _) = h
            .call("bob", "POST", &path, Some(approve(&req["scope_digest"])))
            .await;
        assert_eq!(s, StatusCode::OK);
        expect_error(
            &mut h,
            "sam",
            "POST",
            &path,
            Some(approve(&req["scope_digest"])),
            StatusCode::CONFLICT,
            "wrong_state",
        )
        .await;
        // A disabled identity cannot even log in, and is told only what a wrong password is
        // (without a code: `totp_required`, the one answer of every failed sign-in).
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"identity": "dave", "password": password("dave")})),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("totp_required")),
            "{v}"
        );

        // Approving twice on a request that needs two approvals.
        let mut hi = write_plc7("1h");
        hi["scope"][0]["asset"] = json!("plc-3");
        hi["scope"][0]["modbus"] = json!(["write holding 5 unit 2"]);
        let two = h.request("vera", hi).await;
        assert_eq!(
            two["obligations"]["approvals"], 1,
            "medium asset: one approval: {two}"
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn authentication_failures() {
    each_backend(|store| async move {
        let h = Harness::start(store).await;
        let (s, v) = h.raw("GET", "/api/v1/requests", None, None).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
        );
        let (s, v) = h
            .raw("GET", "/api/v1/requests", Some("jgs_forged"), None)
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
        );
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"identity": "alice", "password": "wrong password!"})),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("totp_required"))
        );
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"identity": "ghost", "password": "whatever it is"})),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("totp_required"))
        );
        // Workloads have no password.
        let (s, _) = h
            .raw(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"identity": "svc-historian", "password": "whatever it is"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // Session tokens expire (this harness sets session_ttl = 24h).
        let (_, v) = h
            .raw(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"identity": "alice", "password": password("alice")})),
            )
            .await;
        let token = v["token"].as_str().unwrap().to_string();
        let (s, _) = h
            .raw("GET", "/api/v1/auth/whoami", Some(&token), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        h.clock.advance(chrono::Duration::hours(25));
        let (s, v) = h
            .raw("GET", "/api/v1/auth/whoami", Some(&token), None)
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated")),
            "{v}"
        );
        assert!(v["message"].as_str().unwrap().contains("expired"));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_broken_policy_file_is_refused_and_the_previous_set_stays() {
    each_backend(|store| async move {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in jitgate_policy::default_sources() {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let clock = Arc::new(ManualClock::new(start_time()));
        let mut h = Harness::start_with(store, clock, Some(dir.path().to_path_buf())).await;
        let (_, before) = h.call("sam", "GET", "/api/v1/policies", None).await;
        std::fs::write(dir.path().join("99-broken.cedar"), "@id(\"broken\")\npermit (principal, action, resource)\nwhen { principal.kind == };\n").unwrap();
        let m = expect_error(&mut h, "sam", "POST", "/api/v1/policies/reload", None, StatusCode::UNPROCESSABLE_ENTITY, "invalid_policy").await;
        assert!(m.contains("99-broken.cedar") && m.contains(":3:"), "names file, line and column: {m}");
        let (_, after) = h.call("sam", "GET", "/api/v1/policies", None).await;
        assert_eq!(before["hash"], after["hash"]);
        // Requests are still decided by the previous set.
        let v = h.request("alice", read_plc7()).await;
        assert_eq!(v["state"], "pending");

        let (s, _) = h.call("alice", "POST", "/api/v1/policies/reload", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        std::fs::remove_file(dir.path().join("99-broken.cedar")).unwrap();
        std::fs::write(dir.path().join("99-extra.cedar"), "@id(\"extra-forbid-plc5\")\n@reason(\"plc-5 is being replaced\")\nforbid (principal, action, resource == Jitgate::Asset::\"plc-5\");\n").unwrap();
        let (s, v) = h.call("sam", "POST", "/api/v1/policies/reload", None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_ne!(v["hash"], before["hash"]);
        assert!(v["policies"].as_array().unwrap().iter().any(|p| p == "extra-forbid-plc5"));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn inventory_changes_through_the_api_are_checked() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut h = Harness::start(store).await;
    let site = json!({"id": "west", "name": "West plant", "zones": ["cell-9"]});
    let (s, _) = h
        .call("alice", "PUT", "/api/v1/sites/west", Some(site.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only admins change the inventory");
    let m = expect_error(
        &mut h,
        "sam",
        "PUT",
        "/api/v1/sites/east",
        Some(site.clone()),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert!(m.contains("differs from path id"), "{m}");
    let (s, v) = h.call("sam", "PUT", "/api/v1/sites/west", Some(site)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, sites) = h.call("alice", "GET", "/api/v1/sites", None).await;
    assert!(sites.as_array().unwrap().iter().any(|s| s["id"] == "west"));

    let asset = json!({"id": "plc-w1", "kind": "plc", "site": "nowhere", "criticality": "low", "enforcement": "brokered"});
    let m = expect_error(
        &mut h,
        "sam",
        "PUT",
        "/api/v1/assets/plc-w1",
        Some(asset),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_inventory",
    )
    .await;
    assert!(m.contains("site nowhere"), "{m}");
    let org = json!({"id": "newco", "vendor": true, "status": "suspended"});
    let (s, v) = h.call("sam", "PUT", "/api/v1/orgs/newco", Some(org)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    h.stop().await;
}

/// A gateway's delivery is parsed by its own fast path (borrowing from the body); a body
/// that does not fit gets the same errors as every other JSON body, and records nothing.
/// One that fits is recorded with the detail as sent (duplicate keys: the last one), its
/// canonical text the event's own.
#[tokio::test]
async fn a_gateway_delivery_that_does_not_fit_is_refused_and_one_that_fits_is_recorded_as_sent() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let key = h.api_key("gw-north", "bad-input").await;
        let url = format!("{}/api/v1/gateway/events", h.base);
        let at = jitgate_core::event::rfc3339(h.clock.now());
        let event = |gseq: i64, extra: &str| {
            format!(
                r#"{{"gseq":{gseq},"kind":"session.refused","at":"{at}","session_id":"s-1"{extra}}}"#
            )
        };
        let cases: [(Option<&str>, String, StatusCode, &str, &str); 5] = [
            (
                None,
                format!(r#"{{"events":[{}]}}"#, event(1, "")),
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "Content-Type",
            ),
            (
                Some("application/json"),
                r#"{"events":[{"gseq":1,"#.to_string(),
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "not valid JSON",
            ),
            (
                Some("application/json"),
                r#"{"events":[{"gseq":"one","kind":"operation","at":"2026-01-01T00:00:00Z"}]}"#
                    .to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "events[0].gseq",
            ),
            (
                Some("application/json"),
                format!(r#"{{"events":[{}]}}"#, event(1, r#","colour":"blue""#)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "colour",
            ),
            (
                Some("application/json"),
                format!(r#"{{"events":[{}],"extra":1}}"#, event(1, "")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "extra",
            ),
        ];
        for (content_type, body, status, code, says) in cases {
            let before = h.event_count().await;
            let mut req = h.http.post(&url).bearer_auth(&key).body(body.clone());
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), status, "{body}");
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["code"], code, "{body}: {v}");
            let message = v["message"].as_str().unwrap();
            assert!(message.contains(says), "{body}: {message}");
            assert_eq!(h.event_count().await, before, "{body}: nothing recorded");
        }

        // A detail with escapes, non-ASCII keys, a duplicate key and large numbers, sent
        // pretty-printed: recorded as a `Value` of it reads, in canonical text.
        let detail = "{ \"z\": 1, \"é\": \"line\\nbreak\", \"dup\": 1, \"a\": [1e21, -0.0, 9007199254740993],\n \"dup\": \"last\" }";
        let body = format!(
            r#"{{"events":[{}]}}"#,
            event(1, &format!(r#","data":{detail}"#))
        );
        let resp = h
            .http
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut tx = h.state().store.read().await.unwrap();
        let last = tx.verify_chain().await.unwrap().events;
        let stored = tx
            .list_events(&jitgate_store::EventFilter {
                after_seq: Some(last - 1),
                ..Default::default()
            })
            .await
            .unwrap()
            .pop()
            .unwrap();
        drop(tx);
        assert_eq!(stored.event.kind, jitgate_core::EventKind::SessionRefused);
        // As sent, with its numbers as JCS writes them (the double they denote: -0 is 0, an
        // integer above 2^53 the nearest double) — what recording through a `Value` stored.
        let sent: Value = serde_json::from_str(detail).unwrap();
        let mut jcs = Vec::new();
        jitgate_core::event::write_jcs(&sent, &mut jcs);
        let expected: Value = serde_json::from_slice(&jcs).unwrap();
        assert_eq!(stored.event.data["detail"], expected);
        assert_eq!(stored.event.data["detail"]["a"][2], 9007199254740992u64);
        assert_eq!(stored.event.data["detail"]["dup"], "last");
        assert_eq!(stored.event.data["gseq"], 1);
        assert_eq!(
            String::from_utf8(stored.event.canonical_bytes()).unwrap(),
            stored.canonical,
            "the stored text is the event's canonical text"
        );
        h.stop().await;
    })
    .await;
}
