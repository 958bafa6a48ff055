//! Batched sampling with a KV cache over left-padded prompts.

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::CausalLm;
use crate::pass::{Mode, Pass};
use crate::{Error, Result};

/// Sampling hyper-parameters (the paper's rollouts, docs/method.md: temperature 0.8, top-p
/// 0.9, repetition penalty 1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingParams {
    /// Softmax temperature; 0 means greedy decoding.
    pub temperature: f64,
    /// Nucleus sampling mass in (0, 1]; 1 disables it.
    pub top_p: f64,
    /// Keep only the k most likely tokens; 0 disables it.
    pub top_k: usize,
    /// CTRL-style penalty (> 1 discourages tokens already in the prompt or output); 1 disables it.
    pub repetition_penalty: f64,
    /// Most tokens generated per sample.
    pub max_new_tokens: usize,
    /// Keep generating past end-of-sequence tokens (for benchmarks).
    pub ignore_eos: bool,
    /// Samples per prompt.
    pub n: usize,
    /// Seed of the sampling RNG; the same seed gives the same samples.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.8,
            top_p: 0.9,
            top_k: 0,
            repetition_penalty: 1.0,
            max_new_tokens: 128,
            ignore_eos: false,
            n: 1,
            seed: 0,
        }
    }
}

impl SamplingParams {
    /// Checks every field, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.n == 0 || self.n > MAX_SAMPLES_PER_PROMPT {
            return bad(format!(
                "n (samples per prompt) {} is not in 1..={MAX_SAMPLES_PER_PROMPT} (all samples \
                 of a request are generated as one batch)",
                self.n
            ));
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad(format!("temperature {} must be >= 0", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p {} must be in (0, 1]", self.top_p));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return bad(format!(
                "repetition_penalty {} must be > 0",
                self.repetition_penalty
            ));
        }
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens must be at least 1".into());
        }
        Ok(())
    }
}

/// Most samples per prompt one request may ask for.
pub const MAX_SAMPLES_PER_PROMPT: usize = 1024;

/// Why a sample stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FinishReason {
    /// It produced an end-of-sequence token (included in `ids`).
    Eos,
    /// It reached `max_new_tokens`.
    Length,
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Index of its prompt in the request.
    pub prompt_index: usize,
    /// Generated token ids (an end-of-sequence token, when produced, is the last).
    pub ids: Vec<u32>,
    /// `log softmax(logits / T)` of each generated token under the sampling model (raw logits
    /// when T = 0), before top-k/top-p truncation and repetition penalty: the behaviour
    /// log-probs RL needs.
    pub logprobs: Vec<f32>,
    /// Why it stopped.
    pub finish: FinishReason,
}

/// Generates `params.n` continuations of each prompt (token ids, no padding) in one batch.
/// Rows are ordered prompt-major: all samples of prompt 0, then of prompt 1, ...
/// `pass.adapters` chooses the policy (adapters on) or the base model.
pub fn generate(
    model: &CausalLm,
    prompts: &[Vec<u32>],
    eos_ids: &[u32],
    pad_id: u32,
    params: &SamplingParams,
    pass: &Pass,
) -> Result<Vec<Sample>> {
    params.validate()?;
    let rows = request_rows(prompts, params, eos_ids, 0);
    generate_rows(model, &rows, pad_id, pass)
}

/// One request's rows: each prompt `params.n` times, prompt-major, row `r` on stream `r` of
/// `params.seed` (how [`generate`] lays out a batch, and what a server batches).
pub fn request_rows<'a>(
    prompts: &'a [Vec<u32>],
    params: &'a SamplingParams,
    stop: &'a [u32],
    top_logprobs: usize,
) -> Vec<Row<'a>> {
    prompts
        .iter()
        .enumerate()
        .flat_map(|(i, p)| std::iter::repeat_n((i, p), params.n))
        .enumerate()
        .map(|(r, (i, p))| Row {
            prompt_index: i,
            prompt: p,
            params,
            stream: r as u64,
            stop,
            top_logprobs,
        })
        .collect()
}

/// One row of a batch: a prompt, how to sample its continuation, and its random stream.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// What the sample reports as its prompt's index.
    pub prompt_index: usize,
    /// The prompt's token ids.
    pub prompt: &'a [u32],
    /// Temperature, top-p, top-k, repetition penalty, `max_new_tokens`, `ignore_eos` and
    /// the seed (`n` is not read: one row is one sample).
    pub params: &'a SamplingParams,
    /// The stream of `params.seed`'s RNG this row draws from: a row draws the same tokens
    /// whatever else is in the batch (up to the last bits of the logits, which the batch's
    /// shape can change).
    pub stream: u64,
    /// Tokens that end the row (kept as its last token).
    pub stop: &'a [u32],
    /// How many of the likeliest tokens at each position to report with their log-probs
    /// ([`Drawn::top`]; 0: none, nothing computed).
    pub top_logprobs: usize,
}

/// Generates one continuation per row, all rows in one batch, each with its own settings:
/// what [`generate`] does for one request, and what a server does for several at once.
pub fn generate_rows(
    model: &CausalLm,
    rows: &[Row],
    pad_id: u32,
    pass: &Pass,
) -> Result<Vec<Sample>> {
    generate_rows_with(model, rows, pad_id, pass, &mut |_| {})
}

/// A token as it is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drawn<'a> {
    /// Its row in the batch.
    pub row: usize,
    /// The token.
    pub token: u32,
    /// Its log-prob, as in [`Sample::logprobs`].
    pub logprob: f32,
    /// The row's `top_logprobs` most likely tokens at this position with their log-probs
    /// under the same distribution, most likely first (empty when the row asks for none).
    pub top: &'a [(u32, f32)],
}

/// [`generate_rows`], calling `on_token` with each token as soon as it is drawn (rows in
/// order within a step): what a server streams, and where it reads alternatives.
pub fn generate_rows_with(
    model: &CausalLm,
    rows: &[Row],
    pad_id: u32,
    pass: &Pass,
    on_token: &mut dyn FnMut(&Drawn),
) -> Result<Vec<Sample>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    check_rows(rows, model.config().max_position_embeddings)?;
    let b = rows.len();
    let (ids, valid, width) = left_padded(rows, pad_id);
    let device = model.device().clone();
    let pass = Pass {
        mode: Mode::Infer,
        ..*pass
    };
    let mut cache = model.new_cache(b);
    let mut logits = model.forward_cached(
        &Tensor::from_vec(ids, (b, width), &device)?,
        &valid,
        &mut cache,
        &pass,
    )?;

    let mut rngs: Vec<ChaCha8Rng> = rows
        .iter()
        .map(|row| {
            let mut rng = ChaCha8Rng::seed_from_u64(row.params.seed);
            rng.set_stream(row.stream);
            rng
        })
        .collect();
    // Each row's distinct tokens so far (prompt and response), sorted: the repetition penalty
    // applies once per token, however often it occurred.
    let mut seen: Vec<Vec<u32>> = rows
        .iter()
        .map(|row| {
            let mut s = row.prompt.to_vec();
            s.sort_unstable();
            s.dedup();
            s
        })
        .collect();
    let mut out: Vec<Sample> = rows
        .iter()
        .map(|row| Sample {
            prompt_index: row.prompt_index,
            ids: Vec::new(),
            logprobs: Vec::new(),
            finish: FinishReason::Length,
        })
        .collect();
    let mut done = vec![false; b];
    let mut scratch: Vec<Scratch> = (0..b).map(|_| Scratch::default()).collect();
    loop {
        let active: Vec<bool> = done.iter().map(|d| !d).collect();
        let rows_logits = logits.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        // Rows are independent (each has its own RNG stream), so they are drawn in parallel.
        let drawn: Vec<(u32, Vec<(u32, f32)>)> = rows_logits
            .par_iter()
            .zip(rows.par_iter())
            .zip(out.par_iter_mut())
            .zip(seen.par_iter_mut())
            .zip(rngs.par_iter_mut())
            .zip(done.par_iter_mut())
            .zip(scratch.par_iter_mut())
            .map(|((((((raw, row), out), seen), rng), done), scratch)| {
                if *done {
                    return (pad_id, Vec::new());
                }
                let (tok, lp) = sample_row(raw, seen, row.params, rng, scratch);
                let top = top_logprobs(raw, row.params.temperature, row.top_logprobs);
                out.ids.push(tok);
                out.logprobs.push(lp);
                if let Err(at) = seen.binary_search(&tok) {
                    seen.insert(at, tok);
                }
                if !row.params.ignore_eos && row.stop.contains(&tok) {
                    *done = true;
                    out.finish = FinishReason::Eos;
                } else if out.ids.len() == row.params.max_new_tokens {
                    *done = true;
                }
                (tok, top)
            })
            .collect();
        for (r, (tok, top)) in drawn.iter().enumerate() {
            if active[r] {
                let logprob = *out[r].logprobs.last().unwrap_or(&0.0);
                on_token(&Drawn {
                    row: r,
                    token: *tok,
                    logprob,
                    top,
                });
            }
        }
        let next: Vec<u32> = drawn.into_iter().map(|(t, _)| t).collect();
        if done.iter().all(|d| *d) {
            break;
        }
        let step_valid = vec![vec![true]; b];
        logits = model.forward_cached(
            &Tensor::from_vec(next, (b, 1), &device)?,
            &step_valid,
            &mut cache,
            &pass,
        )?;
    }
    Ok(out)
}

/// Every row's settings are valid, its prompt has a token and leaves room for its
/// `max_new_tokens` in a context of `ctx`.
fn check_rows(rows: &[Row], ctx: usize) -> Result<()> {
    for row in rows {
        row.params.validate()?;
        let p = row.prompt;
        if p.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "prompt {} is empty",
                row.prompt_index
            )));
        }
        if p.len().saturating_add(row.params.max_new_tokens) > ctx {
            return Err(Error::InvalidArgument(format!(
                "prompt {} has {} tokens; with max_new_tokens {} that exceeds the model's context of {ctx} tokens",
                row.prompt_index,
                p.len(),
                row.params.max_new_tokens
            )));
        }
    }
    Ok(())
}

/// The rows' prompts left-padded with `pad_id` to the longest: the ids row-major, which
/// positions hold tokens, and the width.
fn left_padded(rows: &[Row], pad_id: u32) -> (Vec<u32>, Vec<Vec<bool>>, usize) {
    let width = rows.iter().map(|r| r.prompt.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len() * width);
    let mut valid = Vec::with_capacity(rows.len());
    for r in rows {
        let pad = width - r.prompt.len();
        ids.extend(std::iter::repeat_n(pad_id, pad).chain(r.prompt.iter().copied()));
        valid.push((0..width).map(|j| j >= pad).collect::<Vec<bool>>());
    }
    (ids, valid, width)
}

/// `token`'s log-prob under `softmax(raw)` at one position of a scored sequence, with the
/// `k` likeliest tokens there (for a server's `echo`: the prompt's own log-probs).
pub fn position_logprobs(raw: &[f32], token: u32, k: usize) -> (f32, Vec<(u32, f32)>) {
    let max = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_z = max + raw.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
    let lp = raw
        .get(token as usize)
        .map_or(f32::NEG_INFINITY, |x| x - log_z);
    (lp, top_logprobs(raw, 1.0, k))
}

/// The `k` likeliest tokens of a row of raw logits with their log-probs under
/// `softmax(raw / T)` (raw logits when `T = 0`), most likely first; ties by token id.
fn top_logprobs(raw: &[f32], temperature: f64, k: usize) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let t = if temperature > 0.0 {
        temperature as f32
    } else {
        1.0
    };
    let max = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_z = max / t + raw.iter().map(|x| ((x - max) / t).exp()).sum::<f32>().ln();
    let mut idx: Vec<(u32, f32)> = raw
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as u32, x))
        .collect();
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let k = k.min(idx.len());
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, order);
        idx.truncate(k);
    }
    idx.sort_unstable_by(order);
    idx.into_iter().map(|(i, x)| (i, x / t - log_z)).collect()
}

/// Reusable buffers of [`sample_row`].
#[derive(Default)]
struct Scratch {
    logits: Vec<f32>,
    candidates: Vec<(u32, f32)>,
}

/// Draws one token from a row of logits, `seen` being the row's distinct tokens so far;
/// returns it with its log-prob under `softmax(logits / T)`.
fn sample_row(
    raw: &[f32],
    seen: &[u32],
    params: &SamplingParams,
    rng: &mut ChaCha8Rng,
    s: &mut Scratch,
) -> (u32, f32) {
    let t = if params.temperature > 0.0 {
        params.temperature as f32
    } else {
        1.0
    };
    // Behaviour log-prob: log softmax(raw / T). Without a repetition penalty the sampling
    // weights exp((x - max) / T) are the same numbers, computed once.
    let max_raw = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    s.logits.clear();
    s.logits
        .extend(raw.iter().map(|x| ((x - max_raw) / t).exp()));
    let raw_total: f32 = s.logits.iter().sum();
    let log_z = max_raw / t + raw_total.ln();
    let logprob = |tok: u32| raw[tok as usize] / t - log_z;

    let penalised = params.repetition_penalty != 1.0;
    if params.temperature == 0.0 || penalised {
        // Greedy decoding and the repetition penalty work on the (penalised) logits.
        s.logits.clear();
        s.logits.extend_from_slice(raw);
        penalise(&mut s.logits, seen, params.repetition_penalty);
    }
    if params.temperature == 0.0 {
        let tok = argmax(&s.logits);
        return (tok, logprob(tok));
    }
    let total = if penalised {
        let max = s.logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0f32;
        for x in s.logits.iter_mut() {
            *x = ((*x - max) / t).exp();
            total += *x;
        }
        total
    } else {
        raw_total
    };
    // Without top-k, tokens below (1 - top_p) / V of the mass cannot be in the nucleus
    // (together they hold less than 1 - top_p), so only the rest is sorted: exact, and far
    // cheaper than a full sort. (With top-k the nucleus is measured within the k kept.)
    let v = s.logits.len() as f32;
    let floor = if params.top_p < 1.0 && params.top_k == 0 {
        (1.0 - params.top_p as f32) / v * total
    } else {
        0.0
    };
    s.candidates.clear();
    s.candidates.extend(
        s.logits
            .iter()
            .enumerate()
            .filter(|(_, p)| **p >= floor && **p > 0.0)
            .map(|(i, p)| (i as u32, *p)),
    );
    if s.candidates.is_empty() {
        let tok = argmax(raw);
        return (tok, logprob(tok));
    }
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if params.top_k > 0 && s.candidates.len() > params.top_k {
        s.candidates.select_nth_unstable_by(params.top_k - 1, order);
        s.candidates.truncate(params.top_k);
    }
    s.candidates.sort_unstable_by(order);
    if params.top_p < 1.0 {
        // Hugging Face and vLLM take the nucleus of what top-k kept, renormalised.
        let kept = if params.top_k > 0 {
            s.candidates.iter().map(|c| c.1).sum()
        } else {
            total
        };
        let target = params.top_p as f32 * kept;
        let mut acc = 0f32;
        let mut keep = s.candidates.len();
        for (i, (_, p)) in s.candidates.iter().enumerate() {
            acc += p;
            if acc >= target {
                keep = i + 1;
                break;
            }
        }
        s.candidates.truncate(keep);
    }
    let mass: f32 = s.candidates.iter().map(|c| c.1).sum();
    let mut u = rng.random::<f32>() * mass;
    let mut tok = s.candidates[s.candidates.len() - 1].0;
    for (i, p) in &s.candidates {
        if u < *p {
            tok = *i;
            break;
        }
        u -= p;
    }
    (tok, logprob(tok))
}

/// The repetition penalty (CTRL, Keskar et al. 2019; Hugging Face's
/// `RepetitionPenaltyLogitsProcessor`): each token of `seen` (distinct ids) has its logit
/// divided by `rp` when positive and multiplied by it when negative, once.
fn penalise(logits: &mut [f32], seen: &[u32], rp: f64) {
    if rp == 1.0 {
        return;
    }
    let rp = rp as f32;
    for &tok in seen {
        if let Some(x) = logits.get_mut(tok as usize) {
            *x = if *x > 0.0 { *x / rp } else { *x * rp };
        }
    }
}

fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in xs.iter().enumerate() {
        if *x > xs[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SamplingParams {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            ..SamplingParams::default()
        }
    }

    #[test]
    fn top_logprobs_are_the_likeliest_tokens_under_the_temperature() {
        // softmax([0, 2, 1] / 2): log-probs x / 2 - log(1 + e + e^0.5), by hand.
        let log_z = (1.0 + 1f32.exp() + 0.5f32.exp()).ln();
        let top = top_logprobs(&[0.0, 2.0, 1.0], 2.0, 2);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!((top[0].1 - (1.0 - log_z)).abs() < 1e-6);
        assert!((top[1].1 - (0.5 - log_z)).abs() < 1e-6);
        assert!(top_logprobs(&[0.0, 1.0], 1.0, 0).is_empty());
        assert_eq!(top_logprobs(&[0.0, 1.0], 1.0, 5).len(), 2);
    }

    #[test]
    fn greedy_picks_argmax_and_reports_its_logprob() {
        let p = SamplingParams {
            temperature: 0.0,
            ..params()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (tok, lp) = sample_row(&[0.0, 2.0, 1.0], &[], &p, &mut rng, &mut Scratch::default());
        assert_eq!(tok, 1);
        // log(e^2 / (1 + e^2 + e)) computed by hand.
        let expected = 2.0f32 - (1.0 + 2f32.exp() + 1f32.exp()).ln();
        assert!((lp - expected).abs() < 1e-6);
    }

    #[test]
    fn top_k_one_is_greedy() {
        let p = SamplingParams {
            top_k: 1,
            ..params()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..20 {
            assert_eq!(
                sample_row(
                    &[0.5, 0.1, 0.9, 0.2],
                    &[],
                    &p,
                    &mut rng,
                    &mut Scratch::default()
                )
                .0,
                2
            );
        }
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // probs ~ [0.6, 0.3, 0.1]: top_p 0.5 keeps only token 0; 0.8 keeps tokens 0 and 1.
        let logits = [0.6f32.ln(), 0.3f32.ln(), 0.1f32.ln()];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let p = SamplingParams {
            top_p: 0.5,
            ..params()
        };
        assert!(
            (0..50).all(|_| sample_row(&logits, &[], &p, &mut rng, &mut Scratch::default()).0 == 0)
        );
        let p = SamplingParams {
            top_p: 0.8,
            ..params()
        };
        let seen: Vec<u32> = (0..200)
            .map(|_| sample_row(&logits, &[], &p, &mut rng, &mut Scratch::default()).0)
            .collect();
        assert!(seen.contains(&1) && !seen.contains(&2));
    }

    #[test]
    fn repetition_penalty_discourages_seen_tokens() {
        let p = SamplingParams {
            temperature: 0.0,
            repetition_penalty: 4.0,
            ..params()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // token 0 (logit 2) seen -> 0.5 < 1.5.
        assert_eq!(
            sample_row(&[2.0, 1.5], &[0], &p, &mut rng, &mut Scratch::default()).0,
            1
        );
    }

    #[test]
    fn repetition_penalty_applies_once_however_often_a_token_was_seen() {
        // Hugging Face penalises token 0 once: 2 / 1.5 = 1.33 > 1.2 keeps it the argmax
        // (stacked per occurrence, 2 / 1.5^2 = 0.89 would lose); `generate` passes each
        // row's distinct tokens.
        let p = SamplingParams {
            temperature: 0.0,
            repetition_penalty: 1.5,
            ..params()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (tok, _) = sample_row(&[2.0, 1.2], &[0], &p, &mut rng, &mut Scratch::default());
        assert_eq!(tok, 0);
    }

    #[test]
    fn top_p_after_top_k_takes_the_nucleus_of_the_kept_tokens() {
        // probs [0.4, 0.3, 0.2, 0.1], top_k 2 then top_p 0.5: renormalised over the two kept,
        // token 0 holds 0.4 / 0.7 = 0.57 >= 0.5, so it alone is the nucleus (Hugging Face's
        // TopK then TopP warpers; measured against the whole mass, 0.4 < 0.5 would keep both).
        let logits = [0.4f32.ln(), 0.3f32.ln(), 0.2f32.ln(), 0.1f32.ln()];
        let p = SamplingParams {
            top_k: 2,
            top_p: 0.5,
            ..params()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..100 {
            let (tok, _) = sample_row(&logits, &[], &p, &mut rng, &mut Scratch::default());
            assert_eq!(tok, 0);
        }
        // top_k 3, top_p 0.8: kept mass 0.9, target 0.72; 0.4 + 0.3 = 0.7 < 0.72, so the
        // nucleus is tokens 0, 1 and 2, never 3.
        let p = SamplingParams {
            top_k: 3,
            top_p: 0.8,
            ..params()
        };
        let drawn: Vec<u32> = (0..400)
            .map(|_| sample_row(&logits, &[], &p, &mut rng, &mut Scratch::default()).0)
            .collect();
        assert!(drawn.contains(&2) && !drawn.contains(&3), "{drawn:?}");
    }

    #[test]
    fn invalid_params_are_named() {
        let e = SamplingParams { n: 0, ..params() }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("n (samples per prompt)"), "{e}");
        let e = SamplingParams {
            top_p: 0.0,
            ..params()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("top_p"), "{e}");
    }
}
