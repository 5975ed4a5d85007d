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

/// One event line, newline included: `[1.234567, "o", "text"]`.
pub fn event_line(micros: u64, code: Code, data: &str) -> Vec<u8> {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "\"\"".into());
    format!(
        "[{}.{:06}, \"{}\", {data}]\n",
        micros / 1_000_000,
        micros % 1_000_000,
        code.as_str()
    )
    .into_bytes()
}

/// Incremental UTF-8 decoding of one byte stream: up to 3 bytes of an incomplete character
/// wait for the next read.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// The text of `bytes` (after what was pending), keeping an incomplete last character.
    pub fn feed(&mut self, bytes: &[u8]) -> String {
        let mut input = std::mem::take(&mut self.pending);
        input.extend_from_slice(bytes);
        let mut out = String::with_capacity(input.len());
        let mut rest: &[u8] = &input;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // `good` is valid UTF-8 by construction.
                    out.push_str(&String::from_utf8_lossy(good));
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            rest = bad.get(n..).unwrap_or_default();
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

    /// What is left at the end of the stream (an incomplete character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            String::new()
        } else {
            self.pending.clear();
            "\u{FFFD}".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_events_are_asciicast_v2() {
        let mut h = CastHeader::new(0, 0, 1_700_000_000);
        h.env.insert("TERM".into(), "xterm".into());
        h.title = Some("t".into());
        assert_eq!(
            String::from_utf8(h.line()).unwrap(),
            "{\"version\":2,\"width\":80,\"height\":24,\"timestamp\":1700000000,\"title\":\"t\",\"env\":{\"TERM\":\"xterm\"}}\n"
        );
        assert_eq!(
            String::from_utf8(event_line(1_234_567, Code::Output, "a\"\u{1b}[0m\n")).unwrap(),
            "[1.234567, \"o\", \"a\\\"\\u001b[0m\\n\"]\n"
        );
        let v: serde_json::Value =
            serde_json::from_slice(&event_line(5, Code::Resize, "100x30")).unwrap();
        assert_eq!(v, serde_json::json!([0.000005, "r", "100x30"]));
    }

    #[test]
    fn utf8_split_across_reads_stays_whole_and_junk_is_replaced() {
        let mut s = Utf8Stream::default();
        let euro = "€".as_bytes();
        assert_eq!(s.feed(&euro[..1]), "");
        assert_eq!(s.feed(&euro[1..]), "€");
        assert_eq!(s.feed(b"a\xffb"), "a\u{FFFD}b");
        assert_eq!(s.feed(&euro[..2]), "");
        assert_eq!(s.finish(), "\u{FFFD}");
        assert_eq!(s.feed(b"ok"), "ok");
    }
}
