//! `gpo eval`: a defender or an attacker measured on held-out prompts, every rate with a
//! bootstrap 95% interval (the paper's tables: defender ASR; attacker ASR and diversity).
//!
//! Each prompt is answered `samples` times; intervals resample prompts with all their
//! samples (a cluster bootstrap), so several samples refine a prompt's rate without
//! pretending to be more prompts.

mod judges;
mod sampling;

use gpo_eval::{over_refusal, Bootstrap, Estimate, ResponseStats};
use gpo_lm::SamplingParams;
pub use gpo_records::Example;
use serde::{Deserialize, Serialize};

use crate::chat_policy::ChatPolicy;
use crate::diversity::Diversity;
use crate::{Error, Result};
pub(crate) use judges::p_unsafe;
pub use judges::{JudgedRates, Judges};
use sampling::{answer, derive_seed, Answers, BENIGN_SET};

/// The set name of the harmful answers in [`DefenderReport::answers`].
pub const HARMFUL_SET: &str = "harmful";
/// Exchanges kept as examples in a report.
const EXAMPLES: usize = 3;

/// What every evaluation shares: the judges, responses per prompt and the bootstrap.
pub struct EvalContext<'a> {
    /// The judges the rates are read with.
    pub judges: &'a Judges,
    /// Responses sampled per prompt (at least 1).
    pub samples: usize,
    /// The bootstrap of every interval.
    pub boot: &'a Bootstrap,
}

impl EvalContext<'_> {
    fn check(&self) -> Result<()> {
        if self.samples == 0 {
            return Err(Error::Config(
                "samples per prompt must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The main judge's rates on `a` with its scores, and the second judge's rates.
    fn rate(&self, a: &Answers) -> Result<(JudgedRates, Vec<f32>, Option<JudgedRates>)> {
        let judge = self.judges.main();
        let ps = p_unsafe(judge.1, &a.prompts, &a.responses)?;
        let rates = JudgedRates::of(judge, &ps, self.samples, self.boot)?;
        let second = match self.judges.second() {
            Some(j) => {
                let ps = p_unsafe(j.1, &a.prompts, &a.responses)?;
                Some(JudgedRates::of(j, &ps, self.samples, self.boot)?)
            }
            None => None,
        };
        Ok((rates, ps, second))
    }

    /// The first few prompts' first samples, with their scores.
    fn examples(&self, a: &Answers, ps: &[f32], seeds: Option<&[String]>) -> Vec<Example> {
        let prompts = a.prompts.len() / self.samples;
        (0..prompts.min(EXAMPLES))
            .map(|i| {
                let k = i * self.samples;
                Example {
                    seed: seeds.map(|s| s[i].clone()),
                    prompt: a.prompts[k].clone(),
                    response: a.responses[k].clone(),
                    p_unsafe: ps[k],
                }
            })
            .collect()
    }
}

/// A named set of prompts (a `--benign` set).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedPrompts {
    /// The name it was asked for by (a set name or a file).
    pub name: String,
    /// Its prompts.
    pub prompts: Vec<String>,
}

/// Over-refusal on one benign set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenignRates {
    /// The set, as named on the command line.
    pub name: String,
    /// Prompts answered.
    pub prompts: usize,
    /// Fraction of answers that refuse (by the compliance head; lower is better).
    pub over_refusal: Estimate,
    /// Length and distinct-2 of the answers.
    pub responses: ResponseStats,
}

/// `gpo eval defender`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefenderReport {
    /// The defender evaluated.
    pub defender: String,
    /// Harmful prompts answered.
    pub prompts: usize,
    /// Responses sampled per prompt (harmful and benign).
    pub samples: usize,
    /// The judge's verdicts on them (attack success rate: lower is better).
    pub harmful: JudgedRates,
    /// The second judge's verdicts on the same responses, when one is named.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub second_judge: Option<JudgedRates>,
    /// Length and distinct-2 of the responses to the harmful prompts.
    pub harmful_responses: ResponseStats,
    /// Prompts of the first benign set.
    pub benign_prompts: usize,
    /// The first benign set's over-refusal (as in `benign_sets[0]`).
    pub over_refusal: Estimate,
    /// Over-refusal on each benign set, in the order given.
    pub benign_sets: Vec<BenignRates>,
    /// The first few harmful exchanges.
    pub examples: Vec<Example>,
    /// Every answer with its reading, harmful set first (`gpo eval --responses`); not part
    /// of the report's JSON.
    #[serde(skip)]
    pub answers: Vec<ScoredAnswer>,
}

/// One answer of a defender evaluation with what the judges read in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredAnswer {
    /// The prompt set: `harmful`, or the `--benign` set's name.
    pub set: String,
    /// The prompt.
    pub prompt: String,
    /// Which of the prompt's samples (0-based).
    pub sample: usize,
    /// The defender's response.
    pub response: String,
    /// The main judge's P(unsafe) (harmful prompts).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub p_unsafe: Option<f32>,
    /// Whether the compliance head reads it as declining (benign prompts: an over-refusal).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refused: Option<bool>,
}

impl ScoredAnswer {
    fn of(set: &str, a: &Answers, samples: usize, i: usize) -> ScoredAnswer {
        ScoredAnswer {
            set: set.to_string(),
            prompt: a.prompts[i].clone(),
            sample: i % samples,
            response: a.responses[i].clone(),
            p_unsafe: None,
            refused: None,
        }
    }
}

/// Evaluates `defender` on `harmful` prompts (attack success, mean P(unsafe)) and on each
/// `benign` set (over-refusal). `params.seed` fixes the samples; benign set `s` is
/// sampled from its own seed stream.
pub fn evaluate_defender(
    defender: &ChatPolicy,
    harmful: &[String],
    benign: &[NamedPrompts],
    params: &SamplingParams,
    ctx: &EvalContext,
) -> Result<DefenderReport> {
    ctx.check()?;
    if benign.is_empty() {
        return Err(Error::Data(
            "a defender evaluation needs a benign set".into(),
        ));
    }
    let answers = answer(defender, harmful, params, ctx.samples)?;
    let (rates, ps, second_judge) = ctx.rate(&answers)?;
    let benign_sets = benign
        .iter()
        .enumerate()
        .map(|(s, set)| {
            let seed = derive_seed(crate::seed_streams::eval_benign(params.seed), BENIGN_SET, s);
            let params = SamplingParams {
                seed,
                ..params.clone()
            };
            benign_rates(defender, set, &params, ctx)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut scored: Vec<ScoredAnswer> = (0..answers.prompts.len())
        .map(|i| ScoredAnswer {
            p_unsafe: Some(ps[i]),
            ..ScoredAnswer::of(HARMFUL_SET, &answers, ctx.samples, i)
        })
        .collect();
    let (benign_sets, benign_answers): (Vec<_>, Vec<_>) = benign_sets.into_iter().unzip();
    scored.extend(benign_answers.into_iter().flatten());
    Ok(DefenderReport {
        defender: defender.name.clone(),
        prompts: harmful.len(),
        samples: ctx.samples,
        harmful: rates,
        second_judge,
        harmful_responses: ResponseStats::of(&answers.responses),
        benign_prompts: benign_sets[0].prompts,
        over_refusal: benign_sets[0].over_refusal,
        examples: ctx.examples(&answers, &ps, None),
        benign_sets,
        answers: scored,
    })
}

/// One benign set's rates, and its answers with their readings.
fn benign_rates(
    defender: &ChatPolicy,
    set: &NamedPrompts,
    params: &SamplingParams,
    ctx: &EvalContext,
) -> Result<(BenignRates, Vec<ScoredAnswer>)> {
    let a = answer(defender, &set.prompts, params, ctx.samples)?;
    let refused = ctx.judges.refusals(&a.prompts, &a.responses)?;
    let rates = BenignRates {
        name: set.name.clone(),
        prompts: set.prompts.len(),
        over_refusal: over_refusal(&refused, ctx.samples, ctx.boot)?,
        responses: ResponseStats::of(&a.responses),
    };
    let scored = refused
        .iter()
        .enumerate()
        .map(|(i, &r)| ScoredAnswer {
            refused: Some(r),
            ..ScoredAnswer::of(&set.name, &a, ctx.samples, i)
        })
        .collect();
    Ok((rates, scored))
}

/// One target of an attacker evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetRates {
    /// The target defender.
    pub target: String,
    /// The judge's verdicts on its responses to the attacker's prompts (higher: the
    /// attacker is stronger).
    pub rates: JudgedRates,
    /// The second judge's, when one is named.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub second_judge: Option<JudgedRates>,
}

/// `gpo eval attacker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackerReport {
    /// The attacker evaluated.
    pub attacker: String,
    /// Held-out seeds rewritten (one prompt each).
    pub seeds: usize,
    /// Responses each target samples per prompt.
    pub samples: usize,
    /// Attack success against each target.
    pub targets: Vec<TargetRates>,
    /// 1 - mean SelfBLEU of each prompt against the others (higher: more diverse).
    pub diversity_self_bleu: Estimate,
    /// 1 - mean cosine of each prompt's embedding with the others'.
    pub diversity_embedding: Estimate,
    /// The first few seeds, their rewrites and the first target's responses.
    pub examples: Vec<Example>,
}

/// The players of an attacker evaluation and how each samples.
pub struct AttackSetup<'a> {
    /// The attacker.
    pub attacker: &'a ChatPolicy,
    /// Its instruction template (`{seed}` marks where the seed goes).
    pub template: &'a str,
    /// Its sampling settings.
    pub attacker_params: SamplingParams,
    /// The defenders it plays against.
    pub targets: &'a [ChatPolicy],
    /// Their sampling settings (the same seed for every target).
    pub target_params: SamplingParams,
}

/// Evaluates an attacker: it rewrites each held-out seed once, every target answers every
/// rewrite `ctx.samples` times, and the rewrites' diversity is measured.
pub fn evaluate_attacker(
    setup: &AttackSetup,
    seeds: &[String],
    diversity: &Diversity,
    ctx: &EvalContext,
) -> Result<AttackerReport> {
    ctx.check()?;
    if seeds.len() < 2 {
        return Err(Error::Data(format!(
            "an attacker evaluation needs at least 2 seeds (diversity compares prompts), got {}",
            seeds.len()
        )));
    }
    let instructions: Vec<String> = seeds
        .iter()
        .map(|s| setup.template.replace("{seed}", s))
        .collect();
    let attacks = setup
        .attacker
        .respond(&instructions, &setup.attacker_params)?;
    let mut rows = Vec::with_capacity(setup.targets.len());
    let mut examples = Vec::new();
    for (t, target) in setup.targets.iter().enumerate() {
        let answers = answer(target, &attacks, &setup.target_params, ctx.samples)?;
        let (rates, ps, second_judge) = ctx.rate(&answers)?;
        if t == 0 {
            examples = ctx.examples(&answers, &ps, Some(seeds));
        }
        rows.push(TargetRates {
            target: target.name.clone(),
            rates,
            second_judge,
        });
    }
    let (bleu, emb) = diversity.pair_diversity(&attacks)?;
    let (n, boot) = (attacks.len(), ctx.boot);
    Ok(AttackerReport {
        attacker: setup.attacker.name.clone(),
        seeds: seeds.len(),
        samples: ctx.samples,
        targets: rows,
        diversity_self_bleu: boot.pair_interval("diversity (self-BLEU)", n, &bleu)?,
        diversity_embedding: boot.pair_interval("diversity (embedding)", n, &emb)?,
        examples,
    })
}
