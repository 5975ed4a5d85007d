//! Pagination of every list endpoint through the real HTTP API, on SQLite and PostgreSQL:
//! pages of `limit` items followed by `x-next-cursor` concatenate to exactly the whole list,
//! also when an item is inserted between two pages; a garbled cursor, a cursor of another
//! list and a cursor naming an item the caller may not see are `400 invalid_cursor`; a bad
//! `limit` is `400 bad_request`; a caller who sees few rows gets full pages of them only.

use crate::{read_plc7, write_plc7, Harness};
use jitgate_core::Clock;
use jitgate_server::paging::encode_cursor;
use jitgate_testkit::each_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// One page of `path` (which may carry a query): its items and the next cursor.
async fn page(
    h: &Harness,
    token: &str,
    path: &str,
    limit: usize,
    cursor: Option<&str>,
) -> (Vec<Value>, Option<String>) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut url = format!("{}/api/v1{path}{sep}limit={limit}", h.base);
    if let Some(c) = cursor {
        url.push_str(&format!("&cursor={c}"));
    }
    let resp = h.http.get(&url).bearer_auth(token).send().await.unwrap();
    let status = resp.status();
    let next = resp
        .headers()
        .get("x-next-cursor")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "GET {url}: {body}");
    (body.as_array().unwrap().clone(), next)
}

/// The key naming an item of `list` (for comparing pages with the whole list).
fn key(list: &str, v: &Value) -> String {
    let s = |f: &str| v[f].as_str().map(str::to_string).unwrap_or_default();
    match list {
        "/reviews" => format!("{} {}", s("grant_id"), s("reason")),
        "/sessions" => s("session_id"),
        "/evidence/checkpoints" => v["signature"].as_str().unwrap().to_string(),
        "/events" => v["seq"].to_string(),
        _ => s("id"),
    }
}

fn base_of(path: &str) -> &str {
    path.split('?').next().unwrap()
}

/// Walk `path` in pages of `limit`, calling `between` once after the first page. Asserts
/// that every page but the last is full and that the last one says so (no cursor).
async fn walk<F, Fut>(h: &Harness, token: &str, path: &str, limit: usize, between: F) -> Vec<String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let list = base_of(path);
    let mut between = Some(between);
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let (items, next) = page(h, token, path, limit, cursor.as_deref()).await;
        out.extend(items.iter().map(|v| key(list, v)));
        match next {
            Some(c) => {
                assert_eq!(items.len(), limit, "{path}: a page before the last is full");
                cursor = Some(c);
            }
            None => return out,
        }
        if let Some(f) = between.take() {
            f().await;
        }
    }
    panic!("{path}: the pages never end");
}

/// The whole list in one page.
async fn whole(h: &Harness, token: &str, path: &str) -> Vec<String> {
    let (items, next) = page(h, token, path, 1000, None).await;
    assert!(next.is_none(), "{path}: fits one page of 1000");
    items.iter().map(|v| key(base_of(path), v)).collect()
}

fn assert_unique(path: &str, keys: &[String]) {
    let set: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(set.len(), keys.len(), "{path}: an item twice: {keys:?}");
}

async fn error_of(h: &Harness, token: &str, path_and_query: &str) -> (StatusCode, String) {
    let (s, v) = h
        .raw(
            "GET",
            &format!("/api/v1{path_and_query}"),
            Some(token),
            None,
        )
        .await;
    (s, v["code"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn every_list_pages_whole_across_inserts_and_refuses_bad_cursors() {
    each_backend(|store| async move {
        let mut h = Harness::start_configured(
            store,
            std::sync::Arc::new(jitgate_core::ManualClock::new(crate::start_time())),
            |c| c.limits.max_open_requests = 100,
        )
        .await;
        let sam = h.login("sam").await;
        // Grants (approved reads), pending vendor requests, break-glass grants with reviews.
        for _ in 0..5 {
            let req = h.request("alice", read_plc7()).await;
            let (s, v) = h.approve("bob", &req, None).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        for _ in 0..3 {
            h.request("vera", write_plc7("1h")).await;
        }
        for who in ["oscar", "alice", "oscar"] {
            let mut body = write_plc7("30m");
            body["path"] = json!("emergency");
            let v = h.request(who, body).await;
            assert_eq!(v["state"], "active", "{v}");
        }
        let (s, v) = h
            .call(
                "sam",
                "PUT",
                "/api/v1/sites/east",
                Some(json!({"id": "east", "name": "East", "zones": ["cell-9"]})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // Gateways: two more identities with the gateway role, and sessions from gw-north.
        for id in ["gw-east", "gw-west"] {
            let body = json!({"id": id, "kind": "workload", "name": id, "roles": ["gateway"],
                "owners": ["sam"]});
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
        let key = h.api_key("gw-north", "test").await;
        h.set_token("gw-north", &key);
        let (_, grants) = h
            .call("sam", "GET", "/api/v1/grants?state=active", None)
            .await;
        let grant = grants[0]["id"].as_str().unwrap().to_string();
        let now = h.clock.now();
        let at = |n: i64| (now + chrono::Duration::seconds(n)).to_rfc3339();
        let events: Vec<Value> = (1..=5)
            .map(|n| {
                json!({"gseq": n, "kind": "session.started", "at": at(n), "grant_id": grant,
                    "session_id": format!("sess-{n}"),
                    "data": {"subject": "alice", "asset": "plc-7"}})
            })
            .collect();
        let (s, v) = h
            .call(
                "gw-north",
                "POST",
                "/api/v1/gateway/events",
                Some(json!({"events": events})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // API keys and checkpoints.
        for n in 0..4 {
            let body = json!({"identity": "svc-historian", "name": format!("export {n}")});
            let (s, v) = h.call("sam", "POST", "/api/v1/api-keys", Some(body)).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        for _ in 0..3 {
            // A second apart, so that no two checkpoints are alike.
            h.clock.advance(chrono::Duration::seconds(1));
            let (s, v) = h
                .call("sam", "POST", "/api/v1/evidence/checkpoints", None)
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        // Notifications, straight into the outbox (no webhook is configured).
        {
            let mut tx = h.state().store.write().await.unwrap();
            for n in 0..5 {
                tx.enqueue_notification(&notification(&format!("n-{n}"), now))
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }

        // Every list, as security/admin staff, two at a time: exactly the whole list.
        for path in [
            "/identities",
            "/assets",
            "/sites",
            "/orgs",
            "/requests",
            "/requests?state=pending",
            "/grants",
            "/grants?state=active",
            "/api-keys",
            "/reviews",
            "/notifications",
            "/sessions",
            "/evidence/checkpoints",
            "/gateways",
            "/events",
        ] {
            let all = whole(&h, &sam, path).await;
            assert!(all.len() > 2, "{path}: more than one page ({all:?})");
            let paged = walk(&h, &sam, path, 2, || async {}).await;
            assert_eq!(paged, all, "{path}: the pages are the list");
            assert_unique(path, &paged);

            // Cursors: garbled, of another list, and a limit out of range.
            let (s, code) = error_of(&h, &sam, &with(path, "cursor=not-a-cursor")).await;
            assert_eq!(
                (s, code.as_str()),
                (StatusCode::BAD_REQUEST, "invalid_cursor"),
                "{path}"
            );
            let foreign = encode_cursor("elsewhere", "x");
            let (s, code) = error_of(&h, &sam, &with(path, &format!("cursor={foreign}"))).await;
            assert_eq!(
                (s, code.as_str()),
                (StatusCode::BAD_REQUEST, "invalid_cursor"),
                "{path}"
            );
            for bad in ["limit=0", "limit=1001", "limit=-3", "limit=two"] {
                let (s, code) = error_of(&h, &sam, &with(path, bad)).await;
                assert_eq!(
                    (s, code.as_str()),
                    (StatusCode::BAD_REQUEST, "bad_request"),
                    "{path} {bad}"
                );
            }
        }
        // A well-formed cursor naming no row of a stored list.
        for (path, list) in [
            ("/requests", "requests"),
            ("/grants", "grants"),
            ("/api-keys", "api-keys"),
            ("/notifications", "notifications"),
            ("/evidence/checkpoints", "evidence/checkpoints"),
            ("/reviews", "reviews"),
        ] {
            let c = encode_cursor(list, "999999");
            let (s, code) = error_of(&h, &sam, &format!("{path}?cursor={c}")).await;
            assert_eq!(
                (s, code.as_str()),
                (StatusCode::BAD_REQUEST, "invalid_cursor"),
                "{path}"
            );
        }

        // An insert between two pages: newest-first lists do not show it (it is before the
        // cursor), oldest-first ones show it at the end; nothing twice either way.
        let before = whole(&h, &sam, "/requests").await;
        let carol = h.login("carol").await;
        let paged = walk(&h, &sam, "/requests", 3, || async {
            let (s, v) = h
                .raw("POST", "/api/v1/requests", Some(&carol), Some(read_plc7()))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        })
        .await;
        assert_eq!(
            paged, before,
            "the new request is not in the pages read after it"
        );
        let after = whole(&h, &sam, "/requests").await;
        assert_eq!(after.len(), before.len() + 1);
        assert_eq!(&after[1..], &before[..]);

        let before = whole(&h, &sam, "/notifications").await;
        let store = h.state().store.clone();
        let paged = walk(&h, &sam, "/notifications", 2, || async {
            let mut tx = store.write().await.unwrap();
            tx.enqueue_notification(&notification("n-late", now))
                .await
                .unwrap();
            tx.commit().await.unwrap();
        })
        .await;
        assert_eq!(paged, before);

        let before = whole(&h, &sam, "/events").await;
        let paged = walk(&h, &sam, "/events", 4, || async {
            let (s, v) = h
                .raw("POST", "/api/v1/requests", Some(&carol), Some(read_plc7()))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        })
        .await;
        let after = whole(&h, &sam, "/events").await;
        assert!(after.len() > before.len());
        assert_eq!(
            paged, after,
            "events are oldest first: the new ones come last"
        );
        assert_unique("/events", &paged);

        let before = whole(&h, &sam, "/api-keys").await;
        let sam2 = sam.clone();
        let paged = walk(&h, &sam, "/api-keys", 2, || async {
            let body = json!({"identity": "svc-historian", "name": "late"});
            let (s, v) = h
                .raw("POST", "/api/v1/api-keys", Some(&sam2), Some(body))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        })
        .await;
        let after = whole(&h, &sam, "/api-keys").await;
        assert_eq!(after.len(), before.len() + 1);
        assert_eq!(
            paged, after,
            "keys are oldest first: the new one comes last"
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn hidden_rows_neither_shorten_pages_nor_leak_through_cursors() {
    each_backend(|store| async move {
        let mut h = Harness::start_configured(
            store,
            std::sync::Arc::new(jitgate_core::ManualClock::new(crate::start_time())),
            |c| c.limits.max_open_requests = 100,
        )
        .await;
        // Vera's three requests among many of plant staff she may not see.
        let mut veras = Vec::new();
        for n in 0..12 {
            let who = ["alice", "bob", "carol", "oscar"][n % 4];
            h.request(who, read_plc7()).await;
            if n % 4 == 3 {
                let v = h.request("vera", write_plc7("1h")).await;
                veras.push(v["id"].as_str().unwrap().to_string());
            }
        }
        veras.reverse(); // newest first
        let vera = h.login("vera").await;
        let all = whole(&h, &vera, "/requests").await;
        assert_eq!(all, veras, "vera sees her own requests only");
        // One at a time: every page holds one of hers, and the last says it is the last
        // (no cursor pointing into the hidden rows after it).
        let paged = walk(&h, &vera, "/requests", 1, || async {}).await;
        assert_eq!(paged, veras);
        // A cursor naming a request she may not see is refused like a garbled one.
        let sam = h.login("sam").await;
        let everyone = whole(&h, &sam, "/requests").await;
        let hidden = everyone.iter().find(|id| !veras.contains(id)).unwrap();
        let c = encode_cursor("requests", hidden);
        let (s, code) = error_of(&h, &vera, &format!("/requests?cursor={c}")).await;
        assert_eq!(
            (s, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_cursor")
        );
        let c = encode_cursor("requests", "req-does-not-exist");
        let (s2, code2) = error_of(&h, &vera, &format!("/requests?cursor={c}")).await;
        assert_eq!(
            (s2, code2),
            (s, code),
            "the same answer as for a request that does not exist"
        );

        // Grants: carol (site south) files reads of plc-7 (north) among alice's; alice's
        // grants are hidden from her, yet her pages are full and whole.
        for who in ["alice", "carol"] {
            for _ in 0..3 {
                let req = h.request(who, read_plc7()).await;
                let (s, v) = h.approve("bob", &req, None).await;
                assert_eq!(s, StatusCode::OK, "{v}");
            }
        }
        let carol = h.login("carol").await;
        let mine = whole(&h, &carol, "/grants?mine=true").await;
        assert_eq!(mine.len(), 3);
        let paged = walk(&h, &carol, "/grants?mine=true", 1, || async {}).await;
        assert_eq!(paged, mine);
        let seen = whole(&h, &carol, "/grants").await;
        let paged = walk(&h, &carol, "/grants", 2, || async {}).await;
        assert_eq!(paged, seen, "what carol may see, whole, in full pages");
        assert_eq!(seen, mine, "carol sees her own grants only");
        let every = whole(&h, &sam, "/grants").await;
        assert_eq!(every.len(), 6);
        let hidden = every.iter().find(|id| !seen.contains(id)).unwrap();
        let c = encode_cursor("grants", hidden);
        let (s, code) = error_of(&h, &carol, &format!("/grants?cursor={c}")).await;
        assert_eq!(
            (s, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_cursor")
        );
        h.stop().await;
    })
    .await;
}

/// `path` with one more query parameter.
fn with(path: &str, param: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{param}")
}

fn notification(id: &str, now: jitgate_core::Timestamp) -> jitgate_store::Notification {
    jitgate_store::Notification {
        id: id.into(),
        webhook: "soc".into(),
        kind: "grant.active".into(),
        payload: json!({"title": "a grant is active"}),
        created_at: now,
        attempts: 0,
        next_attempt_at: now,
        delivered_at: Some(now),
        last_error: None,
    }
}

#[tokio::test]
async fn openapi_declares_limit_cursor_and_the_next_cursor_header_on_every_list() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let h = Harness::start(store).await;
    let (s, doc) = h.raw("GET", "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let mut lists = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else { continue };
        let ok = &op["responses"]["200"];
        let schema = &ok["content"]["application/json"]["schema"];
        if schema["type"] != "array" {
            continue;
        }
        lists.push(path.clone());
        let params: Vec<&Value> = op["parameters"].as_array().into_iter().flatten().collect();
        for name in ["limit", "cursor"] {
            let p = params
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("GET {path} does not declare `{name}`"));
            assert_eq!(p["in"], "query", "GET {path} {name}");
            assert_ne!(p["required"], json!(true), "GET {path} {name}");
        }
        assert!(
            ok["headers"]["x-next-cursor"].is_object(),
            "GET {path} does not declare the x-next-cursor header"
        );
    }
    for must in [
        "/api/v1/identities",
        "/api/v1/requests",
        "/api/v1/grants",
        "/api/v1/api-keys",
        "/api/v1/reviews",
        "/api/v1/notifications",
        "/api/v1/sessions",
        "/api/v1/evidence/checkpoints",
        "/api/v1/gateways",
        "/api/v1/events",
    ] {
        assert!(
            lists.iter().any(|p| p == must),
            "{must} is a list: {lists:?}"
        );
    }
    h.stop().await;
}
