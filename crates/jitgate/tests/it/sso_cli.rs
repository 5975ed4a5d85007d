//! `jitgate login --sso` through the real binary, against the real OpenID provider
//! (`oidc-provider` from npm; `jitgate_testkit::oidc`) and `jitgate serve` with an `[sso]`
//! configuration. The browser step is done by an HTTP client (`sign_in_at_provider`: the
//! provider's own login and consent forms, its cookies and redirects), which then follows
//! the last redirect to the CLI's loopback address as a browser would. Also: the CLI names
//! the providers when none is given and several exist, and a refused sign-in (an unmapped
//! login) comes back to the terminal with its code.

use crate::quickstart::{serve_config, Serve};
use jitgate_testkit::oidc::{sign_in_at_provider, OidcProvider, CLIENT_SECRET};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_jitgate");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(dir: &std::path::Path, port: u16, issuer: &str) -> Serve {
    let secret = dir.join("client-secret");
    std::fs::write(&secret, format!("{CLIENT_SECRET}\n")).unwrap();
    let plant =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/plant.toml");
    let redirect = format!("http://127.0.0.1:{port}/api/v1/auth/sso/plant-idp/callback");
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\ninventory = {plant:?}\n\n\
         [sso]\nsso_only = [\"bob\"]\n\n\
         [[sso.providers]]\nname = \"plant-idp\"\ndisplay_name = \"Plant IdP\"\nissuer = {issuer:?}\n\
         client_id = \"jitgate\"\nclient_secret_file = {secret:?}\nredirect_url = {redirect:?}\n\
         scopes = [\"email\"]\n\n\
         [[sso.providers.map]]\nidentity = \"bob\"\nsubject = \"bob\"\n\n\
         [[sso.providers]]\nname = \"other-idp\"\nissuer = {issuer:?}\nclient_id = \"other\"\n\
         redirect_url = \"http://127.0.0.1:{port}/api/v1/auth/sso/other-idp/callback\"\n\n\
         [[sso.providers.map]]\nidentity = \"carol\"\nsubject = \"carol\"\n",
        data = dir.join("data").display().to_string(),
        plant = plant.display().to_string(),
        secret = secret.display().to_string(),
    );
    let file = dir.join("jitgate.toml");
    std::fs::write(&file, config).unwrap();
    serve_config(&file, port)
}

type Stderr = std::sync::Arc<std::sync::Mutex<String>>;

/// `jitgate login --sso ...` started; the URL it printed to open; what it prints to stderr.
#[expect(
    clippy::zombie_processes,
    reason = "the child is returned to the caller, who waits for it"
)]
fn start_login(server: &str, profile: &std::path::Path, extra: &[&str]) -> (Child, String, Stderr) {
    let mut child = Command::new(BIN)
        .arg("--server")
        .arg(server)
        .arg("--profile")
        .arg(profile)
        .args(["login", "--sso"])
        .args(extra)
        .env_remove("JITGATE_TOKEN")
        .env_remove("JITGATE_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("jitgate login --sso printed no URL: {seen}");
        }
        seen.push_str(&line);
        if let Some(url) = line.trim().strip_prefix("http") {
            // Keep reading stderr (the CLI must never block on a full pipe), for the test.
            let rest: Stderr = Default::default();
            let sink = rest.clone();
            std::thread::spawn(move || {
                for line in err.lines().map_while(Result::ok) {
                    sink.lock().unwrap().push_str(&line);
                }
            });
            return (child, format!("http{url}"), rest);
        }
    }
}

fn finish(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn login_sso_through_the_binary_and_a_real_openid_provider() {
    if !OidcProvider::available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let op = OidcProvider::start(&[format!(
        "http://127.0.0.1:{port}/api/v1/auth/sso/plant-idp/callback"
    )])
    .unwrap();
    let _server = serve(tmp.path(), port, &op.issuer);
    let server = format!("http://127.0.0.1:{port}");
    let profile = tmp.path().join("bob.toml");

    // Two providers and none named: the CLI says which exist, and starts nothing.
    let out = Command::new(BIN)
        .args(["--server", &server, "--profile"])
        .arg(&profile)
        .args(["login", "--sso"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--provider") && err.contains("other-idp") && err.contains("plant-idp"),
        "{err}"
    );

    // bob signs in: the browser step, then the browser follows the redirect to the CLI.
    let (cli, url, _) = start_login(&server, &profile, &["--provider", "plant-idp"]);
    assert!(url.starts_with(&op.issuer), "{url}");
    let loopback = sign_in_at_provider(&url, "bob").await;
    let loopback = reqwest::get(&loopback).await.unwrap();
    assert!(
        loopback.url().as_str().starts_with("http://127.0.0.1:"),
        "{}",
        loopback.url()
    );
    let page = loopback.text().await.unwrap();
    assert!(page.contains("Signed in to jitgate"), "{page}");
    let (ok, stdout) = finish(cli);
    assert!(ok, "{stdout}");
    assert!(stdout.contains("logged in as bob"), "{stdout}");
    let who = Command::new(BIN)
        .args(["--json", "--profile"])
        .arg(&profile)
        .arg("whoami")
        .output()
        .unwrap();
    let who: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(
        (who["identity"]["id"].as_str(), who["auth_method"].as_str()),
        (Some("bob"), Some("oidc")),
        "{who}"
    );

    // Someone the mapping does not know: the refusal reaches the terminal with its code.
    let other = tmp.path().join("mallory.toml");
    let (cli, url, stderr) = start_login(&server, &other, &["--provider", "plant-idp"]);
    let loopback = sign_in_at_provider(&url, "mallory").await;
    let page = reqwest::get(&loopback).await.unwrap().text().await.unwrap();
    assert!(page.contains("sso_unmapped"), "{page}");
    let out = cli.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(!other.exists(), "no session saved");
    // The thread has read everything once the CLI exited and its pipe closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stderr.lock().unwrap().contains("sso_unmapped") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = stderr.lock().unwrap().clone();
    assert!(
        err.contains("sso_unmapped") && err.contains("mallory"),
        "{err}"
    );
}

/// `jitgate check` validates the `[sso]` mapping against the inventory without starting
/// anything: a good one is reported, two rules that could map one login to two people are
/// refused naming both.
#[test]
fn check_validates_the_sso_mapping() {
    let tmp = tempfile::tempdir().unwrap();
    let plant =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/plant.toml");
    let config = |second_rule: &str| {
        let file = tmp.path().join("c.toml");
        std::fs::write(
            &file,
            format!(
                "[[sso.providers]]\nname = \"plant-idp\"\nissuer = \"https://idp.plant.example\"\n\
                 client_id = \"jitgate\"\n\
                 redirect_url = \"https://jitgate.plant.example/api/v1/auth/sso/plant-idp/callback\"\n\n\
                 [[sso.providers.map]]\nidentity = \"alice\"\nsubject = \"a\"\n\n\
                 [[sso.providers.map]]\nidentity = \"bob\"\n{second_rule}\n"
            ),
        )
        .unwrap();
        Command::new(BIN)
            .args(["check", "--config"])
            .arg(&file)
            .arg("--inventory")
            .arg(&plant)
            .output()
            .unwrap()
    };
    let out = config("subject = \"b\"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sso: ok — 1 provider(s)"));
    let out = config("email = \"bob@plant.example\"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("map #1 (alice) and map #2 (bob)"), "{err}");
}
