//! The completion marker: written last, atomically, after every member is in place.
//!
//! It records the wheel's sha256 and each extracted file with its size, so a cache hit is
//! checked without hashing large files again: a missing or truncated file, or a marker from
//! another pin, means "not cached" and the fetch is redone.

use std::io::Write;
use std::path::Path;

use crate::catalog::Pinned;
use crate::durable::{sync_dir, temp_file_builder};
use crate::{Error, Result};

/// File name of the marker inside a package's cache directory.
pub(crate) const MARKER: &str = ".gpo-complete";
const HEADER: &str = "gpo-assets complete v1";

/// A file extracted into the cache: its path relative to the package directory and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extracted {
    pub(crate) path: String,
    pub(crate) len: u64,
}

/// Writes the marker for `files` through a temp file + rename.
pub(crate) fn write(dir: &Path, wheel_sha256: &str, files: &[Extracted]) -> Result<()> {
    let mut text = format!("{HEADER}\nwheel {wheel_sha256}\n");
    for f in files {
        text.push_str(&format!("{} {}\n", f.len, f.path));
    }
    let mut tmp = temp_file_builder(".gpo-partial-marker-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io(tmp.path(), e))?;
    let path = dir.join(MARKER);
    tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
    sync_dir(dir)
}

/// Removes the marker, so a fetch that is redone is never taken for complete half-way.
pub(crate) fn remove(dir: &Path) -> Result<()> {
    let path = dir.join(MARKER);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
        _ => Ok(()),
    }
}

/// Whether `dir` holds a complete extraction of `pinned`.
pub(crate) fn is_complete(dir: &Path, pinned: &Pinned<'_>) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(MARKER)) else {
        return false;
    };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER)
        || lines.next() != Some(&format!("wheel {}", pinned.package.sha256))
    {
        return false;
    }
    let mut files = Vec::new();
    for line in lines {
        let Some((len, path)) = line.split_once(' ') else {
            return false;
        };
        let Ok(len) = len.parse::<u64>() else {
            return false;
        };
        let on_disk = std::fs::metadata(dir.join(path));
        if !on_disk.is_ok_and(|m| m.is_file() && m.len() == len) {
            return false;
        }
        files.push(path);
    }
    pinned.members.iter().all(|m| {
        if m.path.ends_with('/') {
            files.iter().any(|f| f.starts_with(m.path))
        } else {
            files.contains(&m.path)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Member, Package};

    const MEMBERS: [Member<'static>; 2] = [
        Member {
            path: "pkg/a.txt",
            sha256: None,
        },
        Member {
            path: "pkg/data/",
            sha256: None,
        },
    ];

    fn pinned(sha: &str) -> Pinned<'_> {
        Pinned {
            package: Package {
                name: "pkg",
                version: "1.0",
                wheel: "pkg-1.0-py3-none-any.whl",
                sha256: sha,
            },
            members: &MEMBERS,
            entry: "",
        }
    }

    fn populate(dir: &Path) -> Vec<Extracted> {
        std::fs::create_dir_all(dir.join("pkg/data")).unwrap();
        std::fs::write(dir.join("pkg/a.txt"), b"aaa").unwrap();
        std::fs::write(dir.join("pkg/data/b.json"), b"[]").unwrap();
        vec![
            Extracted {
                path: "pkg/a.txt".into(),
                len: 3,
            },
            Extracted {
                path: "pkg/data/b.json".into(),
                len: 2,
            },
        ]
    }

    #[test]
    fn complete_only_with_the_marker_and_every_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let files = populate(dir.path());
        assert!(!is_complete(dir.path(), &pinned("ab")), "no marker yet");
        write(dir.path(), "ab", &files).unwrap();
        assert!(is_complete(dir.path(), &pinned("ab")));
        assert!(!is_complete(dir.path(), &pinned("cd")), "another pin");
        // A truncated file is caught by its size.
        std::fs::write(dir.path().join("pkg/a.txt"), b"a").unwrap();
        assert!(!is_complete(dir.path(), &pinned("ab")));
        std::fs::write(dir.path().join("pkg/a.txt"), b"aaa").unwrap();
        std::fs::remove_file(dir.path().join("pkg/data/b.json")).unwrap();
        assert!(!is_complete(dir.path(), &pinned("ab")));
        remove(dir.path()).unwrap();
        remove(dir.path()).unwrap();
        assert!(!dir.path().join(MARKER).exists());
        // No temp file is left beside the marker.
        write(dir.path(), "ab", &files).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_marker_that_misses_a_member_is_not_complete() {
        let dir = tempfile::tempdir().unwrap();
        let files = populate(dir.path());
        write(dir.path(), "ab", &files[..1]).unwrap();
        assert!(!is_complete(dir.path(), &pinned("ab")));
        std::fs::write(dir.path().join(MARKER), "garbage").unwrap();
        assert!(!is_complete(dir.path(), &pinned("ab")));
    }
}
