//! Where an SSH session's terminal traffic is fed to a recorder. The SSH server calls the
//! [`SessionRecorder`] hook for every session channel: what the user typed, what the asset
//! wrote back, terminal size changes, the command or subsystem, the exit status. The
//! recording itself — one asciicast per session, cut into hash-chained chunks delivered as
//! evidence — is [`crate::recording`]; [`CastRecorder`] adapts the hook to it, and
//! [`recorder_for`] is the one place that picks the implementation.
//!
//! What goes into the cast: channels that run a shell or a command (input, output, stderr,
//! resizes, `exec:` and `exit:` markers). Not the bytes of an `sftp` subsystem (a binary
//! protocol, not a terminal: a marker says it started) nor forwarded connections.

use crate::recording::{CastHeader, RecordingSink};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

/// Receives one session's traffic, in order. Calls must be cheap (they sit on the relay
/// path): buffer, and do file I/O elsewhere.
pub trait SessionRecorder: Send {
    /// A session channel opened (`channel` numbers the client's channels).
    fn channel_opened(&mut self, _at: Instant, _channel: u32) {}
    /// A terminal was requested (`pty-req`) with this size and `TERM`.
    fn pty(&mut self, _at: Instant, _channel: u32, _term: &str, _cols: u32, _rows: u32) {}
    /// The terminal was resized (`window-change`).
    fn resize(&mut self, _at: Instant, _channel: u32, _cols: u32, _rows: u32) {}
    /// A shell, a command (`exec`) or a subsystem (`sftp`) started on the channel.
    fn started(&mut self, _at: Instant, _channel: u32, _what: Started<'_>) {}
    /// Bytes from the user to the asset.
    fn input(&mut self, _at: Instant, _channel: u32, _data: &[u8]) {}
    /// Bytes from the asset to the user; `stderr` for extended data.
    fn output(&mut self, _at: Instant, _channel: u32, _data: &[u8], _stderr: bool) {}
    /// The command's exit status.
    fn exit(&mut self, _at: Instant, _channel: u32, _status: u32) {}
    /// Called every few seconds while the session runs (a quiet session's open chunk is
    /// closed by age).
    fn tick(&mut self, _at: Instant) {}
    /// The session ended (`reason` as `session.ended` records it): flush what is left.
    fn finish(&mut self, _at: Instant, _reason: &str) {}
}

/// What started on a channel.
#[derive(Debug, Clone, Copy)]
pub enum Started<'a> {
    Shell,
    Exec(&'a [u8]),
    Subsystem(&'a str),
}

/// Records nothing.
pub struct NoRecording;

impl SessionRecorder for NoRecording {}

/// The recorder of a new session: an asciicast delivered through `sink`.
pub fn recorder_for(
    sink: &RecordingSink,
    session_id: &str,
    grant_id: &str,
    asset: &str,
) -> Box<dyn SessionRecorder> {
    Box::new(CastRecorder {
        sink: sink.clone(),
        session_id: session_id.to_string(),
        grant_id: grant_id.to_string(),
        title: format!("{asset} ({grant_id})"),
        cast: None,
        size: None,
        recorded: HashSet::new(),
    })
}

/// The hook, feeding [`crate::recording::SessionRecorder`]. The cast starts with the first
/// shell or command (with the terminal's size when one was asked for, else 80×24).
pub struct CastRecorder {
    sink: RecordingSink,
    session_id: String,
    grant_id: String,
    title: String,
    cast: Option<crate::recording::SessionRecorder>,
    /// The last terminal size asked for, before the cast starts.
    size: Option<(u16, u16)>,
    /// The channels whose traffic goes into the cast.
    recorded: HashSet<u32>,
}

fn dim(v: u32, default: u16) -> u16 {
    match u16::try_from(v) {
        Ok(0) | Err(_) => default,
        Ok(v) => v,
    }
}

impl CastRecorder {
    fn deliver(&self, chunks: Vec<crate::recording::RecordedChunk>) {
        if chunks.is_empty() {
            return;
        }
        let at = crate::runtime::now_millis();
        for c in chunks {
            self.sink.chunk(&self.grant_id, at, c);
        }
    }

    fn cast(&mut self, command: Option<String>) -> &mut crate::recording::SessionRecorder {
        let (w, h) = self.size.unwrap_or((80, 24));
        let session_id = self.session_id.clone();
        let title = self.title.clone();
        self.cast.get_or_insert_with(|| {
            let mut header = CastHeader::new(w, h, 0);
            header.title = Some(title);
            header.command = command;
            crate::recording::SessionRecorder::new(
                &session_id,
                header,
                Arc::new(jitgate_core::clock::SystemClock),
                Default::default(),
            )
        })
    }
}

impl SessionRecorder for CastRecorder {
    fn pty(&mut self, _at: Instant, _channel: u32, _term: &str, cols: u32, rows: u32) {
        let size = (dim(cols, 80), dim(rows, 24));
        match self.cast.as_mut() {
            Some(c) => {
                let chunks = c.resize(size.0, size.1);
                self.deliver(chunks);
            }
            None => self.size = Some(size),
        }
    }

    fn resize(&mut self, _at: Instant, channel: u32, cols: u32, rows: u32) {
        if !self.recorded.contains(&channel) {
            self.size = Some((dim(cols, 80), dim(rows, 24)));
            return;
        }
        if let Some(c) = self.cast.as_mut() {
            let chunks = c.resize(dim(cols, 80), dim(rows, 24));
            self.deliver(chunks);
        }
    }

    fn started(&mut self, _at: Instant, channel: u32, what: Started<'_>) {
        let chunks = match what {
            Started::Shell => {
                self.recorded.insert(channel);
                self.cast(None);
                Vec::new()
            }
            Started::Exec(cmd) => {
                self.recorded.insert(channel);
                let cmd = String::from_utf8_lossy(cmd).into_owned();
                self.cast(Some(cmd.clone())).exec(&cmd)
            }
            Started::Subsystem(name) => self.cast(None).exec(&format!("subsystem {name}")),
        };
        self.deliver(chunks);
    }

    fn input(&mut self, _at: Instant, channel: u32, data: &[u8]) {
        if !self.recorded.contains(&channel) {
            return;
        }
        if let Some(c) = self.cast.as_mut() {
            let chunks = c.input(data);
            self.deliver(chunks);
        }
    }

    fn output(&mut self, _at: Instant, channel: u32, data: &[u8], _stderr: bool) {
        if !self.recorded.contains(&channel) {
            return;
        }
        if let Some(c) = self.cast.as_mut() {
            let chunks = c.output(data);
            self.deliver(chunks);
        }
    }

    fn exit(&mut self, _at: Instant, channel: u32, status: u32) {
        if !self.recorded.contains(&channel) {
            return;
        }
        if let Some(c) = self.cast.as_mut() {
            let chunks = c.exit(status);
            self.deliver(chunks);
        }
    }

    fn tick(&mut self, _at: Instant) {
        if let Some(c) = self.cast.as_mut() {
            let chunks = c.tick();
            self.deliver(chunks);
        }
    }

    fn finish(&mut self, _at: Instant, _reason: &str) {
        if let Some(c) = self.cast.take() {
            let chunks = c.finish();
            self.deliver(chunks);
        }
    }
}
