//! RFC 8785 (JCS) text of a JSON document given as text, without building a
//! `serde_json::Value`: the server writes the canonical bytes of every operation a gateway
//! reports, and parsing each detail into a `Value` (whose maps hash every key when
//! serde_json's `preserve_order` is on in the build) and writing it again was most of the
//! cost of recording an operation. Here the text is parsed into a tree that borrows its
//! strings from the input, each object's entries are sorted, and the tree is written with
//! the same writers as [`super::write_jcs`] — so the bytes are those of
//! `write_jcs(&serde_json::from_str(text)?)`, duplicate keys included (the last one wins, as
//! in a `Value`); a test compares the two over many documents.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A JSON value whose strings borrow from the text where they can (no escapes).
enum Node<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// Write the JCS text of the JSON document `text` into `out`. `Err` when `text` is not
/// one JSON value (nothing useful is left in `out` then).
pub fn write_jcs_text(text: &str, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let node: Node<'_> = serde_json::from_str(text)?;
    write_node(node, out);
    Ok(())
}

fn write_node(node: Node<'_>, out: &mut Vec<u8>) {
    match node {
        Node::Null => out.extend_from_slice(b"null"),
        Node::Bool(true) => out.extend_from_slice(b"true"),
        Node::Bool(false) => out.extend_from_slice(b"false"),
        Node::Number(n) => super::write_jcs_number(&n, out),
        Node::Str(s) => super::write_scalar(s.as_ref(), out),
        Node::Array(items) => {
            out.push(b'[');
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_node(item, out);
            }
            out.push(b']');
        }
        Node::Object(mut entries) => {
            // Stable sort, then keep the last of equal keys: what a `Value` map keeps.
            if entries.iter().all(|(k, _)| k.is_ascii()) {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            } else {
                entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            }
            out.push(b'{');
            let mut first = true;
            let mut entries = entries.into_iter().peekable();
            while let Some((key, value)) = entries.next() {
                if entries.peek().is_some_and(|(next, _)| *next == key) {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                super::write_scalar(key.as_ref(), out);
                out.push(b':');
                write_node(value, out);
            }
            out.push(b'}');
        }
    }
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        serde_json::Number::from_f64(v)
            .map(Node::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key::<Key<'de>>()? {
            entries.push((key.0, map.next_value()?));
        }
        Ok(Node::Object(entries))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_str(NodeVisitor)? {
            Node::Str(s) => Ok(Key(s)),
            _ => Err(serde::de::Error::custom("an object key is a string")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn both(text: &str) -> (String, String) {
        let mut fast = Vec::new();
        write_jcs_text(text, &mut fast).unwrap();
        let mut reference = Vec::new();
        super::super::write_jcs(&serde_json::from_str(text).unwrap(), &mut reference);
        (
            String::from_utf8(fast).unwrap(),
            String::from_utf8(reference).unwrap(),
        )
    }

    #[test]
    fn the_text_writer_gives_the_bytes_of_the_value_writer() {
        let docs = [
            r#"{"b":1,"a":[true,false,null,"x"],"c":{"z":-0.0,"y":1e21,"x":1.5e-7}}"#.to_string(),
            r#"{"dup":1,"other":2,"dup":3}"#.to_string(),
            r#"{"é":1,"e":2,"😀":3,"\ud800\udc00":4,"ｅ":5}"#.to_string(),
            r#"{"esc\"aped":"line\nbreak\u0001\u00e9\/","tab":"\t"}"#.to_string(),
            r#"[9007199254740993,-9007199254740993,18446744073709551615,-1,0,0.1,123456789.125]"#
                .to_string(),
            r#""just a string""#.to_string(),
            "null".to_string(),
            "  { \"spaced\" : [ 1 , 2 ] }  ".to_string(),
            json!({
                "function": "select",
                "objects": [{"group": 12, "variation": 1, "qualifier": 40, "range": [3, 3],
                             "crob": {"code": 65, "count": 1, "on_ms": 100, "off_ms": 0}}],
                "allowed": false,
                "reason": "binary-output 3 is outside the grant's operate rules",
            })
            .to_string(),
        ];
        for doc in &docs {
            let (fast, reference) = both(doc);
            assert_eq!(fast, reference, "document {doc}");
        }
    }

    #[test]
    fn text_that_is_not_one_json_value_is_refused() {
        for bad in ["", "{", "{\"a\":}", "[1,]", "1 2", "{\"a\":1}x", "NaN"] {
            let mut out = Vec::new();
            assert!(
                write_jcs_text(bad, &mut out).is_err(),
                "{bad:?} was accepted"
            );
        }
    }
}
