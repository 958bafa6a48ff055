//! One player's RL loop: sample, score, prepare, update; with its optimisers, RNG and
//! iteration count.

use std::time::Instant;

use gpo_lm::{generate, Pass, Sample, SamplingParams};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::RlConfig;
use crate::engine_correction::engine_stats;
use crate::policy::Policy;
use crate::prepare::prepare;
use crate::rollout::RolloutBatch;
use crate::update::{update, Optimizers, UpdateContext, UpdateScope};
use crate::Result;
pub use gpo_records::{Credit, PhaseTimes, StepStats};

/// Mean |advantage| at the first and at the last token of `batch`'s responses (its
/// advantages filled).
pub fn credit_of(batch: &RolloutBatch) -> Credit {
    let ends = |pick: fn(&[f32]) -> Option<&f32>| {
        crate::mean(
            batch
                .rollouts
                .iter()
                .filter_map(|r| pick(&r.advantages).map(|a| a.abs())),
        )
    };
    Credit {
        first: ends(<[f32]>::first),
        last: ends(<[f32]>::last),
    }
}

/// Trains one [`Policy`] by RL. All randomness (sampling seeds, shuffling, dropout) comes
/// from one seeded ChaCha8 stream, saved in checkpoints so that a resumed run continues
/// exactly.
pub struct Trainer {
    pub(crate) cfg: RlConfig,
    pub(crate) opts: Optimizers,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) iteration: u64,
    eos_ids: Vec<u32>,
    pad_id: u32,
    last_rollout_s: f64,
}

impl Trainer {
    /// A trainer for `policy`; `eos_ids` stop sampling and `pad_id` fills padding.
    pub fn new(
        policy: &Policy,
        cfg: RlConfig,
        seed: u64,
        eos_ids: Vec<u32>,
        pad_id: u32,
    ) -> Result<Self> {
        cfg.validate()?;
        let opts = Optimizers::new(policy, &cfg)?;
        Ok(Trainer {
            cfg,
            opts,
            rng: ChaCha8Rng::seed_from_u64(seed),
            iteration: 0,
            eos_ids,
            pad_id,
            last_rollout_s: 0.0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RlConfig {
        &self.cfg
    }

    /// Iterations completed.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// The optimisers (their step counts drive the schedule).
    pub fn optimizers(&self) -> &Optimizers {
        &self.opts
    }

    /// Samples `cfg.sampling.n` responses per prompt from the policy, with a seed drawn from
    /// the trainer's stream. Rows are prompt-major.
    pub fn sample(&mut self, policy: &Policy, prompts: &[Vec<u32>]) -> Result<Vec<Sample>> {
        let t0 = Instant::now();
        let params = self.next_sampling();
        let out = generate(
            &policy.model,
            prompts,
            &self.eos_ids,
            self.pad_id,
            &params,
            &Pass::infer(),
        )?;
        self.last_rollout_s = t0.elapsed().as_secs_f64();
        Ok(out)
    }

    /// The sampling settings of the next rollout, its seed drawn from the training stream:
    /// what [`Trainer::sample`] uses, and what an engine that samples for this player is
    /// sent (so `gpo serve` repeats the local sampling exactly).
    pub fn next_sampling(&mut self) -> SamplingParams {
        SamplingParams {
            seed: self.rng.random(),
            ..self.cfg.sampling.clone()
        }
    }

    /// Records the wall time of a rollout sampled elsewhere (an engine), for the next
    /// [`StepStats`].
    pub fn record_rollout_time(&mut self, seconds: f64) {
        self.last_rollout_s = seconds;
    }

    /// What this iteration trains: the critic alone during its warm-up
    /// ([`crate::CriticConfig::warmup_iterations`]), else everything.
    pub fn scope(&self) -> UpdateScope {
        match self.cfg.estimator.critic() {
            Some(c) if self.iteration < c.warmup_iterations => UpdateScope::CriticOnly,
            _ => UpdateScope::All,
        }
    }

    /// Prepares `batch` ([`prepare`]) and updates the policy and its critic on it
    /// ([`update`]).
    pub fn learn(&mut self, policy: &Policy, batch: &mut RolloutBatch) -> Result<StepStats> {
        let t0 = Instant::now();
        prepare(policy, batch, &self.cfg, self.pad_id)?;
        let prepare_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let ctx = UpdateContext {
            policy,
            cfg: &self.cfg,
            pad_id: self.pad_id,
            scope: self.scope(),
        };
        let stats = update(&ctx, batch, &mut self.opts, &mut self.rng)?;
        self.iteration += 1;
        Ok(StepStats {
            iteration: self.iteration,
            reward: batch.mean_reward(),
            kl: batch.mean_kl(),
            response_len: batch.mean_response_len(),
            credit: credit_of(batch),
            update: stats,
            times: PhaseTimes {
                rollout_s: std::mem::take(&mut self.last_rollout_s),
                prepare_s,
                update_s: t1.elapsed().as_secs_f64(),
            },
            engine: engine_stats(batch, self.cfg.engine_correction),
        })
    }
}
