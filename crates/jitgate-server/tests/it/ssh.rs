//! SSH certificates under a grant: the subject's user certificate, a gateway's target
//! certificate, and every refusal around them. Certificates are parsed back with the
//! `ssh-key` crate and, once, with OpenSSH's own `ssh-keygen -L`.

use super::*;
use jitgate_core::Clock;
use ssh_key::{Algorithm, Certificate, HashAlg, PrivateKey, PublicKey};

fn fresh_key() -> String {
    PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519)
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap()
}

fn ssh_request(scope: Value, duration: &str) -> Value {
    json!({
        "scope": scope, "duration": duration, "reason": "restart the historian collector",
        "reference": "WO-77", "path": "planned"
    })
}

/// An active grant for `alice` with `scope`, approved by `bob`.
async fn ssh_grant(h: &mut Harness, scope: Value, duration: &str) -> (String, Value) {
    let req = h.request("alice", ssh_request(scope, duration)).await;
    let (s, v) = h.approve("bob", &req, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["grant"]["state"], "active", "{v}");
    (
        v["grant"]["id"].as_str().unwrap().to_string(),
        v["grant"].clone(),
    )
}

async fn certificate(h: &mut Harness, who: &str, grant: &str, body: Value) -> (StatusCode, Value) {
    h.call(
        who,
        "POST",
        &format!("/api/v1/grants/{grant}/ssh-certificate"),
        Some(body),
    )
    .await
}

fn ts(v: &Value) -> Timestamp {
    v.as_str().unwrap().parse().unwrap()
}

async fn user_ca(h: &mut Harness) -> (PublicKey, Value) {
    let (s, ca) = h.call("vera", "GET", "/api/v1/ssh/ca", None).await;
    assert_eq!(s, StatusCode::OK, "{ca}");
    let key = PublicKey::from_openssh(ca["user_ca"]["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(
        key.fingerprint(HashAlg::Sha256).to_string(),
        ca["user_ca"]["fingerprint"].as_str().unwrap()
    );
    (key, ca)
}

#[tokio::test]
async fn the_subject_gets_a_certificate_that_says_what_the_grant_allows() {
    jitgate_testkit::each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let (g, grant) = ssh_grant(
            &mut h,
            json!([{"asset": "historian", "ssh": ["shell"]}]),
            "30m",
        )
        .await;
        let key = fresh_key();
        let before = h.event_count().await;
        let (s, v) = certificate(&mut h, "alice", &g, json!({"public_key": key})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(h.event_count().await, before + 1, "one event");
        assert_eq!(v["key_id"], g.as_str());
        assert_eq!(v["principals"], json!(["alice"]));
        assert_eq!(v["asset"], "historian");
        assert_eq!(v["extensions"], json!(["permit-pty"]));
        // 30 minutes of grant left, less than the one-hour cap: the grant's expiry, to the
        // second, and never after it.
        let expires = ts(&grant["expires_at"]);
        assert!(ts(&v["valid_before"]) <= expires);
        assert_eq!(ts(&v["valid_before"]).timestamp(), expires.timestamp());
        assert!(ts(&v["valid_after"]) <= h.clock.now());

        let cert = Certificate::from_openssh(v["certificate"].as_str().unwrap()).unwrap();
        assert_eq!(cert.key_id(), g);
        assert_eq!(cert.valid_principals(), ["alice".to_string()]);
        assert_eq!(cert.valid_before(), expires.timestamp() as u64);
        assert_eq!(cert.serial().to_string(), v["serial"].as_str().unwrap());
        let extensions: Vec<&str> = cert.extensions().keys().map(String::as_str).collect();
        assert_eq!(extensions, ["permit-pty"]);
        assert!(cert.critical_options().is_empty());
        assert_eq!(
            cert.public_key(),
            PublicKey::from_openssh(&key).unwrap().key_data()
        );
        // Signed by the user CA `GET /ssh/ca` publishes, and by nothing else.
        let (ca, cas) = user_ca(&mut h).await;
        let now = h.clock.now().timestamp() as u64;
        cert.validate_at(now, [&ca.fingerprint(HashAlg::Sha256)])
            .unwrap();
        let host =
            PublicKey::from_openssh(cas["host_access_ca"]["public_key"].as_str().unwrap()).unwrap();
        assert!(cert
            .validate_at(now, [&host.fingerprint(HashAlg::Sha256)])
            .is_err());
        assert!(cert
            .validate_at(
                expires.timestamp() as u64,
                [&ca.fingerprint(HashAlg::Sha256)]
            )
            .is_err());

        // The event, typed, linked to the grant.
        let (_, events) = h
            .call("sam", "GET", &format!("/api/v1/events?grant={g}"), None)
            .await;
        let issued = events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "credential.issued")
            .unwrap()
            .clone();
        assert_eq!(issued["data"]["credential"], "ssh_user_certificate");
        assert_eq!(issued["data"]["key_id"], g.as_str());
        assert_eq!(issued["data"]["asset"], "historian");
        assert_eq!(issued["data"]["key_fingerprint"], v["key_fingerprint"]);
        assert_eq!(
            issued["data"]["key_fingerprint"].as_str().unwrap(),
            PublicKey::from_openssh(&key)
                .unwrap()
                .fingerprint(HashAlg::Sha256)
                .to_string()
        );
        assert_eq!(
            issued["data"]["ca_fingerprint"],
            cas["user_ca"]["fingerprint"]
        );
        assert_eq!(ts(&issued["data"]["valid_before"]), ts(&v["valid_before"]));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn validity_is_capped_at_an_hour_and_extensions_follow_the_scope() {
    jitgate_testkit::each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let (g, _) = ssh_grant(
            &mut h,
            json!([
                {"asset": "historian", "ssh": ["command systemctl restart collector", "forward 10.0.1.7:502"]},
                {"asset": "hmi-1", "ssh": ["sftp"]},
            ]),
            "4h",
        )
        .await;
        // Two SSH assets: the asset must be named.
        let (s, v) = certificate(&mut h, "alice", &g, json!({"public_key": fresh_key()})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["message"].as_str().unwrap().contains("historian, hmi-1"));
        let (s, v) = certificate(
            &mut h,
            "alice",
            &g,
            json!({"asset": "historian", "public_key": fresh_key()}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            ts(&v["valid_before"]),
            h.clock.now() + chrono::Duration::hours(1)
        );
        let cert = Certificate::from_openssh(v["certificate"].as_str().unwrap()).unwrap();
        let extensions: Vec<&str> = cert.extensions().keys().map(String::as_str).collect();
        assert_eq!(extensions, ["permit-port-forwarding"]);
        assert_eq!(
            cert.critical_options().get("force-command").map(String::as_str),
            Some("systemctl restart collector")
        );
        let (s, v) = certificate(
            &mut h,
            "alice",
            &g,
            json!({"asset": "hmi-1", "public_key": fresh_key()}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let cert = Certificate::from_openssh(v["certificate"].as_str().unwrap()).unwrap();
        assert!(cert.extensions().is_empty(), "sftp: no pty, no forwarding");
        assert!(cert.critical_options().is_empty());
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn refusals_say_why() {
    jitgate_testkit::each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let (g, _) = ssh_grant(
            &mut h,
            json!([
                {"asset": "historian", "ssh": ["shell"], "modbus": ["read holding 0-9 unit 1"]},
            ]),
            "1h",
        )
        .await;
        let code = |v: &Value| v["code"].as_str().unwrap().to_string();
        // Another identity: the approver (who may see the grant) is told why; someone who
        // may not see it is told nothing.
        let (s, v) = certificate(&mut h, "bob", &g, json!({"public_key": fresh_key()})).await;
        assert_eq!(
            (s, code(&v).as_str()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{v}"
        );
        assert!(v["message"].as_str().unwrap().contains("only its subject"));
        let (s, v) = certificate(&mut h, "vera", &g, json!({"public_key": fresh_key()})).await;
        assert_eq!(
            (s, code(&v).as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{v}"
        );
        // A gateway identity never holds access.
        let gw_key = h.api_key("gw-north", "test").await;
        let (s, _) = h
            .raw(
                "POST",
                &format!("/api/v1/grants/{g}/ssh-certificate"),
                Some(&gw_key),
                Some(json!({"public_key": fresh_key()})),
            )
            .await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN,
            "{s}"
        );
        // Asset out of scope, and an asset of the grant without SSH scope.
        for asset in ["ews-1", "plc-7"] {
            let (s, v) = certificate(
                &mut h,
                "alice",
                &g,
                json!({"asset": asset, "public_key": fresh_key()}),
            )
            .await;
            assert_eq!(
                (s, code(&v).as_str()),
                (StatusCode::FORBIDDEN, "asset_not_granted"),
                "{asset}: {v}"
            );
        }
        // Malformed keys.
        for bad in [
            "",
            "ssh-ed25519 AAAA",
            "not a key",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
        ] {
            let (s, v) = certificate(&mut h, "alice", &g, json!({"public_key": bad})).await;
            assert_eq!(
                (s, code(&v).as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_ssh_public_key"),
                "{bad:?}: {v}"
            );
        }
        let (s, v) = certificate(
            &mut h,
            "alice",
            &g,
            json!({"public_key": fresh_key(), "principal": "root"}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "unknown field: {v}");
        // One key, one grant: the same key again under this grant is fine, under another
        // grant it is refused without naming the first.
        let key = fresh_key();
        let (s, _) = certificate(&mut h, "alice", &g, json!({"public_key": key})).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = certificate(&mut h, "alice", &g, json!({"public_key": key})).await;
        assert_eq!(s, StatusCode::OK);
        let (g2, _) = ssh_grant(&mut h, json!([{"asset": "hmi-1", "ssh": ["shell"]}]), "1h").await;
        let (s, v) = certificate(&mut h, "alice", &g2, json!({"public_key": key})).await;
        assert_eq!(
            (s, code(&v).as_str()),
            (StatusCode::CONFLICT, "public_key_reused"),
            "{v}"
        );
        assert!(!v["message"].as_str().unwrap().contains(&g));
        // The inventory drops the SSH endpoint: the grant's scope no longer reaches it.
        {
            let mut tx = h.state().store.write().await.unwrap();
            let mut hmi = tx.get_asset("hmi-1").await.unwrap().unwrap();
            hmi.endpoints.ssh = None;
            tx.upsert_asset(&hmi).await.unwrap();
            tx.commit().await.unwrap();
        }
        let (s, v) = certificate(&mut h, "alice", &g2, json!({"public_key": fresh_key()})).await;
        assert_eq!(
            (s, code(&v).as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "scope_not_exposed"),
            "{v}"
        );
        // Revoked: refused at once.
        let (s, v) = h
            .call(
                "sam",
                "POST",
                &format!("/api/v1/grants/{g}/revoke"),
                Some(json!({"reason": "work order cancelled"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = certificate(&mut h, "alice", &g, json!({"public_key": fresh_key()})).await;
        assert_eq!(
            (s, code(&v).as_str()),
            (StatusCode::CONFLICT, "wrong_state"),
            "{v}"
        );
        // Expired (before the scheduler ran) and then ended.
        let (g3, _) = ssh_grant(
            &mut h,
            json!([{"asset": "historian", "ssh": ["shell"]}]),
            "1h",
        )
        .await;
        h.clock.advance(chrono::Duration::hours(1));
        let (s, v) = certificate(&mut h, "alice", &g3, json!({"public_key": fresh_key()})).await;
        assert_eq!(
            (s, code(&v).as_str()),
            (StatusCode::CONFLICT, "wrong_state"),
            "{v}"
        );
        assert!(v["message"].as_str().unwrap().contains("expired"), "{v}");
        h.tick().await;
        let (s, v) = certificate(&mut h, "alice", &g3, json!({"public_key": fresh_key()})).await;
        assert_eq!(
            (s, code(&v).as_str()),
            (StatusCode::CONFLICT, "wrong_state"),
            "{v}"
        );
        h.stop().await;
    })
    .await;
}

async fn api_key(h: &mut Harness, identity: &str) -> String {
    let (s, v) = h
        .call(
            "sam",
            "POST",
            "/api/v1/api-keys",
            Some(json!({"identity": identity, "name": "test"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn only_the_gateway_fronting_the_asset_gets_a_target_certificate() {
    jitgate_testkit::each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let (g, grant) =
            ssh_grant(&mut h, json!([{"asset": "historian", "ssh": ["shell"]}]), "2h").await;
        // A second gateway, fronting nothing of this grant.
        let (s, v) = h
            .call(
                "sam",
                "PUT",
                "/api/v1/identities/gw-south",
                Some(json!({"id": "gw-south", "kind": "workload", "roles": ["gateway"], "owners": ["sam"]})),
            )
            .await;
        assert!(s.is_success(), "{v}");
        let north = api_key(&mut h, "gw-north").await;
        let south = api_key(&mut h, "gw-south").await;
        let alice = h.login("alice").await;
        let path = "/api/v1/gateway/ssh/target-certificate";
        let body = |key: &str| json!({"grant_id": g, "asset": "historian", "public_key": key});

        let (s, v) = h.raw("POST", path, Some(&alice), Some(body(&fresh_key()))).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{v}");
        let (s, v) = h.raw("POST", path, Some(&south), Some(body(&fresh_key()))).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("grant_not_fronted")),
            "{v}"
        );
        let (s, v) = h.raw("POST", path, Some(&north), Some(body("ssh-rsa AAAA"))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        // A grant the gateway fronts nothing of is unknown to it.
        let (g_hmi, _) =
            ssh_grant(&mut h, json!([{"asset": "hmi-1", "ssh": ["shell"]}]), "1h").await;
        let (s, v) = h
            .raw(
                "POST",
                path,
                Some(&north),
                Some(json!({"grant_id": g_hmi, "asset": "historian", "public_key": fresh_key()})),
            )
            .await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{v}");

        let key = fresh_key();
        let (s, v) = h.raw("POST", path, Some(&north), Some(body(&key))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["principals"], json!(["jitgate"]), "the inventory's account");
        assert_eq!(v["key_id"], g.as_str());
        assert_eq!(
            ts(&v["valid_before"]),
            h.clock.now() + chrono::Duration::minutes(5)
        );
        assert!(ts(&v["valid_before"]) <= ts(&grant["expires_at"]));
        let cert = Certificate::from_openssh(v["certificate"].as_str().unwrap()).unwrap();
        let (_, cas) = user_ca(&mut h).await;
        let host =
            PublicKey::from_openssh(cas["host_access_ca"]["public_key"].as_str().unwrap())
                .unwrap();
        let user =
            PublicKey::from_openssh(cas["user_ca"]["public_key"].as_str().unwrap()).unwrap();
        let now = h.clock.now().timestamp() as u64;
        cert.validate_at(now, [&host.fingerprint(HashAlg::Sha256)])
            .unwrap();
        assert!(cert
            .validate_at(now, [&user.fingerprint(HashAlg::Sha256)])
            .is_err());
        // The gateway's key is its own: not reusable as the subject's, nor for another grant.
        let (s, v) = certificate(&mut h, "alice", &g, json!({"public_key": key})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        let (_, events) = h
            .call("sam", "GET", &format!("/api/v1/events?grant={g}"), None)
            .await;
        let issued = events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["data"]["credential"] == "ssh_target_certificate")
            .unwrap()
            .clone();
        assert_eq!(issued["actor"], "gw-north", "{issued}");
        assert_eq!(issued["data"]["gateway"], "gw-north");
        assert_eq!(issued["data"]["principal"], "jitgate");
        // Without an account in the inventory, no target certificate.
        {
            let mut tx = h.state().store.write().await.unwrap();
            let mut a = tx.get_asset("historian").await.unwrap().unwrap();
            a.endpoints.ssh.as_mut().unwrap().account = None;
            tx.upsert_asset(&a).await.unwrap();
            tx.commit().await.unwrap();
        }
        let (s, v) = h.raw("POST", path, Some(&north), Some(body(&fresh_key()))).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("scope_not_exposed")),
            "{v}"
        );
        assert!(v["message"].as_str().unwrap().contains("account"), "{v}");
        // The gateway's setup carries the user CA it must trust.
        let (s, setup) = h
            .raw(
                "POST",
                "/api/v1/gateway/hello",
                Some(&north),
                Some(json!({"address": "127.0.0.1:7443", "tls_fingerprint": format!("sha256:{}", "0".repeat(64))})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{setup}");
        assert_eq!(setup["ssh_user_ca_keys"], json!([cas["user_ca"]["public_key"]]));
        h.stop().await;
    })
    .await;
}

/// OpenSSH's own reading of a certificate: `ssh-keygen -L`.
#[tokio::test]
async fn ssh_keygen_reads_the_certificate() {
    let Ok(out) = std::process::Command::new("ssh-keygen").arg("-?").output() else {
        assert!(
            std::env::var_os("JITGATE_REQUIRE_PEERS").is_none(),
            "ssh-keygen (Debian openssh-client) is required"
        );
        eprintln!("ssh-keygen not installed: skipped");
        return;
    };
    drop(out);
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut h = Harness::start(store).await;
    let (g, _) = ssh_grant(
        &mut h,
        json!([{"asset": "historian", "ssh": ["shell"]}]),
        "30m",
    )
    .await;
    let (s, v) = certificate(&mut h, "alice", &g, json!({"public_key": fresh_key()})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id-cert.pub");
    std::fs::write(&path, v["certificate"].as_str().unwrap()).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&path)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Type: ssh-ed25519-cert-v01@openssh.com user certificate"),
        "{text}"
    );
    assert!(text.contains(&format!("Key ID: \"{g}\"")), "{text}");
    assert!(
        text.contains(&format!("Serial: {}", v["serial"].as_str().unwrap())),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let after = |label: &str| {
        let i = lines.iter().position(|l| *l == label).unwrap();
        lines[i + 1..]
            .iter()
            .take_while(|l| !l.contains(':'))
            .copied()
            .collect::<Vec<_>>()
    };
    assert_eq!(after("Principals:"), ["alice"], "{text}");
    assert_eq!(after("Extensions:"), ["permit-pty"], "{text}");
    assert!(lines.contains(&"Critical Options: (none)"), "{text}");
    // `Valid: from 2026-…T…:…:… to …` in the local time zone (UTC here), to the second.
    let fmt = |t: Timestamp| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let valid = format!(
        "Valid: from {} to {}",
        fmt(ts(&v["valid_after"])),
        fmt(ts(&v["valid_before"]))
    );
    assert!(text.contains(&valid), "{valid} in\n{text}");
    let ca = h.call("alice", "GET", "/api/v1/ssh/ca", None).await.1;
    let fp = ca["user_ca"]["fingerprint"].as_str().unwrap();
    assert!(
        text.contains(&format!("Signing CA: ED25519 {fp}")),
        "{text}"
    );
    h.stop().await;
}
