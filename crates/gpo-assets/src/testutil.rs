//! Helpers for this crate's tests: small wheels and stand-ins for `python -m pip`.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Writes a zip at `dir/name` holding `files` and returns its path and sha256.
pub(crate) fn make_wheel(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> (PathBuf, String) {
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for (n, bytes) in files {
        zip.start_file(*n, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    let sha = crate::digest::sha256_file(&path).unwrap();
    (path, sha)
}

/// Lower-case hex sha256 of `bytes`.
pub(crate) fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An executable `dir/fake-python` running `script` under `/bin/sh`; returns its path.
pub(crate) fn fake_python(dir: &Path, script: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("fake-python");
    std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

/// A fake python whose `pip download ... --dest DIR NAME==VERSION` copies every wheel of
/// `house` into DIR, as pip would save the one it downloads.
pub(crate) fn copying_python(dir: &Path, house: &Path) -> String {
    fake_python(
        dir,
        &format!(
            r#"while [ "$1" != "--dest" ]; do shift; done; cp "{}"/*.whl "$2"/"#,
            house.display()
        ),
    )
}

/// Every file under `dir`, relative and sorted (temp files included: tests assert none).
pub(crate) fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
