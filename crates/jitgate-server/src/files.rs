//! Owner-only files and directories for the secrets the server keeps in its data directory
//! (TLS keys, CA keys): directory 0700, files 0600, created new so nothing is overwritten.

use std::path::Path;

/// Create `dir` (and its parents) and make it owner-only.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(())
}

/// Write a new owner-only file; fails if it exists.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Replace `path` with `bytes`, owner-only, atomically (a new file renamed over the old):
/// a reader sees the old content or the new, never a mix. Parents are made owner-only.
pub fn replace_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let at = |e: std::io::Error| format!("{}: {e}", path.display());
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        private_dir(parent).map_err(at)?;
    }
    let tmp = path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, bytes).map_err(at)?;
    std::fs::rename(&tmp, path).map_err(at)
}

/// Refuse a secret file that group or others can read: `why` says what it protects.
pub fn check_private(path: &Path, why: &str) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is readable by others (mode {:o}); {why}: chmod 600 it",
                path.display(),
                mode & 0o777
            ));
        }
    }
    let _ = why;
    Ok(())
}
