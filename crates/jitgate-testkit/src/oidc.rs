//! The real OpenID provider of the SSO tests: `e2e/console/oidc_provider.mjs`, which runs
//! the certified `oidc-provider` npm package on a loopback port, started by node; and
//! [`sign_in_at_provider`], a minimal browser (cookies, redirects, its two HTML forms) that
//! signs in on the provider's own login and consent pages.
//!
//! Without `e2e/console/node_modules` (run `npm ci` there) [`OidcProvider::start`] skips
//! loudly, or fails when `JITGATE_REQUIRE_PEERS=1` (CI sets it).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The client the provider knows jitgate as.
pub const CLIENT_ID: &str = "jitgate";
pub const CLIENT_SECRET: &str = "jitgate-test-secret";

/// `oidc-provider` running in node, killed when dropped.
pub struct OidcProvider {
    /// `http://127.0.0.1:<port>`.
    pub issuer: String,
    child: Child,
}

fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e/console")
}

fn required() -> bool {
    std::env::var("JITGATE_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

impl OidcProvider {
    /// Can the provider run here? `false` (after a loud message) when node or the npm
    /// package is missing and peers are not required; a panic when they are.
    pub fn available() -> bool {
        let dir = e2e_dir();
        let missing = if !dir.join("node_modules/oidc-provider").is_dir() {
            Some("e2e/console/node_modules/oidc-provider (run `npm ci` in e2e/console)")
        } else if Command::new("node").arg("--version").output().is_err() {
            Some("node")
        } else {
            None
        };
        if let Some(what) = missing {
            if required() {
                panic!("{what} is required (JITGATE_REQUIRE_PEERS=1) but missing");
            }
            eprintln!(
                "\n!!!!!!!!!!\n!!! SKIPPED: {what} is not available; set JITGATE_REQUIRE_PEERS=1 \
                 to make this a failure\n!!!!!!!!!!\n"
            );
            return false;
        }
        true
    }

    /// Start the provider with jitgate's client and these redirect URIs; `None` when it
    /// cannot run here ([`OidcProvider::available`]).
    pub fn start(redirect_uris: &[String]) -> Option<OidcProvider> {
        if !Self::available() {
            return None;
        }
        let dir = e2e_dir();
        let opts = serde_json::json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": redirect_uris,
            "exit_with_stdin": true,
        });
        let mut child = Command::new("node")
            .arg(dir.join("oidc_provider.mjs"))
            .arg(opts.to_string())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node oidc_provider.mjs");
        let stdout = child.stdout.take().expect("provider stdout");
        let mut line = String::new();
        let mut reader = std::io::BufReader::new(stdout);
        reader
            .read_line(&mut line)
            .expect("read the provider's first line");
        // Keep reading what it prints: a closed pipe would end the provider at its next line.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let v: serde_json::Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("oidc_provider.mjs said {line:?}, not its issuer: {e}"));
        let issuer = v["issuer"].as_str().expect("issuer").to_string();
        Some(OidcProvider { issuer, child })
    }

    /// Stop it now (its keys and discovery become unreachable).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

fn attr<'a>(html: &'a str, tag_start: usize, name: &str) -> Option<&'a str> {
    let tag_end = html[tag_start..].find('>')? + tag_start;
    let tag = &html[tag_start..tag_end];
    let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let len = tag[at..].find('"')?;
    Some(&tag[at..at + len])
}

/// Follow `url` through the provider's pages as `login` (any password), submitting its
/// login and consent forms, until a redirect leaves the provider; that URL (jitgate's
/// callback, or the CLI's loopback address) is returned, not followed.
pub async fn sign_in_at_provider(url: &str, login: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let start = url::Url::parse(url).expect("authorization URL");
    let origin = start.origin();
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut next = start;
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..20 {
        let jar = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = match form.take() {
            Some(fields) => http.post(next.clone()).form(&fields),
            None => http.get(next.clone()),
        };
        let resp = req
            .header("cookie", jar)
            .send()
            .await
            .expect("reach the provider");
        for c in resp.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap_or("");
            if let Some((k, v)) = c.split(';').next().and_then(|p| p.split_once('=')) {
                if v.is_empty() || c.to_ascii_lowercase().contains("max-age=0") {
                    cookies.remove(k);
                } else {
                    cookies.insert(k.to_string(), v.to_string());
                }
            }
        }
        let status = resp.status();
        if status.is_redirection() {
            let loc = resp.headers()["location"].to_str().expect("location");
            let target = next.join(loc).expect("redirect target");
            if target.origin() != origin {
                return target.to_string();
            }
            next = target;
            continue;
        }
        let html = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "provider answered {status}: {html}");
        let form_at = html
            .find("<form")
            .unwrap_or_else(|| panic!("no form on {next}: {html}"));
        let action = attr(&html, form_at, "action").expect("form action");
        let prompt_at = html[form_at..]
            .find("name=\"prompt\"")
            .map(|i| html[..form_at + i].rfind("<input").unwrap_or(form_at))
            .expect("the form's prompt");
        let prompt = attr(&html, prompt_at, "value")
            .expect("prompt value")
            .to_string();
        let mut fields = vec![("prompt".to_string(), prompt.clone())];
        if prompt == "login" {
            fields.push(("login".into(), login.into()));
            fields.push(("password".into(), "any password".into()));
        }
        next = next.join(action).expect("form target");
        form = Some(fields);
    }
    panic!("the provider's pages did not end in a redirect away from it");
}
