//! Sign-in limits: backoff and lockout per identity and per source (on the manual clock, so
//! windows are exact), one answer for every failed sign-in, failed step-up codes counted,
//! admin unlock, password change and logout everywhere, TOTP secrets encrypted at rest,
//! file modes of the data directory.

use super::lifecycle::{enroll_totp, NowTs};
use super::*;
use jitgate_testkit::each_backend;

const LOGIN: &str = "/api/v1/auth/login";

async fn try_login(h: &Harness, who: &str, pw: &str) -> (StatusCode, Value) {
    h.raw(
        "POST",
        LOGIN,
        None,
        Some(json!({"identity": who, "password": pw})),
    )
    .await
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

/// Someone else is still served: oscar signs in and reads.
async fn others_still_served(h: &mut Harness) {
    let (s, v) = try_login(h, "oscar", &password("oscar")).await;
    assert_eq!(s, StatusCode::OK, "oscar still signs in: {v}");
    let token = v["token"].as_str().unwrap().to_string();
    let (s, v) = h
        .raw("GET", "/api/v1/auth/whoami", Some(&token), None)
        .await;
    assert_eq!(
        (s, v["identity"]["id"].as_str()),
        (StatusCode::OK, Some("oscar"))
    );
}

#[tokio::test]
async fn identity_backoff_then_lockout_refuses_the_right_password_until_an_admin_unlocks() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        h.login("sam").await;
        let first = try_login(&h, "vera", "wrong-password-0").await;
        assert_eq!(first.0, StatusCode::UNAUTHORIZED);
        // Three free failures: each checked and answered at once.
        for i in 1..3 {
            let (s, v) = try_login(&h, "vera", &format!("wrong-password-{i}")).await;
            assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "totp_required"));
            assert_eq!(v, first.1, "one answer for every failure");
        }
        // The 4th failure is checked too, then the next attempt must wait 1 s — even with
        // the right password.
        let (s, _) = try_login(&h, "vera", "wrong-password-3").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let resp = h
            .http
            .post(format!("{}{LOGIN}", h.base))
            .json(&json!({"identity": "vera", "password": password("vera")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["retry-after"], "1");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(code(&v), "login_backoff", "{v}");
        others_still_served(&mut h).await;
        // 999 ms later: still waiting; at 1 s: checked again.
        h.clock.advance(chrono::Duration::milliseconds(999));
        let (s, v) = try_login(&h, "vera", "wrong-password-4").await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "login_backoff")
        );
        h.clock.advance(chrono::Duration::milliseconds(1));
        // Failures 5..=10, each after its wait (1, 2, 4, 8, 16, 32 s): the 10th locks.
        let mut wait = 2;
        for i in 5..=10 {
            let (s, v) = try_login(&h, "vera", &format!("wrong-password-{i}")).await;
            assert_eq!(
                (s, code(&v)),
                (StatusCode::UNAUTHORIZED, "totp_required"),
                "#{i}"
            );
            if i < 10 {
                let (s, v) = try_login(&h, "vera", &password("vera")).await;
                assert_eq!(
                    (s, code(&v)),
                    (StatusCode::TOO_MANY_REQUESTS, "login_backoff")
                );
                h.clock.advance(chrono::Duration::seconds(wait));
                wait *= 2;
            }
        }
        let (s, v) = try_login(&h, "vera", &password("vera")).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "locked_out"),
            "{v}"
        );
        // Long after any backoff, still locked (15 minutes).
        h.clock.advance(chrono::Duration::minutes(14));
        let (s, v) = try_login(&h, "vera", &password("vera")).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "locked_out"),
            "{v}"
        );
        others_still_served(&mut h).await;
        let locked = events_of(&mut h, "auth.locked").await;
        assert_eq!(locked.len(), 1, "{locked:?}");
        assert_eq!(locked[0]["data"]["value"], "vera");
        assert_eq!(locked[0]["data"]["key"], "identity");
        let failed = events_of(&mut h, "auth.login_failed").await;
        assert_eq!(failed.len(), 10, "only checked attempts are logged");
        assert_eq!(failed[0]["data"]["failure"], "wrong_password");

        // Only an administrator unlocks.
        let (s, v) = h
            .call("bob", "POST", "/api/v1/identities/vera/unlock", None)
            .await;
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
        let (s, v) = h
            .call("sam", "POST", "/api/v1/identities/vera/unlock", None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (v["was_locked"].as_bool(), v["failures"].as_u64()),
            (Some(true), Some(10))
        );
        let (s, v) = try_login(&h, "vera", &password("vera")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let unlocked = events_of(&mut h, "auth.unlocked").await;
        assert_eq!(unlocked.len(), 1);
        assert_eq!(unlocked[0]["actor"], "sam");
        let logins = events_of(&mut h, "auth.login").await;
        assert!(logins
            .iter()
            .any(|e| e["data"]["identity"] == "vera" && e["data"]["source"] == "127.0.0.1"));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_lockout_ends_by_itself_after_its_time() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let clock = Arc::new(ManualClock::new(start_time()));
    let mut h = Harness::start_configured(store, clock, |c| {
        c.login.identity.free_failures = 0;
        c.login.identity.lockout_after = 2;
        c.login.identity.lockout = "5m".into();
    })
    .await;
    for _ in 0..2 {
        let (s, _) = try_login(&h, "alice", "not-alices-password").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        h.clock.advance(chrono::Duration::seconds(1));
    }
    let (s, v) = try_login(&h, "alice", &password("alice")).await;
    assert_eq!((s, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "locked_out"));
    h.clock.advance(chrono::Duration::seconds(299));
    let (s, _) = try_login(&h, "alice", &password("alice")).await;
    assert_eq!(s, StatusCode::OK);
    others_still_served(&mut h).await;
    h.stop().await;
}

#[tokio::test]
async fn a_source_guessing_many_identities_backs_off_and_locks() {
    each_backend(|store| async move {
        let clock = Arc::new(ManualClock::new(start_time()));
        let mut h = Harness::start_configured(store, clock, |c| {
            c.login.source.free_failures = 5;
            c.login.source.lockout_after = 8;
        })
        .await;
        let bob = h.login("bob").await;
        h.login("sam").await;
        // Each name fails once (no identity backoff): the source's count climbs.
        for i in 0..6 {
            let (s, v) = try_login(&h, &format!("guess-{i}"), "some-password-123").await;
            assert_eq!(
                (s, code(&v)),
                (StatusCode::UNAUTHORIZED, "totp_required"),
                "#{i}"
            );
        }
        let (s, v) = try_login(&h, "guess-6", "some-password-123").await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "login_backoff"),
            "{v}"
        );
        // Bob's session is not a sign-in: still served.
        let (s, _) = h.raw("GET", "/api/v1/auth/whoami", Some(&bob), None).await;
        assert_eq!(s, StatusCode::OK);
        h.clock.advance(chrono::Duration::seconds(1));
        let (s, _) = try_login(&h, "guess-6", "some-password-123").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        h.clock.advance(chrono::Duration::seconds(2));
        let (s, _) = try_login(&h, "guess-7", "some-password-123").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // The 8th failure locked the address: even a right password is refused from it.
        let (s, v) = try_login(&h, "bob", &password("bob")).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "locked_out"),
            "{v}"
        );
        let (s, _) = h.raw("GET", "/api/v1/auth/whoami", Some(&bob), None).await;
        assert_eq!(s, StatusCode::OK, "sessions keep working");
        let locked = events_of(&mut h, "auth.locked").await;
        assert_eq!(locked.len(), 1, "{locked:?}");
        assert_eq!(locked[0]["data"]["key"], "source");
        assert_eq!(locked[0]["data"]["value"], "127.0.0.1");
        // It ends with its time (15 minutes by default).
        h.clock.advance(chrono::Duration::minutes(15));
        let (s, _) = try_login(&h, "bob", &password("bob")).await;
        assert_eq!(s, StatusCode::OK);
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn every_failed_sign_in_gets_one_answer() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let secret = enroll_totp(&mut h, "alice").await;
        let now = h.clock.now_ts();
        let right_code = jitgate_server::auth::totp_code_at(&secret, now).unwrap();
        let wrong_code = format!(
            "{:06}",
            (right_code.parse::<u32>().unwrap() + 500_000) % 1_000_000
        );
        // Without a code: one answer, `totp_required`, for every failure — and for an
        // identity with TOTP whatever its password (being asked tells nothing).
        let (s, without) = try_login(&h, "bob", "wrong-password-of-bob").await;
        assert_eq!(
            (s, code(&without)),
            (StatusCode::UNAUTHORIZED, "totp_required")
        );
        let no_code = [
            ("nobody-here", "whatever-password".to_string()),
            ("dave", password("dave")),
            ("svc-historian", "whatever-password".to_string()),
            ("alice", "wrong-password-y".to_string()),
            ("alice", password("alice")),
        ];
        for (who, pw) in no_code {
            let (s, v) = try_login(&h, who, &pw).await;
            assert_eq!((s, &v), (StatusCode::UNAUTHORIZED, &without), "{who}");
        }
        // With a code: one answer, `unauthenticated`.
        let (s, with) = h
            .raw(
                "POST",
                LOGIN,
                None,
                Some(json!({"identity": "bob", "password": "wrong-password-of-bob", "totp": "123456"})),
            )
            .await;
        assert_eq!(
            (s, code(&with)),
            (StatusCode::UNAUTHORIZED, "unauthenticated")
        );
        let cases = [
            (
                "nobody-here",
                json!({"identity": "nobody-here", "password": "whatever-password", "totp": "123456"}),
            ),
            (
                "disabled, right password",
                json!({"identity": "dave", "password": password("dave"), "totp": "123456"}),
            ),
            (
                "TOTP: wrong password, right code",
                json!({"identity": "alice", "password": "wrong-password-x", "totp": right_code}),
            ),
            (
                "TOTP: right password, wrong code",
                json!({"identity": "alice", "password": password("alice"), "totp": wrong_code}),
            ),
        ];
        for (what, body) in cases {
            let (s, v) = h.raw("POST", LOGIN, None, Some(body)).await;
            assert_eq!((s, &v), (StatusCode::UNAUTHORIZED, &with), "{what}");
        }
        let kinds: Vec<String> = events_of(&mut h, "auth.login_failed")
            .await
            .iter()
            .map(|e| e["data"]["failure"].as_str().unwrap().to_string())
            .collect();
        for k in [
            "unknown_identity",
            "identity_disabled",
            "no_password",
            "wrong_password",
            "wrong_totp",
        ] {
            assert!(kinds.iter().any(|x| x == k), "{k} logged: {kinds:?}");
        }
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn wrong_step_up_codes_count_toward_the_lockout() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let secret = enroll_totp(&mut h, "bob").await;
        let now = h.clock.now_ts();
        let right = jitgate_server::auth::totp_code_at(&secret, now).unwrap();
        let steps: Vec<String> = [-30, 0, 30]
            .iter()
            .map(|d| {
                jitgate_server::auth::totp_code_at(&secret, now + chrono::Duration::seconds(*d))
                    .unwrap()
            })
            .collect();
        let mut wrong = (0..).map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000));
        let mut next_wrong = || loop {
            let c = wrong.next().unwrap();
            if !steps.contains(&c) {
                return c;
            }
        };
        let approve = "/api/v1/requests/req-none/approve";
        let body = |c: &str| json!({"scope_digest": "x", "comment": "", "totp": c});
        // Three free failures answered `bad_totp`; then a wait; the 10th locks.
        let mut answered = 0;
        let mut refused = 0;
        for _ in 0..300 {
            let (s, v) = h
                .call("bob", "POST", approve, Some(body(&next_wrong())))
                .await;
            match code(&v) {
                "bad_totp" => answered += 1,
                "login_backoff" | "locked_out" => {
                    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
                    refused += 1;
                }
                other => panic!("{other}: {v}"),
            }
        }
        assert_eq!(
            answered, 4,
            "three free failures and the one that starts the backoff"
        );
        assert_eq!(refused, 296);
        // Walk the backoff to the lockout.
        let mut wait = 1;
        while answered < 10 {
            h.clock.advance(chrono::Duration::seconds(wait));
            wait *= 2;
            let (_, v) = h
                .call("bob", "POST", approve, Some(body(&next_wrong())))
                .await;
            assert_eq!(code(&v), "bad_totp", "{v}");
            answered += 1;
        }
        // Locked: the right code is refused unchecked, and so is bob's sign-in.
        let now = h.clock.now_ts();
        let right_now = jitgate_server::auth::totp_code_at(&secret, now).unwrap();
        let (s, v) = h.call("bob", "POST", approve, Some(body(&right_now))).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "locked_out"),
            "{v}"
        );
        let (s, v) = h
            .raw(
                "POST",
                LOGIN,
                None,
                Some(json!({"identity": "bob", "password": password("bob"), "totp": right_now})),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "locked_out"),
            "{v}"
        );
        assert_ne!(right, "");
        let failed = events_of(&mut h, "auth.login_failed").await;
        assert!(failed.iter().all(|e| e["data"]["stage"] == "step_up"));
        assert_eq!(failed.len(), 10);
        others_still_served(&mut h).await;
        // Unlocked, the right code passes the step-up (and the request is then unknown).
        let (s, _) = h
            .call("sam", "POST", "/api/v1/identities/bob/unlock", None)
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = h.call("bob", "POST", approve, Some(body(&right_now))).await;
        assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn changing_ones_password_needs_the_current_one_and_ends_the_other_sessions() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let (_, a) = try_login(&h, "carol", &password("carol")).await;
        let (_, b) = try_login(&h, "carol", &password("carol")).await;
        let (a, b) = (a["token"].as_str().unwrap(), b["token"].as_str().unwrap());
        let new_pw = "carols-new-password-2026";
        let change = |current: &str| json!({"current": current, "new": new_pw});
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/auth/password",
                Some(a),
                Some(change("not-the-current-one")),
            )
            .await;
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "{v}");
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/auth/password",
                Some(a),
                Some(json!({"current": password("carol"), "new": "short"})),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "weak_password"),
            "{v}"
        );
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/auth/password",
                Some(a),
                Some(change(&password("carol"))),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["sessions_ended"], 1);
        let (s, _) = h.raw("GET", "/api/v1/auth/whoami", Some(b), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "the other session ended");
        let (s, _) = h.raw("GET", "/api/v1/auth/whoami", Some(a), None).await;
        assert_eq!(s, StatusCode::OK, "this one stays");
        let (s, _) = try_login(&h, "carol", &password("carol")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = try_login(&h, "carol", new_pw).await;
        assert_eq!(s, StatusCode::OK);
        let changed = events_of(&mut h, "auth.password_changed").await;
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0]["data"]["sessions_ended"], 1);

        // An administrator's reset ends every session of the person; an administrator
        // changes their own password like everyone else.
        let (s, v) = h
            .call(
                "sam",
                "POST",
                "/api/v1/identities/carol/password",
                Some(json!({"password": "reset-by-security-1"})),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
        let (s, _) = h.raw("GET", "/api/v1/auth/whoami", Some(a), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let reset = events_of(&mut h, "auth.password_reset").await;
        assert_eq!((reset.len(), reset[0]["actor"].as_str()), (1, Some("sam")));
        assert_eq!(reset[0]["data"]["sessions_ended"], 2);
        let (s, v) = h
            .call(
                "sam",
                "POST",
                "/api/v1/identities/sam/password",
                Some(json!({"password": "no-current-needed?"})),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{v}"
        );

        // With TOTP enrolled, the change needs the code too.
        let secret = enroll_totp(&mut h, "oscar").await;
        let token = h.login("oscar").await;
        let body = json!({"current": password("oscar"), "new": "oscars-new-password-1"});
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/auth/password",
                Some(&token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "totp_required"),
            "{v}"
        );
        let mut with_code = body;
        with_code["totp"] =
            json!(jitgate_server::auth::totp_code_at(&secret, h.clock.now_ts()).unwrap());
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/auth/password",
                Some(&token),
                Some(with_code),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn logout_everywhere_ends_every_session() {
    each_backend(|store| async move {
        let h = Harness::start(store).await;
        let mut tokens = Vec::new();
        for _ in 0..3 {
            let (_, v) = try_login(&h, "oscar", &password("oscar")).await;
            tokens.push(v["token"].as_str().unwrap().to_string());
        }
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/auth/logout/everywhere",
                Some(&tokens[0]),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["sessions_ended"], 3);
        for t in &tokens {
            let (s, _) = h.raw("GET", "/api/v1/auth/whoami", Some(t), None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED);
        }
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_full_password_pool_answers_server_busy_and_recovers() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let clock = Arc::new(ManualClock::new(start_time()));
    let mut h = Harness::start_configured(store, clock, |c| {
        c.login.hash_concurrency = Some(1);
        c.login.hash_queue = 2;
        c.login.source.free_failures = 99;
        c.login.source.lockout_after = 100;
    })
    .await;
    let mut burst = Vec::new();
    for i in 0..24 {
        let http = h.http.clone();
        let url = format!("{}{LOGIN}", h.base);
        burst.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .json(&json!({"identity": format!("burst-{i}"), "password": "wrong-password-x"}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let retry = r.headers().get("retry-after").is_some();
            let v: Value = r.json().await.unwrap();
            (status, code(&v).to_string(), retry)
        }));
    }
    let mut busy = 0;
    for b in burst {
        let (s, c, retry) = b.await.unwrap();
        match c.as_str() {
            "totp_required" => assert_eq!(s, StatusCode::UNAUTHORIZED),
            "server_busy" => {
                assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
                assert!(retry, "Retry-After");
                busy += 1;
            }
            other => panic!("{other}"),
        }
    }
    assert!(
        busy > 0,
        "one running and two waiting: the rest of 24 at once are refused"
    );
    others_still_served(&mut h).await;
    h.stop().await;
}

#[tokio::test]
async fn totp_secrets_are_stored_encrypted_and_clear_ones_are_encrypted_at_start() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut h = Harness::start(store).await;
    let secret = enroll_totp(&mut h, "alice").await;
    let stored = {
        let mut tx = h.state().store.read().await.unwrap();
        tx.get_totp("alice").await.unwrap().unwrap().secret_b32
    };
    assert!(
        stored.starts_with("enc1:") && !stored.contains(&secret),
        "{stored}"
    );
    // A secret stored in clear by an earlier version is encrypted at the next start and
    // keeps working.
    let clear = jitgate_server::auth::new_totp_secret();
    let mut tx = h.state().store.write().await.unwrap();
    tx.set_totp("bob", &clear, true).await.unwrap();
    tx.commit().await.unwrap();
    let addr = h.server.as_ref().unwrap().addr;
    let store = h.stop_server_only().await;
    h.restart_server_at(store, addr).await;
    let stored = {
        let mut tx = h.state().store.read().await.unwrap();
        tx.get_totp("bob").await.unwrap().unwrap().secret_b32
    };
    assert!(
        stored.starts_with("enc1:") && !stored.contains(&clear),
        "{stored}"
    );
    let key = std::fs::metadata(h.data.path().join("totp.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let code = jitgate_server::auth::totp_code_at(&clear, h.clock.now_ts()).unwrap();
    let (s, v) = h
        .raw(
            "POST",
            LOGIN,
            None,
            Some(json!({"identity": "bob", "password": password("bob"), "totp": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    h.stop().await;
}

#[tokio::test]
async fn the_data_directory_and_database_are_owner_only_after_start() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // An existing directory left open to others (as `jitgate up` used to leave it).
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.clone(),
        ..ServerConfig::default()
    };
    let clock = Arc::new(ManualClock::new(start_time()));
    let server = jitgate_server::start(config, clock).await.unwrap();
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700);
    let mut files: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    for f in ["jitgate.db", "jitgate.db-wal", "jitgate.db-shm", "totp.key"] {
        assert!(files.iter().any(|x| x == f), "{f} in {files:?}");
    }
    // Every file but public keys (published anyway) is owner-only.
    for f in files.iter().filter(|f| !f.ends_with(".pub")) {
        let m = mode(f);
        if std::fs::metadata(data.join(f)).unwrap().is_file() {
            assert_eq!(m & 0o077, 0, "{f} is {m:o}");
        }
    }
    for f in ["jitgate.db", "jitgate.db-wal", "jitgate.db-shm", "totp.key"] {
        assert_eq!(mode(f), 0o600, "{f}");
    }
    server.stop().await.close().await;
}
