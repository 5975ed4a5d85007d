//! Several `jitgate serve` nodes on one PostgreSQL database as real processes
//! (docs/cluster.md): their configuration files, the first administrator from `jitgate
//! bootstrap`, the shared `cluster.key`, start (ready when `/readyz` says so), SIGKILL and
//! restart; a `jitgate gateway` attached to one node with the others to fail over to; the
//! few API calls that set people up.
//!
//! One place for the multi-node tests (`cluster.rs`, `cluster_kill.rs`) and the cluster
//! benchmark (`benches/cluster.rs`, through `benches/support`, which includes this file), so
//! it uses nothing of either: std, reqwest and serde_json only.

#![allow(dead_code, reason = "each user takes the part it needs")]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_jitgate");

/// How long a process may take to listen (debug builds on a loaded 2-core machine).
const START_WITHIN: Duration = Duration::from_secs(60);

pub use super::ports::free_port;

/// `examples/plant.toml` in `dir` with plc-7 at `plc` (the simulated PLC): the inventory
/// every node loads.
pub fn inventory(dir: &Path, plc: std::net::SocketAddr) -> PathBuf {
    let path = dir.join("plant.toml");
    std::fs::write(
        &path,
        include_str!("../../../../examples/plant.toml").replace("127.0.0.1:5020", &plc.to_string()),
    )
    .unwrap();
    path
}

/// One `jitgate serve` node: its configuration and data directory persist across restarts;
/// its stderr is appended to `<id>.log` beside them (shown when it fails to start). Killed
/// (SIGKILL) when dropped.
pub struct Node {
    pub id: String,
    pub port: u16,
    pub config: PathBuf,
    pub data: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

impl Node {
    /// A node of database `db` in `dir`. `tables` is more configuration, whole TOML tables
    /// (e.g. `"[limits]\nmax_open_requests = 100000\n"`).
    pub fn new(dir: &Path, id: &str, db: &str, inventory: &Path, tables: &str) -> Node {
        let port = free_port();
        let data = dir.join(id);
        let config = dir.join(format!("{id}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\ndatabase_url = \"{db}\"\n\
                 inventory = \"{}\"\nteardown_timeout = \"5s\"\n[cluster]\nnode_id = \"{id}\"\n\
                 {tables}",
                data.display(),
                inventory.display()
            ),
        )
        .unwrap();
        Node {
            id: id.to_string(),
            port,
            config,
            data,
            log: dir.join(format!("{id}.log")),
            process: None,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Start (or restart) the node and wait until `/readyz` answers 200: its database
    /// answers and it listens for the other nodes.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--config", self.config.to_str().unwrap()])
            .env("JITGATE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready: {}",
                    self.id,
                    self.log_text()
                );
            }
            if http_get(self.port, "/readyz").is_some_and(|(status, _)| status == 200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready: {}",
                self.id,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.process = Some(child);
    }

    /// SIGKILL: no shutdown of any kind, as a machine or process dying.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `jitgate bootstrap` with `admin` as the first administrator, on `node`'s configuration.
pub fn bootstrap(node: &Node, admin: &str) -> Output {
    Command::new(BIN)
        .args(["bootstrap", "--config", node.config.to_str().unwrap()])
        .args(["--admin", admin])
        .output()
        .unwrap()
}

/// Copy the cluster key — the one secret an operator copies — from one node's data
/// directory to another's, owner-only, before the other first starts (docs/cluster.md, "Keys").
pub fn share_cluster_key(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = to.join("cluster.key");
    std::fs::copy(from.join("cluster.key"), &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Nodes `ids` on database `db`, all started: `sam` bootstrapped as the first administrator
/// on the first, which starts first; the others get its cluster key. Returns the nodes and
/// sam's password.
pub fn start_cluster(
    dir: &Path,
    db: &str,
    inventory: &Path,
    ids: &[&str],
    tables: &str,
) -> (Vec<Node>, String) {
    let mut nodes: Vec<Node> = ids
        .iter()
        .map(|id| Node::new(dir, id, db, inventory, tables))
        .collect();
    let first = bootstrap(&nodes[0], "sam");
    assert!(
        first.status.success(),
        "bootstrap: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let password = String::from_utf8(first.stdout).unwrap().trim().to_string();
    nodes[0].start();
    let key_dir = nodes[0].data.clone();
    for node in &mut nodes[1..] {
        share_cluster_key(&key_dir, &node.data);
        node.start();
    }
    (nodes, password)
}

/// Poll `check` until it gives a value, at most `within`; panics naming `what` after that.
pub fn wait_for<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plain HTTP GET on loopback: `(status, body)`, `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// How an API call went wrong: no answer at all (the node is down, or died during the call:
/// the call's effect is unknown), or an answer that is not a success.
#[derive(Debug)]
pub enum CallError {
    NoAnswer(String),
    Refused(u16, Value),
}

/// One API call (`path` under `/api/v1`) with a bearer token; a JSON body for POST.
pub async fn call(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Value,
) -> Result<Value, CallError> {
    let url = format!("{base}/api/v1{path}");
    let mut req = if method == "GET" {
        http.get(url)
    } else {
        http.post(url).json(&body)
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| CallError::NoAnswer(e.to_string()))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| CallError::NoAnswer(e.to_string()))?;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        Ok(v)
    } else {
        Err(CallError::Refused(status.as_u16(), v))
    }
}

/// Sign `who` in on `base`: the token.
pub async fn login(http: &reqwest::Client, base: &str, who: &str, password: &str) -> String {
    let v = call(
        http,
        base,
        None,
        "POST",
        "/auth/login",
        json!({"identity": who, "password": password}),
    )
    .await
    .unwrap_or_else(|e| panic!("login {who}: {e:?}"));
    v["token"].as_str().unwrap().to_string()
}

/// The password the people of the sample inventory get from [`people`].
pub const PASSWORD: &str = "a long test password 1";

/// As sam (`sam_password`) on `base`: give `who` [`PASSWORD`] and sign each in there;
/// returns their tokens, in order, sam's last.
pub async fn people(
    http: &reqwest::Client,
    base: &str,
    sam_password: &str,
    who: &[&str],
) -> Vec<String> {
    let sam = login(http, base, "sam", sam_password).await;
    let mut tokens = Vec::new();
    for id in who {
        call(
            http,
            base,
            Some(&sam),
            "POST",
            &format!("/identities/{id}/password"),
            json!({ "password": PASSWORD }),
        )
        .await
        .unwrap_or_else(|e| panic!("password of {id}: {e:?}"));
        tokens.push(login(http, base, id, PASSWORD).await);
    }
    tokens.push(sam);
    tokens
}

/// A `jitgate gateway` process (gw-north, fronting plc-7 of the sample inventory): its
/// configuration and state directory persist across restarts; its stderr is appended to
/// `gateway.log`. Killed (SIGKILL) when dropped.
pub struct Gateway {
    pub port: u16,
    pub metrics_port: u16,
    config: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

impl Gateway {
    /// Mint gw-north an API key with sam's `sam` token on `nodes[0]`, and start it attached
    /// to `nodes[0]` with the others as `failover_servers`, in order. `tables`: more
    /// configuration (whole TOML tables). Returns once it listens.
    pub async fn start(
        http: &reqwest::Client,
        dir: &Path,
        nodes: &[String],
        sam: &str,
        tables: &str,
    ) -> Gateway {
        let key = call(
            http,
            &nodes[0],
            Some(sam),
            "POST",
            "/api-keys",
            json!({"identity": "gw-north", "name": "cluster"}),
        )
        .await
        .unwrap_or_else(|e| panic!("gateway API key: {e:?}"));
        let (port, metrics_port) = (free_port(), free_port());
        let config = dir.join("gateway.toml");
        let failover: Vec<String> = nodes[1..].iter().map(|n| format!("\"{n}\"")).collect();
        std::fs::write(
            &config,
            format!(
                "server = \"{}\"\nfailover_servers = [{}]\napi_key = \"{}\"\n\
                 listen = \"127.0.0.1:{port}\"\nstate_dir = \"{}\"\n\
                 metrics_listen = \"127.0.0.1:{metrics_port}\"\n{tables}",
                nodes[0],
                failover.join(", "),
                key["key"].as_str().unwrap(),
                dir.join("gw").display()
            ),
        )
        .unwrap();
        let mut gw = Gateway {
            port,
            metrics_port,
            config,
            log: dir.join("gateway.log"),
            process: None,
        };
        gw.restart();
        gw
    }

    /// Start the process (again, on the same configuration and state directory); returns
    /// once it listens.
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "the gateway is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut process = Command::new(BIN)
            .args(["gateway", "--config", self.config.to_str().unwrap()])
            .env("JITGATE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + START_WITHIN;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = process.try_wait() {
                panic!("jitgate gateway exited ({status}): {}", self.log_text());
            }
            assert!(Instant::now() < deadline, "jitgate gateway did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.process = Some(process);
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.as_ref().map(Child::id).unwrap_or_default()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The node `gateway` is attached to, as `base` sees it (`GET /gateways`, `attached_to`).
pub async fn attached_to(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    gateway: &str,
) -> Option<String> {
    let list = call(http, base, Some(token), "GET", "/gateways", Value::Null)
        .await
        .ok()?;
    list.as_array()?
        .iter()
        .find(|g| g["id"] == gateway)?
        .get("attached_to")?
        .as_str()
        .map(str::to_string)
}
