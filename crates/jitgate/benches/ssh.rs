//! SSH through the gateway against OpenSSH's own paths, in one run on loopback:
//!   (1) **direct**: `ssh` to the asset's `/usr/sbin/sshd`;
//!   (2) **`ssh -J`**: OpenSSH's jump host, through a second `sshd` (`AllowTcpForwarding`);
//!   (3) **jitgate**: `ssh` with a `jitgate ssh cert` certificate to the real `jitgate
//!       gateway` (server: a real `jitgate up`), which checks the grant, opens its own SSH
//!       connection to the same sshd, enforces the scope and records the session.
//!
//! Measured, in this order:
//! - **memory per idle session**: 500 authenticated sessions, each with a terminal and a
//!   shell open, from this one process (a russh client; for `-J` an SSH connection to the
//!   jump host carrying a second SSH connection in a `direct-tcpip` channel). jitgate: the
//!   gateway process's RSS (and PSS) growth; OpenSSH: the new sshd processes' PSS and RSS
//!   (sshd forks per connection), on the jump host and on the asset (what a direct session
//!   costs: the asset's sshd process, which every path opens, so it is not run a third
//!   time). Measured first, on a gateway that has carried one session only, so the heap the
//!   stream test leaves behind cannot hide the sessions' cost;
//! - **keystroke echo round trip** with the OpenSSH client (`ssh -tt`): the remote shell is
//!   turned into `stty raw -echo; exec cat`, then one byte is written to `ssh`'s stdin and
//!   the time to read it back from its stdout is measured, one keystroke at a time (a 1 ms
//!   pause between keystrokes, as typing has), after a warm-up. The three paths' sessions
//!   are open together and take turns, keystroke by keystroke, so that whatever else the
//!   machine runs meanwhile falls on all three alike;
//! - **throughput** of a 256 MiB stream asset → client (`ssh <asset> cat <file>`; jitgate: a
//!   `command cat <file>` grant), with recording on. The file is random printable ASCII in
//!   80-column lines: the recording is JSON text, so zeros (or other control bytes) would
//!   measure JSON escaping (`\u0000`, 6 bytes per byte) rather than relaying. Then the
//!   recording the server received: its size per MiB of output, and how long after the
//!   stream ended its last chunk was stored; the CPU time per MiB of every process of each
//!   path (client, sshds, gateway, server) from the first byte until all were done.
//!
//! Before each step the gateway and the server are left to become idle (the previous
//! step's sessions ended, their recordings delivered). `JITGATE_SSH_BENCH_QUICK=1` runs a
//! small version (a check of the benchmark, not figures); `JITGATE_SSH_BENCH_ONLY=stream`
//! (or `idle`, `keys`, comma-separated) runs only those steps, e.g. under a profiler (the
//! server's and the gateway's pids are printed on stderr). `JITGATE_BENCH_SERVER_APART=1`
//! runs `jitgate up` alone on CPU 1 and everything else (clients, sshds, gateway) on CPU 0:
//! the server as deployed, on a host of its own (`support/layout.rs`).
//!
//! `cargo bench -p jitgate --bench ssh` (needs OpenSSH: `ssh`, `ssh-keygen`, `/usr/sbin/sshd`;
//! results in docs/BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_jitgate");
const PLANT: &str = include_str!("../../../examples/plant.toml");
const SSHD: &str = "/usr/sbin/sshd";

/// Sessions being opened at once (the gateway lets 8 per source authenticate at a time).
const OPENING: usize = 4;
const KEYSTROKE_GAP: Duration = Duration::from_millis(1);

/// How much is measured. `JITGATE_SSH_BENCH_QUICK=1`: a few seconds of each, to check the
/// benchmark itself (figures not meaningful).
#[derive(Clone, Copy)]
struct Sizes {
    /// Idle sessions held open at once on each path.
    idle_sessions: usize,
    keystrokes_warm: usize,
    keystrokes: usize,
    stream_mib: u64,
}

fn sizes() -> Sizes {
    if std::env::var("JITGATE_SSH_BENCH_QUICK").is_ok_and(|v| v == "1") {
        Sizes {
            idle_sessions: 20,
            keystrokes_warm: 20,
            keystrokes: 200,
            stream_mib: 16,
        }
    } else {
        Sizes {
            idle_sessions: 500,
            keystrokes_warm: 200,
            keystrokes: 5000,
            stream_mib: 256,
        }
    }
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[path = "../tests/it/ports.rs"]
mod ports;
use ports::free_port;
#[path = "support/layout.rs"]
mod layout;

fn wait_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{what} exited before listening"
        );
        assert!(
            Instant::now() < deadline,
            "{what} does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn account() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real sshd on 127.0.0.1:`port`, configured by `auth` lines, in `dir`.
fn sshd(dir: &Path, port: u16, auth: &str) -> Proc {
    // Privilege separation needs it; Debian creates it when its own sshd starts.
    let _ = std::fs::create_dir_all("/run/sshd");
    std::fs::create_dir_all(dir).unwrap();
    keygen(&dir.join("host_key"));
    let config = dir.join("sshd_config");
    // JITGATE_SSH_BENCH_SSHD_CIPHERS=chacha20-poly1305@openssh.com: the sshds accept only
    // that cipher. OpenSSH clients ask for it first anyway, so only the gateway's leg to the
    // asset changes — the gateway's cipher as it was before it asked for AES-GCM, measured
    // in the same session.
    let ciphers = std::env::var("JITGATE_SSH_BENCH_SSHD_CIPHERS")
        .map(|c| format!("Ciphers {c}\n"))
        .unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile none\nUsePAM no\n\
             StrictModes no\nPermitRootLogin yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n{auth}AllowTcpForwarding yes\nLogLevel ERROR\n\
             MaxStartups 100:30:200\nPrintMotd no\nPrintLastLog no\n{ciphers}",
            hk = dir.join("host_key").display(),
        ),
    )
    .unwrap();
    let mut child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port, &mut child, "sshd");
    Proc(child)
}

/// `jitgate --server … --token … <args>`; its stdout.
fn cli(base: &str, token: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["--server", base, "--token", token])
        .args(args)
        .env_remove("JITGATE_PROFILE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "jitgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn cli_json(base: &str, token: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&cli(base, token, &all)).unwrap()
}

async fn api(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Value,
) -> Value {
    let url = format!("{base}/api/v1{path}");
    let mut req = if method == "GET" {
        http.get(url)
    } else {
        http.post(url).json(&body)
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

// ---------------------------------------------------------------------------------------
// /proc readings

fn status_kib(pid: u32, field: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// Proportional set size: each shared page counted once, split among its sharers.
fn pss_kib(pid: u32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return 0;
    };
    text.lines()
        .find(|l| l.starts_with("Pss:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// (pid, ppid) of every process.
fn processes() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let ppid = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out.push((pid, ppid));
    }
    out
}

/// Every process below `root` (not `root` itself).
fn descendants(root: u32) -> Vec<u32> {
    descendants_in(&processes(), root)
}

/// Every process below `root` in `all` ((pid, ppid) pairs).
fn descendants_in(all: &[(u32, u32)], root: u32) -> Vec<u32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

/// CPU time of a process so far (user + system); with `children`, plus that of its
/// children it has waited for (which include theirs): what a finished sshd session cost.
fn cpu(pid: u32, children: bool) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // utime, stime, cutime, cstime are fields 14-17 (11-14 after the name).
    let mut ticks = f[11] + f[12];
    if children {
        ticks += f[13] + f[14];
    }
    // USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

/// CPU time of `root` and every process below it, including what their finished children
/// cost: a finished process's time is in its parent's `cutime` once reaped, so each is
/// counted once.
fn tree_cpu_in(all: &[(u32, u32)], root: u32) -> Duration {
    std::iter::once(root)
        .chain(descendants_in(all, root))
        .map(|p| cpu(p, true))
        .sum()
}

/// The command name of a process (`/proc/<pid>/comm`).
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

// ---------------------------------------------------------------------------------------
// Keystrokes and the stream, with the OpenSSH client

/// An `ssh -tt` session whose remote terminal echoes each byte it is sent.
struct Typist {
    _child: Proc,
    stdin: std::process::ChildStdin,
    stdout: std::process::ChildStdout,
}

impl Typist {
    /// Start `cmd` (an `ssh` command line to a shell) and wait until the remote side echoes.
    fn start(mut cmd: Command) -> Typist {
        let mut child = Proc(
            cmd.arg("-tt")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut stdin = child.0.stdin.take().unwrap();
        let mut stdout = child.0.stdout.take().unwrap();
        // The terminal in raw mode without echo, and `cat` echoing each byte it reads: every
        // keystroke goes to a process on the asset and back, as it does to a shell's line
        // editor. READY (spelled apart in the typed line, so its echo does not match) says
        // cat runs.
        stdin
            .write_all(b"stty raw -echo; printf 'REA''DY\\n'; exec cat\n")
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n = stdout.read(&mut buf).unwrap();
            assert!(n > 0, "the shell ended: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
            if let Some(at) = seen.windows(6).position(|w| w == b"READY\n") {
                assert_eq!(at + 6, seen.len(), "output after READY");
                break;
            }
            assert!(Instant::now() < deadline, "no READY");
        }
        Typist {
            _child: child,
            stdin,
            stdout,
        }
    }

    /// One keystroke: write `key`, read its echo; the round trip.
    fn key(&mut self, key: u8) -> Duration {
        let mut buf = [0u8; 64];
        let t = Instant::now();
        self.stdin.write_all(&[key]).unwrap();
        let n = self.stdout.read(&mut buf).unwrap();
        let took = t.elapsed();
        assert_eq!(&buf[..n], &[key], "echo of one keystroke");
        took
    }
}

/// Keystroke echo round trips (µs, sorted) through each of `cmds`, interleaved: one
/// keystroke on each path in turn, so that what else runs on the machine meanwhile falls on
/// every path alike.
fn keystrokes(cmds: Vec<Command>, z: Sizes) -> Vec<Vec<f64>> {
    let mut typists: Vec<Typist> = cmds.into_iter().map(Typist::start).collect();
    let mut lat = vec![Vec::with_capacity(z.keystrokes); typists.len()];
    for i in 0..z.keystrokes_warm + z.keystrokes {
        let key = b'a' + (i % 26) as u8;
        for (t, l) in typists.iter_mut().zip(lat.iter_mut()) {
            std::thread::sleep(KEYSTROKE_GAP);
            let took = t.key(key);
            if i >= z.keystrokes_warm {
                l.push(took.as_secs_f64() * 1e6);
            }
        }
    }
    for l in &mut lat {
        l.sort_by(f64::total_cmp);
    }
    lat
}

struct Streamed {
    /// Spawn to first byte: connection, authentication (and the gateway's checks), exec.
    setup: Duration,
    /// First byte to end of stream.
    transfer: Duration,
}

/// Run `cmd` (an `ssh` command printing the stream file) and read all its output;
/// `at_first_byte` runs when the first byte arrives.
fn stream(mut cmd: Command, expect: u64, mut at_first_byte: impl FnMut()) -> Streamed {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut first = None;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if first.is_none() {
            first = Some(Instant::now());
            at_first_byte();
        }
        total += n as u64;
    }
    let end = Instant::now();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "stream: {status}: {err}");
    assert_eq!(total, expect, "stream length; stderr: {err}");
    let first = first.unwrap();
    Streamed {
        setup: first - start,
        transfer: end - first,
    }
}

/// 256 MiB of random printable ASCII (0x20-0x7e) in lines of 79 characters and a newline.
fn write_stream_file(path: &Path, mib: u64) -> u64 {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let total = mib << 20;
    let mut line = [0u8; 80];
    let mut written = 0u64;
    while written < total {
        for b in line.iter_mut().take(79) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = 0x20 + ((x >> 32) % 95) as u8;
        }
        line[79] = b'\n';
        let n = (total - written).min(80) as usize;
        f.write_all(&line[..n]).unwrap();
        written += n as u64;
    }
    f.flush().unwrap();
    total
}

// ---------------------------------------------------------------------------------------
// Idle sessions, from one process (russh client)

struct AnyHost;
impl russh::client::Handler for AnyHost {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

type Handle = russh::client::Handle<AnyHost>;

#[derive(Clone)]
enum Route {
    /// To the jump sshd with the plain key, then through a direct-tcpip channel to the
    /// asset's sshd with the plain key.
    Jump { jump: u16, asset: u16 },
    /// To the gateway as `historian` with the grant's certificate.
    Gateway {
        port: u16,
        key: Arc<russh::keys::PrivateKey>,
        cert: Box<russh::keys::Certificate>,
    },
}

/// An open idle session: the connection(s) and its shell channel.
struct Held {
    outer: Option<Handle>,
    inner: Handle,
    _shell: russh::Channel<russh::client::Msg>,
}

async fn plain_auth(h: &mut Handle, user: &str, key: &Arc<russh::keys::PrivateKey>) {
    let ok = h
        .authenticate_publickey(
            user,
            russh::keys::PrivateKeyWithHashAlg::new(Arc::clone(key), None),
        )
        .await
        .unwrap();
    assert!(ok.success(), "plain key refused");
}

async fn open_idle(route: &Route, user: &str, plain: &Arc<russh::keys::PrivateKey>) -> Held {
    let config = Arc::new(russh::client::Config::default());
    let (outer, inner) = match route {
        Route::Jump { jump, asset } => {
            let mut j = russh::client::connect(config.clone(), ("127.0.0.1", *jump), AnyHost)
                .await
                .unwrap();
            plain_auth(&mut j, user, plain).await;
            let ch = j
                .channel_open_direct_tcpip("127.0.0.1", u32::from(*asset), "127.0.0.1", 0)
                .await
                .unwrap();
            let mut h = russh::client::connect_stream(config, ch.into_stream(), AnyHost)
                .await
                .unwrap();
            plain_auth(&mut h, user, plain).await;
            (Some(j), h)
        }
        Route::Gateway { port, key, cert } => {
            let mut h = russh::client::connect(config, ("127.0.0.1", *port), AnyHost)
                .await
                .unwrap();
            let ok = h
                .authenticate_openssh_cert("historian", Arc::clone(key), (**cert).clone())
                .await
                .unwrap();
            assert!(ok.success(), "certificate refused");
            (None, h)
        }
    };
    let mut ch = inner.channel_open_session().await.unwrap();
    ch.request_pty(true, "xterm", 80, 24, 0, 0, &[])
        .await
        .unwrap();
    ch.request_shell(true).await.unwrap();
    // The shell is up once it printed its prompt.
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match ch.wait().await {
                Some(russh::ChannelMsg::Data { .. }) => return true,
                Some(russh::ChannelMsg::Failure) | Some(russh::ChannelMsg::Close) | None => {
                    return false
                }
                Some(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(got, "no shell prompt");
    Held {
        outer,
        inner,
        _shell: ch,
    }
}

/// Open `n` idle sessions on `route`, `OPENING` at a time; (sessions, wall time).
async fn open_many(
    route: &Route,
    user: &str,
    plain: &Arc<russh::keys::PrivateKey>,
    n: usize,
) -> (Vec<Held>, Duration) {
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..OPENING {
        let (route, user, plain, next) = (
            route.clone(),
            user.to_string(),
            Arc::clone(plain),
            Arc::clone(&next),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                mine.push(open_idle(&route, &user, &plain).await);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all, start.elapsed())
}

async fn close_all(held: Vec<Held>) {
    for h in held {
        let _ = h
            .inner
            .disconnect(russh::Disconnect::ByApplication, "bench done", "en")
            .await;
        if let Some(o) = &h.outer {
            let _ = o
                .disconnect(russh::Disconnect::ByApplication, "bench done", "en")
                .await;
        }
    }
}

/// Wait until the sshd listener `pid` has no session process left.
async fn sessions_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !descendants(pid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "sshd {pid} still has sessions: {:?}",
            descendants(pid).len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Per session, by command name, the processes below `root`: (processes, PSS KiB, RSS KiB).
fn memory_by_name(root: u32, sessions: usize) -> BTreeMap<String, (f64, f64, f64)> {
    let mut out = BTreeMap::<String, (f64, f64, f64)>::new();
    let n = sessions as f64;
    for p in descendants(root) {
        let e = out.entry(comm(p)).or_default();
        e.0 += 1.0 / n;
        e.1 += pss_kib(p) as f64 / n;
        e.2 += rss_kib(p) as f64 / n;
    }
    out
}

/// One path's idle sessions.
struct IdleRun {
    path: &'static str,
    opened_in: Duration,
    /// What the relay holds per session (jump sshd processes by name, or the gateway's
    /// growth as `jitgate`): (processes, PSS KiB, RSS KiB).
    relay: BTreeMap<String, (f64, f64, f64)>,
    /// What the asset holds per session, by name (its sshd's process and the shell).
    asset: BTreeMap<String, (f64, f64, f64)>,
}

/// CPU time so far of each part of the benchmark's process tree.
#[derive(Default, Clone, Copy)]
struct Roles {
    /// The asset's sshd with its sessions (and their `cat`).
    asset: Duration,
    /// The jump host's sshd with its sessions.
    jump: Duration,
    gateway: Duration,
    server: Duration,
    /// The `ssh` client processes (see [`Sampler`]) and this process (reading the stream).
    client: Duration,
}

impl Roles {
    /// Now, and the client processes: those below `me` outside the other parts' trees.
    fn now(me: u32, asset: u32, jump: u32, gateway: u32, server: u32) -> (Roles, Vec<u32>) {
        let all = processes();
        let mut others = Vec::new();
        for root in [asset, jump, gateway, server] {
            others.push(root);
            others.extend(descendants_in(&all, root));
        }
        let clients = descendants_in(&all, me)
            .into_iter()
            .filter(|p| !others.contains(p))
            .collect();
        let roles = Roles {
            asset: tree_cpu_in(&all, asset),
            jump: tree_cpu_in(&all, jump),
            gateway: tree_cpu_in(&all, gateway),
            server: tree_cpu_in(&all, server),
            client: cpu(me, false),
        };
        (roles, clients)
    }

    fn minus(&self, earlier: &Roles) -> Roles {
        Roles {
            asset: self.asset.saturating_sub(earlier.asset),
            jump: self.jump.saturating_sub(earlier.jump),
            gateway: self.gateway.saturating_sub(earlier.gateway),
            server: self.server.saturating_sub(earlier.server),
            client: self.client.saturating_sub(earlier.client),
        }
    }

    fn total(&self) -> Duration {
        self.asset + self.jump + self.gateway + self.server + self.client
    }
}

/// Follows the CPU time of a few processes every 10 ms until stopped. For the `ssh`
/// clients: `ssh -J` kills its ProxyJump `ssh` without waiting for it, so that process's
/// time never reaches a parent's `cutime`; it is read while it runs (or is a zombie).
struct Sampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Duration>,
}

impl Sampler {
    fn start(pids: Vec<u32>) -> Sampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let read = |p: u32| {
            std::fs::metadata(format!("/proc/{p}"))
                .is_ok()
                .then(|| cpu(p, false))
        };
        let thread = std::thread::spawn(move || {
            let first: Vec<Duration> = pids.iter().map(|p| read(*p).unwrap_or_default()).collect();
            let mut last = first.clone();
            while !stopped.load(Ordering::Relaxed) {
                for (i, p) in pids.iter().enumerate() {
                    if let Some(c) = read(*p).filter(|c| *c >= last[i]) {
                        last[i] = c;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            last.iter()
                .zip(&first)
                .map(|(l, f)| l.saturating_sub(*f))
                .sum()
        });
        Sampler { stop, thread }
    }

    fn finish(self) -> Duration {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The jitgate stream's recording and what it cost.
struct RecordingFigures {
    /// The server's `GET /recordings` entry.
    view: Value,
    hwm_before: u64,
    hwm_after: u64,
    /// CPU from the first byte to the end of the stream, and from then until the recording
    /// was stored.
    gw_stream: Duration,
    up_stream: Duration,
    gw_after: Duration,
    up_after: Duration,
    /// One `GET /recordings?grant=…` afterwards: wall time, server CPU.
    listing: Option<(Duration, Duration)>,
}

/// Wait (at most 60 s) until the gateway and the server are idle (< 5% of a core over half
/// a second): the previous step's sessions have ended and their recordings are delivered.
fn settle(gw: u32, up: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let before = cpu(gw, false) + cpu(up, false);
        std::thread::sleep(Duration::from_millis(500));
        let used = cpu(gw, false) + cpu(up, false) - before;
        if used <= Duration::from_millis(25) || Instant::now() > deadline {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------

fn main() {
    for (tool, ok) in [
        ("ssh", Command::new("ssh").arg("-V").output().is_ok()),
        (
            "ssh-keygen",
            Command::new("ssh-keygen").arg("-?").output().is_ok(),
        ),
        (SSHD, Path::new(SSHD).exists()),
    ] {
        assert!(
            ok,
            "{tool} is needed (Debian: openssh-client, openssh-server)"
        );
    }
    let z = sizes();
    // JITGATE_SSH_BENCH_ONLY=idle,keys,stream: only those parts (e.g. to profile one).
    let only = std::env::var("JITGATE_SSH_BENCH_ONLY").ok();
    let run = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p == part))
    };
    layout::set_cpus();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let account = account();
    println!("SSH benchmark: direct sshd vs ssh -J vs jitgate gateway, loopback");
    println!("command: cargo bench -p jitgate --bench ssh");
    println!(
        "{}",
        String::from_utf8_lossy(&Command::new("ssh").arg("-V").output().unwrap().stderr).trim()
    );

    // --- jitgate: server, inventory, gateway.
    let data = w.join("data");
    let api_port = free_port();
    // With the server apart, `jitgate up` alone on CPU 1; every other process on CPU 0.
    let mut up = if layout::server_apart() {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    let mut up = Proc(
        up.args(["up", "--data-dir", data.to_str().unwrap(), "--listen"])
            .arg(format!("127.0.0.1:{api_port}"))
            .env("JITGATE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(api_port, &mut up.0, "jitgate up");
    while !data.join("bootstrap-credentials.toml").exists() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    let base = format!("http://127.0.0.1:{api_port}");
    let http = reqwest::Client::new();
    let mut tokens = std::collections::HashMap::new();
    for who in ["alice", "bob", "sam"] {
        let v = rt.block_on(api(
            &http,
            &base,
            None,
            "POST",
            "/auth/login",
            json!({"identity": who, "password": creds["passwords"][who].as_str().unwrap()}),
        ));
        tokens.insert(who, v["token"].as_str().unwrap().to_string());
    }
    let (asset_port, jump_port, gw_port) = (free_port(), free_port(), free_port());
    let plant = PLANT.replace(
        "endpoints.ssh = { host = \"127.0.0.1:2223\", account = \"jitgate\" }",
        &format!(
            "endpoints.ssh = {{ host = \"127.0.0.1:{asset_port}\", account = \"{account}\" }}"
        ),
    );
    assert_ne!(
        plant, PLANT,
        "the historian's SSH endpoint in examples/plant.toml"
    );
    rt.block_on(api(
        &http,
        &base,
        Some(&tokens["sam"]),
        "POST",
        "/inventory",
        json!({"toml": plant}),
    ));

    // --- the asset's sshd (trusts jitgate's host-access CA, and the bench's plain key) and
    // the jump host's (the plain key; forwarding allowed).
    let plain_key = w.join("plain_key");
    keygen(&plain_key);
    let plain_pub = std::fs::read_to_string(w.join("plain_key.pub")).unwrap();
    let cas = cli_json(&base, &tokens["alice"], &["ssh", "ca"]);
    let host_access = cas["host_access_ca"]["public_key"].as_str().unwrap();
    let asset_dir = w.join("asset");
    std::fs::create_dir_all(asset_dir.join("principals")).unwrap();
    std::fs::write(asset_dir.join("ca.pub"), format!("{host_access}\n")).unwrap();
    std::fs::write(
        asset_dir.join("principals").join(&account),
        format!("{account}\n"),
    )
    .unwrap();
    std::fs::write(asset_dir.join("authorized_keys"), &plain_pub).unwrap();
    let asset_sshd = sshd(
        &asset_dir,
        asset_port,
        &format!(
            "AuthorizedKeysFile {ak}\nTrustedUserCAKeys {ca}\nAuthorizedPrincipalsFile {pr}/%u\n",
            ak = asset_dir.join("authorized_keys").display(),
            ca = asset_dir.join("ca.pub").display(),
            pr = asset_dir.join("principals").display(),
        ),
    );
    let jump_dir = w.join("jump");
    std::fs::create_dir_all(&jump_dir).unwrap();
    std::fs::write(jump_dir.join("authorized_keys"), &plain_pub).unwrap();
    let jump_sshd = sshd(
        &jump_dir,
        jump_port,
        &format!(
            "AuthorizedKeysFile {}\n",
            jump_dir.join("authorized_keys").display()
        ),
    );
    let (asset_pid, jump_pid) = (asset_sshd.0.id(), jump_sshd.0.id());

    let gw_conf = w.join("gateway.toml");
    std::fs::write(
        &gw_conf,
        format!(
            "server = \"{base}\"\napi_key = \"{}\"\nlisten = \"127.0.0.1:{}\"\nssh_listen = \"127.0.0.1:{gw_port}\"\nstate_dir = \"{}\"\n\n[client_limits]\nmax_connections = 2000\n",
            creds["api_keys"]["gw-north"].as_str().unwrap(),
            free_port(),
            w.join("gw").display()
        ),
    )
    .unwrap();
    let mut gateway = Proc(
        Command::new(BIN)
            .args(["gateway", "--config", gw_conf.to_str().unwrap()])
            .env("JITGATE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(gw_port, &mut gateway.0, "jitgate gateway");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let gws = rt.block_on(api(
            &http,
            &base,
            Some(&tokens["sam"]),
            "GET",
            "/gateways",
            Value::Null,
        ));
        if gws
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == "gw-north" && g["control_connected"] == true)
        {
            break;
        }
        assert!(Instant::now() < deadline, "the gateway never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (up_pid, gw_pid) = (up.0.id(), gateway.0.id());
    eprintln!("server (`jitgate up`) pid {up_pid}, gateway pid {gw_pid}");

    // --- the stream file, and the grants: a shell, and exactly `cat <file>`.
    let file = w.join("stream.txt");
    let stream_len = write_stream_file(&file, z.stream_mib);
    let cat_cmd = format!("cat {}", file.display());
    let grant = |rule: &str| {
        let req = cli_json(
            &base,
            &tokens["alice"],
            &[
                "request",
                "--asset",
                "historian",
                "--ssh",
                rule,
                "--for",
                "1h",
                "--reason",
                "ssh benchmark",
                "--ref",
                "WO-1",
            ],
        );
        let approved = cli_json(
            &base,
            &tokens["bob"],
            &["approve", req["id"].as_str().unwrap()],
        );
        assert_eq!(approved["state"], "active", "{approved}");
        approved["grant"]["id"].as_str().unwrap().to_string()
    };
    let shell_grant = grant("shell");
    let cat_grant = grant(&format!("command {cat_cmd}"));
    let cert_of = |grant: &str, dir: &Path| -> (PathBuf, PathBuf) {
        cli(
            &base,
            &tokens["alice"],
            &[
                "ssh",
                "cert",
                grant,
                "--asset",
                "historian",
                "--out",
                dir.to_str().unwrap(),
            ],
        );
        let cert = dir.join("id_ed25519-cert.pub");
        // Valid from the grant's first whole second.
        let c = ssh_key::Certificate::read_file(&cert).unwrap();
        while std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            < c.valid_after()
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        (dir.join("id_ed25519"), cert)
    };
    let (shell_key, shell_cert) = cert_of(&shell_grant, &w.join("c-shell"));
    let (cat_key, cat_cert) = cert_of(&cat_grant, &w.join("c-cat"));

    // One ssh_config for the three paths: `ssh -F cfg asset`, `ssh -F cfg -J jump asset`,
    // `ssh -F cfg gw-shell` (or gw-cat). The ProxyJump child gets the same -F.
    let cfg = w.join("ssh_config");
    let common =
        "  HostName 127.0.0.1\n  IdentitiesOnly yes\n  IdentityAgent none\n  BatchMode yes\n  \
         StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  \
         ControlMaster no\n  ControlPath none\n";
    std::fs::write(
        &cfg,
        format!(
            "Host asset\n  Port {asset_port}\n  User {account}\n  IdentityFile {pk}\n{common}\
             Host jump\n  Port {jump_port}\n  User {account}\n  IdentityFile {pk}\n{common}\
             Host gw-shell\n  Port {gw_port}\n  User historian\n  IdentityFile {sk}\n  CertificateFile {sc}\n{common}\
             Host gw-cat\n  Port {gw_port}\n  User historian\n  IdentityFile {ck}\n  CertificateFile {cc}\n{common}",
            pk = plain_key.display(),
            sk = shell_key.display(),
            sc = shell_cert.display(),
            ck = cat_key.display(),
            cc = cat_cert.display(),
        ),
    )
    .unwrap();
    let ssh = |args: &[&str]| {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(&cfg).args(args);
        c
    };
    let paths: [(&str, Vec<&str>); 3] = [
        ("direct ssh → sshd", vec!["asset"]),
        ("ssh -J (OpenSSH jump host)", vec!["-J", "jump", "asset"]),
        ("jitgate gateway", vec!["gw-shell"]),
    ];

    // --- 1. memory per idle session.
    let plain = Arc::new(russh::keys::load_secret_key(&plain_key, None).unwrap());
    let gw_route = Route::Gateway {
        port: gw_port,
        key: Arc::new(russh::keys::load_secret_key(&shell_key, None).unwrap()),
        cert: Box::new(russh::keys::load_openssh_certificate(&shell_cert).unwrap()),
    };
    // Direct sessions are not run separately: what a direct session costs is the asset's
    // sshd process (and the shell), which every path's sessions open on the asset and
    // which is measured in both runs.
    let routes = [
        (
            "ssh -J (OpenSSH jump host)",
            Route::Jump {
                jump: jump_port,
                asset: asset_port,
            },
        ),
        ("jitgate gateway", gw_route),
    ];
    let mut idle = Vec::new();
    let mut gw_rss = (0, 0, 0);
    if run("idle") {
        for (name, route) in &routes {
            settle(gw_pid, up_pid);
            rt.block_on(async {
                // One session first (lazy set-up in every process, first-use host key pin),
                // closed, so the baseline includes it.
                let (warm, _) = open_many(route, &account, &plain, 1).await;
                close_all(warm).await;
                sessions_gone(asset_pid).await;
                sessions_gone(jump_pid).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                let (gw_before, gw_pss_before) = (rss_kib(gw_pid), pss_kib(gw_pid));
                let (held, opened_in) = open_many(route, &account, &plain, z.idle_sessions).await;
                tokio::time::sleep(Duration::from_secs(3)).await;
                let (gw_after, gw_pss_after) = (rss_kib(gw_pid), pss_kib(gw_pid));
                let n = z.idle_sessions as f64;
                let relay = match route {
                    Route::Jump { .. } => memory_by_name(jump_pid, z.idle_sessions),
                    Route::Gateway { .. } => {
                        gw_rss = (gw_before, gw_after, 0);
                        BTreeMap::from([(
                            "jitgate".to_string(),
                            (
                                0.0,
                                gw_pss_after.saturating_sub(gw_pss_before) as f64 / n,
                                gw_after.saturating_sub(gw_before) as f64 / n,
                            ),
                        )])
                    }
                };
                idle.push(IdleRun {
                    path: name,
                    opened_in,
                    relay,
                    asset: memory_by_name(asset_pid, z.idle_sessions),
                });
                close_all(held).await;
                sessions_gone(asset_pid).await;
                sessions_gone(jump_pid).await;
                if matches!(route, Route::Gateway { .. }) {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    gw_rss.2 = rss_kib(gw_pid);
                }
            });
        }
    }

    // --- 2. keystrokes.
    let mut keys = Vec::new();
    if run("keys") {
        settle(gw_pid, up_pid);
        let lat = keystrokes(paths.iter().map(|(_, args)| ssh(args)).collect(), z);
        keys = paths.iter().map(|(name, _)| *name).zip(lat).collect();
        // The killed clients' sessions end on the asset (and at the gateway).
        rt.block_on(sessions_gone(asset_pid));
        rt.block_on(sessions_gone(jump_pid));
    }

    // --- 3. the 256 MiB stream, recording on at the gateway.
    let cat_paths: [(&str, Vec<&str>); 3] = [
        ("direct ssh → sshd", vec!["asset", &cat_cmd]),
        (
            "ssh -J (OpenSSH jump host)",
            vec!["-J", "jump", "asset", &cat_cmd],
        ),
        ("jitgate gateway", vec!["gw-cat", &cat_cmd]),
    ];
    // Every process of every path is below this one: the ssh clients, the sshds and their
    // sessions, the gateway, the server.
    let me = std::process::id();
    let mut streams = Vec::new();
    let mut recording = None;
    if run("stream") {
        for (name, args) in &cat_paths {
            settle(gw_pid, up_pid);
            let hwm_before = status_kib(gw_pid, "VmHWM:");
            let roles = || Roles::now(me, asset_pid, jump_pid, gw_pid, up_pid);
            let mut first = Roles::default();
            let mut sampler = None;
            let s = stream(ssh(args), stream_len, || {
                let (now, clients) = roles();
                first = now;
                sampler = Some(Sampler::start(clients));
            });
            let at_eof = (cpu(gw_pid, false), cpu(up_pid, false));
            let eof = Instant::now();
            // Every process's share must be in: sshd sessions reaped, the gateway's recording
            // delivered and stored.
            rt.block_on(sessions_gone(asset_pid));
            rt.block_on(sessions_gone(jump_pid));
            let mut stored_after = None;
            if name.starts_with("jitgate") {
                let deadline = eof + Duration::from_secs(600);
                // The gateway keeps chunks not yet delivered in `recordings-<n>.spool` files
                // and removes each once all in it are: wait for none to be left (cheap), then
                // ask the server, which is not polled quickly.
                let gw_state = w.join("gw");
                let spool_left = || {
                    std::fs::read_dir(&gw_state).unwrap().any(|e| {
                        let name = e.unwrap().file_name();
                        let name = name.to_string_lossy();
                        name.starts_with("recordings") && name.ends_with(".spool")
                    })
                };
                let mut delivered = Instant::now();
                let rec = loop {
                    while spool_left() {
                        assert!(
                            Instant::now() < deadline,
                            "the recording was never delivered"
                        );
                        std::thread::sleep(Duration::from_millis(20));
                        delivered = Instant::now();
                    }
                    let list = rt.block_on(api(
                        &http,
                        &base,
                        Some(&tokens["alice"]),
                        "GET",
                        &format!("/recordings?grant={cat_grant}"),
                        Value::Null,
                    ));
                    let done = list
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|r| r["complete"] == true && r["stored_chunks"] == r["chunks"]);
                    if let Some(r) = done {
                        break r.clone();
                    }
                    assert!(Instant::now() < deadline, "recording never stored: {list}");
                    std::thread::sleep(Duration::from_millis(500));
                };
                stored_after = Some(delivered.saturating_duration_since(eof));
                let at_end = (cpu(gw_pid, false), cpu(up_pid, false));
                recording = Some(RecordingFigures {
                    view: rec,
                    hwm_before,
                    hwm_after: status_kib(gw_pid, "VmHWM:"),
                    gw_stream: at_eof.0.saturating_sub(first.gateway),
                    up_stream: at_eof.1.saturating_sub(first.server),
                    gw_after: at_end.0 - at_eof.0,
                    up_after: at_end.1 - at_eof.1,
                    listing: None,
                });
            }
            let mut c = roles().0.minus(&first);
            c.client += sampler.unwrap().finish();
            streams.push((*name, s, c, stored_after));
            // Then, outside the figures above: what one listing of this grant's recordings
            // costs the server now that it holds the 256 MiB.
            if let Some(r) = recording.as_mut().filter(|_| name.starts_with("jitgate")) {
                let (t, before) = (Instant::now(), cpu(up_pid, false));
                rt.block_on(api(
                    &http,
                    &base,
                    Some(&tokens["alice"]),
                    "GET",
                    &format!("/recordings?grant={cat_grant}"),
                    Value::Null,
                ));
                r.listing = Some((t.elapsed(), cpu(up_pid, false) - before));
            }
        }
    }

    // --- results.
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n{date}; nproc {}; load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    if !keys.is_empty() {
        println!(
            "\nKeystroke echo round trip (ssh -tt, remote `stty raw -echo; cat`, {} keystrokes per path after {} warm-up, the paths in turn, {} ms between keystrokes):\n",
            z.keystrokes,
            z.keystrokes_warm,
            KEYSTROKE_GAP.as_millis()
        );
        println!("| path | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | mean µs |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (name, lat) in &keys {
            let mean = lat.iter().sum::<f64>() / lat.len() as f64;
            println!(
                "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {mean:.0} |",
                pct(lat, 0.5),
                pct(lat, 0.9),
                pct(lat, 0.99),
                pct(lat, 0.999),
                lat[lat.len() - 1]
            );
        }
        let p = |i: usize, q: f64| pct(&keys[i].1, q);
        let added_p99 = p(2, 0.99) - p(1, 0.99);
        println!(
            "\nAdded by jitgate over ssh -J: p50 {:+.0} µs, p99 {added_p99:+.0} µs (target: p99 ≤ +1000 µs: {}).",
            p(2, 0.5) - p(1, 0.5),
            if added_p99 <= 1000.0 { "met" } else { "MISSED" }
        );
        println!(
            "ssh -J over direct: p50 {:+.0} µs, p99 {:+.0} µs.",
            p(1, 0.5) - p(0, 0.5),
            p(1, 0.99) - p(0, 0.99)
        );
    }

    if !streams.is_empty() {
        println!(
            "\n{} MiB stream asset → client (`ssh … cat <file>`; recording on at the gateway):\n",
            z.stream_mib
        );
        println!("| path | set-up ms (spawn → first byte) | transfer s | MiB/s | CPU ms per MiB, all processes |");
        println!("|---|---:|---:|---:|---:|");
        let mib = z.stream_mib as f64;
        let per = |d: Duration| d.as_secs_f64() * 1e3 / mib;
        for (name, s, c, _) in &streams {
            println!(
                "| {name} | {:.0} | {:.2} | {:.1} | {:.2} |",
                s.setup.as_secs_f64() * 1e3,
                s.transfer.as_secs_f64(),
                mib / s.transfer.as_secs_f64(),
                per(c.total())
            );
        }
        println!("\nCPU ms per MiB by process, from the first byte until every process of the path was done (sessions reaped; jitgate: recording stored):\n");
        println!("| path | client `ssh` (and this process, reading) | asset sshd session + `cat` | jump sshd session | gateway | server |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (name, _, c, _) in &streams {
            println!(
                "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                per(c.client),
                per(c.asset),
                per(c.jump),
                per(c.gateway),
                per(c.server)
            );
        }
        let rate = |i: usize| mib / streams[i].1.transfer.as_secs_f64();
        let ratio = rate(2) / rate(1);
        println!(
            "\njitgate / ssh -J throughput: {ratio:.2}× (target ≥ 0.70×: {}); ssh -J / direct: {:.2}×.",
            if ratio >= 0.7 { "met" } else { "MISSED" },
            rate(1) / rate(0)
        );
        if let Some(r) = &recording {
            let rec = &r.view;
            let bytes = rec["bytes"].as_u64().unwrap();
            println!(
                "Recording as the server holds it: {bytes} bytes in {} chunks = {:.4} MiB per MiB of output ({:.0} bytes per MiB); complete and stored {:.1} s after the stream ended.",
                rec["chunks"],
                bytes as f64 / stream_len as f64,
                bytes as f64 / mib,
                streams[2].3.unwrap().as_secs_f64()
            );
            println!(
                "CPU of the jitgate stream: gateway {:.2} s during the transfer + {:.2} s after it; server {:.2} s + {:.2} s (storing the recording). Gateway peak RSS (VmHWM) {} KiB before, {} KiB after.",
                r.gw_stream.as_secs_f64(),
                r.gw_after.as_secs_f64(),
                r.up_stream.as_secs_f64(),
                r.up_after.as_secs_f64(),
                r.hwm_before,
                r.hwm_after
            );
            if let Some((wall, cpu)) = r.listing {
                println!(
                    "Afterwards, one `GET /recordings?grant=…` (this grant: one recording) took {:.0} ms, {:.0} ms of server CPU.",
                    wall.as_secs_f64() * 1e3,
                    cpu.as_secs_f64() * 1e3
                );
            }
        }
    }

    if !idle.is_empty() {
        println!(
            "\nMemory per idle session, {} sessions with a terminal and a shell, opened from one process (russh client), {OPENING} at a time:\n",
            z.idle_sessions
        );
        println!("| path | what holds the session | processes per session | PSS KiB per session | RSS KiB per session |");
        println!("|---|---|---:|---:|---:|");
        let get =
            |m: &BTreeMap<String, (f64, f64, f64)>, k: &str| m.get(k).copied().unwrap_or_default();
        let (jump, gw) = (&idle[0], &idle[1]);
        let asset_sshd = get(&jump.asset, "sshd");
        println!(
            "| direct ssh → sshd | the asset's sshd (measured in the ssh -J run) | {:.2} | {:.1} | {:.1} |",
            asset_sshd.0, asset_sshd.1, asset_sshd.2
        );
        let jump_sshd = get(&jump.relay, "sshd");
        println!(
            "| ssh -J (OpenSSH jump host) | the jump host's sshd | {:.2} | {:.1} | {:.1} |",
            jump_sshd.0, jump_sshd.1, jump_sshd.2
        );
        let gw_growth = get(&gw.relay, "jitgate");
        println!(
            "| jitgate gateway | the gateway process's growth | (one process for all) | {:.1} | {:.1} |",
            gw_growth.1, gw_growth.2
        );
        println!("\nOn the asset, for every path (the same sshd, the account's login shell):\n");
        println!("| run | asset processes per session | asset PSS KiB per session | asset RSS KiB per session | of which the shell (bash) PSS / RSS | sessions opened in s |");
        println!("|---|---|---:|---:|---:|---:|");
        for r in &idle {
            let names = r
                .asset
                .iter()
                .map(|(k, v)| format!("{:.2} {k}", v.0))
                .collect::<Vec<_>>()
                .join(" + ");
            let (pss, rss) = r
                .asset
                .values()
                .fold((0.0, 0.0), |a, v| (a.0 + v.1, a.1 + v.2));
            let bash = get(&r.asset, "bash");
            println!(
                "| {} | {names} | {pss:.1} | {rss:.1} | {:.1} / {:.1} | {:.1} |",
                r.path,
                bash.1,
                bash.2,
                r.opened_in.as_secs_f64()
            );
        }
        println!(
            "\nGateway RSS: {} KiB before, {} KiB with {} idle sessions, {} KiB after they closed → {:.1} KiB per idle session (target ≤ 256 KiB: {}); the jump host's sshd: PSS {:.1} KiB, RSS {:.1} KiB per session.",
            gw_rss.0,
            gw_rss.1,
            z.idle_sessions,
            gw_rss.2,
            gw_growth.2,
            if gw_growth.2 <= 256.0 { "met" } else { "MISSED" },
            jump_sshd.1,
            jump_sshd.2
        );
    }

    drop(gateway);
    drop(up);
}
