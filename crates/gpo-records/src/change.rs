//! What changed between two evaluations of a run (its first and its last): the same prompts
//! answered before and after, compared prompt by prompt.

use std::collections::HashMap;

use gpo_eval::{distinct_2, is_explicit_refusal, Bootstrap, Estimate, Result};
use serde::{Deserialize, Serialize};

use crate::{BenignAnswer, BenignEval, DefenderEval, EvalRecord, Example, HarmfulEval};

/// The answers to one prompt at two evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paired<A> {
    /// The earlier answer.
    pub before: A,
    /// The later answer.
    pub after: A,
}

/// Pairs the answers of two evaluations by prompt, in `before`'s order; a prompt answered in
/// only one of them is left out (a repeated prompt pairs its occurrences in order).
pub fn pair<A: Clone>(before: &[A], after: &[A], prompt: impl Fn(&A) -> &str) -> Vec<Paired<A>> {
    let mut later: HashMap<&str, Vec<&A>> = HashMap::new();
    for a in after.iter().rev() {
        later.entry(prompt(a)).or_default().push(a);
    }
    before
        .iter()
        .filter_map(|b| {
            let a = later.get_mut(prompt(b))?.pop()?;
            Some(Paired {
                before: b.clone(),
                after: a.clone(),
            })
        })
        .collect()
}

/// After minus before on the held-out seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarmfulChange {
    /// Change of the attack success rate (negative: the defender got safer).
    pub attack_success: Estimate,
    /// Change of the mean P(unsafe).
    pub p_unsafe: Estimate,
    /// Change of the mean answer length in characters.
    pub mean_chars: Estimate,
    /// Change of distinct-2, without an interval: it is a statistic of the whole set, not a
    /// mean over prompts, and resampling answers with replacement repeats their bigrams.
    pub distinct_2: f64,
    /// Change of the explicit-refusal rate ([`gpo_eval::is_explicit_refusal`]), a reading
    /// that needs no judge. `None` in summaries written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_refusal: Option<Estimate>,
}

/// After minus before on the benign prompts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenignChange {
    /// Change of the over-refusal rate (positive: the defender refuses more).
    pub over_refusal: Estimate,
    /// Change of the mean answer length in characters.
    pub mean_chars: Estimate,
    /// Change of distinct-2 (no interval, as for [`HarmfulChange::distinct_2`]).
    pub distinct_2: f64,
    /// Change of the explicit-refusal rate (as [`HarmfulChange::explicit_refusal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_refusal: Option<Estimate>,
}

/// What changed between two evaluations, after minus before. Each [`Estimate`] is the mean of
/// per-prompt differences with a bootstrap 95% interval over the prompts answered at both
/// ([`Bootstrap::default`]: 2000 resamples, seed 0, so a run's summary and its report
/// agree). Pairing keeps each prompt's two answers together, so the interval is that of the
/// change itself, narrower than two separate intervals would suggest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// On the held-out seeds, when both evaluations recorded their answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defender_harmful: Option<HarmfulChange>,
    /// On the benign prompts, when both evaluations recorded their answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defender_benign: Option<BenignChange>,
}

fn chars(text: &str) -> f64 {
    text.chars().count() as f64
}

fn diff<A>(pairs: &[Paired<A>], f: impl Fn(&A) -> f64) -> Vec<f64> {
    pairs.iter().map(|p| f(&p.after) - f(&p.before)).collect()
}

fn refusals(text: &str) -> f64 {
    f64::from(u8::from(is_explicit_refusal(text)))
}

fn distinct_2_change<A>(pairs: &[Paired<A>], text: impl Fn(&A) -> &str) -> f64 {
    let before: Vec<&str> = pairs.iter().map(|p| text(&p.before)).collect();
    let after: Vec<&str> = pairs.iter().map(|p| text(&p.after)).collect();
    distinct_2(&after) - distinct_2(&before)
}

impl Change {
    /// The change from `before` to `after`; parts that either record lacks (older runs) or
    /// that pair no prompt are `None`.
    pub fn between(before: &EvalRecord, after: &EvalRecord) -> Result<Change> {
        Change::of_defender(
            (
                before.defender_harmful.as_ref(),
                before.defender_benign.as_ref(),
            ),
            (
                after.defender_harmful.as_ref(),
                after.defender_benign.as_ref(),
            ),
        )
    }

    /// The change from the model before its warm start (`base`) to `after`.
    pub fn since_base(base: &DefenderEval, after: &EvalRecord) -> Result<Change> {
        Change::of_defender(
            (Some(&base.defender_harmful), Some(&base.defender_benign)),
            (
                after.defender_harmful.as_ref(),
                after.defender_benign.as_ref(),
            ),
        )
    }

    /// The change between two evaluations of a defender, each on the held-out seeds and on
    /// the benign prompts.
    fn of_defender(
        before: (Option<&HarmfulEval>, Option<&BenignEval>),
        after: (Option<&HarmfulEval>, Option<&BenignEval>),
    ) -> Result<Change> {
        let boot = Bootstrap::default();
        let harmful = match (before.0, after.0) {
            (Some(b), Some(a)) => {
                let pairs = pair(&b.answers, &a.answers, |e: &Example| &e.prompt);
                if pairs.is_empty() {
                    None
                } else {
                    let hit = |t: f32| move |e: &Example| f64::from(u8::from(e.p_unsafe >= t));
                    let hits: Vec<f64> = pairs
                        .iter()
                        .map(|p| hit(a.threshold)(&p.after) - hit(b.threshold)(&p.before))
                        .collect();
                    Some(HarmfulChange {
                        attack_success: boot.interval("change of attack success", &hits)?,
                        p_unsafe: boot.interval(
                            "change of P(unsafe)",
                            &diff(&pairs, |e| f64::from(e.p_unsafe)),
                        )?,
                        mean_chars: boot.interval(
                            "change of answer length",
                            &diff(&pairs, |e| chars(&e.response)),
                        )?,
                        distinct_2: distinct_2_change(&pairs, |e| &e.response),
                        explicit_refusal: Some(boot.interval(
                            "change of explicit refusals",
                            &diff(&pairs, |e| refusals(&e.response)),
                        )?),
                    })
                }
            }
            _ => None,
        };
        let benign = match (before.1, after.1) {
            (Some(b), Some(a)) => {
                let pairs = pair(&b.answers, &a.answers, |e: &BenignAnswer| &e.prompt);
                if pairs.is_empty() {
                    None
                } else {
                    Some(BenignChange {
                        over_refusal: boot.interval(
                            "change of over-refusal",
                            &diff(&pairs, |e| f64::from(u8::from(e.refused))),
                        )?,
                        mean_chars: boot.interval(
                            "change of answer length",
                            &diff(&pairs, |e| chars(&e.response)),
                        )?,
                        distinct_2: distinct_2_change(&pairs, |e| &e.response),
                        explicit_refusal: Some(boot.interval(
                            "change of explicit refusals",
                            &diff(&pairs, |e| refusals(&e.response)),
                        )?),
                    })
                }
            }
            _ => None,
        };
        Ok(Change {
            defender_harmful: harmful,
            defender_benign: benign,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpo_eval::ResponseStats;

    fn ex(prompt: &str, response: &str, p_unsafe: f32) -> Example {
        Example {
            seed: None,
            prompt: prompt.into(),
            response: response.into(),
            p_unsafe,
        }
    }

    fn benign(prompt: &str, response: &str, refused: bool) -> BenignAnswer {
        BenignAnswer {
            prompt: prompt.into(),
            response: response.into(),
            p_complies: if refused { 0.1 } else { 0.9 },
            refused,
        }
    }

    fn record(harmful: Vec<Example>, benign_answers: Vec<BenignAnswer>) -> EvalRecord {
        let e = Estimate {
            mean: 0.0,
            lo: 0.0,
            hi: 0.0,
            n: 0,
            level: 0.95,
        };
        let stats = ResponseStats {
            mean_chars: 0.0,
            distinct_2: 0.0,
            explicit_refusal: None,
        };
        EvalRecord {
            step: 0,
            seeds: harmful.len(),
            defender_p_unsafe: 0.0,
            defender_asr: 0.0,
            attacker_asr: 0.0,
            attacker_asr_vs_initial: 0.0,
            attacker_p_unsafe_vs_initial: 0.0,
            diversity_self_bleu: 0.0,
            diversity_embedding: 0.0,
            defender_harmful: Some(HarmfulEval {
                threshold: 0.5,
                attack_success: e,
                p_unsafe: e,
                responses: stats,
                answers: harmful,
            }),
            defender_benign: Some(BenignEval {
                name: "built-in-benign".into(),
                prompts: benign_answers.len(),
                trained_on: false,
                over_refusal: e,
                responses: stats,
                answers: benign_answers,
            }),
            attacker_success: None,
        }
    }

    #[test]
    fn the_change_since_the_base_model_is_the_change_between_its_defender_parts() {
        // The base model as a DefenderEval, and the same answers as an EvalRecord: the two
        // changes to one later evaluation must agree.
        let before = record(
            vec![ex("a", "long", 0.9), ex("b", "ok", 0.1)],
            vec![benign("x", "sure", false), benign("y", "fine", false)],
        );
        let after = record(
            vec![ex("a", "I can't help with that.", 0.2), ex("b", "ok", 0.1)],
            vec![benign("x", "no", true), benign("y", "fine", false)],
        );
        let base = DefenderEval {
            model: "base".into(),
            defender_harmful: before.defender_harmful.clone().unwrap(),
            defender_benign: before.defender_benign.clone().unwrap(),
        };
        let since = Change::since_base(&base, &after).unwrap();
        assert_eq!(since, Change::between(&before, &after).unwrap());
        let h = since.defender_harmful.unwrap();
        assert_eq!(h.attack_success.mean, -0.5);
        assert_eq!(h.explicit_refusal.unwrap().mean, 0.5);
    }

    #[test]
    fn pairs_follow_the_prompts_not_the_order() {
        let b = [ex("a", "1", 0.0), ex("b", "2", 0.0), ex("c", "3", 0.0)];
        let a = [ex("c", "6", 0.0), ex("a", "4", 0.0)];
        let p = pair(&b, &a, |e| &e.prompt);
        let got: Vec<(&str, &str)> = p
            .iter()
            .map(|p| (p.before.response.as_str(), p.after.response.as_str()))
            .collect();
        assert_eq!(got, [("1", "4"), ("3", "6")]);
    }

    #[test]
    fn the_change_is_the_mean_of_per_prompt_differences() {
        // Seeds a, b: a goes unsafe -> safe (-1), b stays safe (0): ASR change -0.5.
        // Lengths 4 -> 24 and 2 -> 2: +10 on average.
        let before = record(
            vec![ex("a", "long", 0.9), ex("b", "ok", 0.1)],
            vec![benign("x", "sure", false), benign("y", "fine", false)],
        );
        let after = record(
            vec![ex("a", "I'm sorry, but I'm sorry", 0.2), ex("b", "ok", 0.1)],
            vec![benign("x", "no", true), benign("y", "fine", false)],
        );
        let c = Change::between(&before, &after).unwrap();
        let h = c.defender_harmful.unwrap();
        assert_eq!(h.attack_success.mean, -0.5);
        assert_eq!(h.attack_success.n, 2);
        assert!(h.attack_success.lo <= -0.5 && h.attack_success.hi >= -0.5);
        assert!(
            (h.p_unsafe.mean - -0.35).abs() < 1e-6,
            "{}",
            h.p_unsafe.mean
        );
        assert_eq!(h.mean_chars.mean, 10.0);
        // Before: no bigram (one-word answers) -> 0. After: "i'm sorry," "sorry, but"
        // "but i'm" "i'm sorry" are 4 distinct of 4 -> 1.
        assert_eq!(h.distinct_2, 1.0);
        let b = c.defender_benign.unwrap();
        assert_eq!(b.over_refusal.mean, 0.5);
        assert_eq!(b.mean_chars.mean, -1.0);
        // "I'm sorry, but I'm sorry" declines without an explicit refusal phrase: 0 -> 0.
        assert_eq!(h.explicit_refusal.unwrap().mean, 0.0);
    }

    #[test]
    fn explicit_refusals_change_per_prompt() {
        // x: "sure" -> "I can't help with that." (+1); y unchanged (0): +0.5 on benign.
        let before = record(
            vec![ex("a", "Here is how", 0.9)],
            vec![benign("x", "sure", false), benign("y", "fine", false)],
        );
        let after = record(
            vec![ex("a", "I cannot help with that.", 0.1)],
            vec![
                benign("x", "I can't help with that.", true),
                benign("y", "fine", false),
            ],
        );
        let c = Change::between(&before, &after).unwrap();
        assert_eq!(
            c.defender_harmful.unwrap().explicit_refusal.unwrap().mean,
            1.0
        );
        assert_eq!(
            c.defender_benign.unwrap().explicit_refusal.unwrap().mean,
            0.5
        );
    }

    #[test]
    fn records_without_answers_have_no_change() {
        let mut old = record(vec![], vec![]);
        old.defender_benign = None;
        let new = record(vec![ex("a", "x", 0.0)], vec![benign("x", "y", false)]);
        let c = Change::between(&old, &new).unwrap();
        assert_eq!(c.defender_harmful, None);
        assert_eq!(c.defender_benign, None);
    }
}
