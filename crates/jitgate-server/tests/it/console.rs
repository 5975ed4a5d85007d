//! The web console's server side: the session cookie's flags, CSRF refusal, the idle
//! timeout, sign-out, bad form input, the pages' security headers, the live stream, and the
//! `/sessions` view built from gateway events. (The pages themselves are tested in a real
//! browser by e2e/console.)

use super::*;
use jitgate_testkit::each_backend;
use reqwest::header::{HeaderMap, HeaderValue};

/// A browser-like client of the console: the cookie it was given and the CSRF token.
struct Console {
    cookie: String,
    csrf: String,
    set_cookie: String,
    body: Value,
}

async fn console_login(h: &Harness, who: &str, totp: Option<String>) -> Console {
    let resp = h
        .http
        .post(format!("{}/console/login", h.base))
        .header("Origin", &h.base)
        .json(&json!({"identity": who, "password": password(who), "totp": totp}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "console login {who}: {body}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    Console {
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
        cookie,
        set_cookie,
        body,
    }
}

/// Call `/api/v1{path}` (or a `/console/...` path) with the console's cookie; `csrf` and
/// `origin` as a page would send them.
async fn with_cookie(
    h: &Harness,
    c: &Console,
    method: &str,
    path: &str,
    body: Option<Value>,
    csrf: Option<&str>,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let url = if path.starts_with("/console/") {
        format!("{}{path}", h.base)
    } else {
        format!("{}/api/v1{path}", h.base)
    };
    let mut headers = HeaderMap::new();
    headers.insert("cookie", HeaderValue::from_str(&c.cookie).unwrap());
    if let Some(t) = csrf {
        headers.insert("x-csrf-token", HeaderValue::from_str(t).unwrap());
    }
    for (k, v) in extra {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let mut req = match method {
        "GET" => h.http.get(url),
        "POST" => h.http.post(url),
        "PUT" => h.http.put(url),
        other => panic!("{other}"),
    }
    .headers(headers);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn the_session_cookie_is_httponly_strict_and_secure() {
    each_backend(|store| async move {
        let h = Harness::start(store).await;
        let c = console_login(&h, "alice", None).await;
        let flags: Vec<&str> = c.set_cookie.split(';').map(str::trim).collect();
        assert!(
            c.cookie.starts_with("__Host-jitgate_session=jgs_"),
            "{}",
            c.set_cookie
        );
        for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(flags.contains(&flag), "{flag} missing: {}", c.set_cookie);
        }
        assert!(
            !flags.iter().any(|f| f.starts_with("Domain")),
            "{}",
            c.set_cookie
        );
        // The token stays in the cookie: the page's script never sees it.
        let token = c.cookie.split_once('=').unwrap().1;
        assert!(
            !c.body.to_string().contains(token),
            "login body leaks the token"
        );
        assert_eq!(c.body["identity"]["id"], "alice");
        assert_eq!(c.body["idle_timeout_secs"], 900);
        // The cookie authenticates API reads like the bearer token would.
        let (s, v) = with_cookie(&h, &c, "GET", "/auth/whoami", None, None, &[]).await;
        assert_eq!(
            (s, v["identity"]["id"].as_str()),
            (StatusCode::OK, Some("alice"))
        );
        let (s, v) = with_cookie(&h, &c, "GET", "/console/me", None, None, &[]).await;
        assert_eq!(
            (s, v["csrf_token"].as_str()),
            (StatusCode::OK, Some(c.csrf.as_str()))
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn secure_cookie_can_be_turned_off_for_plain_http() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().to_path_buf(),
        ..ServerConfig::default()
    };
    config.console.secure_cookie = false;
    let server =
        jitgate_server::start_with_store(config, Arc::new(ManualClock::new(start_time())), store)
            .await
            .unwrap();
    let inv = Inventory::from_toml(PLANT).unwrap();
    jitgate_server::service::load_inventory(&server.state, Actor::system(), &inv)
        .await
        .unwrap();
    let mut tx = server.state.store.write().await.unwrap();
    tx.set_password(
        "alice",
        &jitgate_server::auth::hash_password(&password("alice")).unwrap(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let resp = reqwest::Client::new()
        .post(format!("http://{}/console/login", server.addr))
        .json(&json!({"identity": "alice", "password": password("alice")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set_cookie.starts_with("jitgate_session=jgs_"),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    server.stop().await.close().await;
}

#[tokio::test]
async fn changes_without_the_csrf_token_are_refused_and_change_nothing() {
    each_backend(|store| async move {
        let h = Harness::start(store).await;
        let c = console_login(&h, "alice", None).await;
        let other = console_login(&h, "bob", None).await;
        let before = h.event_count().await;
        let same_origin = [("origin", h.base.as_str())];
        // A cross-site form post: the cookie, no token.
        let (s, v) = with_cookie(
            &h,
            &c,
            "POST",
            "/requests",
            Some(read_plc7()),
            None,
            &same_origin,
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf_refused")),
            "{v}"
        );
        assert!(v["message"].as_str().unwrap().contains("CSRF"), "{v}");
        // A token that is not this session's.
        let (s, v) = with_cookie(
            &h,
            &c,
            "POST",
            "/requests",
            Some(read_plc7()),
            Some(&other.csrf),
            &same_origin,
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf_refused"))
        );
        // The right token from a page of another origin (another port is the same *site*, so
        // SameSite=Strict still sends the cookie: the origin check must refuse it).
        let (s, v) = with_cookie(
            &h,
            &c,
            "POST",
            "/requests",
            Some(read_plc7()),
            Some(&c.csrf),
            &[("origin", "http://127.0.0.1:1")],
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf_refused"))
        );
        let (s, v) = with_cookie(
            &h,
            &c,
            "POST",
            "/requests",
            Some(read_plc7()),
            Some(&c.csrf),
            &[("sec-fetch-site", "same-site")],
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf_refused"))
        );
        // Signing out needs the token too.
        let (s, _) = with_cookie(&h, &c, "POST", "/console/logout", None, None, &[]).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(
            h.event_count().await,
            before,
            "refused changes append no event"
        );
        let (s, v) = with_cookie(&h, &c, "GET", "/requests?mine=true", None, None, &[]).await;
        assert_eq!((s, v.as_array().unwrap().len()), (StatusCode::OK, 0));
        // With the token, from the console's own origin: accepted.
        let (s, v) = with_cookie(
            &h,
            &c,
            "POST",
            "/requests",
            Some(read_plc7()),
            Some(&c.csrf),
            &same_origin,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["requester"], "alice");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn idle_console_sessions_end_and_activity_keeps_them() {
    each_backend(|store| async move {
        let h = Harness::start(store).await;
        let c = console_login(&h, "alice", None).await;
        // Activity every 10 minutes keeps the session past the 15-minute idle timeout.
        for _ in 0..3 {
            h.clock.advance(chrono::Duration::minutes(10));
            let (s, v) = with_cookie(&h, &c, "GET", "/requests", None, None, &[]).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        // Background refreshes (live updates) are not activity.
        h.clock.advance(chrono::Duration::minutes(10));
        let bg = [("x-jitgate-background", "1")];
        let (s, _) = with_cookie(&h, &c, "GET", "/requests", None, None, &bg).await;
        assert_eq!(s, StatusCode::OK);
        h.clock.advance(chrono::Duration::minutes(6));
        let (s, v) = with_cookie(&h, &c, "GET", "/requests", None, None, &[]).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
        );
        let m = v["message"].as_str().unwrap();
        assert!(
            m.contains("without activity") && m.contains("sign in again"),
            "{m}"
        );
        let (s, _) = with_cookie(&h, &c, "GET", "/console/me", None, None, &[]).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // The CLI's sessions (bearer header) are not affected by the console's idle timeout.
        let mut h = h;
        let (s, _) = h.call("bob", "GET", "/api/v1/requests", None).await;
        assert_eq!(s, StatusCode::OK);
        h.clock.advance(chrono::Duration::minutes(30));
        let (s, _) = h.call("bob", "GET", "/api/v1/requests", None).await;
        assert_eq!(s, StatusCode::OK);
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn signing_out_ends_the_session_and_clears_the_cookie() {
    each_backend(|store| async move {
        let h = Harness::start(store).await;
        let c = console_login(&h, "alice", None).await;
        let resp = h
            .http
            .post(format!("{}/console/logout", h.base))
            .header("cookie", &c.cookie)
            .header("x-csrf-token", &c.csrf)
            .header("origin", &h.base)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let cleared = resp.headers()["set-cookie"].to_str().unwrap();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        let (s, v) = with_cookie(&h, &c, "GET", "/requests", None, None, &[]).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_form_input_gets_the_apis_errors() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let (http, base) = (h.http.clone(), h.base.clone());
        let login = |body: Value| {
            let req = http.post(format!("{base}/console/login")).json(&body);
            async move {
                let r = req.send().await.unwrap();
                let s = r.status();
                let has_cookie = r.headers().contains_key("set-cookie");
                (s, has_cookie, r.json::<Value>().await.unwrap())
            }
        };
        let (s, cookie, v) =
            login(json!({"identity": "alice", "password": "wrong password!"})).await;
        assert_eq!(
            (s, v["code"].as_str(), cookie),
            (StatusCode::UNAUTHORIZED, Some("totp_required"), false)
        );
        let (s, _, v) = login(json!({"identity": "alice"})).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
        );
        let resp = h
            .http
            .post(format!("{}/console/login", h.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("identity=alice&password=x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::BAD_REQUEST,
            "a form post cannot sign in"
        );
        // Another origin cannot sign someone in (login CSRF).
        let resp = h
            .http
            .post(format!("{}/console/login", h.base))
            .header("origin", "http://evil.example")
            .json(&json!({"identity": "alice", "password": password("alice")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(!resp.headers().contains_key("set-cookie"));
        // TOTP: asked for once enrolled, refused when wrong.
        super::lifecycle::enroll_totp(&mut h, "bob").await;
        let (s, _, v) = login(json!({"identity": "bob", "password": password("bob")})).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("totp_required"))
        );
        let (s, _, v) =
            login(json!({"identity": "bob", "password": password("bob"), "totp": "000000"})).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated")),
            "{v}"
        );
        // The request form's mistakes come back with the field named.
        let c = console_login(&h, "alice", None).await;
        let o = [("origin", h.base.as_str())];
        let mut body = read_plc7();
        body["scope"][0]["modbus"] = json!(["read holding 99-0 unit 1"]);
        let (s, v) = with_cookie(&h, &c, "POST", "/requests", Some(body), Some(&c.csrf), &o).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_scope")),
            "{v}"
        );
        let mut body = read_plc7();
        body["duration"] = json!("forever");
        let (s, v) = with_cookie(&h, &c, "POST", "/requests", Some(body), Some(&c.csrf), &o).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(v["message"].as_str().unwrap().contains("duration"), "{v}");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn pages_are_embedded_and_locked_down() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let h = Harness::start(store).await;
    for (path, ctype) in [
        ("/console/", "text/html"),
        ("/console/inbox", "text/html"),
        ("/console/grants/grant-xyz", "text/html"),
        ("/console/static/app.js", "text/javascript"),
        ("/console/static/app.css", "text/css"),
        ("/console/static/icon.svg", "image/svg+xml"),
        ("/console/static/recordings.js", "text/javascript"),
        ("/console/static/passkeys.js", "text/javascript"),
        ("/console/static/player.js", "text/javascript"),
        ("/console/static/player.css", "text/css"),
        (
            "/console/static/vendor/asciinema-player.min.js",
            "text/javascript",
        ),
        ("/console/static/vendor/asciinema-player.css", "text/css"),
    ] {
        let r = h
            .http
            .get(format!("{}{path}", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let hd = r.headers();
        assert!(
            hd["content-type"].to_str().unwrap().starts_with(ctype),
            "{path}"
        );
        let csp = hd["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'")
                && csp.contains("script-src 'self';")
                && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(hd["x-frame-options"], "DENY");
        assert_eq!(hd["x-content-type-options"], "nosniff");
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("http://") || path.ends_with(".svg") || path.contains("/vendor/"),
            "{path} loads nothing from elsewhere"
        );
    }
    // The recording player's frame: the one document that may compile WebAssembly, sandboxed
    // (an opaque origin: no cookie, no API), framed by the console only.
    let r = h
        .http
        .get(format!("{}/console/static/player.html", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let hd = r.headers();
    let csp = hd["content-security-policy"].to_str().unwrap();
    for want in [
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval';",
        "frame-ancestors 'self'",
        "sandbox allow-scripts",
    ] {
        assert!(csp.contains(want), "{want} in {csp}");
    }
    assert!(
        !csp.contains("allow-same-origin") && !csp.contains("connect-src"),
        "{csp}"
    );
    assert_eq!(hd["x-frame-options"], "SAMEORIGIN");
    assert_eq!(hd["x-content-type-options"], "nosniff");
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/console/");
    h.stop().await;
}

#[tokio::test]
async fn the_stream_tells_an_open_console_about_new_events_it_may_see() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut h = Harness::start(store).await;
    let bob = console_login(&h, "bob", None).await;
    let carol = console_login(&h, "carol", None).await;
    let open = |c: &Console| {
        h.http
            .get(format!("{}/console/stream", h.base))
            .header("cookie", &c.cookie)
            .send()
    };
    let mut bob_stream = open(&bob).await.unwrap();
    let mut carol_stream = open(&carol).await.unwrap();
    assert_eq!(bob_stream.status(), StatusCode::OK);
    assert!(bob_stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let v = h.request("alice", read_plc7()).await;
    let id = v["id"].as_str().unwrap().to_string();
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains(&id) {
        assert!(
            std::time::Instant::now() < deadline,
            "no change event: {seen}"
        );
        if let Ok(Some(chunk)) =
            tokio::time::timeout(std::time::Duration::from_secs(2), bob_stream.chunk())
                .await
                .unwrap_or(Ok(None))
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(
        seen.contains("event: change") && seen.contains("request.submitted"),
        "{seen}"
    );
    // carol (site south) may not see a north request: nothing about it reaches her.
    let got =
        tokio::time::timeout(std::time::Duration::from_millis(1500), carol_stream.chunk()).await;
    if let Ok(Ok(Some(chunk))) = got {
        assert!(
            !String::from_utf8_lossy(&chunk).contains(&id),
            "carol saw {id}"
        );
    }
    // No cookie, no stream.
    let r = h
        .http
        .get(format!("{}/console/stream", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    drop(bob_stream);
    drop(carol_stream);
    h.stop().await;
}

#[tokio::test]
async fn live_sessions_come_from_gateway_events_and_terminate_revokes() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let key = h.api_key("gw-north", "test").await;
        h.set_token("gw-north", &key);
        let req = h.request("alice", read_plc7()).await;
        let (s, approved) = h.approve("bob", &req, None).await;
        assert_eq!(s, StatusCode::OK, "{approved}");
        let grant = approved["grant"]["id"].as_str().unwrap().to_string();
        let now = jitgate_core::Clock::now(&*h.clock);
        let at = |n: i64| (now + chrono::Duration::seconds(n)).to_rfc3339();
        let ev = |gseq: i64, kind: &str, sid: &str, data: Value| {
            json!({"gseq": gseq, "kind": kind, "at": at(gseq), "grant_id": grant, "session_id": sid, "data": data})
        };
        let batch = json!({"events": [
            ev(1, "session.started", "sess-a", json!({"subject": "alice", "asset": "plc-7", "peer": "127.0.0.1:5555"})),
            ev(2, "operation", "sess-a", json!({"unit": 1, "function": 3, "allowed": true})),
            ev(3, "operation", "sess-a", json!({"unit": 1, "function": 5, "allowed": false})),
            ev(4, "session.started", "sess-b", json!({"subject": "alice", "asset": "plc-7", "protocol": "ssh"})),
            ev(5, "session.ended", "sess-b", json!({"reason": "client_closed", "operations": 0, "denied": 0})),
        ]});
        let (s, v) = h
            .call("gw-north", "POST", "/api/v1/gateway/events", Some(batch))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, live) = h.call("oscar", "GET", "/api/v1/sessions?live=true", None).await;
        assert_eq!(s, StatusCode::OK, "{live}");
        let live = live.as_array().unwrap();
        assert_eq!(live.len(), 1, "{live:?}");
        let one = &live[0];
        assert_eq!(
            (one["session_id"].as_str(), one["subject"].as_str(), one["gateway"].as_str()),
            (Some("sess-a"), Some("alice"), Some("gw-north"))
        );
        assert_eq!((one["operations"].as_u64(), one["denied"].as_u64()), (Some(2), Some(1)));
        assert_eq!(one["peer"], "127.0.0.1:5555");
        let (_, all) = h.call("sam", "GET", "/api/v1/sessions", None).await;
        assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
        // The protocol as the gateway named it; events from before it did are Modbus's.
        let protocols: Vec<_> = all.as_array().unwrap().iter().map(|s| (s["session_id"].as_str(), s["protocol"].as_str())).collect();
        assert!(protocols.contains(&(Some("sess-a"), Some("modbus"))), "{all}");
        assert!(protocols.contains(&(Some("sess-b"), Some("ssh"))), "{all}");
        // Others see their own sessions only.
        let (_, mine) = h.call("alice", "GET", "/api/v1/sessions?live=true", None).await;
        assert_eq!(mine.as_array().unwrap().len(), 1);
        let (_, bobs) = h.call("bob", "GET", "/api/v1/sessions?live=true", None).await;
        assert_eq!(bobs.as_array().unwrap().len(), 0);
        let (s, v) = h.call("bob", "GET", "/api/v1/sessions?live=maybe", None).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
        // Terminate from the console = revoke the session's grant, with the CSRF token.
        let c = console_login(&h, "sam", None).await;
        let path = format!("/grants/{grant}/revoke");
        let body = json!({"reason": "terminated from live sessions"});
        let (s, v) = with_cookie(&h, &c, "POST", &path, Some(body.clone()), None, &[]).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("csrf_refused")));
        let (s, v) = with_cookie(&h, &c, "POST", &path, Some(body), Some(&c.csrf), &[]).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_ne!(v["state"], "active");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn live_streams_per_session_are_capped_and_a_disabled_identity_s_stream_ends() {
    each_backend(|store| async move {
        let clock = Arc::new(jitgate_core::ManualClock::new(start_time()));
        let mut h = Harness::start_configured(store, clock, |c| {
            c.limits.max_streams_per_session = 2;
        })
        .await;
        let bob = console_login(&h, "bob", None).await;
        let open = |c: &Console| {
            h.http
                .get(format!("{}/console/stream", h.base))
                .header("cookie", &c.cookie)
                .send()
        };
        let first = open(&bob).await.unwrap();
        let mut second = open(&bob).await.unwrap();
        assert_eq!(
            (first.status(), second.status()),
            (StatusCode::OK, StatusCode::OK)
        );
        let third = open(&bob).await.unwrap();
        assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
        let v: Value = third.json().await.unwrap();
        assert_eq!(v["code"], "too_many_streams", "{v}");
        // Another session is not held back by bob's.
        let carol = console_login(&h, "carol", None).await;
        assert_eq!(open(&carol).await.unwrap().status(), StatusCode::OK);
        // A closed stream frees its slot (polled with a deadline).
        drop(first);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut reopened = loop {
            let r = open(&bob).await.unwrap();
            if r.status() == StatusCode::OK {
                break r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the slot was never freed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        // bob is disabled: his open streams say so and end.
        let (s, v) = h
            .call(
                "sam",
                "POST",
                "/api/v1/identities/bob/disable",
                Some(json!({"reason": "left the company"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for stream in [&mut second, &mut reopened] {
            let mut seen = String::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the stream did not end: {seen}"
                );
                match tokio::time::timeout(std::time::Duration::from_secs(2), stream.chunk()).await
                {
                    Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                    Ok(_) => break, // ended
                    Err(_) => {}
                }
            }
            assert!(seen.contains("event: signed-out"), "{seen}");
        }
        let (s, _) = h.call("alice", "GET", "/api/v1/auth/whoami", None).await;
        assert_eq!(s, StatusCode::OK);
        h.stop().await;
    })
    .await;
}
