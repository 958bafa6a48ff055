//! Writes the seed corpora, `fuzz/seeds/TARGET/NAME`: small valid inputs made with gpo's own
//! APIs (`gpo_fuzz::companions`), the project's test fixtures and examples, and the seed
//! writers of `gpo_fuzz` (HDF5, pickle). Run from the repository root:
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//!
//! Every file stays a few kilobytes; nothing here is a model's real weights.

use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;
use gpo_fuzz::companions::{
    self, CHAT_TEMPLATE, GENERATION_CONFIG, TOKENIZER_CONFIG, TOKENIZER_JSON,
};
use gpo_fuzz::{h5_writer, pickle_writer};

/// Writes one seed, `prefix` (the byte that picks a variant, if the target has any) first.
fn seed(target: &str, name: &str, prefix: Option<u8>, bytes: &[u8]) {
    let dir = Path::new("fuzz/seeds").join(target);
    std::fs::create_dir_all(&dir).expect("creating the seeds directory");
    let mut all = prefix.map(|p| vec![p]).unwrap_or_default();
    all.extend_from_slice(bytes);
    std::fs::write(dir.join(name), all).expect("writing a seed");
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

/// The first `n` lines of a file (fixtures are longer than a seed needs).
fn head(path: &str, n: usize) -> Vec<u8> {
    let text = String::from_utf8(read(path)).expect("a text fixture");
    let lines: Vec<&str> = text.lines().take(n).collect();
    (lines.join("\n") + "\n").into_bytes()
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpo-make-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

fn gguf() {
    for (name, dtype) in [
        ("f32", GgmlDType::F32),
        ("f16", GgmlDType::F16),
        ("bf16", GgmlDType::BF16),
    ] {
        seed(
            "gguf",
            &format!("tiny-{name}"),
            None,
            &companions::tiny_gguf(dtype),
        );
    }
    let fields = |template: &str| {
        [
            "gpt2",
            "smollm",
            "<|im_end|>\nh\ni\nhi\nĠ\nĠh",
            "h i\nĠ h",
            "3,1,1,1,1,1",
            ",0,,",
            "0,0",
            template,
        ]
        .join("\0")
    };
    seed(
        "gguf_tokenizer",
        "smollm",
        None,
        fields(CHAT_TEMPLATE).as_bytes(),
    );
    let llama = [
        "gpt2",
        "llama-bpe",
        "<s>\n</s>\na\nb\nab",
        "a b",
        "3,3,1,1,1",
        "0,1,1,",
        "1,",
    ];
    seed(
        "gguf_tokenizer",
        "llama-bpe",
        None,
        llama.join("\0").as_bytes(),
    );
}

fn weights_and_configs() {
    let dir = scratch();
    companions::write_hf_model(&dir.join("model"));
    companions::write_lora_adapter(&dir.join("adapter"));
    companions::write_judge_heads(&dir.join("heads"));
    companions::write_adamw_state(&dir.join("optim.safetensors"));
    let files = [
        ("model", 0, "model/model.safetensors"),
        ("adapter", 1, "adapter/adapter_model.safetensors"),
        ("heads", 2, "heads/heads.safetensors"),
        ("adamw", 3, "optim.safetensors"),
    ];
    for (name, place, file) in files {
        seed("safetensors", name, Some(place), &read(dir.join(file)));
    }
    let configs = [
        ("adapter_config", 0, "adapter/adapter_config.json"),
        ("config", 1, "model/config.json"),
        ("card", 2, "heads/card.json"),
    ];
    for (name, file, path) in configs {
        seed("json_configs", name, Some(file), &read(dir.join(path)));
    }
    std::fs::remove_dir_all(dir).expect("removing the scratch directory");
}

fn tokenizers_and_templates() {
    let files = [
        TOKENIZER_JSON,
        TOKENIZER_CONFIG,
        GENERATION_CONFIG,
        CHAT_TEMPLATE,
    ];
    let names = [
        "tokenizer",
        "tokenizer_config",
        "generation_config",
        "chat_template",
    ];
    for (i, (name, text)) in names.iter().zip(files).enumerate() {
        seed("tokenizer_json", name, Some(i as u8), text.as_bytes());
    }
    seed(
        "tokenizer_json",
        "tokenizer_alone",
        Some(4),
        TOKENIZER_JSON.as_bytes(),
    );
    seed("chat_template", "chatml", None, CHAT_TEMPLATE.as_bytes());
    let tools = "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{% set sys = m.content %}\
        {% else %}<|{{ m.role }}|>{{ m.content | trim }}{{ eos_token }}\n{% endif %}{% endfor %}\
        {% if tools %}{{ tools | tojson(indent=2) }}{% endif %}{{ strftime_now('%d %b %Y') }}\
        {% if add_generation_prompt %}<|assistant|>{% endif %}";
    seed("chat_template", "tools", None, tools.as_bytes());
    let strict = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system turn') }}\
        {% endif %}{% for m in messages %}{% generation %}{{ loop.index0 ~ ':' ~ m.content.upper() }}\
        {% endgeneration %}{% endfor %}";
    seed("chat_template", "strict", None, strict.as_bytes());
}

fn configs_and_data() {
    seed(
        "game_config",
        "cpu-smollm2",
        None,
        &read("examples/cpu-smollm2.toml"),
    );
    let mut with_set = read("examples/paper-7b.toml");
    with_set.extend(b"\0steps=3\0attacker.w_bleu=0\0schedule={ kind = \"simultaneous\" }");
    seed("game_config", "paper-7b-with-set", None, &with_set);

    seed(
        "data_files",
        "prompts-text",
        Some(0),
        b"How do I bake bread?\n\nWhat is 2+2?\n",
    );
    seed(
        "data_files",
        "prompts-jsonl",
        Some(0),
        b"{\"prompt\":\"a\",\"id\":1}\n{\"prompt\":\"b\"}\n",
    );
    let input = b"{\"prompt\":\"a\",\"response\":\"b\",\"label\":\"unsafe\"}\n{\"prompt\":\"c\",\"response\":\"d\"}\n";
    seed("data_files", "judge-input", Some(1), input);
    let run = "crates/gpo-report/tests/fixtures/run";
    seed(
        "data_files",
        "crossplay",
        Some(2),
        &read(format!("{run}/crossplay.json")),
    );
    seed(
        "data_files",
        "metrics",
        Some(3),
        &head(&format!("{run}/metrics.jsonl"), 2),
    );
    seed(
        "data_files",
        "eval",
        Some(4),
        &head(&format!("{run}/eval.jsonl"), 2),
    );
    seed(
        "data_files",
        "samples",
        Some(5),
        &head(&format!("{run}/samples.jsonl"), 2),
    );
    seed(
        "data_files",
        "run-crossplay",
        Some(6),
        &read(format!("{run}/crossplay.json")),
    );
    seed("data_files", "rps", Some(7), &read("examples/rps.json"));
    seed(
        "data_files",
        "prompt-response",
        Some(7),
        &read("examples/prompt-response.json"),
    );
}

fn judge_files() {
    seed(
        "hdf5",
        "tiny-toxicity",
        None,
        &h5_writer::tiny_toxicity_weights(),
    );
    let words = ["the", "cat", "sat", "mat"];
    seed(
        "pickle",
        "keras-tokenizer",
        None,
        &pickle_writer::keras_tokenizer(&words),
    );
    let markers =
        "REFUSAL = [\n    \"I'm sorry\",  # apology\n    'I cannot',\n    r\"As an \\w+\",\n]\n";
    seed(
        "pylit",
        "markers",
        None,
        format!("PREFIXES = [\"Sorry\", 'No']\n{markers}").as_bytes(),
    );
    let template = "template = \"Write a {malware} that \\\"works\\\"\\n\"\n";
    seed("pylit", "template", None, template.as_bytes());
}

fn replies() {
    let top = r#"[{"token":"safe","logprob":-0.1},{"token":"unsafe","logprob":-2.5},{"token":"un","logprob":-4.0}]"#;
    let reply = format!(
        r#"{{"id":"c1","object":"chat.completion","choices":[{{"index":0,"message":{{"role":"assistant","content":"\n\nsafe"}},"logprobs":{{"content":[{{"token":"\n\n","logprob":-0.01,"top_logprobs":[{{"token":"\n\n","logprob":-0.01}}]}},{{"token":"safe","logprob":-0.1,"top_logprobs":{top}}}]}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":5,"completion_tokens":2}}}}"#
    );
    seed("openai_reply", "verdict", None, reply.as_bytes());
    let plain = r#"{"choices":[{"message":{"role":"assistant","content":" Hello! "}}]}"#;
    seed("openai_reply", "content", None, plain.as_bytes());
    seed(
        "openai_reply",
        "error",
        None,
        br#"{"error":{"message":"model not found","code":404}}"#,
    );
}

/// The seeds that need more than a glance load with the readers they feed: a seed that
/// fails early would waste the fuzzer's time on the first check.
fn check() {
    use gpo_tokenizer::Tokenizer;
    let path = Path::new("fuzz/seeds/gguf/tiny-f16");
    let ckpt = gpo_lm::read_gguf(path).expect("the GGUF seed reads");
    let tok = Tokenizer::from_gguf_spec(ckpt.tokenizer).expect("its tokenizer builds");
    tok.apply_chat_template(&[gpo_tokenizer::ChatMessage::user("hi")], true)
        .expect("its template renders");
    for name in ["smollm", "llama-bpe"] {
        let text = String::from_utf8(read(format!("fuzz/seeds/gguf_tokenizer/{name}"))).unwrap();
        let spec = gpo_fuzz::spec_from_fields(&text);
        Tokenizer::from_gguf_spec(spec).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let h5 = Path::new("model.weights.h5");
    let h5 =
        gpo_keras::hdf5::H5File::from_bytes(h5, read("fuzz/seeds/hdf5/tiny-toxicity"))
            .expect("the HDF5 seed opens");
    let pickle = read("fuzz/seeds/pickle/keras-tokenizer");
    let tok =
        gpo_judge::toxicity::keras_tokenizer::KerasTokenizer::from_pickle(Path::new("p"), &pickle)
            .expect("the pickle seed reads");
    assert_eq!(tok.ids("The cat sat"), [1, 2, 3]);
    gpo_judge::toxicity::ToxicityModel::from_parts(tok, &h5).expect("the toxicity model loads");
    let reply = String::from_utf8(read("fuzz/seeds/openai_reply/verdict")).unwrap();
    let reply = gpo_openai::parse_reply(&reply).expect("the reply seed is JSON");
    let verdict = gpo_judge::fuzzing::verdict_distribution(&reply).expect("a verdict");
    assert!(verdict.is_some_and(|v| v.unsafe_.is_some() && v.safe.is_some()));
    let toml = String::from_utf8(read("fuzz/seeds/game_config/paper-7b-with-set")).unwrap();
    let mut parts = toml.split('\0');
    let text = parts.next().unwrap();
    let sets: Vec<String> = parts.map(str::to_string).collect();
    gpo_game::parse_config(text, "seed", &sets).expect("the config seed parses");
}

fn main() {
    gguf();
    weights_and_configs();
    tokenizers_and_templates();
    configs_and_data();
    judge_files();
    replies();
    check();
    println!("seeds written under fuzz/seeds/ and checked");
}
