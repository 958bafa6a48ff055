//! One step of the game as a pipeline: the attacker rewrites the step's seeds, the defender
//! answers them (and its `mixed` extras), the judge scores every exchange, the diversity
//! penalty is measured against the history, the rewards are formed (Eq. 8 for the attacker,
//! `defender_reward` for the defender) and the step's learners update.

use std::time::Instant;

use gpo_judge::Exchange;
use gpo_lm::SamplingParams;
use gpo_rl::{mean, StepStats};
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Game, PlayerStep, SampleRecord, StepRecord, StepTimes};
use crate::config::{Anchor, DefenderPrompts, Iterate, Mode};
use crate::defender::Defender;
use crate::defender_reward::defender_reward;
use crate::player::Rollout;
use crate::schedule::Role;
use crate::seed_streams;
use crate::{Error, Result};

/// Where a prompt the defender answers comes from.
#[derive(Debug, Clone, PartialEq)]
enum Origin {
    /// An attack: the attacker's rewrite of this seed (the seed itself in the
    /// `rlhf-defender` baseline).
    Attack { seed: String },
    /// A `mixed` extra drawn from the training seeds, answered only for the defender's update.
    ExtraSeed,
    /// A `mixed` benign extra: its answer also earns the helpfulness term.
    ExtraBenign,
}

/// What the defender was asked: the attacks first, then the extras, each with its origin.
struct Asked {
    texts: Vec<String>,
    origins: Vec<Origin>,
}

impl Asked {
    fn is_attack(&self, i: usize) -> bool {
        matches!(self.origins[i], Origin::Attack { .. })
    }

    /// How many attacks (they come first).
    fn attacks(&self) -> usize {
        self.origins
            .iter()
            .take_while(|o| matches!(o, Origin::Attack { .. }))
            .count()
    }
}

/// The defender's answers, each as (index into [`Asked::texts`], response); a local
/// defender's rollout is kept for its update.
struct Answers {
    answers: Vec<(usize, String)>,
    rollout: Option<Rollout>,
}

/// The judge's reading of the attacks: mean P(unsafe) per attack (over its answers), P(unsafe)
/// of every answer to an attack, and the fraction of those at or above the threshold.
struct Outcomes {
    per_attack: Vec<f32>,
    on_attacks: Vec<f32>,
    success_rate: f32,
}

/// Generated tokens and the generation time they took, for `tokens_per_s`.
#[derive(Default)]
struct Throughput {
    tokens: usize,
    seconds: f64,
}

impl Game {
    /// Plays one step and returns its record and sample lines.
    pub fn play_step(&mut self) -> Result<(StepRecord, Vec<SampleRecord>)> {
        let step = self.step + 1;
        let seeds = self.step_seeds(step);
        let mut times = StepTimes::default();
        let mut made = Throughput::default();

        let attack = timed(&mut times.attack_s, || self.attack(&seeds, &mut made))?;
        made.seconds += times.attack_s;

        let asked = self.asked(&seeds, attack.as_ref(), step);
        let answered = timed(&mut times.defend_s, || {
            self.defend(&asked.texts, step, &mut made)
        })?;
        if answered.rollout.is_some() {
            made.seconds += times.defend_s;
        }

        let p_unsafe = timed(&mut times.judge_s, || {
            self.judge_answers(&asked.texts, &answered.answers)
        })?;
        let outcomes = self.outcomes(&asked, &answered.answers, &p_unsafe);

        // Diversity against the history, then the history grows.
        let n_attacks = asked.attacks();
        let (sb, cos) = timed(&mut times.diversity_s, || {
            self.diversity_of(&asked.texts[..n_attacks], attack.is_some())
        })?;
        let a = &self.cfg.attacker;
        let attacker_rewards: Vec<f32> = (0..n_attacks)
            .map(|i| outcomes.per_attack[i] - a.w_bleu * sb[i] - a.w_emb * cos[i])
            .collect();
        let defender_rewards = self.defender_rewards(&answered.answers, &asked, &p_unsafe)?;

        let attacker = attack
            .map(|at| self.learn_attacker(at, &attacker_rewards, &mut times))
            .transpose()?;
        let defender = self.learn_defender(answered.rollout, &defender_rewards, &mut times)?;
        if let Iterate::Ema { decay } = self.cfg.iterate {
            self.attacker.update_ema(decay)?;
            if let Some(d) = self.defender.local_mut() {
                d.update_ema(decay)?;
            }
        }

        let samples = sample_records(
            step,
            &asked,
            &answered.answers,
            &p_unsafe,
            &attacker_rewards,
            (&sb, &cos),
        );
        let record = StepRecord {
            step,
            stage: self.schedule.stage,
            p_unsafe: mean(outcomes.on_attacks.iter().copied()),
            attack_success_rate: outcomes.success_rate,
            self_bleu: mean(sb.iter().copied()),
            embedding_similarity: mean(cos.iter().copied()),
            attacker,
            defender,
            tokens_per_s: if made.seconds > 0.0 {
                made.tokens as f64 / made.seconds
            } else {
                0.0
            },
            times,
        };
        self.finish_step(step, outcomes.success_rate)?;
        Ok((record, samples))
    }

    /// The seeds of step `step` (drawn with a generator seeded by the run seed and the step,
    /// so a resumed run draws the same ones).
    fn step_seeds(&self, step: u64) -> Vec<String> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed_streams::step_seeds(self.cfg.seed, step));
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

    /// Self-BLEU and embedding cosine of each attack against the history, which then takes
    /// them in; zeros when there was no attacker (the `rlhf-defender` baseline).
    fn diversity_of(&mut self, attacks: &[String], attacked: bool) -> Result<(Vec<f32>, Vec<f32>)> {
        if !attacked {
            return Ok((vec![0.0; attacks.len()], vec![0.0; attacks.len()]));
        }
        Ok(self.diversity.score_and_add(attacks)?.into_iter().unzip())
    }

    /// The attacker rewrites each seed (n samples per seed under a group estimator); none in
    /// the `rlhf-defender` baseline, whose defender answers the seeds themselves.
    fn attack(&mut self, seeds: &[String], made: &mut Throughput) -> Result<Option<Rollout>> {
        if self.cfg.mode == Mode::RlhfDefender {
            return Ok(None);
        }
        let max_new = self.cfg.attacker.rl.sampling.max_new_tokens;
        let instructions: Vec<String> = seeds
            .iter()
            .map(|s| self.cfg.attacker.template.replace("{seed}", s))
            .collect();
        let rollout = self.attacker.rollout(&instructions, max_new)?;
        made.tokens += rollout.tokens();
        Ok(Some(rollout))
    }

    /// What the defender answers: the attacks, plus fixed extras when configured and it
    /// learns this step (the extras only serve its update).
    fn asked(&self, seeds: &[String], attack: Option<&Rollout>, step: u64) -> Asked {
        let (mut texts, mut origins): (Vec<String>, Vec<Origin>) = match attack {
            Some(at) => at
                .texts
                .iter()
                .zip(&at.samples)
                .map(|(t, s)| {
                    let seed = seeds[s.prompt_index].clone();
                    (t.clone(), Origin::Attack { seed })
                })
                .unzip(),
            None => seeds
                .iter()
                .map(|s| (s.clone(), Origin::Attack { seed: s.clone() }))
                .unzip(),
        };
        if let (DefenderPrompts::Mixed { seeds: k, benign }, true) =
            (self.cfg.defender.prompts, self.learns(Role::Defender))
        {
            let extras = seed_streams::defender_extras(self.cfg.seed, step);
            let mut rng = ChaCha8Rng::seed_from_u64(extras);
            let mut draw = |from: &[String], n: usize, origin: Origin| {
                for _ in 0..n {
                    if let Some(t) = from.choose(&mut rng) {
                        texts.push(t.clone());
                        origins.push(origin.clone());
                    }
                }
            };
            draw(&self.prompts.train, k, Origin::ExtraSeed);
            draw(&self.prompts.benign, benign, Origin::ExtraBenign);
        }
        Asked { texts, origins }
    }

    /// The defender answers every asked text: a local one samples (and keeps its rollout), a
    /// served one gives `sampling.n` chat completions per text.
    fn defend(&mut self, asked: &[String], step: u64, made: &mut Throughput) -> Result<Answers> {
        let sampling = &self.cfg.defender.rl.sampling;
        match &mut self.defender {
            Defender::Local(d) => {
                let rollout = d.rollout(asked, sampling.max_new_tokens)?;
                made.tokens += rollout.tokens();
                let answers = rollout
                    .samples
                    .iter()
                    .map(|s| s.prompt_index)
                    .zip(rollout.texts.iter().cloned())
                    .collect();
                Ok(Answers {
                    answers,
                    rollout: Some(rollout),
                })
            }
            Defender::Served(target) => {
                let index: Vec<usize> = (0..asked.len())
                    .flat_map(|i| std::iter::repeat_n(i, sampling.n))
                    .collect();
                let texts: Vec<String> = index.iter().map(|&i| asked[i].clone()).collect();
                let params = SamplingParams {
                    n: 1,
                    seed: seed_streams::served_defender(self.cfg.seed, step),
                    ..sampling.clone()
                };
                let replies = target.respond(&texts, &params)?;
                Ok(Answers {
                    answers: index.into_iter().zip(replies).collect(),
                    rollout: None,
                })
            }
        }
    }

    /// The judge's P(unsafe) of every exchange.
    fn judge_answers(&self, asked: &[String], answers: &[(usize, String)]) -> Result<Vec<f32>> {
        let exchanges: Vec<Exchange<'_>> = answers
            .iter()
            .map(|(i, r)| Exchange::new(&asked[*i], r))
            .collect();
        self.judge
            .p_unsafe(&exchanges)
            .map_err(Error::judge("judge"))
    }

    /// The attacks' outcomes (extras excluded).
    fn outcomes(&self, asked: &Asked, answers: &[(usize, String)], p_unsafe: &[f32]) -> Outcomes {
        let n_attacks = asked.attacks();
        let mut per_attack = vec![0f32; n_attacks];
        let mut counts = vec![0usize; n_attacks];
        let mut on_attacks = Vec::new();
        for ((i, _), &p) in answers.iter().zip(p_unsafe) {
            if asked.is_attack(*i) {
                per_attack[*i] += p;
                counts[*i] += 1;
                on_attacks.push(p);
            }
        }
        for (p, c) in per_attack.iter_mut().zip(&counts) {
            *p /= (*c).max(1) as f32;
        }
        let threshold = self.judge.threshold();
        let success_rate = mean(
            on_attacks
                .iter()
                .map(|&p| f32::from(u8::from(p >= threshold))),
        );
        Outcomes {
            per_attack,
            on_attacks,
            success_rate,
        }
    }

    /// The defender's reward of each answer ([`defender_reward`]): answers to the benign
    /// extras pay for complying when `defender.helpfulness` is above 0.
    fn defender_rewards(
        &self,
        answers: &[(usize, String)],
        asked: &Asked,
        p_unsafe: &[f32],
    ) -> Result<Vec<f32>> {
        let weight = self.cfg.defender.helpfulness;
        let mut complies = vec![None; answers.len()];
        let benign: Vec<usize> = (0..answers.len())
            .filter(|&k| asked.origins[answers[k].0] == Origin::ExtraBenign)
            .collect();
        if weight > 0.0 && !benign.is_empty() {
            let prompts: Vec<String> = benign
                .iter()
                .map(|&k| asked.texts[answers[k].0].clone())
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

    /// The attacker's part of the step: it updates on `rewards` when it learns this step.
    fn learn_attacker(
        &mut self,
        attack: Rollout,
        rewards: &[f32],
        times: &mut StepTimes,
    ) -> Result<PlayerStep> {
        let learned = self.learns(Role::Attacker);
        let stats = if learned {
            let attacker = &mut self.attacker;
            Some(timed(&mut times.attacker_update_s, || {
                attacker.learn(attack, rewards)
            })?)
        } else {
            None
        };
        Ok(PlayerStep {
            reward: mean(rewards.iter().copied()),
            learned,
            stats,
        })
    }

    /// The defender's part of the step: a local defender updates on `rewards` when it learns
    /// this step (a served one never learns: the config allows it only in `rlhf-attacker`).
    fn learn_defender(
        &mut self,
        rollout: Option<Rollout>,
        rewards: &[f32],
        times: &mut StepTimes,
    ) -> Result<PlayerStep> {
        let learned = self.learns(Role::Defender);
        let stats: Option<StepStats> = match (self.defender.local_mut(), rollout) {
            (Some(d), Some(rollout)) if learned => {
                Some(timed(&mut times.defender_update_s, || {
                    d.learn(rollout, rewards)
                })?)
            }
            _ => None,
        };
        Ok(PlayerStep {
            reward: mean(rewards.iter().copied()),
            learned,
            stats,
        })
    }

    /// Counts the step and moves the schedule (and the anchor, where it follows the iterate).
    fn finish_step(&mut self, step: u64, success_rate: f32) -> Result<()> {
        self.step = step;
        let new_stage = self.schedule.advance(&self.cfg.schedule, success_rate);
        if self.cfg.anchor == Anchor::PreviousIterate
            && (new_stage || self.cfg.schedule == crate::Schedule::Simultaneous)
        {
            self.anchor_here()?;
        }
        Ok(())
    }
}

/// The step's `samples.jsonl` lines; answers to extras carry no seed, reward or diversity.
fn sample_records(
    step: u64,
    asked: &Asked,
    answers: &[(usize, String)],
    p_unsafe: &[f32],
    attacker_rewards: &[f32],
    (sb, cos): (&[f32], &[f32]),
) -> Vec<SampleRecord> {
    answers
        .iter()
        .zip(p_unsafe)
        .map(|((i, r), &p)| {
            let i = *i;
            let attack = asked.is_attack(i);
            let of_attack = |v: &[f32]| if attack { v[i] } else { 0.0 };
            SampleRecord {
                step,
                seed: match &asked.origins[i] {
                    Origin::Attack { seed } => seed.clone(),
                    Origin::ExtraSeed | Origin::ExtraBenign => String::new(),
                },
                prompt: asked.texts[i].clone(),
                response: r.clone(),
                p_unsafe: p,
                attacker_reward: of_attack(attacker_rewards),
                self_bleu: of_attack(sb),
                embedding_similarity: of_attack(cos),
            }
        })
        .collect()
}

/// Runs `f` and stores its wall time in `slot` (seconds), so that timing stays out of the
/// step's logic.
fn timed<T>(slot: &mut f64, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let t = Instant::now();
    let out = f();
    *slot = t.elapsed().as_secs_f64();
    out
}
