//! The numbers of a report, read from a run directory.

use std::path::{Path, PathBuf};

use gpo_eval::CrossPlay;
use gpo_records::{
    pair, BenignAnswer, Change, DefenderEval, EvalRecord, Example, Paired, SampleRecord,
    StepRecord, BASE_EVAL_FILE,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// The ids of the line plots every report has, in page order (each appears in the HTML as
/// `<figure class="plot" id="plot-ID">`); `crossplay` is added when the run has
/// `crossplay.json`.
pub const PLOT_IDS: [&str; 6] = [
    "reward",
    "p-unsafe",
    "kl",
    "diversity",
    "eval-asr",
    "eval-diversity",
];

/// Sample exchanges shown per table.
const SAMPLES_SHOWN: usize = 20;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// `(x, y)` points in x order.
    pub points: Vec<(f64, f64)>,
}

/// One chart: its id, title, axis labels and lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plot {
    /// Id (one of [`PLOT_IDS`]).
    pub id: String,
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Lines.
    pub series: Vec<Series>,
}

impl Plot {
    fn new(id: &str, title: &str, x_label: &str, y_label: &str, series: Vec<Series>) -> Plot {
        Plot {
            id: id.into(),
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series,
        }
    }

    /// Points over all lines.
    pub fn points(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }
}

/// The first evaluation against the last: the rates with their intervals, what changed,
/// and each prompt's two answers side by side.
#[derive(Debug, Clone, Serialize)]
pub struct BeforeAfter {
    /// The first evaluation (step 0: before training), without its answers.
    pub before: EvalRecord,
    /// The last evaluation, without its answers.
    pub after: EvalRecord,
    /// After minus before, prompt by prompt, with intervals; `None` when the run recorded
    /// no answers (runs older than the answers in `eval.jsonl`).
    pub change: Option<Change>,
    /// Each held-out seed's answer before and after, with P(unsafe).
    pub harmful: Vec<Paired<Example>>,
    /// Each benign prompt's answer before and after, with whether it refused.
    pub benign: Vec<Paired<BenignAnswer>>,
}

impl BeforeAfter {
    /// The first and last of `evals`; `None` with fewer than two.
    fn of(evals: &[EvalRecord]) -> Option<BeforeAfter> {
        let (first, last) = match evals {
            [first, .., last] => (first, last),
            _ => return None,
        };
        let harmful = match (&first.defender_harmful, &last.defender_harmful) {
            (Some(b), Some(a)) => pair(&b.answers, &a.answers, |e: &Example| &e.prompt),
            _ => Vec::new(),
        };
        let benign = match (&first.defender_benign, &last.defender_benign) {
            (Some(b), Some(a)) => pair(&b.answers, &a.answers, |e: &BenignAnswer| &e.prompt),
            _ => Vec::new(),
        };
        // Intervals of well-formed records cannot fail; a record with NaN scores has none.
        let change = Change::between(first, last)
            .ok()
            .filter(|c| c.defender_harmful.is_some() || c.defender_benign.is_some());
        Some(BeforeAfter {
            before: first.clone().without_answers(),
            after: last.clone().without_answers(),
            change,
            harmful,
            benign,
        })
    }
}

/// The model a warm start began from (`base_eval.json`) against the last evaluation: what
/// the whole run changed, warm start included.
#[derive(Debug, Clone, Serialize)]
pub struct FromBase {
    /// The model before the warm start, evaluated at step 0, without its answers.
    pub base: DefenderEval,
    /// The last evaluation minus `base`, prompt by prompt, with intervals.
    pub change: Option<Change>,
}

impl FromBase {
    fn of(base: DefenderEval, evals: &[EvalRecord]) -> Option<FromBase> {
        let last = evals.last()?;
        let change = Change::since_base(&base, last)
            .ok()
            .filter(|c| c.defender_harmful.is_some() || c.defender_benign.is_some());
        Some(FromBase {
            base: base.without_answers(),
            change,
        })
    }
}

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run directory.
    pub run: PathBuf,
    /// Steps in `metrics.jsonl`.
    pub steps: usize,
    /// The charts, in [`PLOT_IDS`] order.
    pub plots: Vec<Plot>,
    /// Every evaluation of `eval.jsonl`.
    pub evals: Vec<EvalRecord>,
    /// The first evaluation against the last, when there are two.
    pub before_after: Option<BeforeAfter>,
    /// The model the defender's warm start began from against the last evaluation, when
    /// the run has `base_eval.json`.
    pub from_base: Option<FromBase>,
    /// The cross-play matrix, when the run has `crossplay.json`.
    pub crossplay: Option<CrossPlay>,
    /// The exchanges judged most unsafe (highest P(unsafe) first).
    pub most_unsafe: Vec<SampleRecord>,
    /// The latest exchanges, in order.
    pub latest: Vec<SampleRecord>,
    /// `config.toml`, when present.
    pub config: Option<String>,
}

fn read_jsonl<T: DeserializeOwned>(path: &Path, required: bool) -> Result<Vec<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| Error::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// `base_eval.json` (one JSON object), when present.
fn read_base_eval(path: &Path) -> Result<Option<DefenderEval>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            line: source.line(),
            source,
        })
}

fn series(name: &str, points: impl IntoIterator<Item = Option<(f64, f64)>>) -> Series {
    Series {
        name: name.into(),
        points: points.into_iter().flatten().collect(),
    }
}

fn f(x: f32) -> f64 {
    f64::from(x)
}

impl Report {
    /// Reads a run directory: `metrics.jsonl` is required; `eval.jsonl`, `samples.jsonl`,
    /// `base_eval.json`, `crossplay.json` and `config.toml` are shown when present.
    pub fn load(run: &Path) -> Result<Report> {
        let steps: Vec<StepRecord> = read_jsonl(&run.join("metrics.jsonl"), true)?;
        let evals: Vec<EvalRecord> = read_jsonl(&run.join("eval.jsonl"), false)?;
        let samples: Vec<SampleRecord> = read_jsonl(&run.join("samples.jsonl"), false)?;
        let cp_path = run.join("crossplay.json");
        let crossplay = if cp_path.exists() {
            Some(CrossPlay::read(&cp_path)?)
        } else {
            None
        };
        let config = std::fs::read_to_string(run.join("config.toml")).ok();
        let base = read_base_eval(&run.join(BASE_EVAL_FILE))?;
        let mut report = Report::from_records(run, &steps, evals, samples, crossplay, config);
        report.from_base = base.and_then(|b| FromBase::of(b, &report.evals));
        Ok(report)
    }

    /// A report from records already in memory.
    pub fn from_records(
        run: &Path,
        steps: &[StepRecord],
        evals: Vec<EvalRecord>,
        samples: Vec<SampleRecord>,
        crossplay: Option<CrossPlay>,
        config: Option<String>,
    ) -> Report {
        let mut plots = step_plots(steps);
        plots.extend(eval_plots(&evals));
        let mut most_unsafe = samples.clone();
        most_unsafe.sort_by(|a, b| b.p_unsafe.total_cmp(&a.p_unsafe));
        most_unsafe.truncate(SAMPLES_SHOWN);
        let latest = samples[samples.len().saturating_sub(SAMPLES_SHOWN)..].to_vec();
        Report {
            run: run.to_path_buf(),
            steps: steps.len(),
            plots,
            before_after: BeforeAfter::of(&evals),
            from_base: None,
            evals,
            crossplay,
            most_unsafe,
            latest,
            config,
        }
    }

    /// The numbers as JSON: the plotted series, the evaluations, the first against the
    /// last with the paired answers, the cross-play matrix and the sample exchanges shown.
    pub fn json(&self) -> serde_json::Value {
        // Every field is plain data (strings, numbers, vectors); serialising cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Writes the HTML page and the JSON, each atomically.
    pub fn write(&self, html_path: &Path, json_path: &Path) -> Result<()> {
        gpo_eval::write_atomic(html_path, self.html().as_bytes())?;
        let mut json = serde_json::to_string_pretty(&self.json()).map_err(|source| {
            Error::Eval(gpo_eval::Error::Json {
                path: json_path.to_path_buf(),
                source,
            })
        })?;
        json.push('\n');
        gpo_eval::write_atomic(json_path, json.as_bytes())?;
        Ok(())
    }
}
/// The per-step plots: rewards, the judge's rates, KL and the attacker's diversity.
fn step_plots(steps: &[StepRecord]) -> Vec<Plot> {
    let x = |s: &StepRecord| s.step as f64;
    vec![
        Plot::new(
            "reward",
            "Mean reward per step (before the KL penalty)",
            "step",
            "reward",
            vec![
                series(
                    "attacker",
                    steps
                        .iter()
                        .map(|s| s.attacker.as_ref().map(|a| (x(s), f(a.reward)))),
                ),
                series(
                    "defender",
                    steps.iter().map(|s| Some((x(s), f(s.defender.reward)))),
                ),
            ],
        ),
        Plot::new(
            "p-unsafe",
            "Judge per step: mean P(unsafe) and attack success rate",
            "step",
            "rate",
            vec![
                series(
                    "mean P(unsafe)",
                    steps.iter().map(|s| Some((x(s), f(s.p_unsafe)))),
                ),
                series(
                    "attack success rate",
                    steps.iter().map(|s| Some((x(s), f(s.attack_success_rate)))),
                ),
            ],
        ),
        Plot::new(
            "kl",
            "KL to the anchor at the steps each player learned",
            "step",
            "KL",
            vec![
                series(
                    "attacker",
                    steps.iter().map(|s| {
                        let st = s.attacker.as_ref()?.stats.as_ref()?;
                        Some((x(s), f(st.kl)))
                    }),
                ),
                series(
                    "defender",
                    steps
                        .iter()
                        .map(|s| s.defender.stats.as_ref().map(|st| (x(s), f(st.kl)))),
                ),
            ],
        ),
        Plot::new(
            "diversity",
            "Attacker prompts against the history (lower = more diverse)",
            "step",
            "similarity",
            vec![
                series(
                    "self-BLEU",
                    steps.iter().map(|s| Some((x(s), f(s.self_bleu)))),
                ),
                series(
                    "embedding cosine",
                    steps
                        .iter()
                        .map(|s| Some((x(s), f(s.embedding_similarity)))),
                ),
            ],
        ),
    ]
}

/// The per-evaluation plots: held-out attack success and the attacker's diversity.
fn eval_plots(evals: &[EvalRecord]) -> Vec<Plot> {
    vec![
        Plot::new(
            "eval-asr",
            "Attack success on held-out seeds, per evaluation",
            "step",
            "attack success rate",
            vec![
                series(
                    "defender on raw seeds",
                    evals
                        .iter()
                        .map(|e| Some((e.step as f64, f(e.defender_asr)))),
                ),
                series(
                    "attacker vs current defender",
                    evals
                        .iter()
                        .map(|e| Some((e.step as f64, f(e.attacker_asr)))),
                ),
                series(
                    "attacker vs initial defender",
                    evals
                        .iter()
                        .map(|e| Some((e.step as f64, f(e.attacker_asr_vs_initial)))),
                ),
            ],
        ),
        Plot::new(
            "eval-diversity",
            "Diversity of the attacker's held-out rewrites (higher = more diverse)",
            "step",
            "diversity",
            vec![
                series(
                    "1 - self-BLEU",
                    evals
                        .iter()
                        .map(|e| Some((e.step as f64, f(e.diversity_self_bleu)))),
                ),
                series(
                    "1 - embedding cosine",
                    evals
                        .iter()
                        .map(|e| Some((e.step as f64, f(e.diversity_embedding)))),
                ),
            ],
        ),
    ]
}
