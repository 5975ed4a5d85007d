//! The gateway's state directory holds its TLS key, the revocations it was told and the
//! events not yet delivered: owner-only (directory 0700, files 0600).

use std::path::Path;

/// Options that create a file owner-only (0600 on Unix).
pub fn options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut o = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Create `dir` if needed and make it and every file directly in it owner-only.
pub fn state_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_directory_and_its_files_become_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("old.jsonl"), b"x").unwrap();
        std::fs::set_permissions(
            dir.join("old.jsonl"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        state_dir(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("old.jsonl")), 0o600);
        options()
            .write(true)
            .create(true)
            .open(dir.join("new"))
            .unwrap();
        assert_eq!(mode(&dir.join("new")), 0o600);
    }
}
