//! `gpo eval` and `gpo crossplay` end to end on a tiny run of SmolLM2-135M-Instruct: the
//! reports' shapes and intervals, the cross-play matrix written beside the run, same seed
//! same numbers, several samples per prompt, and one-line errors for bad input.

mod common;
use common::{assert_clean_error, gpo, stdout_lines, tiny_config, train_heads};

/// `--responses` holds every answer the report counted: 3 harmful prompts, then 12 and 16
/// benign ones, two samples each, with the readings the rates came from.
fn check_answers(path: &std::path::Path, report: &serde_json::Value, first_benign: &str) {
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |set: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["set"] == set).collect()
    };
    let (harmful, benign, built_in) = (of("harmful"), of(first_benign), of("built-in-benign"));
    assert_eq!(
        (harmful.len(), benign.len(), built_in.len(), lines.len()),
        (6, 24, 32, 62)
    );
    assert_eq!(harmful[0]["response"], report["examples"][0]["response"]);
    assert_eq!(
        (&harmful[0]["sample"], &harmful[1]["sample"]),
        (&0.into(), &1.into())
    );
    let unsafe_rate = harmful
        .iter()
        .filter(|l| l["p_unsafe"].as_f64().unwrap() >= 0.5)
        .count() as f64
        / 6.0;
    assert_eq!(unsafe_rate, report["harmful"]["attack_success"]["mean"]);
    let refused = benign.iter().filter(|l| l["refused"] == true).count() as f64 / 24.0;
    assert_eq!(refused, report["over_refusal"]["mean"]);
}

/// Checks an `Estimate`: `lo <= mean <= hi` inside `[lo_bound, hi_bound]`, over `n` items.
fn assert_estimate(v: &serde_json::Value, n: u64, bounds: (f64, f64)) {
    let f = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    let (lo, mean, hi) = (f("lo"), f("mean"), f("hi"));
    assert!(
        bounds.0 <= lo && lo <= mean && mean <= hi && hi <= bounds.1,
        "{v}"
    );
    assert_eq!(v["n"], n, "{v}");
    assert_eq!(v["level"], 0.95, "{v}");
}

#[test]
fn eval_and_crossplay_on_a_tiny_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let seeds = dir.path().join("seeds.txt");
    let seeds_s = seeds.to_str().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    stdout_lines(&gpo(&[
        "train",
        cfg.to_str().unwrap(),
        "--run-dir",
        run_s,
        "--set",
        "steps=2",
        "--set",
        "snapshot_every=1",
    ]));

    // Cross-play: initial + 2 snapshots per side, on the run's 2 held-out seeds.
    let cp = &stdout_lines(&gpo(&["crossplay", run_s]))[0];
    let names = ["initial", "step-000001", "step-000002"];
    assert_eq!(cp["attackers"], serde_json::json!(names));
    assert_eq!(cp["defenders"], serde_json::json!(names));
    assert_eq!(cp["seeds"], 2);
    let asr = cp["asr"].as_array().unwrap();
    assert_eq!(asr.len(), 3);
    for row in asr {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), 3);
        // Two seeds: every rate is 0, 1/2 or 1.
        assert!(row
            .iter()
            .all(|x| [0.0, 0.5, 1.0].contains(&x.as_f64().unwrap())));
    }
    assert_eq!(
        cp["exploitability"]["attacker_worst"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("crossplay.json")).unwrap())
            .unwrap();
    assert_eq!(&written, cp, "crossplay.json holds what was printed");

    // The defender: the run's latest snapshot, judged by both judges, two samples per
    // prompt, over-refusal on two benign sets.
    let heads = train_heads(dir.path());
    let defender_args = [
        "eval",
        "defender",
        run_s,
        "--prompts",
        seeds_s,
        "--limit",
        "3",
        "--benign",
        seeds_s,
        "--benign",
        "built-in-benign",
        "--heads-dir",
        &heads,
        "--max-new-tokens",
        "6",
        "--resamples",
        "200",
        "--samples",
        "2",
        "--second-judge",
        "lm-guard",
    ];
    let d = &stdout_lines(&gpo(&defender_args))[0];
    assert!(
        d["defender"]
            .as_str()
            .unwrap()
            .ends_with("checkpoint/defender/trainer/policy"),
        "{d}"
    );
    assert_eq!(d["prompts"], 3);
    assert_eq!(d["harmful"]["judge"], "embedded");
    assert_estimate(&d["harmful"]["attack_success"], 3, (0.0, 1.0));
    assert_estimate(&d["harmful"]["p_unsafe"], 3, (0.0, 1.0));
    assert!(d["second_judge"]["judge"]
        .as_str()
        .unwrap()
        .starts_with("lm-guard"));
    assert_eq!(d["samples"], 2);
    assert_estimate(&d["over_refusal"], 12, (0.0, 1.0));
    let sets = d["benign_sets"].as_array().unwrap();
    assert_eq!(sets.len(), 2, "{d}");
    assert_eq!(
        (&sets[0]["name"], &sets[0]["prompts"]),
        (&seeds_s.into(), &12.into())
    );
    assert_eq!(
        sets[0]["over_refusal"], d["over_refusal"],
        "the first set is top-level"
    );
    assert_eq!(sets[1]["name"], "built-in-benign");
    for stats in [
        &d["harmful_responses"],
        &sets[0]["responses"],
        &sets[1]["responses"],
    ] {
        assert!(stats["mean_chars"].as_f64().unwrap() > 0.0, "{stats}");
        assert!(
            (0.0..=1.0).contains(&stats["distinct_2"].as_f64().unwrap()),
            "{stats}"
        );
    }
    assert_eq!(d["examples"].as_array().unwrap().len(), 3);
    let responses = dir.path().join("answers.jsonl");
    let mut with_answers = defender_args.to_vec();
    with_answers.extend(["--responses", responses.to_str().unwrap()]);
    let again = &stdout_lines(&gpo(&with_answers))[0];
    assert_eq!(d, again, "the same seed gives the same report");
    check_answers(&responses, d, seeds_s);
    // One sample per prompt is the first of several: the examples show first samples
    // (scores within batching's rounding: the judge sees other batches).
    let one = &stdout_lines(&gpo(&defender_args[..defender_args.len() - 4]))[0];
    assert_eq!(one["samples"], 1);
    for (x, y) in one["examples"]
        .as_array()
        .unwrap()
        .iter()
        .zip(d["examples"].as_array().unwrap())
    {
        assert_eq!(
            (&x["prompt"], &x["response"]),
            (&y["prompt"], &y["response"])
        );
        let (p, q) = (
            x["p_unsafe"].as_f64().unwrap(),
            y["p_unsafe"].as_f64().unwrap(),
        );
        assert!((p - q).abs() < 1e-4, "{x} vs {y}");
    }

    // The attacker: against the run's initial and latest defenders by default.
    let a = &stdout_lines(&gpo(&[
        "eval",
        "attacker",
        run_s,
        "--seeds",
        seeds_s,
        "--limit",
        "3",
        "--heads-dir",
        &heads,
        "--max-new-tokens",
        "6",
        "--resamples",
        "200",
        "--samples",
        "2",
    ]))[0];
    assert_eq!(a["samples"], 2);
    let targets = a["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{a}");
    assert!(targets[0]["target"]
        .as_str()
        .unwrap()
        .starts_with("initial"));
    for t in targets {
        assert_estimate(&t["rates"]["attack_success"], 3, (0.0, 1.0));
    }
    assert_estimate(&a["diversity_self_bleu"], 3, (0.0, 1.0));
    assert_estimate(&a["diversity_embedding"], 3, (-1.0, 2.0));
    assert!(a["examples"][0]["seed"].is_string(), "{a}");
}

#[test]
fn bad_input_is_one_error_line_naming_it() {
    assert_clean_error(
        &gpo(&["eval", "defender", "--prompts", "/nonexistent/harm.txt"]),
        "/nonexistent/harm.txt",
    );
    assert_clean_error(
        &gpo(&["eval", "attacker", "--seeds", "/nonexistent/seeds.txt"]),
        "/nonexistent/seeds.txt",
    );
    assert_clean_error(
        &gpo(&["eval", "defender", "--limit", "0"]),
        "--limit must be at least 1",
    );
    for n in ["0", "65"] {
        assert_clean_error(
            &gpo(&["eval", "defender", "--samples", n]),
            "--samples must be between 1 and 64",
        );
    }
    assert_clean_error(&gpo(&["crossplay", "/nonexistent/run"]), "/nonexistent/run");
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::copy(&cfg, run.join("config.toml")).unwrap();
    assert_clean_error(
        &gpo(&["eval", "defender", run.to_str().unwrap(), "--limit", "1"]),
        "no checkpoint and no defender snapshot",
    );
}
