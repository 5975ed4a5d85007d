//! The crates DESIGN.md forbids ("Licences we must respect") are not in the build: every
//! `[bans] deny` name of `deny.toml` is checked against `Cargo.lock` (the whole workspace's
//! resolved dependencies) and the fuzz crate's own lock file, so the ban holds in CI without
//! installing cargo-deny.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
}

fn package_names(lock: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(lock).unwrap();
    let lock: toml::Value = toml::from_str(&text).unwrap();
    lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn no_banned_crate_is_a_dependency() {
    let deny: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("deny.toml")).unwrap()).unwrap();
    let banned: Vec<&str> = deny["bans"]["deny"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(
        banned.contains(&"dnp3") && banned.contains(&"rodbus"),
        "{banned:?}"
    );
    for lock in [root().join("Cargo.lock"), root().join("fuzz/Cargo.lock")] {
        let names = package_names(&lock);
        assert!(
            names.len() > 50,
            "{} lists {} packages",
            lock.display(),
            names.len()
        );
        for b in &banned {
            assert!(
                !names.iter().any(|n| n == b),
                "{} depends on the banned crate {b} (deny.toml)",
                lock.display()
            );
        }
    }
}
