//! The model behind the server: one generation at a time, on a thread of its own.

use std::sync::mpsc;

use gpo_lm::{generate, CausalLm, FinishReason, Pass, Sample};
use gpo_tokenizer::Tokenizer;
use tokio::sync::oneshot;

use crate::api::{ApiError, Choice, Generation};

/// A model and its tokenizer (with a chat template), answering [`Generation`]s.
pub struct Engine {
    model: CausalLm,
    tokenizer: Tokenizer,
    eos: Vec<u32>,
    pad: u32,
}

/// What a generation gives: the prompt's token count and the choices.
pub type Answer = Result<(usize, Vec<Choice>), ApiError>;

/// A generation waiting for the engine, and where its answer goes.
pub(crate) struct Job {
    pub(crate) generation: Generation,
    pub(crate) reply: oneshot::Sender<Answer>,
}

impl Engine {
    /// `model` with `tokenizer`, whose chat template renders requests.
    pub fn new(model: CausalLm, tokenizer: Tokenizer) -> Self {
        let eos = tokenizer.eos_ids().to_vec();
        let pad = tokenizer.pad_id().unwrap_or(0);
        Engine {
            model,
            tokenizer,
            eos,
            pad,
        }
    }

    /// The token ids of `g`'s conversation through the chat template, up to the assistant's
    /// turn.
    pub fn prompt_ids(&self, g: &Generation) -> Result<Vec<u32>, ApiError> {
        let rendered = self
            .tokenizer
            .apply_chat_template(&g.messages, true)
            .map_err(|e| ApiError::invalid("messages", e.to_string()))?;
        let ids = self
            .tokenizer
            .encode(&rendered, false)
            .map_err(|e| ApiError::invalid("messages", e.to_string()))?;
        let context = self.model.config().max_position_embeddings;
        if ids.len() + g.params.max_new_tokens > context {
            return Err(ApiError::invalid(
                "max_tokens",
                format!(
                    "the conversation is {} tokens; with max_tokens {} that is past the model's \
                     context of {context} tokens",
                    ids.len(),
                    g.params.max_new_tokens
                ),
            ));
        }
        Ok(ids)
    }

    /// Generates `g`'s choices: the same sampler, seeds and chat template as a game's
    /// players, so a seeded request repeats exactly.
    pub fn answer(&self, g: &Generation) -> Answer {
        let ids = self.prompt_ids(g)?;
        let samples = generate(
            &self.model,
            std::slice::from_ref(&ids),
            &self.eos,
            self.pad,
            &g.params,
            &Pass::infer(),
        )
        .map_err(|e| server_error(format!("generation failed: {e}")))?;
        let choices = samples
            .iter()
            .map(|s| self.choice(s, g))
            .collect::<Result<_, _>>()?;
        Ok((ids.len(), choices))
    }

    /// One sample decoded, cut at the first stop string.
    fn choice(&self, s: &Sample, g: &Generation) -> Result<Choice, ApiError> {
        let decode = |ids: &[u32]| {
            self.tokenizer
                .decode(ids, true)
                .map_err(|e| server_error(format!("decoding failed: {e}")))
        };
        let kept: Vec<u32> = s
            .ids
            .iter()
            .copied()
            .filter(|t| !self.eos.contains(t))
            .collect();
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
                let mut len = 0;
                for (t, lp) in s.ids.iter().zip(&s.logprobs) {
                    let piece = decode(&[*t])?;
                    len += piece.len();
                    if cut.is_some_and(|at| len > at) {
                        break;
                    }
                    out.push((piece, *lp));
                }
                Some(out)
            }
        };
        Ok(Choice {
            text,
            finish_reason: finish,
            logprobs,
            tokens: s.ids.len(),
        })
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

/// Starts `engine` on a thread of its own; it answers the jobs sent to the returned
/// channel in order, and stops when every sender is dropped.
pub(crate) fn spawn(engine: Engine) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("gpo-serve-engine".into())
        .spawn(move || {
            for job in rx {
                // The client may have gone; its answer is then dropped.
                let _ = job.reply.send(engine.answer(&job.generation));
            }
        })?;
    Ok(tx)
}
