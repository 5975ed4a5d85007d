//! Outgoing webhooks and post-session reviews, against a real local receiver that checks
//! the HMAC signature and the timestamp itself (as docs/notifications.md tells receivers to).

use super::*;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use jitgate_server::config::{NotifyConfig, WebhookConfig, WebhookFormat};
use jitgate_testkit::each_backend;
use sha2::Sha256;
use std::sync::Mutex;
use std::time::Duration;

const SECRET: &str = "test-webhook-key-0123456789abcdef";

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// Answer this many verified requests with 500 before accepting.
    fail_next: usize,
    /// Every request that reached the handler.
    attempts: usize,
    /// Requests refused because the signature or timestamp did not verify.
    rejected: usize,
    /// Accepted deliveries: (delivery id header, event header, body).
    delivered: Vec<(String, String, Value)>,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            seen,
        }
    }

    fn fail_next(&self, n: usize) {
        self.seen.lock().unwrap().fail_next = n;
    }

    fn delivered(&self) -> Vec<(String, String, Value)> {
        self.seen.lock().unwrap().delivered.clone()
    }

    fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.delivered()
            .into_iter()
            .filter(|(_, k, _)| k == kind)
            .map(|(_, _, b)| b)
            .collect()
    }

    fn attempts(&self) -> usize {
        self.seen.lock().unwrap().attempts
    }

    fn rejected(&self) -> usize {
        self.seen.lock().unwrap().rejected
    }
}

/// The receiver's own verification: `v1=hex(HMAC-SHA256(key, "{ts}.{body}"))`, compared in
/// constant time, and a timestamp at most 5 minutes old.
fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(ts), Some(sig)) = (header("x-jitgate-timestamp"), header("x-jitgate-signature"))
    else {
        return false;
    };
    let Ok(ts_num) = ts.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - ts_num).abs() > 300 {
        return false;
    }
    let Some(Ok(sig)) = sig.strip_prefix("v1=").map(hex::decode) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn receive(
    axum::extract::State(seen): axum::extract::State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let mut seen = seen.lock().unwrap();
    seen.attempts += 1;
    if !verify(&headers, &body) {
        seen.rejected += 1;
        return axum::http::StatusCode::UNAUTHORIZED;
    }
    if seen.fail_next > 0 {
        seen.fail_next -= 1;
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    seen.delivered.push((
        header("x-jitgate-delivery"),
        header("x-jitgate-event"),
        serde_json::from_slice(&body).unwrap(),
    ));
    axum::http::StatusCode::OK
}

/// Secrets live in their own directory, created before the server reads them.
struct Hooks {
    dir: tempfile::TempDir,
    config: NotifyConfig,
}

fn hooks(list: &[(&str, &str, WebhookFormat, Option<&[&str]>)]) -> Hooks {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hook.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let webhooks = list
        .iter()
        .map(|(name, url, format, events)| WebhookConfig {
            name: name.to_string(),
            url: url.to_string(),
            secret_file: Some(secret.clone()),
            secret_env: None,
            format: *format,
            events: events.map(|e| e.iter().map(|s| s.to_string()).collect()),
        })
        .collect();
    Hooks {
        dir,
        config: NotifyConfig { webhooks },
    }
}

fn config(data: &std::path::Path, listen: std::net::SocketAddr, hooks: &Hooks) -> ServerConfig {
    assert!(hooks.dir.path().exists());
    ServerConfig {
        listen,
        data_dir: data.to_path_buf(),
        session_ttl: "24h".into(),
        notify: hooks.config.clone(),
        // No gateway runs in these tests: a teardown fails after this long.
        teardown_timeout: "300ms".into(),
        ..ServerConfig::default()
    }
}

/// Like `Harness::start`, with webhooks configured.
async fn start(store: Store, hooks: &Hooks) -> Harness {
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let server = jitgate_server::start_with_store(
        config(data.path(), "127.0.0.1:0".parse().unwrap(), hooks),
        clock.clone(),
        store,
    )
    .await
    .expect("server starts with webhooks");
    let inv = Inventory::from_toml(PLANT).unwrap();
    jitgate_server::service::load_inventory(&server.state, Actor::system(), &inv)
        .await
        .unwrap();
    let mut tx = server.state.store.write().await.unwrap();
    for i in &inv.identities {
        if i.kind != jitgate_core::IdentityKind::Workload {
            tx.set_password(
                &i.id,
                &jitgate_server::auth::hash_password(&password(&i.id)).unwrap(),
            )
            .await
            .unwrap();
        }
    }
    tx.commit().await.unwrap();
    Harness {
        data,
        base: format!("http://{}", server.addr),
        clock,
        server: Some(server),
        http: reqwest::Client::new(),
        tokens: HashMap::new(),
    }
}

/// Poll (real time) until `done`, moving the manual clock by `step` each round so that
/// retries fall due; fails after ~20 s.
async fn until(h: &Harness, step: chrono::Duration, what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        if !step.is_zero() {
            h.clock.advance(step);
            h.state().notifier.wake();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn emergency_plc7() -> Value {
    let mut body = write_plc7("30m");
    body["path"] = json!("emergency");
    body["reason"] = json!("valve stuck open, line 2 alarm");
    body["reference"] = json!("INC-88");
    body
}

async fn outbox(h: &mut Harness, query: &str) -> Vec<Value> {
    let (s, v) = h
        .call("sam", "GET", &format!("/api/v1/notifications{query}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array().unwrap().clone()
}

#[tokio::test]
async fn awaiting_approval_and_grant_active_are_delivered_signed() {
    each_backend(|store| async move {
        let rx = Receiver::start().await;
        let hooks = hooks(&[("soc", &rx.url, WebhookFormat::Json, None)]);
        let mut h = start(store, &hooks).await;

        let r = h.request("alice", read_plc7()).await;
        let rid = r["id"].as_str().unwrap().to_string();
        until(&h, chrono::Duration::zero(), "awaiting approval", || {
            !rx.of_kind("request.awaiting_approval").is_empty()
        })
        .await;
        let n = &rx.of_kind("request.awaiting_approval")[0];
        assert_eq!(n["event"], "request.awaiting_approval");
        assert_eq!(n["data"]["request_id"], rid.as_str());
        assert_eq!(n["data"]["requester"], "alice");
        assert_eq!(n["data"]["assets"], json!(["plc-7"]));
        assert_eq!(n["data"]["sites"], json!(["north"]));
        assert_eq!(n["data"]["reason"], "check valve positions");
        assert_eq!(n["data"]["reference"], "WO-1234");
        // Engineers of the asset's site: not the requester herself, not disabled dave.
        assert_eq!(n["data"]["approvers"], json!(["bob"]), "{n}");
        assert!(n["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("jitgate approve {rid}")));

        let (s, v) = h.approve("bob", &r, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let gid = v["grant"]["id"].as_str().unwrap().to_string();
        until(&h, chrono::Duration::zero(), "grant active", || {
            !rx.of_kind("grant.active").is_empty()
        })
        .await;
        let n = &rx.of_kind("grant.active")[0];
        assert_eq!(n["data"]["grant_id"], gid.as_str());
        assert_eq!(n["data"]["subject"], "alice");
        assert_eq!(n["data"]["emergency"], false);
        let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
        assert_eq!(
            time(&n["data"]["expires_at"]),
            time(&v["grant"]["expires_at"])
        );
        assert!(rx.of_kind("breakglass.started").is_empty());

        // Every delivery carried its id, matching the envelope; all verified.
        for (id, kind, body) in rx.delivered() {
            assert_eq!(body["delivery"], id.as_str());
            assert_eq!(body["event"], kind.as_str());
        }
        assert_eq!(rx.rejected(), 0);
        assert_eq!(rx.delivered().len(), 2);

        // The outbox says so too; security staff may look, others may not.
        let rows = outbox(&mut h, "").await;
        assert_eq!(rows.len(), 2, "{rows:?}");
        for row in &rows {
            assert_eq!(row["state"], "delivered", "{row}");
            assert_eq!(row["attempts"], 1);
            assert_eq!(row["webhook"], "soc");
            let text = row.to_string();
            assert!(!text.contains(SECRET) && !text.contains(&rx.url), "{text}");
        }
        let (s, v) = h.call("alice", "GET", "/api/v1/notifications", None).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );

        // The receiver's check is real: a tampered body, a wrong key and a stale timestamp
        // are all refused.
        let body = serde_json::to_vec(&rx.delivered()[0].2).unwrap();
        let sign = |key: &[u8], ts: i64, body: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(format!("{ts}.").as_bytes());
            mac.update(body);
            format!("v1={}", hex::encode(mac.finalize().into_bytes()))
        };
        let now = chrono::Utc::now().timestamp();
        let post = |ts: i64, sig: String, body: Vec<u8>| {
            h.http
                .post(&rx.url)
                .header("X-Jitgate-Timestamp", ts.to_string())
                .header("X-Jitgate-Signature", sig)
                .header("X-Jitgate-Delivery", "ntf-forged")
                .body(body)
                .send()
        };
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        let cases = [
            (now, sign(SECRET.as_bytes(), now, &body), tampered),
            (
                now,
                sign(b"another-key-0123456789", now, &body),
                body.clone(),
            ),
            (
                now - 600,
                sign(SECRET.as_bytes(), now - 600, &body),
                body.clone(),
            ),
        ];
        for (ts, sig, b) in cases {
            let resp = post(ts, sig, b).await.unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(rx.rejected(), 3);
        // ... and a correctly signed one passes, so the refusals were for the right reason.
        let resp = post(now, sign(SECRET.as_bytes(), now, &body), body.clone())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_backoff_and_delivered_once() {
    each_backend(|store| async move {
        let rx = Receiver::start().await;
        rx.fail_next(2);
        let hooks = hooks(&[(
            "soc",
            &rx.url,
            WebhookFormat::Json,
            Some(&["grant.active"][..]),
        )]);
        let mut h = start(store, &hooks).await;
        let v = h.request("oscar", emergency_plc7()).await;
        let gid = v["grant"]["id"].as_str().unwrap().to_string();

        // First attempt fails; the row waits about a second (manual clock) for the next.
        until(&h, chrono::Duration::zero(), "first attempt", || {
            rx.attempts() >= 1
        })
        .await;
        let mut rows = Vec::new();
        for _ in 0..100 {
            rows = outbox(&mut h, "?state=pending").await;
            if rows.len() == 1 && rows[0]["last_error"].is_string() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(rows.len(), 1, "only grant.active is subscribed: {rows:?}");
        let row = &rows[0];
        assert_eq!(row["attempts"], 1, "{row}");
        assert!(
            row["last_error"].as_str().unwrap().contains("HTTP 500"),
            "{row}"
        );
        let created =
            chrono::DateTime::parse_from_rfc3339(row["created_at"].as_str().unwrap()).unwrap();
        let next =
            chrono::DateTime::parse_from_rfc3339(row["next_attempt_at"].as_str().unwrap()).unwrap();
        let wait = (next - created).num_milliseconds();
        assert!(
            (800..=1200).contains(&wait),
            "first backoff ~1 s: {wait} ms"
        );
        // Nothing more happens while the (manual) clock stands still.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(rx.attempts(), 1);

        until(
            &h,
            chrono::Duration::seconds(1),
            "delivery after retries",
            || !rx.delivered().is_empty(),
        )
        .await;
        // Give a duplicate every chance to show up.
        tokio::time::sleep(Duration::from_millis(300)).await;
        h.clock.advance(chrono::Duration::minutes(30));
        h.state().notifier.wake();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(rx.attempts(), 3, "two failures, one success");
        let delivered = rx.delivered();
        assert_eq!(delivered.len(), 1, "delivered exactly once");
        assert_eq!(delivered[0].2["data"]["grant_id"], gid.as_str());
        let rows = outbox(&mut h, "").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["state"], "delivered");
        assert_eq!(rows[0]["attempts"], 3);
        assert!(rows[0]["last_error"].is_null());
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn notifications_pending_at_shutdown_are_delivered_after_restart() {
    each_backend(|store| async move {
        let rx = Receiver::start().await;
        rx.fail_next(usize::MAX);
        let hooks = hooks(&[("soc", &rx.url, WebhookFormat::Json, None)]);
        let mut h = start(store, &hooks).await;
        let r = h.request("alice", read_plc7()).await;
        until(&h, chrono::Duration::zero(), "a failed attempt", || {
            rx.attempts() >= 1
        })
        .await;
        let addr = h.server.as_ref().unwrap().addr;
        let store = h.stop_server_only().await;
        let attempts_while_up = rx.attempts();

        // Down: the notice waits in the outbox.
        {
            let mut tx = store.read().await.unwrap();
            let rows = tx
                .list_notifications(&jitgate_store::NotificationFilter::default())
                .await
                .unwrap();
            assert_eq!(rows.len(), 1);
            assert!(rows[0].delivered_at.is_none());
            assert_eq!(rows[0].kind, "request.awaiting_approval");
        }
        rx.fail_next(0);
        h.clock.advance(chrono::Duration::minutes(5));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            rx.attempts(),
            attempts_while_up,
            "nothing is sent while down"
        );

        let server = jitgate_server::start_with_store(
            config(h.data.path(), addr, &hooks),
            h.clock.clone(),
            store,
        )
        .await
        .expect("server restarts");
        h.server = Some(server);
        until(
            &h,
            chrono::Duration::seconds(1),
            "delivery after restart",
            || !rx.delivered().is_empty(),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let delivered = rx.delivered();
        assert_eq!(delivered.len(), 1, "none lost, none doubled: {delivered:?}");
        assert_eq!(delivered[0].2["data"]["request_id"], r["id"]);
        let rows = outbox(&mut h, "").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["state"], "delivered");
        assert_eq!(rows[0]["id"], delivered[0].0.as_str());
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn slack_format_is_a_readable_message() {
    each_backend(|store| async move {
        let rx = Receiver::start().await;
        let hooks = hooks(&[(
            "chat",
            &rx.url,
            WebhookFormat::Slack,
            Some(&["breakglass.started"][..]),
        )]);
        let mut h = start(store, &hooks).await;
        let v = h.request("oscar", emergency_plc7()).await;
        let gid = v["grant"]["id"].as_str().unwrap().to_string();
        until(&h, chrono::Duration::zero(), "slack message", || {
            !rx.delivered().is_empty()
        })
        .await;
        let (_, kind, body) = rx.delivered().remove(0);
        assert_eq!(kind, "breakglass.started");
        let text = body["text"].as_str().unwrap();
        assert!(text.starts_with("BREAK-GLASS: oscar on plc-7"), "{text}");
        assert!(text.contains("valve stuck open"), "{text}");
        let blocks = body["blocks"].as_array().unwrap();
        let types: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["header", "section", "section", "context"], "{body}");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        let fields: Vec<&str> = blocks[2]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        for want in ["*Subject*\noscar", "*Assets*\nplc-7", "*Reference*\nINC-88"] {
            assert!(fields.contains(&want), "missing {want:?} in {fields:?}");
        }
        assert!(fields.len() <= 10);
        let context = blocks[3]["elements"][0]["text"].as_str().unwrap();
        assert!(context.contains(&gid), "{context}");
        assert!(
            body.get("data").is_none(),
            "Slack gets a message, not the envelope"
        );
        assert_eq!(rx.rejected(), 0, "Slack bodies are signed the same way");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn break_glass_notifies_and_opens_a_review_someone_else_completes() {
    each_backend(|store| async move {
        let rx = Receiver::start().await;
        let hooks = hooks(&[("soc", &rx.url, WebhookFormat::Json, None)]);
        let mut h = start(store, &hooks).await;
        let v = h.request("oscar", emergency_plc7()).await;
        let gid = v["grant"]["id"].as_str().unwrap().to_string();
        let expires = chrono::DateTime::parse_from_rfc3339(v["grant"]["expires_at"].as_str().unwrap())
            .unwrap();
        until(&h, chrono::Duration::zero(), "break-glass notices", || {
            rx.delivered().len() >= 2
        })
        .await;
        let bg = &rx.of_kind("breakglass.started")[0];
        assert_eq!(bg["data"]["grant_id"], gid.as_str());
        assert_eq!(bg["data"]["subject"], "oscar");
        assert_eq!(bg["data"]["reason"], "valve stuck open, line 2 alarm");
        let due = expires + chrono::Duration::hours(24);
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(bg["data"]["review_due_at"].as_str().unwrap())
                .unwrap(),
            due
        );
        assert_eq!(rx.of_kind("grant.active")[0]["data"]["emergency"], true);

        // The review is open, listed, and in the evidence log.
        let (s, list) = h.call("sam", "GET", "/api/v1/reviews?state=open", None).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["grant_id"], gid.as_str());
        assert_eq!(list[0]["reason"], "break_glass");
        assert_eq!(list[0]["subject"], "oscar");
        assert_eq!(list[0]["state"], "open");
        let (_, events) = h
            .call("sam", "GET", &format!("/api/v1/events?grant={gid}"), None)
            .await;
        let kinds: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"review.opened"), "{kinds:?}");

        let review = format!("/api/v1/grants/{gid}/review");
        let ok = json!({"outcome": "ok", "note": "looked at the session log"});
        // The subject may not review their own break-glass.
        let (s, v) = h.call("oscar", "POST", &review, Some(ok.clone())).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("separation_of_duties")),
            "{v}"
        );
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.contains("subject") && msg.contains("someone else"),
            "{msg}"
        );
        // Nobody reviews a session still going on.
        let (s, v) = h.call("sam", "POST", &review, Some(ok.clone())).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::CONFLICT, Some("wrong_state")),
            "{v}"
        );
        let (s, v) = h
            .call("oscar", "POST", &format!("/api/v1/grants/{gid}/complete"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // A plant engineer who neither approved nor is security staff may not.
        let (s, v) = h.call("alice", "POST", &review, Some(ok.clone())).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{v}");
        // A finding must say what was found.
        let (s, v) = h
            .call("sam", "POST", &review, Some(json!({"outcome": "finding"})))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let (s, v) = h
            .call(
                "sam",
                "POST",
                &review,
                Some(json!({"outcome": "finding", "note": "coil 12 forced without a work order; CH-231"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v[0]["state"], "done");
        assert_eq!(v[0]["reviewer"], "sam");
        assert_eq!(v[0]["outcome"], "finding");
        // Once.
        let (s, v) = h.call("sam", "POST", &review, Some(ok)).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");

        let (_, done) = h.call("sam", "GET", "/api/v1/reviews?state=done", None).await;
        assert_eq!(done.as_array().unwrap().len(), 1, "{done}");
        let (_, open) = h.call("sam", "GET", "/api/v1/reviews?state=open", None).await;
        assert!(open.as_array().unwrap().is_empty(), "{open}");
        let (_, events) = h
            .call("sam", "GET", &format!("/api/v1/events?grant={gid}"), None)
            .await;
        let completed: Vec<&Value> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "review.completed")
            .collect();
        assert_eq!(completed.len(), 1);
        assert_eq!(completed[0]["actor"], "sam");
        assert_eq!(completed[0]["data"]["outcome"], "finding");
        let (s, v) = h.call("sam", "GET", "/api/v1/reviews?state=bogus", None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn overdue_reviews_are_listed_and_notified_once() {
    each_backend(|store| async move {
        let rx = Receiver::start().await;
        let hooks = hooks(&[(
            "soc",
            &rx.url,
            WebhookFormat::Json,
            Some(&["review.due"][..]),
        )]);
        let mut h = start(store, &hooks).await;
        let v = h.request("oscar", emergency_plc7()).await;
        let gid = v["grant"]["id"].as_str().unwrap().to_string();
        let (_, overdue) = h
            .call("sam", "GET", "/api/v1/reviews?state=overdue", None)
            .await;
        assert!(overdue.as_array().unwrap().is_empty(), "{overdue}");

        // 30 minutes of access, then 24 hours to review it: a day later it is overdue.
        h.clock.advance(chrono::Duration::hours(25));
        h.tokens.clear(); // the logins of a day ago have expired
        until(&h, chrono::Duration::zero(), "review due notice", || {
            !rx.of_kind("review.due").is_empty()
        })
        .await;
        let n = &rx.of_kind("review.due")[0];
        assert_eq!(n["data"]["grant_id"], gid.as_str());
        assert_eq!(n["data"]["reason"], "break_glass");
        assert!(n["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("jitgate review {gid}")));
        let (_, overdue) = h
            .call("sam", "GET", "/api/v1/reviews?state=overdue", None)
            .await;
        let overdue = overdue.as_array().unwrap();
        assert_eq!(overdue.len(), 1, "{overdue:?}");
        assert_eq!(overdue[0]["state"], "overdue");

        // Later passes do not repeat it.
        h.clock.advance(chrono::Duration::hours(2));
        assert_eq!(
            jitgate_server::reviews::notify_overdue(h.state())
                .await
                .unwrap(),
            0
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(rx.of_kind("review.due").len(), 1);
        let rows = outbox(&mut h, "").await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(rx.delivered().iter().all(|(_, k, _)| k == "review.due"));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_webhook_whose_key_cannot_be_read_stops_the_start() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut hooks = hooks(&[("soc", "https://soc.example/hook", WebhookFormat::Json, None)]);
    hooks.config.webhooks[0].secret_file = Some(hooks.dir.path().join("missing.secret"));
    let data = tempfile::tempdir().unwrap();
    let err = jitgate_server::start_with_store(
        config(data.path(), "127.0.0.1:0".parse().unwrap(), &hooks),
        Arc::new(ManualClock::new(start_time())),
        store,
    )
    .await
    .err()
    .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("soc") && text.contains("missing.secret"),
        "{text}"
    );
}

#[tokio::test]
async fn reviews_and_notifications_are_in_the_openapi_document() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let h = Harness::start(store).await;
    let (s, doc) = h.raw("GET", "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/api/v1/reviews",
        "/api/v1/grants/{id}/review",
        "/api/v1/notifications",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    for schema in ["ReviewView", "ReviewBody", "NotificationView"] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} missing"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_failed_teardown_raises_a_signed_alert() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let rx = Receiver::start().await;
    let hooks = hooks(&[(
        "soc",
        &rx.url,
        WebhookFormat::Json,
        Some(&["teardown.failed"]),
    )]);
    let mut h = start(store, &hooks).await;
    let req = h.request("alice", read_plc7()).await;
    let (s, v) = h.approve("bob", &req, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let g = v["grant"]["id"].as_str().unwrap().to_string();
    // gw-north (plc-7's gateway) is not running: nobody acknowledges, nothing answers a probe.
    let (s, _) = h
        .call(
            "sam",
            "POST",
            &format!("/api/v1/grants/{g}/revoke"),
            Some(json!({"reason": "incident"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    until(
        &h,
        chrono::Duration::zero(),
        "teardown.failed delivered",
        || !rx.of_kind("teardown.failed").is_empty(),
    )
    .await;
    let alerts = rx.of_kind("teardown.failed");
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(alerts[0].to_string().contains(&g), "{:#}", alerts[0]);
    assert_eq!(
        rx.seen.lock().unwrap().rejected,
        0,
        "every delivery verified"
    );
    let (_, t) = h
        .call("sam", "GET", &format!("/api/v1/grants/{g}/teardown"), None)
        .await;
    assert_eq!(t["verdict"], "failed", "{t:#}");
    h.stop().await;
}
