//! Toxicity: the BiLSTM of the `toxic-comment-classifier` package, run in plain Rust.
//!
//! Architecture (the package's `model.py`): 100 word ids (Keras Tokenizer, zeros in front)
//! -> embedding 20000 x 50 -> bidirectional LSTM, 50 units each way (Keras gate order
//! i, f, c, o; sigmoid gates, tanh cell), sequences concatenated [forward, backward] ->
//! global max-pool over time -> dense 50 ReLU -> dense 6 sigmoid. No masking: padding
//! positions run through the LSTM, as in the original.

pub mod keras_tokenizer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::Result;
use gpo_keras::hdf5::H5File;
use keras_tokenizer::KerasTokenizer;

/// Words per text the model reads; longer texts keep their last 100 known words.
pub const MAX_WORDS: usize = 100;

/// The six outputs, in order.
pub const LABELS: [&str; 6] = [
    "toxic",
    "severe_toxic",
    "obscene",
    "threat",
    "insult",
    "identity_hate",
];

/// Index of `toxic` in [`LABELS`], the output the embedded judge uses.
pub const TOXIC: usize = 0;

/// The weights file and the tokenizer pickle inside the asset's cache directory.
pub fn asset_files(asset_dir: &Path) -> (PathBuf, PathBuf) {
    let d = asset_dir.join("toxic_classifier").join("model");
    (d.join("model.weights.h5"), d.join("tokenizer.pickle"))
}

/// One LSTM direction: kernel `[in, 4u]`, recurrent kernel `[u, 4u]`, bias `[4u]`.
#[derive(Debug, Clone)]
struct Lstm {
    kernel: Vec<f32>,
    recurrent: Vec<f32>,
    bias: Vec<f32>,
    units: usize,
}

/// A dense layer: `y = x @ kernel + bias`, kernel `[in, out]`.
#[derive(Debug, Clone)]
struct Dense {
    kernel: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

/// The toxicity classifier with its tokenizer.
#[derive(Debug)]
pub struct ToxicityModel {
    tokenizer: KerasTokenizer,
    embedding: Vec<f32>,
    embed_dim: usize,
    vocab: usize,
    forward: Lstm,
    backward: Lstm,
    hidden: Dense,
    out: Dense,
    warned_truncation: AtomicBool,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Lstm {
    /// Runs over `xs` (`[steps, in]`, in the given order) and max-pools h over time.
    fn max_pool(&self, xs: &[f32], steps: usize, reverse: bool) -> Vec<f32> {
        let u = self.units;
        let g = 4 * u;
        let input = self.kernel.len() / g;
        let (mut h, mut c) = (vec![0.0f32; u], vec![0.0f32; u]);
        let mut pooled = vec![f32::NEG_INFINITY; u];
        let mut z = vec![0.0f32; g];
        for s in 0..steps {
            let t = if reverse { steps - 1 - s } else { s };
            z.copy_from_slice(&self.bias);
            for (k, &x) in xs[t * input..(t + 1) * input].iter().enumerate() {
                for (zj, w) in z.iter_mut().zip(&self.kernel[k * g..(k + 1) * g]) {
                    *zj += x * w;
                }
            }
            for (k, &hk) in h.iter().enumerate() {
                for (zj, w) in z.iter_mut().zip(&self.recurrent[k * g..(k + 1) * g]) {
                    *zj += hk * w;
                }
            }
            for j in 0..u {
                let i = sigmoid(z[j]);
                let f = sigmoid(z[u + j]);
                let cand = z[2 * u + j].tanh();
                let o = sigmoid(z[3 * u + j]);
                c[j] = f * c[j] + i * cand;
                h[j] = o * c[j].tanh();
                pooled[j] = pooled[j].max(h[j]);
            }
        }
        pooled
    }
}

impl Dense {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut y = self.bias.clone();
        for (k, &xk) in x.iter().enumerate().take(self.inputs) {
            for (yj, w) in y
                .iter_mut()
                .zip(&self.kernel[k * self.outputs..(k + 1) * self.outputs])
            {
                *yj += xk * w;
            }
        }
        y
    }
}

impl ToxicityModel {
    /// Loads the weights (`model.weights.h5`) and tokenizer (`tokenizer.pickle`) from the
    /// `toxic-comment-classifier` asset directory.
    pub fn load(asset_dir: &Path) -> Result<Self> {
        let (weights, pickle) = asset_files(asset_dir);
        let tokenizer = KerasTokenizer::load(&pickle)?;
        Self::from_parts(tokenizer, &H5File::open(&weights)?)
    }

    /// The model from its tokenizer and the datasets of its weights file, whose shapes are
    /// checked against each other.
    pub fn from_parts(tokenizer: KerasTokenizer, h5: &H5File) -> Result<Self> {
        let weights = h5.path();
        let get = |name: &str, dims: usize| -> Result<(Vec<usize>, Vec<f32>)> {
            let (shape, v) = h5.read_f32(name)?;
            if shape.len() != dims {
                return Err(crate::Error::bad(
                    weights,
                    format!("{name}: shape {shape:?}, expected rank {dims}"),
                ));
            }
            Ok((shape, v))
        };
        let (eshape, embedding) = get("layers/embedding/vars/0", 2)?;
        if eshape[0] == 0 {
            // Padding reads row 0, which must exist.
            return Err(crate::Error::bad(
                weights,
                "layers/embedding/vars/0: the embedding has no rows",
            ));
        }
        let lstm = |dir: &str| -> Result<Lstm> {
            let p = format!("layers/bidirectional/{dir}/cell/vars");
            let (ks, kernel) = get(&format!("{p}/0"), 2)?;
            let (rs, recurrent) = get(&format!("{p}/1"), 2)?;
            let (_, bias) = get(&format!("{p}/2"), 1)?;
            let units = rs[0];
            // Four gates of `units` each; a cell of no units would divide by zero.
            let gates = units.checked_mul(4).filter(|&g| g > 0);
            if ks[0] != eshape[1]
                || Some(ks[1]) != gates
                || Some(rs[1]) != gates
                || Some(bias.len()) != gates
            {
                return Err(crate::Error::bad(
                    weights,
                    format!("{p}: inconsistent LSTM shapes {ks:?} {rs:?} {}", bias.len()),
                ));
            }
            Ok(Lstm {
                kernel,
                recurrent,
                bias,
                units,
            })
        };
        let dense = |name: &str| -> Result<Dense> {
            let (ks, kernel) = get(&format!("layers/{name}/vars/0"), 2)?;
            let (_, bias) = get(&format!("layers/{name}/vars/1"), 1)?;
            if bias.len() != ks[1] {
                return Err(crate::Error::bad(
                    weights,
                    format!("{name}: bias/kernel mismatch"),
                ));
            }
            Ok(Dense {
                kernel,
                bias,
                inputs: ks[0],
                outputs: ks[1],
            })
        };
        let forward = lstm("forward_layer")?;
        let backward = lstm("backward_layer")?;
        let hidden = dense("dense")?;
        let out = dense("dense_1")?;
        if hidden.inputs != forward.units + backward.units
            || out.inputs != hidden.outputs
            || out.outputs != LABELS.len()
        {
            return Err(crate::Error::bad(
                weights,
                "dense layer shapes do not chain",
            ));
        }
        Ok(ToxicityModel {
            tokenizer,
            vocab: eshape[0],
            embed_dim: eshape[1],
            embedding,
            forward,
            backward,
            hidden,
            out,
            warned_truncation: AtomicBool::new(false),
        })
    }

    /// The Keras tokenizer.
    pub fn tokenizer(&self) -> &KerasTokenizer {
        &self.tokenizer
    }

    /// The six scores of one id sequence (`MAX_WORDS` ids, padded).
    pub fn predict_ids(&self, ids: &[u32]) -> [f32; 6] {
        let d = self.embed_dim;
        let mut xs = Vec::with_capacity(ids.len() * d);
        for &id in ids {
            // Ids at or past the embedding's rows cannot come from the tokenizer (num_words
            // caps them); treat one as padding rather than read out of bounds.
            let row = if (id as usize) < self.vocab {
                id as usize
            } else {
                0
            };
            xs.extend_from_slice(&self.embedding[row * d..(row + 1) * d]);
        }
        let mut pooled = self.forward.max_pool(&xs, ids.len(), false);
        pooled.extend(self.backward.max_pool(&xs, ids.len(), true));
        let h: Vec<f32> = self
            .hidden
            .apply(&pooled)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        let y = self.out.apply(&h);
        let mut r = [0.0; 6];
        for (o, v) in r.iter_mut().zip(y) {
            *o = sigmoid(v);
        }
        r
    }

    /// The six scores ([`LABELS`] order) of each text. Texts longer than [`MAX_WORDS`]
    /// known words keep their last ones, as the model was trained (said once on stderr).
    pub fn predict(&self, texts: &[&str]) -> Vec<[f32; 6]> {
        let encoded: Vec<(Vec<u32>, bool)> = texts
            .iter()
            .map(|t| self.tokenizer.padded(t, MAX_WORDS))
            .collect();
        if encoded.iter().any(|(_, cut)| *cut)
            && !self.warned_truncation.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "toxicity: a response has more than {MAX_WORDS} known words; the model reads \
                 its last {MAX_WORDS} (said once)"
            );
        }
        encoded
            .par_iter()
            .map(|(ids, _)| self.predict_ids(ids))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error of building the toxicity model from the HDF5 file `bytes`.
    fn model_error(bytes: Vec<u8>) -> String {
        let f = H5File::from_bytes(Path::new("model.weights.h5"), bytes).unwrap();
        let tokenizer = KerasTokenizer::empty();
        ToxicityModel::from_parts(tokenizer, &f)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_dataset_shape_whose_size_overflows_is_an_error() {
        // Found by `fuzz/fuzz_targets/hdf5.rs`: the product of a dataspace's dimensions
        // overflowed (a panic in debug builds, a wrong size in release ones).
        let bytes = include_bytes!("../../tests/fixtures/fuzz/hdf5-shape-overflow").to_vec();
        let err = model_error(bytes);
        assert!(
            err.starts_with("model.weights.h5: HDF5: layers/")
                && err.contains("bytes of data for shape"),
            "{err}"
        );
    }

    #[test]
    fn a_name_offset_that_overflows_is_an_error() {
        // Found by `fuzz/fuzz_targets/hdf5.rs`: a symbol's name offset added to the local
        // heap's address overflowed u64.
        let bytes = include_bytes!("../../tests/fixtures/fuzz/hdf5-name-offset-overflow").to_vec();
        let err = model_error(bytes);
        assert!(
            err.starts_with("model.weights.h5: HDF5: layers/") && !err.contains('\n'),
            "{err}"
        );
    }

    #[test]
    fn lstm_shapes_whose_gate_count_overflows_are_an_error() {
        // Found by `fuzz/fuzz_targets/hdf5.rs`: 4 x an LSTM's units (a dimension read from
        // the file) overflowed; a cell of 0 units divided by zero when predicting.
        let bytes = include_bytes!("../../tests/fixtures/fuzz/hdf5-lstm-units-overflow").to_vec();
        let err = model_error(bytes);
        assert!(
            err.starts_with("model.weights.h5: layers/bidirectional/")
                && err.contains("inconsistent LSTM shapes"),
            "{err}"
        );
    }
}
