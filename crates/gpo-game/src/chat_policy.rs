//! A policy to evaluate: a chat model, optionally with LoRA adapters, that answers user
//! turns. Named on the command line by a model, an adapter directory or a run directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Device;
use gpo_assets::AssetCache;
use gpo_lm::{generate, CausalLm, LoadOptions, Pass, SamplingParams};
use gpo_tokenizer::{ChatMessage, Tokenizer};
use serde_json::{json, Value};

use crate::config::Iterate;
use crate::run_dir::RunDir;
use crate::schedule::Role;
use crate::{Error, Result};

pub use crate::served_name::SERVED_PREFIX;

/// Prompts generated at once; bounds the KV cache of a long prompt list.
const CHUNK: usize = 16;

/// `text` as a user turn through `tokenizer`'s chat template, ready to generate up to
/// `max_new_tokens` from with a model of `context` positions. The prompt is kept whole when
/// it fits; one that would leave too little room keeps its end (the template's assistant
/// header must survive), which the model could not have read anyway.
pub(crate) fn chat_ids(
    tokenizer: &Tokenizer,
    text: &str,
    context: usize,
    max_new_tokens: usize,
) -> Result<Vec<u32>> {
    let rendered = tokenizer.apply_chat_template(&[ChatMessage::user(text)], true)?;
    let mut ids = tokenizer.encode(&rendered, false)?;
    // With no room at all, generation's own context check reports the settings.
    let room = context.saturating_sub(max_new_tokens);
    if room > 0 && ids.len() > room {
        ids.drain(..ids.len() - room);
    }
    Ok(ids)
}

/// Where a policy comes from, as [`PolicySpec::parse`] reads a name.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicySpec {
    /// A base model: an asset alias, a `.gguf` file or a Hugging Face directory.
    Model(String),
    /// A model behind an OpenAI-compatible server, named `server:MODEL@URL` (e.g.
    /// `server:llama-2-7b-chat@http://gpu1:8000/v1`): responses are chat completions there.
    Served {
        /// The model's name on the server.
        model: String,
        /// The API root.
        url: String,
    },
    /// A PEFT adapter directory on the base model it records.
    Adapter {
        /// The adapter directory.
        dir: PathBuf,
        /// Its `base_model_name_or_path`.
        base: String,
    },
}

impl PolicySpec {
    /// Reads `name` for `role`: a run directory (holds `config.toml`) stands for the policy
    /// the run reports (see [`PolicySpec::of_run`]); a directory with `adapter_config.json`
    /// for that adapter on the base it records; `server:MODEL@URL` for a served model;
    /// anything else for a base model.
    pub fn parse(name: &str, role: Role) -> Result<PolicySpec> {
        if let Some(served) = crate::served_name::parse_served(name) {
            let (model, url) = served?;
            return Ok(PolicySpec::Served { model, url });
        }
        let path = Path::new(name);
        if path.join("config.toml").is_file() {
            return PolicySpec::of_run(path, role);
        }
        if path.join("adapter_config.json").is_file() {
            let base = gpo_lm::adapter_base_model(path)?.ok_or_else(|| {
                Error::Data(format!(
                    "{}: adapter_config.json names no base_model_name_or_path; gpo cannot \
                     tell which model the adapter belongs to",
                    path.display()
                ))
            })?;
            return Ok(PolicySpec::Adapter {
                dir: path.to_path_buf(),
                base,
            });
        }
        Ok(PolicySpec::Model(name.to_string()))
    }

    /// A model named in a config's `[models]`: served when it is `server:MODEL@URL`, else a
    /// base model.
    pub fn of_model(name: &str) -> Result<PolicySpec> {
        if name.starts_with(SERVED_PREFIX) {
            PolicySpec::parse(name, Role::Defender)
        } else {
            Ok(PolicySpec::Model(name.to_string()))
        }
    }

    /// Whether the policy is behind a server.
    pub fn is_served(&self) -> bool {
        matches!(self, PolicySpec::Served { .. })
    }

    /// The policy a run reports for `role`, as of its last checkpoint: the last iterate, or
    /// the EMA weights for `iterate = ema`; the latest snapshot when there is no checkpoint.
    /// A served defender is frozen, so it stands for itself.
    /// `iterate = average` reports a mixture, which is not one adapter: name a snapshot
    /// (`RUN_DIR/snapshots/ROLE/step-N`) or use `gpo crossplay`, which averages.
    pub fn of_run(path: &Path, role: Role) -> Result<PolicySpec> {
        let (run, cfg) = RunDir::open(path)?;
        let base = match role {
            Role::Attacker => cfg.models.attacker,
            Role::Defender => cfg.models.defender,
        };
        let spec = PolicySpec::of_model(&base)?;
        if spec.is_served() {
            return Ok(spec);
        }
        let ema = match cfg.iterate {
            Iterate::Last => false,
            Iterate::Ema { .. } => true,
            Iterate::Average => {
                return Err(Error::Data(format!(
                    "{}: the run reports the average of its snapshots (iterate = average), a \
                     mixture rather than one policy; name one snapshot \
                     ({}/snapshots/{}/step-N) or play them all with `gpo crossplay`",
                    path.display(),
                    path.display(),
                    role.as_str()
                )))
            }
        };
        let dir = match run.checkpoint_policy(role, ema) {
            Some(dir) => dir,
            None => run.snapshots(role).pop().ok_or_else(|| {
                Error::Data(format!(
                    "{}: the run has no checkpoint and no {} snapshot yet; name a model or an \
                     adapter directory instead",
                    path.display(),
                    role.as_str()
                ))
            })?,
        };
        Ok(PolicySpec::Adapter { dir, base })
    }

    /// The base model the policy runs on (a served policy's name on its server).
    pub fn base(&self) -> &str {
        match self {
            PolicySpec::Model(m) => m,
            PolicySpec::Adapter { base, .. } => base,
            PolicySpec::Served { model, .. } => model,
        }
    }
}

/// Base models loaded once and shared by every policy on them (LoRA adapters go on a
/// clone, which shares the base weights).
pub struct BaseModels {
    device: Device,
    dtype: gpo_lm::Precision,
    loaded: HashMap<String, (CausalLm, Arc<Tokenizer>)>,
}

impl BaseModels {
    /// No model loaded yet; those loaded later go on `device`, in `dtype`.
    pub fn new(device: Device, dtype: gpo_lm::Precision) -> Self {
        BaseModels {
            device,
            dtype,
            loaded: HashMap::new(),
        }
    }

    /// The base model `name` (loaded, and fetched when it is an alias, on first use; an
    /// adapter directory is its base with the adapter merged, see [`crate::load_base`]).
    pub fn get(&mut self, name: &str, cache: &AssetCache) -> Result<(CausalLm, Arc<Tokenizer>)> {
        if let Some((m, t)) = self.loaded.get(name) {
            return Ok((m.clone(), t.clone()));
        }
        let opts = LoadOptions {
            device: self.device.clone(),
            dtype: self.dtype.dtype(),
            ..LoadOptions::default()
        };
        let lm = crate::base_model::load_base(name, cache, &opts)?;
        let entry = (lm.model, Arc::new(lm.tokenizer));
        self.loaded.insert(name.to_string(), entry.clone());
        Ok(entry)
    }
}

/// A chat model that answers user turns: loaded here, or behind a server.
pub struct ChatPolicy {
    /// How it is shown in reports.
    pub name: String,
    backend: Backend,
}

enum Backend {
    Local {
        model: CausalLm,
        tokenizer: Arc<Tokenizer>,
        eos: Vec<u32>,
        pad: u32,
    },
    Served(gpo_openai::Client),
}

impl ChatPolicy {
    /// Loads `spec`, shown as `name`. A served policy is only a client: nothing is sent
    /// until the first [`ChatPolicy::respond`].
    pub fn load(
        name: &str,
        spec: &PolicySpec,
        bases: &mut BaseModels,
        cache: &AssetCache,
    ) -> Result<ChatPolicy> {
        if let PolicySpec::Served { model, url } = spec {
            let client = gpo_openai::Client::new(url, model, "policy URL", "policy model")
                .map_err(|source| Error::Served {
                    context: format!("policy `{name}`"),
                    source,
                })?;
            return Ok(ChatPolicy {
                name: name.to_string(),
                backend: Backend::Served(client),
            });
        }
        let (mut model, tokenizer) = bases.get(spec.base(), cache)?;
        if let PolicySpec::Adapter { dir, .. } = spec {
            gpo_lm::load_lora(&mut model, dir)?;
        }
        let eos = tokenizer.eos_ids().to_vec();
        let pad = tokenizer.pad_id().unwrap_or(0);
        Ok(ChatPolicy {
            name: name.to_string(),
            backend: Backend::Local {
                model,
                tokenizer,
                eos,
                pad,
            },
        })
    }

    /// For a served policy, one one-token completion, so that an unreachable server or a
    /// model it does not serve fails now rather than mid-run; nothing for a local policy.
    pub fn check(&self) -> Result<()> {
        let params = SamplingParams {
            n: 1,
            max_new_tokens: 1,
            ..SamplingParams::default()
        };
        match &self.backend {
            Backend::Served(client) => {
                respond_served(&self.name, client, &["Hello".to_string()], &params).map(drop)
            }
            Backend::Local { .. } => Ok(()),
        }
    }

    /// One response to each text, sent as a user turn; reproducible for a given
    /// `params.seed` (here: chunk `k` of 16 prompts samples with seed `params.seed + k`; on a
    /// server, prompt `i` asks for seed `params.seed + i`, which servers may or may not
    /// honour).
    pub fn respond(&self, texts: &[String], params: &SamplingParams) -> Result<Vec<String>> {
        let (model, tokenizer, eos, pad) = match &self.backend {
            Backend::Served(client) => return respond_served(&self.name, client, texts, params),
            Backend::Local {
                model,
                tokenizer,
                eos,
                pad,
            } => (model, tokenizer, eos, *pad),
        };
        let mut out = Vec::with_capacity(texts.len());
        let context = model.config().max_position_embeddings;
        for (k, chunk) in texts.chunks(CHUNK).enumerate() {
            let prompts: Vec<Vec<u32>> = chunk
                .iter()
                .map(|t| chat_ids(tokenizer, t, context, params.max_new_tokens))
                .collect::<Result<_>>()?;
            let params = SamplingParams {
                n: 1,
                seed: params.seed.wrapping_add(k as u64),
                ..params.clone()
            };
            let samples = generate(model, &prompts, eos, pad, &params, &Pass::infer())?;
            for s in &samples {
                out.push(tokenizer.decode(&s.ids, true)?.trim().to_string());
            }
        }
        Ok(out)
    }
}

/// The chat-completion request for one user turn under `params`. Sampling settings the
/// OpenAI API lacks (`top_k`, `repetition_penalty`, vLLM's names) are sent only when they
/// are not the neutral value. The seed is kept within a signed 64-bit integer, the range
/// vLLM accepts.
pub fn served_request(text: &str, params: &SamplingParams, seed: u64) -> Value {
    let seed = seed & i64::MAX as u64;
    let mut body = json!({
        "messages": [{"role": "user", "content": text}],
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "n": 1,
        "seed": seed,
    });
    if params.top_k > 0 {
        body["top_k"] = json!(params.top_k);
    }
    if params.repetition_penalty != 1.0 {
        body["repetition_penalty"] = json!(params.repetition_penalty);
    }
    if params.ignore_eos {
        body["ignore_eos"] = json!(true);
    }
    body
}

fn respond_served(
    name: &str,
    client: &gpo_openai::Client,
    texts: &[String],
    params: &SamplingParams,
) -> Result<Vec<String>> {
    let bodies: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| served_request(t, params, params.seed.wrapping_add(i as u64)))
        .collect();
    let replies = client.chat_all(&bodies).map_err(|source| Error::Served {
        context: format!("served policy `{name}`"),
        source,
    })?;
    replies
        .iter()
        .map(|r| {
            r.pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .map(|t| t.trim().to_string())
                .ok_or_else(|| {
                    Error::Setup(format!(
                        "served policy `{name}` ({}): a reply without \
                         choices[0].message.content: {}",
                        client.endpoint(),
                        gpo_openai::snippet(&r.to_string())
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_name_is_a_model_and_a_bare_adapter_names_its_base() {
        assert_eq!(
            PolicySpec::parse("smollm2-135m-instruct", Role::Defender).unwrap(),
            PolicySpec::Model("smollm2-135m-instruct".into())
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("adapter_config.json"),
            r#"{"peft_type":"LORA","task_type":"CAUSAL_LM","r":4,"lora_alpha":8,
               "target_modules":["q_proj"],"base_model_name_or_path":"my-base"}"#,
        )
        .unwrap();
        let spec = PolicySpec::parse(dir.path().to_str().unwrap(), Role::Defender).unwrap();
        assert_eq!(spec.base(), "my-base");
        std::fs::write(
            dir.path().join("adapter_config.json"),
            r#"{"peft_type":"LORA","task_type":"CAUSAL_LM","r":4,"lora_alpha":8,
               "target_modules":["q_proj"]}"#,
        )
        .unwrap();
        let e = PolicySpec::parse(dir.path().to_str().unwrap(), Role::Defender).unwrap_err();
        assert!(e.to_string().contains("base_model_name_or_path"), "{e}");
    }

    #[test]
    fn a_served_policy_is_named_model_at_url() {
        assert_eq!(
            PolicySpec::parse("server:guard-7b@http://gpu1:8000/v1", Role::Defender).unwrap(),
            PolicySpec::Served {
                model: "guard-7b".into(),
                url: "http://gpu1:8000/v1".into()
            }
        );
        for bad in ["server:", "server:m", "server:@http://h/v1", "server:m@"] {
            let e = PolicySpec::parse(bad, Role::Defender).unwrap_err();
            assert!(e.to_string().contains("server:MODEL@URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_served_request_carries_the_sampling_settings() {
        let params = SamplingParams {
            temperature: 0.8,
            top_p: 0.9,
            max_new_tokens: 48,
            ..SamplingParams::default()
        };
        let b = served_request("Hi", &params, 7);
        assert_eq!(b["messages"][0]["content"], "Hi");
        assert_eq!(
            (b["max_tokens"].clone(), b["seed"].clone(), b["n"].clone()),
            (json!(48), json!(7), json!(1))
        );
        assert!((b["top_p"].as_f64().unwrap() - 0.9).abs() < 1e-12);
        // Seeds stay within i64, which vLLM requires.
        let b = served_request("Hi", &params, u64::MAX);
        assert_eq!(b["seed"], json!(i64::MAX));
        // Neutral settings the OpenAI API lacks are left out; others are sent.
        let neutral = SamplingParams {
            top_k: 0,
            repetition_penalty: 1.0,
            ..params.clone()
        };
        let b = served_request("Hi", &neutral, 7);
        assert!(b.get("top_k").is_none() && b.get("repetition_penalty").is_none());
        let b = served_request(
            "Hi",
            &SamplingParams {
                repetition_penalty: 1.1,
                ..neutral
            },
            7,
        );
        assert_eq!(b["repetition_penalty"], json!(1.1));
    }

    #[test]
    fn a_served_policy_answers_in_order_with_a_seed_per_prompt() {
        let (url, seen) = gpo_openai::stand_in::serve(|body, _| {
            let text = body["messages"][0]["content"]
                .as_str()
                .unwrap()
                .to_uppercase();
            let reply = json!({"choices": [{"message": {"role": "assistant", "content": format!(" {text} ")}}]});
            (200, reply.to_string())
        });
        let spec = PolicySpec::parse(&format!("server:m@{url}"), Role::Defender).unwrap();
        let cache = AssetCache::new(std::env::temp_dir().join("gpo-unused-cache"));
        let mut bases = BaseModels::new(Device::Cpu, gpo_lm::Precision::F32);
        let policy = ChatPolicy::load("served", &spec, &mut bases, &cache).unwrap();
        let texts: Vec<String> = (0..11).map(|i| format!("prompt {i}")).collect();
        let params = SamplingParams {
            seed: 100,
            ..SamplingParams::default()
        };
        let out = policy.respond(&texts, &params).unwrap();
        let want: Vec<String> = (0..11).map(|i| format!("PROMPT {i}")).collect();
        assert_eq!(out, want);
        let mut seeds: Vec<u64> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|b| b["seed"].as_u64().unwrap())
            .collect();
        seeds.sort_unstable();
        assert_eq!(seeds, (100..111).collect::<Vec<_>>());
        assert!(seen.lock().unwrap().iter().all(|b| b["model"] == "m"));
    }
}
