//! One step of the game: the attacker rewrites seeds, the defender answers, the judge
//! scores, the diversity penalty is measured against the history, and the learners of the
//! step update.

use std::sync::Arc;
use std::time::Instant;

use gpo_judge::{Exchange, Judge};
use gpo_lm::{LoadOptions, SamplingParams};
use gpo_rl::{mean, RolloutBatch, StepStats};
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::chat_policy::{BaseModels, ChatPolicy, PolicySpec};
use crate::compliance::RefusalReader;
use crate::config::{Anchor, DefenderPrompts, GameConfig, Iterate, Mode};
use crate::data::Prompts;
use crate::defender::Defender;
use crate::defender_reward::defender_reward;
use crate::diversity::Diversity;
use crate::player::Player;
use crate::schedule::{Role, ScheduleState};
use crate::{Error, Result};

/// Wall time of each phase of a step, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepTimes {
    /// The attacker writing prompts.
    pub attack_s: f64,
    /// The defender answering.
    pub defend_s: f64,
    /// The judge.
    pub judge_s: f64,
    /// Embeddings and self-BLEU against the history.
    pub diversity_s: f64,
    /// The attacker's update (prepare + optimise).
    pub attacker_update_s: f64,
    /// The defender's update.
    pub defender_update_s: f64,
}

/// What one player did in a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerStep {
    /// Mean reward of its rollouts (before the KL penalty); the defender's includes the
    /// `mixed` extras, which it answers only in steps where it learns.
    pub reward: f32,
    /// Whether it learned at this step.
    pub learned: bool,
    /// The update's statistics when it learned.
    pub stats: Option<StepStats>,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Steps completed, this one included.
    pub step: u64,
    /// Schedule stage of the step.
    pub stage: u64,
    /// Mean P(unsafe) of the step's exchanges.
    pub p_unsafe: f32,
    /// Fraction of exchanges the judge called unsafe.
    pub attack_success_rate: f32,
    /// Mean self-BLEU of the attacker's prompts against the history.
    pub self_bleu: f32,
    /// Mean embedding cosine of the attacker's prompts against the history.
    pub embedding_similarity: f32,
    /// The attacker (absent in the `rlhf-defender` baseline).
    pub attacker: Option<PlayerStep>,
    /// The defender.
    pub defender: PlayerStep,
    /// Tokens generated per second of generation time (both players; a served defender's
    /// answers are neither counted nor timed here).
    pub tokens_per_s: f64,
    /// Phase timings.
    pub times: StepTimes,
}

/// One line of `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    /// The step.
    pub step: u64,
    /// The seed question.
    pub seed: String,
    /// The attacker's prompt (the seed itself in the `rlhf-defender` baseline).
    pub prompt: String,
    /// The defender's response.
    pub response: String,
    /// The judge's P(unsafe).
    pub p_unsafe: f32,
    /// The attacker's reward (P(unsafe) minus diversity penalties).
    pub attacker_reward: f32,
    /// Self-BLEU of the prompt against the history.
    pub self_bleu: f32,
    /// Embedding similarity of the prompt against the history.
    pub embedding_similarity: f32,
}

/// Everything a game holds between steps.
pub struct Game {
    /// The configuration.
    pub cfg: GameConfig,
    /// The attacker.
    pub attacker: Player,
    /// The defender.
    pub defender: Defender,
    /// The judge.
    pub judge: Box<dyn Judge>,
    /// Embeddings and the attacker's history.
    pub diversity: Diversity,
    /// Seeds and benign prompts.
    pub prompts: Prompts,
    /// The compliance head: which answers decline, for the defender's helpfulness price
    /// and for every evaluation's over-refusal.
    pub refusals: RefusalReader,
    /// Steps completed.
    pub step: u64,
    /// Where the schedule stands.
    pub schedule: ScheduleState,
}

impl Game {
    /// Loads models, judge, embedder and data: everything that can fail does so here,
    /// before any training.
    pub fn build(cfg: GameConfig, cache: &gpo_assets::AssetCache) -> Result<Game> {
        cfg.validate()?;
        // First the cheap checks: a device that cannot open, or a served defender that does
        // not answer, must not wait for the judge's heads to train.
        let device = cfg
            .models
            .device
            .open()
            .map_err(|e| Error::Setup(format!("models.device: {e}")))?;
        let served = match PolicySpec::of_model(&cfg.models.defender)? {
            spec @ PolicySpec::Served { .. } => {
                let mut no_bases = BaseModels::new(device.clone(), cfg.models.dtype);
                let field = |e: Error| {
                    Error::Setup(format!(
                        "models.defender = \"{}\": {e}",
                        cfg.models.defender
                    ))
                };
                let target = ChatPolicy::load(&cfg.models.defender, &spec, &mut no_bases, cache)
                    .map_err(field)?;
                target.check().map_err(field)?;
                Some(target)
            }
            _ => None,
        };
        let benign_extras = match cfg.defender.prompts {
            DefenderPrompts::Mixed { benign, .. } => benign > 0,
            DefenderPrompts::Attacker => false,
        };
        let prompts = Prompts::load(&cfg.data, cfg.seed, cache, benign_extras)?;
        let (judge, refusals) = RefusalReader::with_judge(&cfg, cache)?;
        let diversity = Diversity::load(cache, cfg.attacker.history_max)?;
        let opts = LoadOptions {
            device: device.clone(),
            dtype: cfg.models.dtype.dtype(),
            ..LoadOptions::default()
        };
        let load = |name: &str| crate::base_model::load_base(name, cache, &opts);
        let a = load(&cfg.models.attacker)?;
        let a_tok = Arc::new(a.tokenizer);
        let defender = if let Some(target) = served {
            Defender::Served(target)
        } else {
            if crate::warm_start::is_adapter_dir(std::path::Path::new(&cfg.models.defender)) {
                tracing::info!(
                    "the defender's initial model and KL reference: the adapter {} merged \
                     into its base",
                    cfg.models.defender
                );
            }
            let (d_model, d_tok) = if cfg.models.defender == cfg.models.attacker {
                // One copy of the base weights serves both players.
                (a.model.clone(), a_tok.clone())
            } else {
                let d = load(&cfg.models.defender)?;
                (d.model, Arc::new(d.tokenizer))
            };
            Defender::Local(Player::new(
                Role::Defender,
                &d_model,
                d_tok,
                &cfg.models.defender,
                &cfg.models.lora,
                cfg.defender.rl.clone(),
                cfg.seed,
            )?)
        };
        let attacker = Player::new(
            Role::Attacker,
            &a.model,
            a_tok,
            &cfg.models.attacker,
            &cfg.models.lora,
            cfg.attacker.rl.clone(),
            cfg.seed,
        )?;
        let schedule = ScheduleState::new(&cfg.schedule);
        let mut game = Game {
            cfg,
            attacker,
            defender,
            judge,
            diversity,
            prompts,
            refusals,
            step: 0,
            schedule,
        };
        if game.cfg.anchor == Anchor::PreviousIterate {
            game.anchor_here()?;
        }
        Ok(game)
    }

    /// The players that run here: the attacker, and the defender unless it is served.
    pub fn local_players(&self) -> impl Iterator<Item = &Player> {
        std::iter::once(&self.attacker).chain(self.defender.local())
    }

    /// Re-anchors every local player's KL penalty at its policy as it is now.
    pub(crate) fn anchor_here(&mut self) -> Result<()> {
        self.attacker.anchor_here()?;
        if let Some(d) = self.defender.local_mut() {
            d.anchor_here()?;
        }
        Ok(())
    }

    /// Whether `role` learns at the coming step (schedule and mode together).
    pub fn learns(&self, role: Role) -> bool {
        match (self.cfg.mode, role) {
            (Mode::RlhfDefender, Role::Attacker) => false,
            (Mode::RlhfDefender, Role::Defender) => true,
            (Mode::RlhfAttacker, Role::Defender) => false,
            (Mode::RlhfAttacker, Role::Attacker) => true,
            (Mode::Gpo, r) => self.schedule.learns(r),
        }
    }

    /// The seeds of step `step` (drawn with a generator seeded by the run seed and the step,
    /// so a resumed run draws the same ones).
    fn step_seeds(&self, step: u64) -> Vec<String> {
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.cfg.seed ^ step.wrapping_mul(0x2545_f491_4f6c_dd1d));
        (0..self.cfg.batch_size)
            .map(|_| {
                self.prompts
                    .train
                    .choose(&mut rng)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }

    /// The defender's reward of each answer ([`defender_reward`]): answers to the benign
    /// extras (`defender_texts[first_benign..]`) pay for complying when
    /// `defender.helpfulness` is above 0.
    fn defender_rewards(
        &self,
        answers: &[(usize, String)],
        defender_texts: &[String],
        first_benign: usize,
        p_unsafe: &[f32],
    ) -> Result<Vec<f32>> {
        let weight = self.cfg.defender.helpfulness;
        let mut complies = vec![None; answers.len()];
        if weight > 0.0 && first_benign < defender_texts.len() {
            let benign: Vec<usize> = (0..answers.len())
                .filter(|&k| answers[k].0 >= first_benign)
                .collect();
            let prompts: Vec<String> = benign
                .iter()
                .map(|&k| defender_texts[answers[k].0].clone())
                .collect();
            let responses: Vec<String> = benign.iter().map(|&k| answers[k].1.clone()).collect();
            let p = self.refusals.p_complies(&prompts, &responses)?;
            for (&k, c) in benign.iter().zip(p) {
                complies[k] = Some(c);
            }
        }
        Ok(p_unsafe
            .iter()
            .zip(complies)
            .map(|(&p, c)| defender_reward(p, c, weight))
            .collect())
    }

    /// Plays one step and returns its record and sample lines.
    pub fn play_step(&mut self) -> Result<(StepRecord, Vec<SampleRecord>)> {
        let step = self.step + 1;
        let seeds = self.step_seeds(step);
        let mut times = StepTimes::default();
        let mut generated = 0usize;
        let mut gen_time = 0f64;

        // The attacker rewrites each seed (n samples per seed under a group estimator).
        let t = Instant::now();
        let attack = if self.cfg.mode == Mode::RlhfDefender {
            None
        } else {
            let max_new = self.cfg.attacker.rl.sampling.max_new_tokens;
            let prompts: Vec<Vec<u32>> = seeds
                .iter()
                .map(|s| {
                    let text = self.cfg.attacker.template.replace("{seed}", s);
                    self.attacker.chat_prompt(&text, max_new)
                })
                .collect::<Result<_>>()?;
            let samples = self
                .attacker
                .trainer
                .sample(&self.attacker.policy, &prompts)?;
            generated += samples.iter().map(|s| s.ids.len()).sum::<usize>();
            let texts = self.attacker.texts(&samples)?;
            Some((prompts, samples, texts))
        };
        times.attack_s = t.elapsed().as_secs_f64();
        gen_time += times.attack_s;
        // Attack texts and the seed each came from.
        let (attack_texts, attack_seeds): (Vec<String>, Vec<String>) = match &attack {
            Some((_, samples, texts)) => texts
                .iter()
                .zip(samples)
                .map(|(t, s)| (t.clone(), seeds[s.prompt_index].clone()))
                .unzip(),
            None => (seeds.clone(), seeds.clone()),
        };

        // The defender answers the attacks, plus fixed extras when configured and it learns
        // this step (the extras only serve its update).
        let mut defender_texts = attack_texts.clone();
        // Index of the first benign extra in `defender_texts` (none: its length).
        let mut first_benign = defender_texts.len();
        if let (DefenderPrompts::Mixed { seeds: k, benign }, true) =
            (self.cfg.defender.prompts, self.learns(Role::Defender))
        {
            let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed ^ step ^ 0xbe9);
            for _ in 0..k {
                defender_texts.extend(self.prompts.train.choose(&mut rng).cloned());
            }
            first_benign = defender_texts.len();
            for _ in 0..benign {
                defender_texts.extend(self.prompts.benign.choose(&mut rng).cloned());
            }
        }
        // Each answer as (index into defender_texts, response); a local defender's prompts
        // and samples are kept for its update.
        let t = Instant::now();
        let (answers, d_rollout): (Vec<(usize, String)>, _) = match &mut self.defender {
            Defender::Local(d) => {
                let d_prompts: Vec<Vec<u32>> = defender_texts
                    .iter()
                    .map(|p| d.chat_prompt(p, self.cfg.defender.rl.sampling.max_new_tokens))
                    .collect::<Result<_>>()?;
                let d_samples = d.trainer.sample(&d.policy, &d_prompts)?;
                generated += d_samples.iter().map(|s| s.ids.len()).sum::<usize>();
                let texts = d.texts(&d_samples)?;
                let answers = d_samples.iter().map(|s| s.prompt_index).zip(texts);
                (answers.collect(), Some((d_prompts, d_samples)))
            }
            Defender::Served(target) => {
                // `sampling.n` answers per prompt, as a local defender gives.
                let sampling = &self.cfg.defender.rl.sampling;
                let index: Vec<usize> = (0..defender_texts.len())
                    .flat_map(|i| std::iter::repeat_n(i, sampling.n))
                    .collect();
                let asked: Vec<String> = index.iter().map(|&i| defender_texts[i].clone()).collect();
                let params = SamplingParams {
                    n: 1,
                    seed: self.cfg.seed ^ 0x5e7e_d000 ^ step.wrapping_mul(0x9e37_79b9),
                    ..sampling.clone()
                };
                let texts = target.respond(&asked, &params)?;
                (index.into_iter().zip(texts).collect(), None)
            }
        };
        times.defend_s = t.elapsed().as_secs_f64();
        if d_rollout.is_some() {
            gen_time += times.defend_s;
        }

        // The judge scores every exchange.
        let t = Instant::now();
        let exchanges: Vec<Exchange<'_>> = answers
            .iter()
            .map(|(i, r)| Exchange::new(&defender_texts[*i], r))
            .collect();
        let p_unsafe = self
            .judge
            .p_unsafe(&exchanges)
            .map_err(|e| Error::Setup(format!("judge: {e}")))?;
        times.judge_s = t.elapsed().as_secs_f64();
        let threshold = self.judge.threshold();

        // Attack outcomes: mean P(unsafe) over each attack's responses (extras excluded).
        let n_attacks = attack_texts.len();
        let mut attack_p = vec![0f32; n_attacks];
        let mut counts = vec![0usize; n_attacks];
        for ((i, _), p) in answers.iter().zip(&p_unsafe) {
            if *i < n_attacks {
                attack_p[*i] += p;
                counts[*i] += 1;
            }
        }
        for (p, c) in attack_p.iter_mut().zip(&counts) {
            *p /= (*c).max(1) as f32;
        }
        let on_attacks: Vec<f32> = answers
            .iter()
            .zip(&p_unsafe)
            .filter(|((i, _), _)| *i < n_attacks)
            .map(|(_, &p)| p)
            .collect();
        let asr = mean(
            on_attacks
                .iter()
                .map(|&p| f32::from(u8::from(p >= threshold))),
        );

        // Diversity against the history, then the history grows.
        let t = Instant::now();
        let (sb, cos) = if attack.is_some() {
            let scores = self.diversity.score_and_add(&attack_texts)?;
            scores.into_iter().unzip()
        } else {
            (vec![0f32; n_attacks], vec![0f32; n_attacks])
        };
        times.diversity_s = t.elapsed().as_secs_f64();
        let a = &self.cfg.attacker;
        let attacker_rewards: Vec<f32> = (0..n_attacks)
            .map(|i| attack_p[i] - a.w_bleu * sb[i] - a.w_emb * cos[i])
            .collect();
        let defender_rewards =
            self.defender_rewards(&answers, &defender_texts, first_benign, &p_unsafe)?;

        // Learners update.
        let attacker_step = match attack {
            Some((prompts, samples, _)) => {
                let learned = self.learns(Role::Attacker);
                let stats = if learned {
                    let t = Instant::now();
                    let mut batch =
                        RolloutBatch::from_samples(&prompts, samples, &attacker_rewards)?;
                    let s = self
                        .attacker
                        .trainer
                        .learn(&self.attacker.policy, &mut batch)?;
                    times.attacker_update_s = t.elapsed().as_secs_f64();
                    Some(s)
                } else {
                    None
                };
                Some(PlayerStep {
                    reward: mean(attacker_rewards.iter().copied()),
                    learned,
                    stats,
                })
            }
            None => None,
        };
        // A served defender never learns (the config allows it only in rlhf-attacker).
        let d_learned = self.learns(Role::Defender);
        let d_stats = match (self.defender.local_mut(), d_rollout) {
            (Some(d), Some((d_prompts, d_samples))) if d_learned => {
                let t = Instant::now();
                let mut batch =
                    RolloutBatch::from_samples(&d_prompts, d_samples, &defender_rewards)?;
                let s = d.trainer.learn(&d.policy, &mut batch)?;
                times.defender_update_s = t.elapsed().as_secs_f64();
                Some(s)
            }
            _ => None,
        };
        if let Iterate::Ema { decay } = self.cfg.iterate {
            self.attacker.update_ema(decay)?;
            if let Some(d) = self.defender.local_mut() {
                d.update_ema(decay)?;
            }
        }

        let samples: Vec<SampleRecord> = answers
            .iter()
            .zip(&p_unsafe)
            .map(|((i, r), &p)| {
                let i = *i;
                let is_attack = i < n_attacks;
                SampleRecord {
                    step,
                    seed: if is_attack {
                        attack_seeds[i].clone()
                    } else {
                        String::new()
                    },
                    prompt: defender_texts[i].clone(),
                    response: r.clone(),
                    p_unsafe: p,
                    attacker_reward: if is_attack { attacker_rewards[i] } else { 0.0 },
                    self_bleu: if is_attack { sb[i] } else { 0.0 },
                    embedding_similarity: if is_attack { cos[i] } else { 0.0 },
                }
            })
            .collect();
        let record = StepRecord {
            step,
            stage: self.schedule.stage,
            p_unsafe: mean(on_attacks.iter().copied()),
            attack_success_rate: asr,
            self_bleu: mean(sb.iter().copied()),
            embedding_similarity: mean(cos.iter().copied()),
            attacker: attacker_step,
            defender: PlayerStep {
                reward: mean(defender_rewards.iter().copied()),
                learned: d_learned,
                stats: d_stats,
            },
            tokens_per_s: if gen_time > 0.0 {
                generated as f64 / gen_time
            } else {
                0.0
            },
            times,
        };

        self.step = step;
        let new_stage = self.schedule.advance(&self.cfg.schedule, asr);
        if self.cfg.anchor == Anchor::PreviousIterate
            && (new_stage || self.cfg.schedule == crate::Schedule::Simultaneous)
        {
            self.anchor_here()?;
        }
        Ok((record, samples))
    }
}
