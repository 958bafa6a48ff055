//! Valid files written with gpo's own APIs: the companions a fuzzed file is read beside (a
//! model's `config.json` beside fuzzed weights, and so on), and the seeds of the corpora
//! (`examples/make_seeds.rs` writes these same files).

use std::path::Path;
use std::sync::OnceLock;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor, Var};
use gpo_judge::logistic::LogisticHead;
use gpo_judge::Heads;
use gpo_lm::{attach_lora, save_lora, Architecture, CausalLm, LmConfig, LoraConfig, Trainable};
use gpo_optim::{AdamW, AdamWConfig};
use serde_json::json;

/// Width of the stand-in embedder the judge heads companion is sized for.
pub const HEADS_DIM: usize = 4;

/// The smallest Llama with every part: one layer, two query heads sharing one key/value
/// head, so that its files stay a few kilobytes.
pub fn tiny_config() -> LmConfig {
    LmConfig {
        vocab_size: 16,
        hidden_size: 8,
        intermediate_size: 16,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: 4,
        max_position_embeddings: 32,
        ..LmConfig::tiny(Architecture::Llama)
    }
}

/// The tiny random Llama every model companion comes from (built once, cloned: its
/// tensors are shared, and attaching adapters to a clone leaves the original alone).
pub fn tiny_model() -> CausalLm {
    static MODEL: OnceLock<CausalLm> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            CausalLm::random(tiny_config(), 0, Trainable::Frozen, &Device::Cpu)
                .expect("a tiny random model")
        })
        .clone()
}

/// [`tiny_model`] as a GGUF file with its matrices in `dtype` (F32, F16 or BF16), a
/// byte-level BPE tokenizer and a chat template in the metadata, and one extra 32-value
/// tensor in each quantization gpo reads (ignored by the model, but dequantized).
pub fn tiny_gguf(dtype: GgmlDType) -> Vec<u8> {
    let model = tiny_model();
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    for (name, t) in model.named_weights() {
        let q = QTensor::quantize(&t, dtype).expect("quantizing");
        tensors.push((gguf_name(&name), q));
    }
    let ramp = Tensor::arange(0f32, 32.0, &Device::Cpu).expect("a ramp");
    for q in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
        let name = format!("extra.{q:?}");
        tensors.push((name, QTensor::quantize(&ramp, q).expect("quantizing")));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let md = gguf_metadata(model.config());
    let md: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &md, &ts).expect("writing GGUF");
    out.into_inner()
}

/// llama.cpp's name of a Hugging Face tensor name (no q/k row permutation: the weights are
/// random anyway).
fn gguf_name(hf: &str) -> String {
    let fixed = [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];
    if let Some((_, g)) = fixed.iter().find(|(h, _)| *h == hf) {
        return g.to_string();
    }
    let modules = [
        ("input_layernorm", "attn_norm"),
        ("post_attention_layernorm", "ffn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
    ];
    let mut g = hf.replacen("model.layers.", "blk.", 1);
    for (h, short) in modules {
        g = g.replace(h, short);
    }
    g
}

/// The metadata llama.cpp writes for `c`, with a tokenizer over "<|im_end|>", "h", "i",
/// "hi" and filler tokens.
fn gguf_metadata(c: &LmConfig) -> Vec<(String, Value)> {
    let u = |n: usize| Value::U32(n as u32);
    let s = |t: &str| Value::String(t.into());
    let mut tokens = vec![s("<|im_end|>"), s("h"), s("i"), s("hi")];
    tokens.extend((tokens.len()..c.vocab_size).map(|i| s(&format!("t{i}"))));
    let mut types = vec![Value::I32(3)];
    types.extend((1..c.vocab_size).map(|_| Value::I32(1)));
    vec![
        ("general.architecture".into(), s("llama")),
        ("general.alignment".into(), Value::U32(32)),
        ("llama.embedding_length".into(), u(c.hidden_size)),
        ("llama.feed_forward_length".into(), u(c.intermediate_size)),
        ("llama.block_count".into(), u(c.num_hidden_layers)),
        (
            "llama.attention.head_count".into(),
            u(c.num_attention_heads),
        ),
        (
            "llama.attention.head_count_kv".into(),
            u(c.num_key_value_heads),
        ),
        ("llama.attention.key_length".into(), u(c.head_dim)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
        ("llama.rope.freq_base".into(), Value::F32(10_000.0)),
        ("llama.context_length".into(), u(c.max_position_embeddings)),
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("smollm")),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.merges".into(), Value::Array(vec![s("h i")])),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(0)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
        ("tokenizer.chat_template".into(), s(CHAT_TEMPLATE)),
    ]
}

/// The LoRA settings of the adapter companion.
pub fn tiny_lora() -> LoraConfig {
    LoraConfig {
        rank: 2,
        alpha: 4.0,
        dropout: 0.0,
        target_modules: vec!["q_proj".into(), "v_proj".into()],
    }
}

/// Writes a Hugging Face model directory (`config.json`, `model.safetensors`) into `dir`.
pub fn write_hf_model(dir: &Path) {
    tiny_model().save_hf(dir).expect("saving the tiny model");
}

/// Writes a PEFT adapter directory (`adapter_config.json`, `adapter_model.safetensors`) for
/// [`tiny_model`] into `dir`.
pub fn write_lora_adapter(dir: &Path) {
    let mut model = tiny_model();
    attach_lora(&mut model, &tiny_lora(), 1).expect("attaching adapters");
    save_lora(&model, &tiny_lora(), dir, "tiny").expect("saving adapters");
}

/// Writes judge heads (`heads.safetensors`, `card.json`) for an embedder of [`HEADS_DIM`].
pub fn write_judge_heads(dir: &Path) {
    let head = |n: usize| LogisticHead {
        w: (0..n).map(|i| i as f32 / 10.0).collect(),
        b: 0.5,
    };
    let heads = Heads {
        harm: head(2 * HEADS_DIM),
        comply: head(HEADS_DIM),
    };
    let card = serde_json::from_value(heads_card()).expect("a valid heads card");
    heads.save(&card, dir).expect("saving heads");
}

/// A card of the current heads format with small numbers.
fn heads_card() -> serde_json::Value {
    let m = json!({"positives": 3, "negatives": 2, "accuracy": 0.8, "auc": 0.9});
    json!({
        "format": gpo_judge::HEADS_FORMAT,
        "seed": 0,
        "embedder": "all-minilm-l6-v2",
        "max_tokens": 128,
        "fit": {"steps": 10, "lr": 0.05, "l2": 0.001},
        "train_sizes": {"harmful": 3},
        "heldout_sizes": {"benign": 2},
        "harmbench_used_for_training": false,
        "reply_labelling": "markers",
        "prompt_layer": 3,
        "reply_opening_chars": 200,
        "reply_windows": 4,
        "reply_window_tokens": 3,
        "reply_window_layer": 3,
        "comply_scale": 1.0,
        "harm_scale": 1.0,
        "metrics": {
            "harm_harmbench_vs_heldout_benign": m,
            "harm_heldout_split": m,
            "harm_lookalike_requests": m,
            "comply_heldout_split": m,
            "comply_heldout_warm_openings": m,
        },
        "train_seconds": 1.5,
    })
}

/// The optimiser whose state the AdamW companion holds: one 2 x 3 parameter `w`.
pub fn tiny_adamw() -> AdamW {
    let w = Var::zeros((2, 3), DType::F32, &Device::Cpu).expect("a variable");
    AdamW::new(vec![("w".into(), w)], AdamWConfig::default()).expect("an optimiser")
}

/// Writes [`tiny_adamw`]'s state to `path`.
pub fn write_adamw_state(path: &Path) {
    tiny_adamw().save(path).expect("saving optimiser state");
}

/// A Hugging Face `tokenizer.json`: byte-level BPE over "h", "i", "hi" and the control
/// token `<|im_end|>`.
pub const TOKENIZER_JSON: &str = r#"{"version":"1.0","truncation":null,"padding":null,
"added_tokens":[{"id":0,"content":"<|im_end|>","single_word":false,"lstrip":false,
"rstrip":false,"normalized":false,"special":true}],"normalizer":null,
"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
"post_processor":null,
"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},
"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,
"end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,
"vocab":{"<|im_end|>":0,"h":1,"i":2,"hi":3},"merges":["h i"]}}"#;

/// The `tokenizer_config.json` beside [`TOKENIZER_JSON`]: special tokens and a template.
pub const TOKENIZER_CONFIG: &str = r#"{"eos_token":"<|im_end|>","pad_token":{"content":"<|im_end|>"},
"chat_template":"{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}{% endfor %}"}"#;

/// The `generation_config.json` beside [`TOKENIZER_JSON`].
pub const GENERATION_CONFIG: &str = r#"{"eos_token_id":[0,3],"bos_token_id":1}"#;

/// A chat template in the style of SmolLM2's.
pub const CHAT_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
