//! `gpo train` end to end on SmolLM2-135M-Instruct with tiny budgets: a run killed with
//! SIGKILL and resumed produces exactly the metrics of an uninterrupted run, and bad
//! configurations fail before any training with one-line errors.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::{deterministic_lines, gpo, gpo_command, kill_after_lines, tiny_config};

#[test]
fn a_killed_and_resumed_run_matches_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let cfg_s = cfg.to_str().unwrap();

    // The defender also answers one seed and one benign prompt, in its learning steps only.
    let mixed = "defender.prompts={kind=\"mixed\",seeds=1,benign=1}";
    let straight = dir.path().join("straight");
    let out = gpo(&[
        "train",
        cfg_s,
        "--run-dir",
        straight.to_str().unwrap(),
        "--set",
        mixed,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("summary line");
    let is_interval = |e: &serde_json::Value, n: u64| {
        let (mean, lo, hi) = (e["mean"].as_f64(), e["lo"].as_f64(), e["hi"].as_f64());
        matches!((mean, lo, hi), (Some(m), Some(l), Some(h)) if l <= m && m <= h) && e["n"] == n
    };
    for k in ["before", "after"] {
        let e = &summary[k];
        assert!(e["defender_asr"].is_number(), "{summary}");
        assert!(e["attacker_asr_vs_initial"].is_number(), "{summary}");
        // 2 held-out seeds and the 16 built-in benign prompts, one answer each.
        let (harmful, benign) = (&e["defender_harmful"], &e["defender_benign"]);
        assert!(is_interval(&harmful["attack_success"], 2), "{summary}");
        assert_eq!(
            harmful["attack_success"]["mean"], e["defender_asr"],
            "{summary}"
        );
        assert!(is_interval(&benign["over_refusal"], 16), "{summary}");
        for stats in [&harmful["responses"], &benign["responses"]] {
            assert!(stats["mean_chars"].as_f64().unwrap() > 0.0, "{summary}");
            assert!(stats["distinct_2"].is_number(), "{summary}");
        }
        // The answers stay in eval.jsonl.
        assert!(harmful.get("answers").is_none(), "{summary}");
    }
    // No warm start: nothing to compare the run with but its first evaluation.
    assert!(summary.get("base").is_none(), "{summary}");
    assert!(!straight.join("base_eval.json").exists());
    let change = &summary["change"];
    assert!(
        is_interval(&change["defender_harmful"]["attack_success"], 2),
        "{summary}"
    );
    assert!(
        is_interval(&change["defender_benign"]["over_refusal"], 16),
        "{summary}"
    );
    assert!(
        change["defender_harmful"]["distinct_2"].is_number(),
        "{summary}"
    );
    assert_eq!(summary["steps"], 4);

    let killed = dir.path().join("killed");
    let args: Vec<String> = ["train", cfg_s, "--run-dir", killed.to_str().unwrap()]
        .into_iter()
        .chain(["--set", mixed])
        .map(String::from)
        .collect();
    kill_after_lines(&args, &killed.join("metrics.jsonl"), 2);
    // A snapshot saved after the last checkpoint (a kill between the two leaves one) belongs
    // to steps the resumed run plays again: it must not survive into their evaluations.
    let stale = killed.join("snapshots/attacker/step-000099");
    std::fs::create_dir_all(&stale).unwrap();
    let out = gpo(&["train", "--resume", killed.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for f in ["metrics.jsonl", "samples.jsonl", "eval.jsonl"] {
        let (a, b) = (
            deterministic_lines(&straight.join(f)),
            deterministic_lines(&killed.join(f)),
        );
        assert_eq!(a.len(), b.len(), "{f}: line counts differ");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x, y, "{f} line {}", i + 1);
        }
    }
    let steps: Vec<u64> = deterministic_lines(&killed.join("metrics.jsonl"))
        .iter()
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2, 3, 4], "no step lost or repeated");
    // Two attacks per step, plus the two extras in each step where the defender learned.
    let metrics = deterministic_lines(&killed.join("metrics.jsonl"));
    let samples = deterministic_lines(&killed.join("samples.jsonl"));
    for m in &metrics {
        let step = &m["step"];
        let of_step: Vec<_> = samples.iter().filter(|s| &s["step"] == step).collect();
        let extras = of_step.iter().filter(|s| s["seed"] == "").count();
        let learned = m["defender"]["learned"] == true;
        assert_eq!(extras, if learned { 2 } else { 0 }, "{m}");
        assert_eq!(of_step.len() - extras, 2, "{m}");
    }
    assert!(metrics.iter().any(|m| m["defender"]["learned"] == true));
    assert!(killed.join("snapshots/attacker/step-000004").is_dir());
    assert!(
        !stale.exists(),
        "a snapshot from after the checkpoint was kept"
    );
    assert!(killed.join("summary.json").is_file());
    // Every evaluation holds the defender's answers: one per held-out seed, one per
    // built-in benign prompt.
    for e in deterministic_lines(&killed.join("eval.jsonl")) {
        assert_eq!(
            e["defender_harmful"]["answers"].as_array().unwrap().len(),
            2
        );
        assert_eq!(
            e["defender_benign"]["answers"].as_array().unwrap().len(),
            16
        );
    }
}

#[test]
fn a_warm_start_runs_first_resumes_and_becomes_the_initial_defender() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    // The same warm start as `gpo sft` with these flags: with 2 pairs a side, both sides are
    // written requests, whatever the game's seeds.
    let sft = dir.path().join("sft");
    let flags = [
        "--epochs",
        "2",
        "--max-pairs",
        "2",
        "--sharegpt",
        "0",
        "--max-new-tokens",
        "4",
        "--lora-rank",
        "2",
        "--batch-size",
        "4",
        "--seed",
        "3",
    ];
    let mut args = vec!["sft", "--out", sft.to_str().unwrap()];
    args.extend(flags);
    common::stdout_lines(&gpo(&args));

    let run = dir.path().join("run");
    let table = "defender.warm_start={epochs=2,max_pairs=2,sharegpt=0,max_new_tokens=4,\
                 lora_rank=2,batch_size=4}";
    let mut child = gpo_command()
        .args(["train", cfg.to_str().unwrap(), "--run-dir"])
        .arg(&run)
        .args(["--set", "steps=2", "--set", table])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gpo");
    // Killed once its first epoch is committed (or later: the resume then has less to do).
    let progress = run.join("warm-start.partial/progress.json");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&progress).is_ok_and(|t| t.contains("\"epochs_done\":1"))
        && !run.join("warm-start").exists()
    {
        assert!(t0.elapsed() < Duration::from_secs(600), "no epoch finished");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let summary = &common::stdout_lines(&gpo(&["train", "--resume", run.to_str().unwrap()]))[0];

    let warm = std::fs::canonicalize(run.join("warm-start")).unwrap();
    let warm_s = warm.to_str().unwrap();
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(
        read(&warm.join("adapter_model.safetensors")),
        read(&sft.join("adapter_model.safetensors")),
        "the game's warm start differs from gpo sft's"
    );
    assert!(!run.join("warm-start.partial").exists());
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains(&format!("defender = \"{warm_s}\"")),
        "{config}"
    );
    let record = &summary["defender_warm_start"];
    assert_eq!(record["adapter"], warm_s, "{summary}");
    assert_eq!(record["epochs"], 2, "{summary}");
    assert_eq!(record["harmful_pairs"], 2, "{summary}");
    // The model before the warm start, evaluated at step 0, and what the run changed since.
    let base: serde_json::Value =
        serde_json::from_slice(&read(&run.join("base_eval.json"))).expect("base_eval.json is JSON");
    assert_eq!(summary["base"]["model"], base["model"], "{summary}");
    assert_eq!(
        base["defender_harmful"]["answers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(summary["base"]["defender_harmful"].get("answers").is_none());
    let since = &summary["change_from_base"];
    assert_eq!(
        since["defender_harmful"]["attack_success"]["n"], 2,
        "{summary}"
    );
    assert_eq!(
        since["defender_benign"]["over_refusal"]["n"], 16,
        "{summary}"
    );
    // Paired by prompt: after minus base, prompt by prompt, averages to after minus base.
    let rate = |e: &serde_json::Value| e["defender_harmful"]["attack_success"]["mean"].as_f64();
    let want = rate(&summary["after"]).unwrap() - rate(&summary["base"]).unwrap();
    let got = since["defender_harmful"]["attack_success"]["mean"]
        .as_f64()
        .unwrap();
    assert!((got - want).abs() < 1e-9, "{summary}");
    // The game's adapters record the warm start as their base.
    let snapshot = read(&run.join("snapshots/defender/step-000002/adapter_config.json"));
    let snapshot: serde_json::Value = serde_json::from_slice(&snapshot).unwrap();
    assert_eq!(snapshot["base_model_name_or_path"], warm_s);
}

/// Asserts a clean failure before training: non-zero exit, one `error:` line naming
/// `needle`, no run directory left behind.
fn assert_fails_before_training(args: &[&str], run_dir: &Path, needle: &str) {
    let out = gpo(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(needle), "{needle:?} not in {stderr}");
    assert!(!run_dir.join("metrics.jsonl").exists(), "training started");
}

#[test]
fn bad_configurations_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let cfg_s = cfg.to_str().unwrap();
    let rd = dir.path().join("run");
    let rd_s = rd.to_str().unwrap();
    // The tiny game with `--set` overrides.
    let with_sets = |sets: &[&str], needle: &str| {
        let mut args = vec!["train", cfg_s, "--run-dir", rd_s];
        for s in sets {
            args.extend(["--set", s]);
        }
        assert_fails_before_training(&args, &rd, needle);
    };
    with_sets(&["stepz=3"], "stepz");
    with_sets(&["defender.warm_start.epoch=2"], "epoch");
    with_sets(
        &["defender.warm_start.epochs=1", "defender.warm_start.lr=0"],
        "defender.warm_start.lr = 0 must be",
    );
    assert!(!rd.exists());
    assert_fails_before_training(
        &["train", "/nonexistent/game.toml", "--run-dir", rd_s],
        &rd,
        "/nonexistent/game.toml",
    );
    with_sets(
        &["data.seeds=/nonexistent/seeds.txt"],
        "/nonexistent/seeds.txt",
    );
    // A served defender that does not answer (nothing listens on port 9) fails before the
    // run directory exists.
    with_sets(
        &[
            "mode=\"rlhf-attacker\"",
            "models.defender=\"server:m@http://127.0.0.1:9/v1\"",
        ],
        "http://127.0.0.1:9/v1",
    );
    assert!(!rd.exists());
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    with_sets(
        &[&format!("data.seeds={}", empty.display())],
        "has 0 prompts",
    );
    with_sets(&["judge.lm_guard_model=/nonexistent/guard.gguf"], "judge");
    #[cfg(not(feature = "cuda"))]
    with_sets(&["models.device=cuda"], "models.device");
}
