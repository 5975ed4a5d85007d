//! The server's module layering, checked from its source: the modules import each other
//! without a cycle, and only the HTTP layer (`api`, `console`, `tls`, `lib.rs`) uses axum. A new
//! import that closes a cycle or pulls HTTP into a lower layer fails here, naming the modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`evidence::log`) → source without comments and without its test module.
fn modules() -> BTreeMap<String, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.insert(module_name(&root, &path), code_of(&path));
            }
        }
    }
    out
}

fn module_name(root: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(root)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The longest module named by a `crate::a::b::…` path.
fn resolve(path: &str, names: &BTreeSet<String>) -> Option<String> {
    let segs: Vec<&str> = path.split("::").map(str::trim).collect();
    (1..=segs.len())
        .rev()
        .map(|n| segs[..n].join("::"))
        .find(|candidate| names.contains(candidate))
}

fn imports(code: &str, me: &str, names: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |path: &str| {
        if let Some(m) = resolve(path, names) {
            if m != me {
                out.insert(m);
            }
        }
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or_default();
            inner
                .split(',')
                .for_each(|p| add(p.split('{').next().unwrap_or(p)));
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            add(rest[..end].trim_end_matches(':'));
        }
    }
    let parent = me.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
    for (at, _) in code.match_indices("super::") {
        let rest = &code[at + "super::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path = rest[..end].trim_end_matches(':');
        if parent.is_empty() {
            add(path);
        } else {
            add(&format!("{parent}::{path}"));
        }
    }
    out
}

/// Modules that reach themselves again through their imports.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let reaches = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> = edges[from].iter().map(String::as_str).collect();
        while let Some(m) = todo.pop() {
            if seen.insert(m.to_string()) {
                todo.extend(edges[m].iter().map(String::as_str));
            }
        }
        seen
    };
    edges
        .keys()
        .filter(|m| reaches(m).contains(*m))
        .map(|m| {
            let back: Vec<&String> = edges[m].iter().filter(|n| reaches(n).contains(m)).collect();
            format!("{m} → {back:?} → … → {m}")
        })
        .collect()
}

fn is_http_layer(module: &str) -> bool {
    module == "lib"
        || module == "tls"
        || module == "api"
        || module.starts_with("api::")
        || module == "console"
        || module.starts_with("console::")
}

#[test]
fn server_modules_import_each_other_without_a_cycle() {
    let mods = modules();
    assert!(
        mods.len() > 20,
        "found the server's modules: {:?}",
        mods.keys()
    );
    let names: BTreeSet<String> = mods.keys().filter(|m| *m != "lib").cloned().collect();
    let edges: BTreeMap<String, BTreeSet<String>> = mods
        .iter()
        .filter(|(m, _)| *m != "lib")
        .map(|(m, code)| (m.clone(), imports(code, m, &names)))
        .collect();
    // The check sees real imports (a broken parser would find none and pass vacuously).
    assert!(edges["service"].contains("context") && edges["state"].contains("control"));
    let found = cycles(&edges);
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn only_the_http_layer_imports_http() {
    let mods = modules();
    let names: BTreeSet<String> = mods.keys().filter(|m| *m != "lib").cloned().collect();
    let mut offenders = Vec::new();
    for (m, code) in &mods {
        if is_http_layer(m) {
            continue;
        }
        if code.contains("axum") || code.contains("tower_http") {
            offenders.push(format!("{m} uses axum/tower_http"));
        }
        for imported in imports(code, m, &names) {
            if is_http_layer(&imported) {
                offenders.push(format!("{m} imports {imported}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "lower layers must not import the HTTP layer:\n{}",
        offenders.join("\n")
    );
}
