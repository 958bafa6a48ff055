//! The model behind the server: one generation at a time, on a thread of its own, with
//! LoRA adapters loaded and unloaded at run time (vLLM's `/v1/load_lora_adapter` subset).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};

use gpo_lm::{
    generate_rows_with, position_logprobs, request_rows, CausalLm, Drawn, FinishReason, Pass, Row,
    Sample,
};
use gpo_tokenizer::Tokenizer;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::api::{model_not_found, ApiError, Choice, Generation, Input, TokenLogprob};
use crate::stream::{Incremental, StreamEvent};

/// A model and its tokenizer (with a chat template), answering [`Generation`]s, and the
/// adapters loaded on it.
pub struct Engine {
    model: CausalLm,
    tokenizer: Tokenizer,
    eos: Vec<u32>,
    pad: u32,
    served: String,
    adapters: HashMap<String, CausalLm>,
    names: Names,
}

/// The names requests may ask for: the served model first, then the loaded adapters.
pub type Names = Arc<Mutex<Vec<String>>>;

/// What a generation gives: the prompts' token count and the choices (prompt-major).
pub type Answer = Result<(usize, Vec<Choice>), ApiError>;

/// Work for the engine thread, and where its answer goes.
pub(crate) enum Job {
    /// Sample.
    Generate(Generation, oneshot::Sender<Answer>),
    /// Sample, sending the text as it comes.
    Stream(Generation, UnboundedSender<StreamEvent>),
    /// Load the adapter at the path under the name (replacing one of that name when
    /// `inplace`).
    Load {
        name: String,
        path: String,
        inplace: bool,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// Unload the adapter of that name.
    Unload {
        name: String,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
}

impl Engine {
    /// `model`, served as `served`, with `tokenizer`, whose chat template renders chat
    /// requests.
    pub fn new(model: CausalLm, tokenizer: Tokenizer, served: &str) -> Self {
        let eos = tokenizer.eos_ids().to_vec();
        let pad = tokenizer.pad_id().unwrap_or(0);
        Engine {
            model,
            tokenizer,
            eos,
            pad,
            served: served.to_string(),
            adapters: HashMap::new(),
            names: Arc::new(Mutex::new(vec![served.to_string()])),
        }
    }

    /// The names requests may ask for, kept current as adapters come and go.
    pub fn names(&self) -> Names {
        self.names.clone()
    }

    fn tokenize(&self, text: &str, field: &'static str) -> Result<Vec<u32>, ApiError> {
        self.tokenizer
            .encode(text, false)
            .map_err(|e| ApiError::invalid(field, e.to_string()))
    }

    /// The token ids of each of `g`'s prompts, each checked against the model's context.
    pub fn prompt_ids(&self, g: &Generation) -> Result<Vec<Vec<u32>>, ApiError> {
        let prompts = match &g.input {
            Input::Chat(messages) => {
                let rendered = self
                    .tokenizer
                    .apply_chat_template(messages, true)
                    .map_err(|e| ApiError::invalid("messages", e.to_string()))?;
                vec![self.tokenize(&rendered, "messages")?]
            }
            Input::Texts(texts) => texts
                .iter()
                .map(|t| self.tokenize(t, "prompt"))
                .collect::<Result<_, _>>()?,
            Input::Tokens(ids) => ids.clone(),
        };
        let context = self.model.config().max_position_embeddings;
        let vocab = self.model.config().vocab_size;
        for ids in &prompts {
            if ids.is_empty() {
                return Err(ApiError::invalid("prompt", "a prompt is empty"));
            }
            if let Some(bad) = ids.iter().find(|&&t| t as usize >= vocab) {
                return Err(ApiError::invalid(
                    "prompt",
                    format!("token id {bad} is past the vocabulary of {vocab}"),
                ));
            }
            if ids.len() + g.params.max_new_tokens > context {
                return Err(ApiError::invalid(
                    "max_tokens",
                    format!(
                        "a prompt is {} tokens; with max_tokens {} that is past the model's \
                         context of {context} tokens",
                        ids.len(),
                        g.params.max_new_tokens
                    ),
                ));
            }
        }
        Ok(prompts)
    }

    fn model_for(&self, name: Option<&str>) -> Result<&CausalLm, ApiError> {
        match name {
            None => Ok(&self.model),
            Some(n) if n == self.served => Ok(&self.model),
            Some(n) => self.adapters.get(n).ok_or_else(|| {
                model_not_found(n, &self.names.lock().map(|v| v.clone()).unwrap_or_default())
            }),
        }
    }

    /// Generates `g`'s choices alone: every prompt in one batch with one seed, with the
    /// same sampler and chat template as a game's players, so a seeded request repeats
    /// exactly and a request holding a player's rollout repeats the player's own sampling.
    pub fn answer(&self, g: &Generation) -> Answer {
        self.answer_batch(&[g])
            .pop()
            .unwrap_or_else(|| Err(server_error("no answer".into())))
    }

    /// Generates the choices of several requests on one model in one batch. Each request's
    /// rows draw from its own seed's streams, as when it runs alone, so only the batch's
    /// shape (the last bits of the logits) can tell the two apart.
    pub fn answer_batch(&self, gs: &[&Generation]) -> Vec<Answer> {
        let mut answers: Vec<Option<Answer>> = vec![None; gs.len()];
        let mut inputs = Vec::new();
        for (k, g) in gs.iter().enumerate() {
            match self
                .prompt_ids(g)
                .and_then(|p| Ok((p, self.model_for(g.model.as_deref())?)))
            {
                Ok((prompts, _)) => {
                    inputs.push((k, prompts, self.stop_ids(g)));
                }
                Err(e) => answers[k] = Some(Err(e)),
            }
        }
        // Left-padded to its longest prompt and run to its longest answer, a batch of
        // requests that each fit the context may not: then each runs alone.
        let context = self.model.config().max_position_embeddings;
        let width = inputs
            .iter()
            .flat_map(|(_, p, _)| p.iter().map(Vec::len))
            .max();
        let steps = inputs
            .iter()
            .map(|(k, _, _)| gs[*k].params.max_new_tokens)
            .max();
        if gs.len() > 1 && width.unwrap_or(0) + steps.unwrap_or(0) > context {
            return gs.iter().map(|g| self.answer(g)).collect();
        }
        // Requests that only score their prompt sample nothing.
        let sampled = |k: usize| !gs[k].score_only;
        let rows: Vec<Row> = inputs
            .iter()
            .filter(|(k, _, _)| sampled(*k))
            .flat_map(|(k, prompts, stop)| {
                request_rows(prompts, &gs[*k].params, stop, gs[*k].top_logprobs)
            })
            .collect();
        // The alternatives each row asked for, position by position.
        let mut tops: Vec<Vec<Vec<(u32, f32)>>> = vec![Vec::new(); rows.len()];
        let mut keep_top = |d: &Drawn| {
            if !d.top.is_empty() {
                tops[d.row].push(d.top.to_vec());
            }
        };
        let Some((first, _, _)) = inputs.first() else {
            return finished(answers);
        };
        // Every request of a batch asks for the same model (the caller groups them).
        let model = match self.model_for(gs[*first].model.as_deref()) {
            Ok(m) => m,
            Err(e) => {
                for (k, _, _) in &inputs {
                    answers[*k] = Some(Err(e.clone()));
                }
                return finished(answers);
            }
        };
        let samples = match rows.is_empty() {
            true => Ok(Vec::new()),
            false => generate_in_chunks(model, &rows, self.pad, &mut keep_top)
                .map_err(|e| server_error(format!("generation failed: {e}"))),
        };
        let mut at = 0;
        for (k, prompts, stop) in &inputs {
            let g = gs[*k];
            answers[*k] = Some(match &samples {
                Err(e) => Err(e.clone()),
                Ok(_) if g.score_only => self.scored_only(model, g, prompts),
                Ok(all) => {
                    let count = prompts.len() * g.params.n;
                    let choices = all[at..at + count]
                        .iter()
                        .zip(&tops[at..at + count])
                        .map(|(s, top)| self.choice(s, top, g, stop))
                        .collect::<Result<Vec<_>, _>>()
                        .and_then(|c| self.with_echo(model, g, prompts, c));
                    at += count;
                    choices.map(|c| (prompts.iter().map(Vec::len).sum(), c))
                }
            });
        }
        finished(answers)
    }

    /// The text and teacher-forced log-probs of `prompt` (with `k` alternatives at each
    /// position), for `echo`.
    fn echo_of(
        &self,
        model: &CausalLm,
        prompt: &[u32],
        k: usize,
    ) -> Result<(String, Vec<TokenLogprob>), ApiError> {
        let failed = |e: gpo_lm::Error| server_error(format!("scoring the prompt failed: {e}"));
        let text = self
            .tokenizer
            .decode(prompt, false)
            .map_err(|e| server_error(format!("decoding failed: {e}")))?;
        let ids = candle_core::Tensor::from_slice(prompt, (1, prompt.len()), model.device())
            .map_err(|e| failed(e.into()))?;
        let logits = model
            .forward(&ids, None, &Pass::infer())
            .and_then(|l| {
                Ok(l.to_dtype(candle_core::DType::F32)?
                    .squeeze(0)?
                    .to_vec2::<f32>()?)
            })
            .map_err(failed)?;
        let mut out = Vec::with_capacity(prompt.len());
        for (i, &tok) in prompt.iter().enumerate() {
            let token = self
                .tokenizer
                .decode(&[tok], false)
                .map_err(|e| server_error(format!("decoding failed: {e}")))?;
            let (logprob, top) = match i {
                0 => (None, Vec::new()),
                _ => {
                    let (lp, top) = position_logprobs(&logits[i - 1], tok, k);
                    (Some(lp), top)
                }
            };
            let top = top
                .iter()
                .map(|(a, l)| Ok((self.decode_one(*a)?, *l)))
                .collect::<Result<_, ApiError>>()?;
            out.push(TokenLogprob {
                token,
                logprob,
                top,
            });
        }
        Ok((text, out))
    }

    /// The tokens that end `g`'s choices: the model's end-of-sequence tokens and the
    /// request's `stop_token_ids`.
    fn stop_ids(&self, g: &Generation) -> Vec<u32> {
        let mut stop = self.eos.clone();
        stop.extend(g.stop_token_ids.iter().filter(|t| !self.eos.contains(t)));
        stop
    }

    fn decode_one(&self, tok: u32) -> Result<String, ApiError> {
        self.tokenizer
            .decode(&[tok], false)
            .map_err(|e| server_error(format!("decoding failed: {e}")))
    }

    /// `choices` (prompt-major) with their prompt prepended when `g` asks for `echo`.
    fn with_echo(
        &self,
        model: &CausalLm,
        g: &Generation,
        prompts: &[Vec<u32>],
        mut choices: Vec<Choice>,
    ) -> Result<Vec<Choice>, ApiError> {
        if !g.echo {
            return Ok(choices);
        }
        let echoes = prompts
            .iter()
            .map(|p| self.echo_of(model, p, g.top_logprobs))
            .collect::<Result<Vec<_>, _>>()?;
        for c in &mut choices {
            let (text, lps) = echoes[c.prompt_index].clone();
            c.echo = Some((text, if g.logprobs { lps } else { Vec::new() }));
        }
        Ok(choices)
    }

    /// The choices of a request that only scores its prompts (`echo`, `max_tokens: 0`).
    fn scored_only(&self, model: &CausalLm, g: &Generation, prompts: &[Vec<u32>]) -> Answer {
        let choices = prompts
            .iter()
            .enumerate()
            .flat_map(|(i, _)| std::iter::repeat_n(i, g.params.n))
            .map(|i| Choice {
                prompt_index: i,
                ids: Vec::new(),
                text: String::new(),
                finish_reason: "length",
                logprobs: g.logprobs.then(Vec::new),
                tokens: 0,
                echo: None,
            })
            .collect();
        let choices = self.with_echo(model, g, prompts, choices)?;
        Ok((prompts.iter().map(Vec::len).sum(), choices))
    }

    /// Generates `g`'s choices alone, sending each choice's text to `events` as it comes,
    /// then its finish; a request that cannot be answered sends one error.
    fn stream(&self, g: &Generation, events: &UnboundedSender<StreamEvent>) {
        // A client that has gone makes the sends fail; generation simply runs out.
        let send = |e: StreamEvent| drop(events.send(e));
        let prompts = match self.prompt_ids(g) {
            Ok(p) => p,
            Err(e) => return send(StreamEvent::Error(e)),
        };
        let model = match self.model_for(g.model.as_deref()) {
            Ok(m) => m,
            Err(e) => return send(StreamEvent::Error(e)),
        };
        let stop = self.stop_ids(g);
        let rows = request_rows(&prompts, &g.params, &stop, g.top_logprobs);
        let decode = |ids: &[u32]| self.tokenizer.decode(ids, true).unwrap_or_default();
        let mut texts: Vec<Incremental> = rows.iter().map(|_| Incremental::default()).collect();
        // Each row's log-probs not yet sent.
        let mut pending: Vec<Vec<TokenLogprob>> = vec![Vec::new(); rows.len()];
        let mut on_token = |d: &Drawn| {
            let (r, tok) = (d.row, d.token);
            if texts[r].stopped() {
                return;
            }
            if g.logprobs {
                // Decoded as the whole reply's log-probs are (special tokens as "").
                pending[r].push(TokenLogprob {
                    token: decode(&[tok]),
                    logprob: Some(d.logprob),
                    top: d.top.iter().map(|(a, l)| (decode(&[*a]), *l)).collect(),
                });
            }
            if stop.contains(&tok) {
                return;
            }
            let (text, stopped) = texts[r].push(tok, &decode, &g.stop);
            if !text.is_empty() {
                let logprobs = std::mem::take(&mut pending[r]);
                send(StreamEvent::Text {
                    index: r,
                    text,
                    logprobs,
                });
            }
            if stopped {
                send(StreamEvent::Finish {
                    index: r,
                    reason: "stop",
                });
            }
        };
        let samples = generate_rows_with(model, &rows, self.pad, &Pass::infer(), &mut on_token);
        match samples {
            Err(e) => send(StreamEvent::Error(server_error(format!(
                "generation failed: {e}"
            )))),
            Ok(samples) => {
                for (r, s) in samples.iter().enumerate() {
                    if texts[r].stopped() {
                        continue;
                    }
                    let text = texts[r].flush(&decode);
                    let logprobs = std::mem::take(&mut pending[r]);
                    if !text.is_empty() || !logprobs.is_empty() {
                        send(StreamEvent::Text {
                            index: r,
                            text,
                            logprobs,
                        });
                    }
                    let reason = match s.finish {
                        FinishReason::Eos => "stop",
                        FinishReason::Length => "length",
                    };
                    send(StreamEvent::Finish { index: r, reason });
                }
            }
        }
    }

    /// One sample decoded, cut at the first stop string.
    fn choice(
        &self,
        s: &Sample,
        top: &[Vec<(u32, f32)>],
        g: &Generation,
        eos: &[u32],
    ) -> Result<Choice, ApiError> {
        let decode = |ids: &[u32]| {
            self.tokenizer
                .decode(ids, true)
                .map_err(|e| server_error(format!("decoding failed: {e}")))
        };
        let kept: Vec<u32> = s.ids.iter().copied().filter(|t| !eos.contains(t)).collect();
        let mut text = decode(&kept)?;
        let mut finish = match s.finish {
            FinishReason::Eos => "stop",
            FinishReason::Length => "length",
        };
        let cut = g.stop.iter().filter_map(|stop| text.find(stop)).min();
        if let Some(at) = cut {
            text.truncate(at);
            finish = "stop";
        }
        let logprobs = match g.logprobs {
            false => None,
            true => {
                let mut out = Vec::new();
                for (i, (t, lp)) in s.ids.iter().zip(&s.logprobs).enumerate() {
                    let piece = decode(&[*t])?;
                    // Tokens past a stop string are left out; the whole prefix is decoded,
                    // as a token alone can decode otherwise (a leading space, half a
                    // character).
                    if let Some(at) = cut {
                        if decode(&s.ids[..=i])?.len() > at {
                            break;
                        }
                    }
                    let alternatives = top.get(i).map_or(&[][..], Vec::as_slice);
                    out.push(TokenLogprob {
                        token: piece,
                        logprob: Some(*lp),
                        top: alternatives
                            .iter()
                            .map(|(a, l)| Ok((decode(&[*a])?, *l)))
                            .collect::<Result<_, ApiError>>()?,
                    });
                }
                Some(out)
            }
        };
        Ok(Choice {
            prompt_index: s.prompt_index,
            ids: s.ids.clone(),
            text,
            finish_reason: finish,
            logprobs,
            tokens: s.ids.len(),
            echo: None,
        })
    }

    /// Loads the PEFT adapter at `path` on the served model, unmerged (as a learning player
    /// holds it), under `name`.
    pub fn load(&mut self, name: &str, path: &str, inplace: bool) -> Result<(), ApiError> {
        if name.is_empty() || name == self.served {
            return Err(ApiError::invalid(
                "lora_name",
                format!("`{name}` cannot name an adapter: give a new, non-empty name"),
            ));
        }
        if self.adapters.contains_key(name) && !inplace {
            return Err(ApiError::invalid(
                "lora_name",
                format!("an adapter named `{name}` is already loaded (send load_inplace: true to replace it)"),
            ));
        }
        let mut model = self.model.clone();
        gpo_lm::load_lora(&mut model, Path::new(path))
            .map_err(|e| ApiError::invalid("lora_path", format!("cannot load the adapter: {e}")))?;
        self.adapters.insert(name.to_string(), model);
        self.sync_names();
        tracing::info!("loaded adapter `{name}` from {path}");
        Ok(())
    }

    /// Unloads the adapter `name` (404 when there is none).
    pub fn unload(&mut self, name: &str) -> Result<(), ApiError> {
        if self.adapters.remove(name).is_none() {
            return Err(ApiError {
                status: 404,
                message: format!("no adapter named `{name}` is loaded"),
                param: Some("lora_name"),
                code: "not_found",
            });
        }
        self.sync_names();
        tracing::info!("unloaded adapter `{name}`");
        Ok(())
    }

    fn sync_names(&self) {
        let mut names = vec![self.served.clone()];
        let mut adapters: Vec<String> = self.adapters.keys().cloned().collect();
        adapters.sort();
        names.extend(adapters);
        if let Ok(mut n) = self.names.lock() {
            *n = names;
        }
    }
}

fn server_error(message: String) -> ApiError {
    ApiError {
        status: 500,
        message,
        param: None,
        code: "server_error",
    }
}

/// Every request's answer, a missing one as a server error.
fn finished(answers: Vec<Option<Answer>>) -> Vec<Answer> {
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(server_error("no answer".into()))))
        .collect()
}

/// [`generate_rows_with`] over at most [`MAX_BATCH_ROWS`] rows at a time, so that one
/// request of many prompts cannot hold a KV cache of all of them; each row keeps its own
/// stream, and `on_token` sees rows by their index in `rows`.
fn generate_in_chunks(
    model: &CausalLm,
    rows: &[Row],
    pad: u32,
    on_token: &mut dyn FnMut(&Drawn),
) -> gpo_lm::Result<Vec<Sample>> {
    let mut out = Vec::with_capacity(rows.len());
    for (c, chunk) in rows.chunks(MAX_BATCH_ROWS).enumerate() {
        let offset = c * MAX_BATCH_ROWS;
        let mut shifted = |d: &Drawn| {
            on_token(&Drawn {
                row: d.row + offset,
                ..*d
            })
        };
        out.extend(generate_rows_with(
            model,
            chunk,
            pad,
            &Pass::infer(),
            &mut shifted,
        )?);
    }
    Ok(out)
}

/// Most sampled rows in one batch of requests.
const MAX_BATCH_ROWS: usize = 256;

/// Starts `engine` on a thread of its own. It takes every job waiting, in order: adapter
/// loads and unloads one at a time, and each run of generations between them batched by
/// the model they ask for (up to [`MAX_BATCH_ROWS`] rows a batch), so concurrent requests
/// share forward passes. It stops when every sender is dropped.
pub(crate) fn spawn(mut engine: Engine) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("gpo-serve-engine".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut jobs = vec![first];
                jobs.extend(rx.try_iter());
                engine.run(jobs);
            }
        })?;
    Ok(tx)
}

type Pending = Vec<(Generation, oneshot::Sender<Answer>)>;

impl Engine {
    /// Does `jobs` in order, generations batched between adapter changes.
    fn run(&mut self, jobs: Vec<Job>) {
        let mut pending: Pending = Vec::new();
        for job in jobs {
            // A client that has gone leaves its answer dropped.
            match job {
                Job::Generate(g, reply) => pending.push((g, reply)),
                Job::Stream(g, events) => {
                    self.generate_pending(std::mem::take(&mut pending));
                    self.stream(&g, &events);
                }
                Job::Load {
                    name,
                    path,
                    inplace,
                    reply,
                } => {
                    self.generate_pending(std::mem::take(&mut pending));
                    let _ = reply.send(self.load(&name, &path, inplace));
                }
                Job::Unload { name, reply } => {
                    self.generate_pending(std::mem::take(&mut pending));
                    let _ = reply.send(self.unload(&name));
                }
            }
        }
        self.generate_pending(pending);
    }

    /// Answers `pending` in batches of requests for one model.
    fn generate_pending(&self, mut pending: Pending) {
        while !pending.is_empty() {
            let model = pending[0].0.model.clone();
            let (mut batch, mut rest): (Pending, Pending) =
                pending.into_iter().partition(|(g, _)| g.model == model);
            let mut rows = 0;
            let take = batch
                .iter()
                .take_while(|(g, _)| {
                    rows += g.params.n * g.input.len();
                    rows <= MAX_BATCH_ROWS
                })
                .count()
                .max(1);
            rest.extend(batch.split_off(take));
            let gs: Vec<&Generation> = batch.iter().map(|(g, _)| g).collect();
            let answers = self.answer_batch(&gs);
            for ((_, reply), answer) in batch.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
            pending = rest;
        }
    }
}
