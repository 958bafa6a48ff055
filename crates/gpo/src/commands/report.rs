//! `gpo report`: a run's HTML report (inline SVG, no network) and the same numbers as JSON.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use gpo_report::Report;

/// Arguments of `gpo report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run directory (metrics.jsonl, eval.jsonl, samples.jsonl, crossplay.json).
    run_dir: PathBuf,
    /// The HTML file to write (default: RUN_DIR/report.html); the JSON goes beside it with
    /// the extension .json.
    #[arg(long, value_name = "FILE.html")]
    out: Option<PathBuf>,
}

/// Writes the report and prints where it went.
pub fn run(args: ReportArgs) -> Result<()> {
    let html = args.out.unwrap_or_else(|| args.run_dir.join("report.html"));
    let json = html.with_extension("json");
    if json == html {
        bail!(
            "--out {}: the JSON goes beside the HTML with the extension .json, so name the \
             HTML file something else (e.g. report.html)",
            html.display()
        );
    }
    let report = Report::load(&args.run_dir)
        .with_context(|| format!("reading the run {}", args.run_dir.display()))?;
    report
        .write(&html, &json)
        .with_context(|| format!("writing {} and {}", html.display(), json.display()))?;
    super::emit(&serde_json::json!({
        "html": html.display().to_string(),
        "json": json.display().to_string(),
        "steps": report.steps,
        "evals": report.evals.len(),
        "crossplay": report.crossplay.is_some(),
    }))
}
