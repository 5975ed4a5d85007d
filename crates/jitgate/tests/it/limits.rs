//! Limits through the real binaries: the CLI walks every page of a list to its end, and a
//! server's limit errors reach the user with their code.

use crate::quickstart::{free_port, Cli, Up};
use serde_json::Value;

#[test]
fn the_cli_follows_every_page_of_a_list_to_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let up = Up::start(&data, free_port());
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    let cli = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    cli.login("sam", creds["passwords"]["sam"].as_str().unwrap());
    let before = cli.json("sam", &["identities"]).as_array().unwrap().len();
    // 250 more identities: more than two pages of the default 100.
    let mut toml = String::new();
    for i in 0..250 {
        toml.push_str(&format!(
            "[[identity]]\nid = \"tech-{i:03}\"\nkind = \"human\"\nname = \"Technician {i}\"\nroles = [\"operator\"]\n\n"
        ));
    }
    let file = tmp.path().join("more.toml");
    std::fs::write(&file, toml).unwrap();
    cli.ok("sam", &["inventory", "load", file.to_str().unwrap()]);

    let all = cli.json("sam", &["identities"]);
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), before + 250, "every page, once each");
    let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no identity twice");
    assert!(unique.contains("tech-000") && unique.contains("tech-249"));

    // The table (not only --json) holds every identity: the list spans three pages.
    let table = cli.ok("sam", &["identities"]);
    for i in 0..250 {
        assert!(
            table.contains(&format!("tech-{i:03}")),
            "tech-{i:03} is printed"
        );
    }

    // `--limit` prints one page and, on stderr, how to get the next; following the
    // printed cursors prints the rest, each identity once.
    let mut printed: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 0.. {
        assert!(round < 20, "the pages end");
        let mut args = vec!["--json", "identities", "list", "--limit", "120"];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let out = cli.run("sam", &args, None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let page: Value = serde_json::from_slice(&out.stdout).unwrap();
        let page = page.as_array().unwrap();
        assert!(page.len() <= 120);
        printed.extend(page.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        cursor = stderr
            .split_once("--cursor ")
            .map(|(_, rest)| rest.split_whitespace().next().unwrap().to_string());
        if cursor.is_none() {
            break;
        }
        assert_eq!(page.len(), 120, "a page before the last is full");
    }
    assert_eq!(
        printed, ids,
        "the pages, followed by hand, are the whole list"
    );

    // The API itself: one page, and its cursor leads on to the end.
    let token = std::fs::read_to_string(tmp.path().join("sam.toml")).unwrap();
    let token: toml::Value = toml::from_str(&token).unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let server = up.server.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let http = reqwest::Client::new();
        let mut cursor: Option<String> = None;
        let mut seen = 0;
        let mut pages = 0;
        loop {
            let mut url = format!("{server}/api/v1/identities?limit=40");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let resp = http.get(url).bearer_auth(&token).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            cursor = resp
                .headers()
                .get("x-next-cursor")
                .map(|v| v.to_str().unwrap().to_string());
            let page: Value = resp.json().await.unwrap();
            let n = page.as_array().unwrap().len();
            assert!(n <= 40);
            seen += n;
            pages += 1;
            if cursor.is_none() {
                break;
            }
            assert!(pages < 100, "the pages end");
        }
        assert_eq!(seen, before + 250);
        let bad = http
            .get(format!("{server}/api/v1/identities?limit=100000"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let v: Value = bad.json().await.unwrap();
        assert_eq!(v["code"], "bad_request", "{v}");
        let bad = http
            .get(format!("{server}/api/v1/identities?cursor=garbage"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let v: Value = bad.json().await.unwrap();
        assert_eq!(v["code"], "invalid_cursor", "{v}");
    });
    up.stop();
}
