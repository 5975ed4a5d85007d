use crate::{plant, SCENARIOS};
use jitgate_policy::{default_set, run_scenarios, PolicyError};

#[test]
fn shipped_scenarios_all_pass() {
    let set = default_set().unwrap();
    let results = run_scenarios(&set, &plant(), SCENARIOS).unwrap();
    assert!(results.len() >= 25, "{} scenarios", results.len());
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: {}", r.name, r.message.as_deref().unwrap_or("")))
        .collect();
    assert!(
        failed.is_empty(),
        "failed scenarios:\n{}",
        failed.join("\n")
    );
}

const ONE: &str = r#"
[[scenario]]
name = "vendor writes to safety PLC needs two engineers"
requester = "vera"
asset = "plc-7"
modbus = ["write coil 10-20 unit 1"]
path = "planned"
duration = "2h"
expect = "allow"
expect_policies = ["vendor-high-two-approvals"]
expect_approvals = 2
"#;

#[test]
fn a_mismatch_fails_with_a_message() {
    let set = default_set().unwrap();
    let inv = plant();
    let ok = run_scenarios(&set, &inv, ONE).unwrap();
    assert!(ok[0].passed, "{:?}", ok[0].message);
    assert!(ok[0].message.is_none());

    let wrong = ONE.replace("expect_approvals = 2", "expect_approvals = 1");
    let r = &run_scenarios(&set, &inv, &wrong).unwrap()[0];
    assert!(!r.passed);
    assert_eq!(r.message.as_deref(), Some("expected approvals 1, got 2"));

    let wrong = ONE.replace("expect = \"allow\"", "expect = \"deny\"");
    let r = &run_scenarios(&set, &inv, &wrong).unwrap()[0];
    assert!(!r.passed);
    assert!(r
        .message
        .as_deref()
        .unwrap()
        .contains("expected deny, got allow by vendor-high-two-approvals"));

    let wrong = ONE.replace("duration = \"2h\"", "duration = \"3h\"");
    let r = &run_scenarios(&set, &inv, &wrong).unwrap()[0];
    assert!(!r.passed);
    assert!(r.decision.allowed);
    assert!(
        r.message.as_deref().unwrap().contains("at most 2h"),
        "{:?}",
        r.message
    );

    let wrong = ONE.replace(
        "[\"vendor-high-two-approvals\"]",
        "[\"vendor-one-approval\"]",
    );
    let r = &run_scenarios(&set, &inv, &wrong).unwrap()[0];
    assert!(r.message.as_deref().unwrap().contains(
        "expected determining policies [vendor-one-approval], got [vendor-high-two-approvals]"
    ));
}

#[test]
fn unknown_keys_and_names_are_errors() {
    let set = default_set().unwrap();
    let inv = plant();
    let err = run_scenarios(
        &set,
        &inv,
        &ONE.replace("expect_approvals", "expect_aprovals"),
    )
    .unwrap_err();
    assert!(matches!(err, PolicyError::ScenarioFile(_)));
    assert!(err.to_string().contains("expect_aprovals"), "{err}");

    let err = run_scenarios(&set, &inv, &ONE.replace("\"vera\"", "\"nobody\"")).unwrap_err();
    assert!(
        err.to_string()
            .contains("identity nobody is not in the inventory"),
        "{err}"
    );
    assert!(
        err.to_string().contains("vendor writes to safety PLC"),
        "{err}"
    );

    let err = run_scenarios(
        &set,
        &inv,
        &ONE.replace("write coil 10-20 unit 1", "write coil 10-20 unit 9"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("unit 9"), "{err}");

    let err = run_scenarios(&set, &inv, &ONE.replace("\"2h\"", "\"2 hours\"")).unwrap_err();
    assert!(err.to_string().contains("duration"), "{err}");

    let err = run_scenarios(&set, &inv, &format!("{ONE}{ONE}")).unwrap_err();
    assert!(err.to_string().contains("same name"), "{err}");

    let err = run_scenarios(&set, &inv, "").unwrap_err();
    assert!(err.to_string().contains("no [[scenario]]"), "{err}");
}
