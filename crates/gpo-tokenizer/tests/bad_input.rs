//! Bad input gives errors that name the file, key or template, never a panic.

use std::path::Path;

use gpo_tokenizer::{ChatMessage, GgufTokenizerSpec, Tokenizer};

fn err_of(r: gpo_tokenizer::Result<Tokenizer>) -> String {
    r.expect_err("expected an error").to_string()
}

fn tiny_tokenizer_json() -> &'static str {
    r#"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [
        {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
      "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
      "model": {"type": "WordLevel", "vocab": {"a": 0, "b": 1, "</s>": 2, "<unk>": 3}, "unk_token": "<unk>"}}"#
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn missing_tokenizer_json_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = err_of(Tokenizer::from_file(
        &dir.path().join("nope/tokenizer.json"),
    ));
    assert!(e.contains("nope/tokenizer.json"), "{e}");
    // A directory without tokenizer.json names the file it looked for.
    let e = err_of(Tokenizer::from_file(dir.path()));
    assert!(e.contains("tokenizer.json"), "{e}");
}

#[test]
fn malformed_tokenizer_json_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tokenizer.json", "{not json");
    let e = err_of(Tokenizer::from_file(&dir.path().join("tokenizer.json")));
    assert!(
        e.contains("tokenizer.json: not a valid tokenizer.json"),
        "{e}"
    );
}

#[test]
fn malformed_tokenizer_config_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tokenizer.json", tiny_tokenizer_json());
    write(dir.path(), "tokenizer_config.json", "{\"eos_token\": ");
    let e = err_of(Tokenizer::from_file(&dir.path().join("tokenizer.json")));
    assert!(e.contains("tokenizer_config.json: invalid JSON"), "{e}");
    write(
        dir.path(),
        "tokenizer_config.json",
        r#"{"eos_token": "<nope>"}"#,
    );
    let e = err_of(Tokenizer::from_file(&dir.path().join("tokenizer.json")));
    assert!(
        e.contains("tokenizer_config.json: `eos_token` \"<nope>\" is not a token"),
        "{e}"
    );
    write(
        dir.path(),
        "tokenizer_config.json",
        r#"{"chat_template": 3}"#,
    );
    let e = err_of(Tokenizer::from_file(&dir.path().join("tokenizer.json")));
    assert!(e.contains("tokenizer_config.json: `chat_template`"), "{e}");
}

#[test]
fn bad_generation_config_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tokenizer.json", tiny_tokenizer_json());
    write(
        dir.path(),
        "generation_config.json",
        r#"{"eos_token_id": [2, 99]}"#,
    );
    let e = err_of(Tokenizer::from_file(&dir.path().join("tokenizer.json")));
    assert!(
        e.contains("generation_config.json: `eos_token_id` 99 is past the vocabulary"),
        "{e}"
    );
}

#[test]
fn sidecar_files_supply_special_ids_and_the_template() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tokenizer.json", tiny_tokenizer_json());
    write(
        dir.path(),
        "tokenizer_config.json",
        r#"{"eos_token": {"content": "</s>"}, "chat_template": [{"name": "default", "template": "{{ messages[0].content }}{{ eos_token }}"}]}"#,
    );
    write(
        dir.path(),
        "generation_config.json",
        r#"{"eos_token_id": [1, 2]}"#,
    );
    let tok = Tokenizer::from_file(&dir.path().join("tokenizer.json")).unwrap();
    assert_eq!((tok.eos_ids(), tok.pad_id()), (&[2u32, 1][..], Some(2)));
    assert_eq!(tok.encode("a b </s>", false).unwrap(), [0, 1, 2]);
    let out = tok
        .apply_chat_template(&[ChatMessage::user("a")], false)
        .unwrap();
    assert_eq!(out, "a</s>");
    // chat_template.jinja takes priority over tokenizer_config.json, as in transformers.
    write(
        dir.path(),
        "chat_template.jinja",
        "J{{ messages | length }}",
    );
    let tok = Tokenizer::from_file(&dir.path().join("tokenizer.json")).unwrap();
    assert_eq!(
        tok.apply_chat_template(&[ChatMessage::user("a")], false)
            .unwrap(),
        "J1"
    );
}

#[test]
fn template_errors_name_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tokenizer.json", tiny_tokenizer_json());
    write(
        dir.path(),
        "tokenizer_config.json",
        r#"{"chat_template": "{% for m in messages %}"}"#,
    );
    // A broken template does not stop the tokenizer from loading; rendering names it.
    let tok = Tokenizer::from_file(&dir.path().join("tokenizer.json")).unwrap();
    let e = tok
        .apply_chat_template(&[ChatMessage::user("a")], true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tokenizer_config.json `chat_template`"), "{e}");
    assert!(e.contains("syntax error"), "{e}");
}

#[test]
fn unknown_pre_tokenizer_and_model_are_named() {
    let spec = GgufTokenizerSpec {
        model: "gpt2".into(),
        pre: Some("mystery".into()),
        tokens: vec!["a".into()],
        ..Default::default()
    };
    let e = err_of(Tokenizer::from_gguf_spec(spec));
    assert!(
        e.contains("GGUF metadata: tokenizer.ggml.pre `mystery` is not supported"),
        "{e}"
    );
    let spec = GgufTokenizerSpec {
        model: "llama".into(),
        tokens: vec!["a".into()],
        ..Default::default()
    };
    let e = err_of(Tokenizer::from_gguf_spec(spec));
    assert!(
        e.contains("tokenizer.ggml.model `llama` is not supported"),
        "{e}"
    );
}

#[test]
fn special_ids_past_the_vocabulary_are_named() {
    let spec = GgufTokenizerSpec {
        model: "gpt2".into(),
        tokens: vec!["a".into()],
        eos_id: Some(7),
        ..Default::default()
    };
    let e = err_of(Tokenizer::from_gguf_spec(spec));
    assert!(
        e.contains("`tokenizer.ggml.eos_token_id` = 7 is past the vocabulary (1 tokens)"),
        "{e}"
    );
}

#[test]
fn no_template_is_a_clear_error() {
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
}

#[test]
fn a_decoder_that_is_not_json_is_an_error_not_a_panic_in_tokenizers() {
    // Found by `fuzz/fuzz_targets/tokenizer_json.rs`: the tokenizers crate `expect`s its
    // decoder to parse and panicked on `"trim_offsets"r:etu`.
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz/tokenizer-json-bad-decoder");
    std::fs::copy(fixture, dir.path().join("tokenizer.json")).unwrap();
    let e = err_of(Tokenizer::from_file(dir.path()));
    assert!(
        e.contains("tokenizer.json: not a valid tokenizer.json: expected `:` at line 6"),
        "{e}"
    );
}

#[test]
fn a_malformed_precompiled_normalizer_is_an_error_not_a_panic_in_tokenizers() {
    // The tokenizers crate `expect`s a Precompiled normalizer to deserialize.
    let dir = tempfile::tempdir().unwrap();
    let bad = r#"{"type": "Sequence", "normalizers": [{"type": "Precompiled", "precompiled_charsmap": "!"}]}"#;
    let json =
        tiny_tokenizer_json().replace(r#""normalizer": null"#, &format!(r#""normalizer": {bad}"#));
    write(dir.path(), "tokenizer.json", &json);
    let e = err_of(Tokenizer::from_file(dir.path()));
    assert!(
        e.contains("tokenizer.json: not a valid tokenizer.json: `normalizer` Precompiled:"),
        "{e}"
    );
}

#[test]
fn a_merge_that_makes_no_token_is_an_error_not_a_panic_in_tokenizers() {
    // Found by `fuzz/fuzz_targets/gguf_tokenizer.rs`: tokenizers copies each merge into a
    // buffer as long as the longest token, so `Ġ h` (3 bytes) with no token longer than 2
    // indexed past it.
    let spec = GgufTokenizerSpec {
        model: "gpt2".into(),
        pre: Some("smollm".into()),
        tokens: ["<", "h", "i", "hi", "Ġ", ""].map(String::from).to_vec(),
        merges: vec!["h i".into(), "Ġ h".into()],
        ..Default::default()
    };
    let e = err_of(Tokenizer::from_gguf_spec(spec));
    assert_eq!(
        e,
        "GGUF metadata: cannot build the tokenizer: `model.merges` 1: \"Ġ\" + \"h\" is not a \
         token of the vocabulary"
    );
    // The same in a tokenizer.json, where a merge is also a pair, and a continuing-subword
    // prefix is taken off its second token.
    let dir = tempfile::tempdir().unwrap();
    let json = r###"{"model": {"type": "BPE", "continuing_subword_prefix": "##",
        "vocab": {"a": 0, "##b": 1, "ab": 2, "b": 3}, "merges": [["a", "##b"], ["a", "b"]]}}"###;
    write(dir.path(), "tokenizer.json", json);
    let e = err_of(Tokenizer::from_file(dir.path()));
    assert!(
        e.ends_with("not a valid tokenizer.json: `model.merges` 1: \"a\" + \"b\" is not a token of the vocabulary"),
        "{e}"
    );
}
