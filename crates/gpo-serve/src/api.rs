//! The OpenAI chat-completions wire format: what a request may hold, how it becomes one
//! generation, and the reply and error bodies.

use gpo_lm::SamplingParams;
use serde::Deserialize;
use serde_json::{json, Value};

/// One turn of a request's conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
}

/// `stop`: one string or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// A `POST /v1/chat/completions` body. Fields gpo does not use (`user`, `frequency_penalty`,
/// ...) are ignored, as OpenAI-compatible servers do.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    /// The model asked for; absent means the one served.
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// How to sample.
    #[serde(flatten)]
    pub sampling: SamplingFields,
    /// Return each chosen token's log-probability.
    #[serde(default)]
    pub logprobs: bool,
    /// The likeliest alternatives to report at each position, with `logprobs` (0-20).
    pub top_logprobs: Option<usize>,
    /// Send the reply as server-sent events, each choice's text as it is generated.
    #[serde(default)]
    pub stream: bool,
}

/// A request the server refuses or could not answer, as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The request field at fault, when there is one.
    pub param: Option<&'static str>,
    /// OpenAI's error code (`invalid_api_key`, `model_not_found`, ...).
    pub code: &'static str,
}

impl ApiError {
    /// A 400 about `param`.
    pub fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
            param: Some(param),
            code: "invalid_request_error",
        }
    }

    /// `{"error": {"message", "type", "param", "code"}}`.
    pub fn body(&self) -> Value {
        let kind = match self.status {
            401 => "authentication_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            s if s >= 500 => "server_error",
            _ => "invalid_request_error",
        };
        json!({"error": {
            "message": self.message,
            "type": kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

/// What a request asks to continue.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A conversation, rendered by the chat template up to the assistant's turn.
    Chat(Vec<gpo_tokenizer::ChatMessage>),
    /// Plain-text prompts, tokenised as they are (no template, no special tokens added).
    Texts(Vec<String>),
    /// Prompts as token ids.
    Tokens(Vec<Vec<u32>>),
}

impl Input {
    /// How many prompts it holds (a conversation is one).
    pub fn len(&self) -> usize {
        match self {
            Input::Chat(_) => 1,
            Input::Texts(t) => t.len(),
            Input::Tokens(t) => t.len(),
        }
    }

    /// Whether it holds no prompt.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a checked request asks the model for.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The model or loaded adapter asked for (`None`: the served model).
    pub model: Option<String>,
    /// The prompts; all of them are sampled in one batch with one seed, so a request holding
    /// a player's whole rollout repeats gpo's own sampling exactly.
    pub input: Input,
    /// How to sample (`n`, seed and all).
    pub params: SamplingParams,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Token ids that end a choice, beside the model's end-of-sequence tokens (kept as the
    /// choice's last token).
    pub stop_token_ids: Vec<u32>,
    /// Whether to return the chosen tokens' log-probabilities.
    pub logprobs: bool,
    /// How many of the likeliest alternatives to return at each position, with `logprobs`.
    pub top_logprobs: usize,
    /// Prepend each prompt (and, with `logprobs`, its tokens' log-probs) to its choices.
    pub echo: bool,
    /// Score the prompt without generating (`echo` with `max_tokens: 0`).
    pub score_only: bool,
    /// Send the reply as server-sent events.
    pub stream: bool,
}

/// Most stop strings, and most stop token ids, a request may give.
pub const MAX_STOPS: usize = 64;

/// Most alternatives per position a request may ask for (vLLM's default limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// A generated token's text and log-prob, with the likeliest alternatives when asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    /// Its text.
    pub token: String,
    /// Its log-prob under `softmax(logits / T)` (`None` for a prompt's first token, which
    /// nothing predicts).
    pub logprob: Option<f32>,
    /// The likeliest tokens at its position (text, log-prob), most likely first.
    pub top: Vec<(String, f32)>,
}

/// The sampling fields shared by chat and text completions.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SamplingFields {
    /// Choices to generate per prompt.
    pub n: Option<usize>,
    /// Seed of the sampling (the same seed and request give the same reply).
    pub seed: Option<u64>,
    /// Most tokens per choice.
    pub max_tokens: Option<usize>,
    /// The newer name of `max_tokens`.
    pub max_completion_tokens: Option<usize>,
    /// Softmax temperature (default 1; 0 is greedy).
    pub temperature: Option<f64>,
    /// Nucleus mass (default 1).
    pub top_p: Option<f64>,
    /// vLLM's extension: keep the k most likely tokens (0 or -1: all).
    pub top_k: Option<i64>,
    /// vLLM's extension: CTRL-style repetition penalty (default 1).
    pub repetition_penalty: Option<f64>,
    /// vLLM's extension: keep generating past end-of-sequence tokens.
    #[serde(default)]
    pub ignore_eos: bool,
    /// Strings that end a choice (not included in it).
    pub stop: Option<Stop>,
    /// vLLM's extension: token ids that end a choice.
    #[serde(default)]
    pub stop_token_ids: Vec<u32>,
}

impl SamplingFields {
    /// The sampler's settings and the stop strings, checked against `limits`; `seed` is
    /// used when the request gives none.
    pub fn params(
        &self,
        limits: &Limits,
        seed: u64,
    ) -> Result<(SamplingParams, Vec<String>), ApiError> {
        let n = self.n.unwrap_or(1);
        if n == 0 || n > limits.max_n {
            return Err(ApiError::invalid(
                "n",
                format!("n = {n} must be in 1..={}", limits.max_n),
            ));
        }
        let max_tokens = self
            .max_completion_tokens
            .or(self.max_tokens)
            .unwrap_or(limits.default_max_tokens);
        if max_tokens == 0 || max_tokens > limits.max_tokens {
            return Err(ApiError::invalid(
                "max_tokens",
                format!(
                    "max_tokens = {max_tokens} must be in 1..={} (the server's --max-tokens-limit)",
                    limits.max_tokens
                ),
            ));
        }
        let params = SamplingParams {
            temperature: self.temperature.unwrap_or(1.0),
            top_p: self.top_p.unwrap_or(1.0),
            top_k: usize::try_from(self.top_k.unwrap_or(0).max(0)).unwrap_or(0),
            repetition_penalty: self.repetition_penalty.unwrap_or(1.0),
            max_new_tokens: max_tokens,
            ignore_eos: self.ignore_eos,
            n,
            seed: self.seed.unwrap_or(seed),
        };
        params
            .validate()
            .map_err(|e| ApiError::invalid("sampling", e.to_string()))?;
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        if stop.iter().any(String::is_empty) || stop.len() > MAX_STOPS {
            return Err(ApiError::invalid(
                "stop",
                format!("give at most {MAX_STOPS} stop strings, none empty"),
            ));
        }
        if self.stop_token_ids.len() > MAX_STOPS {
            return Err(ApiError::invalid(
                "stop_token_ids",
                format!("give at most {MAX_STOPS} stop token ids"),
            ));
        }
        Ok((params, stop))
    }
}

/// A 404 for a model the server does not have.
pub fn model_not_found(asked: &str, known: &[String]) -> ApiError {
    ApiError {
        status: 404,
        message: format!(
            "the model `{asked}` does not exist; this server has {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        param: Some("model"),
        code: "model_not_found",
    }
}

/// The limits a server puts on requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Most tokens per choice a request may ask for.
    pub max_tokens: usize,
    /// Tokens per choice when a request does not say.
    pub default_max_tokens: usize,
    /// Most choices per request.
    pub max_n: usize,
}

impl ChatRequest {
    /// Checks the request against `limits` and the names the server knows (its model and
    /// loaded adapters); `seed` is used when the request gives none.
    pub fn generation(
        &self,
        known: &[String],
        limits: &Limits,
        seed: u64,
    ) -> Result<Generation, ApiError> {
        let model = checked_model(self.model.as_deref(), known)?;
        let top_logprobs = self.top_logprobs.unwrap_or(0);
        if top_logprobs > MAX_TOP_LOGPROBS || (top_logprobs > 0 && !self.logprobs) {
            return Err(ApiError::invalid(
                "top_logprobs",
                format!("top_logprobs must be in 0..={MAX_TOP_LOGPROBS}, with logprobs: true"),
            ));
        }
        if self.messages.is_empty() {
            return Err(ApiError::invalid(
                "messages",
                "at least one message is needed",
            ));
        }
        let (params, stop) = self.sampling.params(limits, seed)?;
        let messages = self
            .messages
            .iter()
            .map(|m| gpo_tokenizer::ChatMessage::new(&m.role, &m.content))
            .collect();
        Ok(Generation {
            model,
            input: Input::Chat(messages),
            params,
            stop,
            stop_token_ids: self.sampling.stop_token_ids.clone(),
            logprobs: self.logprobs,
            top_logprobs,
            echo: false,
            score_only: false,
            stream: self.stream,
        })
    }
}

/// The model a request names, when it is one the server knows (`None`: not named).
pub fn checked_model(asked: Option<&str>, known: &[String]) -> Result<Option<String>, ApiError> {
    match asked {
        None => Ok(None),
        Some(m) if known.iter().any(|k| k == m) => Ok(Some(m.to_string())),
        Some(m) => Err(model_not_found(m, known)),
    }
}

/// One generated choice, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The prompt it continues (its position in the request).
    pub prompt_index: usize,
    /// The generated token ids (an end-of-sequence token, when sampled, is the last).
    pub ids: Vec<u32>,
    /// The text (cut before a stop string when one occurred).
    pub text: String,
    /// `stop` (end of sequence or a stop string) or `length`.
    pub finish_reason: &'static str,
    /// Each chosen token's text and log-probability, when asked for.
    pub logprobs: Option<Vec<TokenLogprob>>,
    /// Tokens generated.
    pub tokens: usize,
    /// The prompt's text and token log-probs (these when `logprobs` was asked), for `echo`.
    pub echo: Option<(String, Vec<TokenLogprob>)>,
}

/// The reply body of a chat completion.
pub fn chat_reply(
    id: u64,
    created: u64,
    model: &str,
    prompt_tokens: usize,
    choices: &[Choice],
) -> Value {
    let completion_tokens: usize = choices.iter().map(|c| c.tokens).sum();
    let choices: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let logprobs = c.logprobs.as_deref().map(chat_logprobs);
            json!({
                "index": i,
                "message": {"role": "assistant", "content": c.text},
                "logprobs": logprobs,
                "finish_reason": c.finish_reason,
            })
        })
        .collect();
    json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
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

/// `{"content": [...]}`: each token's text, log-prob, bytes and likeliest alternatives, as
/// chat completions report log-probs.
pub fn chat_logprobs(lp: &[TokenLogprob]) -> Value {
    let entry = |token: &str, logprob: f32| json!({"token": token, "logprob": logprob, "bytes": token.as_bytes()});
    let content: Vec<Value> = lp
        .iter()
        .map(|t| {
            let mut e = entry(&t.token, t.logprob.unwrap_or(0.0));
            e["top_logprobs"] = t.top.iter().map(|(tok, l)| entry(tok, *l)).collect();
            e
        })
        .collect();
    json!({ "content": content })
}

/// One server-sent chunk of a streamed chat completion: new `content` of choice `index`,
/// its `role` on the choice's first chunk, or its `finish_reason` (empty delta).
pub fn chat_chunk(
    id: u64,
    created: u64,
    model: &str,
    index: usize,
    delta: ChunkDelta<'_>,
) -> Value {
    let (delta, finish, logprobs) = match delta {
        ChunkDelta::Role => (json!({"role": "assistant", "content": ""}), None, None),
        ChunkDelta::Text(t, lp) => (json!({"content": t}), None, lp.map(chat_logprobs)),
        ChunkDelta::Finish(reason) => (json!({}), Some(reason), None),
    };
    json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
    })
}

/// What one streamed chunk carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChunkDelta<'a> {
    /// The assistant's role, opening a chat choice.
    Role,
    /// New text, with its tokens' log-probs when the request asks for them.
    Text(&'a str, Option<&'a [TokenLogprob]>),
    /// The choice ended for this reason.
    Finish(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_tokens: 64,
        default_max_tokens: 16,
        max_n: 4,
    };

    fn known() -> Vec<String> {
        vec!["m".to_string()]
    }

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn a_request_becomes_a_generation_with_openai_defaults() {
        let r = request(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                               "user": "ignored", "frequency_penalty": 0}),
        );
        let g = r.generation(&known(), &LIMITS, 7).unwrap();
        assert_eq!(g.params.temperature, 1.0);
        assert_eq!(g.params.top_p, 1.0);
        assert_eq!(
            (g.params.n, g.params.seed, g.params.max_new_tokens),
            (1, 7, 16)
        );
        let r = request(
            json!({"messages": [{"role": "user", "content": "hi"}], "seed": 3,
                               "max_completion_tokens": 5, "top_k": -1, "stop": "x"}),
        );
        let g = r.generation(&known(), &LIMITS, 7).unwrap();
        assert_eq!(
            (g.params.seed, g.params.max_new_tokens, g.params.top_k),
            (3, 5, 0)
        );
        assert_eq!(g.stop, vec!["x".to_string()]);
    }

    #[test]
    fn refusals_name_the_field() {
        let bad = |body: Value| request(body).generation(&known(), &LIMITS, 0).unwrap_err();
        let msg = json!([{"role": "user", "content": "hi"}]);
        let e = bad(json!({"model": "other", "messages": msg}));
        assert_eq!(
            (e.status, e.param, e.code),
            (404, Some("model"), "model_not_found")
        );
        assert_eq!(
            bad(json!({"messages": msg, "max_tokens": 65})).param,
            Some("max_tokens")
        );
        assert_eq!(bad(json!({"messages": msg, "n": 5})).param, Some("n"));
        assert_eq!(
            bad(json!({"messages": msg, "top_p": 0})).param,
            Some("sampling")
        );
        assert_eq!(bad(json!({"messages": []})).param, Some("messages"));
        assert_eq!(
            bad(json!({"messages": msg, "stop": [""]})).param,
            Some("stop")
        );
        let many: Vec<String> = (0..=MAX_STOPS).map(|i| i.to_string()).collect();
        assert_eq!(
            bad(json!({"messages": msg, "stop": many})).param,
            Some("stop")
        );
        assert_eq!(
            bad(json!({"messages": msg, "stop_token_ids": vec![1; MAX_STOPS + 1]})).param,
            Some("stop_token_ids")
        );
        let body = ApiError::invalid("n", "x").body();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "n");
    }
}
