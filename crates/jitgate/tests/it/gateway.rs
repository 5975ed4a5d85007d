//! The gateway end to end with real peers: `jitgate up`, `jitgate gateway` and `jitgate
//! connect` as separate processes, the Rust simulated PLC as the device, pymodbus and mbpoll
//! as unmodified Modbus clients.

use crate::quickstart::{free_port, Cli, Up, BIN};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn peers_required() -> bool {
    std::env::var("JITGATE_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

pub(crate) fn have_pymodbus() -> bool {
    Command::new(python())
        .args(["-c", "import pymodbus"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn have_mbpoll() -> bool {
    Command::new("mbpoll").arg("-V").output().is_ok()
}

pub(crate) fn skip(what: &str) {
    if peers_required() {
        panic!("{what} is required (JITGATE_REQUIRE_PEERS=1) but missing");
    }
    eprintln!("\n!!!!!!!!!!\n!!! SKIPPED: {what} is not available; set JITGATE_REQUIRE_PEERS=1 to make this a failure\n!!!!!!!!!!\n");
}

/// Wait until `child` listens on `port`. Its stderr is drained from now on (a long-running
/// process must never block on a full pipe) and shown if it exits first.
/// Wait until `child` listens on `port`; returns its stderr, drained from now on (so the
/// child never blocks on a full pipe, and a failing test can show what it said).
pub(crate) fn wait_port(port: u16, child: &mut Child, what: &str) -> crate::quickstart::Drained {
    let stderr = crate::quickstart::Drained::new(child.stderr.take());
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return stderr;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) before listening: {}",
                stderr.finish()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not listen on {port}");
}

pub(crate) struct Killed(pub(crate) Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn client(port: u16, scenario: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/grant_client.py");
    let out = Command::new(python())
        .arg(script)
        .arg(port.to_string())
        .arg(scenario)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "grant_client.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The report is the last line (`hold` says `reading` before it).
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("grant_client.py said {stdout:?}: {e}"))
}

/// Request read access to plc-7 as alice for `duration`, approved by bob; returns the grant id.
pub(crate) fn granted(cli: &Cli, duration: &str) -> String {
    let req = cli.json(
        "alice",
        &[
            "request",
            "--asset",
            "plc-7",
            "--modbus",
            "read holding 0-99 unit 1",
            "--for",
            duration,
            "--reason",
            "gateway test",
            "--ref",
            "WO-7",
        ],
    );
    let id = req["id"].as_str().unwrap().to_string();
    let approved = cli.json("bob", &["approve", &id]);
    assert_eq!(approved["state"], "active", "{approved}");
    approved["grant"]["id"].as_str().unwrap().to_string()
}

/// A running `jitgate connect`, stopped when dropped; what it said so far is in `log()`.
pub(crate) struct Connected {
    _process: Killed,
    stderr: crate::quickstart::Drained,
}

impl Connected {
    /// `jitgate connect`'s messages so far (one line per local connection: session open,
    /// closed, or why its tunnel was refused).
    pub(crate) fn log(&self) -> String {
        self.stderr.text()
    }
}

pub(crate) fn connect(cli: &Cli, grant: &str, port: u16) -> Connected {
    let mut child = Command::new(BIN)
        .args(["--server", &cli.server, "--profile"])
        .arg(cli.dir.join("alice.toml"))
        .args(["connect", grant, "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = wait_port(port, &mut child, "jitgate connect");
    Connected {
        _process: Killed(child),
        stderr,
    }
}

/// The whole plant for an end-to-end test: `jitgate up` (sample inventory, optionally a
/// policy directory), the Rust simulated PLC behind plc-7 (register n holds n), a pymodbus
/// PLC behind plc-3, `jitgate gateway` as gw-north, and alice, bob and sam logged in.
pub(crate) struct Plant {
    rt: tokio::runtime::Runtime,
    pub(crate) plc: jitgate_gateway::modbus::sim::SimPlc,
    /// `None` while stopped ([`Plant::stop_server`]).
    up: Option<Up>,
    policies: Option<std::path::PathBuf>,
    pub(crate) cli: Cli,
    py_port: u16,
    gw: Option<Killed>,
    /// The running gateway's stderr (its warnings name why a tunnel was refused).
    gw_log: Option<crate::quickstart::Drained>,
    gw_config: std::path::PathBuf,
    gw_port: u16,
    _py_plc: Option<Killed>,
    _tmp: tempfile::TempDir,
}

impl Plant {
    /// What `jitgate connect` and the gateway said, and the grant's session events: for
    /// the message of a failed assertion about a session.
    pub(crate) fn diagnosis(&self, grant: &str, connected: &Connected) -> String {
        let events = self
            .cli
            .json("sam", &["events", "--grant", grant, "--limit", "500"]);
        let sessions: Vec<&Value> = events
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                e["kind"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("session."))
            })
            .collect();
        format!(
            "jitgate connect said:\n{}\ngateway said:\n{}\nsession events: {sessions:#?}",
            connected.log(),
            self.gw_log.as_ref().map(|l| l.text()).unwrap_or_default()
        )
    }

    fn start(policies: Option<&Path>) -> Plant {
        Self::start_with(policies, true)
    }

    /// `with_python`: false leaves plc-3 without a device (for tests that need no pymodbus).
    pub(crate) fn start_with(policies: Option<&Path>, with_python: bool) -> Plant {
        Self::start_custom(policies, with_python, |inventory| inventory, "")
    }

    /// As [`Plant::start_with`], with the sample inventory edited by `inventory` and
    /// `gateway_toml` appended to the gateway's configuration.
    pub(crate) fn start_custom(
        policies: Option<&Path>,
        with_python: bool,
        inventory: impl Fn(String) -> String,
        gateway_toml: &str,
    ) -> Plant {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let plc = rt
            .block_on(jitgate_gateway::modbus::sim::start(
                "127.0.0.1:0".parse().unwrap(),
                vec![1],
            ))
            .unwrap();
        let plc_addr = plc.local_addr();
        for n in 0..200u16 {
            plc.set_holding(1, n, n);
        }
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let up = Up::start_with(&data, free_port(), policies);
        let creds: toml::Value = toml::from_str(
            &std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap(),
        )
        .unwrap();
        let pw = |who: &str| creds["passwords"][who].as_str().unwrap().to_string();
        let cli = Cli {
            server: up.server.clone(),
            dir: tmp.path().to_path_buf(),
        };
        for who in ["alice", "bob", "sam"] {
            cli.login(who, &pw(who));
        }
        // A pymodbus server as a second simulated PLC, behind plc-3.
        let py_port = free_port();
        let py_plc = with_python.then(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/plc_server.py");
            let mut py_plc = Command::new(python())
                .arg(script)
                .arg(py_port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            wait_port(py_port, &mut py_plc, "pymodbus PLC");
            Killed(py_plc)
        });
        let plant = include_str!("../../../../examples/plant.toml")
            .replace("127.0.0.1:5020", &plc_addr.to_string())
            .replace("127.0.0.1:5021", &format!("127.0.0.1:{py_port}"));
        let inv = tmp.path().join("plant.toml");
        std::fs::write(&inv, inventory(plant)).unwrap();
        cli.ok("sam", &["inventory", "load", inv.to_str().unwrap()]);
        // The gateway, with its API key from the quickstart.
        let gw_port = free_port();
        let gw_config = tmp.path().join("gateway.toml");
        std::fs::write(
            &gw_config,
            format!(
                "server = \"{}\"\napi_key = \"{}\"\nlisten = \"127.0.0.1:{gw_port}\"\nstate_dir = \"{}\"\n{gateway_toml}\n",
                up.server,
                creds["api_keys"]["gw-north"].as_str().unwrap(),
                tmp.path().join("gw").display()
            ),
        )
        .unwrap();
        let mut plant = Plant {
            rt,
            plc,
            up: Some(up),
            policies: policies.map(Path::to_path_buf),
            cli,
            py_port,
            gw: None,
            gw_log: None,
            gw_config,
            gw_port,
            _py_plc: py_plc,
            _tmp: tmp,
        };
        plant.start_gateway();
        plant
    }

    /// The gateway's configuration file.
    pub(crate) fn gw_config(&self) -> &Path {
        &self.gw_config
    }

    pub(crate) fn start_gateway(&mut self) {
        // JITGATE_TEST_GATEWAY_LOG=<file>: the gateway's log there (for debugging a test).
        let stderr = match std::env::var_os("JITGATE_TEST_GATEWAY_LOG") {
            Some(f) => Stdio::from(std::fs::File::create(f).unwrap()),
            None => Stdio::piped(),
        };
        let mut gw = Command::new(BIN)
            .args(["gateway", "--config", self.gw_config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        self.gw_log = Some(wait_port(self.gw_port, &mut gw, "jitgate gateway"));
        self.gw = Some(Killed(gw));
        // Listening comes before the announcement to the server: wait until the server
        // knows the gateway (its control channel is up, which follows the announcement).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let gateways = self.cli.json("sam", &["gateways"]);
            let up = gateways
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["id"] == "gw-north" && g["control_connected"] == true);
            if up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "gw-north never connected: {gateways}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL the gateway: no shutdown of any kind.
    pub(crate) fn kill_gateway(&mut self) {
        self.gw = None;
    }

    /// Stop the server (SIGTERM); its data stays for [`Plant::restart_server`].
    pub(crate) fn stop_server(&mut self) {
        if let Some(up) = self.up.take() {
            up.stop();
        }
    }

    /// Start the server again on its data and port.
    pub(crate) fn restart_server(&mut self) {
        assert!(self.up.is_none(), "the server is running");
        let port: u16 = self.cli.server.rsplit(':').next().unwrap().parse().unwrap();
        let data = self._tmp.path().join("data");
        self.up = Some(Up::start_with(&data, port, self.policies.as_deref()));
    }

    pub(crate) fn stop(self) {
        drop(self.gw);
        if let Some(up) = self.up {
            up.stop();
        }
        self.rt.block_on(self.plc.shutdown());
    }
}

#[test]
fn modbus_is_enforced_inside_the_protocol_with_real_peers() {
    if !have_pymodbus() {
        skip("python3 with pymodbus (pip install pymodbus)");
        return;
    }
    let p = Plant::start(None);
    let (plc, cli, py_port) = (&p.plc, &p.cli, p.py_port);

    let grant = granted(cli, "1h");
    // Only the subject can obtain the grant's credential.
    let bob = cli.run(
        "bob",
        &[
            "connect",
            &grant,
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ],
        None,
    );
    assert_eq!(bob.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bob.stderr).contains("only its subject"),
        "{}",
        String::from_utf8_lossy(&bob.stderr)
    );

    let local = free_port();
    let _connect = connect(cli, &grant, local);
    let before_5 = plc.read_holding(1, 5);
    let r = client(local, "in_scope");
    // In scope: the device's real values (the simulated PLC holds n at register n).
    assert_eq!(
        r["read_holding_0_9"]["ok"],
        serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        "{r}"
    );
    assert_eq!(
        r["read_holding_90_99"]["ok"],
        serde_json::json!([90, 91, 92, 93, 94, 95, 96, 97, 98, 99]),
        "{r}"
    );
    // A write on a read grant: ILLEGAL FUNCTION, and the PLC never saw it.
    assert_eq!(r["write_register_5"]["exception"], 1, "{r}");
    assert_eq!(plc.read_holding(1, 5), before_5);
    // Beyond the granted range: ILLEGAL DATA ADDRESS; another table: ILLEGAL FUNCTION.
    assert_eq!(r["read_holding_95_104"]["exception"], 2, "{r}");
    assert_eq!(r["read_coils_0"]["exception"], 1, "{r}");

    if have_mbpoll() {
        let out = Command::new("mbpoll")
            .args([
                "-m",
                "tcp",
                "-a",
                "1",
                "-t",
                "4",
                "-r",
                "11",
                "-c",
                "3",
                "-1",
                "-p",
                &local.to_string(),
                "127.0.0.1",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("[11]: \t10") && text.contains("[13]: \t12"),
            "mbpoll read through the gateway: {text}"
        );
        let out = Command::new("mbpoll")
            .args([
                "-m",
                "tcp",
                "-a",
                "1",
                "-t",
                "4",
                "-r",
                "6",
                "-1",
                "-p",
                &local.to_string(),
                "127.0.0.1",
                "777",
            ])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success() || text.to_lowercase().contains("illegal function"),
            "mbpoll write refused: {text}"
        );
        assert_eq!(plc.read_holding(1, 5), before_5);
    } else {
        skip("mbpoll (apt-get install mbpoll)");
    }

    // Every operation reached the evidence log, allowed and denied alike.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = cli.json("sam", &["events", "--grant", &grant, "--limit", "500"]);
        let ops: Vec<&Value> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "operation")
            .collect();
        let denied = ops
            .iter()
            .filter(|e| e["data"]["detail"]["allowed"] == false)
            .count();
        if ops.len() >= 5 && denied >= 3 {
            let write = ops
                .iter()
                .find(|e| e["data"]["detail"]["function"] == 6)
                .expect("the refused write is recorded");
            assert_eq!(write["data"]["detail"]["exception"], 1);
            assert!(events
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "session.started"));
            assert!(events
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "credential.issued"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "operations not recorded: {events}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The same through the gateway to the pymodbus PLC (plc-3).
    let req = cli.json(
        "alice",
        &[
            "request",
            "--asset",
            "plc-3",
            "--modbus",
            "read holding 0-99 unit 1",
            "--for",
            "1h",
            "--reason",
            "gateway test",
            "--ref",
            "WO-8",
        ],
    );
    let approved = cli.json("bob", &["approve", req["id"].as_str().unwrap()]);
    let py_grant = approved["grant"]["id"].as_str().unwrap().to_string();
    let local3 = free_port();
    let _c3 = connect(cli, &py_grant, local3);
    let r = client(local3, "in_scope");
    assert_eq!(
        r["read_holding_0_9"]["ok"],
        serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        "{r}"
    );
    assert_eq!(r["write_register_5"]["exception"], 1, "{r}");
    assert_eq!(r["read_holding_95_104"]["exception"], 2, "{r}");
    // Read the pymodbus PLC directly: the refused write never reached it.
    let direct = client(py_port, "in_scope");
    assert_eq!(direct["read_holding_0_9"]["ok"][5], 5, "{direct}");

    // Expiry at the edge: a 20-second grant cuts a client that keeps reading.
    let short = granted(cli, "20s");
    let local2 = free_port();
    let _c2 = connect(cli, &short, local2);
    let r = client(local2, "hold");
    assert!(r["reads"].as_u64().unwrap() > 3, "{r}");
    assert!(
        r["after_s"].as_f64().unwrap() < 25.0,
        "the session ended at expiry: {r}"
    );

    drop(_connect);
    p.stop();
}

/// A pymodbus client reading every 100 ms through `jitgate connect`, on its own thread.
/// A pymodbus client reading through `port` every 100 ms until its connection is cut.
pub(crate) struct Holding {
    reading: std::sync::mpsc::Receiver<()>,
    done: std::thread::JoinHandle<Value>,
}

impl Holding {
    /// Wait (at most 60 s) until the client has read three times through the tunnel, so that
    /// what the test does next (revoke, disable, kill) happens to a live session. Returns
    /// early if the client ended before that; `join` then says why.
    pub(crate) fn wait_reading(&self) {
        let _ = self.reading.recv_timeout(Duration::from_secs(60));
    }

    /// The client's report: `reads`, `ended` (how the connection ended), `after_s`.
    pub(crate) fn join(self) -> Value {
        self.done.join().unwrap()
    }
}

pub(crate) fn holding_client(port: u16) -> Holding {
    use std::io::BufRead;
    let (tx, reading) = std::sync::mpsc::channel();
    let done = std::thread::spawn(move || {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/grant_client.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .arg("hold")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = crate::quickstart::Drained::new(child.stderr.take());
        let mut last = String::new();
        for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if line == "reading" {
                let _ = tx.send(());
            } else {
                last = line;
            }
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "grant_client.py: {}", stderr.finish());
        serde_json::from_str(&last).unwrap_or_else(|e| panic!("grant_client.py said {last:?}: {e}"))
    });
    Holding { reading, done }
}

/// The verdict of a grant's teardown, polled until final (or failed after 30 s).
pub(crate) fn teardown_verdict(cli: &Cli, grant: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = cli.json("sam", &["teardown", grant]);
        if t["verdict"] == want {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "teardown of {grant} never became {want}: {t:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The client was mid-stream and got cut; its token is then refused by the gateway's
/// revocation list; the teardown is verified. `expired`: `jitgate connect` itself closes its
/// port at the token's expiry, so there is no reconnection through it to try.
fn assert_cut_refused_verified(
    p: &Plant,
    grant: &str,
    (local, connected): (u16, &Connected),
    reader: Holding,
    expired: bool,
) {
    let r = reader.join();
    assert!(
        r["reads"].as_u64().unwrap() >= 3,
        "the client was reading: {r}\n{}",
        p.diagnosis(grant, connected)
    );
    assert_ne!(r["ended"], "still open after 120 s", "{r}");
    let again = client(local, "once");
    if expired {
        assert_ne!(again["ok"], true, "{again}");
    } else {
        // Reconnecting through the same `jitgate connect` (same token): refused.
        assert_eq!(again["ok"], false, "{again}");
    }
    let t = teardown_verdict(&p.cli, grant, "verified");
    let by_check = |name: &str| {
        t["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing in {t:#}"))
    };
    assert_eq!(by_check("sessions_closed")["outcome"], "ok", "{t:#}");
    assert!(
        !by_check("sessions_closed")["evidence"]["sessions"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{t:#}"
    );
    assert_eq!(
        by_check("credential_refused")["evidence"]["refusal_code"],
        "grant_revoked"
    );
    if expired {
        return;
    }
    // The client's own token was refused on reconnection, recorded with its fingerprint.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = p
            .cli
            .json("sam", &["events", "--grant", grant, "--limit", "500"]);
        let events = events.as_array().unwrap();
        let issued: Vec<&Value> = events
            .iter()
            .filter(|e| e["kind"] == "credential.issued")
            .map(|e| &e["data"]["token_fingerprint"])
            .collect();
        let refused_own = events.iter().any(|e| {
            e["kind"] == "session.refused"
                && e["data"]["detail"]["code"] == "grant_revoked"
                && issued.contains(&&e["data"]["detail"]["token_fingerprint"])
        });
        if refused_own {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal of the subject's own token recorded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn live_sessions_are_cut_when_grants_end_and_the_teardown_is_verified() {
    if !have_pymodbus() {
        skip("python3 with pymodbus (pip install pymodbus)");
        return;
    }
    // The default policies in a directory of our own, to change and reload them.
    let policies = tempfile::tempdir().unwrap();
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")).unwrap()
    {
        let path = entry.unwrap().path();
        std::fs::copy(&path, policies.path().join(path.file_name().unwrap())).unwrap();
    }
    let mut p = Plant::start(Some(policies.path()));

    // (i) Revoked while the client reads.
    let grant = granted(&p.cli, "1h");
    let local = free_port();
    let c = connect(&p.cli, &grant, local);
    let reader = holding_client(local);
    reader.wait_reading();
    p.cli.ok(
        "sam",
        &["revoke", &grant, "--reason", "contractor left the site"],
    );
    assert_cut_refused_verified(&p, &grant, (local, &c), reader, false);

    // (ii) Expires while the client reads.
    let grant = granted(&p.cli, "20s");
    let local = free_port();
    let c = connect(&p.cli, &grant, local);
    let r = holding_client(local);
    assert_cut_refused_verified(&p, &grant, (local, &c), r, true);

    // (iii) The subject is disabled while the client reads.
    let grant = granted(&p.cli, "1h");
    let local = free_port();
    let c = connect(&p.cli, &grant, local);
    let reader = holding_client(local);
    reader.wait_reading();
    p.cli.ok(
        "sam",
        &[
            "identities",
            "disable",
            "alice",
            "--reason",
            "badge reported stolen",
        ],
    );
    assert_cut_refused_verified(&p, &grant, (local, &c), reader, false);
    p.cli.ok("sam", &["identities", "enable", "alice"]);

    // (iv) A policy reload takes the permission away while the client reads.
    let grant = granted(&p.cli, "1h");
    let local = free_port();
    let c = connect(&p.cli, &grant, local);
    let reader = holding_client(local);
    reader.wait_reading();
    std::fs::write(
        policies.path().join("90-freeze.cedar"),
        "@id(\"change-freeze-plc-7\")\n@reason(\"change freeze on plc-7\")\nforbid (principal, action, resource == Jitgate::Asset::\"plc-7\");\n",
    )
    .unwrap();
    p.cli.ok("sam", &["policy", "reload"]);
    assert_cut_refused_verified(&p, &grant, (local, &c), reader, false);
    std::fs::remove_file(policies.path().join("90-freeze.cedar")).unwrap();
    p.cli.ok("sam", &["policy", "reload"]);

    // A gateway killed during a revocation: the teardown waits for it (no verdict, no
    // alert), then is `verified` once it is back, without a `failed` attempt.
    let grant = granted(&p.cli, "1h");
    let local = free_port();
    let c = connect(&p.cli, &grant, local);
    assert_eq!(client(local, "once")["ok"], true);
    // A session is live when the gateway dies.
    let reader = holding_client(local);
    reader.wait_reading();
    p.gw = None; // SIGKILL
    let r = reader.join();
    assert!(
        r["reads"].as_u64().unwrap() >= 3,
        "{r}\n{}",
        p.diagnosis(&grant, &c)
    );
    p.cli.ok("sam", &["revoke", &grant, "--reason", "incident"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let t = loop {
        let t = p.cli.json("sam", &["teardown", &grant]);
        if t["waiting_for"] == "gateways" {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "never waited for the gateway: {t:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(t["grant_state"], "ending", "{t:#}");
    assert_eq!(t["verdict"], "pending", "{t:#}");
    let text = p.cli.ok("sam", &["teardown", &grant]);
    assert!(text.contains("waiting for a gateway"), "{text}");
    let failed = p.cli.json("sam", &["grants", "--state", "failed"]);
    assert!(failed.as_array().unwrap().is_empty(), "{failed:#}");
    p.start_gateway();
    teardown_verdict(&p.cli, &grant, "verified");
    let failed = p.cli.json("sam", &["grants", "--state", "failed"]);
    assert!(failed.as_array().unwrap().is_empty(), "{failed:#}");
    // The restarted gateway recorded the end of the session the killed process held.
    let events = p
        .cli
        .json("sam", &["events", "--grant", &grant, "--limit", "500"]);
    let restarted = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["kind"] == "session.ended" && e["data"]["detail"]["reason"] == "gateway_restarted"
        })
        .count();
    assert_eq!(restarted, 1, "{events:#}");
    let failures: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            (e["kind"] == "teardown.check" && e["data"]["outcome"] != "ok")
                || (e["kind"] == "teardown.verdict" && e["data"]["verdict"] == "failed")
        })
        .collect();
    assert!(failures.is_empty(), "no failed attempt: {failures:#?}");
    p.stop();
}
