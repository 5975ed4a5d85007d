use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_jitgate");

pub use crate::ports::free_port;

/// A child's pipe read to its end on a thread of its own: a server or gateway that logs while
/// a test runs must never block on a full pipe (its event delivery or requests would stall).
/// The text is kept (the last MiB) for messages and assertions.
pub struct Drained {
    text: Arc<Mutex<String>>,
    done: Option<std::thread::JoinHandle<()>>,
}

impl Drained {
    pub fn new<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> Drained {
        let text = Arc::new(Mutex::new(String::new()));
        let done = pipe.map(|mut pipe| {
            let sink = text.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    let mut t = sink.lock().unwrap();
                    t.push_str(&String::from_utf8_lossy(&chunk[..n]));
                    if t.len() > 2 << 20 {
                        let mut cut = t.len() - (1 << 20);
                        while !t.is_char_boundary(cut) {
                            cut += 1;
                        }
                        t.drain(..cut);
                    }
                }
            })
        });
        Drained { text, done }
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Wait for the end of the pipe (the child exited), then everything read.
    pub fn finish(mut self) -> String {
        if let Some(done) = self.done.take() {
            let _ = done.join();
        }
        self.text()
    }
}

pub struct Up {
    /// `None` once stopped.
    child: Option<Child>,
    stdout: Option<Drained>,
    stderr: Option<Drained>,
    pub server: String,
}

/// A test that fails half-way must not leave a server running.
impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Up {
    pub fn start(data_dir: &Path, port: u16) -> Up {
        Self::start_with(data_dir, port, None)
    }

    /// With `--policies <dir>` when given.
    pub fn start_with(data_dir: &Path, port: u16, policies: Option<&Path>) -> Up {
        Self::start_with_env(data_dir, port, policies, &[])
    }

    /// With environment variables for the server (configuration overrides).
    pub fn start_with_env(
        data_dir: &Path,
        port: u16,
        policies: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Up {
        let mut cmd = Command::new(BIN);
        cmd.envs(env.iter().copied());
        cmd.args([
            "up",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]);
        if let Some(dir) = policies {
            cmd.arg("--policies").arg(dir);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn jitgate up");
        let stdout = Drained::new(child.stdout.take());
        let stderr = Drained::new(child.stderr.take());
        let server = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            // The bootstrap credentials are written after the server starts listening.
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && data_dir.join("bootstrap-credentials.toml").exists()
            {
                return Up {
                    child: Some(child),
                    stdout: Some(stdout),
                    stderr: Some(stderr),
                    server,
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "jitgate up did not come up on port {port}: {}",
            stderr.finish()
        );
    }

    pub fn stop(mut self) -> String {
        let child = self.child.take().unwrap();
        // SIGTERM (graceful) via kill(1); wait for the exit.
        let mut child = child;
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
        let _ = self.stderr.take().map(Drained::finish);
        self.stdout.take().map(Drained::finish).unwrap_or_default()
    }
}

/// `jitgate serve --config FILE` listening on `port`, killed when dropped.
pub struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `jitgate serve` with this configuration file and wait until it listens.
pub fn serve_config(file: &Path, port: u16) -> Serve {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(file)
        .env("JITGATE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("jitgate serve exited: {status}");
        }
        assert!(Instant::now() < deadline, "jitgate serve did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    Serve(child)
}

pub struct Cli {
    pub server: String,
    pub dir: PathBuf,
}

impl Cli {
    pub fn run(&self, who: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--server")
            .arg(&self.server)
            .arg("--profile")
            .arg(self.dir.join(format!("{who}.toml")))
            .args(args)
            .env_remove("JITGATE_TOKEN")
            .env_remove("JITGATE_SERVER")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    pub fn ok(&self, who: &str, args: &[&str]) -> String {
        let out = self.run(who, args, None);
        assert!(
            out.status.success(),
            "jitgate {args:?} as {who} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, who: &str, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(who, &all)).unwrap()
    }

    pub fn login(&self, who: &str, password: &str) {
        let out = self.run(
            who,
            &["login", "--identity", who, "--password-stdin"],
            Some(&format!("{password}\n")),
        );
        assert!(
            out.status.success(),
            "login {who}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn quickstart_walkthrough_through_the_real_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("jitgate-data");
    let port = free_port();
    let up = Up::start(&data, port);
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("bootstrap-credentials.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "bootstrap credentials are owner-only");
    }
    let pw = |who: &str| creds["passwords"][who].as_str().unwrap().to_string();
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };

    cli.login("alice", &pw("alice"));
    cli.login("bob", &pw("bob"));
    cli.login("sam", &pw("sam"));

    // 1. alice requests (the table output names the state and the policy).
    let text = cli.ok(
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
    assert!(text.contains("pending"), "{text}");
    let mine = cli.json("alice", &["requests", "--mine"]);
    let req = &mine[0];
    let id = req["id"].as_str().unwrap().to_string();
    assert_eq!(req["reference"], "WO-1234");

    // 2. bob sees it waiting for him and approves.
    let inbox = cli.ok("bob", &["requests", "--awaiting-me"]);
    assert!(inbox.contains(&id), "{inbox}");
    let own = cli.run("alice", &["approve", &id], None);
    assert_eq!(
        own.status.code(),
        Some(1),
        "approving your own request is refused"
    );
    assert!(String::from_utf8_lossy(&own.stderr).contains("separation_of_duties"));
    let approved = cli.json("bob", &["approve", &id, "--comment", "ok for WO-1234"]);
    assert_eq!(approved["state"], "active", "{approved}");
    let grant_id = approved["grant"]["id"].as_str().unwrap().to_string();

    // 3. the grant is listed; 4. security revokes it and the events show every step.
    let grants = cli.ok("alice", &["grants"]);
    assert!(
        grants.contains(&grant_id) && grants.contains("active"),
        "{grants}"
    );
    cli.ok(
        "sam",
        &["revoke", &grant_id, "--reason", "walkthrough finished"],
    );
    let g = cli.json("alice", &["grant", &grant_id]);
    assert_eq!(g["state"], "ending");
    let events = cli.json("sam", &["events", "--request", &id]);
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "request.submitted",
            "request.decided",
            "approval.recorded",
            "request.approved",
            "grant.issued",
            "grant.ended"
        ]
    );
    let chain = cli.json("sam", &["evidence", "chain"]);
    assert_eq!(chain["ok"], true);

    // A denied request exits 1 and says which rule said no.
    let denied = cli.run(
        "alice",
        &[
            "request",
            "--asset",
            "plc-7",
            "--modbus",
            "write coil 1 unit 1",
            "--for",
            "1h",
            "--reason",
            "x",
            "--path",
            "emergency",
            "--subject",
            "svc-historian",
        ],
        None,
    );
    assert_eq!(
        denied.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&denied.stdout)
    );

    let printed = up.stop();
    assert!(
        printed.contains("Walkthrough"),
        "up prints the walkthrough: {printed}"
    );

    // A second `up` on the same data keeps everything and the same passwords.
    let up = Up::start(&data, port);
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    let g = cli.json("alice", &["grant", &grant_id]);
    assert_eq!(g["end_reason"]["kind"], "revoked");
    cli.login("bob", &pw("bob"));
    up.stop();
}

#[test]
fn check_validates_without_starting_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("inv.toml");
    std::fs::write(&inv, include_str!("../../../../examples/plant.toml")).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--inventory", inv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("policies: ok") && text.contains("inventory: ok"),
        "{text}"
    );

    std::fs::write(&inv, "[[asset]]\nid = \"x\"\nkind = \"plc\"\nsite = \"nowhere\"\ncriticality = \"low\"\nenforcement = \"brokered\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["check", "--inventory", inv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("site nowhere"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_port"));

    let pol = tmp.path().join("policies");
    std::fs::create_dir(&pol).unwrap();
    std::fs::write(
        pol.join("a.cedar"),
        "@id(\"a\")\npermit (principal, action, resource)\nwhen { resource.colour == \"red\" };\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--policies", pol.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a.cedar"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn policy_test_runs_the_shipped_scenarios() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(BIN)
        .args([
            "policy",
            "test",
            root.join("policies/scenarios.toml").to_str().unwrap(),
            "--policies",
            root.join("policies").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("0 failed"), "{text}");
}
