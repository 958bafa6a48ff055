//! Reading a game configuration: a TOML file, `--set key=value` overrides, validation.

use std::path::Path;

use gpo_rl::RlConfig;

use crate::config::GameConfig;
use crate::{Error, Result};

/// The default CPU game (SmolLM2-135M-Instruct with LoRA, the embedded judge), the file
/// `examples/cpu-smollm2.toml`.
pub const DEFAULT_PRESET: &str = include_str!("../../../examples/cpu-smollm2.toml");

/// Parses `text` (from `origin`, named in errors), applies `overrides` (`key.path=value`,
/// the value read as TOML when it parses as TOML, else as a string) and validates.
pub fn parse_config(text: &str, origin: &str, overrides: &[String]) -> Result<GameConfig> {
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| Error::Config(format!("{origin}: {e}")))?;
    for o in overrides {
        set(&mut doc, o)?;
    }
    // The overrides edit the parsed table, which is read as it stands: no TOML text is
    // written and parsed again.
    let cfg: GameConfig = doc.try_into().map_err(|e: toml::de::Error| {
        let suffix = if overrides.is_empty() {
            ""
        } else {
            " (after --set)"
        };
        Error::Config(format!("{origin}{suffix}: {}", e.message()))
    })?;
    cfg.validate()
        .map_err(|e| Error::Config(format!("{origin}: {e}")))?;
    Ok(cfg)
}

/// Reads and validates a configuration file with overrides. A file that sets nothing is
/// refused: it would silently play the paper's full-size game on every default.
pub fn load_config(path: &Path, overrides: &[String]) -> Result<GameConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if text.parse::<toml::Table>().is_ok_and(|t| t.is_empty()) {
        return Err(Error::Config(format!(
            "{} sets nothing, and every default is the paper's full-size game: write the \
             settings (examples/ has two configurations), or leave the file out for the \
             built-in CPU preset",
            path.display()
        )));
    }
    parse_config(&text, &path.display().to_string(), overrides)
}

/// One player's RL settings from a table shaped like a game's `[defender.rl]`, with
/// `key.path=value` overrides applied: read by the deserialiser and checked by the checks a
/// game's players get. `gpo rl` builds its settings through here.
pub fn parse_rl_table(mut table: toml::Table, overrides: &[String]) -> Result<RlConfig> {
    for o in overrides {
        set(&mut table, o)?;
    }
    let cfg: RlConfig = table
        .try_into()
        .map_err(|e: toml::de::Error| Error::Config(format!("rl settings: {}", e.message())))?;
    cfg.validate()
        .map_err(|e| Error::Config(format!("rl settings: {e}")))?;
    Ok(cfg)
}

/// Applies one `key.path=value` override.
fn set(doc: &mut toml::Table, assignment: &str) -> Result<()> {
    let Some((key, raw)) = assignment.split_once('=') else {
        return Err(Error::Config(format!(
            "--set {assignment}: expected key=value, e.g. --set steps=10"
        )));
    };
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::Config(format!(
            "--set {assignment}: empty key segment"
        )));
    }
    let value = format!("v = {}", raw.trim())
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let mut table = doc;
    for p in &parts[..parts.len() - 1] {
        let entry = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| Error::Config(format!("--set {assignment}: `{p}` is not a table")))?;
    }
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in preset with `sets` as `--set` overrides.
    fn preset_with(sets: &[&str]) -> Result<GameConfig> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        parse_config(DEFAULT_PRESET, "preset", &sets)
    }

    #[test]
    fn the_paper_example_is_valid_and_is_the_default_game_with_its_models() {
        let text = include_str!("../../../examples/paper-7b.toml");
        let cfg = parse_config(text, "examples/paper-7b.toml", &[]).unwrap();
        let d = GameConfig::default();
        assert_eq!(
            (cfg.steps, cfg.batch_size, cfg.schedule),
            (d.steps, d.batch_size, d.schedule)
        );
        assert!(cfg.attacker.rollout.is_engine() && cfg.defender.rollout.is_engine());
    }

    #[test]
    fn a_one_key_optimizer_table_keeps_the_papers_betas() {
        let text = "steps = 2\n[defender.rl]\noptimizer = { lr = 1e-5 }\n";
        let cfg = parse_config(
            text,
            "file.toml",
            &["attacker.rl.sampling.top_p=0.5".into()],
        )
        .unwrap();
        let d = RlConfig::default();
        assert_eq!(cfg.defender.rl.optimizer.lr, 1e-5);
        assert_eq!(cfg.defender.rl.optimizer.beta2, d.optimizer.beta2);
        assert_eq!(cfg.attacker.rl.sampling.top_p, 0.5);
        assert_eq!(
            cfg.attacker.rl.sampling.repetition_penalty,
            d.sampling.repetition_penalty
        );
        let e =
            parse_config("[defender.rl]\noptimizer = { lrr = 1 }\n", "file.toml", &[]).unwrap_err();
        assert!(e.to_string().contains("lrr"), "{e}");
    }

    #[test]
    fn an_engine_defender_with_a_warm_start_is_refused() {
        let e = preset_with(&[
            "defender.rollout.backend=\"vllm\"",
            "defender.rollout.urls=[\"http://h:8000\"]",
        ])
        .unwrap_err();
        assert!(e.to_string().contains("gpo sft --out W"), "{e}");
        preset_with(&[
            "defender.rollout.backend=\"vllm\"",
            "defender.rollout.urls=[\"http://h:8000\"]",
            "defender.warm_start.epochs=0",
        ])
        .unwrap();
    }

    #[test]
    fn the_default_preset_is_valid() {
        parse_config(DEFAULT_PRESET, "preset", &[]).unwrap();
    }

    #[test]
    fn overrides_reach_nested_fields_and_parse_as_toml() {
        let cfg = parse_config(
            DEFAULT_PRESET,
            "preset",
            &[
                "steps=3".into(),
                "attacker.w_bleu=0".into(),
                "models.attacker=some/dir".into(),
                "schedule={ kind = \"simultaneous\" }".into(),
            ],
        )
        .unwrap();
        assert_eq!(cfg.steps, 3);
        assert_eq!(cfg.attacker.w_bleu, 0.0);
        assert_eq!(cfg.models.attacker, "some/dir");
        assert_eq!(cfg.schedule, crate::Schedule::Simultaneous);
    }

    #[test]
    fn a_helpfulness_price_needs_benign_extras_and_a_finite_weight() {
        let err = |sets: &[&str]| preset_with(sets).unwrap_err().to_string();
        let e = err(&["defender.helpfulness=1"]);
        assert!(
            e.contains("defender.helpfulness") && e.contains("mixed"),
            "{e}"
        );
        let e = err(&[
            "defender.prompts={ kind = \"mixed\", seeds = 2, benign = 2 }",
            "defender.helpfulness=-1",
        ]);
        assert!(e.contains("defender.helpfulness = -1"), "{e}");
        parse_config(
            DEFAULT_PRESET,
            "preset",
            &[
                "defender.prompts={ kind = \"mixed\", seeds = 2, benign = 2 }".into(),
                "defender.helpfulness=1".into(),
            ],
        )
        .unwrap();
    }

    #[test]
    fn harmbench_seeds_train_only_an_attacker_against_a_frozen_defender() {
        let e = preset_with(&["data.seeds=harmbench"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data.seeds") && e.contains("rlhf-attacker"),
            "{e}"
        );
        // The preset's warm start would learn to refuse HarmBench prompts.
        let e = preset_with(&["data.seeds=harmbench", "mode=rlhf-attacker"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("defender.warm_start.epochs"), "{e}");
        preset_with(&[
            "data.seeds=harmbench",
            "mode=rlhf-attacker",
            "defender.warm_start.epochs=0",
        ])
        .unwrap();
    }

    #[test]
    fn the_judge_table_is_checked_as_it_is_read_and_old_keys_still_read() {
        let err = |sets: &[&str]| preset_with(sets).unwrap_err().to_string();
        let e = err(&["judge.threshold=2"]);
        assert!(e.contains("judge") && e.contains("`threshold`"), "{e}");
        let e = err(&["judge.server_url=http://h/v1"]);
        assert!(e.contains("server_url") && e.contains("embedded"), "{e}");
        let cfg = preset_with(&["judge.heads-dir=h"]).unwrap();
        assert_eq!(cfg.judge.named_heads_dir(), Some(std::path::Path::new("h")));
    }

    #[test]
    fn rl_settings_written_as_a_table_read_back_the_same() {
        let mut grpo = RlConfig {
            estimator: gpo_rl::Estimator::grpo(),
            max_grad_norm: f64::INFINITY,
            ..RlConfig::default()
        };
        grpo.sampling.n = 4;
        grpo.kl.placement = gpo_rl::KlPlacement::Loss;
        for cfg in [RlConfig::default(), grpo] {
            let table = toml::Table::try_from(&cfg).unwrap();
            assert_eq!(parse_rl_table(table, &[]).unwrap(), cfg);
        }
        let table = toml::Table::try_from(RlConfig::default()).unwrap();
        let cfg = parse_rl_table(table, &["epochs=3".into(), "kl.beta=0.5".into()]).unwrap();
        assert_eq!((cfg.epochs, cfg.kl.beta), (3, 0.5));
    }

    #[test]
    fn an_unknown_key_is_named() {
        let err = parse_config("stepz = 3\n", "x.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("stepz") && err.contains("x.toml"), "{err}");
        let err = parse_config("", "x.toml", &["attacker.wbleu=1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("wbleu"), "{err}");
    }

    #[test]
    fn the_warm_start_table_is_read_set_and_checked_field_by_field() {
        // The preset turns the warm start on and keeps every other default.
        let cfg = parse_config(DEFAULT_PRESET, "preset", &[]).unwrap();
        let on = crate::WarmStartConfig {
            epochs: 3,
            ..Default::default()
        };
        assert_eq!(cfg.defender.warm_start, on);
        let cfg = parse_config(
            "[defender.warm_start]\nepochs = 2\nmax_pairs = 3\n",
            "x.toml",
            &["defender.warm_start.epochs=3".into()],
        )
        .unwrap();
        assert_eq!(
            (
                cfg.defender.warm_start.epochs,
                cfg.defender.warm_start.max_pairs
            ),
            (3, 3)
        );
        let err = parse_config("[defender.warm_start]\nepoch = 2\n", "x.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains('\n') && err.contains("epoch") && err.contains("x.toml"),
            "{err}"
        );
        let err = parse_config("", "x.toml", &["defender.warm_start.lr=-1".into()])
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains('\n') && err.contains("defender.warm_start.lr = -1 must be"),
            "{err}"
        );
        let err = parse_config(
            "mode = \"rlhf-attacker\"\n",
            "x.toml",
            &[
                "models.defender=\"server:m@http://h/v1\"".into(),
                "defender.warm_start.epochs=1".into(),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("defender.warm_start.epochs = 1"), "{err}");
    }

    #[test]
    fn a_file_that_sets_nothing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.toml");
        std::fs::write(&path, "# only a comment\n\n").unwrap();
        let err = load_config(&path, &[]).unwrap_err().to_string();
        assert!(err.contains("empty.toml sets nothing"), "{err}");
        std::fs::write(&path, "steps = 3\n").unwrap();
        assert_eq!(load_config(&path, &[]).unwrap().steps, 3);
    }

    #[test]
    fn invalid_values_are_named() {
        let err = parse_config("batch_size = 0\n", "x.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch_size"), "{err}");
    }

    #[test]
    fn only_a_frozen_defender_may_be_served() {
        let url = "server:target@http://localhost:8000/v1";
        let served = format!("models.defender=\"{url}\"");
        let parse = |mode: &str, set: &str| {
            parse_config(&format!("mode = \"{mode}\"\n"), "x.toml", &[set.into()])
        };
        let cfg = parse("rlhf-attacker", &served).unwrap();
        assert_eq!(cfg.models.defender, url);
        let error = |mode: &str, set: &str| parse(mode, set).unwrap_err().to_string();
        for mode in ["gpo", "rlhf-defender"] {
            let err = error(mode, &served);
            assert!(
                err.contains("models.defender") && err.contains("rlhf-attacker"),
                "{err}"
            );
        }
        let err = error("rlhf-attacker", "models.defender=\"server:target\"");
        assert!(
            err.contains("models.defender") && err.contains("server:MODEL@URL"),
            "{err}"
        );
        let err = error(
            "rlhf-attacker",
            "models.defender=\"server:m@localhost:8000/v1\"",
        );
        assert!(
            err.contains("models.defender") && err.contains("not an http(s) URL"),
            "{err}"
        );
        let err = error("rlhf-attacker", "models.attacker=\"server:a@http://h/v1\"");
        assert!(err.contains("models.attacker"), "{err}");
    }

    #[test]
    fn a_previous_iterate_anchor_needs_stages_longer_than_a_step() {
        let parse = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            parse_config("anchor = \"previous-iterate\"\n", "x.toml", &sets)
        };
        parse(&[]).unwrap();
        let simultaneous = "schedule={ kind = \"simultaneous\" }";
        let err = parse(&[simultaneous]).unwrap_err().to_string();
        assert!(
            err.contains("attacker.rl.kl") && err.contains("always be 0"),
            "{err}"
        );
        parse(&[
            simultaneous,
            "attacker.rl.kl.placement=\"loss\"",
            "defender.rl.kl.placement=\"loss\"",
        ])
        .unwrap();
        for mode in ["rlhf-attacker", "rlhf-defender"] {
            let err = parse(&[&format!("mode=\"{mode}\"")])
                .unwrap_err()
                .to_string();
            assert!(err.contains("no stages") && err.contains(mode), "{err}");
        }
    }

    #[test]
    fn the_players_device_is_read_and_a_wrong_one_named() {
        use gpo_lm::DeviceSpec;
        assert_eq!(
            parse_config(DEFAULT_PRESET, "preset", &[])
                .unwrap()
                .models
                .device,
            DeviceSpec::Cpu
        );
        let text = include_str!("../../../examples/paper-7b.toml");
        let cfg = parse_config(text, "paper-7b.toml", &[]).unwrap();
        assert_eq!(cfg.models.device, DeviceSpec::Cuda(0));
        let gpo_judge::JudgeConfig::LmGuard { device, dtype, .. } = cfg.judge else {
            panic!("paper-7b.toml's judge is lm-guard: {:?}", cfg.judge)
        };
        assert_eq!(
            (device, dtype),
            (DeviceSpec::Cuda(0), gpo_lm::Precision::Bf16)
        );
        assert_eq!(cfg.models.dtype, gpo_lm::Precision::Bf16);
        let cfg = parse_config("", "x.toml", &["models.device=cuda:1".into()]).unwrap();
        assert_eq!(cfg.models.device, DeviceSpec::Cuda(1));
        assert_eq!(cfg.models.dtype, gpo_lm::Precision::F32);
        let cfg = parse_config("", "x.toml", &["models.dtype=bf16".into()]).unwrap();
        assert_eq!(cfg.models.dtype, gpo_lm::Precision::Bf16);
        let err = parse_config("", "x.toml", &["models.dtype=fp8".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected f32, bf16 or f16"), "{err}");
        let err = parse_config("[models]\ndevice = \"gpu\"\n", "x.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.toml") && err.contains("expected cpu, cuda or cuda:N"),
            "{err}"
        );
    }
}
