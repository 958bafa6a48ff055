//! Loading Hugging Face checkpoint directories: `config.json` + one or more `*.safetensors`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use crate::config::{HfConfig, LmConfig};
use crate::weights::WeightMap;
use crate::{Error, Result};

/// Reads `dir/config.json` and every weight shard of the directory, converting to `dtype`.
pub fn read_hf_dir(dir: &Path, dtype: DType) -> Result<(LmConfig, WeightMap)> {
    let config = HfConfig::read(&dir.join("config.json"))?;
    let mut tensors = HashMap::new();
    for shard in shard_files(dir)? {
        let loaded = candle_core::safetensors::load(&shard, &Device::Cpu).map_err(|e| {
            Error::bad(
                &shard,
                format!("cannot read safetensors ({e}); is the file truncated or corrupt?"),
            )
        })?;
        for (name, t) in loaded {
            match t.dtype() {
                DType::F32 | DType::F16 | DType::BF16 => {}
                other => {
                    return Err(Error::unsupported(
                        &shard,
                        format!("tensor `{name}` has dtype {other:?}; supported: f32, f16, bf16"),
                    ))
                }
            }
            tensors.insert(name, t.to_dtype(dtype)?);
        }
    }
    Ok((config, WeightMap::new(dir, tensors)))
}

/// The shards named by `model.safetensors.index.json`, or else every `*.safetensors` file
/// except LoRA adapters.
fn shard_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Json {
            path: index.clone(),
            source: e,
        })?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::bad(&index, "missing object `weight_map`"))?;
        let files: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".safetensors") && !name.starts_with("adapter_") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::bad(
            dir,
            "no *.safetensors weights in this directory",
        ));
    }
    Ok(files)
}
