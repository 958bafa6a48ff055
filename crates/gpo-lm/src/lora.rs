//! LoRA adapters (Hu et al. 2021) on the model's linear layers, saved and loaded in PEFT's
//! layout (`adapter_config.json` + `adapter_model.safetensors`) so that PEFT and vLLM can use
//! them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::linear::LoraAdapter;
use crate::model::CausalLm;
use crate::save::write_safetensors_atomic;
use crate::{Error, Result};

/// Module names LoRA can target (the last component of the Hugging Face name).
pub const LINEAR_MODULES: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// LoRA hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    /// Rank r of the update `B A`.
    pub rank: usize,
    /// Scaling numerator: the update is multiplied by `alpha / rank`.
    pub alpha: f64,
    /// Dropout on the adapter input during training.
    pub dropout: f32,
    /// Module names to adapt (see [`LINEAR_MODULES`]).
    pub target_modules: Vec<String>,
}

impl Default for LoraConfig {
    /// r = 16, alpha = 32, no dropout, every linear layer.
    fn default() -> Self {
        LoraConfig {
            rank: 16,
            alpha: 32.0,
            dropout: 0.0,
            target_modules: LINEAR_MODULES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Highest LoRA rank accepted (a rank is at most a layer's width to be of use; 4096 covers
/// every Llama-family width gpo targets, and larger numbers are mistakes).
pub const MAX_RANK: usize = 4096;

impl LoraConfig {
    /// Checks rank, dropout and module names.
    pub fn validate(&self) -> Result<()> {
        if self.rank == 0 || self.rank > MAX_RANK {
            return Err(Error::InvalidArgument(format!(
                "lora rank {} must be in 1..={MAX_RANK}",
                self.rank
            )));
        }
        if !self.alpha.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "lora alpha {} must be a finite number",
                self.alpha
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::InvalidArgument(format!(
                "lora dropout {} must be in [0, 1)",
                self.dropout
            )));
        }
        for m in &self.target_modules {
            if !LINEAR_MODULES.contains(&m.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "unknown LoRA target module `{m}`; choose from {LINEAR_MODULES:?}"
                )));
            }
        }
        if self.target_modules.is_empty() {
            return Err(Error::InvalidArgument(
                "lora target_modules is empty".into(),
            ));
        }
        Ok(())
    }
}

/// PEFT's name of a tensor of the adapter on `module` (`model.layers.0.self_attn.q_proj`).
fn peft_name(module: &str, ab: &str) -> String {
    format!("base_model.model.{module}.lora_{ab}.weight")
}

/// Attaches fresh adapters to `model` (A ~ U(-1/sqrt(in), 1/sqrt(in)) as PEFT's Kaiming
/// init, B = 0, drawn from `seed`). The base weights stay frozen; the adapters become the
/// model's trainable variables.
pub fn attach_lora(model: &mut CausalLm, cfg: &LoraConfig, seed: u64) -> Result<()> {
    cfg.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (device, dtype) = (model.device.clone(), model.dtype);
    let mut vars = Vec::new();
    for (i, block) in model.blocks.iter_mut().enumerate() {
        for (name, linear) in block.linears_mut() {
            let short = name.rsplit('.').next().unwrap_or(name);
            if !cfg.target_modules.iter().any(|m| m == short) {
                continue;
            }
            let (out, inp) = (linear.out_dim(), linear.in_dim());
            let bound = 1.0 / (inp as f32).sqrt();
            let a: Vec<f32> = (0..cfg.rank * inp)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            let a =
                Var::from_tensor(&Tensor::from_vec(a, (cfg.rank, inp), &device)?.to_dtype(dtype)?)?;
            let b = Var::from_tensor(&Tensor::zeros((out, cfg.rank), dtype, &device)?)?;
            let module = format!("model.layers.{i}.{name}");
            vars.push((peft_name(&module, "A"), a.clone()));
            vars.push((peft_name(&module, "B"), b.clone()));
            linear.lora = Some(LoraAdapter {
                a,
                b,
                scale: cfg.alpha / cfg.rank as f64,
                dropout: cfg.dropout,
            });
        }
    }
    model.vars = vars;
    Ok(())
}

/// PEFT's `adapter_config.json` (the fields PEFT and vLLM read).
#[derive(Debug, Serialize, Deserialize)]
struct PeftConfig {
    peft_type: String,
    task_type: Option<String>,
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    lora_dropout: f32,
    target_modules: serde_json::Value,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    use_rslora: bool,
    /// Per-module ranks, alphas and DoRA: read only to refuse them, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rank_pattern: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alpha_pattern: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    use_dora: bool,
    #[serde(default)]
    base_model_name_or_path: Option<String>,
    #[serde(default)]
    inference_mode: bool,
}

/// Writes the model's adapters to `dir` in PEFT's layout. `base_model` is recorded as
/// `base_model_name_or_path`.
pub fn save_lora(model: &CausalLm, cfg: &LoraConfig, dir: &Path, base_model: &str) -> Result<()> {
    if model.vars.is_empty()
        || model
            .blocks
            .iter()
            .all(|b| b.linears().iter().all(|(_, l)| l.lora.is_none()))
    {
        return Err(Error::InvalidArgument(
            "the model has no LoRA adapters to save".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tensors = HashMap::new();
    for (name, var) in &model.vars {
        tensors.insert(name.clone(), var.as_tensor().clone());
    }
    write_safetensors_atomic(&tensors, &dir.join("adapter_model.safetensors"))?;
    let peft = PeftConfig {
        peft_type: "LORA".into(),
        task_type: Some("CAUSAL_LM".into()),
        r: cfg.rank,
        lora_alpha: cfg.alpha,
        lora_dropout: cfg.dropout,
        target_modules: serde_json::json!(cfg.target_modules),
        bias: Some("none".into()),
        fan_in_fan_out: false,
        use_rslora: false,
        rank_pattern: None,
        alpha_pattern: None,
        use_dora: false,
        base_model_name_or_path: Some(base_model.into()),
        inference_mode: true,
    };
    let json = serde_json::to_string_pretty(&peft).map_err(|e| Error::Json {
        path: dir.join("adapter_config.json"),
        source: e,
    })?;
    crate::save::write_atomic(&dir.join("adapter_config.json"), json.as_bytes())
}

/// The first PEFT setting of `peft` that would change the adapter's arithmetic away from
/// `x W^T + (alpha / r) x A^T B^T` and that loading does not implement.
fn unsupported_setting(peft: &PeftConfig) -> Option<String> {
    let non_empty = |m: &Option<serde_json::Map<String, serde_json::Value>>| {
        m.as_ref().is_some_and(|m| !m.is_empty())
    };
    let bias = peft.bias.as_deref().unwrap_or("none");
    [
        (peft.use_rslora, "use_rslora".to_string()),
        (peft.fan_in_fan_out, "fan_in_fan_out".to_string()),
        (peft.use_dora, "use_dora".to_string()),
        (non_empty(&peft.rank_pattern), "rank_pattern".to_string()),
        (non_empty(&peft.alpha_pattern), "alpha_pattern".to_string()),
        (bias != "none", format!("bias = \"{bias}\"")),
    ]
    .into_iter()
    .find_map(|(set, name)| set.then_some(name))
}

/// `dir/adapter_config.json`'s path and contents.
fn read_peft_config(dir: &Path) -> Result<(PathBuf, PeftConfig)> {
    let cfg_path = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
    let peft = serde_json::from_str(&text).map_err(|e| Error::Json {
        path: cfg_path.clone(),
        source: e,
    })?;
    Ok((cfg_path, peft))
}

/// The `base_model_name_or_path` an adapter directory records, if any: the model its
/// adapters were trained on (gpo writes the model name as configured, e.g. an asset alias).
pub fn adapter_base_model(dir: &Path) -> Result<Option<String>> {
    let (_, peft) = read_peft_config(dir)?;
    Ok(peft.base_model_name_or_path.filter(|s| !s.is_empty()))
}

/// Loads a PEFT LoRA adapter directory onto `model` (replacing any adapters) and returns its
/// configuration.
pub fn load_lora(model: &mut CausalLm, dir: &Path) -> Result<LoraConfig> {
    let (cfg_path, peft) = read_peft_config(dir)?;
    if peft.peft_type != "LORA" {
        return Err(Error::unsupported(
            &cfg_path,
            format!("peft_type `{}`: only LORA is supported", peft.peft_type),
        ));
    }
    if let Some(setting) = unsupported_setting(&peft) {
        return Err(Error::unsupported(
            &cfg_path,
            format!("{setting} is not supported (one rank and alpha for every module, no bias)"),
        ));
    }
    let targets: Vec<String> = match &peft.target_modules {
        serde_json::Value::String(s) if s == "all-linear" => {
            LINEAR_MODULES.iter().map(|s| s.to_string()).collect()
        }
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        other => {
            return Err(Error::unsupported(
                &cfg_path,
                format!("target_modules {other} is not supported"),
            ))
        }
    };
    let cfg = LoraConfig {
        rank: peft.r,
        alpha: peft.lora_alpha,
        dropout: peft.lora_dropout,
        target_modules: targets,
    };
    cfg.validate()
        .map_err(|e| Error::bad(&cfg_path, e.to_string()))?;
    let st_path = dir.join("adapter_model.safetensors");
    let mut tensors = candle_core::safetensors::load(&st_path, &model.device)
        .map_err(|e| Error::bad(&st_path, format!("cannot read adapter weights ({e})")))?;
    let (dtype, scale) = (model.dtype, cfg.alpha / cfg.rank as f64);
    let mut vars = Vec::new();
    for (i, block) in model.blocks.iter_mut().enumerate() {
        for (name, linear) in block.linears_mut() {
            let module = format!("model.layers.{i}.{name}");
            let (an, bn) = (peft_name(&module, "A"), peft_name(&module, "B"));
            let (Some(a), Some(b)) = (tensors.remove(&an), tensors.remove(&bn)) else {
                linear.lora = None;
                continue;
            };
            if a.dims() != [cfg.rank, linear.in_dim()] || b.dims() != [linear.out_dim(), cfg.rank] {
                return Err(Error::bad(
                    &st_path,
                    format!(
                        "adapter `{module}` has shapes {:?} / {:?}, expected [{}, {}] / [{}, {}]",
                        a.dims(),
                        b.dims(),
                        cfg.rank,
                        linear.in_dim(),
                        linear.out_dim(),
                        cfg.rank
                    ),
                ));
            }
            let a = Var::from_tensor(&a.to_dtype(dtype)?)?;
            let b = Var::from_tensor(&b.to_dtype(dtype)?)?;
            vars.push((an, a.clone()));
            vars.push((bn, b.clone()));
            linear.lora = Some(LoraAdapter {
                a,
                b,
                scale,
                dropout: cfg.dropout,
            });
        }
    }
    if vars.is_empty() {
        return Err(Error::bad(
            &st_path,
            "no adapter tensor matches this model's layers",
        ));
    }
    if let Some(extra) = tensors.keys().next() {
        return Err(Error::bad(
            &st_path,
            format!("tensor `{extra}` matches no layer of this model"),
        ));
    }
    model.vars = vars;
    Ok(cfg)
}

/// Folds the model's adapters into its frozen base weights, `W <- W + (alpha / r) B A`, and
/// removes them: the model then computes what it computed with adapters on, with none left
/// to train (attach fresh ones for the next stage). How a warm start (`gpo sft`) becomes the
/// initial model, and the KL reference, of later training.
pub fn merge_lora(model: &mut CausalLm) -> Result<()> {
    let mut merged = 0;
    for block in &mut model.blocks {
        for (_, linear) in block.linears_mut() {
            if let Some(lora) = linear.lora.take() {
                let delta = lora.b.as_tensor().matmul(lora.a.as_tensor())?;
                let delta = (delta.to_dtype(linear.weight.dtype())? * lora.scale)?;
                // Detached: the merged weight is frozen, with no path back to the old adapters.
                linear.weight = (&linear.weight + delta)?.detach();
                if linear.bf16.is_some() {
                    linear.pack_bf16()?;
                }
                merged += 1;
            }
        }
    }
    if merged == 0 {
        return Err(Error::InvalidArgument(
            "merge_lora: the model has no LoRA adapters to merge".into(),
        ));
    }
    model.vars.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_settings_are_errors() {
        let ok = LoraConfig::default();
        ok.validate().unwrap();
        for (cfg, says) in [
            (
                LoraConfig {
                    rank: 0,
                    ..ok.clone()
                },
                "rank 0",
            ),
            (
                LoraConfig {
                    rank: 1 << 40,
                    ..ok.clone()
                },
                "rank 1099511627776",
            ),
            (
                LoraConfig {
                    alpha: f64::NAN,
                    ..ok.clone()
                },
                "alpha NaN",
            ),
            (
                LoraConfig {
                    dropout: 1.0,
                    ..ok.clone()
                },
                "dropout 1",
            ),
        ] {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn peft_settings_loading_does_not_implement_are_named() {
        let base = r#""peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]"#;
        let parse = |extra: &str| -> PeftConfig {
            serde_json::from_str(&format!("{{{base}{extra}}}")).unwrap()
        };
        // What PEFT writes by default is accepted.
        let plain =
            r#", "rank_pattern": {}, "alpha_pattern": {}, "use_dora": false, "bias": "none""#;
        assert_eq!(unsupported_setting(&parse(plain)), None);
        assert_eq!(unsupported_setting(&parse("")), None);
        for (extra, named) in [
            (r#", "alpha_pattern": {"q_proj": 32}"#, "alpha_pattern"),
            (r#", "rank_pattern": {"q_proj": 4}"#, "rank_pattern"),
            (r#", "use_dora": true"#, "use_dora"),
            (r#", "bias": "lora_only""#, "bias = \"lora_only\""),
            (r#", "use_rslora": true"#, "use_rslora"),
        ] {
            assert_eq!(unsupported_setting(&parse(extra)).as_deref(), Some(named));
        }
    }
}
