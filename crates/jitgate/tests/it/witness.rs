//! Witnesses through the real binary: `jitgate evidence witness` follows a server's log,
//! its cosignatures travel in bundles and `verify-bundle --witness-key` requires them; a
//! second copy of the server (same key, same log id, another history — a restored backup, or
//! an operator showing auditors two logs) is caught as a rollback, then as a fork: exit 4,
//! ALARM.json kept, the alarm recorded as an event on that server.

use crate::quickstart::{free_port, Cli, Up, BIN};
use std::path::Path;
use std::process::{Command, Output};

fn witness(cli: &Cli, state: &Path, log_key: &Path) -> Output {
    cli.run(
        "sam",
        &[
            "evidence",
            "witness",
            "--state",
            state.to_str().unwrap(),
            "--log-key",
            log_key.to_str().unwrap(),
            "--once",
        ],
        None,
    )
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A request approved: more events in the log.
fn grant(cli: &Cli, reason: &str) -> String {
    cli.ok(
        "alice",
        &[
            "request",
            "--asset",
            "plc-7",
            "--modbus",
            "read holding 0-9 unit 1",
            "--for",
            "1h",
            "--reason",
            reason,
        ],
    );
    let req = cli.json("alice", &["requests", "--mine"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let approved = cli.json("bob", &["approve", &req, "--comment", "ok"]);
    approved["grant"]["id"].as_str().unwrap().to_string()
}

fn verify_bundle(bundle: &Path, key: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args([
            "evidence",
            "verify-bundle",
            bundle.to_str().unwrap(),
            "--key",
        ])
        .arg(key)
        .args(extra)
        .env("JITGATE_SERVER", "http://127.0.0.1:1")
        .env_remove("JITGATE_TOKEN")
        .output()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_witness_follows_the_log_and_catches_a_rollback_and_a_fork() {
    let tmp = tempfile::tempdir().unwrap();
    let w_state = tmp.path().join("witness");
    // The witness's key first, offline: its vkey goes to the operator and the auditors.
    let init = Command::new(BIN)
        .args([
            "evidence",
            "witness",
            "--init",
            "--name",
            "audit.example/w1",
            "--state",
        ])
        .arg(&w_state)
        .env("JITGATE_SERVER", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", text(&init));
    let w_vkey = std::fs::read_to_string(w_state.join("witness.vkey")).unwrap();
    assert!(w_vkey.starts_with("audit.example/w1+"), "{w_vkey}");
    assert_eq!(
        String::from_utf8_lossy(&init.stdout).lines().last(),
        Some(w_vkey.trim())
    );

    let data = tmp.path().join("data-a");
    let env = [("JITGATE_EVIDENCE_WITNESSES", w_vkey.trim())];
    let up = Up::start_with_env(&data, free_port(), None, &env);
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    let login = |cli: &Cli| {
        for who in ["alice", "bob", "sam"] {
            cli.login(who, creds["passwords"][who].as_str().unwrap());
        }
    };
    login(&cli);
    let first = grant(&cli, "first");
    let log_key = tmp.path().join("log.vkey");
    cli.ok(
        "sam",
        &[
            "evidence",
            "public-key",
            "--vkey",
            "-o",
            log_key.to_str().unwrap(),
        ],
    );
    let ev_key = tmp.path().join("evidence.pub");
    cli.ok(
        "sam",
        &["evidence", "public-key", "-o", ev_key.to_str().unwrap()],
    );

    // First round: nothing to be consistent with yet.
    let out = witness(&cli, &w_state, &log_key);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("cosigned checkpoint of"),
        "{}",
        text(&out)
    );
    // Nothing new: no second cosignature.
    let out = witness(&cli, &w_state, &log_key);
    assert!(text(&out).contains("nothing new"), "{}", text(&out));

    // The log grows; the witness cosigns with a consistency proof from its last size.
    grant(&cli, "second");
    let before: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w_state.join("state.json")).unwrap())
            .unwrap();
    let out = witness(&cli, &w_state, &log_key);
    assert!(out.status.success(), "{}", text(&out));
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w_state.join("state.json")).unwrap())
            .unwrap();
    assert!(after["tree_size"].as_u64() > before["tree_size"].as_u64());
    let listed = cli.ok("sam", &["evidence", "checkpoints"]);
    assert!(listed.contains("audit.example/w1"), "{listed}");

    // The first grant's bundle carries the cosignature; the auditor requires it.
    let bundle = tmp.path().join("bundle.json");
    cli.ok(
        "sam",
        &["evidence", "export", &first, "-o", bundle.to_str().unwrap()],
    );
    let w_key = w_state.join("witness.vkey");
    let out = verify_bundle(
        &bundle,
        &ev_key,
        &["--witness-key", w_key.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("cosigned by audit.example/w1"),
        "{}",
        text(&out)
    );
    // Two witnesses required, one cosigned: rejected, naming the shortfall.
    let other = tmp.path().join("other-witness");
    let other_init = Command::new(BIN)
        .args([
            "evidence",
            "witness",
            "--init",
            "--name",
            "site-b.example/w",
            "--state",
        ])
        .arg(&other)
        .output()
        .unwrap();
    assert!(other_init.status.success(), "{}", text(&other_init));
    let other_key = other.join("witness.vkey");
    let out = verify_bundle(
        &bundle,
        &ev_key,
        &[
            "--witness-key",
            w_key.to_str().unwrap(),
            "--witness-key",
            other_key.to_str().unwrap(),
            "--min-witnesses",
            "2",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("1 of the trusted witnesses"),
        "{}",
        text(&out)
    );
    // A cosignature altered in the bundle: rejected.
    let mut b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let line = b["cosignatures"][0].as_str().unwrap().to_string();
    let (head, sig) = line.rsplit_once(' ').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    sig[20] = if sig[20] == 'A' { 'B' } else { 'A' };
    b["cosignatures"][0] = format!("{head} {}", sig.into_iter().collect::<String>()).into();
    let tampered = tmp.path().join("tampered.json");
    std::fs::write(&tampered, b.to_string()).unwrap();
    let out = verify_bundle(
        &tampered,
        &ev_key,
        &["--witness-key", w_key.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // Without --witness-key the bundle still verifies (witnesses are the auditor's choice).
    assert!(verify_bundle(&bundle, &ev_key, &[]).status.success());

    // A copy of the server as it is now, kept aside (a backup).
    up.stop();
    let data_b = tmp.path().join("data-b");
    copy_dir(&data, &data_b);
    let up = Up::start_with_env(&data, free_port(), None, &env);
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    login(&cli);
    grant(&cli, "third");
    grant(&cli, "fourth");
    let out = witness(&cli, &w_state, &log_key);
    assert!(out.status.success(), "{}", text(&out));
    let fork_state = tmp.path().join("witness-copy");
    copy_dir(&w_state, &fork_state);

    // The backup comes back: same key, same log id, fewer events — a rollback.
    let up_b = Up::start_with_env(&data_b, free_port(), None, &env);
    let cli_b = Cli {
        server: up_b.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    login(&cli_b);
    let out = witness(&cli_b, &w_state, &log_key);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("ALARM") && text(&out).contains("rolled back"),
        "{}",
        text(&out)
    );
    assert!(w_state.join("ALARM.json").exists());
    let events = cli_b.json("sam", &["events"]);
    let alarm = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "evidence.witness_alarm")
        .unwrap_or_else(|| panic!("no alarm event: {events}"));
    assert_eq!(alarm["data"]["alarm"], "rollback", "{alarm}");
    assert_eq!(alarm["data"]["log_agrees_with_cosigned"], false, "{alarm}");
    // The witness stays stopped.
    let out = witness(&cli_b, &w_state, &log_key);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("stopped after an alarm"),
        "{}",
        text(&out)
    );

    // The backup grows past the witness's size with another history: a fork.
    for i in 0..4 {
        grant(&cli_b, &format!("other history {i}"));
    }
    let out = witness(&cli_b, &fork_state, &log_key);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("forked"), "{}", text(&out));
    drop(up_b);
    drop(up);
}
