//! The gateway's revocation list: grants that ended, kept until their credentials expire,
//! persisted in `state_dir/revoked.json` so that a revoked token stays refused across a
//! gateway restart (even before the control channel is back). Written atomically: a
//! temporary file, fsync, rename.

use crate::wire::{Revocation, SessionClosed};
use jitgate_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One ended grant and what the gateway closed under it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub reason: String,
    #[serde(with = "jitgate_core::event::millis")]
    pub expires_at: Timestamp,
    #[serde(with = "jitgate_core::event::millis")]
    pub revoked_at: Timestamp,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    revoked: BTreeMap<String, Entry>,
}

pub struct RevocationList {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
    /// Sessions closed under each grant (in memory; reported in acknowledgements).
    pub closed: BTreeMap<String, Vec<SessionClosed>>,
}

impl RevocationList {
    /// Load the list (a missing file is an empty list; an unreadable one is an error: the
    /// gateway must not start believing nothing was revoked).
    pub fn load(path: &Path) -> Result<Self, String> {
        let entries = match std::fs::read(path) {
            Ok(bytes) => {
                let f: FileFormat = serde_json::from_slice(&bytes).map_err(|e| {
                    format!(
                        "{} is not a valid revocation list ({e}); restore it from backup, or delete it only if every token issued before now has expired",
                        path.display()
                    )
                })?;
                f.revoked
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(RevocationList {
            path: path.to_path_buf(),
            entries,
            closed: BTreeMap::new(),
        })
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
    /// entries whose credentials expired. Returns when it was revoked here and, if the list
    /// changed, a [`Snapshot`] to write with [`Snapshot::write`] (outside any lock).
    pub fn insert(&mut self, r: &Revocation, now: Timestamp) -> (Timestamp, Option<Snapshot>) {
        if let Some(e) = self.entries.get(&r.grant_id) {
            return (e.revoked_at, None);
        }
        self.entries.insert(
            r.grant_id.clone(),
            Entry {
                reason: r.reason.clone(),
                expires_at: r.expires_at,
                revoked_at: now,
            },
        );
        // Keep an hour past expiry: clock skew between server and gateway.
        let horizon = now - chrono::Duration::hours(1);
        self.entries.retain(|_, e| e.expires_at > horizon);
        let keep: std::collections::BTreeSet<&String> = self.entries.keys().collect();
        self.closed.retain(|g, _| keep.contains(g));
        let snapshot = Snapshot {
            path: self.path.clone(),
            file: FileFormat {
                version: 1,
                revoked: self.entries.clone(),
            },
        };
        (now, Some(snapshot))
    }
}

/// The list as it must be on disk.
pub struct Snapshot {
    path: PathBuf,
    file: FileFormat,
}

impl Snapshot {
    /// Write atomically (temporary file, fsync, rename). Concurrent writers each write a
    /// complete list; every one includes its own entry, and the last rename wins with a list
    /// at least as new as the others' (entries are only added, then pruned by expiry).
    pub fn write(&self) -> Result<(), String> {
        let body = serde_json::to_vec_pretty(&self.file).map_err(|e| e.to_string())?;
        let tmp = self
            .path
            .with_extension(format!("json.{}.tmp", rand::random::<u32>()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", self.path.display())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_reload_and_forgets_expired_entries() {
        let dir = std::env::temp_dir().join(format!("jg-revoked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("revoked.json");
        let _ = std::fs::remove_file(&path);
        let now = chrono::Utc::now();
        let mut list = RevocationList::load(&path).unwrap();
        assert!(list.is_empty());
        let r = |id: &str, exp| Revocation {
            grant_id: id.into(),
            reason: "revoked".into(),
            expires_at: exp,
        };
        let (_, snap) = list.insert(&r("grant-old", now - chrono::Duration::hours(2)), now);
        snap.unwrap().write().unwrap();
        let (_, snap) = list.insert(&r("grant-a", now + chrono::Duration::hours(1)), now);
        snap.unwrap().write().unwrap();
        let (_, again_snap) = list.insert(&r("grant-a", now + chrono::Duration::hours(1)), now);
        assert!(
            again_snap.is_none(),
            "a repeated revocation changes nothing"
        );
        let again = RevocationList::load(&path).unwrap();
        assert!(again.is_revoked("grant-a").is_some());
        assert!(
            again.is_revoked("grant-old").is_none(),
            "expired entries are pruned"
        );
        std::fs::write(&path, b"{ not json").unwrap();
        let err = RevocationList::load(&path).err().unwrap();
        assert!(err.contains("not a valid revocation list"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
