//! One player of the game: its LoRA policy, its RL trainer, its tokenizer and chat
//! template, and the extra copies the theory asks for (EMA weights, a KL anchor).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Tensor;
use gpo_lm::{generate, CausalLm, LoraConfig, Pass, Sample, SamplingParams};
use gpo_rl::{Policy, Reference, RlConfig, RolloutBatch, StepStats, Trainer};
use gpo_tokenizer::Tokenizer;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::chat_policy::chat_ids;
use crate::config::Iterate;
use crate::engine_rollout::EngineRollout;
use crate::schedule::Role;
use crate::{Error, Result};

/// One rollout of a player: the chat prompts it sampled from, its samples (prompt-major,
/// `sampling.n` per prompt) and their texts.
pub struct Rollout {
    /// The encoded chat prompts.
    pub prompts: Vec<Vec<u32>>,
    /// The samples, with their behaviour log-probs.
    pub samples: Vec<Sample>,
    /// The samples' texts.
    pub texts: Vec<String>,
    /// The adapter version an engine sampled them from (`None`: the learner sampled).
    pub engine_adapter: Option<String>,
}

impl Rollout {
    /// Tokens generated.
    pub fn tokens(&self) -> usize {
        self.samples.iter().map(|s| s.ids.len()).sum()
    }
}

/// A player.
pub struct Player {
    /// Which one.
    pub role: Role,
    /// Policy, critic and KL anchor.
    pub policy: Policy,
    /// Optimisers, RNG stream and iteration count.
    pub trainer: Trainer,
    /// Its tokenizer (shared when both players use the same model).
    pub tokenizer: Arc<Tokenizer>,
    /// The model name as configured (recorded in adapters).
    pub model_name: String,
    /// Exponential moving average of the adapters, when the run reports it.
    pub ema: Option<CausalLm>,
    /// The inference engines that sample its rollouts, when they are not sampled here.
    engines: Option<EngineRollout>,
    eos: Vec<u32>,
    pad: u32,
}

impl Player {
    /// A LoRA player on `base` (a frozen model; adapters are attached here with a seed
    /// derived from `seed` and the role).
    pub fn new(
        role: Role,
        base: &CausalLm,
        tokenizer: Arc<Tokenizer>,
        model_name: &str,
        lora: &LoraConfig,
        rl: RlConfig,
        seed: u64,
    ) -> Result<Self> {
        let mut model = base.clone();
        let role_seed = crate::seed_streams::player(seed, role);
        gpo_lm::attach_lora(&mut model, lora, role_seed)?;
        let mut policy = Policy::lora(model, lora.clone())?;
        if let Some(critic) = rl.estimator.critic() {
            // A LoRA critic's adapters get a seed of their own.
            policy = policy.with_critic(critic.kind, role_seed.wrapping_add(1))?;
        }
        let eos = tokenizer.eos_ids().to_vec();
        let pad = tokenizer.pad_id().unwrap_or(0);
        let trainer = Trainer::new(&policy, rl, role_seed, eos.clone(), pad)?;
        Ok(Player {
            role,
            policy,
            trainer,
            tokenizer,
            model_name: model_name.to_string(),
            ema: None,
            engines: None,
            eos,
            pad,
        })
    }

    /// `text` as a user turn through the chat template, ready to generate up to
    /// `max_new_tokens` from (kept whole unless the model's context could not hold it).
    pub fn chat_prompt(&self, text: &str, max_new_tokens: usize) -> Result<Vec<u32>> {
        let context = self.policy.model.config().max_position_embeddings;
        chat_ids(&self.tokenizer, text, context, max_new_tokens)
    }

    /// Samples its rollouts on `engines` from now on.
    pub fn use_engines(&mut self, engines: EngineRollout) {
        self.engines = Some(engines);
    }

    /// Whether engines sample its rollouts.
    pub fn uses_engines(&self) -> bool {
        self.engines.is_some()
    }

    /// Samples from the current policy on each of `texts` as a user turn, on the training
    /// stream (the trainer's RNG), answers of up to `max_new_tokens`: here, or on the
    /// player's engines after publishing its current adapter version there.
    pub fn rollout(&mut self, texts: &[String], max_new_tokens: usize) -> Result<Rollout> {
        let prompts: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.chat_prompt(t, max_new_tokens))
            .collect::<Result<_>>()?;
        let (samples, engine_adapter) = match &mut self.engines {
            None => (self.trainer.sample(&self.policy, &prompts)?, None),
            Some(engines) => {
                let t0 = std::time::Instant::now();
                let lora = self.policy.lora.as_ref().ok_or_else(|| {
                    Error::Setup("an engine-sampled player needs LoRA adapters".into())
                })?;
                let name = engines.publish(
                    &self.policy.model,
                    lora,
                    &self.model_name,
                    self.trainer.iteration(),
                )?;
                let params = self.trainer.next_sampling();
                let samples = engines.sample(&name, &prompts, &params, &self.eos)?;
                self.trainer.record_rollout_time(t0.elapsed().as_secs_f64());
                (samples, Some(name))
            }
        };
        let texts = self.texts(&samples)?;
        Ok(Rollout {
            prompts,
            samples,
            texts,
            engine_adapter,
        })
    }

    /// One RL update on `rollout` with one reward per sample; rollouts an engine sampled are
    /// corrected as `rl.engine_correction` says, and their stats name the adapter version.
    pub fn learn(&mut self, rollout: Rollout, rewards: &[f32]) -> Result<StepStats> {
        let mut batch = RolloutBatch::from_samples(&rollout.prompts, rollout.samples, rewards)?;
        if rollout.engine_adapter.is_some() {
            batch = batch.from_engine();
        }
        let mut stats = self.trainer.learn(&self.policy, &mut batch)?;
        if let (Some(engine), Some(name)) = (&mut stats.engine, rollout.engine_adapter) {
            engine.adapter = name;
        }
        Ok(stats)
    }

    /// Response texts of samples (special tokens removed, whitespace trimmed).
    pub fn texts(&self, samples: &[Sample]) -> Result<Vec<String>> {
        samples
            .iter()
            .map(|s| Ok(self.tokenizer.decode(&s.ids, true)?.trim().to_string()))
            .collect()
    }

    /// Samples from `model` (any snapshot of this player) with `params`, outside training.
    pub fn sample_with(
        &self,
        model: &CausalLm,
        pass: &Pass,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
    ) -> Result<Vec<Sample>> {
        Ok(generate(model, prompts, &self.eos, self.pad, params, pass)?)
    }

    /// The models that stand for a player's reported policy, each with the pass to run it:
    /// one for the last iterate or the EMA, several (a uniform mixture) for the average.
    pub fn reported(&self, iterate: Iterate, snapshots: &[PathBuf]) -> Result<Vec<CausalLm>> {
        Ok(match iterate {
            Iterate::Last => vec![self.policy.model.clone()],
            Iterate::Ema { .. } => vec![self
                .ema
                .clone()
                .unwrap_or_else(|| self.policy.model.clone())],
            Iterate::Average => {
                if snapshots.is_empty() {
                    vec![self.policy.model.clone()]
                } else {
                    snapshots
                        .iter()
                        .map(|dir| {
                            let mut m = self.policy.model.clone();
                            gpo_lm::load_lora(&mut m, dir).map_err(|source| Error::Adapter {
                                dir: dir.clone(),
                                source,
                            })?;
                            Ok(m)
                        })
                        .collect::<Result<_>>()?
                }
            }
        })
    }

    /// Generates one response per prompt, each prompt answered by a member of `models` drawn
    /// uniformly with `rng` (one member: all of them).
    pub fn answer(
        &self,
        models: &[CausalLm],
        pass: &Pass,
        texts: &[String],
        params: &SamplingParams,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<String>> {
        let prompts: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.chat_prompt(t, params.max_new_tokens))
            .collect::<Result<_>>()?;
        let pick: Vec<usize> = (0..prompts.len())
            .map(|_| rng.random_range(0..models.len()))
            .collect();
        let mut out = vec![String::new(); prompts.len()];
        for (m, model) in models.iter().enumerate() {
            let idx: Vec<usize> = (0..prompts.len()).filter(|&i| pick[i] == m).collect();
            if idx.is_empty() {
                continue;
            }
            let sub: Vec<Vec<u32>> = idx.iter().map(|&i| prompts[i].clone()).collect();
            let samples = self.sample_with(model, pass, &sub, params)?;
            for (s, text) in samples.iter().zip(self.texts(&samples)?) {
                out[idx[s.prompt_index]] = text;
            }
        }
        Ok(out)
    }

    /// Re-anchors the KL penalty at the policy as it is now (the theory's previous iterate).
    /// The anchor is a detached copy: it keeps its adapters' names, so it can be saved.
    pub fn anchor_here(&mut self) -> Result<()> {
        self.policy.reference = Reference::Model(Box::new(self.policy.model.detached_copy()?));
        Ok(())
    }

    /// Loads a KL anchor saved with [`Player::save_anchor`].
    pub fn load_anchor(&mut self, dir: &Path) -> Result<()> {
        let mut m = self.policy.model.clone();
        gpo_lm::load_lora(&mut m, dir)?;
        self.policy.reference = Reference::Model(Box::new(m));
        Ok(())
    }

    /// Saves the KL anchor's adapters in PEFT's layout when it is a snapshot; returns
    /// whether there was one to save.
    pub fn save_anchor(&self, dir: &Path) -> Result<bool> {
        match (&self.policy.reference, &self.policy.lora) {
            (Reference::Model(m), Some(lora)) => {
                gpo_lm::save_lora(m, lora, dir, &self.model_name)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Folds the current adapters into the moving average: `ema = d ema + (1 - d) now`.
    pub fn update_ema(&mut self, decay: f64) -> Result<()> {
        let Some(ema) = &self.ema else {
            self.ema = Some(self.policy.model.detached_copy()?);
            return Ok(());
        };
        for ((_, e), (_, p)) in ema
            .trainable_vars()
            .iter()
            .zip(self.policy.model.trainable_vars())
        {
            let next = ((e.as_tensor() * decay)? + (p.as_tensor() * (1.0 - decay))?)?;
            e.set(&next)?;
        }
        Ok(())
    }

    /// The adapters as named tensors.
    pub fn adapter_tensors(&self) -> Vec<(String, Tensor)> {
        self.policy
            .model
            .trainable_vars()
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }
}
