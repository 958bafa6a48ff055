//! Fitting the two heads on the embedded training data, and measuring them on held-out data.

use gpo_embed::SentenceEmbedder;
use gpo_judge::features::{features, prompt_width, Reading};
use gpo_judge::logistic::{LogisticHead, Metrics};
use gpo_judge::Heads;
use rand_chacha::ChaCha8Rng;

use crate::decontaminate::as_strs;
use crate::reply::{with_warm_openings, HELDOUT_WARM_OPENINGS, WARM_OPENINGS};
use crate::sources::{Sources, Tagged};
use crate::wrapped::wrapped_copies;
use crate::{Result, TrainConfig};

/// The heads' features of texts.
pub(crate) struct Reader<'a> {
    pub embedder: &'a SentenceEmbedder,
    pub reading: Reading,
}

impl Reader<'_> {
    /// Prompt features, [`prompt_width`] per prompt.
    pub fn prompts(&self, texts: &[&str]) -> Result<Vec<f32>> {
        Ok(features(self.embedder, texts, &[], self.reading)?.prompts)
    }

    /// Reply features (each reply cut to its opening), one bag of windows per reply.
    pub fn replies(&self, texts: &[&str]) -> Result<Vec<f32>> {
        Ok(features(self.embedder, &[], texts, self.reading)?.replies)
    }

    fn dim(&self) -> usize {
        self.embedder.dim()
    }
}

/// The compliance head's training replies.
pub(crate) struct ReplyTexts {
    pub refusing: Vec<String>,
    pub complying: Vec<String>,
    /// Refusals' openings with their marker sentences deleted, among `refusing`.
    pub marker_free_copies: usize,
}

/// The training replies: refusals' openings (and marker-free copies), complying replies, and
/// with `warm_opening_copies` each of both with a warm first sentence in front, so that an
/// opening's register carries no label.
pub(crate) fn reply_texts(sources: &Sources, cfg: &TrainConfig) -> ReplyTexts {
    let train = &sources.replies_train;
    let mut refusing = cfg
        .reply_policy()
        .refusal_texts(&train.refusing, &sources.markers);
    let marker_free_copies = refusing.len() - train.refusing.len();
    let mut complying = train.complying.clone();
    if cfg.warm_opening_copies {
        let openings = refusing[..train.refusing.len()].to_vec();
        refusing.extend(with_warm_openings(&openings, WARM_OPENINGS));
        complying.extend(with_warm_openings(&train.complying, WARM_OPENINGS));
    }
    ReplyTexts {
        refusing,
        complying,
        marker_free_copies,
    }
}

/// The heads as they ship (temperature-scaled) and what was measured on held-out data.
pub(crate) struct Fitted {
    pub heads: Heads,
    pub harm_scale: f32,
    pub comply_scale: f32,
    pub harm_harmbench_vs_heldout_benign: Metrics,
    pub harm_heldout_split: Metrics,
    pub harm_lookalike_requests: Metrics,
    pub comply_heldout_split: Metrics,
    pub comply_heldout_warm_openings: Metrics,
    /// HarmBench's prompt features (the whole-judge measurements read them again).
    pub harmbench_features: Vec<f32>,
}

/// The harm head's training rows: harmful requests (the training part, then the held-out
/// part) and benign prompts, each with instruction-wrapped copies when configured.
struct PromptRows {
    /// The training part's rows and its wrapped copies: what the head refit without the
    /// held-out split trains on.
    harm_split: Vec<f32>,
    /// The held-out split's rows (without copies).
    harm_held: Vec<f32>,
    /// Every harmful row.
    harm: Vec<f32>,
    benign: Vec<f32>,
}

fn prompt_rows(
    reader: &Reader,
    sources: &Sources,
    cfg: &TrainConfig,
    rng: &mut ChaCha8Rng,
) -> Result<PromptRows> {
    // Instruction-wrapped copies (format 8), of the harmful requests' training part and
    // held-out fifth separately: the split measurement refits without any trace of its split.
    let mut wrap = |v: &Tagged| -> Result<Vec<f32>> {
        if cfg.instruction_wrapped_copies {
            reader.prompts(&as_strs(&wrapped_copies(&strs(v), rng)))
        } else {
            Ok(Vec::new())
        }
    };
    let (w_split, w_held, w_benign) = (
        wrap(&sources.harm_train)?,
        wrap(&sources.harm_held)?,
        wrap(&sources.benign_train)?,
    );
    let harm_split = [reader.prompts(&strs(&sources.harm_train))?, w_split].concat();
    let harm_held = reader.prompts(&strs(&sources.harm_held))?;
    let harm = [
        harm_split.as_slice(),
        harm_held.as_slice(),
        w_held.as_slice(),
    ]
    .concat();
    let benign = [reader.prompts(&strs(&sources.benign_train))?, w_benign].concat();
    Ok(PromptRows {
        harm_split,
        harm_held,
        harm,
        benign,
    })
}

/// Embeds the training data, fits both heads, sets their temperatures and measures them.
pub(crate) fn fit_heads(
    reader: &Reader,
    sources: &Sources,
    replies: &ReplyTexts,
    cfg: &TrainConfig,
    rng: &mut ChaCha8Rng,
    progress: &dyn Fn(&str),
) -> Result<Fitted> {
    let (width, dim, bag) = (
        prompt_width(reader.dim()),
        reader.dim(),
        reader.reading.windows(),
    );
    progress(&format!(
        "embedding {} harmful and {} benign training prompts{}",
        sources.harm_train.len() + sources.harm_held.len(),
        sources.benign_train.len(),
        if cfg.instruction_wrapped_copies {
            ", each also wrapped in an instruction template"
        } else {
            ""
        }
    ));
    let rows = prompt_rows(reader, sources, cfg, rng)?;
    progress(&format!(
        "embedding {} refusing and {} complying training replies (openings of {} characters)",
        replies.refusing.len(),
        replies.complying.len(),
        reader.reading.reply_opening_chars
    ));
    let x_ref = reader.replies(&as_strs(&replies.refusing))?;
    let x_comp = reader.replies(&as_strs(&replies.complying))?;

    progress("fitting the heads");
    let (x, y) = labelled(&rows.harm, &rows.benign, width);
    let harm = LogisticHead::fit(&x, &y, width, &cfg.fit);
    let (x, y) = labelled(&x_comp, &x_ref, bag * dim);
    let comply = LogisticHead::fit_bags(&x, &y, dim, bag, &cfg.fit);

    progress(
        "evaluating on held-out data (HarmBench, look-alike requests, held-out ShareGPT, \
         hand-written replies)",
    );
    measure_heldout(reader, sources, cfg, &rows, harm, comply)
}

/// The held-out measurements of both heads, and their temperatures (set on held-out splits).
fn measure_heldout(
    reader: &Reader,
    sources: &Sources,
    cfg: &TrainConfig,
    rows: &PromptRows,
    harm: LogisticHead,
    comply: LogisticHead,
) -> Result<Fitted> {
    let (width, bag) = (prompt_width(reader.dim()), reader.reading.windows());
    let e_hb = reader.prompts(&as_strs(&sources.harmbench))?;
    let mut benign_held_all = sources.benign_held.clone();
    benign_held_all.extend(sources.aag_safe_held.iter().cloned());
    let e_bh = reader.prompts(&as_strs(&benign_held_all))?;
    let e_bh_sharegpt = &e_bh[..sources.benign_held.len() * width];
    let (x, y) = labelled(&e_hb, e_bh_sharegpt, width);
    let harm_harmbench_vs_heldout_benign = Metrics::of(&harm.predict(&x), &y);
    let (x, y) = labelled(&rows.harm_split, &rows.benign, width);
    let harm_without_split = LogisticHead::fit(&x, &y, width, &cfg.fit);
    let (x, y) = labelled(&rows.harm_held, &e_bh, width);
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
    let lookalike = gpo_datasets::lookalike::lookalike_requests();
    let texts: Vec<&str> = lookalike.iter().map(|r| r.prompt.as_str()).collect();
    let y: Vec<bool> = lookalike.iter().map(|r| r.harmful).collect();
    let harm_lookalike_requests = Metrics::of(&harm.predict(&reader.prompts(&texts)?), &y);
    let held = &sources.replies_held;
    let (e_rh, e_ch) = (
        reader.replies(&as_strs(&held.refusing))?,
        reader.replies(&as_strs(&held.complying))?,
    );
    let (x, y) = labelled(&e_ch, &e_rh, bag * reader.dim());
    let comply_heldout_split = Metrics::of(&comply.predict_bags(&x, bag), &y);
    let warm = with_warm_openings(&held.complying, HELDOUT_WARM_OPENINGS);
    let e_warm = reader.replies(&as_strs(&warm))?;
    let (x_warm, y_warm) = labelled(&e_warm, &e_rh, bag * reader.dim());
    // The fit's L2 penalty and the minimum over windows leave the compliance head
    // under-confident; its temperature is set on the same held-out split (which leaves that
    // split's AUC as it is).
    let comply_scale = comply.temperature(&x, &y, bag);
    let comply = comply.scaled(comply_scale);
    let comply_heldout_warm_openings = Metrics::of(&comply.predict_bags(&x_warm, bag), &y_warm);
    Ok(Fitted {
        heads: Heads { harm, comply },
        harm_scale,
        comply_scale,
        harm_harmbench_vs_heldout_benign,
        harm_heldout_split,
        harm_lookalike_requests,
        comply_heldout_split,
        comply_heldout_warm_openings,
        harmbench_features: e_hb,
    })
}

/// Rows of `pos` then `neg` (each `dim` wide), labelled true then false.
fn labelled(pos: &[f32], neg: &[f32], dim: usize) -> (Vec<f32>, Vec<bool>) {
    let mut x = pos.to_vec();
    x.extend_from_slice(neg);
    let mut y = vec![true; pos.len() / dim];
    y.extend(vec![false; neg.len() / dim]);
    (x, y)
}

fn strs(v: &Tagged) -> Vec<&str> {
    v.iter().map(|(_, s)| s.as_str()).collect()
}
