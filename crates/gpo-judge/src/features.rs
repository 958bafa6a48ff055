//! What the two heads read. The harm head reads a prompt's sentence embedding side by side
//! with the mean of its token states after a middle layer of the encoder. The compliance
//! head reads a reply's opening (its first characters) phrase by phrase: the mean state,
//! after a middle layer, of each run of a few word pieces (a window starting at each of the
//! first word pieces), and it calls the reply complying only when no window reads as
//! declining ([`crate::logistic::LogisticHead::fit_bags`]). A refusal can restate the request
//! before it declines ("Cracking your neighbour's Wi-Fi? Eh, I'll skip that."), and a reading
//! of the whole opening, or of its first words, is dominated by that topic, which refusals
//! and answers share; a phrase-by-phrase reading finds the decline wherever it stands. A middle
//! layer's states generalise better than the last one's, from ChatGPT's refusals (the
//! training data) to other styles and from the harmful training requests to HarmBench's
//! (BENCHMARKS.md, heads formats 4 to 6). Everything comes from one forward pass.

use gpo_embed::{Pooling, SentenceEmbedder};
use serde::{Deserialize, Serialize};

use crate::Result;

/// What the heads read of a prompt and of a reply: set in `gpo_judge_train::TrainConfig`, recorded in
/// the [`crate::HeadsCard`] (as top-level fields) and read back from it when judging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// The encoder layer whose mean state over a prompt the harm head also reads.
    pub prompt_layer: usize,
    /// Characters of a reply's opening that the compliance head reads (in training and when
    /// judging).
    pub reply_opening_chars: usize,
    /// Windows the compliance head reads: one starting at each of the opening's first this
    /// many word pieces after `[CLS]` (a shorter opening repeats its last window).
    pub reply_windows: usize,
    /// Word pieces averaged per window.
    pub reply_window_tokens: usize,
    /// The encoder layer the windows' states come from (0 = embeddings, 6 = last hidden
    /// states).
    pub reply_window_layer: usize,
}

impl Default for Reading {
    /// Heads format 11's reading: layer 3 of the prompt, the reply's first 200 characters in
    /// 64 windows of 3 word pieces after layer 3 (docs/benchmarks/judges.md measures each).
    fn default() -> Self {
        Reading {
            prompt_layer: 3,
            reply_opening_chars: 200,
            reply_windows: 64,
            reply_window_tokens: 3,
            reply_window_layer: 3,
        }
    }
}

/// Encoder layers of all-MiniLM-L6-v2 (a [`Reading`] layer is one of 0..=this).
pub const EMBED_LAYERS: usize = 6;
/// Most windows, and word pieces per window, a reading may ask for (the embedder reads at
/// most a few hundred word pieces of a text).
pub const MAX_WINDOWS: usize = 1024;

impl Reading {
    /// Checks the sizes against [`MAX_WINDOWS`] and the layers against the encoder's (a card
    /// or config could ask for any number).
    pub fn check(&self) -> std::result::Result<(), String> {
        let layers = EMBED_LAYERS;
        for (name, layer) in [
            ("prompt_layer", self.prompt_layer),
            ("reply_window_layer", self.reply_window_layer),
        ] {
            if layer > layers {
                return Err(format!(
                    "{name} {layer} is not in 0..={layers} (all-MiniLM-L6-v2's layers; 0 = \
                     the embeddings)"
                ));
            }
        }
        if self.reply_windows > MAX_WINDOWS {
            return Err(format!(
                "reply_windows {} is above {MAX_WINDOWS}",
                self.reply_windows
            ));
        }
        if self.reply_window_tokens == 0 || self.reply_window_tokens > MAX_WINDOWS {
            return Err(format!(
                "reply_window_tokens {} is not in 1..={MAX_WINDOWS}",
                self.reply_window_tokens
            ));
        }
        Ok(())
    }

    /// Rows per reply in [`Features::replies`]: [`Self::reply_windows`], at least one.
    pub fn windows(&self) -> usize {
        self.reply_windows.max(1)
    }
}

/// Width of the harm head's input for an embedder of `dim` dimensions: two pooled vectors.
pub fn prompt_width(dim: usize) -> usize {
    2 * dim
}

/// The features of a batch: prompts and replies.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Prompt features, [`prompt_width`] per prompt, row-major.
    pub prompts: Vec<f32>,
    /// Reply features: per reply, [`Reading::reply_windows`] rows of the embedder's width.
    pub replies: Vec<f32>,
    /// Inputs cut at the embedder's token limit.
    pub truncated: usize,
}

/// Embeds `prompts` and `replies` in one forward pass (see the module doc).
pub fn features(
    embedder: &SentenceEmbedder,
    prompts: &[&str],
    replies: &[&str],
    reading: Reading,
) -> Result<Features> {
    let mut texts = prompts.to_vec();
    texts.extend(
        replies
            .iter()
            .map(|r| opening(r, reading.reply_opening_chars)),
    );
    // Each side's poolings only when that side is there: training embeds thousands of
    // prompts or replies at a time, and a reply's windows are many rows.
    let mut poolings = Vec::new();
    if !prompts.is_empty() {
        poolings.push(Pooling::Mean);
        poolings.push(Pooling::LayerMean {
            layer: reading.prompt_layer,
        });
    }
    let windows = if replies.is_empty() {
        0
    } else {
        reading.windows()
    };
    poolings.extend((0..windows).map(|start| Pooling::Window {
        start,
        tokens: reading.reply_window_tokens,
        layer: reading.reply_window_layer,
    }));
    let out = embedder.embed_pooled(&texts, &poolings)?;
    let d = embedder.dim();
    let split = prompts.len() * d;
    let prompt_rows = if prompts.is_empty() {
        Vec::new()
    } else {
        side_by_side(&out[0].as_slice()[..split], &out[1].as_slice()[..split], d)
    };
    let window_outs = &out[poolings.len() - windows..];
    let mut reply_rows = Vec::with_capacity(replies.len() * windows * d);
    for i in 0..replies.len() {
        let row = split + i * d;
        for w in window_outs {
            reply_rows.extend_from_slice(&w.as_slice()[row..row + d]);
        }
    }
    Ok(Features {
        prompts: prompt_rows,
        replies: reply_rows,
        truncated: out.first().map_or(0, |e| e.truncated()),
    })
}

/// Rows of `a` and `b` (both `dim` wide) joined: row i is `a[i]` then `b[i]`.
pub fn side_by_side(a: &[f32], b: &[f32], dim: usize) -> Vec<f32> {
    a.chunks_exact(dim)
        .zip(b.chunks_exact(dim))
        .flat_map(|(x, y)| x.iter().chain(y).copied())
        .collect()
}

/// The first `chars` characters of `text` after leading whitespace.
pub fn opening(text: &str, chars: usize) -> &str {
    let text = text.trim_start();
    match text.char_indices().nth(chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_cuts_at_a_character_boundary() {
        assert_eq!(opening("  héllo world", 5), "héllo");
        assert_eq!(opening("short", 100), "short");
        assert_eq!(opening("日本語です", 2), "日本");
    }

    #[test]
    fn a_reading_asking_for_too_many_windows_is_refused() {
        let ok = Reading::default();
        ok.check().unwrap();
        let huge = Reading {
            reply_windows: 1_000_000_000_000,
            ..ok
        };
        assert!(huge.check().unwrap_err().contains("reply_windows"));
        let empty = Reading {
            reply_window_tokens: 0,
            ..ok
        };
        assert!(empty.check().is_err());
        for deep in [
            Reading {
                prompt_layer: 7,
                ..ok
            },
            Reading {
                reply_window_layer: usize::MAX,
                ..ok
            },
        ] {
            let e = deep.check().unwrap_err();
            assert!(e.contains("_layer") && e.contains("0..=6"), "{e}");
        }
    }

    #[test]
    fn rows_are_joined_in_order() {
        let a = [1f32, 2., 3., 4.];
        let b = [5f32, 6., 7., 8.];
        assert_eq!(side_by_side(&a, &b, 2), [1., 2., 5., 6., 3., 4., 7., 8.]);
        assert!(side_by_side(&[], &[], 2).is_empty());
    }
}
