//! A learning player's rollouts sampled on inference engines (`[attacker.rollout]`,
//! `[defender.rollout]`): after each update the player's adapter is written as a PEFT
//! directory under a new versioned name, loaded on every engine, and the version before
//! the previous one is unloaded and deleted. A rollout sends the chat-templated prompts as
//! token ids with every sampling field and a seed from the player's own training stream,
//! and gets token ids and the engine's log-probs back; the learner then recomputes its own
//! (`gpo_rl::EngineCorrection`).
//!
//! Versions get new names (never a reload under one name): vLLM's prefix cache keys LoRA
//! blocks by name and would serve a reloaded adapter's stale blocks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gpo_lm::{FinishReason, LoraConfig, Sample, SamplingParams};
use gpo_openai::{EngineClient, EngineKind, TokenChoice, TokenRequest};

use crate::config::{RolloutBackend, RolloutConfig};
use crate::schedule::Role;
use crate::{Error, Result};

/// The engines of one player and the adapter versions loaded on them.
pub struct EngineRollout {
    role: Role,
    clients: Vec<EngineClient>,
    dir: PathBuf,
    tag: String,
    /// Loaded versions, oldest first: (the player's iteration, name).
    loaded: Vec<(u64, String)>,
}

impl EngineRollout {
    /// The engines of `cfg` for `role`; adapters go to `cfg.adapter_dir`, or to
    /// `run_dir/adapters` when it is empty. Nothing is sent yet.
    pub fn new(role: Role, cfg: &RolloutConfig, run_dir: &Path) -> Result<Self> {
        let kind = match cfg.backend {
            RolloutBackend::Vllm => EngineKind::Vllm,
            RolloutBackend::Sglang => EngineKind::Sglang,
            RolloutBackend::Local => {
                return Err(Error::Config(format!(
                    "{}.rollout: backend = \"local\" has no engines",
                    role.as_str()
                )))
            }
        };
        let timeout = Duration::from_secs_f64(cfg.timeout_s);
        let clients = cfg
            .urls
            .iter()
            .map(|u| {
                let field = match role {
                    Role::Attacker => "attacker.rollout.urls",
                    Role::Defender => "defender.rollout.urls",
                };
                EngineClient::new(kind, u, timeout, cfg.tries, field)
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|source| served(role, source))?;
        let dir = match cfg.adapter_dir.is_empty() {
            true => run_dir.join("adapters"),
            false => PathBuf::from(&cfg.adapter_dir),
        };
        let dir = std::path::absolute(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        if cfg.adapter_dir.is_empty() {
            remove_stale_versions(&dir, role)?;
        }
        Ok(EngineRollout {
            role,
            clients,
            dir,
            tag: run_tag(run_dir),
            loaded: Vec::new(),
        })
    }

    /// The name of the version loaded for the player's `iteration`, when it is.
    pub fn current(&self, iteration: u64) -> Option<&str> {
        self.loaded
            .last()
            .filter(|(it, _)| *it == iteration)
            .map(|(_, name)| name.as_str())
    }

    /// Makes the adapters of `model` (the player after `iteration` updates) the version
    /// the engines sample from: written under a new name, loaded and listed on every
    /// engine; the version before the previous is unloaded and deleted. Returns its name.
    pub fn publish(
        &mut self,
        model: &gpo_lm::CausalLm,
        lora: &LoraConfig,
        base_model: &str,
        iteration: u64,
    ) -> Result<String> {
        if let Some(name) = self.current(iteration) {
            return Ok(name.to_string());
        }
        let name = format!("gpo-{}-{}-v{iteration}", self.tag, self.role.as_str());
        let dir = self.dir.join(&name);
        write_adapter(model, lora, base_model, &dir)?;
        let path = dir.to_string_lossy().into_owned();
        for c in &self.clients {
            c.load_adapter(&name, &path)
                .map_err(|source| served(self.role, source))?;
            if !c.lists(&name).map_err(|source| served(self.role, source))? {
                return Err(Error::Setup(format!(
                    "{}'s rollout engine {}: adapter `{name}` was loaded but the engine does \
                     not list it (GET /v1/models); is it started with --enable-lora?",
                    self.role.as_str(),
                    c.url()
                )));
            }
        }
        self.loaded.push((iteration, name.clone()));
        while self.loaded.len() > 2 {
            let (_, old) = self.loaded.remove(0);
            for c in &self.clients {
                c.unload_adapter(&old)
                    .map_err(|source| served(self.role, source))?;
            }
            let old_dir = self.dir.join(&old);
            std::fs::remove_dir_all(&old_dir).map_err(|source| Error::Io {
                path: old_dir,
                source,
            })?;
        }
        Ok(name)
    }

    /// Samples `params.n` continuations of each prompt from the version `name`, prompt-major
    /// like `gpo_lm::generate`. Prompts are split into contiguous chunks, one per engine;
    /// the first chunk gets `params.seed` (so one `gpo serve` repeats local sampling) and
    /// chunk k the seed plus k.
    pub fn sample(
        &self,
        name: &str,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
        eos: &[u32],
    ) -> Result<Vec<Sample>> {
        let per = prompts.len().div_ceil(self.clients.len()).max(1);
        let chunks: Vec<(usize, &[Vec<u32>])> = prompts
            .chunks(per)
            .enumerate()
            .map(|(k, c)| (k * per, c))
            .collect();
        let replies: Vec<Result<Vec<TokenChoice>>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .iter()
                .zip(&self.clients)
                .enumerate()
                .map(|(k, ((_, chunk), client))| {
                    let req = TokenRequest {
                        model: name,
                        prompts: chunk,
                        n: params.n,
                        seed: params.seed.wrapping_add(k as u64),
                        temperature: params.temperature,
                        top_p: params.top_p,
                        top_k: params.top_k,
                        repetition_penalty: params.repetition_penalty,
                        max_tokens: params.max_new_tokens,
                        stop_token_ids: eos,
                    };
                    s.spawn(move || {
                        client
                            .generate(&req)
                            .map_err(|source| served(self.role, source))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Setup(format!(
                            "the {}'s rollout: a request thread panicked",
                            self.role.as_str()
                        )))
                    })
                })
                .collect()
        });
        let mut out = Vec::with_capacity(prompts.len() * params.n);
        for ((offset, _), reply) in chunks.iter().zip(replies) {
            for (j, c) in reply?.into_iter().enumerate() {
                out.push(Sample {
                    prompt_index: offset + j / params.n,
                    ids: c.ids,
                    logprobs: c.logprobs,
                    finish: match c.length {
                        true => FinishReason::Length,
                        false => FinishReason::Eos,
                    },
                });
            }
        }
        Ok(out)
    }
}

fn served(role: Role, source: gpo_openai::Error) -> Error {
    Error::Served {
        context: format!("the {}'s rollout engine", role.as_str()),
        source,
    }
}

/// Writes the adapters as a PEFT directory, whole or not at all: into `DIR.partial`, then
/// renamed.
fn write_adapter(
    model: &gpo_lm::CausalLm,
    lora: &LoraConfig,
    base_model: &str,
    dir: &Path,
) -> Result<()> {
    let partial = gpo_lm::sibling_path(dir, ".partial");
    for stale in [partial.as_path(), dir] {
        if stale.exists() {
            std::fs::remove_dir_all(stale).map_err(|source| Error::Io {
                path: stale.to_path_buf(),
                source,
            })?;
        }
    }
    gpo_lm::save_lora(model, lora, &partial, base_model).map_err(|source| Error::Adapter {
        dir: partial.clone(),
        source,
    })?;
    std::fs::rename(&partial, dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Removes the adapter versions of `role` that an earlier process of this run left in the
/// run's own adapter directory (a shared directory is left alone: other runs write there).
fn remove_stale_versions(dir: &Path, role: Role) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let suffix = format!("-{}-v", role.as_str());
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("gpo-") && name.contains(&suffix) {
            let path = e.path();
            std::fs::remove_dir_all(&path).map_err(|source| Error::Io { path, source })?;
        }
    }
    Ok(())
}

/// Eight hex digits that tell this run's adapters from another's on shared engines: a hash
/// of the run directory and the time the process started it.
fn run_tag(run_dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::path::absolute(run_dir)
        .unwrap_or_else(|_| run_dir.to_path_buf())
        .hash(&mut h);
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .hash(&mut h);
    format!("{:08x}", h.finish() as u32)
}
