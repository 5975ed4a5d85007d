//! asciinema 2.x (PyPI `asciinema==2.4.0`) reads what the recorder writes: `asciinema cat`
//! on a cast made by [`SessionRecorder`] (output, input, resize, markers, non-ASCII split
//! across reads, several chunks) prints exactly the recorded output.

use super::peers;
use jitgate_core::ManualClock;
use jitgate_gateway::recording::{CastHeader, RecorderLimits, SessionRecorder};
use std::process::Command;
use std::sync::Arc;

fn asciinema() -> Option<String> {
    let bin = std::env::var("JITGATE_ASCIINEMA").unwrap_or_else(|_| "asciinema".into());
    let ok = Command::new(&bin).arg("--version").output().is_ok_and(|o| {
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("asciinema 2.")
    });
    if ok {
        Some(bin)
    } else {
        peers::missing("asciinema 2.x", "pip install asciinema==2.4.0");
        None
    }
}

#[test]
fn asciinema_cat_reads_a_recorded_cast() {
    let Some(bin) = asciinema() else { return };
    let clock = Arc::new(ManualClock::new(
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
    ));
    let mut header = CastHeader::new(100, 30, 0);
    header.env.insert("TERM".into(), "xterm-256color".into());
    header.title = Some("sess-peer: alice@hmi-1".into());
    let mut r = SessionRecorder::new(
        "sess-peer",
        header,
        clock.clone(),
        RecorderLimits {
            chunk_bytes: 200,
            ..Default::default()
        },
    );
    let mut chunks = r.exec("uname -a");
    let mut expected = Vec::new();
    let euro = "€ \u{1b}[1mbold\u{1b}[0m \"quoted\" \\ tab\t".as_bytes();
    for i in 0..20 {
        clock.advance(chrono::Duration::milliseconds(37));
        chunks.extend(r.input(format!("cmd {i}\r").as_bytes()));
        let line = [format!("line {i}: ").as_bytes(), euro, b"\r\n"].concat();
        // Split inside the euro sign: the recorder keeps the character whole.
        let (a, b) = line.split_at(line.len() - euro.len() - 1);
        chunks.extend(r.output(a));
        chunks.extend(r.output(b));
        expected.extend_from_slice(&line);
        if i == 10 {
            chunks.extend(r.resize(132, 43));
        }
    }
    chunks.extend(r.exit(0));
    chunks.extend(r.finish());
    assert!(chunks.len() > 3, "several chunks");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.cast");
    std::fs::write(
        &path,
        chunks
            .iter()
            .flat_map(|c| c.bytes.clone())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let out = Command::new(&bin).arg("cat").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "asciinema cat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&expected)
    );
}
