//! The `gpo` binary end to end: output formats, reproducibility, and one-line errors for bad
//! input (never a panic).

use std::path::PathBuf;

mod common;
use common::{assert_clean_error, gpo, stdout_lines};

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

#[test]
fn an_unknown_device_lists_the_accepted_ones() {
    assert_clean_error(
        &gpo(&["generate", "--prompt", "hi", "--device", "gpu"]),
        "expected cpu, cuda or cuda:N",
    );
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_in_a_cpu_build_says_how_to_rebuild() {
    assert_clean_error(
        &gpo(&["generate", "--prompt", "hi", "--device", "cuda"]),
        "--features cuda",
    );
}

fn example(name: &str) -> String {
    format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn keys(v: &serde_json::Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn matrix_game_prints_trace_lines_then_the_summary() {
    let v = stdout_lines(&gpo(&[
        "matrix-game",
        "--payoff",
        &example("rps.json"),
        "--iters",
        "200",
        "--trace",
        "50",
    ]));
    assert_eq!(v.len(), 5);
    for (k, line) in v[..4].iter().enumerate() {
        assert_eq!(
            keys(line),
            ["iter", "nash_gap_avg", "nash_gap_last", "value_estimate"]
        );
        assert_eq!(line["iter"], 50 * (k as u64 + 1));
    }
    let s = &v[4];
    assert_eq!(
        keys(s),
        [
            "iters",
            "value_estimate",
            "nash_gap_avg",
            "nash_gap_last",
            "defender_avg",
            "attacker_avg",
            "defender_last",
            "attacker_last",
            "eta"
        ]
    );
    assert_eq!(s["iters"], 200);
    // Uniform play is RPS's equilibrium, and A * uniform = 0 exactly: nothing moves.
    assert_eq!(s["nash_gap_avg"], 0.0);
    assert_eq!(s["value_estimate"], 0.0);
    for p in s["attacker_avg"].as_array().unwrap() {
        // The average of 200 copies of 1/3, up to the rounding of the running sum.
        assert!((p.as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12, "{s}");
    }
    // Default eta = sqrt(8 ln 3 / 200) / 2 (payoff range 2) = 0.104816...
    let eta = s["eta"].as_f64().unwrap();
    assert!((eta - (8.0 * 3f64.ln() / 200.0).sqrt() / 2.0).abs() < 1e-15);
}

#[test]
fn matrix_game_averages_reach_the_biased_rps_equilibrium() {
    // Biased RPS (rock beats scissors by 2): value 0, equilibrium (1/4, 1/2, 1/4). Library
    // runs measure a gap of 0.021 at T = 6400 (crates/gpo-nash/tests/dynamics.rs).
    let v = stdout_lines(&gpo(&[
        "matrix-game",
        "--payoff",
        &example("biased-rps.json"),
        "--iters",
        "6400",
        "--update",
        "simultaneous",
    ]));
    let s = v.last().unwrap();
    assert!(s["nash_gap_avg"].as_f64().unwrap() < 0.03, "{s}");
    assert!(s["nash_gap_last"].as_f64().unwrap() > 0.2, "{s}");
    assert!(s["value_estimate"].as_f64().unwrap().abs() < 1e-3, "{s}");
    let y: Vec<f64> = serde_json::from_value(s["attacker_avg"].clone()).unwrap();
    for (p, want) in y.iter().zip([0.25, 0.5, 0.25]) {
        assert!((p - want).abs() < 0.05, "{y:?}");
    }
}

#[test]
fn matrix_game_with_entropy_reports_the_regularised_gaps() {
    // eta = h = 0.1, 4000 alternating rounds: the last iterates reach the regularised
    // equilibrium (library measurement 7.7e-10).
    let v = stdout_lines(&gpo(&[
        "matrix-game",
        "--payoff",
        &example("biased-rps.json"),
        "--iters",
        "4000",
        "--eta",
        "0.1",
        "--entropy",
        "0.1",
        "--trace",
        "2000",
    ]));
    assert_eq!(v.len(), 3);
    assert_eq!(
        keys(&v[0]),
        [
            "iter",
            "nash_gap_avg",
            "nash_gap_last",
            "value_estimate",
            "regularized_gap_avg",
            "regularized_gap_last"
        ]
    );
    let s = &v[2];
    assert_eq!(s["eta"], 0.1);
    assert!(s["regularized_gap_last"].as_f64().unwrap() < 1e-8, "{s}");
}

#[test]
fn matrix_game_prompt_response_variant_finds_the_hardest_prompt() {
    // Value min_i max_j r[i][j] = min(0.9, 0.7, 0.8) = 0.7 (prompt 1, response 1).
    let v = stdout_lines(&gpo(&[
        "matrix-game",
        "--variant",
        "prompt-response",
        "--payoff",
        &example("prompt-response.json"),
        "--iters",
        "4000",
    ]));
    let s = v.last().unwrap();
    let gap = s["nash_gap_avg"].as_f64().unwrap();
    assert!(gap < 0.05, "{s}");
    assert!((s["value_estimate"].as_f64().unwrap() - 0.7).abs() <= gap + 1e-12);
    let pi = s["defender_avg"].as_array().unwrap();
    assert_eq!(pi.len(), 3);
    assert_eq!(pi[0].as_array().unwrap().len(), 3);
}

#[test]
fn matrix_game_bad_input_is_one_line_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let mg = |path: &str, extra: &[&str]| {
        let mut args = vec!["matrix-game", "--payoff", path];
        args.extend_from_slice(extra);
        gpo(&args)
    };
    assert_clean_error(&mg("/no/such/game.json", &[]), "/no/such/game.json");
    let bad = file("bad.json", "{\"payoff\": [[1, 2]");
    assert_clean_error(&mg(&bad, &[]), "bad.json");
    assert_clean_error(&mg(&bad, &[]), "EOF while parsing");
    let ragged = file("ragged.json", r#"{"payoff": [[1, 2], [3]]}"#);
    assert_clean_error(
        &mg(&ragged, &[]),
        "payoff row 1 has 1 entries but row 0 has 2",
    );
    let empty = file("empty.json", r#"{"payoff": []}"#);
    assert_clean_error(&mg(&empty, &[]), "payoff is empty");
    // JSON has no NaN or infinity; an overflowing literal is the way to write one.
    let huge = file("huge.json", r#"{"payoff": [[1, 1e999]]}"#);
    assert_clean_error(&mg(&huge, &[]), "huge.json");
    assert_clean_error(&mg(&huge, &[]), "number out of range");
    let rps = example("rps.json");
    assert_clean_error(&mg(&rps, &["--iters", "0"]), "iters is 0");
    assert_clean_error(&mg(&rps, &["--eta", "-0.5"]), "eta is -0.5");
    assert_clean_error(&mg(&rps, &["--entropy=-1"]), "entropy is -1");
    assert_clean_error(&mg(&rps, &["--trace", "0"]), "trace is 0");
    assert_clean_error(
        &mg(&rps, &["--variant", "prompt-response"]),
        "unknown field `payoff`",
    );
}

/// Writes `content` to a fresh file named `name` in a temporary directory.
fn temp_file(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, content).expect("write temp file");
    (dir, path)
}

#[test]
fn embed_prints_one_unit_vector_per_text_in_order() {
    let v = stdout_lines(&gpo(&["embed", "How do I bake bread?", ""]));
    assert_eq!(v.len(), 2);
    for line in &v {
        let e: Vec<f64> = serde_json::from_value(line["embedding"].clone()).expect("floats");
        assert_eq!(e.len(), 384);
        let norm: f64 = e.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
    // First values of the empty string's embedding from sentence-transformers
    // (crates/gpo-embed/tests/fixtures/minilm_reference.json).
    let empty = v[1]["embedding"].as_array().unwrap();
    assert!((empty[0].as_f64().unwrap() + 0.118838422).abs() < 1e-4);
}

#[test]
fn embed_warns_once_for_over_long_text() {
    let long = "word ".repeat(600);
    let out = gpo(&["embed", &long, &long, "short"]);
    assert_eq!(stdout_lines(&out).len(), 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("truncated").count(), 1, "{stderr}");
}

#[test]
fn diversity_of_a_set_has_the_four_fields() {
    let (_d, file) = temp_file(
        "prompts.txt",
        "How do I bake bread?\nHow do I bake bread?\n\nTell me how to pick a lock.\n",
    );
    let v = stdout_lines(&gpo(&["diversity", file.to_str().unwrap()]));
    assert_eq!(v.len(), 1);
    let d = &v[0];
    for (sim, div) in [
        ("self_bleu", "diversity_self_bleu"),
        ("embedding_similarity", "diversity_embedding"),
    ] {
        let (s, x) = (d[sim].as_f64().unwrap(), d[div].as_f64().unwrap());
        assert!((s + x - 1.0).abs() < 1e-12, "{d}");
        assert!((0.0..=1.0).contains(&s), "{d}");
    }
    // The duplicate pair is a perfect match: each copy's self-BLEU against the other three is
    // at least 1/3 (1 from its twin), so the set mean is at least 1/6.
    assert!(d["self_bleu"].as_f64().unwrap() > 1.0 / 6.0, "{d}");
}

#[test]
fn diversity_reads_jsonl_and_scores_against_a_growing_history() {
    let (_d, hist) = temp_file(
        "hist.txt",
        "How do I bake bread?\nWhat is the capital of France?\n",
    );
    let (_e, file) = temp_file(
        "new.jsonl",
        "{\"prompt\":\"zebra xylophone\"}\n{\"prompt\":\"zebra xylophone\",\"id\":2}\n",
    );
    let v = stdout_lines(&gpo(&[
        "diversity",
        "--history",
        hist.to_str().unwrap(),
        file.to_str().unwrap(),
    ]));
    assert_eq!(v.len(), 2);
    // The first shares no word with the history; the second repeats the first, which has
    // joined the history: (BLEU_2..5 of a 2-word copy = 1, 0.1^(1/3), 0.1^(2/4), 0.1^(3/5)) / 4
    // averaged with two zeros.
    assert_eq!(v[0]["self_bleu"].as_f64().unwrap(), 0.0);
    let copy = (1.0 + 0.1f64.powf(1.0 / 3.0) + 0.1f64.powf(0.5) + 0.1f64.powf(0.6)) / 4.0;
    let got = v[1]["self_bleu"].as_f64().unwrap();
    assert!((got - copy / 3.0).abs() < 1e-12, "{got}");
}

#[test]
fn diversity_names_a_missing_file() {
    assert_clean_error(
        &gpo(&["diversity", "/nonexistent/prompts.txt"]),
        "/nonexistent/prompts.txt",
    );
}

#[test]
fn diversity_names_the_malformed_jsonl_line() {
    let (_d, file) = temp_file(
        "bad.jsonl",
        "{\"prompt\":\"a\"}\n{\"prompt\":\"b\"}\n{oops\n",
    );
    assert_clean_error(&gpo(&["diversity", file.to_str().unwrap()]), "line 3");
}

#[test]
fn diversity_of_one_prompt_is_refused() {
    let (_d, file) = temp_file("one.txt", "only one\n");
    assert_clean_error(&gpo(&["diversity", file.to_str().unwrap()]), "at least 2");
}

#[test]
fn flags_that_would_lose_work_or_mislead_are_refused_before_any_model_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    // gpo rl replaces --out with each checkpoint: an existing directory needs --resume.
    assert_clean_error(
        &gpo(&["rl", "--out", d]),
        "exists, and each checkpoint replaces it",
    );
    assert_clean_error(
        &gpo(&["rl", "--out", missing, "--resume"]),
        "no checkpoint to continue",
    );
    assert_clean_error(
        &gpo(&[
            "rl",
            "--prompts-per-step",
            "4294967296",
            "--n",
            "4294967296",
        ]),
        "is too many",
    );
    // Negative numbers reach the checks that name them.
    assert_clean_error(&gpo(&["rl", "--lr", "-1"]), "lr = -1");
    assert_clean_error(
        &gpo(&["generate", "--prompt", "hi", "--n", "5000"]),
        "not in 1..=1024",
    );
    // An evaluation is not run only to fail at writing its report.
    let report = format!("{missing}/r.json");
    assert_clean_error(
        &gpo(&["eval", "defender", "--out", &report]),
        "does not exist; create it first",
    );
    assert_clean_error(
        &gpo(&[
            "eval",
            "defender",
            "--responses",
            &format!("{missing}/a.jsonl"),
        ]),
        "--responses",
    );
    assert_clean_error(
        &gpo(&["report", d, "--out", &format!("{d}/x.json")]),
        "name the HTML file something else",
    );
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "\n").unwrap();
    assert_clean_error(&gpo(&["train", empty.to_str().unwrap()]), "sets nothing");
    assert_clean_error(&gpo(&["bench", "--reps", "0"]), "--reps must be at least 1");
    assert_clean_error(
        &gpo(&["bench", "--rl", "--no-train"]),
        "cannot be used with",
    );
    // --diversity loads no language model: the flags that choose one are refused with it.
    for extra in [
        &["--no-train"][..],
        &["--model", "x.gguf"],
        &["--device", "cpu"],
    ] {
        let mut args = vec!["bench", "--diversity"];
        args.extend_from_slice(extra);
        assert_clean_error(&gpo(&args), "cannot be used with");
    }
}
