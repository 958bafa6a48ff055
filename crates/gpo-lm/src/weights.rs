//! A checkpoint's tensors in Hugging Face naming, converted to one dtype on one device.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// Named tensors of a checkpoint, using Hugging Face names (`model.layers.0.self_attn.q_proj.weight`).
#[derive(Debug, Clone)]
pub struct WeightMap {
    origin: PathBuf,
    tensors: HashMap<String, Tensor>,
}

impl WeightMap {
    /// Wraps tensors read from `origin` (a file or directory, for error messages).
    pub fn new(origin: impl Into<PathBuf>, tensors: HashMap<String, Tensor>) -> Self {
        WeightMap {
            origin: origin.into(),
            tensors,
        }
    }

    /// Where the tensors came from.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// Removes and returns a tensor, checking its shape.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self
            .tensors
            .remove(name)
            .ok_or_else(|| Error::MissingTensor {
                path: self.origin.clone(),
                name: name.into(),
            })?;
        if t.dims() != shape {
            return Err(Error::bad(
                &self.origin,
                format!(
                    "tensor `{name}` has shape {:?}, the config implies {shape:?}",
                    t.dims()
                ),
            ));
        }
        Ok(t)
    }

    /// Returns a tensor if present (for optional weights such as `lm_head.weight`).
    pub fn take_optional(&mut self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        if self.tensors.contains_key(name) {
            self.take(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Names of tensors not consumed yet.
    pub fn remaining(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Inserts a tensor.
    pub fn insert(&mut self, name: impl Into<String>, t: Tensor) {
        self.tensors.insert(name.into(), t);
    }

    /// Converts every tensor to `dtype` on `device`.
    pub fn to(self, dtype: DType, device: &Device) -> Result<Self> {
        let mut tensors = HashMap::with_capacity(self.tensors.len());
        for (name, t) in self.tensors {
            tensors.insert(name, t.to_dtype(dtype)?.to_device(device)?);
        }
        Ok(WeightMap {
            origin: self.origin,
            tensors,
        })
    }
}
