//! The hook where an SSH session's terminal traffic is fed to a recorder (the asciicast
//! recording of issue 13 plugs in here). The SSH server calls it for every session
//! channel: what the user typed, what the asset wrote back, terminal size changes, the
//! exec command or subsystem, the exit status. Today the only implementation records
//! nothing ([`NoRecording`]); [`recorder_for`] is the one place that picks it.

use std::time::Instant;

/// Receives one session's traffic, in order, on the session's own task. Calls must be
/// cheap (they sit on the relay path): buffer, and do file I/O elsewhere.
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

/// The recorder of a new session.
pub fn recorder_for(_session_id: &str, _grant_id: &str, _asset: &str) -> Box<dyn SessionRecorder> {
    Box::new(NoRecording)
}
