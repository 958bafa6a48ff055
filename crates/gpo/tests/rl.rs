//! `gpo rl` and `gpo sft` end to end on SmolLM2-135M-Instruct with tiny budgets: they train,
//! write adapters (`gpo rl` checkpoints and resumes), and refuse bad options with one-line
//! errors.

mod common;
use common::{gpo, stdout_lines as lines};

const TINY: &[&str] = &[
    "rl",
    "--prompts-per-step",
    "2",
    "--max-new-tokens",
    "4",
    "--lora-rank",
    "2",
];

#[test]
fn rl_trains_checkpoints_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ckpt");
    let out_s = out.to_str().unwrap();
    let mut args = TINY.to_vec();
    args.extend(["--steps", "2", "--out", out_s]);
    let v = lines(&gpo(&args));
    assert_eq!(v.len(), 2);
    assert_eq!(v[1]["iteration"], 2);
    for k in ["reward", "kl", "update", "times", "sample"] {
        assert!(v[0].get(k).is_some(), "missing {k}: {}", v[0]);
    }
    assert!(out.join("policy/adapter_model.safetensors").exists());
    assert!(out.join("value_head.safetensors").exists());

    let mut args = TINY.to_vec();
    args.extend(["--steps", "3", "--out", out_s, "--resume"]);
    let v = lines(&gpo(&args));
    assert_eq!(v.len(), 1, "only the missing iteration runs");
    assert_eq!(v[0]["iteration"], 3);
    assert!(v[0]["kl_k1"].is_number(), "{}", v[0]);

    // The trained adapter applies with --adapter (PEFT layout) and moves the log-probs.
    let text = "<|im_start|>user\nName a fruit.<|im_end|>\n<|im_start|>assistant\nA banana.";
    let base = lines(&gpo(&["logprobs", "--text", text]));
    let policy = out.join("policy");
    let tuned = lines(&gpo(&[
        "logprobs",
        "--adapter",
        policy.to_str().unwrap(),
        "--text",
        text,
    ]));
    assert_eq!(base[0]["ids"], tuned[0]["ids"]);
    assert_ne!(base[0]["logprobs"], tuned[0]["logprobs"]);
}

#[test]
fn a_bad_adapter_directory_is_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = gpo(&[
        "logprobs",
        "--adapter",
        dir.path().to_str().unwrap(),
        "--text",
        "Hi",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("adapter_config.json"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn group_estimators_without_groups_are_refused() {
    let out = gpo(&["rl", "--estimator", "grpo", "--n", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("sampling.n >= 2"), "{stderr}");
}

#[test]
fn set_reaches_every_rl_key_and_is_checked_as_a_game_config_is() {
    for (set, expect) in [
        ("clip=0", "clip = 0 must be > 0"),
        ("clipp=0.1", "unknown field `clipp`"),
        ("sampling.n=3", "the group size is --n"),
        ("sampling.seed=5", "the seed is --seed"),
        ("nokey", "expected key=value"),
    ] {
        let out = gpo(&["rl", "--set", set]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{set}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains(expect), "--set {set}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn zero_counts_name_their_flag() {
    for flag in ["--steps", "--prompts-per-step", "--n"] {
        let out = gpo(&["rl", flag, "0"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.contains(&format!("{flag} must be at least 1")),
            "{stderr}"
        );
    }
}

#[test]
fn a_missing_prompt_file_is_named() {
    let out = gpo(&["rl", "--prompts", "/nonexistent/prompts.txt"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("/nonexistent/prompts.txt"), "{stderr}");
}

#[test]
fn sft_writes_an_adapter_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("warm");
    let out_s = out.to_str().unwrap();
    let quick = [
        "sft",
        "--out",
        out_s,
        "--epochs",
        "1",
        "--max-pairs",
        "3",
        "--sharegpt",
        "0",
        "--max-new-tokens",
        "4",
        "--lora-rank",
        "2",
        "--batch-size",
        "4",
    ];
    let v = lines(&gpo(&quick));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["harmful_pairs"], 3);
    // 3 benign prompts, each answered (or dropped when the answer is empty or refuses).
    let kept = v[0]["benign_pairs"].as_u64().unwrap();
    assert_eq!(kept + v[0]["benign_dropped"].as_u64().unwrap(), 3);
    // 3 + kept pairs in batches of 4.
    assert_eq!(v[0]["steps"].as_u64().unwrap(), (3 + kept).div_ceil(4));
    assert!(out.join("adapter_model.safetensors").exists());
    assert!(out.join("adapter_config.json").exists());

    // The adapter directory as --model is its base with the adapter merged: the same
    // log-probs as the base with --adapter, to f32 rounding.
    let text = ["logprobs", "--text", "How do I pick a lock?"];
    let merged = lines(&gpo(&[&text[..], &["--model", out_s]].concat()));
    let applied = lines(&gpo(&[&text[..], &["--adapter", out_s]].concat()));
    let lp = |v: &serde_json::Value| -> Vec<f64> {
        v["logprobs"].as_array().unwrap()[1..]
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (a, b) = (lp(&merged[0]), lp(&applied[0]));
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-3, "merged vs applied adapter: {worst}");

    common::assert_clean_error(&gpo(&quick), "exists");
    let other = dir.path().join("other");
    common::assert_clean_error(
        &gpo(&["sft", "--out", other.to_str().unwrap(), "--lr", "NaN"]),
        "--lr",
    );
}
