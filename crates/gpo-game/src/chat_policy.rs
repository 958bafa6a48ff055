//! A policy to evaluate: a chat model, optionally with LoRA adapters, that answers user
//! turns. Named on the command line by a model, an adapter directory or a run directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Device;
use gpo_assets::{resolve_model, AssetCache, ModelSource};
use gpo_lm::{generate, CausalLm, LoadOptions, Pass, SamplingParams};
use gpo_tokenizer::{ChatMessage, Tokenizer};

use crate::config::Iterate;
use crate::run::RunDir;
use crate::schedule::Role;
use crate::{Error, Result};

/// Longest prompt, in tokens, a player is given (longer ones keep their end: the chat
/// template's assistant header must survive).
pub const MAX_PROMPT_TOKENS: usize = 384;

/// Prompts generated at once; bounds the KV cache of a long prompt list.
const CHUNK: usize = 16;

/// `text` as a user turn through `tokenizer`'s chat template, ready to generate from.
pub(crate) fn chat_ids(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    let rendered = tokenizer.apply_chat_template(&[ChatMessage::user(text)], true)?;
    let mut ids = tokenizer.encode(&rendered, false)?;
    if ids.len() > MAX_PROMPT_TOKENS {
        ids.drain(..ids.len() - MAX_PROMPT_TOKENS);
    }
    Ok(ids)
}

/// Where a policy comes from, as [`PolicySpec::parse`] reads a name.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicySpec {
    /// A base model: an asset alias, a `.gguf` file or a Hugging Face directory.
    Model(String),
    /// A PEFT adapter directory on the base model it records.
    Adapter {
        /// The adapter directory.
        dir: PathBuf,
        /// Its `base_model_name_or_path`.
        base: String,
    },
}

impl PolicySpec {
    /// Reads `name` for `role`: a run directory (holds `config.toml`) stands for the policy
    /// the run reports (see [`PolicySpec::of_run`]); a directory with `adapter_config.json`
    /// for that adapter on the base it records; anything else for a base model.
    pub fn parse(name: &str, role: Role) -> Result<PolicySpec> {
        let path = Path::new(name);
        if path.join("config.toml").is_file() {
            return PolicySpec::of_run(path, role);
        }
        if path.join("adapter_config.json").is_file() {
            let base = gpo_lm::adapter_base_model(path)?.ok_or_else(|| {
                Error::Data(format!(
                    "{}: adapter_config.json names no base_model_name_or_path; gpo cannot \
                     tell which model the adapter belongs to",
                    path.display()
                ))
            })?;
            return Ok(PolicySpec::Adapter {
                dir: path.to_path_buf(),
                base,
            });
        }
        Ok(PolicySpec::Model(name.to_string()))
    }

    /// The policy a run reports for `role`, as of its last checkpoint: the last iterate, or
    /// the EMA weights for `iterate = ema`; the latest snapshot when there is no checkpoint.
    /// `iterate = average` reports a mixture, which is not one adapter: name a snapshot
    /// (`RUN_DIR/snapshots/ROLE/step-N`) or use `gpo crossplay`, which averages.
    pub fn of_run(path: &Path, role: Role) -> Result<PolicySpec> {
        let (run, cfg) = RunDir::open(path)?;
        let base = match role {
            Role::Attacker => cfg.models.attacker,
            Role::Defender => cfg.models.defender,
        };
        let ema = match cfg.iterate {
            Iterate::Last => false,
            Iterate::Ema { .. } => true,
            Iterate::Average => {
                return Err(Error::Data(format!(
                    "{}: the run reports the average of its snapshots (iterate = average), a \
                     mixture rather than one policy; name one snapshot \
                     ({}/snapshots/{}/step-N) or play them all with `gpo crossplay`",
                    path.display(),
                    path.display(),
                    role.as_str()
                )))
            }
        };
        let dir = match run.checkpoint_policy(role, ema) {
            Some(dir) => dir,
            None => run.snapshots(role).pop().ok_or_else(|| {
                Error::Data(format!(
                    "{}: the run has no checkpoint and no {} snapshot yet; name a model or an \
                     adapter directory instead",
                    path.display(),
                    role.as_str()
                ))
            })?,
        };
        Ok(PolicySpec::Adapter { dir, base })
    }

    /// The base model the policy runs on.
    pub fn base(&self) -> &str {
        match self {
            PolicySpec::Model(m) => m,
            PolicySpec::Adapter { base, .. } => base,
        }
    }
}

/// Base models loaded once and shared by every policy on them (LoRA adapters go on a
/// clone, which shares the base weights).
pub struct BaseModels {
    device: Device,
    loaded: HashMap<String, (CausalLm, Arc<Tokenizer>)>,
}

impl BaseModels {
    /// No model loaded yet; those loaded later go on `device`.
    pub fn new(device: Device) -> Self {
        BaseModels {
            device,
            loaded: HashMap::new(),
        }
    }

    /// The base model `name` (loaded, and fetched when it is an alias, on first use).
    pub fn get(&mut self, name: &str, cache: &AssetCache) -> Result<(CausalLm, Arc<Tokenizer>)> {
        if let Some((m, t)) = self.loaded.get(name) {
            return Ok((m.clone(), t.clone()));
        }
        let setup = |e: String| Error::Setup(format!("model `{name}`: {e}"));
        let path = match resolve_model(name, cache).map_err(|e| setup(e.to_string()))? {
            ModelSource::Gguf(p) | ModelSource::HfDir(p) => p,
        };
        let opts = LoadOptions {
            device: self.device.clone(),
            ..LoadOptions::default()
        };
        let lm = gpo_lm::load_model(&path, &opts).map_err(|e| setup(e.to_string()))?;
        let entry = (lm.model, Arc::new(lm.tokenizer));
        self.loaded.insert(name.to_string(), entry.clone());
        Ok(entry)
    }
}

/// A chat model that answers user turns.
pub struct ChatPolicy {
    /// How it is shown in reports.
    pub name: String,
    model: CausalLm,
    tokenizer: Arc<Tokenizer>,
    eos: Vec<u32>,
    pad: u32,
}

impl ChatPolicy {
    /// Loads `spec`, shown as `name`.
    pub fn load(
        name: &str,
        spec: &PolicySpec,
        bases: &mut BaseModels,
        cache: &AssetCache,
    ) -> Result<ChatPolicy> {
        let (mut model, tokenizer) = bases.get(spec.base(), cache)?;
        if let PolicySpec::Adapter { dir, .. } = spec {
            gpo_lm::load_lora(&mut model, dir)?;
        }
        let eos = tokenizer.eos_ids().to_vec();
        let pad = tokenizer.pad_id().or(eos.first().copied()).unwrap_or(0);
        Ok(ChatPolicy {
            name: name.to_string(),
            model,
            tokenizer,
            eos,
            pad,
        })
    }

    /// One response to each text, sent as a user turn; reproducible for a given
    /// `params.seed` (chunk `k` of 16 prompts samples with seed `params.seed + k`).
    pub fn respond(&self, texts: &[String], params: &SamplingParams) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(texts.len());
        for (k, chunk) in texts.chunks(CHUNK).enumerate() {
            let prompts: Vec<Vec<u32>> = chunk
                .iter()
                .map(|t| chat_ids(&self.tokenizer, t))
                .collect::<Result<_>>()?;
            let params = SamplingParams {
                n: 1,
                seed: params.seed.wrapping_add(k as u64),
                ..params.clone()
            };
            let samples = generate(
                &self.model,
                &prompts,
                &self.eos,
                self.pad,
                &params,
                &Pass::infer(),
            )?;
            for s in &samples {
                out.push(self.tokenizer.decode(&s.ids, true)?.trim().to_string());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_name_is_a_model_and_a_bare_adapter_names_its_base() {
        assert_eq!(
            PolicySpec::parse("smollm2-135m-instruct", Role::Defender).unwrap(),
            PolicySpec::Model("smollm2-135m-instruct".into())
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("adapter_config.json"),
            r#"{"peft_type":"LORA","task_type":"CAUSAL_LM","r":4,"lora_alpha":8,
               "target_modules":["q_proj"],"base_model_name_or_path":"my-base"}"#,
        )
        .unwrap();
        let spec = PolicySpec::parse(dir.path().to_str().unwrap(), Role::Defender).unwrap();
        assert_eq!(spec.base(), "my-base");
        std::fs::write(
            dir.path().join("adapter_config.json"),
            r#"{"peft_type":"LORA","task_type":"CAUSAL_LM","r":4,"lora_alpha":8,
               "target_modules":["q_proj"]}"#,
        )
        .unwrap();
        let e = PolicySpec::parse(dir.path().to_str().unwrap(), Role::Defender).unwrap_err();
        assert!(e.to_string().contains("base_model_name_or_path"), "{e}");
    }
}
