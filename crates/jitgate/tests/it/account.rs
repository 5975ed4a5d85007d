//! Through the real binary: `jitgate up` leaves its data directory and database owner-only;
//! `jitgate logout --everywhere` ends every session; `jitgate password` changes one's own
//! password and ends the other sessions; `jitgate identities unlock` forgets failures.

use super::quickstart::{free_port, Cli, Up};

#[test]
fn up_is_owner_only_and_sessions_end_everywhere_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("jitgate-data");
    let up = Up::start(&data, free_port());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| {
            std::fs::metadata(data.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(""), 0o700, "data directory");
        for f in ["jitgate.db", "jitgate.db-wal", "jitgate.db-shm", "totp.key"] {
            assert_eq!(mode(f), 0o600, "{f}");
        }
    }
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    let pw = |who: &str| creds["passwords"][who].as_str().unwrap().to_string();
    // Two terminals of alice's (two profiles), and sam.
    let here = Cli {
        server: up.server.clone(),
        dir: tmp.path().to_path_buf(),
    };
    let elsewhere_dir = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere_dir).unwrap();
    let elsewhere = Cli {
        server: up.server.clone(),
        dir: elsewhere_dir,
    };
    here.login("alice", &pw("alice"));
    elsewhere.login("alice", &pw("alice"));
    here.login("sam", &pw("sam"));

    // Password change: the current one is needed; the other terminal's session ends.
    let wrong = here.run(
        "alice",
        &["password", "--password-stdin"],
        Some("not-the-password\nalices-new-password-1\n"),
    );
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("current password is wrong"));
    let out = here.run(
        "alice",
        &["password", "--password-stdin"],
        Some(&format!("{}\nalices-new-password-1\n", pw("alice"))),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 other session(s) ended"));
    assert!(!elsewhere.run("alice", &["whoami"], None).status.success());
    here.ok("alice", &["whoami"]);

    // logout --everywhere ends both sessions alice has now.
    elsewhere.login("alice", "alices-new-password-1");
    let out = here.ok("alice", &["logout", "--everywhere"]);
    assert!(out.contains("2 session(s) ended"), "{out}");
    assert!(!elsewhere.run("alice", &["whoami"], None).status.success());
    assert!(!here.run("alice", &["whoami"], None).status.success());

    // The administrator forgets failures with `identities unlock`.
    let bad = here.run(
        "bob",
        &["login", "--identity", "bob", "--password-stdin"],
        Some("wrong-password-of-bob\n"),
    );
    assert!(!bad.status.success());
    let out = here.ok("sam", &["identities", "unlock", "bob"]);
    assert!(
        out.contains("was not locked out; 1 failed attempt(s) forgotten"),
        "{out}"
    );
    let not_admin = here.run("alice", &["identities", "unlock", "bob"], None);
    assert!(!not_admin.status.success());
    up.stop();
}
