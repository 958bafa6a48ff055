//! The warm start's training pairs: each harmful prompt with a drawn refusal, each benign one
//! with the model's own greedy answer (dropped when that answer is empty or already refuses).

use gpo_assets::AssetCache;
use gpo_lm::{generate, CausalLm, Pass, SamplingParams};
use gpo_tokenizer::{ChatMessage, Tokenizer};

use super::checkpoint::{Pair, Progress, Settings};
use crate::config::DataConfig;
use crate::safety_sft::{refusal_targets, SafetySftPrompts};
use crate::Result;

/// Benign prompts answered per generation call.
const ANSWER_CHUNK: usize = 16;
/// A progress line every this many answered chunks.
const LOG_EVERY_CHUNKS: usize = 10;

/// The pairs of a warm start with `settings` on the prompts of `data` (its held-out seeds
/// stay out), and its progress before any epoch.
pub(super) fn make_pairs(
    settings: &Settings,
    data: &DataConfig,
    model: &CausalLm,
    io: &Io<'_>,
    cache: &AssetCache,
) -> Result<(Vec<Pair>, Progress)> {
    let mut prompts = SafetySftPrompts::load(data, settings.seed, settings.sharegpt, cache)?;
    if settings.harmful > 0 {
        prompts.harmful.truncate(settings.harmful);
    }
    if settings.max_pairs > 0 {
        prompts.harmful.truncate(settings.max_pairs);
        prompts.benign.truncate(settings.max_pairs);
    }
    let mut pairs = Vec::new();
    let refusals = refusal_targets(prompts.harmful.len(), settings.seed);
    for (p, r) in prompts.harmful.iter().zip(refusals) {
        pairs.push((io.prompt(p)?, io.target(r)?));
    }
    tracing::info!(
        "warm start: answering {} benign prompts with the model's own greedy answers",
        prompts.benign.len()
    );
    let answers = own_answers(model, io, &prompts.benign, settings.max_new_tokens)?;
    let mut benign_kept = 0;
    for (p, a) in prompts.benign.iter().zip(answers) {
        // An answer that already refuses would teach refusing benign requests.
        if let Some(ids) = a.filter(|ids| !is_refusal(io.tok, ids)) {
            pairs.push((io.prompt(p)?, ids));
            benign_kept += 1;
        }
    }
    let progress = Progress::new(
        settings.clone(),
        prompts.harmful.len(),
        benign_kept,
        prompts.benign.len() - benign_kept,
    );
    Ok((pairs, progress))
}

/// The model's greedy answers to `prompts` (token ids, end-of-sequence included when it
/// stopped by itself), `None` for an empty answer.
fn own_answers(
    model: &CausalLm,
    io: &Io<'_>,
    prompts: &[String],
    max_new_tokens: usize,
) -> Result<Vec<Option<Vec<u32>>>> {
    let params = SamplingParams {
        temperature: 0.0,
        repetition_penalty: 1.0,
        max_new_tokens,
        ..SamplingParams::default()
    };
    let mut out = Vec::with_capacity(prompts.len());
    for (i, chunk) in prompts.chunks(ANSWER_CHUNK).enumerate() {
        let ids: Vec<Vec<u32>> = chunk.iter().map(|p| io.prompt(p)).collect::<Result<_>>()?;
        for s in generate(model, &ids, io.eos, io.pad, &params, &Pass::infer())? {
            let text_tokens = s.ids.iter().filter(|t| !io.eos.contains(t)).count();
            out.push((text_tokens > 0).then_some(s.ids));
        }
        if (i + 1) % LOG_EVERY_CHUNKS == 0 {
            tracing::info!(
                "warm start: answered {}/{} benign prompts",
                out.len(),
                prompts.len()
            );
        }
    }
    Ok(out)
}

fn is_refusal(tok: &Tokenizer, ids: &[u32]) -> bool {
    tok.decode(ids, true)
        .is_ok_and(|t| gpo_eval::is_explicit_refusal(&t))
}

/// The chat template, tokenizer and stop tokens of the model being tuned.
pub(super) struct Io<'a> {
    tok: &'a Tokenizer,
    eos: &'a [u32],
    /// The padding token of training and generation batches.
    pub pad: u32,
}

impl<'a> Io<'a> {
    pub(super) fn new(tok: &'a Tokenizer) -> Self {
        Io {
            tok,
            eos: tok.eos_ids(),
            pad: tok.pad_id().unwrap_or(0),
        }
    }

    /// `text` as one user turn, ready for the assistant's answer.
    fn prompt(&self, text: &str) -> Result<Vec<u32>> {
        let chat = self
            .tok
            .apply_chat_template(&[ChatMessage::user(text)], true)?;
        Ok(self.tok.encode(&chat, false)?)
    }

    /// `text` as a whole answer: its tokens and the end-of-sequence token.
    fn target(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.tok.encode(text, false)?;
        ids.extend(self.eos.first());
        Ok(ids)
    }
}
