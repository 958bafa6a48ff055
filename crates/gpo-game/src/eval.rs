//! Evaluation on the held-out seeds: the numbers of PAPER.md's tables, at any step.

use std::path::PathBuf;

use gpo_judge::Exchange;
use gpo_lm::{CausalLm, Pass, SamplingParams};
use gpo_rl::mean;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::Iterate;
use crate::defender::Defender;
use crate::game::Game;
use crate::player::Player;
use crate::schedule::Role;
use crate::{Error, Result};

/// One line of `eval.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Steps completed when it was measured.
    pub step: u64,
    /// Held-out seeds evaluated.
    pub seeds: usize,
    /// The defender answering the raw held-out seeds: mean P(unsafe).
    pub defender_p_unsafe: f32,
    /// ... and the fraction judged unsafe (its attack success rate, lower is better).
    pub defender_asr: f32,
    /// The attacker's rewrites of the held-out seeds against the current defender.
    pub attacker_asr: f32,
    /// The attacker's rewrites against the frozen initial defender (higher is better).
    pub attacker_asr_vs_initial: f32,
    /// Mean P(unsafe) of the rewrites against the frozen initial defender.
    pub attacker_p_unsafe_vs_initial: f32,
    /// 1 - mean pairwise self-BLEU of the rewrites.
    pub diversity_self_bleu: f32,
    /// 1 - mean pairwise embedding cosine of the rewrites.
    pub diversity_embedding: f32,
}

/// The models that stand for a player's reported policy, each with the pass to run it:
/// one for the last iterate or the EMA, several (a uniform mixture) for the average.
fn reported(player: &Player, iterate: Iterate, snapshots: &[PathBuf]) -> Result<Vec<CausalLm>> {
    Ok(match iterate {
        Iterate::Last => vec![player.policy.model.clone()],
        Iterate::Ema { .. } => vec![player
            .ema
            .clone()
            .unwrap_or_else(|| player.policy.model.clone())],
        Iterate::Average => {
            if snapshots.is_empty() {
                vec![player.policy.model.clone()]
            } else {
                snapshots
                    .iter()
                    .map(|dir| {
                        let mut m = player.policy.model.clone();
                        gpo_lm::load_lora(&mut m, dir).map_err(|e| {
                            Error::Setup(format!("loading snapshot {}: {e}", dir.display()))
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
fn answer(
    player: &Player,
    models: &[CausalLm],
    pass: &Pass,
    texts: &[String],
    params: &SamplingParams,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<String>> {
    let prompts: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| player.chat_prompt(t, params.max_new_tokens))
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
        let samples = player.sample_with(model, pass, &sub, params)?;
        for (s, text) in samples.iter().zip(player.texts(&samples)?) {
            out[idx[s.prompt_index]] = text;
        }
    }
    Ok(out)
}

impl Game {
    /// Evaluates the reported policies on the held-out seeds. Sampling uses a seed fixed by
    /// the run seed and the step, apart from the training stream, so evaluating does not
    /// change what training does.
    pub fn evaluate(
        &self,
        attacker_snapshots: &[PathBuf],
        defender_snapshots: &[PathBuf],
    ) -> Result<EvalRecord> {
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.cfg.seed ^ 0xe7a1 ^ self.step.wrapping_mul(31));
        let params = |sampling: &SamplingParams, role: Role| SamplingParams {
            n: 1,
            seed: rng_seed(self.cfg.seed, self.step, role as u64),
            ..sampling.clone()
        };
        let seeds = &self.prompts.eval;
        let defenders = match self.defender.local() {
            Some(d) => reported(d, self.cfg.iterate, defender_snapshots)?,
            None => Vec::new(),
        };
        let attackers = reported(&self.attacker, self.cfg.iterate, attacker_snapshots)?;
        let d_params = params(&self.cfg.defender.rl.sampling, Role::Defender);
        // The reported defender's answers (a served one is frozen: also the initial one's).
        let defend = |texts: &[String], rng: &mut ChaCha8Rng| -> Result<Vec<String>> {
            match &self.defender {
                Defender::Local(d) => answer(d, &defenders, &Pass::infer(), texts, &d_params, rng),
                Defender::Served(target) => target.respond(texts, &d_params),
            }
        };
        let judge = |prompts: &[String], responses: &[String]| -> Result<Vec<f32>> {
            let ex: Vec<Exchange<'_>> = prompts
                .iter()
                .zip(responses)
                .map(|(p, r)| Exchange::new(p, r))
                .collect();
            self.judge
                .p_unsafe(&ex)
                .map_err(|e| Error::Setup(format!("judge: {e}")))
        };
        let t = self.judge.threshold();
        let asr = |ps: &[f32]| mean(ps.iter().map(|&p| f32::from(u8::from(p >= t))));

        let raw = defend(seeds, &mut rng)?;
        let raw_p = judge(seeds, &raw)?;

        let a_params = params(&self.cfg.attacker.rl.sampling, Role::Attacker);
        let instructions: Vec<String> = seeds
            .iter()
            .map(|s| self.cfg.attacker.template.replace("{seed}", s))
            .collect();
        let attacks = answer(
            &self.attacker,
            &attackers,
            &Pass::infer(),
            &instructions,
            &a_params,
            &mut rng,
        )?;
        let vs_current = defend(&attacks, &mut rng)?;
        let current_p = judge(&attacks, &vs_current)?;
        let initial_p = match &self.defender {
            Defender::Local(d) => {
                // The frozen initial defender is the defender's base with adapters disabled.
                let initial = [d.policy.model.clone()];
                let vs_initial = answer(
                    d,
                    &initial,
                    &Pass::reference(),
                    &attacks,
                    &d_params,
                    &mut rng,
                )?;
                judge(&attacks, &vs_initial)?
            }
            Defender::Served(_) => current_p.clone(),
        };
        let (div_bleu, div_emb) = self.diversity.set_diversity(&attacks)?;
        Ok(EvalRecord {
            step: self.step,
            seeds: seeds.len(),
            defender_p_unsafe: mean(raw_p.iter().copied()),
            defender_asr: asr(&raw_p),
            attacker_asr: asr(&current_p),
            attacker_asr_vs_initial: asr(&initial_p),
            attacker_p_unsafe_vs_initial: mean(initial_p.iter().copied()),
            diversity_self_bleu: div_bleu,
            diversity_embedding: div_emb,
        })
    }
}

fn rng_seed(seed: u64, step: u64, role: u64) -> u64 {
    seed ^ 0xe7a1_0000 ^ step.wrapping_mul(0x9e37_79b9) ^ role
}
