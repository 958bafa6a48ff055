//! Durable writes: temp files that are renamed into place, and the directory sync that
//! makes such renames survive a crash.

use std::path::Path;

use crate::{Error, Result};

/// A temp file builder whose files get the usual `0o666` less the umask (tempfile's
/// default, `0o600`, would hide a shared cache from its other users).
pub(crate) fn temp_file_builder(prefix: &str) -> tempfile::Builder<'_, '_> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    b
}

/// Makes the renames inside `dir` durable before anything that depends on them.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
