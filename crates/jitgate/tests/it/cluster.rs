//! Two `jitgate serve` nodes on one PostgreSQL database (docs/cluster.md), as real
//! processes: the first administrator comes from `jitgate bootstrap`, the gateway holds its
//! control channel with node A, and everything the people do goes through node B — the
//! grant is issued there, its token is accepted at A's gateway, and its revocation on B cuts
//! the live Modbus session at once and is verified exactly once.

use crate::cluster_nodes::{bootstrap, http_get, share_cluster_key, Node};
use crate::gateway::{
    client, have_pymodbus, holding_client, skip, teardown_verdict, wait_port, Killed,
};
use crate::quickstart::{free_port, Cli, BIN};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The profiles of the CLI on `node`, in `dir`.
fn cli(node: &Node, dir: &Path) -> Cli {
    let dir = dir.join(format!("profiles-{}", node.id));
    std::fs::create_dir_all(&dir).unwrap();
    Cli {
        server: node.url(),
        dir,
    }
}

fn wait_for(what: &str, check: impl FnMut() -> Option<Value>) -> Value {
    crate::cluster_nodes::wait_for(what, Duration::from_secs(30), check)
}

#[test]
fn a_grant_issued_and_revoked_on_one_node_is_cut_at_a_gateway_attached_to_another() {
    if !have_pymodbus() {
        skip("python3 with pymodbus (pip install pymodbus)");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(pg) = rt.block_on(jitgate_testkit::postgres_store()) else {
        return;
    };
    let plc = rt
        .block_on(jitgate_gateway::modbus::sim::start(
            "127.0.0.1:0".parse().unwrap(),
            vec![1],
        ))
        .unwrap();
    for n in 0..200u16 {
        plc.set_holding(1, n, n);
    }
    let tmp = tempfile::tempdir().unwrap();
    let inventory = crate::cluster_nodes::inventory(tmp.path(), plc.local_addr());
    let mut a = Node::new(tmp.path(), "node-a", &pg.url(), &inventory, "");
    let mut b = Node::new(tmp.path(), "node-b", &pg.url(), &inventory, "");

    // The first administrator, once. Names that are not an admin are refused.
    let refused = bootstrap(&a, "alice");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not have the `admin` role"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let first = bootstrap(&a, "sam");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let sam_password = String::from_utf8(first.stdout).unwrap().trim().to_string();
    let again = bootstrap(&a, "sam");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already bootstrapped"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    a.start();
    // Without the cluster key, B refuses to join a database that holds A's keys.
    let mut lost = Command::new(BIN)
        .args(["serve", "--config", b.config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!lost.status.success());
    let said = String::from_utf8_lossy(&std::mem::take(&mut lost.stderr)).to_string();
    assert!(said.contains("copy cluster.key"), "{said}");
    share_cluster_key(&a.data, &b.data);
    b.start();
    // B signs with A's token key.
    assert_eq!(
        std::fs::read(a.data.join("token-keys.json")).unwrap(),
        std::fs::read(b.data.join("token-keys.json")).unwrap()
    );
    let (on_a, on_b) = (cli(&a, tmp.path()), cli(&b, tmp.path()));

    // sam (on A) gives alice and bob passwords and the gateway an API key.
    on_a.login("sam", &sam_password);
    for who in ["alice", "bob"] {
        let out = on_a.run(
            "sam",
            &["identities", "set-password", who, "--password-stdin"],
            Some("a long test password 1\n"),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let key = on_a.json(
        "sam",
        &[
            "apikey",
            "create",
            "--identity",
            "gw-north",
            "--name",
            "cluster-test",
        ],
    );
    for who in ["alice", "bob"] {
        on_b.login(who, "a long test password 1");
    }
    on_b.login("sam", &sam_password);

    // The gateway attaches to node A; node B says so.
    let gw_port = free_port();
    let metrics_port = free_port();
    let gw_config = tmp.path().join("gateway.toml");
    std::fs::write(
        &gw_config,
        format!(
            "server = \"http://127.0.0.1:{}\"\nfailover_servers = [\"http://127.0.0.1:{}\"]\n\
             api_key = \"{}\"\nlisten = \"127.0.0.1:{gw_port}\"\nstate_dir = \"{}\"\n\
             cut_after_silence = \"35s\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n",
            a.port,
            b.port,
            key["key"].as_str().unwrap(),
            tmp.path().join("gw").display()
        ),
    )
    .unwrap();
    let mut gw = Command::new(BIN)
        .args(["gateway", "--config", gw_config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let gw_log = wait_port(gw_port, &mut gw, "jitgate gateway");
    let _gw = Killed(gw);
    wait_for("gw-north attached to node-a, as seen from node B", || {
        let list = on_b.json("sam", &["gateways"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == "gw-north" && g["attached_to"] == "node-a")
            .cloned()
    });

    // Requested, approved and connected through node B: its token works at A's gateway.
    let req = on_b.json(
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
            "cluster test",
            "--ref",
            "WO-9",
        ],
    );
    let approved = on_b.json("bob", &["approve", req["id"].as_str().unwrap()]);
    assert_eq!(approved["state"], "active", "{approved}");
    let grant = approved["grant"]["id"].as_str().unwrap().to_string();
    let local = free_port();
    let connected = crate::gateway::connect(&on_b, &grant, local);
    assert_eq!(client(local, "once")["ok"], true);

    // Revoked on node B while the client reads through the gateway on node A.
    let reader = holding_client(local);
    reader.wait_reading();
    on_b.ok("sam", &["revoke", &grant, "--reason", "cluster test over"]);
    let r = reader.join();
    assert!(
        r["reads"].as_u64().unwrap() >= 3,
        "the client was reading: {r}\njitgate connect said:\n{}\ngateway said:\n{}\nevents: {:#}",
        connected.log(),
        gw_log.text(),
        on_b.json("sam", &["events", "--grant", &grant, "--limit", "500"])
    );
    assert_ne!(r["ended"], "still open after 120 s", "{r}");
    assert_eq!(client(local, "once")["ok"], false);

    // Verified, from either node, and once: one verdict event.
    let t = teardown_verdict(&on_a, &grant, "verified");
    let sessions = t["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "sessions_closed")
        .cloned()
        .unwrap();
    assert_eq!(sessions["outcome"], "ok", "{t:#}");
    assert_eq!(
        on_b.json("sam", &["teardown", &grant])["verdict"],
        "verified"
    );
    // The gateway's metrics: operations counted, the control channel up on node A.
    let (status, text) = http_get(metrics_port, "/metrics").unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        text.lines().any(|l| l
            .strip_prefix("jitgate_gateway_operations_total{verdict=\"allowed\"} ")
            .is_some_and(|n| n.parse::<u64>().unwrap() >= 3)),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "jitgate_gateway_control_connected{{server=\"http://127.0.0.1:{}\"}} 1\n",
            a.port
        )),
        "{text}"
    );
    assert_eq!(http_get(metrics_port, "/readyz").unwrap().0, 200);
    let events = on_b.json("sam", &["events", "--grant", &grant, "--limit", "500"]);
    let verdicts = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "teardown.verdict")
        .count();
    assert_eq!(verdicts, 1, "{events:#}");

    // A key rotated and the old one retired on node B: node A, and through it its gateway,
    // accept the new key's tokens and refuse the old key's at once.
    let old_kid = on_a.json("sam", &["keys", "show"])["current_kid"]
        .as_str()
        .unwrap()
        .to_string();
    let new_kid = on_b.json("sam", &["keys", "rotate"])["current_kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(old_kid, new_kid);
    wait_for("the rotated key at node A", || {
        let keys = on_a.json("sam", &["keys", "show"]);
        (keys["current_kid"] == new_kid.as_str()).then_some(keys)
    });
    let req = on_b.json(
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
            "after rotation",
            "--ref",
            "WO-10",
        ],
    );
    let approved = on_b.json("bob", &["approve", req["id"].as_str().unwrap()]);
    let grant = approved["grant"]["id"].as_str().unwrap().to_string();
    let local = free_port();
    let _rotated = crate::gateway::connect(&on_b, &grant, local);
    assert_eq!(client(local, "once")["ok"], true);
    on_b.ok("sam", &["keys", "retire", &old_kid, "--now"]);
    wait_for("the retirement at node A", || {
        let keys = on_a.json("sam", &["keys", "show"]);
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| {
                k["kid"] == old_kid.as_str()
                    && k["retire_at"].as_str().is_some_and(|t| {
                        chrono::DateTime::parse_from_rfc3339(t).unwrap() <= chrono::Utc::now()
                    })
            })
            .cloned()
    });
    drop(_rotated);

    // The log both nodes appended to verifies.
    let verify = on_a.run("sam", &["evidence", "verify"], None);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    drop(connected);

    // Node A dies (SIGKILL): the gateway fails over to node B, which serves new sessions and
    // cuts them on revocation as A did.
    a.kill();
    wait_for("gw-north attached to node-b after node-a died", || {
        let list = on_b.json("sam", &["gateways"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == "gw-north" && g["attached_to"] == "node-b")
            .cloned()
    });
    let req = on_b.json(
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
            "after failover",
            "--ref",
            "WO-11",
        ],
    );
    let approved = on_b.json("bob", &["approve", req["id"].as_str().unwrap()]);
    let grant = approved["grant"]["id"].as_str().unwrap().to_string();
    let local = free_port();
    let _after = crate::gateway::connect(&on_b, &grant, local);
    assert!(
        http_get(metrics_port, "/metrics")
            .unwrap()
            .1
            .contains(&format!(
                "jitgate_gateway_control_connected{{server=\"http://127.0.0.1:{}\"}} 1\n",
                b.port
            )),
        "the gateway's metrics name node B as the server in use"
    );
    let reader = holding_client(local);
    reader.wait_reading();
    on_b.ok("sam", &["revoke", &grant, "--reason", "failover test over"]);
    let r = reader.join();
    assert!(r["reads"].as_u64().unwrap() >= 3, "{r}");
    assert_ne!(r["ended"], "still open after 120 s", "{r}");
    teardown_verdict(&on_b, &grant, "verified");

    // No node left: the gateway keeps a live session only until `cut_after_silence` (35 s
    // here) has passed without a word from any server, then cuts it.
    let req = on_b.json(
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
            "silence test",
            "--ref",
            "WO-12",
        ],
    );
    let approved = on_b.json("bob", &["approve", req["id"].as_str().unwrap()]);
    let grant = approved["grant"]["id"].as_str().unwrap().to_string();
    let local = free_port();
    let _silent = crate::gateway::connect(&on_b, &grant, local);
    let reader = holding_client(local);
    reader.wait_reading();
    b.kill();
    let r = reader.join();
    assert_ne!(r["ended"], "still open after 120 s", "{r}");
    // Cut by the silence bound, not before it: the session's own online check (just before
    // the reader started) was a word from node B, so the cut comes 35 s after that at the
    // earliest; 25 leaves room for how the 1.5 s and the reader's start line up.
    assert!(r["after_s"].as_f64().unwrap() >= 25.0, "cut too early: {r}");
    rt.block_on(plc.shutdown());
    rt.block_on(pg.cleanup());
}
