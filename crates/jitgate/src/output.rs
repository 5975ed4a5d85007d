//! Everything the CLI writes to stdout goes through here (`outln!`, `out!`, [`json`]), for
//! two reasons:
//!
//! - **Closed pipes.** `jitgate --json requests | head -1` closes stdout early; `println!`
//!   would then panic. A write that fails with `BrokenPipe` ends the process at once with
//!   status 0 and nothing on stderr: the reader chose to stop reading, which is not an error
//!   of ours (the same choice ripgrep makes; see docs/cli.md, "Exit codes").
//! - **Terminal escapes from the server.** Free text (reasons, references, comments, names)
//!   comes from other people. Human-readable output shows every control character escaped
//!   ([`escape_controls`]), so a reason cannot clear the approver's screen, move the cursor
//!   to overwrite the scope line, or reverse text with a bidi override. `--json` output stays
//!   JSON: serde escapes C0 controls; [`json`] also writes DEL, C1 controls and bidi controls
//!   as `\uXXXX` escapes (same value once parsed, nothing raw reaches the terminal).
//!
//! `clippy::print_stdout` is denied for the crate (see `main.rs`), so a new `println!` cannot
//! slip past this module.

use std::io::Write;

/// Characters shown escaped in human-readable output: C0 controls (the caller says whether a
/// newline is kept), DEL, C1 controls and the bidirectional-text controls that reorder what
/// is displayed (embeddings/overrides U+202A–U+202E, isolates U+2066–U+2069).
fn is_dangerous(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Escape control characters so they print as visible text: `\x1b`, `\r`, `\t`, `\x7f`,
/// `\u{85}`, `\u{202e}`. With `keep_newlines`, `\n` is left as a line break (for output whose
/// layout we make, where continuation lines are indented); free-text fields pass `false`.
pub fn escape_controls(text: &str, keep_newlines: bool) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| is_dangerous(c) && !(keep_newlines && c == '\n'))
    {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && is_dangerous(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_dangerous(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// JSON text with DEL, C1 and bidi controls written as `\uXXXX` escapes (serde_json already
/// escapes C0). Outside strings JSON holds only ASCII punctuation, digits and whitespace, so
/// every such character is inside a string, where the escape means the same character.
pub fn escape_json(text: &str) -> std::borrow::Cow<'_, str> {
    // C0 is left alone: serde_json escaped it in strings, and outside strings the only C0
    // characters are the pretty printer's newlines.
    let needs = |c: char| c >= '\u{7f}' && is_dangerous(c);
    if !text.chars().any(needs) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Write to stdout; a closed pipe ends the process quietly with status 0.
fn write_stdout(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let result = stdout.write_all(bytes).and_then(|()| stdout.flush());
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            // stdout is gone some other way (disk full on a redirect): say so once, and stop,
            // rather than carry on printing into nothing.
            let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {e}");
            std::process::exit(1)
        }
    }
}

/// Human-readable text, control characters escaped (newlines kept: the layout is ours).
pub fn text(s: &str) {
    write_stdout(escape_controls(s, true).as_bytes());
}

/// One line of human-readable text.
pub fn line(s: &str) {
    let mut owned = escape_controls(s, true).into_owned();
    owned.push('\n');
    write_stdout(owned.as_bytes());
}

/// A JSON document (pretty) followed by a newline.
pub fn json(value: &serde_json::Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let mut owned = escape_json(&text).into_owned();
    owned.push('\n');
    write_stdout(owned.as_bytes());
}

/// One compact JSON document per line (event streams such as `connect --json`).
pub fn json_line(value: &serde_json::Value) {
    let mut owned = escape_json(&value.to_string()).into_owned();
    owned.push('\n');
    write_stdout(owned.as_bytes());
}

/// `println!` for the CLI: escapes control characters, exits quietly on a closed pipe.
macro_rules! outln {
    () => {
        $crate::output::line("")
    };
    ($($arg:tt)*) => {
        $crate::output::line(&format!($($arg)*))
    };
}

/// `print!` for the CLI (see [`outln!`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::text(&format!($($arg)*))
    };
}

pub(crate) use {out, outln};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_are_shown_not_sent() {
        assert_eq!(
            escape_controls("fix\x1b[2J\rscope: read", false),
            "fix\\x1b[2J\\rscope: read"
        );
        assert_eq!(escape_controls("a\tb\u{7f}", false), "a\\tb\\x7f");
        // C1 controls (U+009B is a one-character CSI on some terminals) and bidi controls.
        assert_eq!(
            escape_controls("x\u{9b}2Jy\u{202e}evil\u{2066}", false),
            "x\\u{9b}2Jy\\u{202e}evil\\u{2066}"
        );
        assert_eq!(escape_controls("\u{0}\u{1f}", false), "\\x00\\x1f");
    }

    #[test]
    fn newlines_are_kept_only_when_asked() {
        assert_eq!(escape_controls("a\nb", true), "a\nb");
        assert_eq!(escape_controls("a\nb", false), "a\\nb");
        assert_eq!(escape_controls("a\r\nb", true), "a\\r\nb");
    }

    #[test]
    fn ordinary_text_is_untouched_and_not_copied() {
        for s in [
            "plain",
            "ünïcödé — ok",
            "table ┌─┐",
            "",
            "emoji 🔧",
            "a\u{a0}b",
        ] {
            let escaped = escape_controls(s, false);
            assert!(matches!(escaped, std::borrow::Cow::Borrowed(_)), "{s:?}");
            assert_eq!(escaped, s);
        }
    }

    #[test]
    fn json_stays_json_and_keeps_the_value() {
        let value = serde_json::json!({
            "reason": "fix\x1b[2J\r\u{85}\u{9b}x\u{202e}y\u{7f}",
            "ok": "ünï",
        });
        let text = serde_json::to_string_pretty(&value).unwrap();
        let escaped = escape_json(&text);
        assert!(
            !escaped.chars().any(|c| is_dangerous(c) && c != '\n'),
            "{escaped}"
        );
        assert!(
            escaped.contains("\\u001b[2J\\r\\u0085\\u009bx\\u202ey\\u007f"),
            "{escaped}"
        );
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);
    }
}
