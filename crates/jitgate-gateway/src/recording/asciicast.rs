//! asciicast v2 (the format of asciinema 2.x: one JSON header line, then one JSON array per
//! event, `[time, code, data]`), as this gateway writes it:
//!
//! - header: `version` 2, `width`, `height`, `timestamp` (Unix seconds of the start),
//!   `title`, `env` (`TERM`, and what the caller adds), `command` for an exec session;
//! - `o` output to the client and `i` input from the client, as UTF-8 text (terminal bytes
//!   are decoded incrementally: a character split across two reads is kept whole; bytes
//!   that are not UTF-8 become U+FFFD, as asciinema itself records them);
//! - `r` terminal size changes, `"COLSxROWS"`;
//! - `m` markers for what is not terminal data: `exec: <command>` and `exit: <status>`
//!   (`exit: signal <name>` when the command died by a signal). asciinema 2.x's `play`
//!   and `cat` accept markers (`cat` skips them; `play -m` pauses at them).
//!
//! Times are seconds since the start, with microsecond precision, never decreasing.

use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write as _;

/// The first line of a cast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CastHeader {
    pub version: u8,
    pub width: u16,
    pub height: u16,
    /// Unix time (seconds) of the session's start.
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl CastHeader {
    /// A header for a terminal of `width` × `height` (80 × 24 when the client asked for no
    /// pty: asciicast needs a size), started at `timestamp`.
    pub fn new(width: u16, height: u16, timestamp: i64) -> Self {
        CastHeader {
            version: 2,
            width: if width == 0 { 80 } else { width },
            height: if height == 0 { 24 } else { height },
            timestamp,
            title: None,
            command: None,
            env: BTreeMap::new(),
        }
    }

    /// The header line, newline included.
    pub fn line(&self) -> Vec<u8> {
        // Plain strings and numbers: serialising cannot fail.
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// Event codes of asciicast v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Output,
    Input,
    Resize,
    Marker,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Output => "o",
            Code::Input => "i",
            Code::Resize => "r",
            Code::Marker => "m",
        }
    }
}

/// Append the start of an event line, `[1.234567, "o", "`: the data, escaped, and
/// [`end_event`] follow.
pub fn begin_event(out: &mut Vec<u8>, micros: u64, code: Code) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "[{}.{:06}, \"{}\", \"",
        micros / 1_000_000,
        micros % 1_000_000,
        code.as_str()
    );
}

/// Close an event line begun with [`begin_event`], newline included.
pub fn end_event(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\"]\n");
}

/// What [`escape_str`] writes for each byte: 0 for the byte itself, else the letter after
/// the backslash (`u` for `\u00XX`). JSON must escape `"`, `\` and U+0000–U+001F; these are
/// serde_json's choices (short forms for \b \t \n \f \r, lowercase hex), so a line reads
/// the same as `serde_json::to_string` of the text would.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Append `text` as the inside of a JSON string. Runs of bytes that need no escape (nearly
/// all of a terminal's output) are copied in one piece.
pub fn escape_str(out: &mut Vec<u8>, text: &str) {
    escape_valid(out, text.as_bytes());
}

/// [`escape_str`] of bytes known to be valid UTF-8 (every byte ≥ 0x80 passes unchanged, so
/// the output stays valid UTF-8).
fn escape_valid(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut rest = bytes;
    while let Some(i) = next_escape(rest) {
        let (plain, from) = rest.split_at(i);
        out.extend_from_slice(plain);
        let Some((&b, after)) = from.split_first() else {
            break;
        };
        let e = ESCAPE[usize::from(b)];
        if e == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        rest = after;
    }
    out.extend_from_slice(rest);
}

/// Where the first byte of `bytes` that JSON escapes is, if any. Eight bytes at a time:
/// a bulk stream is nearly all plain text, and this scan is on the relay path (a
/// byte-at-a-time table lookup was a fifth of the gateway's CPU streaming output over SSH).
fn next_escape(bytes: &[u8]) -> Option<usize> {
    let needs = |b: &u8| ESCAPE[usize::from(*b)] != 0;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        if may_need_escape(u64::from_le_bytes(w)) {
            if let Some(p) = word.iter().position(needs) {
                return Some(at + p);
            }
        }
        at += 8;
    }
    words.remainder().iter().position(needs).map(|p| at + p)
}

/// Does any byte of `v` possibly need an escape (below 0x20, a quote or a backslash)? Never false
/// when one does (the word is then scanned byte by byte, which decides).
fn may_need_escape(v: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below n (n ≤ 0x80) sets its high bit in (v - n·ONES) & !v; a byte equal to c
    // is a zero byte of v ^ c·ONES.
    let below = |n: u64| v.wrapping_sub(n * ONES) & !v & HIGH;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    below(0x20) | zero(v ^ (u64::from(b'"') * ONES)) | zero(v ^ (u64::from(b'\\') * ONES)) != 0
}

/// U+FFFD REPLACEMENT CHARACTER, what a byte sequence that is not UTF-8 becomes.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Escape `input` decoded as UTF-8 (each maximal invalid sequence becomes U+FFFD, as
/// `String::from_utf8_lossy` does) and return how many bytes were used: all but an
/// incomplete character at the end (at most 3 bytes), which waits for more input.
fn escape_utf8(out: &mut Vec<u8>, input: &[u8]) -> usize {
    let mut rest = input;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                escape_valid(out, s.as_bytes());
                return input.len();
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                escape_valid(out, good);
                match e.error_len() {
                    Some(n) => {
                        out.extend_from_slice(REPLACEMENT);
                        rest = bad.get(n..).unwrap_or_default();
                    }
                    None => return input.len() - bad.len(),
                }
            }
        }
    }
}

/// Incremental UTF-8 decoding of one byte stream, escaped for JSON as it is decoded: up to
/// 3 bytes of an incomplete character wait for the next read. The text goes straight into
/// the caller's buffer; only those few bytes are kept here.
#[derive(Debug, Default, Clone)]
pub struct Utf8Escaper {
    pending: [u8; 3],
    len: usize,
}

impl Utf8Escaper {
    /// Append the escaped text of `bytes` (after what was pending) to `out`, keeping an
    /// incomplete last character for the next call.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) {
        if self.len > 0 {
            // Finish the pending character first, in a small buffer: it needs at most 3 more
            // bytes, whatever they turn out to be.
            let take = bytes.len().min(3);
            let mut joined = [0u8; 6];
            joined[..self.len].copy_from_slice(&self.pending[..self.len]);
            joined[self.len..self.len + take].copy_from_slice(&bytes[..take]);
            let joined = &joined[..self.len + take];
            let used = escape_utf8(out, joined);
            if used < self.len {
                // Still incomplete (then `used` is 0 and every byte given is in `joined`).
                let rest = &joined[used..];
                self.pending[..rest.len()].copy_from_slice(rest);
                self.len = rest.len();
                return;
            }
            // The pending character is resolved; what `joined` left over of the new bytes
            // is decoded again below, with the rest.
            bytes = &bytes[used - self.len..];
            self.len = 0;
        }
        let used = escape_utf8(out, bytes);
        let rest = &bytes[used..];
        self.pending[..rest.len()].copy_from_slice(rest);
        self.len = rest.len();
    }

    /// Whether an incomplete character is waiting.
    pub fn has_pending(&self) -> bool {
        self.len > 0
    }

    /// The end of the stream: an incomplete character becomes U+FFFD. Whether it wrote one.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> bool {
        if self.len == 0 {
            return false;
        }
        self.len = 0;
        out.extend_from_slice(REPLACEMENT);
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The decoding as it was first written (join the pending bytes and the read, decode
    /// with `from_utf8`, replace invalid sequences, keep an incomplete end), escaped by
    /// serde_json: the oracle the escaper must match byte for byte.
    #[derive(Default)]
    pub(crate) struct Reference {
        pending: Vec<u8>,
    }

    impl Reference {
        pub(crate) fn feed(&mut self, bytes: &[u8]) -> String {
            let mut input = std::mem::take(&mut self.pending);
            input.extend_from_slice(bytes);
            let mut out = String::new();
            let mut rest: &[u8] = &input;
            loop {
                match std::str::from_utf8(rest) {
                    Ok(s) => {
                        out.push_str(s);
                        break;
                    }
                    Err(e) => {
                        let (good, bad) = rest.split_at(e.valid_up_to());
                        out.push_str(std::str::from_utf8(good).unwrap());
                        match e.error_len() {
                            Some(n) => {
                                out.push('\u{FFFD}');
                                rest = &bad[n..];
                            }
                            None => {
                                self.pending = bad.to_vec();
                                break;
                            }
                        }
                    }
                }
            }
            out
        }

        pub(crate) fn finish(&mut self) -> String {
            if std::mem::take(&mut self.pending).is_empty() {
                String::new()
            } else {
                "\u{FFFD}".into()
            }
        }
    }

    /// The inside of serde_json's string for `text`.
    fn json_inner(text: &str) -> String {
        let quoted = serde_json::to_string(text).unwrap();
        quoted[1..quoted.len() - 1].to_string()
    }

    fn escaped(reads: &[&[u8]]) -> (String, String) {
        let (mut e, mut r) = (Utf8Escaper::default(), Reference::default());
        let (mut got, mut want) = (Vec::new(), String::new());
        for read in reads {
            e.feed(read, &mut got);
            want.push_str(&json_inner(&r.feed(read)));
        }
        e.finish(&mut got);
        want.push_str(&json_inner(&r.finish()));
        (String::from_utf8(got).unwrap(), want)
    }

    #[test]
    fn header_and_events_are_asciicast_v2() {
        let mut h = CastHeader::new(0, 0, 1_700_000_000);
        h.env.insert("TERM".into(), "xterm".into());
        h.title = Some("t".into());
        assert_eq!(
            String::from_utf8(h.line()).unwrap(),
            "{\"version\":2,\"width\":80,\"height\":24,\"timestamp\":1700000000,\"title\":\"t\",\"env\":{\"TERM\":\"xterm\"}}\n"
        );
        let mut line = Vec::new();
        begin_event(&mut line, 1_234_567, Code::Output);
        escape_str(&mut line, "a\"\u{1b}[0m\n");
        end_event(&mut line);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "[1.234567, \"o\", \"a\\\"\\u001b[0m\\n\"]\n"
        );
        let mut line = Vec::new();
        begin_event(&mut line, 5, Code::Resize);
        escape_str(&mut line, "100x30");
        end_event(&mut line);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v, serde_json::json!([0.000005, "r", "100x30"]));
    }

    #[test]
    fn the_word_scan_finds_every_escape_at_every_place() {
        // Every byte value at every place of a 24-byte run (three words and across their
        // edges), among plain bytes and among other non-escaped bytes above 0x7f.
        for filler in [b'a', 0xc3] {
            for value in 0..=255u8 {
                for at in 0..24 {
                    let mut bytes = [filler; 24];
                    bytes[at] = value;
                    let want = (ESCAPE[usize::from(value)] != 0).then_some(at);
                    assert_eq!(next_escape(&bytes), want, "byte {value:#04x} at {at}");
                    // Only what follows a place counts.
                    assert_eq!(next_escape(&bytes[at + 1..]), None);
                }
            }
        }
    }

    #[test]
    fn every_byte_that_json_escapes_is_escaped_as_serde_json_does() {
        // All of U+0000–U+001F, the quote and the backslash; DEL and non-ASCII unchanged.
        let text: String = (0u8..0x80).map(char::from).chain("é€😀".chars()).collect();
        let mut out = Vec::new();
        escape_str(&mut out, &text);
        assert_eq!(String::from_utf8(out).unwrap(), json_inner(&text));
        let mut out = Vec::new();
        escape_str(&mut out, "\"\\\u{8}\u{c}\t\r\n\u{0}\u{1f}\u{7f}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\\\"\\\\\\b\\f\\t\\r\\n\\u0000\\u001f\u{7f}"
        );
    }

    #[test]
    fn utf8_split_across_reads_stays_whole_and_junk_is_replaced() {
        let euro = "€".as_bytes();
        let emoji = "😀".as_bytes();
        let cases: Vec<Vec<&[u8]>> = vec![
            // A character split 1+2, 2+1, and over three reads of one byte.
            vec![&euro[..1], &euro[1..]],
            vec![&euro[..2], &euro[2..], b"ok"],
            vec![&emoji[..1], &emoji[1..2], &emoji[2..3], &emoji[3..], b"!"],
            // A split character completed by a read that goes on with more text and a
            // character of its own split again at its end.
            vec![&euro[..1], b"\x82\xaca\"b\xf0\x9f", b"\x98\x80"],
            // Invalid: a lone continuation byte, 0xff, an overlong form, a surrogate.
            vec![b"a\xffb\x80c\xc0\xafd\xed\xa0\x80e"],
            // A started character broken by the next read, and one broken by the end.
            vec![&euro[..2], b"x"],
            vec![&emoji[..3], b"\x80\x80"],
            vec![b"tail", &euro[..2]],
            // Control characters and quotes on either side of a split.
            vec![b"\x1b[1m\"", &euro[..1], &euro[1..], b"\\\r\n\x00"],
        ];
        for reads in cases {
            let (got, want) = escaped(&reads);
            assert_eq!(got, want, "{reads:?}");
        }
        let (got, _) = escaped(&[&euro[..1], &euro[1..]]);
        assert_eq!(got, "€");
        let (got, _) = escaped(&[b"a\xffb", &euro[..2]]);
        assert_eq!(got, "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn pending_bytes_are_reported_and_finish_replaces_them() {
        let mut e = Utf8Escaper::default();
        let mut out = Vec::new();
        e.feed(&"€".as_bytes()[..2], &mut out);
        assert!(out.is_empty() && e.has_pending());
        assert!(e.finish(&mut out));
        assert_eq!(out, "\u{FFFD}".as_bytes());
        assert!(!e.has_pending() && !e.finish(&mut out));
    }

    proptest! {
        /// Whatever the bytes and however they are split into reads, the escaper writes
        /// exactly what decoding the old way and escaping with serde_json wrote.
        #[test]
        fn escaper_matches_the_reference(
            reads in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        any::<u8>(),
                        // Make UTF-8 lead and continuation bytes common.
                        0x80u8..0xc0,
                        0xc2u8..0xf5,
                        Just(b'"'), Just(b'\\'), 0u8..0x20,
                    ],
                    0..12),
                0..12)) {
            let reads: Vec<&[u8]> = reads.iter().map(Vec::as_slice).collect();
            let (got, want) = escaped(&reads);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn valid_text_split_anywhere_is_unchanged(text in "\\PC{0,40}", cuts in proptest::collection::vec(0usize..200, 0..6)) {
            let bytes = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut reads = Vec::new();
            let mut at = 0;
            for c in cuts {
                reads.push(&bytes[at..c]);
                at = c;
            }
            reads.push(&bytes[at..]);
            let (got, _) = escaped(&reads);
            prop_assert_eq!(got, json_inner(&text));
        }
    }
}
