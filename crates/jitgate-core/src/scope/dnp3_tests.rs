use super::*;
use crate::inventory::*;
use crate::scope::{parse_rule, Protocol, Scope};

fn rtu() -> Asset {
    Asset {
        id: "rtu-12".into(),
        name: String::new(),
        kind: AssetKind::Rtu,
        site: "south".into(),
        zone: None,
        criticality: Criticality::High,
        enforcement: Enforcement::Brokered,
        endpoints: Endpoints {
            modbus: None,
            dnp3: Some(Dnp3Endpoint {
                address: "127.0.0.1:20000".into(),
                outstation: 10,
                master: 1,
            }),
            ssh: None,
        },
        limitation: None,
        compensating_controls: vec![],
        lockout: false,
        gateway: None,
    }
}

fn scope(rules: &[&str]) -> Scope {
    let a = rtu();
    let mut items = Vec::new();
    for r in rules {
        items.extend(parse_rule(&a, Protocol::Dnp3, r).unwrap());
    }
    Scope::new(items).unwrap()
}

#[test]
fn read_and_operate_digests_are_unchanged() {
    // Pinned before the function words existed (`printf ... | sha256sum` of this text):
    // adding words changed no earlier canonical line, so no earlier digest.
    let s = scope(&[
        "read class 0,1",
        "READ ai 0-15",
        "operate binary-output 3-5",
    ]);
    assert_eq!(
        s.canonical(),
        "jitgate-scope/v1\nrtu-12 dnp3 operate binary-output 3-5\nrtu-12 dnp3 read analog-input 0-15\nrtu-12 dnp3 read class 0-1\n"
    );
    assert_eq!(
        s.digest(),
        "sha256:2cdb048b3dedb0e2bfe8ac7f65398f39d79778cbfeeefe5184803f4823f95bc3"
    );
    assert_eq!(
        serde_json::to_string(&s.items()[0]).unwrap(),
        r#"{"protocol":"dnp3","asset":"rtu-12","op":"operate","target":"binary-output","start":3,"end":5}"#
    );
}

#[test]
fn function_words_canonical_lines_and_digest() {
    let s = scope(&[
        "time-sync",
        "restart",
        "unsolicited class 1,2-3",
        "freeze counters 0-3,4-7",
        "assign-class ai 0-15",
        "file",
        "configure",
        "read class 0",
        "Restart",
    ]);
    assert_eq!(
        s.canonical(),
        "jitgate-scope/v1\n\
         rtu-12 dnp3 assign-class analog-input 0-15\n\
         rtu-12 dnp3 configure\n\
         rtu-12 dnp3 file\n\
         rtu-12 dnp3 freeze counter 0-7\n\
         rtu-12 dnp3 read class 0-0\n\
         rtu-12 dnp3 restart\n\
         rtu-12 dnp3 time-sync\n\
         rtu-12 dnp3 unsolicited class 1-3\n"
    );
    // Pinned (docs/scope.md gives the printf | sha256sum that reproduces it).
    assert_eq!(
        s.digest(),
        "sha256:17e56c91e0de7de42b7ec6bd20c1693288596122f1acab216a047a5e6d7a73bd"
    );
    let ops: Vec<String> = s.operations().into_iter().collect();
    assert_eq!(
        ops,
        [
            "dnp3:assign-class",
            "dnp3:configure",
            "dnp3:file",
            "dnp3:freeze",
            "dnp3:read",
            "dnp3:restart",
            "dnp3:time-sync",
            "dnp3:unsolicited"
        ]
    );
    assert!(!s.is_read_only());
    assert!(scope(&["read class 0-3", "read counter all"]).is_read_only());
    for word in [
        "time-sync",
        "restart",
        "file",
        "configure",
        "unsolicited class 1",
    ] {
        assert!(!scope(&[word]).is_read_only(), "{word}");
    }
    let words = s.describe();
    assert!(
        words.contains(&"DNP3 restart on rtu-12".to_string()),
        "{words:?}"
    );
    assert!(
        words.contains(&"DNP3 unsolicited class 1–3 on rtu-12".to_string()),
        "{words:?}"
    );
    // JSON round trip; device-wide items carry the target "device" and the range 0-0.
    let json = serde_json::to_string(s.items()).unwrap();
    assert!(
        json.contains(r#"{"protocol":"dnp3","asset":"rtu-12","op":"time-sync","target":"device","start":0,"end":0}"#),
        "{json}"
    );
    assert!(
        json.contains(r#""op":"assign-class","target":"analog-input""#),
        "{json}"
    );
    let back: Vec<ScopeItem> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s.items());
}

#[test]
fn json_items_are_never_read_as_something_else() {
    let item = |op: &str, target: &str, start: u16, end: u16| {
        format!(
            r#"{{"protocol":"dnp3","asset":"rtu-12","op":"{op}","target":"{target}","start":{start},"end":{end}}}"#
        )
    };
    for bad in [
        // A range would vanish from the canonical line.
        item("restart", "device", 0, 5),
        item("restart", "binary-output", 0, 0),
        item("read", "device", 0, 0),
        item("unsolicited", "class", 0, 3),
        item("unsolicited", "counter", 1, 1),
        item("freeze", "analog-input", 0, 1),
        item("assign-class", "class", 0, 1),
        item("reboot", "device", 0, 0),
    ] {
        assert!(serde_json::from_str::<ScopeItem>(&bad).is_err(), "{bad}");
    }
    for good in [
        item("configure", "device", 0, 0),
        item("read", "class", 0, 3),
        item("operate", "analog-output", 1, 1),
        item("freeze", "counter", 0, 65535),
    ] {
        assert!(serde_json::from_str::<ScopeItem>(&good).is_ok(), "{good}");
    }
}

#[test]
fn bad_rules_name_the_accepted_words() {
    let a = rtu();
    for (rule, needle) in [
        ("reboot", "`restart`"),
        ("reboot", "`time-sync`"),
        ("", "`configure`"),
        ("read class 0-4", "0-3"),
        ("restart now", "takes no target"),
        (
            "operate analog-input 0",
            "only binary-output and analog-output",
        ),
        ("unsolicited class 0-3", "class 0 is static data"),
        ("unsolicited counter 1", "unsolicited class <1-3>"),
        ("freeze analog-input 0-3", "freeze counter"),
        ("assign-class class 1", "assign-class names the points"),
        ("read fish 0-1", "unknown DNP3 target"),
        ("freeze counter", "expected one of"),
        ("freeze counter 9-1", "backwards"),
    ] {
        let err = parse_rule(&a, Protocol::Dnp3, rule).unwrap_err();
        assert_eq!(err.code(), "invalid_scope", "{rule}");
        assert!(err.to_string().contains(needle), "{rule}: {err}");
    }
}
