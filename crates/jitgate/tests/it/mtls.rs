//! Mutual TLS for gateways through the real binaries: a gateway enrols a client certificate
//! with its API key on its first start; from then on the API key alone is refused, a second
//! gateway cannot enrol with the same key, and after an administrator's reset the old
//! certificate is refused and a new gateway enrols. Every step is in the evidence.

use crate::quickstart::Cli;
use crate::tls::{gateway, login, mode, stderr, write_gateway_config, TlsUp};
use serde_json::Value;

/// A pinned HTTPS client without a client certificate, as someone holding only the API key.
fn key_only_client(fp: &str) -> reqwest::Client {
    let trust = jitgate_gateway::server_trust::ServerTrust::Fingerprint(fp.to_string());
    let config = jitgate_gateway::server_trust::client_config(&trust).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls((*config).clone())
        .build()
        .unwrap()
}

fn cert_fingerprint(state: &std::path::Path) -> String {
    let (certs, _) = jitgate_gateway::tls::load_pem(
        &state.join("client-cert.pem"),
        &state.join("client-key.pem"),
    )
    .unwrap();
    jitgate_gateway::tls::fingerprint(&certs[0])
}

#[test]
fn a_gateway_enrols_a_client_certificate_and_its_api_key_alone_no_longer_works() {
    let tmp = tempfile::tempdir().unwrap();
    let port = crate::quickstart::free_port();
    let up = TlsUp::start(&tmp.path().join("data"), port);
    let fp = up.fingerprint();
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    let out = login(
        &cli,
        "sam",
        &up.password("sam"),
        &["--server-fingerprint", &fp],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pin = format!("server_fingerprint = \"{fp}\"");

    // First start: the gateway enrols with its API key and connects with its certificate.
    let first = write_gateway_config(tmp.path(), "first", &up, &pin);
    let first_state = tmp.path().join("first-state");
    let mut gw = gateway(&cli, &first).expect("the gateway enrols and connects");
    let enrolled = cert_fingerprint(&first_state);
    #[cfg(unix)]
    {
        assert_eq!(mode(&first_state.join("client-key.pem")), 0o600);
        assert_eq!(mode(&up.data.join("tls/gateway-ca-key.pem")), 0o600);
    }
    let listed = cli.json("sam", &["gateways"]);
    let north = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == "gw-north")
        .unwrap()
        .clone();
    assert_eq!(
        north["client_certificate"]["fingerprint"], enrolled,
        "{north}"
    );

    // The API key without the certificate: refused, on the API and for a new enrolment.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = key_only_client(&fp);
    let key = up.gateway_key();
    let resp = rt
        .block_on(
            http.get(format!("{}/api/v1/gateway/grants/grant-none", up.server))
                .bearer_auth(&key)
                .send(),
        )
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = rt.block_on(resp.json()).unwrap();
    assert_eq!(body["code"], "client_certificate_required", "{body}");
    let resp = rt
        .block_on(
            http.post(format!("{}/api/v1/gateway/enrol", up.server))
                .bearer_auth(&key)
                .json(&serde_json::json!({"csr": "-"}))
                .send(),
        )
        .unwrap();
    assert_eq!(resp.status(), 409);
    let body: Value = rt.block_on(resp.json()).unwrap();
    assert_eq!(body["code"], "already_enrolled", "{body}");
    // People are not asked for a certificate.
    assert_eq!(cli.json("sam", &["whoami"])["identity"]["id"], "sam");

    // A second gateway with the same API key cannot enrol: it stops with what to do.
    let _ = gw.kill();
    let _ = gw.wait();
    let second = write_gateway_config(tmp.path(), "second", &up, &pin);
    let err = gateway(&cli, &second).expect_err("a copied API key must not enrol again");
    assert!(
        err.contains("already enrolled") && err.contains("reset-enrolment"),
        "{err}"
    );

    // An administrator resets the enrolment: the old certificate is refused, the new
    // gateway enrols.
    let out = cli.run(
        "sam",
        &[
            "gateways",
            "reset-enrolment",
            "gw-north",
            "--reason",
            "cabinet PC replaced",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = gateway(&cli, &first).expect_err("a reset certificate must be refused");
    assert!(err.contains("not its current one"), "{err}");
    let mut gw = gateway(&cli, &second).expect("after the reset, the new gateway enrols");
    let renewed = cert_fingerprint(&tmp.path().join("second-state"));
    assert_ne!(renewed, enrolled);
    let _ = gw.kill();
    let _ = gw.wait();

    // The evidence: two enrolments, the reset, and the refusals (once per reason).
    let events = cli.json("sam", &["events", "--limit", "1000"]);
    let events = events.as_array().unwrap();
    let of = |kind: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["kind"] == kind && e["data"]["factor"] != "totp")
            .collect()
    };
    let enrolments: Vec<_> = of("auth.enrolled")
        .into_iter()
        .filter(|e| e["data"]["factor"] == "client_certificate")
        .map(|e| e["data"]["fingerprint"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(enrolments, vec![enrolled.clone(), renewed], "{events:?}");
    let resets = of("auth.revoked");
    assert_eq!(resets.len(), 1, "{resets:?}");
    assert_eq!(resets[0]["data"]["key_id"], enrolled);
    assert_eq!(resets[0]["data"]["reason"], "cabinet PC replaced");
    let mut reasons: Vec<String> = of("auth.client_cert_refused")
        .iter()
        .map(|e| e["data"]["reason"].as_str().unwrap().to_string())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec!["already_enrolled", "missing", "not_current"],
        "{events:?}"
    );
}
