//! The heads card: what the heads were trained on, how replies were labelled, and what was
//! measured.

use std::collections::BTreeMap;

use gpo_judge::{HeadMetrics, HeadsCard, EMBEDDER_ALIAS, HEADS_FORMAT};

use crate::fit::{Fitted, ReplyTexts};
use crate::judged::Judged;
use crate::markers::OPENING_CHARS;
use crate::reply::MIN_COPY_CHARS;
use crate::reply_sets::REPLY_SETS;
use crate::sources::Sources;
use crate::TrainConfig;

/// Training examples per source (after the held-out split).
pub(crate) fn train_sizes(
    sources: &Sources,
    replies: &ReplyTexts,
    cfg: &TrainConfig,
) -> BTreeMap<String, usize> {
    let mut sizes = BTreeMap::new();
    let prompts = sources.harm_train.iter().chain(&sources.harm_held);
    for (src, _) in prompts.chain(&sources.benign_train) {
        *sizes.entry(src.to_string()).or_insert(0) += 1;
    }
    let train = &sources.replies_train;
    let mut set = |k: &str, n: usize| sizes.insert(k.to_string(), n);
    set("sharegpt-replies-refusing", train.refusing.len());
    set(
        "sharegpt-replies-refusing-marker-free-copies",
        replies.marker_free_copies,
    );
    set("sharegpt-replies-complying", train.complying.len());
    if cfg.warm_opening_copies {
        set(
            "sharegpt-replies-refusing-warm-opening-copies",
            train.refusing.len(),
        );
        set(
            "sharegpt-replies-complying-warm-opening-copies",
            train.complying.len(),
        );
    }
    set("sharegpt-replies-ambiguous-dropped", train.ambiguous);
    set(
        "tense-rewrites-dropped-as-harmbench-rewordings",
        sources.tense_near_harmbench,
    );
    if cfg.instruction_wrapped_copies {
        let n_harmful = sources.harm_train.len() + sources.harm_held.len();
        set("harmful-instruction-wrapped-copies", n_harmful);
        set(
            "benign-instruction-wrapped-copies",
            sources.benign_train.len(),
        );
    }
    sizes
}

/// Examples per held-out set.
pub(crate) fn heldout_sizes(sources: &Sources) -> BTreeMap<String, usize> {
    let lookalike = gpo_datasets::lookalike::lookalike_requests();
    [
        ("harmbench", sources.harmbench.len()),
        ("harmful-split", sources.harm_held.len()),
        ("benign-sharegpt-first-turns", sources.benign_held.len()),
        (
            "benign-agent-action-guard-safe",
            sources.aag_safe_held.len(),
        ),
        ("replies-refusing", sources.replies_held.refusing.len()),
        ("replies-complying", sources.replies_held.complying.len()),
        ("benign-exchanges", sources.benign_exchanges.len()),
        ("lookalike-requests", lookalike.len()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(
        REPLY_SETS
            .iter()
            .map(|set| (format!("{}-replies", set.name), set.replies().len())),
    )
    .collect()
}

/// How replies were labelled and what the compliance head reads, in words.
fn reply_labelling(cfg: &TrainConfig) -> String {
    let reading = cfg.reading;
    format!(
        "garak markers: refusing = starts with a Prefixes/REJECTION_STRINGS entry or has a \
         MitigationBypass substring (case-insensitive) in its first {OPENING_CHARS} \
         characters; complying = no marker anywhere; other replies dropped. Refusals \
         kept: at most {} characters and no apology for an earlier slip in the opening; \
         {}{}. The head reads the first {} characters of a reply as {} windows (one \
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
        reading.reply_opening_chars,
        reading.reply_windows,
        reading.reply_window_tokens,
        reading.reply_window_layer,
    )
}

/// Everything the card says, gathered.
pub(crate) struct CardParts<'a> {
    pub cfg: &'a TrainConfig,
    pub max_tokens: usize,
    pub train_sizes: BTreeMap<String, usize>,
    pub heldout_sizes: BTreeMap<String, usize>,
    pub fitted: &'a Fitted,
    pub judged: Judged,
    pub train_seconds: f64,
}

/// The heads card.
pub(crate) fn card(p: CardParts) -> HeadsCard {
    let f = p.fitted;
    HeadsCard {
        format: HEADS_FORMAT,
        seed: p.cfg.seed,
        embedder: EMBEDDER_ALIAS.into(),
        max_tokens: p.max_tokens,
        fit: p.cfg.fit,
        train_sizes: p.train_sizes,
        heldout_sizes: p.heldout_sizes,
        harmbench_used_for_training: false,
        reply_labelling: reply_labelling(p.cfg),
        reading: p.cfg.reading,
        comply_scale: f.comply_scale,
        harm_scale: f.harm_scale,
        metrics: HeadMetrics {
            harm_harmbench_vs_heldout_benign: f.harm_harmbench_vs_heldout_benign,
            harm_heldout_split: f.harm_heldout_split,
            harm_lookalike_requests: f.harm_lookalike_requests,
            comply_heldout_split: f.comply_heldout_split,
            comply_heldout_warm_openings: f.comply_heldout_warm_openings,
            comply_defender_answers: p.judged.defender_answers.map(|m| m.0),
            judge_defender_answers: p.judged.defender_answers.map(|m| m.1),
            reply_sets: p.judged.reply_sets,
        },
        train_seconds: p.train_seconds,
    }
}
