//! The holes governance rules leave, closed, checked through the real binaries: the CLI
//! shows control characters from the server escaped and survives a closed pipe; `jitgate
//! connect` opens no set-up session and its clients' sessions end as `client_closed`; an
//! emergency key retirement cuts the sessions of the key at once and refuses its tokens.
//! A plain Rust Modbus/TCP client is the local client, so no Python peer is needed.

use crate::gateway::{connect, granted, Plant};
use crate::quickstart::{free_port, Cli, Up, BIN};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One FC3 read of holding register `addr` on unit 1; `None` if the connection is closed.
fn read_register(s: &mut TcpStream, addr: u16) -> Option<u16> {
    let mut req = vec![0, 7, 0, 0, 0, 6, 1, 3];
    req.extend_from_slice(&addr.to_be_bytes());
    req.extend_from_slice(&1u16.to_be_bytes());
    s.write_all(&req).ok()?;
    let mut resp = [0u8; 11];
    s.read_exact(&mut resp).ok()?;
    Some(u16::from_be_bytes([resp[9], resp[10]]))
}

fn local_client(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// The grant's events, polled until `done` holds or 20 s pass.
fn events_until(cli: &Cli, grant: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = cli.json("sam", &["events", "--grant", grant, "--limit", "500"]);
        let events = events.as_array().unwrap().clone();
        if done(&events) || Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn kind<'a>(events: &'a [Value], k: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == k).collect()
}

#[test]
fn cli_output_escapes_control_characters_and_survives_a_closed_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let up = Up::start(&data, free_port());
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    for who in ["alice", "sam"] {
        cli.login(who, creds["passwords"][who].as_str().unwrap());
    }
    // A reason that would clear the approver's screen and overwrite the line with a fake
    // scope, and a reference with a right-to-left override.
    let reason = "valve\x1b[2J\x1b[H\rscope  read holding 0-1 unit 1";
    let request_args = |reason: &str, reference: &str| -> Vec<String> {
        [
            "request",
            "--asset",
            "plc-7",
            "--modbus",
            "write holding 0-99 unit 1",
            "--for",
            "1h",
            "--reason",
            reason,
            "--ref",
            reference,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    // The server refuses such text...
    let args = request_args(reason, "WO-\u{202e}1");
    let refused = cli.run(
        "alice",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("control_character"), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "the error itself is escaped: {stderr}"
    );
    // ...but records written before it did (or by other means) may still carry it: put it
    // in the database behind the server's back, and the CLI must still show it harmlessly.
    let args = request_args("replace positioner", "WO-1");
    let req = cli.json(
        "alice",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let id = req["id"].as_str().unwrap();
    let db = data.join("jitgate.db");
    let edit = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute('UPDATE requests SET reason=?, reference=? WHERE id=?', (sys.argv[2], sys.argv[3], sys.argv[4])); \
             c.commit()",
        ])
        .arg(&db)
        .arg(reason)
        .arg("WO-\u{202e}1")
        .arg(id)
        .output()
        .unwrap();
    assert!(
        edit.status.success(),
        "{}",
        String::from_utf8_lossy(&edit.stderr)
    );
    for who in ["alice", "sam"] {
        let shown = cli.ok(who, &["show", id]);
        assert!(
            !shown.contains('\x1b') && !shown.contains('\r') && !shown.contains('\u{202e}'),
            "raw control characters in:\n{shown}"
        );
        assert!(
            shown.contains("valve\\x1b[2J\\x1b[H\\rscope  read holding 0-1 unit 1"),
            "{shown}"
        );
        assert!(shown.contains("WO-\\u{202e}1"), "{shown}");
        // The real scope is still there, on its own line.
        assert!(shown.contains("write holding 0–99"), "{shown}");
    }
    let listed = cli.ok("sam", &["requests"]);
    assert!(!listed.contains('\x1b'), "{listed}");
    // JSON stays JSON, with the same value and no raw control character.
    let out = cli.run("sam", &["--json", "show", id], None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\x1b') && !text.contains('\u{202e}'),
        "{text}"
    );
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed["reason"], reason);

    // A reader that has gone before the CLI writes: no panic, status 0, nothing on stderr.
    for args in [
        &["--json", "events", "--limit", "500"][..],
        &["events", "--limit", "500"][..],
        &["show", id][..],
    ] {
        let mut child = Command::new(BIN)
            .arg("--server")
            .arg(&cli.server)
            .arg("--profile")
            .arg(cli.dir.join("sam.toml"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // close the read end: every write gets EPIPE
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    drop(up);
}

#[test]
fn connect_sessions_end_as_client_closed_and_a_retired_key_cuts_its_sessions() {
    let p = Plant::start_with(None, false);
    let cli = &p.cli;

    // (i) `jitgate connect` checks the grant at start without opening a session, and a
    // client that leaves ends its session as `client_closed`.
    let grant = granted(cli, "1h");
    let local = free_port();
    let c = connect(cli, &grant, local);
    let mut client = local_client(local);
    assert_eq!(read_register(&mut client, 5), Some(5));
    drop(client);
    let events = events_until(cli, &grant, |ev| !kind(ev, "session.ended").is_empty());
    let started = kind(&events, "session.started");
    let ended = kind(&events, "session.ended");
    assert_eq!(started.len(), 1, "only the client's session: {events:#?}");
    assert_eq!(ended.len(), 1, "{events:#?}");
    assert_eq!(ended[0]["data"]["detail"]["reason"], "client_closed");
    assert_eq!(ended[0]["data"]["detail"]["operations"], 1);
    assert!(kind(&events, "session.refused").is_empty(), "{events:#?}");

    // (ii) Emergency retirement. A live session on a token of the old key...
    let old_kid = cli.json("sam", &["keys", "show"])["current_kid"]
        .as_str()
        .unwrap()
        .to_string();
    let mut live = local_client(local);
    assert_eq!(read_register(&mut live, 6), Some(6));
    // ...the current key cannot be retired without a rotation first...
    let out = cli.run("sam", &["keys", "retire", &old_kid, "--now"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rotate first"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ...nor without --now, which says why it is required.
    let out = cli.run("sam", &["keys", "retire", &old_kid], None);
    assert_eq!(out.status.code(), Some(2));
    let help = cli.ok("sam", &["keys", "retire", "--help"]);
    assert!(help.contains("--now is required"), "{help}");
    assert!(help.contains("jitgate keys retire"), "an example: {help}");
    cli.ok("sam", &["keys", "rotate"]);
    // Not an admin: refused.
    let out = cli.run("alice", &["keys", "retire", &old_kid, "--now"], None);
    assert_eq!(out.status.code(), Some(1));
    let retired = cli.json("sam", &["keys", "retire", &old_kid, "--now"]);
    assert_eq!(retired["retired_kid"], old_kid.as_str(), "{retired}");
    assert_eq!(
        retired["gateways_notified"],
        serde_json::json!(["gw-north"])
    );
    // The live session is cut without restarting anything — within a second: the
    // retirement reaches the gateway on the control channel while the CLI returns, so a
    // read sent at once may still be answered.
    let deadline = Instant::now() + Duration::from_secs(1);
    while read_register(&mut live, 7).is_some() {
        assert!(
            Instant::now() < deadline,
            "the session was not cut within 1 s"
        );
    }
    // A new local connection presents the same (old-key) token: refused at the gateway.
    let mut again = local_client(local);
    assert_eq!(read_register(&mut again, 7), None);
    let events = events_until(cli, &grant, |ev| {
        kind(ev, "session.ended")
            .iter()
            .any(|e| e["data"]["detail"]["reason"] == "key_retired")
    });
    assert!(
        kind(&events, "session.ended")
            .iter()
            .any(|e| e["data"]["detail"]["reason"] == "key_retired"),
        "{events:#?}"
    );
    // The retirement is in the evidence log.
    let all = cli.json("sam", &["events", "--limit", "1000"]);
    let rotated: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "key.rotated" && e["data"]["retired_kid"] == old_kid.as_str())
        .collect();
    assert_eq!(rotated.len(), 1, "{all:#}");
    assert_eq!(rotated[0]["data"]["now"], true);
    // A fresh `jitgate connect` gets a token of the new key and works.
    drop(c);
    let local2 = free_port();
    let _c2 = connect(cli, &grant, local2);
    let mut fresh = local_client(local2);
    assert_eq!(read_register(&mut fresh, 8), Some(8));
    // `keys show` says the old key is retired.
    let shown = cli.ok("sam", &["keys", "show"]);
    assert!(shown.contains(&format!("{old_kid}  retired")), "{shown}");
    drop(fresh);
    p.stop();
}

/// Restarting `jitgate up` keeps what the plant's people changed: the sample inventory goes
/// only into an empty data directory (an identity security disabled stays disabled).
#[test]
fn restarting_up_keeps_the_live_inventory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let up = Up::start(&data, port);
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    cli.login("sam", creds["passwords"]["sam"].as_str().unwrap());
    cli.ok(
        "sam",
        &[
            "identities",
            "disable",
            "victor",
            "--reason",
            "contract ended",
        ],
    );
    up.stop();
    let up = Up::start(&data, port);
    let victor = cli.json("sam", &["identities", "show", "victor"]);
    assert_eq!(victor["status"], "disabled", "{victor}");
    up.stop();
}

/// A client opening many connections at once through `jitgate connect` (a SCADA client's
/// burst) gets a session on every one: `connect` queues its handshakes below the gateway's
/// limit of connections still authenticating per address, instead of tripping it.
#[test]
fn a_burst_of_local_connections_through_connect_is_served_whole() {
    let p = Plant::start_with(None, false);
    let cli = &p.cli;
    let grant = granted(cli, "1h");
    let port = free_port();
    let _connect = connect(cli, &grant, port);
    let burst = 3 * jitgate_gateway::admission::MAX_PENDING_PER_SOURCE;
    let go = std::sync::Arc::new(std::sync::Barrier::new(burst));
    let clients: Vec<_> = (0..burst)
        .map(|i| {
            let go = go.clone();
            std::thread::spawn(move || {
                go.wait();
                let mut s = local_client(port);
                read_register(&mut s, (i % 90) as u16)
            })
        })
        .collect();
    let answers: Vec<Option<u16>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let expected: Vec<Option<u16>> = (0..burst).map(|i| Some((i % 90) as u16)).collect();
    assert_eq!(answers, expected, "every connection of the burst is served");
    // No refusal was recorded for the burst.
    let events = events_until(cli, &grant, |ev| {
        ev.iter().filter(|e| e["kind"] == "session.started").count() >= burst
    });
    let started = events
        .iter()
        .filter(|e| e["kind"] == "session.started")
        .count();
    assert_eq!(started, burst, "{events:?}");
    let refused = cli.json("sam", &["events", "--limit", "1000"]);
    let pending: Vec<_> = refused
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.to_string().contains("too_many_pending"))
        .collect();
    assert!(pending.is_empty(), "{pending:?}");
}
