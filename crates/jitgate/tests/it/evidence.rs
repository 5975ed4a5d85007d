//! The evidence verbs through the real binary: `jitgate up`, a grant with a gateway session,
//! `evidence verify | checkpoint | checkpoints | public-key | export | rotate-key`, then the
//! auditor's offline `verify-bundle` and `report` — with no server, profile or network —
//! on the bundle as exported and on altered copies, each rejected with its reason.

use crate::quickstart::{free_port, Cli, Up, BIN};
use jitgate_evidence::{Bundle, EvidenceKey, SignedCheckpoint};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};

/// POST JSON with a bearer token over plain HTTP/1.1 (the test has no HTTP client crate);
/// returns the status code.
fn post_json(server: &str, path: &str, token: &str, body: &Value) -> u16 {
    let addr = server.trim_start_matches("http://");
    let body = body.to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split(' ').nth(1).unwrap().parse().unwrap()
}

/// The auditor's machine: no server, no profile, a server variable pointing nowhere (so any
/// attempt to reach a server would fail with exit 3).
pub(crate) fn offline_cmd(home: &Path, args: &[&str]) -> Output {
    offline(home, args)
}

fn offline(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("JITGATE_SERVER", "http://127.0.0.1:1")
        .env("JITGATE_PROFILE", home.join("no-such-profile.toml"))
        .env_remove("JITGATE_TOKEN")
        .output()
        .unwrap()
}

fn rejected(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1; stdout: {}; stderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("bundle REJECTED"), "{err}");
    err
}

#[test]
fn evidence_bundle_from_export_to_offline_verification_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("jitgate-data");
    let port = free_port();
    let up = Up::start(&data, port);
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    let pw = |who: &str| creds["passwords"][who].as_str().unwrap().to_string();
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    for who in ["alice", "bob", "sam"] {
        cli.login(who, &pw(who));
    }
    // The evidence key was created on first start, owner-only, beside the token keys.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("evidence-key.secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the evidence key is owner-only");
    }

    // A grant, approved.
    cli.ok(
        "alice",
        &[
            "request",
            "--asset",
            "plc-7",
            "--modbus",
            "read holding 0-99 unit 1",
            "--for",
            "1h",
            "--reason",
            "check valve positions",
            "--ref",
            "WO-1234",
        ],
    );
    let req = cli.json("alice", &["requests", "--mine"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let approved = cli.json("bob", &["approve", &req, "--comment", "ok"]);
    let grant = approved["grant"]["id"].as_str().unwrap().to_string();

    // A checkpoint now: it will be older than the session's events.
    let signed = cli.ok("sam", &["evidence", "checkpoint"]);
    assert!(
        signed.contains("checkpoint signed") && signed.contains('\u{2014}'),
        "{signed}"
    );

    // The gateway reports a session with operations (as `jitgate gateway` does).
    let gw_key = creds["api_keys"]["gw-north"].as_str().unwrap();
    let at = chrono::Utc::now().to_rfc3339();
    let mut events = vec![
        json!({"gseq": 1, "kind": "session.started", "at": at, "grant_id": grant,
        "session_id": "s-1", "data": {"asset": "plc-7"}}),
    ];
    for i in 0..5 {
        events.push(json!({"gseq": 2 + i, "kind": "operation", "at": at, "grant_id": grant,
            "session_id": "s-1", "data": {"function": "read holding registers", "address": i, "verdict": "allowed"}}));
    }
    events.push(
        json!({"gseq": 7, "kind": "session.ended", "at": at, "grant_id": grant,
        "session_id": "s-1", "data": {}}),
    );
    assert_eq!(
        post_json(
            &up.server,
            "/api/v1/gateway/events",
            gw_key,
            &json!({"events": events})
        ),
        200
    );
    cli.ok("sam", &["revoke", &grant, "--reason", "work done"]);

    // The whole log verifies in place.
    let out = cli.ok("sam", &["evidence", "verify"]);
    assert!(out.starts_with("evidence log ok"), "{out}");
    let v = cli.json("sam", &["evidence", "verify"]);
    assert_eq!(v["ok"], true, "{v}");

    // Export, public key, checkpoints.
    let bundle_path = tmp.path().join("bundle.json");
    let key_path = tmp.path().join("plant.pub");
    let out = cli.ok(
        "alice",
        &[
            "evidence",
            "export",
            &grant,
            "-o",
            bundle_path.to_str().unwrap(),
        ],
    );
    assert!(out.contains(&grant), "{out}");
    let out = cli.ok(
        "alice",
        &["evidence", "public-key", "-o", key_path.to_str().unwrap()],
    );
    assert!(out.contains("1 evidence public key"), "{out}");
    let cps_path = tmp.path().join("checkpoints.json");
    cli.ok(
        "sam",
        &["evidence", "checkpoints", "-o", cps_path.to_str().unwrap()],
    );
    let cps: Vec<SignedCheckpoint> =
        serde_json::from_str(&std::fs::read_to_string(&cps_path).unwrap()).unwrap();
    assert!(
        cps.len() >= 2,
        "the on-demand and the export's checkpoints: {cps:?}"
    );

    // The auditor, offline: the bundle verifies and the timeline is printed.
    let auditor = tmp.path().join("auditor");
    std::fs::create_dir(&auditor).unwrap();
    let bundle_arg = bundle_path.to_str().unwrap();
    let key_arg = key_path.to_str().unwrap();
    let out = offline(
        &auditor,
        &["evidence", "verify-bundle", bundle_arg, "--key", key_arg],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("bundle OK"), "{stdout}");
    for what in [
        grant.as_str(),
        &req,
        "request.submitted",
        "grant.issued",
        "session.started",
        "operation",
        "grant.ended",
    ] {
        assert!(
            stdout.contains(what),
            "{what} missing from the timeline:\n{stdout}"
        );
    }
    let j: Value = serde_json::from_slice(
        &offline(
            &auditor,
            &[
                "--json",
                "evidence",
                "verify-bundle",
                bundle_arg,
                "--key",
                key_arg,
            ],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(j["ok"], true);
    assert_eq!(j["grant_id"], grant.as_str());

    // ... and the report, offline too.
    let report = tmp.path().join("report.html");
    let out = offline(
        &auditor,
        &[
            "evidence",
            "report",
            bundle_arg,
            "--key",
            key_arg,
            "-o",
            report.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>") || html.contains("<html"),
        "not a page"
    );
    assert!(html.contains(&grant) && html.contains("NIST") && !html.contains("<script"));

    let original = std::fs::read(&bundle_path).unwrap();
    let altered = tmp.path().join("altered.json");
    let alt = altered.to_str().unwrap();
    let check = |bytes: &[u8]| {
        std::fs::write(&altered, bytes).unwrap();
        rejected(&offline(
            &auditor,
            &["evidence", "verify-bundle", alt, "--key", key_arg],
        ))
    };

    // One changed byte (the work order of the request): the events no longer lead to the
    // checkpoint's root (one multi-proof covers them all, so it cannot name the event).
    let pos = original.windows(7).position(|w| w == b"WO-1234").unwrap();
    let mut one_byte = original.clone();
    one_byte[pos + 3] = b'9';
    let err = check(&one_byte);
    assert!(
        err.contains("do not lead to the checkpoint's root"),
        "{err}"
    );
    // A byte that makes the event text non-canonical is named by its place.
    let mut spaced = original.clone();
    // (the text is a JSON string in the file: `\"actor\":` there; its `:` becomes a space)
    let at = original
        .windows(10)
        .position(|w| w == b"\\\"actor\\\":")
        .unwrap();
    spaced[at + 9] = b' ';
    let err = check(&spaced);
    assert!(err.contains("events[0] (seq"), "{err}");

    // Truncated.
    let err = check(&original[..original.len() * 2 / 3]);
    assert!(
        err.contains("not a valid bundle") && err.contains("truncated"),
        "{err}"
    );

    // Reordered.
    let mut b: Value = serde_json::from_slice(&original).unwrap();
    b["events"].as_array_mut().unwrap().swap(1, 2);
    let err = check(b.to_string().as_bytes());
    assert!(err.contains("reordered"), "{err}");

    // Re-signed with another key (checkpoint and attestation both): not a trusted key.
    let mut forged: Bundle = serde_json::from_slice(&original).unwrap();
    let mallory = EvidenceKey::generate().unwrap();
    let c = forged.checkpoint.checkpoint.clone();
    forged.checkpoint = mallory
        .sign_checkpoint(
            &c.log_id,
            c.tree_size,
            &c.root().unwrap(),
            c.timestamp().unwrap(),
        )
        .unwrap();
    forged.keys = vec![jitgate_evidence::BundleKey {
        key_id: mallory.public().key_id,
        public_key: mallory.public().to_base64(),
    }];
    forged.attest(&mallory);
    let err = check(forged.to_json().as_bytes());
    assert!(err.contains("not among the trusted evidence keys"), "{err}");

    // A genuine checkpoint, but older than the bundle's events.
    let last_seq = serde_json::from_slice::<Bundle>(&original)
        .unwrap()
        .events
        .last()
        .unwrap()
        .seq;
    let older = cps
        .iter()
        .find(|c| c.checkpoint.tree_size < last_seq)
        .unwrap()
        .clone();
    let mut stale: Bundle = serde_json::from_slice(&original).unwrap();
    stale.checkpoint = older;
    let err = check(stale.to_json().as_bytes());
    assert!(err.contains("older than its events"), "{err}");

    // A report is never made of a bundle that fails.
    let out = offline(
        &auditor,
        &[
            "evidence",
            "report",
            alt,
            "--key",
            key_arg,
            "-o",
            tmp.path().join("bad.html").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!tmp.path().join("bad.html").exists());

    // A key file that is not one is a usage error (exit 2).
    let out = offline(
        &auditor,
        &["evidence", "verify-bundle", bundle_arg, "--key", bundle_arg],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Rotation: the new key file still verifies the old bundle; new bundles use the new key.
    let out = cli.ok("sam", &["evidence", "rotate-key"]);
    assert!(out.contains("evidence key rotated"), "{out}");
    let key2 = tmp.path().join("plant-2.pub");
    cli.ok(
        "alice",
        &["evidence", "public-key", "-o", key2.to_str().unwrap()],
    );
    let key2_arg = key2.to_str().unwrap();
    assert!(offline(
        &auditor,
        &["evidence", "verify-bundle", bundle_arg, "--key", key2_arg]
    )
    .status
    .success());
    let bundle2 = tmp.path().join("bundle-2.json");
    cli.ok(
        "alice",
        &[
            "evidence",
            "export",
            &grant,
            "-o",
            bundle2.to_str().unwrap(),
        ],
    );
    let b2 = bundle2.to_str().unwrap();
    assert!(offline(
        &auditor,
        &["evidence", "verify-bundle", b2, "--key", key2_arg]
    )
    .status
    .success());
    rejected(&offline(
        &auditor,
        &["evidence", "verify-bundle", b2, "--key", key_arg],
    ));
    assert!(cli
        .ok("sam", &["evidence", "verify"])
        .starts_with("evidence log ok"));
    up.stop();
}
