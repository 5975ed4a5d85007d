//! The gateway's revocation list: grants that ended, kept until their credentials expire,
//! persisted in `state_dir/revoked.jsonl` so that a revoked token stays refused across a
//! gateway restart (even before the control channel is back).
//!
//! One JSON line per revocation, appended and fsync'd — O(1) per revocation however long
//! the list is (rewriting a whole file per revocation would make a burst of n revocations
//! cost O(n²)). At load the file is compacted: entries whose credentials expired more than
//! an hour ago are dropped and the rest written to a temporary file, fsync'd and renamed.
//!
//! Also here: how the gateway applies what the control channel orders (a revocation, an
//! emergency key retirement) to the list and to the live sessions ([`crate::live`]).

use crate::wire::{Revocation, RevocationAck, SessionClosed};
use jitgate_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One ended grant, as kept on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub grant_id: String,
    pub reason: String,
    #[serde(with = "jitgate_core::event::millis")]
    pub expires_at: Timestamp,
    #[serde(with = "jitgate_core::event::millis")]
    pub revoked_at: Timestamp,
    /// Who ended the grant and why (absent in lists written before they were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Entries are kept this long past the credential's expiry (clock skew between server and
/// gateway).
fn horizon(now: Timestamp) -> Timestamp {
    now - chrono::Duration::hours(1)
}

pub struct RevocationList {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
    /// Serialises appends (one line per write, never interleaved).
    file_lock: Arc<Mutex<()>>,
    /// Sessions closed under each grant (in memory; reported in acknowledgements).
    pub closed: BTreeMap<String, Vec<SessionClosed>>,
}

impl RevocationList {
    /// Load and compact the list (a missing file is an empty list; an unreadable one is an
    /// error: the gateway must not start believing nothing was revoked).
    pub fn load(path: &Path) -> Result<Self, String> {
        let now = chrono::Utc::now();
        let mut entries = BTreeMap::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let e: Entry = serde_json::from_str(line).map_err(|e| {
                        format!(
                            "{} line {} is not a valid revocation ({e}); restore the file from backup, or delete it only if every token issued before now has expired",
                            path.display(),
                            n + 1
                        )
                    })?;
                    if e.expires_at > horizon(now) {
                        entries.entry(e.grant_id.clone()).or_insert(e);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
        let list = RevocationList {
            path: path.to_path_buf(),
            entries,
            file_lock: Arc::default(),
            closed: BTreeMap::new(),
        };
        list.compact()?;
        Ok(list)
    }

    /// Rewrite the file with the live entries only (temporary file, fsync, rename).
    fn compact(&self) -> Result<(), String> {
        let mut body = Vec::new();
        for e in self.entries.values() {
            serde_json::to_writer(&mut body, e).map_err(|e| e.to_string())?;
            body.push(b'\n');
        }
        let tmp = self.path.with_extension("jsonl.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = crate::private::options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }

    pub fn is_revoked(&self, grant: &str) -> Option<&Entry> {
        self.entries.get(grant)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add a revocation in memory (idempotent: the first revocation time is kept), dropping
    /// expired entries from memory. Returns when it was revoked here and, if it is new, the
    /// [`Append`] that makes it durable (run it outside any lock).
    pub fn insert(&mut self, r: &Revocation, now: Timestamp) -> (Timestamp, Option<Append>) {
        if let Some(e) = self.entries.get(&r.grant_id) {
            return (e.revoked_at, None);
        }
        let entry = Entry {
            grant_id: r.grant_id.clone(),
            reason: r.reason.clone(),
            expires_at: r.expires_at,
            revoked_at: now,
            ended_by: r.ended_by.clone(),
            note: r.note.clone(),
        };
        self.entries.insert(r.grant_id.clone(), entry.clone());
        let h = horizon(now);
        self.entries.retain(|_, e| e.expires_at > h);
        let keep: std::collections::BTreeSet<&String> = self.entries.keys().collect();
        self.closed.retain(|g, _| keep.contains(g));
        (
            now,
            Some(Append {
                path: self.path.clone(),
                entry,
                lock: self.file_lock.clone(),
            }),
        )
    }
}

/// One revocation on its way to disk.
pub struct Append {
    path: PathBuf,
    entry: Entry,
    lock: Arc<Mutex<()>>,
}

impl Append {
    /// Append the line and fsync.
    pub fn write(&self) -> Result<(), String> {
        let mut line = serde_json::to_vec(&self.entry).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let write = || -> std::io::Result<()> {
            let mut f = crate::private::options()
                .create(true)
                .append(true)
                .open(&self.path)?;
            f.write_all(&line)?;
            f.sync_data()
        };
        write().map_err(|e| format!("cannot append to {}: {e}", self.path.display()))
    }
}

/// Applying what the control channel orders: a revocation (cut the grant's sessions,
/// persist it, say what was closed) and an emergency key retirement.
impl crate::runtime::Gateway {
    /// Has this grant ended (its credential is refused here)? Returns the reason.
    pub fn revoked_reason(&self, grant: &str) -> Option<String> {
        self.revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_revoked(grant)
            .map(|e| e.reason.clone())
    }

    /// Who ended the grant and why, as the server said in its revocation (for the message a
    /// cut user reads).
    pub fn ended_by(&self, grant: &str) -> (Option<String>, Option<String>) {
        self.revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_revoked(grant)
            .map(|e| (e.ended_by.clone(), e.note.clone()))
            .unwrap_or_default()
    }

    /// Apply a revocation from the server: persist it in the revocation list (so the
    /// credential stays refused across restarts), end every live session of the grant, wait
    /// until they are gone, and say what was closed. Idempotent.
    pub async fn apply_revocation(&self, r: &Revocation) -> Result<RevocationAck, String> {
        let now = self.clock_now();
        // In memory first (new handshakes refuse at once), cut the sessions, then write the
        // list to disk: the cut does not wait for an fsync.
        let (revoked_at, append) = self
            .revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(r, now);
        let ended = self
            .live
            .cut_grant(&r.grant_id, &format!("grant_{}", r.reason));
        if let Some(append) = append {
            tokio::task::spawn_blocking(move || append.write())
                .await
                .map_err(|e| e.to_string())??;
        }
        if ended > 0 {
            tracing::info!(grant = %r.grant_id, sessions = ended, reason = %r.reason, "grant ended: sessions cut");
        }
        // Sessions leave the registry as soon as their loop sees the signal (milliseconds).
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let mut live = self.live.count_of_grant(&r.grant_id);
        while live > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
            live = self.live.count_of_grant(&r.grant_id);
        }
        let sessions = self.live.closed_of(&r.grant_id);
        Ok(RevocationAck {
            grant_id: r.grant_id.clone(),
            live_sessions: live,
            sessions,
            revoked_at,
        })
    }

    /// The server retired token-signing key `kid` now: refuse its tokens from this instant
    /// (whatever key list arrives later) and end every live session opened with one.
    /// Returns how many sessions were cut. Idempotent.
    pub fn retire_key(&self, kid: &str) -> usize {
        self.retired_kids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kid.to_string());
        self.verifier
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retire(kid);
        let n = self.live.cut_key(kid, "key_retired");
        if n > 0 {
            tracing::warn!(%kid, sessions = n, "token-signing key retired: sessions cut");
        }
        n
    }

    /// Was `kid` retired while this gateway runs?
    pub fn key_is_retired(&self, kid: &str) -> bool {
        self.retired_kids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_reload_and_forgets_expired_entries() {
        let dir = std::env::temp_dir().join(format!("jg-revoked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("revoked.jsonl");
        let _ = std::fs::remove_file(&path);
        let now = chrono::Utc::now();
        let mut list = RevocationList::load(&path).unwrap();
        assert!(list.is_empty());
        let r = |id: &str, exp| Revocation {
            grant_id: id.into(),
            reason: "revoked".into(),
            expires_at: exp,
            ended_by: Some("sam".into()),
            note: None,
        };
        let (_, append) = list.insert(&r("grant-old", now - chrono::Duration::hours(2)), now);
        append.unwrap().write().unwrap();
        let (_, append) = list.insert(&r("grant-a", now + chrono::Duration::hours(1)), now);
        append.unwrap().write().unwrap();
        let (_, again) = list.insert(&r("grant-a", now + chrono::Duration::hours(1)), now);
        assert!(again.is_none(), "a repeated revocation changes nothing");
        let reloaded = RevocationList::load(&path).unwrap();
        assert!(reloaded.is_revoked("grant-a").is_some());
        assert!(
            reloaded.is_revoked("grant-old").is_none(),
            "expired entries are pruned"
        );
        // Compacted at load: only the live entry is left in the file.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        std::fs::write(&path, b"{ not json\n").unwrap();
        let err = RevocationList::load(&path).err().unwrap();
        assert!(err.contains("line 1 is not a valid revocation"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
