//! SSH through the gateway with real peers: Debian's OpenSSH client (`ssh`, `sftp`) through
//! the real `jitgate gateway` to a real `/usr/sbin/sshd` on a loopback port that trusts
//! jitgate's host-access CA. Skipped (loudly) when OpenSSH is missing, unless
//! `JITGATE_REQUIRE_PEERS=1`.

use crate::gateway::{Killed, Plant};
use crate::quickstart::{free_port, Cli};
use serde_json::Value;
use sha2::Digest;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

pub(crate) fn have_openssh() -> bool {
    Path::new(SSHD).exists()
        && Command::new("ssh").arg("-V").output().is_ok()
        && Command::new("sftp").arg("-h").output().is_ok()
        && Command::new("ssh-keygen").arg("-?").output().is_ok()
}

pub(crate) fn skip(what: &str) {
    if std::env::var("JITGATE_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("{what} is required (JITGATE_REQUIRE_PEERS=1) but missing");
    }
    eprintln!("\n!!!!!!!!!!\n!!! SKIPPED: {what} is not available; set JITGATE_REQUIRE_PEERS=1 to make this a failure\n!!!!!!!!!!\n");
}

/// The account the gateway logs in as on the test sshd: whoever runs the tests.
pub(crate) fn account() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub(crate) fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real sshd on 127.0.0.1:`port` that lets jitgate's host-access CA log in as `account`.
pub(crate) struct Sshd {
    dir: PathBuf,
    port: u16,
    child: Option<Killed>,
}

impl Sshd {
    fn start(dir: &Path, port: u16, ca_line: &str, account: &str, host_key: &str) -> Sshd {
        std::fs::create_dir_all(dir.join("principals")).unwrap();
        std::fs::write(dir.join("ca.pub"), format!("{ca_line}\n")).unwrap();
        std::fs::write(dir.join("principals").join(account), format!("{account}\n")).unwrap();
        let auth = format!(
            "AuthorizedKeysFile none\nTrustedUserCAKeys {ca}\nAuthorizedPrincipalsFile {pr}/%u\n",
            ca = dir.join("ca.pub").display(),
            pr = dir.join("principals").display(),
        );
        Sshd::start_with(dir, port, host_key, &auth)
    }

    /// An sshd that trusts no CA: only the keys in `dir/authorized_keys` log in.
    pub(crate) fn start_with_authorized_keys(
        dir: &Path,
        port: u16,
        keys: &str,
        host_key: &str,
    ) -> Sshd {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("authorized_keys"), keys).unwrap();
        let auth = format!(
            "AuthorizedKeysFile {}\n",
            dir.join("authorized_keys").display()
        );
        Sshd::start_with(dir, port, host_key, &auth)
    }

    fn start_with(dir: &Path, port: u16, host_key: &str, auth: &str) -> Sshd {
        // Privilege separation needs it; Debian creates it when its own sshd starts.
        let _ = std::fs::create_dir_all("/run/sshd");
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile none\nUsePAM no\n\
                 StrictModes no\nPermitRootLogin yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n{auth}\
                 Subsystem sftp internal-sftp\nAllowTcpForwarding yes\nLogLevel DEBUG1\n",
                hk = dir.join(host_key).display(),
            ),
        )
        .unwrap();
        let mut sshd = Sshd {
            dir: dir.to_path_buf(),
            port,
            child: None,
        };
        sshd.run(&config);
        sshd
    }

    fn run(&mut self, config: &Path) {
        // Its log (stderr) is kept: tests read what it negotiated.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("sshd.log"))
            .unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut child = Killed(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                child.0.try_wait().unwrap().is_none(),
                "sshd exited before listening"
            );
            assert!(Instant::now() < deadline, "sshd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }

    /// Restart with another host key, on the same port.
    fn restart_with_host_key(&mut self, host_key: &str) {
        self.child = None;
        let config = self.dir.join("sshd_config");
        let text = std::fs::read_to_string(&config).unwrap();
        let text = text
            .lines()
            .map(|l| {
                if l.starts_with("HostKey ") {
                    format!("HostKey {}", self.dir.join(host_key).display())
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&config, text + "\n").unwrap();
        // The port is free once the old sshd is gone.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "the old sshd still listens");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.run(&config);
    }
}

/// A grant for alice on the historian with these `--ssh` rules, approved by bob.
pub(crate) fn ssh_grant(cli: &Cli, rules: &[&str]) -> String {
    let mut args = vec!["request", "--asset", "historian"];
    for r in rules {
        args.push("--ssh");
        args.push(r);
    }
    args.extend([
        "--for",
        "1h",
        "--reason",
        "ssh gateway test",
        "--ref",
        "WO-22",
    ]);
    let req = cli.json("alice", &args);
    let id = req["id"].as_str().unwrap().to_string();
    let approved = cli.json("bob", &["approve", &id]);
    assert_eq!(approved["state"], "active", "{approved}");
    approved["grant"]["id"].as_str().unwrap().to_string()
}

/// `jitgate ssh cert` as alice into a fresh directory: (key, certificate).
pub(crate) fn user_cert(cli: &Cli, grant: &str, dir: &Path) -> (PathBuf, PathBuf) {
    cli.ok(
        "alice",
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
    valid_now(&cert);
    (dir.join("id_ed25519"), cert)
}

/// Wait until the certificate's validity has begun: it starts at the grant's first whole
/// second, which a test that approves and connects at once can beat.
fn valid_now(cert: &Path) {
    let c = ssh_key::Certificate::read_file(cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        < c.valid_after()
    {
        assert!(Instant::now() < deadline, "certificate not valid after 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The plain `ssh` command line of docs/credentials.md, with test-only options (no
/// configuration files, no agent, the gateway's host key not checked).
pub(crate) fn ssh_cmd(key: &Path, cert: &Path, port: u16, user: &str) -> Command {
    let mut c = Command::new("ssh");
    c.args(["-F", "/dev/null", "-i"])
        .arg(key)
        .arg("-o")
        .arg(format!("CertificateFile={}", cert.display()))
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-p",
            &port.to_string(),
        ])
        .arg(format!("{user}@127.0.0.1"));
    c
}

pub(crate) fn run(mut c: Command, stdin: &str) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The grant's gateway events, polled until `pred` holds for one (20 s at most).
pub(crate) fn wait_event(
    cli: &Cli,
    grant: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = cli.json("sam", &["events", "--grant", grant, "--limit", "500"]);
        if let Some(e) = events.as_array().unwrap().iter().find(|e| pred(e)) {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no event: {what}; events of {grant}: {events:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn detail(e: &Value) -> &Value {
    &e["data"]["detail"]
}

/// The refused operation `op` on `target` was recorded with `allowed: false`.
fn refused_op(cli: &Cli, grant: &str, op: &str, target: Option<&str>) {
    wait_event(cli, grant, &format!("refused {op}"), |e| {
        e["kind"] == "operation"
            && detail(e)["operation"] == op
            && detail(e)["allowed"] == false
            && target.is_none_or(|t| detail(e)["target"] == t)
    });
}

/// The user CA's secret key from the server's data directory, as an OpenSSH private key
/// file: to sign certificates the server would never issue.
fn user_ca_file(data_dir: &Path, out: &Path) {
    use ssh_key::private::Ed25519Keypair;
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir.join("ssh-ca-keys.json")).unwrap())
            .unwrap();
    let seed = base64url(v["user_ca"]["secret_key"].as_str().unwrap());
    let seed: [u8; 32] = seed.try_into().unwrap();
    let key = ssh_key::PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    std::fs::write(
        out,
        key.to_openssh(ssh_key::LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn base64url(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' | b'+' => 62,
        _ => 63,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        acc = (acc << 6) | u32::from(val(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// `ssh-keygen -s ca` over a fresh key in `dir`: (key, certificate).
fn forged(
    dir: &Path,
    ca: &Path,
    key_id: &str,
    principal: &str,
    validity: &str,
) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let key = dir.join("id_ed25519");
    keygen(&key);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(ca)
        .args(["-I", key_id, "-n", principal, "-V", validity])
        .arg(dir.join("id_ed25519.pub"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    (key, dir.join("id_ed25519-cert.pub"))
}

/// The plant with the historian's SSH endpoint on a free loopback port (`extra`: more keys
/// of that endpoint, e.g. `auth = "vaulted_key"`, each with a leading `, `) and the
/// gateway's SSH listener on another: (plant, the account, sshd port, gateway SSH port).
pub(crate) fn ssh_plant(extra: &str) -> (Plant, String, u16, u16) {
    let account = account();
    let (sshd_port, gw_ssh_port) = (free_port(), free_port());
    let p = Plant::start_custom(
        None,
        false,
        |inv| {
            inv.replace(
                "endpoints.ssh = { host = \"127.0.0.1:2223\", account = \"jitgate\" }",
                &format!("endpoints.ssh = {{ host = \"127.0.0.1:{sshd_port}\", account = \"{account}\"{extra} }}"),
            )
        },
        &format!("ssh_listen = \"127.0.0.1:{gw_ssh_port}\""),
    );
    (p, account, sshd_port, gw_ssh_port)
}

/// The teardown's check of `kind` about `target`.
pub(crate) fn check_of(t: &Value, kind: &str, target: &str) -> Value {
    t["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == kind && c["target"] == target)
        .unwrap_or_else(|| panic!("no {kind} check about {target} in {t:#}"))
        .clone()
}

#[test]
fn ssh_through_the_gateway_with_real_openssh() {
    if !have_openssh() {
        skip("OpenSSH (ssh, sftp, ssh-keygen and /usr/sbin/sshd: apt-get install openssh-client openssh-server)");
        return;
    }
    let (p, account, sshd_port, gw_ssh_port) = ssh_plant("");
    let cli = &p.cli;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let cas = cli.json("alice", &["ssh", "ca"]);
    let host_access = cas["host_access_ca"]["public_key"].as_str().unwrap();
    keygen(&w.join("host_key_a"));
    keygen(&w.join("host_key_b"));
    let mut sshd = Sshd::start(
        &w.join("sshd"),
        sshd_port,
        host_access,
        &account,
        "../host_key_a",
    );

    // --- shell: a terminal, a command typed into it, its output.
    let shell = ssh_grant(cli, &["shell"]);
    let (key, cert) = user_cert(cli, &shell, &w.join("c-shell"));
    let mut c = ssh_cmd(&key, &cert, gw_ssh_port, "historian");
    c.arg("-tt");
    let out = run(c, "echo hello-$((6*7))\nexit\n");
    assert!(
        text(&out.stdout).contains("hello-42"),
        "stdout: {}\nstderr: {}\ncertificate: {}",
        text(&out.stdout),
        text(&out.stderr),
        text(
            &Command::new("ssh-keygen")
                .arg("-L")
                .arg("-f")
                .arg(&cert)
                .output()
                .unwrap()
                .stdout
        )
    );
    let started = wait_event(cli, &shell, "session.started", |e| {
        e["kind"] == "session.started"
    });
    // The gateway's own connection to the asset negotiated AES-GCM (its first choice).
    let sshd_log = std::fs::read_to_string(w.join("sshd").join("sshd.log")).unwrap();
    assert!(
        sshd_log.contains("kex: client->server cipher: aes256-gcm@openssh.com"),
        "the asset's sshd did not see the gateway ask for AES-GCM:\n{sshd_log}"
    );
    assert_eq!(detail(&started)["asset"], "historian", "{started:#}");
    assert_eq!(detail(&started)["subject"], "alice", "{started:#}");
    wait_event(cli, &shell, "shell allowed", |e| {
        e["kind"] == "operation"
            && detail(e)["operation"] == "shell"
            && detail(e)["allowed"] == true
    });
    wait_event(cli, &shell, "host key pinned on first use", |e| {
        e["kind"] == "operation" && detail(e)["operation"] == "host_key_pinned"
    });
    wait_event(cli, &shell, "session.ended", |e| {
        e["kind"] == "session.ended" && detail(e)["reason"] == "client_closed"
    });
    // The session was recorded: the cast, complete, holds what the shell printed, and
    // asciinema's own tools read it.
    let session = detail(&started)["session_id"]
        .as_str()
        .or(started["data"]["session_id"].as_str())
        .or(started["session_id"].as_str())
        .unwrap_or_else(|| panic!("no session id in {started:#}"))
        .to_string();
    let cast_file = w.join("shell.cast");
    let cast = cast_of(cli, &shell, &session, &cast_file);
    assert!(cast.contains("hello-42"), "{cast}");
    if let Ok(out) = Command::new("asciinema")
        .arg("cat")
        .arg(&cast_file)
        .output()
    {
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("hello-42"));
    }

    // A shell scope runs no command, no sftp, no forwarding.
    let mut c = ssh_cmd(&key, &cert, gw_ssh_port, "historian");
    c.arg("id");
    let out = run(c, "");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("jitgate: refused"),
        "{}",
        text(&out.stderr)
    );
    refused_op(cli, &shell, "exec", Some("id"));
    let mut sftp = Command::new("sftp");
    sftp.args(["-F", "/dev/null", "-b", "-", "-i"])
        .arg(&key)
        .arg("-o")
        .arg(format!("CertificateFile={}", cert.display()))
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-P",
            &gw_ssh_port.to_string(),
            "historian@127.0.0.1",
        ]);
    let out = run(sftp, "ls\n");
    assert_ne!(
        out.status.code(),
        Some(0),
        "sftp without scope: {}",
        text(&out.stdout)
    );
    refused_op(cli, &shell, "subsystem", Some("sftp"));
    let mut c = ssh_cmd(&key, &cert, gw_ssh_port, "historian");
    c.args(["-W", &format!("127.0.0.1:{sshd_port}")]);
    let out = run(c, "");
    assert_ne!(out.status.code(), Some(0));
    // `ssh -W` says only that stdio forwarding failed; the reason is in the event.
    assert!(
        text(&out.stderr).contains("forwarding failed"),
        "{}",
        text(&out.stderr)
    );
    refused_op(
        cli,
        &shell,
        "direct-tcpip",
        Some(&format!("127.0.0.1:{sshd_port}")),
    );

    // --- command: exactly that command, nothing else.
    let cmd = ssh_grant(cli, &["command echo jitgate-cmd-ok"]);
    let (ckey, ccert) = user_cert(cli, &cmd, &w.join("c-cmd"));
    let mut c = ssh_cmd(&ckey, &ccert, gw_ssh_port, "historian");
    c.arg("echo jitgate-cmd-ok");
    let out = run(c, "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "jitgate-cmd-ok");
    for other in ["echo jitgate-cmd-ok ", "echo jitgate-cmd-ok; id", "id"] {
        let mut c = ssh_cmd(&ckey, &ccert, gw_ssh_port, "historian");
        c.arg(other);
        let out = run(c, "");
        assert_ne!(
            out.status.code(),
            Some(0),
            "{other:?} ran: {}",
            text(&out.stdout)
        );
        assert!(!text(&out.stdout).contains("jitgate-cmd-ok"), "{other:?}");
        assert!(
            text(&out.stderr).contains("jitgate: refused"),
            "{}",
            text(&out.stderr)
        );
        refused_op(cli, &cmd, "exec", Some(other));
    }
    // --- heavy traffic both ways at once: 4 MiB in through `cat` while it streams back
    // (flow control in both directions; nothing lost, nothing reordered).
    let cat = ssh_grant(cli, &["command cat"]);
    let (kkey, kcert) = user_cert(cli, &cat, &w.join("c-cat"));
    let data: Vec<u8> = (0..4u32 << 20)
        .map(|i| b'a' + ((i.wrapping_mul(2_654_435_761) >> 24) as u8 % 26))
        .collect();
    let mut c = ssh_cmd(&kkey, &kcert, gw_ssh_port, "historian");
    c.arg("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = {
        let data = data.clone();
        std::thread::spawn(move || stdin.write_all(&data).unwrap())
    };
    let out = child.wait_with_output().unwrap();
    feed.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        out.stdout == data,
        "{} bytes came back of {}",
        out.stdout.len(),
        data.len()
    );

    // `jitgate ssh` all in one, without --gateway: the server's answer names the address
    // the gateway announced and its host key, which is pinned (strict checking, none of the
    // user's known_hosts): the command runs.
    let batch = [
        "-F",
        "/dev/null",
        "-o",
        "IdentityAgent=none",
        "-o",
        "BatchMode=yes",
    ];
    let mut args = vec!["ssh", &cmd, "--asset", "historian", "--"];
    args.extend(batch);
    args.push("echo jitgate-cmd-ok");
    let out = cli.run("alice", &args, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "jitgate-cmd-ok");
    // Sent elsewhere (here: straight to the asset's sshd, another host key), `ssh` refuses
    // the host: no certificate is offered to a server that is not the gateway.
    let elsewhere = format!("127.0.0.1:{sshd_port}");
    let mut args = vec![
        "ssh",
        &cmd,
        "--asset",
        "historian",
        "--gateway",
        &elsewhere,
        "--",
    ];
    args.extend(batch);
    args.push("echo jitgate-cmd-ok");
    let out = cli.run("alice", &args, None);
    assert_ne!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains("jitgate-cmd-ok"));
    assert!(
        text(&out.stderr).contains("Host key verification failed")
            || text(&out.stderr).contains("HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        text(&out.stderr)
    );
    // No shell either (no terminal: refused at the shell request).
    let out = run(ssh_cmd(&ckey, &ccert, gw_ssh_port, "historian"), "");
    assert_ne!(out.status.code(), Some(0));
    refused_op(cli, &cmd, "shell", None);

    // --- certificates jitgate did not issue for this: refused before any session.
    let ca_key = w.join("user_ca");
    user_ca_file(&cli.dir.join("data"), &ca_key);
    let attempt = |key: &Path, cert: &Path| {
        let mut c = ssh_cmd(key, cert, gw_ssh_port, "historian");
        c.arg("echo should-not-run");
        run(c, "")
    };
    // Another principal than the grant's subject (signed by the real user CA).
    let (k, c) = forged(&w.join("f-bob"), &ca_key, &shell, "bob", "-5m:+30m");
    let out = attempt(&k, &c);
    assert_ne!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains("should-not-run"));
    assert!(
        text(&out.stderr).contains("jitgate: subject_mismatch"),
        "{}",
        text(&out.stderr)
    );
    wait_event(cli, &shell, "subject_mismatch refusal", |e| {
        e["kind"] == "session.refused" && detail(e)["code"] == "subject_mismatch"
    });
    // A grant that does not exist.
    let (k, c) = forged(
        &w.join("f-nogrant"),
        &ca_key,
        "grant-doesnotexist",
        "alice",
        "-5m:+30m",
    );
    let out = attempt(&k, &c);
    assert!(!text(&out.stdout).contains("should-not-run"));
    assert!(
        text(&out.stderr).contains("grant_unknown"),
        "{}",
        text(&out.stderr)
    );
    // Expired.
    let (k, c) = forged(&w.join("f-expired"), &ca_key, &shell, "alice", "-2h:-1h");
    let out = attempt(&k, &c);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
    // Another CA.
    let other_ca = w.join("other_ca");
    keygen(&other_ca);
    let (k, c) = forged(&w.join("f-otherca"), &other_ca, &shell, "alice", "-5m:+30m");
    let out = attempt(&k, &c);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
    // Another asset than the grant names (the user name is the asset; the plant's other
    // assets behind this gateway are Modbus PLCs).
    let out = {
        let mut c = ssh_cmd(&key, &cert, gw_ssh_port, "plc-7");
        c.arg("true");
        run(c, "")
    };
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("jitgate: asset_not_ssh"),
        "{}",
        text(&out.stderr)
    );

    // --- revocation cuts a live shell at once, with the reason.
    let mut c = ssh_cmd(&key, &cert, gw_ssh_port, "historian");
    c.arg("-tt")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut live = Killed(c.spawn().unwrap());
    let mut stdin = live.0.stdin.take().unwrap();
    stdin.write_all(b"echo live-$((40+2))\n").unwrap();
    let stdout = live.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the live shell never answered");
        if line.contains("live-42") {
            break;
        }
    }
    let revoked_at = Instant::now();
    cli.ok(
        "sam",
        &["revoke", &shell, "--reason", "contractor left the site"],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = live.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the shell was not cut");
        std::thread::sleep(Duration::from_millis(20));
    };
    let cut_after = revoked_at.elapsed();
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut live.0.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains(&format!(
            "grant {shell} was revoked by sam (contractor left the site)"
        )),
        "stderr of the cut shell: {err}"
    );
    assert!(
        cut_after < Duration::from_secs(10),
        "cut after {cut_after:?}"
    );
    let ended = wait_event(cli, &shell, "session.ended by revocation", |e| {
        e["kind"] == "session.ended" && detail(e)["reason"] == "grant_revoked"
    });
    // Its recording ends with the message the user saw.
    let cut_session = ended["session_id"]
        .as_str()
        .or(ended["data"]["session_id"].as_str())
        .unwrap_or_else(|| panic!("no session id in {ended:#}"))
        .to_string();
    let cast = cast_of(cli, &shell, &cut_session, &w.join("cut.cast"));
    assert!(cast.contains("live-42"), "{cast}");
    assert!(cast.contains("was revoked"), "{cast}");
    // The ended grant's certificate is refused from then on.
    let out = attempt(&key, &cert);
    assert!(
        text(&out.stderr).contains("grant_revoked"),
        "{}",
        text(&out.stderr)
    );

    // The teardown probed the SSH listener with a fresh certificate for the ended grant.
    let deadline = Instant::now() + Duration::from_secs(30);
    let t = loop {
        let t = cli.json("sam", &["teardown", &shell]);
        if t["verdict"] == "verified" {
            break t;
        }
        assert!(Instant::now() < deadline, "teardown never verified: {t:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let ssh_check = t["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "credential_refused" && c["evidence"]["protocol"] == "ssh")
        .unwrap_or_else(|| panic!("no SSH probe in {t:#}"))
        .clone();
    assert_eq!(ssh_check["outcome"], "ok", "{ssh_check:#}");
    assert_eq!(
        ssh_check["evidence"]["refusal_code"], "grant_revoked",
        "{ssh_check:#}"
    );
    // The downstream check reports the per-session target certificates and when the last
    // one expires.
    let down = check_of(&t, "downstream", "historian");
    assert_eq!(down["outcome"], "ok", "{down:#}");
    assert_eq!(down["evidence"]["target_auth"], "certificate", "{down:#}");
    assert!(
        down["evidence"]["target_certificates"].as_u64().unwrap() >= 1,
        "{down:#}"
    );
    assert!(
        down["evidence"]["target_certificates_valid_until"].is_string(),
        "{down:#}"
    );

    // --- sftp and one forwarding, when the scope names them.
    let files = ssh_grant(cli, &["sftp", &format!("forward 127.0.0.1:{sshd_port}")]);
    let (fkey, fcert) = user_cert(cli, &files, &w.join("c-files"));
    std::fs::write(w.join("hello.txt"), "hello over sftp\n").unwrap();
    let mut sftp = Command::new("sftp");
    sftp.args(["-F", "/dev/null", "-b", "-", "-i"])
        .arg(&fkey)
        .arg("-o")
        .arg(format!("CertificateFile={}", fcert.display()))
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-P",
            &gw_ssh_port.to_string(),
            "historian@127.0.0.1",
        ]);
    let dest = w.join("uploaded.txt");
    let back = w.join("downloaded.txt");
    let out = run(
        sftp,
        &format!(
            "put {} {}\nget {} {}\nrm {}\n",
            w.join("hello.txt").display(),
            dest.display(),
            dest.display(),
            back.display(),
            dest.display()
        ),
    );
    assert_eq!(out.status.code(), Some(0), "sftp: {}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "hello over sftp\n");
    assert!(!dest.exists(), "removed over sftp");
    // Each transfer is an operation: path, direction, size and the bytes' SHA-256.
    let digest = hex::encode(sha2::Sha256::digest(b"hello over sftp\n"));
    let dest_path = dest.display().to_string();
    for direction in ["upload", "download"] {
        let op = wait_event(cli, &files, &format!("sftp {direction}"), |e| {
            e["kind"] == "operation"
                && detail(e)["operation"] == "sftp_transfer"
                && detail(e)["direction"] == direction
        });
        let d = detail(&op);
        assert_eq!(d["target"], dest_path.as_str(), "{op:#}");
        assert_eq!(d["size"], 16, "{op:#}");
        assert_eq!(d["sha256"], digest.as_str(), "{op:#}");
        assert_eq!(d["complete"], true, "{op:#}");
    }
    wait_event(cli, &files, "sftp remove", |e| {
        e["kind"] == "operation"
            && detail(e)["operation"] == "sftp_remove"
            && detail(e)["target"] == dest_path.as_str()
    });
    // `ssh -W` to the named destination: the asset's own sshd answers with its banner.
    let mut c = ssh_cmd(&fkey, &fcert, gw_ssh_port, "historian");
    c.args(["-W", &format!("127.0.0.1:{sshd_port}")]);
    let out = run(c, "");
    assert!(
        text(&out.stdout).starts_with("SSH-2.0-OpenSSH"),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // At most 10 channels per session: the eleventh is refused, the ten work.
    channel_limit(&fkey, &fcert, gw_ssh_port, sshd_port);
    // Still no shell and no other destination.
    let out = run(ssh_cmd(&fkey, &fcert, gw_ssh_port, "historian"), "");
    assert_ne!(out.status.code(), Some(0));
    refused_op(cli, &files, "shell", None);
    let mut c = ssh_cmd(&fkey, &fcert, gw_ssh_port, "historian");
    c.args(["-W", &format!("127.0.0.1:{gw_ssh_port}")]);
    let out = run(c, "");
    assert!(
        !text(&out.stdout).contains("SSH-2.0"),
        "{}",
        text(&out.stdout)
    );
    refused_op(
        cli,
        &files,
        "direct-tcpip",
        Some(&format!("127.0.0.1:{gw_ssh_port}")),
    );

    // --- the asset's host key changed: refused.
    sshd.restart_with_host_key("../host_key_b");
    let mut c = ssh_cmd(&ckey, &ccert, gw_ssh_port, "historian");
    c.arg("echo jitgate-cmd-ok");
    let out = run(c, "");
    assert_ne!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains("jitgate-cmd-ok"));
    assert!(
        text(&out.stderr).contains("host_key_mismatch"),
        "{}",
        text(&out.stderr)
    );
    wait_event(cli, &cmd, "host_key_mismatch refusal", |e| {
        e["kind"] == "session.refused" && detail(e)["code"] == "host_key_mismatch"
    });

    drop(sshd);
    drop(live);
    p.stop();
}

/// Open 10 forwarding channels in one session (each reads the asset sshd's banner), then
/// an eleventh: refused as a resource shortage.
fn channel_limit(key: &Path, cert: &Path, gw_port: u16, dest_port: u16) {
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
    let key = russh::keys::load_secret_key(key, None).unwrap();
    let cert = russh::keys::load_openssh_certificate(cert).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = std::sync::Arc::new(russh::client::Config::default());
        let mut h = russh::client::connect(config, ("127.0.0.1", gw_port), AnyHost)
            .await
            .unwrap();
        let auth = h
            .authenticate_openssh_cert("historian", std::sync::Arc::new(key), cert)
            .await
            .unwrap();
        assert!(auth.success());
        let mut open = Vec::new();
        for _ in 0..10 {
            let mut ch = h
                .channel_open_direct_tcpip("127.0.0.1", u32::from(dest_port), "127.0.0.1", 1)
                .await
                .unwrap();
            let banner = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    match ch.wait().await {
                        Some(russh::ChannelMsg::Data { data }) => return data,
                        Some(_) => {}
                        None => panic!("channel closed before the banner"),
                    }
                }
            })
            .await
            .unwrap();
            assert!(banner.starts_with(b"SSH-2.0-"), "{banner:?}");
            open.push(ch);
        }
        let eleventh = h
            .channel_open_direct_tcpip("127.0.0.1", u32::from(dest_port), "127.0.0.1", 1)
            .await;
        assert!(
            matches!(
                eleventh,
                Err(russh::Error::ChannelOpenFailure(
                    russh::ChannelOpenFailure::ResourceShortage
                ))
            ),
            "{:?}",
            eleventh.err()
        );
        drop(open);
        let _ = h
            .disconnect(russh::Disconnect::ByApplication, "done", "en")
            .await;
    });
}

/// The complete recording of `session` (all chunks stored), written to `file` by `jitgate
/// recordings play --raw`.
fn cast_of(cli: &Cli, grant: &str, session: &str, file: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = cli.json("alice", &["recordings", "list", "--grant", grant]);
        let done = list.as_array().unwrap().iter().any(|r| {
            r["session_id"] == session && r["complete"] == true && r["stored_chunks"] == r["chunks"]
        });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no complete recording of {session}: {list:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cli.ok(
        "alice",
        &[
            "recordings",
            "play",
            session,
            "--raw",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    std::fs::read_to_string(file).unwrap()
}
