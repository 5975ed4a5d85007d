//! The README's DNP3 walkthrough with the real binaries: `jitgate up` with the sample plant,
//! `jitgate gateway` as gw-north, the Rust simulated outstation behind rtu-12, alice's grant
//! approved by carol, `jitgate connect --protocol dnp3`, dnp3py's master polling through it;
//! then sam revokes the grant and the teardown is verified by the DNP3 probe.

use crate::gateway::{Killed, Plant};
use crate::quickstart::{free_port, BIN};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn have_dnp3py() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import dnp3.master.tcp_runner"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !std::env::var("JITGATE_REQUIRE_PEERS").is_ok_and(|v| v == "1"),
            "python3 with dnp3py is required (JITGATE_REQUIRE_PEERS=1) but missing: pip install dnp3py==0.6.0"
        );
        eprintln!("\n!!!!!!!!!!\n!!! SKIPPED: python3 with dnp3py is not available (pip install dnp3py==0.6.0)\n!!!!!!!!!!\n");
    }
    ok
}

/// dnp3py's master (the gateway crate's test peer) through 127.0.0.1:`port`.
fn master(port: u16, steps: Value) -> Vec<Value> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../jitgate-gateway/tests/it/dnp3_master.py");
    let out = Command::new(python())
        .arg(script)
        .arg(port.to_string())
        .arg(steps.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dnp3_master.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_dnp3_walkthrough_polls_the_rtu_and_the_teardown_is_verified() {
    if !have_dnp3py() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rtu = rt
        .block_on(jitgate_gateway::dnp3::sim::start(
            "127.0.0.1:0".parse().unwrap(),
            10,
            1,
            16,
        ))
        .unwrap();
    rtu.preset_values();
    let rtu_addr = rtu.local_addr().to_string();
    let p = Plant::start_custom(
        None,
        false,
        |inventory| inventory.replace("127.0.0.1:20000", &rtu_addr),
        "",
    );
    let cli = &p.cli;
    let creds: toml::Value = toml::from_str(
        &std::fs::read_to_string(cli.dir.join("data/bootstrap-credentials.toml")).unwrap(),
    )
    .unwrap();
    cli.login("carol", creds["passwords"]["carol"].as_str().unwrap());

    // alice asks to read the RTU's static data; carol, the engineer of site south, approves.
    let req = cli.json(
        "alice",
        &[
            "request",
            "--asset",
            "rtu-12",
            "--dnp3",
            "read class 0",
            "--for",
            "1h",
            "--reason",
            "check feeder readings",
            "--ref",
            "WO-2001",
        ],
    );
    let approved = cli.json("carol", &["approve", req["id"].as_str().unwrap()]);
    assert_eq!(approved["state"], "active", "{approved}");
    let grant = approved["grant"]["id"].as_str().unwrap().to_string();

    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["--server", &cli.server, "--profile"])
        .arg(cli.dir.join("alice.toml"))
        .args(["connect", &grant, "--protocol", "dnp3", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "jitgate connect exited"
        );
        assert!(Instant::now() < deadline, "jitgate connect never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _connect = Killed(child);

    let r = master(port, json!([["class0"], ["integrity"]]));
    assert_eq!(r[0]["responses"][0]["iin2"], 0, "{r:#?}");
    assert_eq!(r[0]["values"]["analog_input"]["5"], 105.0);
    assert_eq!(r[0]["values"]["counter"]["15"], 1015);
    // The integrity poll asks for event classes too: refused with IIN2.2.
    assert_eq!(r[1]["responses"][0]["iin2"], 4, "{r:#?}");
    assert_eq!(
        rtu.received().iter().filter(|f| f[1] == 0x01).count(),
        1,
        "only the class 0 poll reached the RTU"
    );

    // Both polls are in the grant's evidence.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = cli.json("sam", &["events", "--grant", &grant, "--limit", "500"]);
        let reads: Vec<&Value> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "operation" && e["data"]["detail"]["function_name"] == "READ")
            .collect();
        if reads.len() >= 2 {
            let refused = reads
                .iter()
                .find(|e| e["data"]["detail"]["allowed"] == false)
                .expect("the integrity poll is recorded as refused");
            assert_eq!(refused["data"]["detail"]["refusal_iin2"], 4);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "operations not recorded: {events}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // sam revokes it: the same credential is refused and the teardown is verified.
    cli.ok(
        "sam",
        &["revoke", &grant, "--reason", "walkthrough finished"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let teardown = loop {
        let t = cli.json("sam", &["teardown", &grant]);
        if t["verdict"] == "verified" {
            break t;
        }
        assert!(Instant::now() < deadline, "teardown never verified: {t:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let refused = teardown["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "credential_refused")
        .unwrap();
    assert_eq!(refused["outcome"], "ok", "{teardown:#}");
    let again = master(port, json!([["class0"]]));
    assert!(again[0]["error"].is_string(), "{again:#?}");
    drop(_connect);
    p.stop();
    rt.block_on(rtu.shutdown());
}
