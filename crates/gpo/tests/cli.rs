//! The `gpo` binary end to end: output formats, reproducibility, and one-line errors for bad
//! input (never a panic).

use std::path::PathBuf;
use std::process::{Command, Output};

fn gpo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpo"))
        .args(args)
        .output()
        .expect("run gpo")
}

fn stdout_lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "gpo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Asserts a clean failure: non-zero exit, one `error:` line on stderr mentioning `needle`.
fn assert_clean_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "want one error line: {stderr}");
    assert!(
        errors[0].contains(needle),
        "error line lacks {needle:?}: {stderr}"
    );
}

fn gguf() -> PathBuf {
    let out = gpo(&["assets", "fetch", "smollm2-135m-instruct"]);
    let v = stdout_lines(&out);
    PathBuf::from(v[0]["path"].as_str().expect("path"))
}

#[test]
fn tokenize_prints_ids_without_special_tokens_added() {
    let v = stdout_lines(&gpo(&["tokenize", "Hello, world!"]));
    // Ids from transformers (crates/gpo-tokenizer/tests/fixtures/reference.json).
    assert_eq!(v, [serde_json::json!({"ids": [19556, 28, 905, 17]})]);
}

#[test]
fn logprobs_are_teacher_forced_with_a_null_first_entry() {
    let v = stdout_lines(&gpo(&[
        "logprobs",
        "--text",
        "The capital of France is Paris",
    ]));
    let lp = v[0]["logprobs"].as_array().unwrap();
    assert!(lp[0].is_null());
    assert_eq!(lp.len(), v[0]["ids"].as_array().unwrap().len());
    assert_eq!(v[0]["top1"].as_array().unwrap().len(), lp.len());
    // log p("Paris" | "The capital of France is") from transformers: -0.2580612599849701.
    assert!(
        (lp[5].as_f64().unwrap() + 0.25806).abs() < 1e-3,
        "{}",
        lp[5]
    );
}

#[test]
fn generate_is_reproducible_for_a_seed() {
    let args = [
        "generate",
        "--prompt",
        "Name a colour.",
        "--chat",
        "--n",
        "2",
        "--max-new-tokens",
        "12",
        "--seed",
        "7",
    ];
    let a = stdout_lines(&gpo(&args));
    let b = stdout_lines(&gpo(&args));
    assert_eq!(a.len(), 2);
    assert_eq!(a, b);
    for s in &a {
        assert_eq!(
            s["ids"].as_array().unwrap().len(),
            s["logprobs"].as_array().unwrap().len()
        );
        assert!(s["text"].is_string());
    }
    let c = stdout_lines(&gpo(&[
        "generate",
        "--prompt",
        "Name a colour.",
        "--chat",
        "--max-new-tokens",
        "12",
        "--seed",
        "8",
        "--ignore-eos",
    ]));
    assert_eq!(c[0]["ids"].as_array().unwrap().len(), 12);
}

#[test]
fn missing_model_file_is_named() {
    assert_clean_error(
        &gpo(&["tokenize", "--model", "/no/such/model.gguf", "hi"]),
        "/no/such/model.gguf",
    );
}

#[test]
fn truncated_gguf_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.gguf");
    let bytes = std::fs::read(gguf()).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    assert_clean_error(
        &gpo(&[
            "generate",
            "--model",
            cut.to_str().unwrap(),
            "--prompt",
            "hi",
        ]),
        "cut.gguf",
    );
}

#[test]
fn directory_without_config_is_named() {
    let dir = tempfile::tempdir().unwrap();
    assert_clean_error(
        &gpo(&["tokenize", "--model", dir.path().to_str().unwrap(), "hi"]),
        "config.json",
    );
}

#[test]
fn zero_samples_is_refused() {
    assert_clean_error(
        &gpo(&["generate", "--prompt", "hi", "--n", "0"]),
        "n (samples per prompt)",
    );
}

#[test]
fn prompt_longer_than_the_context_is_refused() {
    let long = "word ".repeat(9000);
    assert_clean_error(
        &gpo(&["generate", "--prompt", &long, "--max-new-tokens", "4"]),
        "context of 8192 tokens",
    );
}

#[test]
fn bad_sampling_values_are_named() {
    assert_clean_error(
        &gpo(&["generate", "--prompt", "hi", "--top-p", "1.5"]),
        "top_p",
    );
    assert_clean_error(
        &gpo(&["generate", "--prompt", "hi", "--temperature=-1"]),
        "temperature",
    );
}
