//! Checkpoints of a trainable player, so that training resumes exactly.
//!
//! A checkpoint is a directory:
//!
//! | file | content |
//! |---|---|
//! | `policy/adapter_config.json`, `policy/adapter_model.safetensors` | LoRA adapters in PEFT's layout |
//! | `policy/config.json`, `policy/model.safetensors` | or the full weights as a Hugging Face model |
//! | `value_head.safetensors` | the critic's value head (PPO) |
//! | `critic/adapter_config.json`, `critic/adapter_model.safetensors` | a LoRA critic's adapters, in PEFT's layout |
//! | `optimizer.safetensors`, `critic_optimizer.safetensors` | AdamW moments and step counts |
//! | `trainer.json` | iteration, the RNG stream's position, the configuration used |
//!
//! It is written under `DIR.partial` and renamed into place, so a crash leaves either the
//! previous checkpoint or the new one, never a mixture.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::RlConfig;
use crate::critic::Critic;
use crate::policy::Policy;
use crate::trainer::Trainer;
use crate::{Error, Result};

/// The state of the RNG stream: seed, stream and position (ChaCha8 is seekable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RngState {
    /// The 32-byte seed in lower-case hex.
    seed: String,
    stream: u64,
    /// The word position (a u128) in decimal.
    word_pos: String,
}

impl RngState {
    fn of(rng: &ChaCha8Rng) -> Self {
        RngState {
            seed: rng.get_seed().iter().map(|b| format!("{b:02x}")).collect(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    fn restore(&self, path: &Path) -> Result<ChaCha8Rng> {
        let bad = |what: &str| Error::Checkpoint {
            path: path.to_path_buf(),
            msg: format!("rng.{what} is malformed"),
        };
        if self.seed.len() != 64 || !self.seed.is_ascii() {
            return Err(bad("seed"));
        }
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = u8::from_str_radix(&self.seed[2 * i..2 * i + 2], 16).map_err(|_| bad("seed"))?;
        }
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos.parse().map_err(|_| bad("word_pos"))?);
        Ok(rng)
    }
}

/// `trainer.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainerState {
    format: String,
    iteration: u64,
    rng: RngState,
    /// For the record; resuming uses the configuration given to the new [`Trainer`].
    config: RlConfig,
}

const FORMAT: &str = "gpo-rl/checkpoint-v1";
const VALUE_HEAD: &str = "value_head.safetensors";
const CRITIC_DIR: &str = "critic";

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_vars(vars: &[(String, Var)], path: &Path) -> Result<()> {
    let tensors: HashMap<String, Tensor> = vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    Ok(gpo_lm::write_safetensors_atomic(&tensors, path)?)
}

/// Sets every variable from the tensor of the same name in `path`.
fn read_vars(vars: &[(String, Var)], path: &Path, device: &Device) -> Result<()> {
    let tensors = candle_core::safetensors::load(path, device).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        msg: format!("cannot read safetensors: {e}"),
    })?;
    for (name, var) in vars {
        let t = tensors.get(name).ok_or_else(|| Error::Checkpoint {
            path: path.to_path_buf(),
            msg: format!("has no tensor `{name}`; was it written for a different model or LoRA configuration?"),
        })?;
        if t.dims() != var.dims() {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                msg: format!(
                    "`{name}` has shape {:?}, the model expects {:?}",
                    t.dims(),
                    var.dims()
                ),
            });
        }
        var.set(&t.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

impl Trainer {
    /// Where a checkpoint in `dir` keeps the policy: a PEFT adapter directory (LoRA) or
    /// Hugging Face weights (full fine-tuning), loadable on their own.
    pub fn policy_dir(dir: &Path) -> PathBuf {
        dir.join("policy")
    }

    /// Writes a checkpoint of `policy` and this trainer to `dir` (replacing an older one
    /// atomically). `base_model` is recorded in a LoRA adapter's config.
    pub fn save(&self, policy: &Policy, dir: &Path, base_model: &str) -> Result<()> {
        let tmp = gpo_lm::sibling_path(dir, ".partial");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        }
        let pdir = Trainer::policy_dir(&tmp);
        std::fs::create_dir_all(&pdir).map_err(|e| io(&pdir, e))?;
        match &policy.lora {
            Some(lora) => gpo_lm::save_lora(&policy.model, lora, &pdir, base_model)?,
            None => policy.model.save_hf(&pdir)?,
        }
        if let Some(critic) = &policy.critic {
            save_critic(critic, policy, &tmp, base_model)?;
        }
        self.opts.policy.save(tmp.join("optimizer.safetensors"))?;
        if let Some(c) = &self.opts.critic {
            c.save(tmp.join("critic_optimizer.safetensors"))?;
        }
        let state = TrainerState {
            format: FORMAT.into(),
            iteration: self.iteration,
            rng: RngState::of(&self.rng),
            config: self.cfg.clone(),
        };
        let json = serde_json::to_vec_pretty(&state).map_err(|e| Error::Checkpoint {
            path: tmp.join("trainer.json"),
            msg: e.to_string(),
        })?;
        gpo_lm::write_atomic(&tmp.join("trainer.json"), &json)?;
        Ok(gpo_lm::replace_dir(&tmp, dir)?)
    }

    /// Restores `policy`'s trainable weights and this trainer's optimisers, RNG and
    /// iteration from a checkpoint written by [`Trainer::save`] for the same model and
    /// configuration. A checkpoint interrupted between its two renames is found under
    /// `DIR.old`.
    pub fn load(&mut self, policy: &Policy, dir: &Path) -> Result<()> {
        let dir = gpo_lm::existing_dir(dir).unwrap_or_else(|| dir.to_path_buf());
        let state_path = dir.join("trainer.json");
        let text = std::fs::read(&state_path).map_err(|e| io(&state_path, e))?;
        let state: TrainerState = serde_json::from_slice(&text).map_err(|e| Error::Checkpoint {
            path: state_path.clone(),
            msg: e.to_string(),
        })?;
        if state.format != FORMAT {
            return Err(Error::Checkpoint {
                path: state_path,
                msg: format!("format `{}` is not `{FORMAT}`", state.format),
            });
        }
        let changed = changed_settings(&state.config, &self.cfg);
        if !changed.is_empty() {
            return Err(Error::Checkpoint {
                path: state_path,
                msg: format!(
                    "was written with other settings (changed: {}); resume with the settings \
                     the run started with",
                    changed.join(", ")
                ),
            });
        }
        let device = policy.model.device();
        let weights = match &policy.lora {
            Some(_) => Trainer::policy_dir(&dir).join("adapter_model.safetensors"),
            None => Trainer::policy_dir(&dir).join("model.safetensors"),
        };
        read_vars(policy.policy_vars(), &weights, device)?;
        if let Some(critic) = &policy.critic {
            load_critic(critic, &dir, device)?;
        }
        self.opts.policy.load(dir.join("optimizer.safetensors"))?;
        if let Some(c) = &mut self.opts.critic {
            c.load(dir.join("critic_optimizer.safetensors"))?;
        }
        self.rng = state.rng.restore(&state_path)?;
        self.iteration = state.iteration;
        Ok(())
    }
}

/// Writes the critic's head, and a LoRA critic's adapters in PEFT's layout (with the
/// policy's LoRA configuration, which built them).
fn save_critic(critic: &Critic, policy: &Policy, dir: &Path, base_model: &str) -> Result<()> {
    write_vars(&critic.head.vars(), &dir.join(VALUE_HEAD))?;
    if let Some(model) = &critic.model {
        let lora = policy.lora.as_ref().ok_or_else(|| {
            Error::Invalid(
                "a LoRA critic needs a LoRA policy, whose configuration it shares".into(),
            )
        })?;
        gpo_lm::save_lora(model, lora, &dir.join(CRITIC_DIR), base_model)?;
    }
    Ok(())
}

fn load_critic(critic: &Critic, dir: &Path, device: &Device) -> Result<()> {
    read_vars(&critic.head.vars(), &dir.join(VALUE_HEAD), device)?;
    if let Some(model) = &critic.model {
        let adapters = dir.join(CRITIC_DIR).join("adapter_model.safetensors");
        read_vars(model.trainable_vars(), &adapters, device)?;
    }
    Ok(())
}

/// The settings (dotted paths) in which `saved` and `now` differ, leaving out
/// `micro_batch_size`, which changes memory use and not the result.
fn changed_settings(saved: &RlConfig, now: &RlConfig) -> Vec<String> {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, at: &str, out: &mut Vec<String>) {
        match (a, b) {
            // A tagged enum of another kind differs as a whole.
            (serde_json::Value::Object(x), serde_json::Value::Object(y))
                if x.get("kind") != y.get("kind") =>
            {
                out.push(at.to_string())
            }
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let null = serde_json::Value::Null;
                    let path = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    walk(
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        &path,
                        out,
                    );
                }
            }
            _ if a != b => out.push(at.to_string()),
            _ => {}
        }
    }
    let now = RlConfig {
        micro_batch_size: saved.micro_batch_size,
        ..now.clone()
    };
    let mut out = Vec::new();
    match (serde_json::to_value(saved), serde_json::to_value(&now)) {
        (Ok(a), Ok(b)) => walk(&a, &b, "", &mut out),
        _ => out.push("the configuration".into()),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_settings_are_named_and_micro_batching_is_not_a_change() {
        let a = RlConfig::default();
        let mut b = RlConfig {
            micro_batch_size: a.micro_batch_size * 2,
            ..a.clone()
        };
        assert!(changed_settings(&a, &b).is_empty());
        b.optimizer.lr *= 2.0;
        b.kl.beta = 0.5;
        b.estimator = crate::Estimator::Rloo;
        assert_eq!(
            changed_settings(&a, &b),
            ["estimator", "kl.beta", "optimizer.lr"],
        );
    }

    #[test]
    fn an_rng_state_round_trips_and_a_malformed_seed_is_an_error() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let _ = rand::RngCore::next_u64(&mut rng);
        let state = RngState::of(&rng);
        let path = Path::new("trainer.json");
        let mut back = state.restore(path).unwrap();
        assert_eq!(
            rand::RngCore::next_u64(&mut back),
            rand::RngCore::next_u64(&mut rng)
        );
        // 64 bytes, but "€" is three of them: not a char boundary at every second byte.
        let multibyte = RngState {
            seed: "€".repeat(21) + "a",
            ..state.clone()
        };
        assert_eq!(multibyte.seed.len(), 64);
        let err = multibyte.restore(path).unwrap_err().to_string();
        assert!(err.contains("rng.seed is malformed"), "{err}");
        let short = RngState {
            seed: "ab".into(),
            ..state
        };
        assert!(short.restore(path).is_err());
    }
}
