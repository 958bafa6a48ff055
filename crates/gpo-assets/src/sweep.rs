//! Removing what a killed fetch left behind: partial member files and download directories.
//!
//! They never look complete (hidden temp names, no marker), but they hold disk space, up to a
//! whole wheel. Only leftovers untouched for [`STALE_AFTER`] go, so the temp files of a fetch
//! running beside this one in another process are spared.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long a temp file or directory must sit unmodified before it counts as abandoned.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Best effort: deletes stale entries named `prefix*` in `dir` (recursively if `deep`).
/// Failures are ignored: a leftover costs space, never correctness.
pub(crate) fn sweep(dir: &Path, prefix: &str, deep: bool, now: SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else {
            continue;
        };
        let path = e.path();
        if e.file_name().to_string_lossy().starts_with(prefix) {
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok());
            if age.is_some_and(|a| a >= STALE_AFTER) {
                if meta.is_dir() {
                    std::fs::remove_dir_all(&path).ok();
                } else {
                    std::fs::remove_file(&path).ok();
                }
            }
        } else if deep && meta.is_dir() {
            sweep(&path, prefix, deep, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::files_under;

    #[test]
    fn only_stale_prefixed_entries_go() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::create_dir_all(d.join(".tmp-dir")).unwrap();
        for f in ["a/b/.tmp-1", "a/.tmp-2", "a/b/keep.txt", ".tmp-dir/w.whl"] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        // Everything was written just now: nothing is stale.
        sweep(d, ".tmp-", true, SystemTime::now());
        assert_eq!(files_under(d).len(), 4);
        // Seen from two hours on, the prefixed files and directory are abandoned.
        let later = SystemTime::now() + 2 * STALE_AFTER;
        sweep(d, ".tmp-", false, later);
        assert_eq!(files_under(d), ["a/.tmp-2", "a/b/.tmp-1", "a/b/keep.txt"]);
        sweep(d, ".tmp-", true, later);
        assert_eq!(files_under(d), ["a/b/keep.txt"]);
    }
}
