//! The event encoder's RFC 8785 output against `serde_json_canonicalizer`, a general JCS
//! implementation: the same bytes for every value, random ones included.

use jitgate_core::event::write_jcs;
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

proptest! {
    #[test]
    fn random_values_match_the_reference(v in arb_json()) {
        prop_assert_eq!(ours(&v), reference(&v));
    }
}
