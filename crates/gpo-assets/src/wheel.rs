//! Obtaining a pinned wheel: from a local wheelhouse, or with `python -m pip download`.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::catalog::Package;
use crate::{Error, Result};

/// How many of pip's last stderr lines an error quotes.
const TAIL_LINES: usize = 12;

/// The wheel in `house`, if it is there.
pub(crate) fn from_wheelhouse(house: &Path, pkg: &Package<'_>) -> Option<PathBuf> {
    let w = house.join(pkg.wheel);
    w.is_file().then_some(w)
}

/// Runs `python -m pip download --no-deps` for `pkg` into `dest` and returns the wheel.
///
/// pip's stdout (its progress) goes to our stderr, never our stdout, which carries JSON;
/// its stderr is echoed to ours as it comes and its tail kept for the error.
pub(crate) fn pip_download(python: &str, pkg: &Package<'_>, dest: &Path) -> Result<PathBuf> {
    let requirement = pkg.requirement();
    eprintln!("gpo: fetching {requirement} with {python} -m pip download ...");
    let mut child = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--no-input",
            "--dest",
        ])
        .arg(dest)
        .arg(&requirement)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::NoPython {
            python: python.into(),
            source,
        })?;
    let mut tail = VecDeque::with_capacity(TAIL_LINES + 1);
    if let Some(stderr) = child.stderr.take() {
        let mut reader = std::io::BufReader::new(stderr);
        let mut buf = Vec::new();
        while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
            let line = String::from_utf8_lossy(&buf).trim_end().to_string();
            eprintln!("{line}");
            tail.push_back(line);
            if tail.len() > TAIL_LINES {
                tail.pop_front();
            }
            buf.clear();
        }
    }
    let status = child.wait().map_err(|e| Error::io(python, e))?;
    let tail: Vec<String> = tail.into();
    if !status.success() {
        if tail.iter().any(|l| l.contains("No module named pip")) {
            return Err(Error::NoPip {
                python: python.into(),
            });
        }
        return Err(Error::Pip {
            python: python.into(),
            requirement,
            code: status.code(),
            stderr: tail.join("\n"),
        });
    }
    let wheel = dest.join(pkg.wheel);
    if !wheel.is_file() {
        let mut found: Vec<String> = std::fs::read_dir(dest)
            .map_err(|e| Error::io(dest, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        found.sort();
        return Err(Error::WheelNotSaved {
            requirement,
            wheel: pkg.wheel.into(),
            found,
        });
    }
    Ok(wheel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fake_python;

    const PKG: Package<'static> = Package {
        name: "p",
        version: "1.0",
        wheel: "p-1.0-py3-none-any.whl",
        sha256: "00",
    };

    #[test]
    fn runs_pip_download_with_the_pinned_requirement() {
        let tmp = tempfile::tempdir().unwrap();
        let args = tmp.path().join("args");
        let py = fake_python(
            tmp.path(),
            &format!(
                r#"echo "$@" > {args}; while [ "$1" != "--dest" ]; do shift; done; echo wheel > "$2/p-1.0-py3-none-any.whl""#,
                args = args.display()
            ),
        );
        let dest = tmp.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let wheel = pip_download(&py, &PKG, &dest).unwrap();
        assert_eq!(wheel, dest.join(PKG.wheel));
        assert_eq!(
            std::fs::read_to_string(&args).unwrap().trim(),
            format!(
                "-m pip download --no-deps --only-binary=:all: --disable-pip-version-check \
                 --no-input --dest {} p==1.0",
                dest.display()
            )
        );
    }

    #[test]
    fn pip_failure_quotes_the_tail_of_its_stderr() {
        let tmp = tempfile::tempdir().unwrap();
        let py = fake_python(
            tmp.path(),
            "for i in $(seq 1 30); do echo \"WARNING: Retrying $i\" >&2; done; \
             echo 'ERROR: No matching distribution found for p==1.0' >&2; exit 1",
        );
        let err = pip_download(&py, &PKG, tmp.path()).unwrap_err();
        let Error::Pip { code, stderr, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(*code, Some(1));
        assert_eq!(stderr.lines().count(), TAIL_LINES);
        assert!(!stderr.contains("Retrying 19\n") && stderr.contains("Retrying 30"));
        let msg = err.to_string();
        assert!(
            msg.contains("pip download p==1.0")
                && msg.contains("registry")
                && msg.ends_with("ERROR: No matching distribution found for p==1.0"),
            "{msg}"
        );
    }

    #[test]
    fn missing_python_or_pip_say_how_to_fix_it() {
        let tmp = tempfile::tempdir().unwrap();
        let msg = pip_download("/nonexistent/python3", &PKG, tmp.path())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`/nonexistent/python3`")
                && msg.contains("install python3 with pip")
                && msg.contains("GPO_PYTHON"),
            "{msg}"
        );
        let py = fake_python(
            tmp.path(),
            "echo '/usr/bin/python3: No module named pip' >&2; exit 1",
        );
        let err = pip_download(&py, &PKG, tmp.path()).unwrap_err();
        assert!(matches!(err, Error::NoPip { .. }), "{err}");
        assert!(err.to_string().contains("GPO_PYTHON"), "{err}");
    }

    #[test]
    fn pip_saving_another_file_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let py = fake_python(
            tmp.path(),
            r#"while [ "$1" != "--dest" ]; do shift; done; echo x > "$2/p-1.0.tar.gz""#,
        );
        let dest = tmp.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let msg = pip_download(&py, &PKG, &dest).unwrap_err().to_string();
        assert!(
            msg.contains("[\"p-1.0.tar.gz\"]") && msg.contains("p-1.0-py3-none-any.whl"),
            "{msg}"
        );
    }

    #[test]
    fn the_wheelhouse_is_used_only_if_it_has_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(from_wheelhouse(tmp.path(), &PKG), None);
        std::fs::write(tmp.path().join(PKG.wheel), b"w").unwrap();
        assert_eq!(
            from_wheelhouse(tmp.path(), &PKG),
            Some(tmp.path().join(PKG.wheel))
        );
    }
}
