//! TLS through the real binaries on loopback: `jitgate up --tls` generates a CA and a server
//! certificate and prints its fingerprint; the CLI and `jitgate gateway` pin it (fingerprint
//! or CA file) and refuse a server with another certificate; responses carry HSTS; plain
//! HTTP off loopback is refused at start; `connect` keeps its port on loopback unless told.

use crate::quickstart::{free_port, Cli, BIN};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `jitgate up --tls` as a process, its stderr collected.
pub(crate) struct TlsUp {
    child: Child,
    pub(crate) stderr: Arc<Mutex<String>>,
    pub(crate) server: String,
    pub(crate) data: PathBuf,
}

impl Drop for TlsUp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsUp {
    // Every path that does not hand the child to `TlsUp` (whose Drop reaps it) panics.
    #[allow(clippy::zombie_processes)]
    pub(crate) fn start(data: &Path, port: u16) -> TlsUp {
        let mut child = Command::new(BIN)
            .args(["up", "--tls", "--data-dir", data.to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && data.join("bootstrap-credentials.toml").exists()
            {
                return TlsUp {
                    child,
                    stderr,
                    server: format!("https://127.0.0.1:{port}"),
                    data: data.to_path_buf(),
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "jitgate up --tls exited ({status}): {}",
                    stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "jitgate up --tls did not come up: {}",
            stderr.lock().unwrap()
        );
    }

    /// The fingerprint computed from the certificate file it generated.
    pub(crate) fn fingerprint(&self) -> String {
        let tls = self.data.join("tls");
        let (certs, _) = jitgate_gateway::tls::load_pem(
            &tls.join("server-cert.pem"),
            &tls.join("server-key.pem"),
        )
        .unwrap();
        jitgate_gateway::tls::fingerprint(&certs[0])
    }

    pub(crate) fn password(&self, who: &str) -> String {
        let creds: toml::Value = toml::from_str(
            &std::fs::read_to_string(self.data.join("bootstrap-credentials.toml")).unwrap(),
        )
        .unwrap();
        creds["passwords"][who].as_str().unwrap().to_string()
    }

    pub(crate) fn gateway_key(&self) -> String {
        let creds: toml::Value = toml::from_str(
            &std::fs::read_to_string(self.data.join("bootstrap-credentials.toml")).unwrap(),
        )
        .unwrap();
        creds["api_keys"]["gw-north"].as_str().unwrap().to_string()
    }
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn login(cli: &Cli, who: &str, password: &str, extra: &[&str]) -> Output {
    let mut args = vec!["login", "--identity", who, "--password-stdin"];
    args.extend_from_slice(extra);
    cli.run(who, &args, Some(&format!("{password}\n")))
}

/// Run `jitgate gateway` with this config until the server reports its control channel up
/// (`Ok`), or it exits (`Err(stderr)`).
pub(crate) fn gateway(cli: &Cli, config: &Path) -> Result<Child, String> {
    let mut gw = Command::new(BIN)
        .args(["gateway", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained from the start: a gateway logging while the test runs must not block.
    let stderr = crate::quickstart::Drained::new(gw.stderr.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(_)) = gw.try_wait() {
            return Err(stderr.finish());
        }
        let gateways = cli.json("sam", &["gateways"]);
        if gateways
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == "gw-north" && g["control_connected"] == true)
        {
            return Ok(gw);
        }
        assert!(Instant::now() < deadline, "gw-north never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn write_gateway_config(dir: &Path, name: &str, up: &TlsUp, pin: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "server = \"{}\"\napi_key = \"{}\"\nlisten = \"127.0.0.1:{}\"\nstate_dir = \"{}\"\n{pin}\n",
            up.server,
            up.gateway_key(),
            free_port(),
            dir.join(format!("{}-state", name.split('.').next().unwrap_or(name)))
                .display()
        ),
    )
    .unwrap();
    path
}

#[cfg(unix)]
pub(crate) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_server_over_tls_is_pinned_by_cli_and_gateway_and_another_certificate_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let up = TlsUp::start(&tmp.path().join("data"), port);
    let fp = up.fingerprint();

    // `up` prints the fingerprint; the generated files are owner-only.
    let printed = up.stderr.lock().unwrap().clone();
    assert!(
        printed.contains(&format!("TLS certificate fingerprint: {fp}")),
        "{printed}"
    );
    #[cfg(unix)]
    {
        let tls = up.data.join("tls");
        assert_eq!(mode(&tls), 0o700);
        for f in [
            "ca-cert.pem",
            "ca-key.pem",
            "server-cert.pem",
            "server-key.pem",
        ] {
            assert_eq!(mode(&tls.join(f)), 0o600, "{f}");
        }
    }

    // HSTS on every response over TLS (a pinned client, as the gateway builds it).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let trust = jitgate_gateway::server_trust::ServerTrust::Fingerprint(fp.clone());
    let config = jitgate_gateway::server_trust::client_config(&trust).unwrap();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls((*config).clone())
        .build()
        .unwrap();
    for path in ["/healthz", "/api/v1/no-such-route", "/console/"] {
        let resp = rt
            .block_on(http.get(format!("{}{path}", up.server)).send())
            .unwrap();
        assert_eq!(
            resp.headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap().to_string())
                .as_deref(),
            Some("max-age=31536000"),
            "{path}"
        );
    }

    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    let alice = up.password("alice");

    // No terminal and no fingerprint: refused, nothing sent, no profile written.
    let out = login(&cli, "alice", &alice, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("--server-fingerprint {fp}")),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.path().join("alice.toml").exists());

    // A wrong fingerprint: refused.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let out = login(&cli, "alice", &alice, &["--server-fingerprint", &wrong]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refusing the server"),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.path().join("alice.toml").exists());

    // The right one: logged in, the pin saved with the profile, used from then on.
    for who in ["alice", "sam"] {
        let out = login(&cli, who, &up.password(who), &["--server-fingerprint", &fp]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let profile = std::fs::read_to_string(tmp.path().join("alice.toml")).unwrap();
    assert!(
        profile.contains(&format!("server_fingerprint = \"{fp}\"")),
        "{profile}"
    );
    let me = cli.json("alice", &["whoami"]);
    assert_eq!(me["identity"]["id"], "alice", "{me}");

    // The gateway pinned by fingerprint: its control channel (wss://) comes up.
    let gw_fp = write_gateway_config(
        tmp.path(),
        "gw-fp.fp",
        &up,
        &format!("server_fingerprint = \"{fp}\""),
    );
    let mut gw = gateway(&cli, &gw_fp).expect("gateway pinned by fingerprint");
    let _ = gw.kill();
    let _ = gw.wait();

    // ... and by the generated CA (the same gateway: its state directory holds the client
    // certificate it enrolled above; another one could not enrol with the same API key).
    let gw_ca = write_gateway_config(
        tmp.path(),
        "gw-fp.ca",
        &up,
        &format!(
            "server_ca_file = \"{}\"",
            up.data.join("tls/ca-cert.pem").display()
        ),
    );
    let mut gw = gateway(&cli, &gw_ca).expect("gateway pinned by CA");
    let _ = gw.kill();
    let _ = gw.wait();

    // A wrong fingerprint: the gateway refuses the server and does not start.
    let gw_wrong = write_gateway_config(
        tmp.path(),
        "gw-wrong",
        &up,
        &format!("server_fingerprint = \"{wrong}\""),
    );
    let err = gateway(&cli, &gw_wrong).expect_err("a wrong pin must stop the gateway");
    assert!(
        err.contains("certificate is not trusted") && err.contains(&fp),
        "{err}"
    );

    // An https:// server with no pin at all: a configuration error.
    let gw_none = write_gateway_config(tmp.path(), "gw-none", &up, "");
    let err = gateway(&cli, &gw_none).expect_err("no pin must stop the gateway");
    assert!(err.contains("server_fingerprint"), "{err}");

    // Another server, with another CA, on the same address: the CLI (pinned in its profile)
    // and the gateway (pinned by fingerprint, or by the first server's CA) refuse it.
    drop(up);
    let other = TlsUp::start(&tmp.path().join("other"), port);
    assert_ne!(other.fingerprint(), fp);
    let out = cli.run("alice", &["whoami"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not the pinned one") && stderr(&out).contains(&other.fingerprint()),
        "{}",
        stderr(&out)
    );
    let other_cli = Cli {
        server: other.server.clone(),
        dir: tmp.path().join("other-profiles"),
    };
    std::fs::create_dir_all(&other_cli.dir).unwrap();
    let out = login(
        &other_cli,
        "sam",
        &other.password("sam"),
        &["--server-fingerprint", &other.fingerprint()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for (config, what) in [(&gw_fp, "fingerprint"), (&gw_ca, "CA")] {
        let err = gateway(&other_cli, config)
            .expect_err("a gateway must refuse a server with another certificate");
        assert!(err.contains("certificate is not trusted"), "{what}: {err}");
    }
}

#[test]
fn plain_http_off_loopback_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &format!("0.0.0.0:{port}")])
        .env("JITGATE_DATA_DIR", tmp.path().join("data"))
        .env_remove("JITGATE_TLS")
        .env_remove("JITGATE_INSECURE_PLAIN_HTTP_ON_TRUSTED_NETWORK")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("refusing to serve plain HTTP")
            && err.contains("[tls] enabled = true")
            && err.contains("insecure_plain_http_on_trusted_network = true"),
        "{err}"
    );
    // Nothing was created or opened.
    assert!(!tmp.path().join("data").join("jitgate.db").exists());

    // `up` too.
    let out = Command::new(BIN)
        .args(["up", "--data-dir", tmp.path().join("up").to_str().unwrap()])
        .args(["--listen", &format!("0.0.0.0:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("refusing to serve plain HTTP"),
        "{}",
        stderr(&out)
    );

    // The loudly named setting lets it start.
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", &format!("0.0.0.0:{port}")])
        .env("JITGATE_DATA_DIR", tmp.path().join("data"))
        .env("JITGATE_INSECURE_PLAIN_HTTP_ON_TRUSTED_NETWORK", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut listening = false;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            listening = true;
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited ({status})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        listening,
        "serve with the trusted-network setting did not listen"
    );
}

#[test]
fn connect_keeps_its_port_on_loopback_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args([
                "--server",
                "http://127.0.0.1:1",
                "--token",
                "x",
                "--profile",
            ])
            .arg(tmp.path().join("p.toml"))
            .args(["connect", "grant-abc", "--listen", "0.0.0.0:5020"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a loopback address") && stderr(&out).contains("--allow-remote"),
        "{}",
        stderr(&out)
    );
    // With --allow-remote the check passes and it goes on to the server (unreachable here).
    let out = run(&["--allow-remote"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn the_cli_trusts_the_server_by_its_ca_file_and_refuses_another_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let up = TlsUp::start(&tmp.path().join("data"), port);
    let ca = up.data.join("tls/ca-cert.pem");
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    // No terminal, no fingerprint: the CA file alone pins the server.
    let alice = up.password("alice");
    let out = login(
        &cli,
        "alice",
        &alice,
        &["--server-ca-file", ca.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let profile = std::fs::read_to_string(tmp.path().join("alice.toml")).unwrap();
    assert!(
        profile.contains(&format!("server_ca_file = \"{}\"", ca.display())),
        "{profile}"
    );
    assert!(!profile.contains("server_fingerprint"), "{profile}");
    let out = cli.run("alice", &["whoami"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("chains to the CA in"), "{shown}");
    // Both pins at the same level: a usage error, nothing sent.
    let fp = up.fingerprint();
    let out = login(
        &cli,
        "sam",
        &up.password("sam"),
        &[
            "--server-ca-file",
            ca.to_str().unwrap(),
            "--server-fingerprint",
            &fp,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Another server with another CA on the same address: refused under the saved CA, and a
    // login naming the first CA is refused too.
    let other_data = tmp.path().join("other");
    drop(up);
    let other = TlsUp::start(&other_data, port);
    let out = cli.run("alice", &["whoami"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));
    let out = login(
        &cli,
        "alice",
        &other.password("alice"),
        &["--server-ca-file", ca.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!stderr(&out).contains(&other.password("alice")));
}
