//! `jitgate exception request|list|show|revalidate|end` through the real binary against
//! `jitgate up`: the help teaches with an example, bad arguments are usage errors, a policy
//! denial exits 1, and an exception goes pending → approved (with `jitgate approve`) →
//! re-validated by its owner → ended by its owner, each visible in `list` and `show`.
//!
//! The sample plant has one security person, so the policy set here is the default one with
//! the batch-job exception approved by one of them.

use crate::quickstart::{free_port, Cli, Up, BIN};
use std::process::Command;

const ONE_APPROVER: &str = r#"
@id("exception-workload-batch-read")
@approvals("1")
@approver_role("security")
@max_duration("365d")
permit (principal, action == Jitgate::Action::"request", resource)
when {
  principal.kind == "workload" && context.path == "standing" &&
  resource.enforcement == "brokered" && !context.writes && resource.criticality_rank <= 2
};
@id("forbid-standing-vendor")
@reason("vendors never hold standing access; request it on the planned path each time it is needed")
forbid (principal, action, resource)
when { context.path == "standing" && principal.kind == "vendor" };
"#;

fn policies(dir: &std::path::Path) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    std::fs::create_dir_all(dir).unwrap();
    for f in [
        "00-guardrails.cedar",
        "10-humans.cedar",
        "20-vendors.cedar",
        "30-workloads.cedar",
        "40-break-glass.cedar",
    ] {
        std::fs::copy(repo.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("50-exceptions.cedar"), ONE_APPROVER).unwrap();
}

const REQUEST: &[&str] = &[
    "exception",
    "request",
    "--subject",
    "svc-historian",
    "--asset",
    "historian",
    "--modbus",
    "read holding 0-999",
    "--expires-in",
    "180d",
    "--revalidate-every",
    "30d",
    "--owner",
    "oscar",
    "--control",
    "sessions recorded, reviewed weekly",
    "--reason",
    "nightly historian export",
    "--ref",
    "RA-17",
];

#[test]
fn exception_verbs_through_the_real_binary() {
    // The help teaches, with an example, without a server.
    let help = Command::new(BIN)
        .args(["exception", "request", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("jitgate exception request --subject svc-historian"),
        "{text}"
    );
    assert!(text.contains("--revalidate-every"), "{text}");
    let help = Command::new(BIN)
        .args(["exception", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for verb in ["request", "list", "show", "revalidate", "end"] {
        assert!(text.contains(verb), "{verb}: {text}");
    }

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = tmp.path().join("policies");
    policies(&dir);
    let up = Up::start_with(&data, free_port(), Some(&dir));
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    for who in ["alice", "sam", "oscar", "bob", "vera"] {
        cli.login(who, creds["passwords"][who].as_str().unwrap());
    }

    // A usage error before anything is sent: no compensating control.
    let no_control: Vec<&str> = REQUEST
        .iter()
        .copied()
        .filter(|a| *a != "--control" && *a != "sessions recorded, reviewed weekly")
        .collect();
    let out = cli.run("alice", &no_control, None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--control"));
    // The server's rule: the owner may not be tied to the subject (alice owns it).
    let mut own: Vec<&str> = REQUEST.to_vec();
    let at = own.iter().position(|a| *a == "oscar").unwrap();
    own[at] = "alice";
    let out = cli.run("alice", &own, None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("separation_of_duties"));

    // Filed: pending, one security approval asked for.
    let ex = cli.json("alice", REQUEST);
    assert_eq!(ex["state"], "pending", "{ex}");
    let id = ex["id"].as_str().unwrap().to_string();
    let req = ex["request_id"].as_str().unwrap().to_string();
    let listed = cli.ok("oscar", &["exception", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("pending") && listed.contains("oscar"),
        "{listed}"
    );

    // Not active yet: nothing to re-validate.
    let out = cli.run(
        "oscar",
        &["exception", "revalidate", &id, "--note", "still needed"],
        None,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong_state"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // sam (security) approves the request behind it: active.
    cli.ok(
        "sam",
        &["approve", &req, "--comment", "export reviewed with QA"],
    );
    let shown = cli.ok("oscar", &["exception", "show", &id]);
    assert!(shown.contains("active"), "{shown}");
    assert!(
        shown.contains("sessions recorded, reviewed weekly"),
        "{shown}"
    );
    assert!(shown.contains("never"), "no use yet: {shown}");

    // bob is not the owner nor security staff; alice owns the subject.
    let out = cli.run(
        "bob",
        &["exception", "revalidate", &id, "--note", "x"],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden"));
    let out = cli.run(
        "alice",
        &["exception", "revalidate", &id, "--note", "x"],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("separation_of_duties"));
    let v = cli.json(
        "oscar",
        &[
            "exception",
            "revalidate",
            &id,
            "--note",
            "export still feeds the QA report",
        ],
    );
    assert_eq!(v["last_revalidated_by"], "oscar", "{v}");
    let active = cli.json("sam", &["exception", "list", "--state", "active"]);
    assert_eq!(active.as_array().unwrap().len(), 1, "{active}");

    // The owner ends it: revoked, listed as ended.
    let out = cli.run("oscar", &["exception", "end", &id, "--reason", ""], None);
    assert_eq!(out.status.code(), Some(2));
    let v = cli.json(
        "oscar",
        &["exception", "end", &id, "--reason", "export job retired"],
    );
    assert_eq!(
        (v["state"].as_str(), v["end_reason"].as_str()),
        (Some("ended"), Some("revoked")),
        "{v}"
    );
    let ended = cli.ok("sam", &["exception", "list", "--state", "ended"]);
    assert!(ended.contains(&id), "{ended}");

    // A vendor's exception is denied by policy: recorded, exit 1.
    let out = cli.run(
        "vera",
        &[
            "exception",
            "request",
            "--asset",
            "plc-3",
            "--modbus",
            "read holding 0-9 unit 1",
            "--expires-in",
            "30d",
            "--revalidate-every",
            "7d",
            "--owner",
            "sam",
            "--control",
            "recorded",
            "--reason",
            "remote support",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("denied"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    up.stop();
}
