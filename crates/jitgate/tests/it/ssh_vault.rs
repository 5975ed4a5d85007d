//! An asset that cannot trust jitgate's CA (`endpoints.ssh.auth = "vaulted_key"`): the real
//! gateway logs in to a real `sshd` whose `authorized_keys` holds the key `jitgate gateway
//! vault-key` made, the user still presents only a per-grant certificate, and the teardown
//! says `partial` because the key stands on the asset.

use crate::quickstart::BIN;
use crate::ssh_gateway::{
    check_of, detail, have_openssh, keygen, run, skip, ssh_cmd, ssh_grant, ssh_plant, text,
    user_cert, wait_event, Sshd,
};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_vaulted_key_reaches_the_asset_and_its_teardown_is_partial() {
    if !have_openssh() {
        skip("OpenSSH (ssh, sftp, ssh-keygen and /usr/sbin/sshd: apt-get install openssh-client openssh-server)");
        return;
    }
    let (p, account, sshd_port, gw_ssh_port) = ssh_plant(", auth = \"vaulted_key\"");
    let cli = &p.cli;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    keygen(&w.join("host_key"));
    let shell = ssh_grant(cli, &["shell"]);
    let (key, cert) = user_cert(cli, &shell, &w.join("c-shell"));

    // Before the gateway holds a key for the asset: refused, saying what to run.
    let mut c = ssh_cmd(&key, &cert, gw_ssh_port, "historian");
    c.arg("-tt");
    let out = run(c, "exit\n");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("vault_key_missing"),
        "{}",
        text(&out.stderr)
    );
    let refused = wait_event(cli, &shell, "vault_key_missing refusal", |e| {
        e["kind"] == "session.refused" && detail(e)["code"] == "vault_key_missing"
    });
    assert!(
        detail(&refused)["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("vault-key historian"),
        "{refused:#}"
    );

    // The key, made once: the same public line every time, the private half owner-only.
    let vault_key = |asset: &str| {
        Command::new(BIN)
            .args(["gateway", "--config"])
            .arg(p.gw_config())
            .args(["vault-key", asset])
            .output()
            .unwrap()
    };
    let made = vault_key("historian");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let line = text(&made.stdout);
    assert!(line.starts_with("ssh-ed25519 "), "{line}");
    assert!(
        line.trim_end().ends_with("jitgate-vault historian"),
        "{line}"
    );
    let again = vault_key("historian");
    assert_eq!(text(&again.stdout), line, "a vaulted key is never replaced");
    let state_dir = p.gw_config().parent().unwrap().join("gw");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(state_dir.join("ssh-vault").join("historian"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        !vault_key("../escape").status.success(),
        "a path is not an asset id"
    );

    // The asset trusts only that key (no CA): the session works.
    let _sshd = Sshd::start_with_authorized_keys(&w.join("sshd"), sshd_port, &line, "../host_key");
    let mut c = ssh_cmd(&key, &cert, gw_ssh_port, "historian");
    c.arg("-tt");
    let out = run(c, "echo vault-$((6*7))\nexit\n");
    assert!(
        text(&out.stdout).contains("vault-42"),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let login = wait_event(cli, &shell, "target_login with the vaulted key", |e| {
        e["kind"] == "operation" && detail(e)["operation"] == "target_login"
    });
    assert_eq!(detail(&login)["target"], account.as_str(), "{login:#}");
    // No target certificate was issued: the asset would not trust one.
    let events = cli.json("sam", &["events", "--grant", &shell, "--limit", "500"]);
    assert!(
        !events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["data"]["credential"] == "ssh_target_certificate"),
        "{events:#}"
    );

    // Ended: the teardown is partial, and says why.
    cli.ok("sam", &["revoke", &shell, "--reason", "maintenance done"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let t = loop {
        let t = cli.json("sam", &["teardown", &shell]);
        if t["verdict"] == "partial" {
            break t;
        }
        assert!(
            t["verdict"] != "verified" && Instant::now() < deadline,
            "teardown never partial: {t:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let down = check_of(&t, "downstream", "historian");
    assert_eq!(down["outcome"], "partial", "{down:#}");
    assert_eq!(down["evidence"]["target_auth"], "vaulted_key", "{down:#}");
    assert!(
        down["detail"]
            .as_str()
            .unwrap()
            .contains("gateway gw-north"),
        "{down:#}"
    );
    // The gateway checks themselves held: only the standing key makes it partial.
    for c in t["checks"].as_array().unwrap() {
        if c["check"] != "downstream" {
            assert_eq!(c["outcome"], "ok", "{c:#}");
        }
    }
}
