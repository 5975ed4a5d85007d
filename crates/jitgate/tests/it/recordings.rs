//! Recordings through the real binary: `jitgate up`, a grant, a session recording delivered
//! as a gateway does (chunk events, then framed chunk bytes), `recordings list` and
//! `recordings play --raw`, then the bundle verified offline — and rejected, naming the
//! chunk, when one byte of the recording changes.

use crate::quickstart::{free_port, Cli, Up, BIN};
use jitgate_core::ManualClock;
use jitgate_gateway::recording::{CastHeader, RecorderLimits, SessionRecorder};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::Command;
use std::sync::Arc;

/// POST a body over plain HTTP/1.1; the status code.
fn post(server: &str, path: &str, token: &str, content_type: &str, body: &[u8]) -> u16 {
    let addr = server.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn recordings_list_play_and_verify_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("jitgate-data");
    let up = Up::start(&data, free_port());
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    let pw = |who: &str| creds["passwords"][who].as_str().unwrap().to_string();
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    for who in ["alice", "bob"] {
        cli.login(who, &pw(who));
    }
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
    let grant = cli.json("bob", &["approve", &req, "--comment", "ok"])["grant"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A recorded session, delivered as the gateway delivers it.
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut r = SessionRecorder::new(
        "sess-cli1",
        CastHeader::new(80, 24, 0),
        clock.clone(),
        RecorderLimits {
            chunk_bytes: 40,
            ..Default::default()
        },
    );
    let mut chunks = Vec::new();
    for i in 0..5 {
        clock.advance(chrono::Duration::milliseconds(100));
        chunks.extend(r.output(format!("line {i}\r\n").as_bytes()));
    }
    chunks.extend(r.finish());
    assert!(chunks.len() >= 3);
    let cast: Vec<u8> = chunks.iter().flat_map(|c| c.bytes.clone()).collect();
    let gw_key = creds["api_keys"]["gw-north"].as_str().unwrap();
    let at = jitgate_core::event::rfc3339(chrono::Utc::now());
    let events: Vec<Value> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"gseq": 1 + i, "kind": "recording.chunk", "at": at, "grant_id": grant,
                   "session_id": "sess-cli1", "data": c.detail()})
        })
        .collect();
    let body = json!({ "events": events }).to_string();
    assert_eq!(
        post(
            &up.server,
            "/api/v1/gateway/events",
            gw_key,
            "application/json",
            body.as_bytes()
        ),
        200
    );
    for c in &chunks {
        let path = format!(
            "/api/v1/gateway/recordings/sess-cli1/chunks/{}",
            c.meta.index
        );
        assert_eq!(
            post(
                &up.server,
                &path,
                gw_key,
                "application/octet-stream",
                &c.frame()
            ),
            200
        );
    }

    let list = cli.json("alice", &["recordings", "list", "--grant", &grant]);
    assert_eq!(list[0]["session_id"], "sess-cli1", "{list}");
    assert_eq!(list[0]["complete"], true, "{list}");
    let table = cli.ok("alice", &["recordings", "list"]);
    assert!(
        table.contains("sess-cli1") && table.contains("complete"),
        "{table}"
    );
    let out = cli.run("alice", &["recordings", "play", "sess-cli1", "--raw"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, cast);
    // Played (not a terminal here): the output events in order.
    let played = cli.ok(
        "alice",
        &["recordings", "play", "sess-cli1", "--speed", "100"],
    );
    assert_eq!(played, "line 0\r\nline 1\r\nline 2\r\nline 3\r\nline 4\r\n");

    // The bundle, verified offline; then one byte of the recording changed.
    let bundle = tmp.path().join("bundle.json");
    let key = tmp.path().join("plant.pub");
    cli.ok(
        "alice",
        &["evidence", "export", &grant, "-o", bundle.to_str().unwrap()],
    );
    cli.ok(
        "alice",
        &["evidence", "public-key", "-o", key.to_str().unwrap()],
    );
    let verify = |path: &std::path::Path| {
        Command::new(BIN)
            .args([
                "evidence",
                "verify-bundle",
                path.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ])
            .env("JITGATE_SERVER", "http://127.0.0.1:1")
            .env_remove("JITGATE_TOKEN")
            .output()
            .unwrap()
    };
    let ok = verify(&bundle);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        text.contains(&format!(
            "sess-cli1: {} chunks, {} bytes",
            chunks.len(),
            cast.len()
        )) && text.contains("complete"),
        "{text}"
    );
    let mut b: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    // The first base64 character holds the top six bits of the first byte: changing it
    // changes that one byte and nothing else.
    let data = b["recordings"][1]["data"].as_str().unwrap().to_string();
    let first = if data.starts_with('W') { "X" } else { "W" };
    b["recordings"][1]["data"] = json!(format!("{first}{}", &data[1..]));
    let altered = tmp.path().join("altered.json");
    std::fs::write(&altered, b.to_string()).unwrap();
    let bad = verify(&altered);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("bundle REJECTED")
            && err.contains("recordings[1]: chunk 1 of session sess-cli1"),
        "{err}"
    );
}
