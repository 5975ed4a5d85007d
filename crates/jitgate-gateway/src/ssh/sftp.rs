//! Following an `sftp` subsystem channel (SFTP version 3, draft-ietf-secsh-filexfer-02, what
//! OpenSSH speaks) to log its file transfers as operations: path, direction, size and the
//! SHA-256 of the bytes that crossed the gateway. Pure and synchronous: the gateway feeds
//! each direction's channel bytes as they pass; nothing is changed or held back.
//!
//! The stream is untrusted (either end may be hostile), so everything is bounded: the
//! packet length, the handles and reads tracked at once. A stream that breaks the framing
//! or a bound cannot be followed, and a transfer the gateway cannot account for must not
//! pass: [`SftpLog`] then says so ([`SftpEvent::Unfollowable`]) and the gateway closes the
//! channel. Fuzz target: `fuzz/fuzz_targets/sftp_stream.rs`.

#![deny(clippy::indexing_slicing)]

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Largest SFTP packet followed (OpenSSH's own limit is 256 KiB).
pub const MAX_PACKET: usize = 256 * 1024 + 1024;
/// Open handles tracked at once (OpenSSH's sftp-server allows 100 open files per session).
pub const MAX_HANDLES: usize = 128;
/// Requests awaiting their answer at once (clients pipeline reads: OpenSSH 64 by default).
pub const MAX_PENDING: usize = 1024;
/// Longest path or handle kept.
const MAX_NAME: usize = 4096;

const FXP_OPEN: u8 = 3;
const FXP_CLOSE: u8 = 4;
const FXP_READ: u8 = 5;
const FXP_WRITE: u8 = 6;
const FXP_REMOVE: u8 = 13;
const FXP_MKDIR: u8 = 14;
const FXP_RMDIR: u8 = 15;
const FXP_RENAME: u8 = 18;
const FXP_SETSTAT: u8 = 9;
const FXP_HANDLE: u8 = 102;
const FXP_DATA: u8 = 103;
const FXP_STATUS: u8 = 101;

/// `upload`: the client wrote to the asset; `download`: it read from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Upload,
    Download,
}

/// What the channel did, for the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SftpEvent {
    /// A file handle was closed (or the channel ended with it open: `complete: false`).
    Transfer {
        path: String,
        direction: Direction,
        /// Bytes that crossed the gateway in that direction.
        size: u64,
        /// SHA-256 (hex) of those bytes in file order; `None` when they were not sent in
        /// order (a client seeking around), so no single digest describes them.
        sha256: Option<String>,
        complete: bool,
    },
    /// A request that changes the file system without a transfer.
    PathOp {
        op: &'static str,
        path: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// The stream cannot be followed any further (the reason): the gateway closes the channel.
    Unfollowable(String),
}

/// One direction's running digest of a handle.
#[derive(Default)]
struct Flow {
    hash: Sha256,
    size: u64,
    /// Next offset expected for the digest to stay in file order.
    next: u64,
    in_order: bool,
    used: bool,
}

impl Flow {
    fn add(&mut self, offset: u64, data: &[u8]) {
        if !self.used {
            self.used = true;
            self.in_order = true;
        }
        if offset != self.next {
            self.in_order = false;
        }
        self.hash.update(data);
        self.size += data.len() as u64;
        self.next = offset.saturating_add(data.len() as u64);
    }
}

struct OpenFile {
    path: String,
    up: Flow,
    down: Flow,
}

/// What a request id waits for.
enum Pending {
    Open(String),
    Read { handle: Vec<u8>, offset: u64 },
}

/// The state of one `sftp` channel.
#[derive(Default)]
pub struct SftpLog {
    from_client: Vec<u8>,
    from_asset: Vec<u8>,
    pending: HashMap<u32, Pending>,
    open: HashMap<Vec<u8>, OpenFile>,
    broken: bool,
}

/// A cursor over one packet's payload; every read is bounded.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }
    fn u64(&mut self) -> Option<u64> {
        let b: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_be_bytes(b))
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }
    fn name(&mut self) -> Option<String> {
        let s = self.string()?;
        (s.len() <= MAX_NAME).then(|| String::from_utf8_lossy(s).into_owned())
    }
}

/// Split the complete packets off the front of `buf`: (type, payload) each.
fn packets(buf: &mut Vec<u8>, data: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, String> {
    buf.extend_from_slice(data);
    let mut out = Vec::new();
    while let Some(len) = buf.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_PACKET {
            return Err(format!(
                "an sftp packet of {len} bytes (at most {MAX_PACKET})"
            ));
        }
        let Some(packet) = buf.get(4..4 + len) else {
            break;
        };
        let (kind, body) = packet.split_first().ok_or("an empty sftp packet")?;
        out.push((*kind, body.to_vec()));
        buf.drain(..4 + len);
    }
    Ok(out)
}

impl SftpLog {
    pub fn new() -> SftpLog {
        SftpLog::default()
    }

    /// Bytes the client sent on the channel.
    pub fn client_bytes(&mut self, data: &[u8]) -> Vec<SftpEvent> {
        self.feed(data, true)
    }

    /// Bytes the asset sent on the channel.
    pub fn asset_bytes(&mut self, data: &[u8]) -> Vec<SftpEvent> {
        self.feed(data, false)
    }

    /// The channel ended: files still open are reported as incomplete transfers.
    pub fn finish(&mut self) -> Vec<SftpEvent> {
        let mut out = Vec::new();
        for (_, f) in self.open.drain() {
            transfers(f, false, &mut out);
        }
        out
    }

    fn feed(&mut self, data: &[u8], from_client: bool) -> Vec<SftpEvent> {
        if self.broken {
            return Vec::new();
        }
        let buf = if from_client {
            &mut self.from_client
        } else {
            &mut self.from_asset
        };
        let mut out = Vec::new();
        let result = packets(buf, data).and_then(|ps| {
            ps.into_iter().try_for_each(|(kind, body)| {
                if from_client {
                    self.request(kind, &body, &mut out)
                } else {
                    self.answer(kind, &body)
                }
            })
        });
        if let Err(why) = result {
            self.broken = true;
            out.push(SftpEvent::Unfollowable(why));
        }
        out
    }

    fn request(&mut self, kind: u8, body: &[u8], out: &mut Vec<SftpEvent>) -> Result<(), String> {
        let bad = || format!("a malformed sftp request (type {kind})");
        let mut r = Reader(body);
        if kind == 1 {
            return Ok(()); // INIT: a version, no request id
        }
        let id = r.u32().ok_or_else(bad)?;
        match kind {
            FXP_OPEN => {
                let path = r.name().ok_or_else(bad)?;
                self.expect(id, Pending::Open(path))?;
            }
            FXP_READ => {
                let handle = r.string().ok_or_else(bad)?.to_vec();
                let offset = r.u64().ok_or_else(bad)?;
                if self.open.contains_key(&handle) {
                    self.expect(id, Pending::Read { handle, offset })?;
                }
            }
            FXP_WRITE => {
                let handle = r.string().ok_or_else(bad)?;
                let offset = r.u64().ok_or_else(bad)?;
                let data = r.string().ok_or_else(bad)?;
                if let Some(f) = self.open.get_mut(handle) {
                    f.up.add(offset, data);
                }
            }
            FXP_CLOSE => {
                let handle = r.string().ok_or_else(bad)?;
                if let Some(f) = self.open.remove(handle) {
                    transfers(f, true, out);
                }
            }
            FXP_REMOVE | FXP_MKDIR | FXP_RMDIR | FXP_SETSTAT => {
                let op = match kind {
                    FXP_REMOVE => "remove",
                    FXP_MKDIR => "mkdir",
                    FXP_RMDIR => "rmdir",
                    _ => "setstat",
                };
                let path = r.name().ok_or_else(bad)?;
                out.push(SftpEvent::PathOp { op, path, to: None });
            }
            FXP_RENAME => {
                let path = r.name().ok_or_else(bad)?;
                let to = Some(r.name().ok_or_else(bad)?);
                out.push(SftpEvent::PathOp {
                    op: "rename",
                    path,
                    to,
                });
            }
            // Listing, stat, realpath, readlink…: nothing is transferred or changed.
            _ => {}
        }
        Ok(())
    }

    fn answer(&mut self, kind: u8, body: &[u8]) -> Result<(), String> {
        let bad = || format!("a malformed sftp answer (type {kind})");
        let mut r = Reader(body);
        if kind == 2 {
            return Ok(()); // VERSION
        }
        let id = r.u32().ok_or_else(bad)?;
        let Some(waiting) = self.pending.remove(&id) else {
            return Ok(());
        };
        match (kind, waiting) {
            (FXP_HANDLE, Pending::Open(path)) => {
                let handle = r.string().ok_or_else(bad)?;
                if handle.len() > MAX_NAME {
                    return Err("an sftp handle longer than 4096 bytes".into());
                }
                if self.open.len() >= MAX_HANDLES {
                    return Err(format!("more than {MAX_HANDLES} sftp files open at once"));
                }
                self.open.insert(
                    handle.to_vec(),
                    OpenFile {
                        path,
                        up: Flow::default(),
                        down: Flow::default(),
                    },
                );
            }
            (FXP_DATA, Pending::Read { handle, offset }) => {
                let data = r.string().ok_or_else(bad)?;
                if let Some(f) = self.open.get_mut(&handle) {
                    f.down.add(offset, data);
                }
            }
            // A failed open or read (end of file, no such file): nothing transferred.
            (FXP_STATUS, _) => {}
            _ => {}
        }
        Ok(())
    }

    fn expect(&mut self, id: u32, what: Pending) -> Result<(), String> {
        if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&id) {
            return Err(format!(
                "more than {MAX_PENDING} sftp requests awaiting an answer"
            ));
        }
        self.pending.insert(id, what);
        Ok(())
    }
}

/// The transfers of a closed file: one per direction that carried bytes.
fn transfers(f: OpenFile, complete: bool, out: &mut Vec<SftpEvent>) {
    for (flow, direction) in [(f.up, Direction::Upload), (f.down, Direction::Download)] {
        if flow.used {
            out.push(SftpEvent::Transfer {
                path: f.path.clone(),
                direction,
                size: flow.size,
                sha256: flow.in_order.then(|| hex::encode(flow.hash.finalize())),
                complete,
            });
        }
    }
}

#[cfg(test)]
#[path = "sftp_tests.rs"]
mod tests;
