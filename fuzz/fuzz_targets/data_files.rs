//! The data files gpo reads back: prompt files (`read_prompt_file`), `gpo judge --input`
//! exchange files (`read_exchange_file`), `crossplay.json` (`CrossPlay::read`), a run's
//! `metrics.jsonl`, `eval.jsonl` and `samples.jsonl` (`Report::load`, `read_evals`) and
//! `gpo matrix-game` payoff files (`Game::from_json`). The first byte picks the file.
#![no_main]

use std::sync::OnceLock;

use gpo_fuzz::Scratch;
use gpo_nash::{Game, Variant};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static Scratch {
    static DIR: OnceLock<Scratch> = OnceLock::new();
    DIR.get_or_init(|| Scratch::new("data_files"))
}

/// A run directory holding `file` as `name` and an empty `metrics.jsonl` (the one file a
/// report needs), read as `gpo report` and `gpo eval` read it.
fn run_file(s: &Scratch, name: &str, file: &[u8]) {
    for other in [
        "metrics.jsonl",
        "eval.jsonl",
        "samples.jsonl",
        "crossplay.json",
    ] {
        s.remove(other);
    }
    s.write("metrics.jsonl", b"");
    s.write(name, file);
    if let Ok(report) = gpo_report::Report::load(s.dir()) {
        let _ = report.json();
    }
    let run = gpo_game::RunDir {
        path: s.dir().to_path_buf(),
    };
    let _ = gpo_game::read_evals(&run);
}

fuzz_target!(|data: &[u8]| {
    let Some((kind, file)) = gpo_fuzz::pick(data, 8) else {
        return;
    };
    let s = scratch();
    match kind {
        0 => drop(gpo_game::read_prompt_file(&s.write("prompts.txt", file))),
        1 => drop(gpo_judge::read_exchange_file(&s.write("input.jsonl", file))),
        2 => drop(gpo_eval::CrossPlay::read(&s.write("crossplay.json", file))),
        3 => run_file(s, "metrics.jsonl", file),
        4 => run_file(s, "eval.jsonl", file),
        5 => run_file(s, "samples.jsonl", file),
        6 => run_file(s, "crossplay.json", file),
        _ => {
            let text = String::from_utf8_lossy(file);
            let _ = Game::from_json(Variant::Matrix, &text);
            let _ = Game::from_json(Variant::PromptResponse, &text);
        }
    }
});
