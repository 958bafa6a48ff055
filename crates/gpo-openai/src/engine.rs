//! An inference engine that samples a learning player's rollouts: vLLM (its OpenAI server
//! with LoRA adapters loaded at run time), SGLang (its native `/generate`), or `gpo serve`
//! (which speaks vLLM's subset). Prompts go as token ids, tokens and log-probs come back as
//! token ids, so nothing is tokenised twice.
//!
//! - vLLM: `POST /v1/completions` with `prompt` a list of token-id lists, `return_token_ids`
//!   and `logprobs: 0`; `POST /v1/load_lora_adapter {lora_name, lora_path}` and
//!   `/v1/unload_lora_adapter {lora_name}` (vLLM started with `--enable-lora` and
//!   `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`); the adapter is requested by name in `model`;
//!   `GET /v1/models` lists it once loaded.
//! - SGLang: `POST /generate` with `input_ids`, `sampling_params`, `return_logprob` and
//!   `lora_path` (the adapter's name), one request per prompt; `POST /load_lora_adapter`
//!   and `/unload_lora_adapter` with the same bodies as vLLM's.

use std::time::Duration;

use serde_json::{json, Value};

use crate::post::{request_json, Expect, Failure};
use crate::{Error, Result, API_KEY_VARS};

/// Which engine's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// vLLM's OpenAI-compatible server (and `gpo serve`).
    Vllm,
    /// SGLang's native server.
    Sglang,
}

/// What to sample: every sampling field is sent explicitly, so no engine default applies.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRequest<'a> {
    /// The adapter (or model) name to sample from.
    pub model: &'a str,
    /// Chat-templated prompts as token ids.
    pub prompts: &'a [Vec<u32>],
    /// Samples per prompt.
    pub n: usize,
    /// Seed of the sampling.
    pub seed: u64,
    /// Softmax temperature (0: greedy).
    pub temperature: f64,
    /// Nucleus mass.
    pub top_p: f64,
    /// Keep the k most likely tokens (0: all).
    pub top_k: usize,
    /// CTRL-style repetition penalty (1: none).
    pub repetition_penalty: f64,
    /// Most tokens per sample.
    pub max_tokens: usize,
    /// Tokens that end a sample (kept as its last token, as gpo's sampler does).
    pub stop_token_ids: &'a [u32],
}

/// One sample: its token ids, each token's log-prob, and whether it hit `max_tokens`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenChoice {
    /// Generated token ids (an end-of-sequence token, when sampled, is the last).
    pub ids: Vec<u32>,
    /// The engine's log-prob of each token.
    pub logprobs: Vec<f32>,
    /// Whether the sample stopped at `max_tokens` rather than at a stop token.
    pub length: bool,
}

/// One engine at one URL.
#[derive(Debug, Clone)]
pub struct EngineClient {
    kind: EngineKind,
    root: String,
    api_key: Option<String>,
    agent: ureq::Agent,
    tries: u32,
}

impl EngineClient {
    /// A client of the engine at `url` (its root, e.g. `http://10.0.0.2:8000`; a trailing
    /// `/v1` is accepted), waiting up to `timeout` for a reply and trying each request up to
    /// `tries` times. A bearer token is read from [`API_KEY_VARS`]. `field` names the
    /// setting in errors.
    pub fn new(
        kind: EngineKind,
        url: &str,
        timeout: Duration,
        tries: u32,
        field: &'static str,
    ) -> Result<Self> {
        let root = url.trim_end_matches('/').trim_end_matches("/v1");
        if !(root.starts_with("http://") || root.starts_with("https://")) {
            return Err(Error::Config {
                field,
                msg: format!("{url:?} is not an http(s) URL, e.g. http://localhost:8000"),
            });
        }
        let api_key = API_KEY_VARS
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|k| !k.is_empty()));
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .build();
        Ok(EngineClient {
            kind,
            root: root.to_string(),
            api_key,
            agent,
            tries: tries.max(1),
        })
    }

    /// The engine's root URL.
    pub fn url(&self) -> &str {
        &self.root
    }

    fn call(&self, route: &str, body: Option<&Value>) -> std::result::Result<Value, Failure> {
        let url = format!("{}{route}", self.root);
        let key = self.api_key.as_deref();
        request_json(&self.agent, &url, key, body, self.tries, Expect::Json)
    }

    /// A load or unload: vLLM answers with plain text, SGLang with `{"success", ...}`.
    fn call_lora(&self, verb: &str, body: &Value) -> std::result::Result<(), Failure> {
        let url = format!("{}{}", self.root, self.lora_route(verb));
        let key = self.api_key.as_deref();
        let reply = request_json(&self.agent, &url, key, Some(body), self.tries, Expect::Any)?;
        match reply.get("success").and_then(Value::as_bool) {
            Some(false) => Err(Failure {
                status: None,
                msg: format!("the engine says: {}", reply["error_message"]),
            }),
            _ => Ok(()),
        }
    }

    fn error(&self, what: &str, msg: String) -> Error {
        Error::Server {
            url: self.root.clone(),
            msg: format!("{what}: {msg}"),
        }
    }

    fn lora_route(&self, verb: &str) -> String {
        match self.kind {
            EngineKind::Vllm => format!("/v1/{verb}_lora_adapter"),
            EngineKind::Sglang => format!("/{verb}_lora_adapter"),
        }
    }

    /// Loads the PEFT adapter directory `path` (as the engine's machine sees it) as `name`.
    pub fn load_adapter(&self, name: &str, path: &str) -> Result<()> {
        let body = json!({"lora_name": name, "lora_path": path});
        match self.call_lora("load", &body) {
            Ok(()) => Ok(()),
            // A load whose reply was lost and was tried again meets its own earlier
            // success ("already loaded"): the engine listing the adapter settles it.
            Err(f) if self.kind == EngineKind::Vllm && self.lists(name).unwrap_or(false) => {
                tracing::debug!("adapter `{name}` is loaded despite: {}", f.msg);
                Ok(())
            }
            Err(f) => Err(self.error(&format!("loading adapter `{name}` from {path}"), f.msg)),
        }
    }

    /// Unloads the adapter `name`; one the engine does not have is not an error.
    pub fn unload_adapter(&self, name: &str) -> Result<()> {
        let body = json!({"lora_name": name});
        match self.call_lora("unload", &body) {
            Ok(())
            | Err(Failure {
                status: Some(404), ..
            }) => Ok(()),
            Err(f) => Err(self.error(&format!("unloading adapter `{name}`"), f.msg)),
        }
    }

    /// Whether the engine lists `name` among its models (vLLM's `GET /v1/models`; SGLang
    /// is taken at its word after a load).
    pub fn lists(&self, name: &str) -> Result<bool> {
        if self.kind == EngineKind::Sglang {
            return Ok(true);
        }
        let v = self
            .call("/v1/models", None)
            .map_err(|f| self.error("listing models", f.msg))?;
        Ok(v["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|m| m["id"] == name)))
    }

    /// Samples `req.n` continuations of each prompt, prompt-major.
    pub fn generate(&self, req: &TokenRequest) -> Result<Vec<TokenChoice>> {
        let what = format!("sampling from `{}`", req.model);
        match self.kind {
            EngineKind::Vllm => {
                let reply = self
                    .call("/v1/completions", Some(&vllm_body(req)))
                    .map_err(|f| self.error(&what, f.msg))?;
                vllm_choices(&reply, req.prompts.len() * req.n).map_err(|m| self.error(&what, m))
            }
            EngineKind::Sglang => {
                let mut out = Vec::with_capacity(req.prompts.len() * req.n);
                for (i, p) in req.prompts.iter().enumerate() {
                    let body = sglang_body(req, p, i as u64);
                    let reply = self
                        .call("/generate", Some(&body))
                        .map_err(|f| self.error(&what, f.msg))?;
                    out.extend(sglang_choices(&reply, req.n).map_err(|m| self.error(&what, m))?);
                }
                Ok(out)
            }
        }
    }
}

fn vllm_body(req: &TokenRequest) -> Value {
    json!({
        "model": req.model,
        "prompt": req.prompts,
        "n": req.n,
        "seed": req.seed,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "top_k": if req.top_k == 0 { -1 } else { req.top_k as i64 },
        "repetition_penalty": req.repetition_penalty,
        "max_tokens": req.max_tokens,
        "stop_token_ids": req.stop_token_ids,
        "ignore_eos": false,
        "logprobs": 0,
        "return_token_ids": true,
        "skip_special_tokens": false,
        "stream": false,
    })
}

/// The choices of a vLLM completions reply, ordered by `index` (prompt-major).
fn vllm_choices(reply: &Value, want: usize) -> std::result::Result<Vec<TokenChoice>, String> {
    let choices = reply["choices"]
        .as_array()
        .ok_or("the reply has no `choices` list")?;
    if choices.len() != want {
        return Err(format!(
            "the reply has {} choices, not the {want} asked for (a reply cut short?)",
            choices.len()
        ));
    }
    let mut out: Vec<Option<TokenChoice>> = vec![None; want];
    for (k, c) in choices.iter().enumerate() {
        let index = c["index"].as_u64().map_or(k, |i| i as usize);
        let ids = u32_list(&c["token_ids"]).ok_or(
            "a choice has no `token_ids`: the engine must support `return_token_ids` \
             (vLLM 0.10.2 or later)",
        )?;
        let logprobs = f32_list(&c["logprobs"]["token_logprobs"])
            .ok_or("a choice has no `logprobs.token_logprobs`")?;
        let slot = out
            .get_mut(index)
            .ok_or_else(|| format!("choice index {index} is out of range"))?;
        *slot = Some(checked(ids, logprobs, c["finish_reason"] == "length")?);
    }
    out.into_iter()
        .enumerate()
        .map(|(i, c)| c.ok_or_else(|| format!("choice {i} is missing")))
        .collect()
}

fn sglang_body(req: &TokenRequest, prompt: &[u32], i: u64) -> Value {
    json!({
        "input_ids": prompt,
        "lora_path": req.model,
        "return_logprob": true,
        "sampling_params": {
            "n": req.n,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "top_k": if req.top_k == 0 { -1 } else { req.top_k as i64 },
            "repetition_penalty": req.repetition_penalty,
            "max_new_tokens": req.max_tokens,
            "stop_token_ids": req.stop_token_ids,
            "skip_special_tokens": false,
            "sampling_seed": req.seed.wrapping_add(i),
        },
    })
}

/// The samples of one SGLang `/generate` reply (one object, or a list of `n`).
fn sglang_choices(reply: &Value, n: usize) -> std::result::Result<Vec<TokenChoice>, String> {
    let items: Vec<&Value> = match reply.as_array() {
        Some(list) => list.iter().collect(),
        None => vec![reply],
    };
    if items.len() != n {
        return Err(format!("the reply has {} samples, not {n}", items.len()));
    }
    items
        .into_iter()
        .map(|item| {
            let pairs = item["meta_info"]["output_token_logprobs"]
                .as_array()
                .ok_or("a sample has no `meta_info.output_token_logprobs` (send return_logprob)")?;
            let mut ids = Vec::with_capacity(pairs.len());
            let mut logprobs = Vec::with_capacity(pairs.len());
            for p in pairs {
                let (Some(lp), Some(id)) = (p[0].as_f64(), p[1].as_u64()) else {
                    return Err("an output token is not [logprob, token_id, ...]".to_string());
                };
                logprobs.push(lp as f32);
                ids.push(u32::try_from(id).map_err(|_| format!("token id {id} is too large"))?);
            }
            checked(
                ids,
                logprobs,
                item["meta_info"]["finish_reason"]["type"] == "length",
            )
        })
        .collect()
}

fn checked(
    ids: Vec<u32>,
    logprobs: Vec<f32>,
    length: bool,
) -> std::result::Result<TokenChoice, String> {
    if ids.is_empty() || ids.len() != logprobs.len() {
        return Err(format!(
            "a sample has {} tokens and {} log-probs; both must be equal and non-zero",
            ids.len(),
            logprobs.len()
        ));
    }
    if let Some(bad) = logprobs.iter().find(|x| !x.is_finite()) {
        return Err(format!("a sample has the log-prob {bad}"));
    }
    Ok(TokenChoice {
        ids,
        logprobs,
        length,
    })
}

fn u32_list(v: &Value) -> Option<Vec<u32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
        .collect()
}

fn f32_list(v: &Value) -> Option<Vec<f32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_f64().map(|x| x as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vllm_choices_are_ordered_by_index_and_checked() {
        let reply = json!({"choices": [
            {"index": 1, "token_ids": [7, 2], "logprobs": {"token_logprobs": [-0.5, -0.1]},
             "finish_reason": "stop"},
            {"index": 0, "token_ids": [5], "logprobs": {"token_logprobs": [-1.0]},
             "finish_reason": "length"},
        ]});
        let c = vllm_choices(&reply, 2).unwrap();
        assert_eq!((c[0].ids.clone(), c[0].length), (vec![5], true));
        assert_eq!((c[1].ids.clone(), c[1].length), (vec![7, 2], false));
        assert!(vllm_choices(&reply, 3).unwrap_err().contains("not the 3"));
        let short = json!({"choices": [{"index": 0, "token_ids": [5, 6],
            "logprobs": {"token_logprobs": [-1.0]}, "finish_reason": "length"}]});
        assert!(vllm_choices(&short, 1)
            .unwrap_err()
            .contains("2 tokens and 1"));
        let old = json!({"choices": [{"index": 0, "text": "x"}]});
        assert!(vllm_choices(&old, 1)
            .unwrap_err()
            .contains("return_token_ids"));
    }

    #[test]
    fn sglang_samples_read_logprob_id_pairs() {
        let reply = json!([
            {"text": "a", "meta_info": {"output_token_logprobs": [[-0.2, 11, "a"], [-0.3, 2, null]],
             "finish_reason": {"type": "stop"}}},
            {"text": "b", "meta_info": {"output_token_logprobs": [[-0.4, 12, "b"]],
             "finish_reason": {"type": "length"}}},
        ]);
        let c = sglang_choices(&reply, 2).unwrap();
        assert_eq!(c[0].ids, vec![11, 2]);
        assert_eq!(c[0].logprobs, vec![-0.2, -0.3]);
        assert!(!c[0].length && c[1].length);
    }

    #[test]
    fn a_url_that_is_not_http_names_its_field() {
        let e = EngineClient::new(
            EngineKind::Vllm,
            "localhost:8000",
            Duration::from_secs(1),
            1,
            "defender.rollout.urls",
        )
        .unwrap_err();
        assert!(e.to_string().contains("defender.rollout.urls"), "{e}");
        let c = EngineClient::new(
            EngineKind::Vllm,
            "http://h:1/v1/",
            Duration::from_secs(1),
            1,
            "x",
        )
        .unwrap();
        assert_eq!(c.url(), "http://h:1");
    }
}
