//! The compliance report through the real binary: `jitgate up`, a completed grant, `evidence
//! compliance-report` as JSON and as a page, then the auditor's offline `verify-report` (no
//! server, no profile) on both, on an altered page, and with another log's key file.

use crate::evidence::offline_cmd;
use crate::quickstart::{free_port, Cli, Up};

#[test]
fn compliance_report_from_the_server_to_offline_verification() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("jitgate-data");
    let up = Up::start(&data, free_port());
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    let pw = |who: &str| creds["passwords"][who].as_str().unwrap().to_string();
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    for who in ["alice", "bob", "sam"] {
        cli.login(who, &pw(who));
    }
    let from = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    cli.ok(
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
    let req = cli.json("alice", &["requests", "--mine"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let grant = cli.json("bob", &["approve", &req, "--comment", "ok"])["grant"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    cli.ok("alice", &["complete", &grant]);
    let to = chrono::Utc::now().to_rfc3339();

    let page = tmp.path().join("report.html");
    let json = tmp.path().join("report.json");
    let said = cli.ok(
        "sam",
        &[
            "evidence",
            "compliance-report",
            "--from",
            &from,
            "--to",
            &to,
            "--site",
            "north",
            "--html",
            "-o",
            page.to_str().unwrap(),
        ],
    );
    assert!(
        said.contains("site north") && said.contains("1 grants issued"),
        "{said}"
    );
    assert!(said.contains("jitgate evidence verify-report"), "{said}");
    cli.ok(
        "sam",
        &[
            "evidence",
            "compliance-report",
            "--from",
            &from,
            "--to",
            &to,
            "-o",
            json.to_str().unwrap(),
        ],
    );
    let keys = tmp.path().join("evidence.pub");
    cli.ok(
        "sam",
        &["evidence", "public-key", "-o", keys.to_str().unwrap()],
    );

    // The auditor's machine: files only.
    let auditor = tempfile::tempdir().unwrap();
    for file in [&page, &json] {
        let out = offline_cmd(
            auditor.path(),
            &[
                "evidence",
                "verify-report",
                file.to_str().unwrap(),
                "--key",
                keys.to_str().unwrap(),
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("compliance report verified") && text.contains("1 grants issued"),
            "{text}"
        );
    }
    let out = offline_cmd(
        auditor.path(),
        &[
            "--json",
            "evidence",
            "verify-report",
            json.to_str().unwrap(),
            "--key",
            keys.to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["report"]["grants"]["ended"], 1);

    // One changed character on the page: refused, exit 1, saying where.
    let html = std::fs::read_to_string(&page).unwrap();
    let altered = tmp.path().join("altered.html");
    std::fs::write(&altered, html.replacen("Grants ended", "Grants ender", 1)).unwrap();
    let out = offline_cmd(
        auditor.path(),
        &[
            "evidence",
            "verify-report",
            altered.to_str().unwrap(),
            "--key",
            keys.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does NOT verify") && err.contains("changed after it was made"),
        "{err}"
    );

    // Another log's key file: refused.
    let other = tmp.path().join("other.pub");
    std::fs::write(
        &other,
        jitgate_evidence::EvidenceKey::generate()
            .unwrap()
            .public()
            .to_line(),
    )
    .unwrap();
    let out = offline_cmd(
        auditor.path(),
        &[
            "evidence",
            "verify-report",
            json.to_str().unwrap(),
            "--key",
            other.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("checkpoint does not verify"));

    // A period that is not over, and a missing period: told what to do.
    let out = cli.run(
        "sam",
        &[
            "evidence",
            "compliance-report",
            "--month",
            "2999-01",
            "-o",
            json.to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ends in the future"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli.run(
        "sam",
        &[
            "evidence",
            "compliance-report",
            "-o",
            json.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--month"));
    drop(up);
}
