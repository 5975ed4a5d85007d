//! Post-session attestation and review campaigns through the real binary: `attest`,
//! `attestations`, `campaign open|list|show|decide|close` against `jitgate up`.

use crate::quickstart::{free_port, Cli, Up};

fn code(out: &std::process::Output) -> (Option<i32>, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn break_glass(cli: &Cli, reference: &str) -> String {
    let req = cli.json(
        "oscar",
        &[
            "request",
            "--asset",
            "plc-3",
            "--modbus",
            "read holding 0-9 unit 1",
            "--for",
            "15m",
            "--reason",
            "line stopped",
            "--ref",
            reference,
            "--path",
            "emergency",
        ],
    );
    assert_eq!(req["state"], "active", "{req}");
    req["grant"]["id"].as_str().unwrap().to_string()
}

#[test]
fn attest_and_run_a_campaign_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let up = Up::start(&data, free_port());
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    let pw = |who: &str| creds["passwords"][who].as_str().unwrap().to_string();
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    for who in ["oscar", "sam", "bob"] {
        cli.login(who, &pw(who));
    }
    let done = break_glass(&cli, "INC-1");
    let open = break_glass(&cli, "INC-2");

    // Attesting needs the session to be over, --done or --not-done, and happens once.
    let (c, err) = code(&cli.run("oscar", &["attest", &done, "--done"], None));
    assert_eq!(c, Some(1), "{err}");
    assert!(err.contains("wrong_state"), "{err}");
    cli.ok("oscar", &["complete", &done]);
    let (c, err) = code(&cli.run("oscar", &["attest", &done, "--change", "x"], None));
    assert_eq!(
        c,
        Some(2),
        "neither --done nor --not-done is a usage error: {err}"
    );
    let (c, err) = code(&cli.run("bob", &["attest", &done, "--done"], None));
    assert_eq!(c, Some(1), "{err}");
    let text = cli.ok(
        "oscar",
        &[
            "attest",
            &done,
            "--not-done",
            "--change",
            "conveyor C3 speed 1.2 -> 1.0",
            "--change",
            "reset alarm A17",
            "--note",
            "belt still slipping; WO-88",
        ],
    );
    assert!(
        text.contains(&format!(
            "attested grant {done}: task not done, 2 change(s)"
        )),
        "{text}"
    );
    let (c, err) = code(&cli.run("oscar", &["attest", &done, "--done"], None));
    assert_eq!(c, Some(1));
    assert!(err.contains("already_attested"), "{err}");
    let given = cli.json("sam", &["attestations"]);
    assert_eq!(given[0]["grant_id"], done.as_str(), "{given}");
    assert_eq!(given[0]["changes"][1], "reset alarm A17");
    let table = cli.ok("sam", &["attestations", "--missing"]);
    assert!(table.contains("no attestation is missing"), "{table}");

    // A campaign over the last 30 days lists both break-glass grants.
    let now = chrono::Utc::now();
    let from = (now - chrono::Duration::days(30)).to_rfc3339();
    let to = (now + chrono::Duration::minutes(1)).to_rfc3339();
    let (c, err) = code(&cli.run(
        "bob",
        &["campaign", "open", "--from", &from, "--to", &to],
        None,
    ));
    assert_eq!(c, Some(1), "only security and admins: {err}");
    assert!(err.contains("forbidden"), "{err}");
    let (c, err) = code(&cli.run(
        "sam",
        &["campaign", "open", "--from", "yesterday", "--to", &to],
        None,
    ));
    assert_eq!(c, Some(2), "{err}");
    let camp = cli.json("sam", &["campaign", "open", "--from", &from, "--to", &to]);
    let id = camp["id"].as_str().unwrap().to_string();
    let mut keys: Vec<&str> = camp["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    keys.sort();
    let mut want = vec![format!("break_glass:{done}"), format!("break_glass:{open}")];
    want.sort();
    assert_eq!(keys, want, "{camp}");

    let (c, err) = code(&cli.run("sam", &["campaign", "close", &id], None));
    assert_eq!(c, Some(1));
    assert!(
        err.contains("campaign_incomplete") && err.contains("2 undecided"),
        "{err}"
    );
    let (c, _) = code(&cli.run(
        "sam",
        &[
            "campaign",
            "decide",
            &id,
            &format!("break_glass:{open}"),
            "--decision",
            "end",
        ],
        None,
    ));
    assert_eq!(c, Some(2), "--note is required");
    // oscar used it: never his decision.
    let (c, err) = code(&cli.run(
        "oscar",
        &[
            "campaign",
            "decide",
            &id,
            &format!("break_glass:{open}"),
            "--decision",
            "keep",
            "--note",
            "mine",
        ],
        None,
    ));
    assert_eq!(c, Some(1), "{err}");
    assert!(err.contains("separation_of_duties"), "{err}");
    let text = cli.ok(
        "sam",
        &[
            "campaign",
            "decide",
            &id,
            &format!("break_glass:{open}"),
            "--decision",
            "end",
            "--note",
            "no ticket behind INC-2",
        ],
    );
    assert!(text.contains(&format!("grant {open} revoked")), "{text}");
    let g = cli.json("sam", &["grant", &open]);
    assert_eq!(g["end_reason"]["kind"], "revoked", "{g}");
    let text = cli.ok(
        "sam",
        &[
            "campaign",
            "decide",
            &id,
            &format!("break_glass:{done}"),
            "--decision",
            "keep",
            "--note",
            "INC-1 confirmed",
        ],
    );
    assert!(text.contains("keep"), "{text}");
    let text = cli.ok("sam", &["campaign", "close", &id]);
    assert!(text.contains("2 items decided"), "{text}");
    let list = cli.ok("sam", &["campaign", "list"]);
    assert!(
        list.contains(&id) && list.contains("closed") && list.contains("2/2"),
        "{list}"
    );
    let show = cli.ok("sam", &["campaign", "show", &id]);
    assert!(
        show.contains("no ticket behind INC-2") && show.contains(&format!("grant {open} revoked")),
        "{show}"
    );
    let events = cli.json("sam", &["events", "--grant", &open]);
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"campaign.item_decided") && kinds.contains(&"grant.ended"),
        "{kinds:?}"
    );
    up.stop();
}
