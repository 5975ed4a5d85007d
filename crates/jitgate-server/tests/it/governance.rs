//! The governance holes, tried through the real API as an attacker would, on SQLite and
//! PostgreSQL: each is refused with its specific error code, and state and evidence stay
//! consistent afterwards.

use super::lifecycle::NowTs;
use super::*;
use jitgate_testkit::each_backend;

/// Mint an API key for `workload` as `minter`; returns (key id, key).
async fn mint_key(
    h: &mut Harness,
    minter: &str,
    workload: &str,
    expires_in: Option<&str>,
) -> (String, String) {
    let mut body = json!({"identity": workload, "name": "test"});
    if let Some(e) = expires_in {
        body["expires_in"] = json!(e);
    }
    let (s, v) = h.call(minter, "POST", "/api/v1/api-keys", Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (
        v["id"].as_str().unwrap().to_string(),
        v["key"].as_str().unwrap().to_string(),
    )
}

fn read_plc7_routine() -> Value {
    json!({
        "scope": [{"asset": "plc-7", "modbus": ["read holding 0-99 unit 1"]}],
        "duration": "30m", "reason": "nightly export", "reference": "JOB-1", "path": "routine"
    })
}

async fn asset_doc(h: &mut Harness, id: &str) -> Value {
    let (s, v) = h
        .call("sam", "GET", &format!("/api/v1/assets/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn set_lockout(h: &mut Harness, id: &str, lockout: bool) {
    let mut a = asset_doc(h, id).await;
    a["lockout"] = json!(lockout);
    let (s, v) = h
        .call("sam", "PUT", &format!("/api/v1/assets/{id}"), Some(a))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn get_request(h: &mut Harness, id: &Value) -> Value {
    let (s, v) = h
        .call(
            "sam",
            "GET",
            &format!("/api/v1/requests/{}", id.as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn owner_of_a_workload_cannot_approve_its_request() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        // alice owns svc-historian, mints its key, and files as the workload.
        let (_, key) = mint_key(&mut h, "alice", "svc-historian", None).await;
        h.set_token("svc-historian", &key);
        let req = h.request("svc-historian", read_plc7_routine()).await;
        assert_eq!(
            req["state"], "pending",
            "plc-7 is safety: one engineer approves"
        );
        assert_eq!(req["filed_with_key"]["minted_by"], "alice", "{req}");
        // alice is not shown it as hers to approve, and approving is refused.
        let (_, inbox) = h
            .call("alice", "GET", "/api/v1/requests?awaiting=me", None)
            .await;
        assert!(
            !inbox
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == req["id"]),
            "{inbox}"
        );
        let before = h.event_count().await;
        let (s, v) = h.approve("alice", &req, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(v["code"], "separation_of_duties", "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("owns the workload"),
            "{v}"
        );
        assert_eq!(h.event_count().await, before, "a refusal appends nothing");
        assert_eq!(get_request(&mut h, &req["id"]).await["state"], "pending");
        // Someone without a conflict can.
        let (s, v) = h.approve("bob", &req, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["state"], "active");
        h.stop().await.close().await;
    })
    .await;
}

#[tokio::test]
async fn context_changes_reach_pending_and_approved_requests() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        // Pending, then the asset is locked out: the request lapses with the reason, and an
        // approval afterwards is refused.
        let pending = h.request("alice", read_plc7()).await;
        set_lockout(&mut h, "plc-7", true).await;
        let r = get_request(&mut h, &pending["id"]).await;
        assert_eq!(r["state"], "lapsed", "{r}");
        assert!(
            r["state_reason"]
                .as_str()
                .unwrap()
                .contains("plc-7 locked out"),
            "{r}"
        );
        let (s, v) = h.approve("bob", &pending, None).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        set_lockout(&mut h, "plc-7", false).await;

        // Approved but its window not open yet, then the subject is disabled: it lapses, and
        // re-enabling does not bring it back; the window opening issues no grant.
        let start = h.clock.now_ts() + chrono::Duration::hours(1);
        let mut body = read_plc7();
        body["start"] = json!(jitgate_core::event::rfc3339(start));
        let planned = h.request("alice", body).await;
        let (s, v) = h.approve("bob", &planned, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["state"], "approved");
        let (s, v) = h
            .call(
                "sam",
                "POST",
                "/api/v1/identities/alice/disable",
                Some(json!({"reason": "left the company"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let r = get_request(&mut h, &planned["id"]).await;
        assert_eq!(r["state"], "lapsed", "{r}");
        assert!(
            r["state_reason"]
                .as_str()
                .unwrap()
                .contains("alice disabled"),
            "{r}"
        );
        let (s, _) = h
            .call("sam", "POST", "/api/v1/identities/alice/enable", None)
            .await;
        assert_eq!(s, StatusCode::OK);
        h.clock.advance(chrono::Duration::hours(1));
        h.tick().await;
        let r = get_request(&mut h, &planned["id"]).await;
        assert_eq!(r["state"], "lapsed", "{r}");
        assert!(r.get("grant").is_none_or(Value::is_null), "{r}");
        // The evidence says why.
        let (_, events) = h
            .call(
                "sam",
                "GET",
                &format!("/api/v1/events?request={}", planned["id"].as_str().unwrap()),
                None,
            )
            .await;
        let lapsed = events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "request.lapsed")
            .unwrap_or_else(|| panic!("{events}"));
        assert_eq!(
            lapsed["data"]["hold"]["kind"], "identity_disabled",
            "{lapsed}"
        );
        h.stop().await.close().await;
    })
    .await;
}

#[tokio::test]
async fn activation_re_decides_under_the_current_context() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let start = h.clock.now_ts() + chrono::Duration::hours(1);
        let mut body = read_plc7();
        body["start"] = json!(jitgate_core::event::rfc3339(start));
        let planned = h.request("alice", body).await;
        let (s, v) = h.approve("bob", &planned, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // The lockout goes straight into the store (no context pass runs): activation itself
        // must notice it.
        {
            let mut tx = h.state().store.write().await.unwrap();
            let mut a = tx.get_asset("plc-7").await.unwrap().unwrap();
            a.lockout = true;
            tx.upsert_asset(&a).await.unwrap();
            tx.commit().await.unwrap();
        }
        h.clock.advance(chrono::Duration::hours(1));
        h.tick().await;
        let r = get_request(&mut h, &planned["id"]).await;
        assert_eq!(r["state"], "lapsed", "{r}");
        assert!(
            r["state_reason"].as_str().unwrap().contains("locked out"),
            "{r}"
        );
        h.stop().await.close().await;
    })
    .await;
}

#[tokio::test]
async fn gateway_keys_are_not_universal() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let (_, gw_key) = mint_key(&mut h, "sam", "gw-north", None).await;
        h.set_token("gw-north", &gw_key);
        // A gateway never files requests.
        let (s, v) = h.call("gw-north", "POST", "/api/v1/requests", Some(read_plc7_routine())).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(v["code"], "forbidden");
        assert!(v["message"].as_str().unwrap().contains("gateway"), "{v}");

        // A second gateway, fronting nothing of plc-7's.
        let mut south = json!({"id": "gw-south", "kind": "workload", "roles": ["gateway"], "sites": ["south"], "owners": ["sam"]});
        let (s, v) = h.call("sam", "PUT", "/api/v1/identities/gw-south", Some(south.take())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, south_key) = mint_key(&mut h, "sam", "gw-south", None).await;
        h.set_token("gw-south", &south_key);

        let req = h.request("alice", read_plc7()).await;
        let (_, granted) = h.approve("bob", &req, None).await;
        let grant_id = granted["grant"]["id"].clone();
        let now = h.clock.now_ts();
        let ev = |gseq: i64, at: Timestamp| {
            json!({"events": [{"gseq": gseq, "kind": "operation", "at": jitgate_core::event::rfc3339(at),
                "grant_id": grant_id, "session_id": "s-1", "data": {"op": "read"}}]})
        };
        let before = h.event_count().await;
        let (s, v) = h.call("gw-south", "POST", "/api/v1/gateway/events", Some(ev(1, now))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(v["code"], "grant_not_fronted", "{v}");
        // The gateway that fronts it: a date far in the future is refused, then a jump in
        // the sequence; nothing is recorded by either.
        let (s, v) = h
            .call("gw-north", "POST", "/api/v1/gateway/events", Some(ev(1, now + chrono::Duration::hours(2))))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["code"], "event_time_out_of_bounds", "{v}");
        let (s, v) = h.call("gw-north", "POST", "/api/v1/gateway/events", Some(ev(1, now))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["delivered_seq"], 1);
        let (s, v) = h.call("gw-north", "POST", "/api/v1/gateway/events", Some(ev(1000, now))).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["code"], "gseq_gap", "{v}");
        assert!(v["message"].as_str().unwrap().contains("send gseq 2"), "{v}");
        assert_eq!(h.event_count().await, before + 1, "only the one good event was recorded");
        // The real next event is still accepted (nothing was skipped).
        let (s, v) = h.call("gw-north", "POST", "/api/v1/gateway/events", Some(ev(2, now))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["recorded"], 1);
        h.stop().await.close().await;
    })
    .await;
}

#[tokio::test]
async fn free_text_with_control_characters_is_refused() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        h.login("alice").await; // a sign-in is an event of its own
        let before = h.event_count().await;
        let mut body = write_plc7("1h");
        body["reason"] = json!("fix\r  Modbus read holding 0-99 on plc-7 (unit 1)\u{1b}[8m hidden");
        let (s, v) = h
            .call("alice", "POST", "/api/v1/requests", Some(body))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["code"], "control_character", "{v}");
        let mut body = read_plc7();
        body["reference"] = json!("WO-1\u{202e}4321");
        let (s, v) = h
            .call("alice", "POST", "/api/v1/requests", Some(body))
            .await;
        assert_eq!(v["code"], "control_character", "{s} {v}");
        assert_eq!(h.event_count().await, before, "nothing was recorded");
        // A comment on an approval too.
        let req = h.request("alice", read_plc7()).await;
        let body = json!({"scope_digest": req["scope_digest"], "comment": "ok\u{1b}[2J"});
        let path = format!("/api/v1/requests/{}/approve", req["id"].as_str().unwrap());
        let (s, v) = h.call("bob", "POST", &path, Some(body)).await;
        assert_eq!(v["code"], "control_character", "{s} {v}");
        assert_eq!(get_request(&mut h, &req["id"]).await["state"], "pending");
        h.stop().await.close().await;
    })
    .await;
}

#[tokio::test]
async fn the_last_administrator_cannot_remove_itself() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let (s, v) = h
            .call(
                "sam",
                "POST",
                "/api/v1/identities/sam/disable",
                Some(json!({"reason": "oops"})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["code"], "last_administrator", "{v}");
        let (_, mut me) = h.call("sam", "GET", "/api/v1/identities/sam", None).await;
        me["roles"] = json!(["security"]);
        let (s, v) = h
            .call("sam", "PUT", "/api/v1/identities/sam", Some(me.clone()))
            .await;
        assert_eq!(v["code"], "last_administrator", "{s} {v}");
        let (_, still) = h.call("sam", "GET", "/api/v1/identities/sam", None).await;
        assert_eq!(still["status"], "active");
        assert!(
            still["roles"].as_array().unwrap().contains(&json!("admin")),
            "{still}"
        );
        h.stop().await.close().await;
    })
    .await;
}

#[tokio::test]
async fn api_keys_expire_are_listed_revoked_and_stand_on_their_minter() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        // An API key cannot mint keys.
        let (key_id, key) = mint_key(&mut h, "alice", "svc-historian", Some("1h")).await;
        h.set_token("svc-historian", &key);
        let (s, v) = h
            .call(
                "svc-historian",
                "POST",
                "/api/v1/api-keys",
                Some(json!({"identity": "svc-historian", "name": "x"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        let (s, v) = h
            .call(
                "alice",
                "POST",
                "/api/v1/api-keys",
                Some(json!({"identity": "svc-historian", "name": "x", "expires_in": "400d"})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

        // Listed (never with its secret), by its minter and by security; not by carol.
        let (_, list) = h.call("alice", "GET", "/api/v1/api-keys", None).await;
        let mine = list
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == key_id.as_str())
            .cloned()
            .unwrap();
        assert_eq!(mine["status"], "active");
        assert_eq!(mine["minted_by"], "alice");
        assert!(
            mine.get("key").is_none() && mine.get("key_hash").is_none(),
            "{mine}"
        );
        let (_, list) = h.call("carol", "GET", "/api/v1/api-keys", None).await;
        assert!(list.as_array().unwrap().is_empty(), "{list}");

        // Expiry.
        h.clock.advance(chrono::Duration::minutes(61));
        let (s, v) = h
            .call("svc-historian", "GET", "/api/v1/auth/whoami", None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert!(v["message"].as_str().unwrap().contains("expired"), "{v}");

        // The minter disabled: the key stops working.
        let (_, key2) = mint_key(&mut h, "alice", "svc-historian", None).await;
        h.set_token("svc-historian", &key2);
        let (s, _) = h
            .call("svc-historian", "GET", "/api/v1/auth/whoami", None)
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = h
            .call(
                "sam",
                "POST",
                "/api/v1/identities/alice/disable",
                Some(json!({"reason": "left"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = h
            .call("svc-historian", "GET", "/api/v1/auth/whoami", None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("minted by alice"),
            "{v}"
        );
        let (s, _) = h
            .call("sam", "POST", "/api/v1/identities/alice/enable", None)
            .await;
        assert_eq!(s, StatusCode::OK);

        // Revocation: the request filed with the key lapses, and the key is refused.
        let req = h.request("svc-historian", read_plc7_routine()).await;
        assert_eq!(req["state"], "pending");
        let key2_id = req["filed_with_key"]["key_id"]
            .as_str()
            .unwrap()
            .to_string();
        let before = h.event_count().await;
        let (s, v) = h
            .call(
                "sam",
                "POST",
                &format!("/api/v1/api-keys/{key2_id}/revoke"),
                Some(json!({"reason": "leaked in CI log"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "revoked");
        let (s, _) = h
            .call("svc-historian", "GET", "/api/v1/auth/whoami", None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let r = get_request(&mut h, &req["id"]).await;
        assert_eq!(r["state"], "lapsed", "{r}");
        assert!(
            h.event_count().await >= before + 2,
            "auth.revoked and request.lapsed"
        );
        let (_, events) = h
            .call("sam", "GET", "/api/v1/events?limit=1000", None)
            .await;
        assert!(
            events
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "auth.revoked" && e["data"]["key_id"] == key2_id.as_str()),
            "{events}"
        );
        h.stop().await.close().await;
    })
    .await;
}

#[tokio::test]
async fn visibility_is_bound_to_site_and_role() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        // alice (on call, north) breaks glass on plc-7.
        let mut body = read_plc7();
        body["path"] = json!("emergency");
        body["duration"] = json!("30m");
        let bg = h.request("alice", body).await;
        assert_eq!(bg["state"], "active", "{bg}");
        let grant_id = bg["grant"]["id"].as_str().unwrap().to_string();
        // carol (south) does not see it, its evidence, nor whose it is.
        let (_, grants) = h.call("carol", "GET", "/api/v1/grants", None).await;
        assert!(
            !grants
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["id"] == grant_id.as_str()),
            "{grants}"
        );
        for path in [
            format!("/api/v1/grants/{grant_id}"),
            format!("/api/v1/grants/{grant_id}/evidence"),
        ] {
            let (s, v) = h.call("carol", "GET", &path, None).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {v}");
        }
        let (s, v) = h
            .call(
                "carol",
                "POST",
                &format!("/api/v1/grants/{grant_id}/token"),
                Some(json!({"public_key": "x"})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        assert!(!v.to_string().contains("alice"), "{v}");
        // bob (north) sees it; security sees it.
        let (_, grants) = h.call("bob", "GET", "/api/v1/grants", None).await;
        assert!(
            grants
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["id"] == grant_id.as_str()),
            "{grants}"
        );
        // Device addresses: people of the plant yes, vendors no.
        let (_, assets) = h.call("bob", "GET", "/api/v1/assets", None).await;
        let plc7 = assets
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == "plc-7")
            .unwrap();
        assert!(
            plc7["endpoints"]["modbus"]["address"]
                .as_str()
                .unwrap()
                .contains(':'),
            "{plc7}"
        );
        let (_, assets) = h.call("vera", "GET", "/api/v1/assets", None).await;
        let text = assets.to_string();
        let plc7 = assets
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == "plc-7")
            .unwrap();
        assert!(
            plc7["endpoints"]["modbus"]["address"]
                .as_str()
                .unwrap()
                .starts_with("(hidden"),
            "{plc7}"
        );
        assert!(
            !text.contains("127.0.0.1:") && !text.contains("10.0."),
            "{text}"
        );
        h.stop().await.close().await;
    })
    .await;
}
