//! Standing exceptions through the real API, on SQLite and PostgreSQL, with the manual clock:
//! request → policy → approvals (an approver who owns the workload subject refused) →
//! active → re-validation → overdue end (`revalidation_overdue`); expiry ends one too; the
//! owner ends one at once; bad terms are refused with their codes.

use super::lifecycle::NowTs;
use super::*;
use jitgate_testkit::each_backend;

const DAY: i64 = 86_400;

/// People the sample plant lacks: a second security person (`sofia`) and one (`tom`) who
/// also owns the historian collector, so approving its exception is a conflict.
pub(crate) async fn add_people(h: &mut Harness) {
    for (id, roles) in [("sofia", json!(["security"])), ("tom", json!(["security"]))] {
        let body = json!({"id": id, "kind": "human", "name": id, "org": "plant",
            "roles": roles, "sites": ["north"]});
        let (s, v) = h
            .call(
                "sam",
                "PUT",
                &format!("/api/v1/identities/{id}"),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let mut tx = h.state().store.write().await.unwrap();
    for id in ["sofia", "tom"] {
        tx.set_password(
            id,
            &jitgate_server::auth::hash_password(&password(id)).unwrap(),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let (s, mut svc) = h
        .call("sam", "GET", "/api/v1/identities/svc-historian", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{svc}");
    svc["owners"] = json!(["alice", "tom"]);
    let (s, v) = h
        .call("sam", "PUT", "/api/v1/identities/svc-historian", Some(svc))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Sign everyone in again (sessions last 24 h; the tests move the clock by weeks).
pub(crate) async fn relogin(h: &mut Harness, who: &[&str]) {
    for id in who {
        let (status, body) = h
            .raw(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"identity": id, "password": password(id)})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {id}: {body}");
        let token = body["token"].as_str().unwrap().to_string();
        h.set_token(id, &token);
    }
}

pub(crate) fn exception_body(expires_in: &str, every: &str) -> Value {
    json!({
        "subject": "svc-historian",
        "scope": [{"asset": "historian", "modbus": ["read holding 0-999"]}],
        "expires_in": expires_in, "revalidate_every": every, "owner": "oscar",
        "controls": ["sessions recorded and reviewed weekly", "read-only by policy"],
        "reason": "nightly historian export", "reference": "RA-17"
    })
}

async fn file(h: &mut Harness, body: Value) -> Value {
    let (s, v) = h
        .call("alice", "POST", "/api/v1/exceptions", Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

async fn request_of(h: &mut Harness, ex: &Value) -> Value {
    let (s, v) = h
        .call(
            "sam",
            "GET",
            &format!("/api/v1/requests/{}", ex["request_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn show(h: &mut Harness, who: &str, id: &str) -> (StatusCode, Value) {
    h.call(who, "GET", &format!("/api/v1/exceptions/{id}"), None)
        .await
}

/// File and have sam and sofia approve; returns the active exception.
pub(crate) async fn active_exception(h: &mut Harness, expires_in: &str, every: &str) -> Value {
    let ex = file(h, exception_body(expires_in, every)).await;
    assert_eq!(ex["state"], "pending", "{ex}");
    let req = request_of(h, &ex).await;
    for who in ["sam", "sofia"] {
        let (s, v) = h.approve(who, &req, None).await;
        assert_eq!(s, StatusCode::OK, "{who}: {v}");
    }
    let (s, v) = show(h, "oscar", ex["id"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "active", "{v}");
    v
}

async fn post(h: &mut Harness, who: &str, path: String, body: Value) -> (StatusCode, Value) {
    h.call(who, "POST", &path, Some(body)).await
}

#[tokio::test]
async fn bad_terms_are_refused_with_their_codes() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        add_people(&mut h).await;
        let cases = [
            (
                "owner",
                json!("alice"),
                StatusCode::FORBIDDEN,
                "separation_of_duties",
            ),
            (
                "owner",
                json!("tom"),
                StatusCode::FORBIDDEN,
                "separation_of_duties",
            ),
            (
                "owner",
                json!("svc-historian"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_exception",
            ),
            (
                "owner",
                json!("gw-north"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_exception",
            ),
            (
                "owner",
                json!("nobody"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_exception",
            ),
            (
                "controls",
                json!([]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_exception",
            ),
            (
                "revalidate_every",
                json!("120d"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_exception",
            ),
            (
                "revalidate_every",
                json!("2h"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_exception",
            ),
            (
                "revalidate_every",
                json!("soon"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_exception",
            ),
            (
                "expires_in",
                json!("400d"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_exception",
            ),
        ];
        for (field, value, status, code) in cases {
            let mut body = exception_body("180d", "30d");
            body[field] = value.clone();
            let (s, v) = h
                .call("alice", "POST", "/api/v1/exceptions", Some(body))
                .await;
            assert_eq!(
                (s, v["code"].as_str()),
                (status, Some(code)),
                "{field}={value}: {v}"
            );
        }
        // Unknown fields are refused like in every body.
        let mut body = exception_body("180d", "30d");
        body["path"] = json!("standing");
        let (s, v) = h
            .call("alice", "POST", "/api/v1/exceptions", Some(body))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        // The standing path is not open to plain requests.
        let (s, v) = h
            .call(
                "alice",
                "POST",
                "/api/v1/requests",
                Some(json!({"subject": "svc-historian",
                    "scope": [{"asset": "historian", "modbus": ["read holding 0-999"]}],
                    "duration": "30d", "reason": "x", "path": "standing"})),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")),
            "{v}"
        );
        // Policy: a vendor holds no standing access; denied and recorded.
        let body = json!({
            "scope": [{"asset": "plc-3", "modbus": ["read holding 0-9 unit 1"]}],
            "expires_in": "30d", "revalidate_every": "7d", "owner": "sam",
            "controls": ["recorded"], "reason": "remote support"
        });
        let (s, v) = h
            .call("vera", "POST", "/api/v1/exceptions", Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["state"], "denied", "{v}");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_owner_never_grants_the_exception_it_answers_for() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        add_people(&mut h).await;
        let mut body = exception_body("90d", "30d");
        body["owner"] = json!("sofia");
        let ex = file(&mut h, body).await;
        assert_eq!(ex["state"], "pending", "{ex}");
        let req = request_of(&mut h, &ex).await;
        // Not offered to the owner as an approval to give…
        let (s, awaiting) = h
            .call("sofia", "GET", "/api/v1/requests?awaiting=me", None)
            .await;
        assert_eq!(s, StatusCode::OK, "{awaiting}");
        assert!(
            !awaiting.to_string().contains(req["id"].as_str().unwrap()),
            "{awaiting}"
        );
        // …and refused when given anyway, security role or not.
        let (s, v) = h.approve("sofia", &req, None).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("separation_of_duties")),
            "{v}"
        );
        assert!(
            v["message"]
                .as_str()
                .unwrap_or_default()
                .contains("owner of the standing exception"),
            "{v}"
        );
        // One other approval of the two needed: still pending.
        let (s, v) = h.approve("sam", &req, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["state"], "pending", "{v}");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn approved_revalidated_then_ended_when_overdue() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        add_people(&mut h).await;
        let ex = file(&mut h, exception_body("180d", "30d")).await;
        let id = ex["id"].as_str().unwrap().to_string();
        assert_eq!(ex["state"], "pending");
        assert_eq!(ex["owner"], "oscar");
        assert_eq!(ex["subject"], "svc-historian");
        let req = request_of(&mut h, &ex).await;
        assert_eq!(req["path"], "standing");
        assert_eq!(req["decision"]["obligations"]["approvals"], 2, "{req}");
        assert_eq!(
            req["decision"]["determining_policies"],
            json!(["exception-workload-batch-read"])
        );
        let requested = events_of(&mut h, "exception.requested").await;
        assert!(
            requested
                .iter()
                .any(|e| e["data"]["exception_id"] == id.as_str() && e["data"]["owner"] == "oscar"),
            "{requested:?}"
        );

        // tom owns the workload subject: his approval is refused, security role or not.
        let (s, v) = h.approve("tom", &req, None).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("separation_of_duties")),
            "{v}"
        );
        // bob is not security staff.
        let (s, v) = h.approve("bob", &req, None).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("not_eligible_approver")),
            "{v}"
        );
        let (s, _) = h.approve("sam", &req, None).await;
        assert_eq!(s, StatusCode::OK);
        let approved_at = h.clock.now_ts();
        let (s, v) = h.approve("sofia", &req, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            v["state"], "active",
            "window open: the grant is issued at once: {v}"
        );

        let (_, ex) = show(&mut h, "oscar", &id).await;
        assert_eq!(ex["state"], "active", "{ex}");
        let grant_id = ex["grant_id"].as_str().unwrap().to_string();
        let (_, grant) = h
            .call("sam", "GET", &format!("/api/v1/grants/{grant_id}"), None)
            .await;
        let expires =
            chrono::DateTime::parse_from_rfc3339(grant["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!(
            expires.timestamp(),
            (approved_at + chrono::Duration::days(180)).timestamp(),
            "the grant lasts until the exception's expiry: {grant}"
        );
        let due = chrono::DateTime::parse_from_rfc3339(ex["next_revalidation"].as_str().unwrap())
            .unwrap();
        assert_eq!(due.timestamp(), approved_at.timestamp() + 30 * DAY, "{ex}");
        assert_eq!(ex["uses"], 0);

        // Who may re-validate: not the requester (owner of the subject), not tom (owner of
        // the subject, security staff), not bob (unrelated).
        for (who, code) in [
            ("alice", "separation_of_duties"),
            ("tom", "separation_of_duties"),
            ("bob", "forbidden"),
        ] {
            let (s, v) = post(
                &mut h,
                who,
                format!("/api/v1/exceptions/{id}/revalidate"),
                json!({"note": "still needed"}),
            )
            .await;
            assert_eq!(v["code"].as_str(), Some(code), "{who}: {s} {v}");
        }

        // Day 20: the owner re-validates; the next due date is now + 30 days.
        h.clock.advance(chrono::Duration::days(20));
        relogin(&mut h, &["oscar", "sam", "sofia"]).await;
        let (s, v) = post(
            &mut h,
            "oscar",
            format!("/api/v1/exceptions/{id}/revalidate"),
            json!({"note": ""}),
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")),
            "{v}"
        );
        let revalidated_at = h.clock.now_ts();
        let (s, v) = post(
            &mut h,
            "oscar",
            format!("/api/v1/exceptions/{id}/revalidate"),
            json!({"note": "export still feeds the QA report"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let due =
            chrono::DateTime::parse_from_rfc3339(v["next_revalidation"].as_str().unwrap()).unwrap();
        assert_eq!(
            due.timestamp(),
            revalidated_at.timestamp() + 30 * DAY,
            "{v}"
        );
        assert_eq!(v["last_revalidated_by"], "oscar");
        let events = events_of(&mut h, "exception.revalidated").await;
        assert!(
            events
                .iter()
                .any(|e| e["data"]["note"] == "export still feeds the QA report"
                    && e["actor"] == "oscar"
                    && e["grant_id"] == grant_id.as_str()),
            "{events:?}"
        );
        // Re-validation kept it: a scheduler pass on day 49 ends nothing.
        h.clock.advance(chrono::Duration::days(29));
        h.tick().await;
        relogin(&mut h, &["oscar", "sam", "sofia"]).await;
        let (_, v) = show(&mut h, "oscar", &id).await;
        assert_eq!(v["state"], "active", "{v}");

        // Past the due date: refused, and the scheduler ends the grant.
        h.clock.advance(chrono::Duration::days(2));
        relogin(&mut h, &["oscar", "sam", "sofia"]).await;
        let (s, v) = post(
            &mut h,
            "oscar",
            format!("/api/v1/exceptions/{id}/revalidate"),
            json!({"note": "late"}),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        // Refused as overdue, or (if the background scheduler was first) as ended already.
        assert!(
            matches!(
                v["code"].as_str(),
                Some("revalidation_overdue") | Some("wrong_state")
            ),
            "{v}"
        );
        h.tick().await;
        let (_, grant) = h
            .call("sam", "GET", &format!("/api/v1/grants/{grant_id}"), None)
            .await;
        assert_ne!(grant["state"], "active", "{grant}");
        assert_eq!(
            grant["end_reason"]["kind"], "revalidation_overdue",
            "{grant}"
        );
        let (_, v) = show(&mut h, "oscar", &id).await;
        assert_eq!(v["state"], "ended", "{v}");
        assert_eq!(v["end_reason"], "revalidation_overdue", "{v}");
        let ended = events_of(&mut h, "grant.ended").await;
        assert!(
            ended.iter().any(|e| e["grant_id"] == grant_id.as_str()
                && e["actor"] == "system:scheduler"
                && e["data"]["end_reason"]["kind"] == "revalidation_overdue"),
            "{ended:?}"
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn expiry_ends_it_and_the_owner_ends_one_at_once() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        add_people(&mut h).await;
        let ex = active_exception(&mut h, "10d", "7d").await;
        let id = ex["id"].as_str().unwrap().to_string();
        let grant_id = ex["grant_id"].as_str().unwrap().to_string();
        // Day 6: re-validated, next due on day 13 — after the expiry on day 10.
        h.clock.advance(chrono::Duration::days(6));
        relogin(&mut h, &["oscar", "sam", "sofia", "alice", "bob"]).await;
        let (s, v) = post(
            &mut h,
            "sam",
            format!("/api/v1/exceptions/{id}/revalidate"),
            json!({"note": "security confirms"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "security staff may re-validate: {v}");
        h.clock.advance(chrono::Duration::days(5));
        h.tick().await;
        relogin(&mut h, &["oscar", "sam", "sofia", "alice", "bob"]).await;
        let (_, grant) = h
            .call("sam", "GET", &format!("/api/v1/grants/{grant_id}"), None)
            .await;
        assert_eq!(grant["end_reason"]["kind"], "expired", "{grant}");
        let (_, v) = show(&mut h, "oscar", &id).await;
        assert_eq!(
            (v["state"].as_str(), v["end_reason"].as_str()),
            (Some("ended"), Some("expired")),
            "{v}"
        );
        let (s, v) = post(
            &mut h,
            "oscar",
            format!("/api/v1/exceptions/{id}/end"),
            json!({"reason": "done"}),
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::CONFLICT, Some("wrong_state")),
            "{v}"
        );

        // Another one, ended at once by its owner; bob (unrelated) may not.
        let ex = active_exception(&mut h, "90d", "30d").await;
        let id = ex["id"].as_str().unwrap().to_string();
        let grant_id = ex["grant_id"].as_str().unwrap().to_string();
        let (s, v) = post(
            &mut h,
            "bob",
            format!("/api/v1/exceptions/{id}/end"),
            json!({"reason": "no"}),
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{v}"
        );
        let (s, v) = post(
            &mut h,
            "oscar",
            format!("/api/v1/exceptions/{id}/end"),
            json!({"reason": ""}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let (s, v) = post(
            &mut h,
            "oscar",
            format!("/api/v1/exceptions/{id}/end"),
            json!({"reason": "export job retired"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (v["state"].as_str(), v["end_reason"].as_str()),
            (Some("ended"), Some("revoked")),
            "{v}"
        );
        let (_, grant) = h
            .call("sam", "GET", &format!("/api/v1/grants/{grant_id}"), None)
            .await;
        assert_eq!(grant["end_reason"]["by"], "oscar", "{grant}");
        assert!(events_of(&mut h, "exception.ended")
            .await
            .iter()
            .any(|e| e["data"]["exception_id"] == id.as_str()
                && e["data"]["reason"] == "export job retired"));

        // A pending one ended by its owner is withdrawn.
        let ex = file(&mut h, exception_body("90d", "30d")).await;
        let id = ex["id"].as_str().unwrap().to_string();
        let (s, v) = post(
            &mut h,
            "oscar",
            format!("/api/v1/exceptions/{id}/end"),
            json!({"reason": "not needed after all"}),
        )
        .await;
        assert_eq!(
            (s, v["state"].as_str()),
            (StatusCode::OK, Some("ended")),
            "{v}"
        );
        let req = request_of(&mut h, &ex).await;
        assert_eq!(req["state"], "withdrawn");

        // Lists: the owner sees all three; by state; a vendor sees none; pages carry cursors.
        let (s, all) = h.call("oscar", "GET", "/api/v1/exceptions", None).await;
        assert_eq!(s, StatusCode::OK, "{all}");
        assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
        let (_, ended) = h
            .call("sam", "GET", "/api/v1/exceptions?state=ended", None)
            .await;
        assert_eq!(ended.as_array().unwrap().len(), 3, "{ended}");
        let (_, active) = h
            .call("sam", "GET", "/api/v1/exceptions?state=active", None)
            .await;
        assert!(active.as_array().unwrap().is_empty(), "{active}");
        let (_, none) = h.call("vera", "GET", "/api/v1/exceptions", None).await;
        assert!(none.as_array().unwrap().is_empty(), "{none}");
        let (s, v) = h
            .call("sam", "GET", "/api/v1/exceptions?state=later", None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let resp = h
            .http
            .get(format!("{}/api/v1/exceptions?limit=2", h.base))
            .bearer_auth(h.login("sam").await)
            .send()
            .await
            .unwrap();
        let cursor = resp.headers()["x-next-cursor"]
            .to_str()
            .unwrap()
            .to_string();
        let first: Value = resp.json().await.unwrap();
        assert_eq!(first.as_array().unwrap().len(), 2);
        let (_, rest) = h
            .call(
                "sam",
                "GET",
                &format!("/api/v1/exceptions?limit=2&cursor={cursor}"),
                None,
            )
            .await;
        assert_eq!(rest.as_array().unwrap().len(), 1, "{rest}");
        assert_ne!(rest[0]["id"], first[0]["id"]);
        assert_ne!(rest[0]["id"], first[1]["id"]);
        // The shared view for other features sees them all too.
        let mut tx = h.state().store.read().await.unwrap();
        let all = jitgate_server::exceptions::summaries(
            &mut tx,
            &jitgate_store::ExceptionFilter::default(),
            h.clock.now_ts(),
        )
        .await
        .unwrap();
        drop(tx);
        assert_eq!(all.len(), 3);
        assert!(all
            .iter()
            .all(|s| s.owner == "oscar" && s.assets == vec!["historian".to_string()]));
        h.stop().await;
    })
    .await;
}
