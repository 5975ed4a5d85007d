//! The event encoder's RFC 8785 output against `serde_json_canonicalizer`, a general JCS
//! implementation: the same bytes for every value, random ones included.

use jitgate_core::event::{write_jcs, write_jcs_text};
use proptest::prelude::*;
use serde_json::{json, Value};

fn ours(v: &Value) -> String {
    let mut out = Vec::new();
    write_jcs(v, &mut out);
    String::from_utf8(out).unwrap()
}

fn reference(v: &Value) -> String {
    serde_json_canonicalizer::to_string(v).unwrap()
}

#[test]
fn fixed_values_match_the_reference() {
    for v in [
        json!({"\u{FB33}": 1, "\u{1D11E}": 2, "a": [1, 2.5, -0.0, 1e21, 1e-7, 123456789012345678u64]}),
        json!({"s": "tab\t\u{7f}é\"\\/\u{1}\u{1f}", "n": null, "t": true, "f": false}),
        json!([
            9007199254740992u64,
            9007199254740993u64,
            -9007199254740993i64,
            0.1,
            100.0
        ]),
        json!({"nested": {"z": {}, "a": [], "m": [{"b": 1, "a": 2}]}}),
        json!(4.35e-5),
        json!(1e300),
        // Doubles that a parser without exact float reading gets one unit wrong, so that
        // JCS text written elsewhere would not re-encode to itself.
        serde_json::from_str::<Value>(
            "[-3.44654920223904e-30,278908409818195070000,2.7715077941825975e-163]",
        )
        .unwrap(),
    ] {
        assert_eq!(ours(&v), reference(&v), "{v}");
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<u64>().prop_map(|i| json!(i)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn jcs_text_written_elsewhere_reencodes_to_itself() {
    for text in [
        "-3.44654920223904e-30",
        "278908409818195070000",
        "2.7715077941825975e-163",
        "1e+21",
        "0.000001",
        "1e-7",
    ] {
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(ours(&v), text);
    }
}

proptest! {
    #[test]
    fn random_values_match_the_reference(v in arb_json()) {
        prop_assert_eq!(ours(&v), reference(&v));
    }

    /// The writer the server uses on a gateway's detail as it arrived (text, not a
    /// `Value`) gives the reference's bytes too, whether the text is compact or pretty.
    #[test]
    fn random_texts_match_the_reference(v in arb_json()) {
        for text in [v.to_string(), serde_json::to_string_pretty(&v).unwrap()] {
            let mut out = Vec::new();
            write_jcs_text(&text, &mut out).unwrap();
            prop_assert_eq!(String::from_utf8(out).unwrap(), reference(&v));
        }
    }

    /// An event's canonical bytes (written without copying its data) are the reference's
    /// JCS of the whole event as serde writes it, whatever the data, the optional ids and
    /// the actor.
    #[test]
    fn an_events_canonical_bytes_are_the_jcs_of_the_whole_event(
        data in arb_json(),
        grant in proptest::option::of("[a-z0-9-]{1,12}"),
        request in proptest::option::of(".{0,8}"),
        approval in proptest::option::of("[a-z0-9-]{1,12}"),
        before in proptest::option::of("[a-z_]{1,10}"),
        state in proptest::option::of("[a-z_]{1,10}"),
        actor in ".{0,12}",
        kind in 0usize..5,
    ) {
        use jitgate_core::event::{Actor, Event, EventKind};
        let kind = [
            EventKind::Operation,
            EventKind::SessionStarted,
            EventKind::RequestSubmitted,
            EventKind::GrantIssued,
            EventKind::RecordingChunk,
        ][kind];
        let mut e = Event::new(kind, Actor(actor), chrono::Utc::now()).data(data);
        e.grant_id = grant;
        e.request_id = request;
        e.approval_id = approval;
        e.state_before = before;
        e.state_after = state;
        let whole = serde_json::to_value(&e).unwrap();
        prop_assert_eq!(String::from_utf8(e.canonical_bytes()).unwrap(), reference(&whole));
    }
}

/// The bundle schema lists every event kind (an independent verifier refuses the others), and
/// nothing else.
#[test]
fn the_bundle_schema_lists_exactly_the_event_kinds() {
    let schema: Value =
        serde_json::from_str(include_str!("../../../../docs/evidence-bundle.schema.json")).unwrap();
    let listed: std::collections::BTreeSet<String> = schema["$defs"]["canonical_event"]
        ["properties"]["kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    for k in &listed {
        let kind: jitgate_core::EventKind = serde_json::from_value(json!(k)).unwrap();
        assert_eq!(kind.as_str(), k);
    }
    let source = include_str!("../../src/event.rs");
    let defined: std::collections::BTreeSet<String> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("EventKind::"))
        .filter_map(|l| {
            l.split_once("=> \"")
                .map(|(_, r)| r.trim_end_matches("\",").to_string())
        })
        .collect();
    assert!(!defined.is_empty());
    assert_eq!(listed, defined);
}
