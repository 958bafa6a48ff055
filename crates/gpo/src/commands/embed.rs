//! `gpo embed`, and the `--model` option of the commands that embed text.

use anyhow::{bail, Context, Result};
use candle_core::Device;
use gpo_assets::{resolve_model, AssetCache, ModelSource};
use gpo_embed::{Embeddings, SentenceEmbedder};
use serde_json::json;

/// Which sentence embedder to load.
#[derive(Debug, Clone, clap::Args)]
pub struct EmbedderArgs {
    /// A sentence-transformers BERT directory (config.json, model.safetensors, tokenizer.json)
    /// or an asset alias (fetched on first use).
    #[arg(long = "model", default_value = "all-minilm-l6-v2")]
    pub embed_model: String,
}

impl EmbedderArgs {
    /// Resolves and loads the embedder on the CPU.
    pub fn load(&self) -> Result<SentenceEmbedder> {
        let cache = AssetCache::from_env().context("locating the asset cache")?;
        let source = resolve_model(&self.embed_model, &cache)
            .with_context(|| format!("resolving --model {}", self.embed_model))?;
        let dir = match source {
            ModelSource::HfDir(dir) => dir,
            ModelSource::Gguf(p) => bail!(
                "--model {}: a GGUF language model is not a sentence embedder; give a \
                 sentence-transformers directory or all-minilm-l6-v2",
                p.display()
            ),
        };
        SentenceEmbedder::load(&dir, &Device::Cpu)
            .with_context(|| format!("loading sentence embedder {}", dir.display()))
    }
}

/// Embeds `texts`, warning once on stderr when any was cut to the token limit.
pub fn embed_all(embedder: &SentenceEmbedder, texts: &[&str]) -> Result<Embeddings> {
    let e = embedder.embed(texts).context("embedding texts")?;
    if e.truncated() > 0 {
        tracing::warn!(
            "{} text(s) longer than {} tokens were truncated to that limit before embedding",
            e.truncated(),
            embedder.max_tokens()
        );
    }
    Ok(e)
}

/// Arguments of `gpo embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    model: EmbedderArgs,
    /// The texts to embed (an empty string is valid). Texts over 256 tokens are truncated.
    #[arg(required = true)]
    texts: Vec<String>,
}

/// Prints one `{"embedding":[...]}` per text, in order: mean-pooled, L2-normalised.
pub fn run(args: EmbedArgs) -> Result<()> {
    let embedder = args.model.load()?;
    let texts: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    let e = embed_all(&embedder, &texts)?;
    for row in e.rows() {
        super::emit(&json!({ "embedding": row }))?;
    }
    Ok(())
}
