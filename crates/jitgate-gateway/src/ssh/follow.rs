//! The gateway's side of following an `sftp` channel ([`super::sftp`]): the one follower
//! both relay directions of the channel share, and the operation events it records
//! (`sftp_transfer` with path, direction, size and SHA-256; `sftp_remove`, `sftp_rename`, …).

use super::server::Stats;
use super::sftp::{SftpEvent, SftpLog};
use crate::runtime::Gateway;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// One channel's follower: empty until the channel starts the `sftp` subsystem.
#[derive(Clone)]
pub(super) struct SftpFollow {
    log: Arc<Mutex<Option<SftpLog>>>,
    gw: Arc<Gateway>,
    grant: Arc<str>,
    session: Arc<str>,
    stats: Arc<Stats>,
}

impl SftpFollow {
    pub(super) fn new(gw: Arc<Gateway>, grant: &str, session: &str, stats: Arc<Stats>) -> Self {
        SftpFollow {
            log: Arc::new(Mutex::new(None)),
            gw,
            grant: grant.into(),
            session: session.into(),
            stats,
        }
    }

    /// The channel started the `sftp` subsystem: follow it from now on.
    pub(super) fn start(&self) {
        *self.lock() = Some(SftpLog::new());
    }

    /// Client → asset bytes; `false` when the stream cannot be followed (close the channel).
    pub(super) fn client(&self, data: &[u8]) -> bool {
        self.feed(|log| log.client_bytes(data))
    }

    /// Asset → client bytes; `false` as for [`SftpFollow::client`].
    pub(super) fn asset(&self, data: &[u8]) -> bool {
        self.feed(|log| log.asset_bytes(data))
    }

    /// The channel ended: files still open are recorded as incomplete transfers.
    pub(super) fn finish(&self) {
        self.feed(SftpLog::finish);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SftpLog>> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn feed(&self, f: impl FnOnce(&mut SftpLog) -> Vec<SftpEvent>) -> bool {
        let events = match self.lock().as_mut() {
            Some(log) => f(log),
            None => return true,
        };
        let mut followable = true;
        for e in events {
            let detail = match e {
                SftpEvent::Transfer {
                    path,
                    direction,
                    size,
                    sha256,
                    complete,
                } => json!({
                    "protocol": "ssh", "operation": "sftp_transfer", "target": path,
                    "allowed": true, "direction": direction, "size": size,
                    "sha256": sha256, "complete": complete,
                }),
                SftpEvent::PathOp { op, path, to } => json!({
                    "protocol": "ssh", "operation": format!("sftp_{op}"), "target": path,
                    "to": to, "allowed": true,
                }),
                SftpEvent::Unfollowable(why) => {
                    followable = false;
                    self.stats.denied.fetch_add(1, Ordering::Relaxed);
                    json!({
                        "protocol": "ssh", "operation": "sftp", "allowed": false,
                        "reason": format!("the gateway cannot follow this sftp stream ({why}), so it cannot log its transfers: the channel is closed"),
                    })
                }
            };
            self.stats.operations.fetch_add(1, Ordering::Relaxed);
            let recorded = self.gw.events.record(
                "operation",
                self.gw.clock_now(),
                Some(&self.grant),
                Some(&self.session),
                detail,
            );
            if recorded.is_err() {
                // Not in evidence: the channel is closed rather than relay on (logged).
                followable = false;
            }
        }
        followable
    }
}
