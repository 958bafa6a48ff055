//! One entry point that loads a model and its tokenizer from a GGUF file or a Hugging Face
//! directory.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use gpo_tokenizer::Tokenizer;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr_free::normal;

use crate::config::LmConfig;
use crate::gguf::read_gguf;
use crate::hf::read_hf_dir;
use crate::model::{CausalLm, Trainable};
use crate::weights::WeightMap;
use crate::{Error, Result};

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Compute dtype. bf16 on the CPU multiplies the frozen weights in bf16 and keeps the
    /// rest f32 (see [`CausalLm::use_bf16_products`]).
    pub dtype: DType,
    /// Where the weights live.
    pub device: Device,
    /// Which weights are trainable.
    pub trainable: Trainable,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: DType::F32,
            device: Device::Cpu,
            trainable: Trainable::Frozen,
        }
    }
}

/// A loaded model with its tokenizer.
pub struct LoadedModel {
    /// The network.
    pub model: CausalLm,
    /// Its tokenizer (with chat template when the checkpoint has one).
    pub tokenizer: Tokenizer,
}

/// Loads `path`: a `.gguf` file or a Hugging Face directory (`config.json`, `*.safetensors`,
/// `tokenizer.json`).
pub fn load_model(path: &Path, opts: &LoadOptions) -> Result<LoadedModel> {
    if path.is_dir() {
        if !path.join("config.json").exists() {
            return Err(Error::bad(path, "directory has no config.json; expected a Hugging Face model directory or a .gguf file"));
        }
        let (cfg, weights) = read_hf_dir(path, opts.weights_dtype())?;
        let tokenizer = Tokenizer::from_file(&path.join("tokenizer.json"))?;
        let model = opts.build(cfg, weights)?;
        return Ok(LoadedModel { model, tokenizer });
    }
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    let ckpt = read_gguf(path)?;
    let tokenizer = Tokenizer::from_gguf_spec(ckpt.tokenizer)?;
    let model = opts.build(ckpt.config, ckpt.weights)?;
    Ok(LoadedModel { model, tokenizer })
}

impl LoadOptions {
    /// bf16 on the CPU is PyTorch autocast's split: f32 weights and activations, frozen
    /// linear weights multiplied in bf16 ([`CausalLm::use_bf16_products`]). Elsewhere the
    /// model computes in `dtype`.
    fn cpu_bf16(&self) -> bool {
        self.device.is_cpu() && self.dtype == DType::BF16
    }

    /// The dtype the weights are read in.
    fn weights_dtype(&self) -> DType {
        if self.cpu_bf16() {
            DType::F32
        } else {
            self.dtype
        }
    }

    fn build(&self, cfg: LmConfig, weights: WeightMap) -> Result<CausalLm> {
        let dtype = self.weights_dtype();
        let mut model = CausalLm::new(cfg, weights, self.trainable.clone(), dtype, &self.device)?;
        if self.cpu_bf16() && !model.use_bf16_products()? {
            tracing::warn!(
                "this CPU has no AVX512-BF16: the bf16 model computes in f32 (the same \
                 results up to rounding)"
            );
        }
        Ok(model)
    }
}

impl CausalLm {
    /// A randomly initialised model (weights ~ N(0, 0.02), norms 1), for tests and toy runs.
    pub fn random(cfg: LmConfig, seed: u64, trainable: Trainable, device: &Device) -> Result<Self> {
        cfg.validate(Path::new("<random>"))?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut map = HashMap::new();
        let mut add = |name: String, shape: &[usize], ones: bool| -> Result<()> {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = if ones {
                vec![1.0; n]
            } else {
                (0..n).map(|_| 0.02 * normal(&mut rng)).collect()
            };
            map.insert(name, Tensor::from_vec(data, shape, &Device::Cpu)?);
            Ok(())
        };
        let (h, hd, ff) = (cfg.hidden_size, cfg.head_dim, cfg.intermediate_size);
        let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        add(
            "model.embed_tokens.weight".into(),
            &[cfg.vocab_size, h],
            false,
        )?;
        add("model.norm.weight".into(), &[h], true)?;
        if !cfg.tie_word_embeddings {
            add("lm_head.weight".into(), &[cfg.vocab_size, h], false)?;
        }
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            add(format!("{p}.input_layernorm.weight"), &[h], true)?;
            add(format!("{p}.post_attention_layernorm.weight"), &[h], true)?;
            for (n, o, inp) in [
                ("self_attn.q_proj", nh * hd, h),
                ("self_attn.k_proj", nkv * hd, h),
                ("self_attn.v_proj", nkv * hd, h),
            ] {
                add(format!("{p}.{n}.weight"), &[o, inp], false)?;
                if cfg.architecture.qkv_bias() {
                    add(format!("{p}.{n}.bias"), &[o], false)?;
                }
            }
            add(format!("{p}.self_attn.o_proj.weight"), &[h, nh * hd], false)?;
            add(format!("{p}.mlp.gate_proj.weight"), &[ff, h], false)?;
            add(format!("{p}.mlp.up_proj.weight"), &[ff, h], false)?;
            add(format!("{p}.mlp.down_proj.weight"), &[h, ff], false)?;
        }
        CausalLm::new(
            cfg,
            WeightMap::new("<random>", map),
            trainable,
            DType::F32,
            device,
        )
    }
}

/// A dependency-free standard normal draw (Box-Muller), so initialisation is reproducible
/// across `rand` versions.
mod rand_distr_free {
    use rand::Rng;

    pub fn normal(rng: &mut impl Rng) -> f32 {
        let u1: f64 = rng.random::<f64>().max(1e-300);
        let u2: f64 = rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}
