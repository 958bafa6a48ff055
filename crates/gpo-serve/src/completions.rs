//! The OpenAI text-completions wire format (`POST /v1/completions`), with vLLM's extensions
//! that RL rollouts need: token-id prompts, `return_token_ids`, `stop_token_ids`.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{
    checked_model, ApiError, Choice, Generation, Input, Limits, SamplingFields, TokenLogprob,
    MAX_TOP_LOGPROBS,
};

/// `prompt`: one text, several, one token-id list, or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One text.
    Text(String),
    /// Several texts.
    Texts(Vec<String>),
    /// One prompt as token ids.
    Tokens(Vec<u32>),
    /// Several prompts as token ids.
    TokenLists(Vec<Vec<u32>>),
}

/// A `POST /v1/completions` body; fields gpo does not use are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// The model or loaded adapter asked for; absent means the served model.
    pub model: Option<String>,
    /// What to continue.
    pub prompt: Prompt,
    /// How to sample.
    #[serde(flatten)]
    pub sampling: SamplingFields,
    /// Return each chosen token's log-prob, with this many of the likeliest alternatives at
    /// each position (0-20).
    pub logprobs: Option<usize>,
    /// vLLM's extension: return each choice's token ids.
    #[serde(default)]
    pub return_token_ids: bool,
    /// Prepend the prompt to each choice, and with `logprobs` its tokens' log-probs
    /// (teacher-forced, under `softmax(logits)`); with `max_tokens: 0` the prompt is only
    /// scored (the way lm-eval reads log-likelihoods).
    #[serde(default)]
    pub echo: bool,
    /// Send the reply as server-sent events, each choice's text as it is generated.
    #[serde(default)]
    pub stream: bool,
}

/// Prompts per request at most.
pub const MAX_PROMPTS: usize = 1024;
/// Choices per request at most (prompts times `n`).
pub const MAX_CHOICES: usize = 1024;

impl CompletionRequest {
    /// Checks the request against `limits` and the names the server knows; `seed` is used
    /// when the request gives none.
    pub fn generation(
        &self,
        known: &[String],
        limits: &Limits,
        seed: u64,
    ) -> Result<Generation, ApiError> {
        let model = checked_model(self.model.as_deref(), known)?;
        if self.echo && self.stream {
            return Err(ApiError::invalid(
                "echo",
                "echo with stream is not supported; send one of them",
            ));
        }
        if self.logprobs.unwrap_or(0) > MAX_TOP_LOGPROBS {
            return Err(ApiError::invalid(
                "logprobs",
                format!("logprobs must be in 0..={MAX_TOP_LOGPROBS}"),
            ));
        }
        let input = match &self.prompt {
            Prompt::Text(t) => Input::Texts(vec![t.clone()]),
            Prompt::Texts(t) => Input::Texts(t.clone()),
            Prompt::Tokens(ids) => Input::Tokens(vec![ids.clone()]),
            Prompt::TokenLists(ids) => Input::Tokens(ids.clone()),
        };
        let count = input.len();
        if count == 0 || count > MAX_PROMPTS {
            return Err(ApiError::invalid(
                "prompt",
                format!("{count} prompts; send 1..={MAX_PROMPTS}"),
            ));
        }
        let score_only = self.echo && self.sampling.max_tokens == Some(0);
        let mut sampling = self.sampling.clone();
        if score_only {
            sampling.max_tokens = Some(1);
            sampling.max_completion_tokens = None;
        }
        let (params, stop) = sampling.params(limits, seed)?;
        if count * params.n > MAX_CHOICES {
            return Err(ApiError::invalid(
                "n",
                format!(
                    "{count} prompts x n = {} is more than the {MAX_CHOICES} choices one \
                     request may ask for",
                    params.n
                ),
            ));
        }
        Ok(Generation {
            model,
            input,
            params,
            stop,
            stop_token_ids: self.sampling.stop_token_ids.clone(),
            logprobs: self.logprobs.is_some(),
            top_logprobs: self.logprobs.unwrap_or(0),
            echo: self.echo,
            score_only,
            stream: self.stream,
        })
    }
}

/// The reply body of a text completion: choice `i * n + j` is prompt `i`'s `j`-th.
pub fn completion_reply(
    id: u64,
    created: u64,
    model: &str,
    prompt_tokens: usize,
    choices: &[Choice],
    return_token_ids: bool,
) -> Value {
    let completion_tokens: usize = choices.iter().map(|c| c.tokens).sum();
    let choices: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (echo_text, echo_lps) = match &c.echo {
                Some((text, lps)) => (text.as_str(), lps.as_slice()),
                None => ("", &[][..]),
            };
            let logprobs = c.logprobs.as_ref().map(|generated| {
                completion_logprobs(&echo_lps.iter().chain(generated).collect::<Vec<_>>())
            });
            let mut choice = json!({
                "index": i,
                "text": format!("{echo_text}{}", c.text),
                "logprobs": logprobs,
                "finish_reason": c.finish_reason,
            });
            if return_token_ids {
                choice["token_ids"] = json!(c.ids);
            }
            choice
        })
        .collect();
    json!({
        "id": format!("cmpl-{id}"),
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    })
}

/// `{"tokens", "token_logprobs", "text_offset", "top_logprobs"}`, as text completions
/// report log-probs (a `top_logprobs` entry is `null` where nothing predicts the token).
pub fn completion_logprobs(lp: &[&TokenLogprob]) -> Value {
    let mut offset = 0;
    let mut offsets = Vec::with_capacity(lp.len());
    for t in lp {
        offsets.push(offset);
        offset += t.token.len();
    }
    let top: Value = match lp.iter().all(|t| t.top.is_empty()) {
        true => Value::Null,
        false => lp
            .iter()
            .map(|t| match t.logprob {
                None => Value::Null,
                Some(_) => Value::Object(
                    t.top
                        .iter()
                        .map(|(tok, l)| (tok.clone(), json!(l)))
                        .collect(),
                ),
            })
            .collect(),
    };
    json!({
        "tokens": lp.iter().map(|t| &t.token).collect::<Vec<_>>(),
        "token_logprobs": lp.iter().map(|t| t.logprob).collect::<Vec<_>>(),
        "text_offset": offsets,
        "top_logprobs": top,
    })
}

/// One server-sent chunk of a streamed text completion: new `text` of choice `index`, or
/// its `finish_reason` (empty text).
pub fn completion_chunk(
    id: u64,
    created: u64,
    model: &str,
    index: usize,
    delta: crate::api::ChunkDelta<'_>,
) -> Value {
    let (text, finish, logprobs) = match delta {
        crate::api::ChunkDelta::Text(t, lp) => (
            t,
            None,
            lp.map(|lp| completion_logprobs(&lp.iter().collect::<Vec<_>>())),
        ),
        crate::api::ChunkDelta::Finish(reason) => ("", Some(reason), None),
        crate::api::ChunkDelta::Role => ("", None, None),
    };
    json!({
        "id": format!("cmpl-{id}"),
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_tokens: 64,
        default_max_tokens: 16,
        max_n: 4,
    };

    fn generation(body: Value) -> Result<Generation, ApiError> {
        let r: CompletionRequest = serde_json::from_value(body).unwrap();
        r.generation(&["m".to_string(), "lora-1".to_string()], &LIMITS, 7)
    }

    #[test]
    fn every_prompt_shape_is_read() {
        let g = generation(json!({"prompt": "hi"})).unwrap();
        assert_eq!(g.input, Input::Texts(vec!["hi".into()]));
        let g = generation(json!({"prompt": [[1, 2], [3]], "model": "lora-1", "n": 2,
                                  "seed": 5, "logprobs": 0, "stop_token_ids": [2]}))
        .unwrap();
        assert_eq!(g.input, Input::Tokens(vec![vec![1, 2], vec![3]]));
        assert_eq!(g.model.as_deref(), Some("lora-1"));
        assert_eq!((g.params.n, g.params.seed, g.logprobs), (2, 5, true));
        assert_eq!(g.stop_token_ids, vec![2]);
        let g = generation(json!({"prompt": [4, 5]})).unwrap();
        assert_eq!(g.input, Input::Tokens(vec![vec![4, 5]]));
    }

    #[test]
    fn unsupported_fields_and_unknown_models_are_refused() {
        assert_eq!(
            generation(json!({"prompt": "x", "logprobs": 21}))
                .unwrap_err()
                .param,
            Some("logprobs")
        );
        assert_eq!(
            generation(json!({"prompt": "x", "echo": true, "stream": true}))
                .unwrap_err()
                .param,
            Some("echo")
        );
        let g = generation(json!({"prompt": "x", "echo": true, "max_tokens": 0})).unwrap();
        assert!(g.echo && g.score_only);
        assert_eq!(
            generation(json!({"prompt": "x", "max_tokens": 0}))
                .unwrap_err()
                .param,
            Some("max_tokens")
        );
        let e = generation(json!({"prompt": "x", "model": "lora-0"})).unwrap_err();
        assert_eq!((e.status, e.code), (404, "model_not_found"));
        assert_eq!(
            generation(json!({"prompt": []})).unwrap_err().param,
            Some("prompt")
        );
    }

    #[test]
    fn replies_carry_token_ids_and_offsets() {
        let c = Choice {
            prompt_index: 0,
            ids: vec![7, 8],
            text: "ab".into(),
            finish_reason: "length",
            logprobs: Some(vec![
                crate::api::TokenLogprob {
                    token: "a".into(),
                    logprob: Some(-0.5),
                    top: vec![("a".into(), -0.5), ("c".into(), -1.5)],
                },
                crate::api::TokenLogprob {
                    token: "b".into(),
                    logprob: Some(-0.25),
                    top: vec![("b".into(), -0.25), ("d".into(), -2.0)],
                },
            ]),
            tokens: 2,
            echo: None,
        };
        let v = completion_reply(1, 0, "m", 3, &[c], true);
        assert_eq!(v["choices"][0]["token_ids"], json!([7, 8]));
        assert_eq!(v["choices"][0]["logprobs"]["text_offset"], json!([0, 1]));
        assert_eq!(
            v["choices"][0]["logprobs"]["token_logprobs"],
            json!([-0.5, -0.25])
        );
        assert_eq!(v["usage"]["total_tokens"], 5);
        assert_eq!(
            v["choices"][0]["logprobs"]["top_logprobs"][1]["d"],
            json!(-2.0)
        );
    }
}
