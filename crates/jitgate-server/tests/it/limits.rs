//! `[limits]` and the API contract, through the real HTTP API: each limit answers its own
//! error code with the JSON `{code, message}` body, and the server keeps serving others.

use super::*;
use jitgate_testkit::each_backend;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server still answers another client normally.
async fn still_serving(h: &mut Harness) {
    let (s, v) = h.call("bob", "GET", "/api/v1/auth/whoami", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

fn addr(h: &Harness) -> std::net::SocketAddr {
    h.server.as_ref().unwrap().addr
}

/// Read one whole answer (head and `content-length` body), bounded by `deadline`.
async fn read_to_close(conn: &mut TcpStream, deadline: Duration) -> String {
    let mut out = Vec::new();
    let whole = |out: &[u8]| {
        let text = String::from_utf8_lossy(out);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let len = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            })
            .unwrap_or(0);
        body.len() >= len
    };
    tokio::time::timeout(deadline, async {
        let mut buf = [0u8; 4096];
        while !whole(&out) {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server answered within the deadline");
    String::from_utf8_lossy(&out).into_owned()
}

fn json_body(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON body: {answer}"))
}

#[tokio::test]
async fn every_error_is_json_with_a_code_405_404_413_at_any_size() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let token = h.login("alice").await;

        let resp = h
            .http
            .delete(format!("{}/api/v1/requests", h.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(resp.headers().contains_key("allow"));
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["code"], "method_not_allowed", "{v}");

        for path in ["/nope", "/api/v1/nope", "/api/v1/requests/x/y/z"] {
            let (s, v) = h.raw("GET", path, Some(&token), None).await;
            assert_eq!((s, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{path}: {v}");
        }

        // Over the body limit, with a length (refused before reading) and chunked (refused
        // while reading), just over and far over: always 413 with the JSON body.
        let max = h.state().config.limits.max_body_bytes;
        for size in [max + 1, 3 * max] {
            let body = format!("{{\"toml\":\"{}\"}}", "a".repeat(size));
            let resp = h
                .http
                .post(format!("{}/api/v1/inventory", h.base))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{size}");
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["code"], "payload_too_large", "{v}");

            let mut conn = TcpStream::connect(addr(&h)).await.unwrap();
            let head = "POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
            conn.write_all(head.as_bytes()).await.unwrap();
            for chunk in body.as_bytes().chunks(64 * 1024) {
                let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
                if conn.write_all(&framed).await.is_err() {
                    break; // the server answered and closed early
                }
            }
            let _ = conn.write_all(b"0\r\n\r\n").await;
            let answer = read_to_close(&mut conn, Duration::from_secs(20)).await;
            assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
            assert_eq!(json_body(&answer)["code"], "payload_too_large");
        }
        still_serving(&mut h).await;
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn free_text_has_one_cap_everywhere() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let long = "x".repeat(jitgate_core::governance::MAX_TEXT + 1);
        let r = h.request("alice", read_plc7()).await;
        let rid = r["id"].as_str().unwrap().to_string();
        let cases = [
            (
                "sam",
                "/api/v1/identities/dave/disable".to_string(),
                json!({"reason": long}),
            ),
            (
                "sam",
                "/api/v1/api-keys".to_string(),
                json!({"identity": "svc-historian", "name": long}),
            ),
            (
                "bob",
                format!("/api/v1/requests/{rid}/deny"),
                json!({"comment": long}),
            ),
            ("alice", "/api/v1/requests".to_string(), {
                let mut b = read_plc7();
                b["reason"] = json!(long);
                b
            }),
        ];
        for (who, path, body) in cases {
            // Signed in first: a sign-in is an event of its own.
            h.login(who).await;
            let before = h.event_count().await;
            let (s, v) = h.call(who, "POST", &path, Some(body)).await;
            assert_eq!(
                (s, v["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("text_too_long")),
                "{path}: {v}"
            );
            assert_eq!(h.event_count().await, before, "{path}: nothing recorded");
        }
        // A granted request's revocation reason: the same cap.
        let (s, v) = h.approve("bob", &r, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let gid = v["grant_id"].as_str().unwrap().to_string();
        let (s, v) = h
            .call(
                "sam",
                "POST",
                &format!("/api/v1/grants/{gid}/revoke"),
                Some(json!({"reason": long})),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("text_too_long")),
            "{v}"
        );
        still_serving(&mut h).await;
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn scope_items_and_open_requests_per_requester_are_capped() {
    each_backend(|store| async move {
        let clock = Arc::new(ManualClock::new(start_time()));
        let mut h = Harness::start_configured(store, clock, |c| {
            c.limits.max_scope_items = 8;
            c.limits.max_open_requests = 2;
        })
        .await;
        let mut body = read_plc7();
        body["scope"][0]["modbus"] = json!((0..9)
            .map(|i| format!("read holding {i} unit 1"))
            .collect::<Vec<_>>());
        h.login("alice").await;
        let before = h.event_count().await;
        let (s, v) = h
            .call("alice", "POST", "/api/v1/requests", Some(body))
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("too_many_scope_items")
            ),
            "{v}"
        );
        assert!(v["message"].as_str().unwrap().contains("at most 8"), "{v}");
        assert_eq!(h.event_count().await, before);

        h.request("alice", read_plc7()).await;
        h.request("alice", read_plc7()).await;
        let (s, v) = h
            .call("alice", "POST", "/api/v1/requests", Some(read_plc7()))
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (
                StatusCode::TOO_MANY_REQUESTS,
                Some("too_many_open_requests")
            ),
            "{v}"
        );
        // Another requester is not held back by alice's requests.
        h.request("carol", read_plc7()).await;
        still_serving(&mut h).await;
        h.stop().await;
    })
    .await;
}

/// Submissions of one requester sent all at once: exactly the limit get through (the count
/// is taken again under the write lock, not only before the decision).
#[tokio::test]
async fn concurrent_submissions_do_not_pass_the_open_requests_limit() {
    each_backend(|store| async move {
        let clock = Arc::new(ManualClock::new(start_time()));
        let mut h = Harness::start_configured(store, clock, |c| {
            c.limits.max_open_requests = 3;
        })
        .await;
        let token = h.login("alice").await;
        let sends: Vec<_> = (0..12)
            .map(|_| {
                let req = h
                    .http
                    .post(format!("{}/api/v1/requests", h.base))
                    .bearer_auth(&token)
                    .json(&read_plc7());
                tokio::spawn(async move { req.send().await.unwrap().status() })
            })
            .collect();
        let (mut ok, mut refused) = (0, 0);
        for s in sends {
            match s.await.unwrap() {
                s if s.is_success() => ok += 1,
                StatusCode::TOO_MANY_REQUESTS => refused += 1,
                other => panic!("{other}"),
            }
        }
        assert_eq!((ok, refused), (3, 9));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn passwords_follow_the_policy() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        for pw in ["\0".repeat(16), "a".repeat(20), "short".to_string()] {
            let (s, v) = h
                .call(
                    "sam",
                    "POST",
                    "/api/v1/identities/dave/password",
                    Some(json!({"password": pw})),
                )
                .await;
            assert_eq!(
                (s, v["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("weak_password")),
                "{v}"
            );
        }
        let (s, v) = h
            .call(
                "sam",
                "POST",
                "/api/v1/identities/dave/password",
                Some(json!({"password": "a far better passphrase"})),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn half_sent_requests_time_out_with_408_and_others_are_served() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let clock = Arc::new(ManualClock::new(start_time()));
    let mut h = Harness::start_configured(store, clock, |c| {
        c.limits.header_read_timeout = "300ms".into();
        c.limits.idle_timeout = "600ms".into();
    })
    .await;
    // A head that never ends.
    let mut slow_head = TcpStream::connect(addr(&h)).await.unwrap();
    slow_head
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // A body that never comes.
    let mut slow_body = TcpStream::connect(addr(&h)).await.unwrap();
    slow_body
        .write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"id")
        .await
        .unwrap();
    let started = Instant::now();
    still_serving(&mut h).await;
    for (conn, what) in [
        (&mut slow_head, "header_read_timeout"),
        (&mut slow_body, "idle_timeout"),
    ] {
        let answer = read_to_close(conn, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        let v = json_body(&answer);
        assert_eq!(v["code"], "request_timeout");
        assert!(v["message"].as_str().unwrap().contains(what), "{v}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        started.elapsed()
    );
    still_serving(&mut h).await;
    h.stop().await;
}

#[tokio::test]
async fn the_connection_cap_answers_503_and_frees_its_slots() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let clock = Arc::new(ManualClock::new(start_time()));
    let h = Harness::start_configured(store, clock, |c| c.limits.max_connections = 2).await;
    let a = TcpStream::connect(addr(&h)).await.unwrap();
    let b = TcpStream::connect(addr(&h)).await.unwrap();
    let mut third = TcpStream::connect(addr(&h)).await.unwrap();
    let answer = read_to_close(&mut third, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "too_many_connections");
    drop((a, b));
    // The slots come back once those connections are gone (polled, with a deadline).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = reqwest::Client::new();
        if let Ok(r) = fresh.get(format!("{}/healthz", h.base)).send().await {
            if r.status() == StatusCode::OK {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server never freed its connection slots"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.stop().await;
}

#[tokio::test]
async fn openapi_declares_query_filters_statuses_and_length_limits() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let h = Harness::start(store).await;
    let (s, doc) = h.raw("GET", "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let mut query_params = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                match p["in"].as_str().unwrap() {
                    "path" => assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: path parameter {name} is not in the path"
                    ),
                    "query" => {
                        query_params += 1;
                        assert_ne!(
                            p["required"],
                            json!(true),
                            "{method} {path}: {name} is optional"
                        );
                    }
                    _ => {}
                }
            }
            let responses = op["responses"].as_object().unwrap();
            let mut needed = vec!["400", "401", "403", "404", "500"];
            if method != "get" {
                needed.extend(["409", "413", "422"]);
            }
            for status in needed {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} does not declare {status}"
                );
            }
        }
    }
    assert!(
        query_params >= 19,
        "list filters are query parameters ({query_params})"
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ReasonBody"]["properties"]["reason"]["maxLength"],
        json!(2000)
    );
    assert_eq!(
        schemas["NewRequestBody"]["properties"]["reason"]["maxLength"],
        json!(2000)
    );
    assert_eq!(
        schemas["PasswordBody"]["properties"]["password"]["minLength"],
        json!(12)
    );
    h.stop().await;
}
