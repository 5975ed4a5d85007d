//! The sessions this gateway process holds, on disk: one small file per started session in
//! `state_dir/live-sessions/`, written when its `session.started` is recorded and removed
//! when it ends. A gateway killed with live sessions (SIGKILL, power loss of the process)
//! finds their files at its next start and records `session.ended` with reason
//! `gateway_restarted` for each, before it accepts anything: the evidence shows them
//! closed, and the console stops showing them live.

use crate::live::SessionInfo;
use crate::spool::EventLog;
use jitgate_core::server_payload::SessionEndedDetail;
use jitgate_core::Timestamp;
use std::path::{Path, PathBuf};

/// Why a session found open at start is closed.
pub const GATEWAY_RESTARTED: &str = "gateway_restarted";

#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Open {
    session_id: String,
    grant_id: String,
}

impl Journal {
    /// The journal in `dir` (created owner-only).
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        crate::private::state_dir(dir)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
        })
    }

    /// Session ids are the gateway's own (UUIDs); anything else is hex-encoded, so a name
    /// can never leave the directory.
    fn path(&self, session_id: &str) -> PathBuf {
        let safe = !session_id.is_empty()
            && session_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let name = if safe {
            session_id.to_string()
        } else {
            hex::encode(session_id)
        };
        self.dir.join(format!("{name}.json"))
    }

    /// A session started (its `session.started` is recorded).
    pub fn opened(&self, info: &SessionInfo) {
        let open = Open {
            session_id: info.session_id.clone(),
            grant_id: info.grant_id.clone(),
        };
        let written = serde_json::to_vec(&open)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(self.path(&info.session_id), bytes));
        if let Err(e) = written {
            tracing::error!(session = %info.session_id, error = %e, "cannot journal a live session; if the gateway dies now its end goes unrecorded");
        }
    }

    /// A session ended (or never started).
    pub fn closed(&self, session_id: &str) {
        match std::fs::remove_file(self.path(session_id)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(session = %session_id, error = %e, "cannot clear a live session's journal entry")
            }
        }
    }

    /// Record `session.ended` (reason [`GATEWAY_RESTARTED`]) for every session a previous
    /// process left open, and forget them. Returns how many.
    pub fn close_orphans(&self, events: &EventLog, now: Timestamp) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut n = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let open = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Open>(&b).ok());
            if let Some(open) = open {
                let detail = SessionEndedDetail {
                    reason: GATEWAY_RESTARTED.into(),
                    operations: 0,
                    denied: 0,
                    bytes_from_client: 0,
                    bytes_to_client: 0,
                };
                let recorded = events.record(
                    "session.ended",
                    now,
                    Some(&open.grant_id),
                    Some(&open.session_id),
                    serde_json::to_value(&detail).unwrap_or_default(),
                );
                if recorded.is_err() {
                    // Kept for the next start to try again (the error is logged).
                    continue;
                }
                n += 1;
            } else {
                // A torn write (killed mid-write): nothing recorded under it can be named.
                tracing::warn!(file = %path.display(), "unreadable live-session entry dropped");
            }
            let _ = std::fs::remove_file(&path);
        }
        if n > 0 {
            tracing::warn!(
                sessions = n,
                "sessions left open by the previous gateway process recorded as ended"
            );
        }
        n
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn info(id: &str) -> SessionInfo {
        SessionInfo {
            session_id: id.into(),
            grant_id: "g-1".into(),
            kid: "k".into(),
            expires_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn sessions_left_open_are_ended_once_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("live-sessions")).unwrap();
        j.opened(&info("s-1"));
        j.opened(&info("s-2"));
        j.opened(&info("../escape"));
        j.closed("s-2");
        // No file outside the journal.
        assert!(!dir.path().join("escape.json").exists());

        let (events, mut drain) = crate::spool::in_memory();
        let now = chrono::Utc::now();
        assert_eq!(j.close_orphans(&events, now), 2);
        let mut ended: Vec<(String, Option<String>, String)> = drain()
            .into_iter()
            .map(|(kind, _, session, data)| {
                (kind, session, data["reason"].as_str().unwrap().to_string())
            })
            .collect();
        ended.sort();
        assert_eq!(
            ended,
            vec![
                (
                    "session.ended".into(),
                    Some("../escape".into()),
                    GATEWAY_RESTARTED.into()
                ),
                (
                    "session.ended".into(),
                    Some("s-1".into()),
                    GATEWAY_RESTARTED.into()
                ),
            ]
        );
        // Once: a second start finds nothing.
        assert_eq!(j.close_orphans(&events, now), 0);
    }
}
