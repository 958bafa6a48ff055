//! Turning a `--model` argument into a GGUF file or a Hugging Face directory.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cache::AssetCache;
use crate::catalog::{Asset, AssetKind};
use crate::{Error, Result};

/// Where a model's weights are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A GGUF file.
    Gguf(PathBuf),
    /// A Hugging Face directory with `config.json`.
    HfDir(PathBuf),
}

impl ModelSource {
    /// The file or directory.
    pub fn path(&self) -> &Path {
        match self {
            ModelSource::Gguf(p) | ModelSource::HfDir(p) => p,
        }
    }
}

/// Resolves `spec`: an existing `.gguf` file (by extension or by its `GGUF` magic), a
/// directory holding `config.json`, or a model alias (fetched into `cache` on first use).
/// An existing path wins over an alias of the same name.
pub fn resolve_model(spec: &str, cache: &AssetCache) -> Result<ModelSource> {
    let path = Path::new(spec);
    if path.is_file() {
        return if is_gguf(path) {
            Ok(ModelSource::Gguf(path.into()))
        } else {
            Err(Error::NotAModelFile {
                file: path.into(),
                aliases: Asset::model_aliases(),
            })
        };
    }
    if path.is_dir() {
        return if path.join("config.json").is_file() {
            Ok(ModelSource::HfDir(path.into()))
        } else {
            Err(Error::NotAModelDir {
                dir: path.into(),
                aliases: Asset::model_aliases(),
            })
        };
    }
    let Some(asset) = Asset::from_alias(spec) else {
        return Err(Error::ModelNotFound {
            spec: spec.into(),
            aliases: Asset::model_aliases(),
        });
    };
    match asset.kind() {
        AssetKind::GgufModel => Ok(ModelSource::Gguf(cache.fetch(asset)?)),
        AssetKind::HfModel => Ok(ModelSource::HfDir(cache.fetch(asset)?)),
        AssetKind::Data => Err(Error::NotAModel {
            alias: asset.alias().into(),
            models: Asset::model_aliases(),
        }),
    }
}

/// A `.gguf` extension, or a file that starts with the GGUF magic. A truncated or corrupt
/// `.gguf` file still counts, so that the loader reports what is wrong with it.
fn is_gguf(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    {
        return true;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"GGUF")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marker::{self, Extracted};

    fn setup() -> (tempfile::TempDir, AssetCache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = AssetCache::new(dir.path().join("cache")).with_python("/nonexistent/python3");
        (dir, cache)
    }

    #[test]
    fn a_gguf_file_by_extension_or_magic() {
        let (dir, cache) = setup();
        let a = dir.path().join("m.GGUF");
        std::fs::write(&a, b"truncated").unwrap();
        assert_eq!(
            resolve_model(a.to_str().unwrap(), &cache).unwrap(),
            ModelSource::Gguf(a)
        );
        let b = dir.path().join("model.bin");
        std::fs::write(&b, b"GGUF\x03\0\0\0").unwrap();
        let got = resolve_model(b.to_str().unwrap(), &cache).unwrap();
        assert_eq!(got.path(), b);
        let c = dir.path().join("model.safetensors");
        std::fs::write(&c, b"{}").unwrap();
        let err = resolve_model(c.to_str().unwrap(), &cache).unwrap_err();
        assert!(matches!(err, Error::NotAModelFile { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("model.safetensors: not a .gguf file"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_needs_config_json() {
        let (dir, cache) = setup();
        let spec = dir.path().to_str().unwrap();
        let msg = resolve_model(spec, &cache).unwrap_err().to_string();
        assert!(msg.starts_with(&format!("{spec}: no config.json")), "{msg}");
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        assert_eq!(
            resolve_model(spec, &cache).unwrap(),
            ModelSource::HfDir(dir.path().into())
        );
    }

    #[test]
    fn a_missing_path_names_it_and_the_aliases() {
        let (_dir, cache) = setup();
        let msg = resolve_model("no/such/model.gguf", &cache)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`no/such/model.gguf`")
                && msg.contains("smollm2-135m-instruct, all-minilm-l6-v2")
                && !msg.contains("garak"),
            "{msg}"
        );
    }

    #[test]
    fn a_cached_alias_resolves_without_fetching() {
        let (_dir, cache) = setup();
        // Lay out the cache as a completed fetch would (a stand-in file, the real pin).
        let asset = Asset::Smollm2_135mInstruct;
        let pkg_dir = cache.package_dir(&asset.package());
        let file = pkg_dir.join(asset.entry());
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"GGUF").unwrap();
        let files = [Extracted {
            path: asset.entry().into(),
            len: 4,
        }];
        marker::write(&pkg_dir, asset.package().sha256, &files).unwrap();
        assert_eq!(
            resolve_model("SmolLM2-135M-Instruct", &cache).unwrap(),
            ModelSource::Gguf(file)
        );
    }

    #[test]
    fn an_uncached_alias_is_fetched_and_data_is_refused() {
        let (_dir, cache) = setup();
        // The fetch is attempted (and fails: this cache's python does not exist).
        let err = resolve_model("all-minilm-l6-v2", &cache).unwrap_err();
        assert!(matches!(err, Error::NoPython { .. }), "{err}");
        let err = resolve_model("garak", &cache).unwrap_err();
        assert!(matches!(err, Error::NotAModel { .. }), "{err}");
        assert!(err.to_string().contains("model aliases: smollm2"), "{err}");
    }
}
