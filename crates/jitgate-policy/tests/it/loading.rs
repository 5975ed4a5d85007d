//! Loading: every problem names file, line and column; ids; the hash.

use jitgate_policy::{default_set, default_sources, PolicyEffect, PolicyError, PolicySet};

fn load(files: &[(&str, &str)]) -> Result<PolicySet, PolicyError> {
    PolicySet::from_sources(
        files
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect(),
    )
}

const OK: &str = "// a comment first\n@id(\"read-all\")\n@approvals(\"0\")\npermit (principal, action, resource)\nwhen { !context.writes };\n";

#[test]
fn parse_error_names_file_line_and_column() {
    let text = format!(
        "{OK}\n@id(\"bad\")\npermit (principal, action, resource) when {{ principal.kind == }};\n"
    );
    let err = load(&[("a.cedar", OK), ("b.cedar", &text)]).unwrap_err();
    match &err {
        PolicyError::Parse {
            file,
            line,
            column,
            message,
        } => {
            assert_eq!((file.as_str(), *line, *column), ("b.cedar", 8, 63), "{err}");
            assert!(message.contains("unexpected token `}`"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    assert!(err.to_string().starts_with("b.cedar:8:63: "), "{err}");
}

#[test]
fn unknown_attribute_fails_strict_validation_at_its_position() {
    let text = format!("{OK}\n@id(\"clearance\")\npermit (principal, action, resource)\nwhen {{ principal.clearance == \"secret\" }};\n");
    let err = load(&[("v.cedar", &text)]).unwrap_err();
    match &err {
        PolicyError::Validation {
            file,
            line,
            column,
            policy,
            message,
        } => {
            assert_eq!((file.as_str(), *line, *column), ("v.cedar", 9, 8), "{err}");
            assert_eq!(policy, "clearance");
            assert!(message.contains("attribute `clearance`"), "{message}");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn type_errors_fail_validation() {
    let err = load(&[("t.cedar", "@id(\"t\")\npermit (principal, action, resource) when { context.duration_minutes == \"x\" };\n")])
        .unwrap_err();
    assert!(
        matches!(
            err,
            PolicyError::Validation {
                line: 2,
                column: 45,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn missing_id_names_the_policy_start() {
    let text = format!("{OK}\npermit (principal, action, resource);\n");
    let err = load(&[("m.cedar", &text)]).unwrap_err();
    assert!(
        matches!(&err, PolicyError::MissingId { file, line: 7, column: 1 } if file == "m.cedar"),
        "{err}"
    );
    assert!(err.to_string().contains("@id"), "{err}");
}

#[test]
fn duplicate_id_names_both_places() {
    let err = load(&[("a.cedar", OK), ("b.cedar", &format!("\n\n{OK}"))]).unwrap_err();
    match &err {
        PolicyError::DuplicateId {
            file,
            line,
            id,
            first_file,
            first_line,
            ..
        } => {
            assert_eq!(id, "read-all");
            assert_eq!((file.as_str(), *line), ("b.cedar", 4));
            assert_eq!((first_file.as_str(), *first_line), ("a.cedar", 2));
        }
        other => panic!("expected a duplicate id, got {other:?}"),
    }
    assert!(err.to_string().contains("a.cedar:2"), "{err}");
}

#[test]
fn invalid_id_is_refused() {
    let err = load(&[(
        "i.cedar",
        "@id(\"no spaces please\")\npermit (principal, action, resource);",
    )])
    .unwrap_err();
    assert!(
        matches!(
            err,
            PolicyError::InvalidId {
                line: 1,
                column: 5,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bad_annotation_names_file_line_column_and_annotation() {
    let text = "@id(\"p\")\n@approvals(\"2\")\n  @max_duration(\"2 hours\")\npermit (principal, action, resource);\n";
    let err = load(&[("ann.cedar", text)]).unwrap_err();
    match &err {
        PolicyError::Annotation {
            file,
            line,
            column,
            policy,
            annotation,
            message,
        } => {
            assert_eq!(
                (file.as_str(), *line, *column),
                ("ann.cedar", 3, 17),
                "{err}"
            );
            assert_eq!(
                (policy.as_str(), annotation.as_str()),
                ("p", "max_duration")
            );
            assert!(message.contains("2 hours"), "{message}");
        }
        other => panic!("expected an annotation error, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("ann.cedar:3:17: policy `p`: @max_duration: "),
        "{err}"
    );
}

#[test]
fn unknown_annotation_and_reasonless_forbid_are_refused() {
    let err = load(&[(
        "u.cedar",
        "@id(\"p\")\n@aprovals(\"2\")\npermit (principal, action, resource);",
    )])
    .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Annotation { annotation, line: 2, .. } if annotation == "aprovals"),
        "{err}"
    );
    let err = load(&[(
        "f.cedar",
        "@id(\"f\")\nforbid (principal, action, resource);",
    )])
    .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Annotation { annotation, line: 1, .. } if annotation == "reason"),
        "{err}"
    );
    let err = load(&[(
        "g.cedar",
        "@id(\"g\")\n@reason(\"no\")\n@approvals(\"2\")\nforbid (principal, action, resource);",
    )])
    .unwrap_err();
    assert!(err.to_string().contains("only apply to permit"), "{err}");
}

#[test]
fn templates_are_refused() {
    let err = load(&[(
        "t.cedar",
        "@id(\"t\")\npermit (principal == ?principal, action, resource);",
    )])
    .unwrap_err();
    assert!(err.to_string().contains("templates"), "{err}");
}

#[test]
fn duplicate_file_names_are_refused() {
    let err = load(&[("a.cedar", OK), ("a.cedar", OK)]).unwrap_err();
    assert!(matches!(err, PolicyError::DuplicateFile(_)), "{err}");
}

#[test]
fn policies_keep_their_id_text_and_place() {
    let set = load(&[("a.cedar", OK)]).unwrap();
    assert_eq!(set.ids(), ["read-all"]);
    assert_eq!(set.len(), 1);
    let text = set.policy_text("read-all").unwrap();
    assert!(
        text.starts_with("@id(\"read-all\")\n@approvals(\"0\")\npermit"),
        "{text}"
    );
    assert!(text.ends_with("when { !context.writes };"), "{text}");
    let info = set.policy("read-all").unwrap();
    assert_eq!(
        (info.file.as_str(), info.line, info.column),
        ("a.cedar", 2, 1)
    );
    assert_eq!(info.effect, PolicyEffect::Permit);
    assert_eq!(info.obligations.as_ref().unwrap().approvals, 0);
    assert!(set.policy_text("nope").is_none());
}

#[test]
fn hash_is_defined_over_names_lengths_and_texts() {
    // Pinned, computed independently: { printf 'a.cedar\n%s\n' "$(wc -c <a)"; cat a; } | sha256sum
    let set = load(&[("a.cedar", OK)]).unwrap();
    assert_eq!(set.hash(), PINNED_HASH);
    // Same files in another order: same set, same hash.
    let b = "@id(\"b\")\npermit (principal, action, resource);";
    let x = load(&[("a.cedar", OK), ("b.cedar", b)]).unwrap();
    let y = load(&[("b.cedar", b), ("a.cedar", OK)]).unwrap();
    assert_eq!(x.hash(), y.hash());
    assert_ne!(x.hash(), set.hash());
    // One byte changed, even in a comment, changes the hash.
    let changed = OK.replacen("a comment", "b comment", 1);
    assert_ne!(load(&[("a.cedar", &changed)]).unwrap().hash(), set.hash());
    // So does renaming the file.
    assert_ne!(load(&[("c.cedar", OK)]).unwrap().hash(), set.hash());
    // The default set hashes the same every time.
    assert_eq!(default_set().unwrap().hash(), default_set().unwrap().hash());
    assert!(default_set().unwrap().hash().starts_with("sha256:"));
}

const PINNED_HASH: &str = "sha256:8e84365c726ca8eb663d91a8399eeaa7e1b2174425c7f7a11dd939dbd6918f7a";

#[test]
fn load_dir_reads_cedar_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in default_sources() {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::write(dir.path().join("README.md"), "not a policy").unwrap();
    std::fs::write(dir.path().join("scenarios.toml"), "[[scenario]]").unwrap();
    let set = PolicySet::load_dir(dir.path()).unwrap();
    assert_eq!(set.hash(), default_set().unwrap().hash());
    assert_eq!(set.files()[0], "00-guardrails.cedar");

    let empty = tempfile::tempdir().unwrap();
    let err = PolicySet::load_dir(empty.path()).unwrap_err();
    assert!(matches!(err, PolicyError::NoPolicyFiles(_)), "{err}");
    let err = PolicySet::load_dir(empty.path().join("missing")).unwrap_err();
    assert!(matches!(err, PolicyError::Io { .. }), "{err}");
}

#[test]
fn default_set_validates_without_warnings() {
    let set = default_set().unwrap();
    assert!(set.warnings().is_empty(), "{:?}", set.warnings());
    assert!(set.len() >= 15);
    for p in set.policies() {
        match p.effect {
            PolicyEffect::Forbid => {
                assert!(p.reason.is_some() && p.obligations.is_none(), "{}", p.id)
            }
            PolicyEffect::Permit => assert!(p.obligations.is_some(), "{}", p.id),
        }
    }
}
