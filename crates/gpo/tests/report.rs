//! `gpo report` end to end on the committed tiny run (crates/gpo-report/tests/fixtures/run),
//! and the page in headless Chromium (installed by .ci/run from Debian's packages).

use std::path::{Path, PathBuf};
use std::process::Command;

use gpo_report::{plots_in, PLOT_IDS};

mod common;
use common::gpo;

fn fixture_run() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../gpo-report/tests/fixtures/run")
}

/// Writes the fixture's report into a temporary directory; returns it and the HTML path.
fn write_report() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let run = fixture_run();
    let out = gpo(&[
        "report",
        run.to_str().unwrap(),
        "--out",
        html.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "gpo report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON line on stdout");
    assert_eq!(line["steps"], 4);
    assert_eq!(line["evals"], 3);
    assert_eq!(line["crossplay"], true);
    assert_eq!(
        line["json"],
        dir.path().join("report.json").display().to_string()
    );
    (dir, html)
}

fn assert_every_plot_drawn(html: &str) {
    let plots = plots_in(html);
    let mut want: Vec<&str> = PLOT_IDS.to_vec();
    want.push("crossplay");
    assert_eq!(
        plots.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        want
    );
    for p in &plots {
        assert!(!p.is_empty(), "empty plot: {p:?}");
    }
}

#[test]
fn report_writes_html_and_json_with_every_plot() {
    let (dir, html) = write_report();
    assert_every_plot_drawn(&std::fs::read_to_string(&html).unwrap());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["plots"].as_array().unwrap().len(), PLOT_IDS.len());
    assert_eq!(json["crossplay"]["asr"][1][0], 1.0);
}

#[test]
fn report_of_a_missing_run_is_one_error_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = gpo(&["report", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(stderr.contains("metrics.jsonl"), "{stderr}");
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Opens `page` in headless Chromium; returns the serialised DOM and the console lines.
fn open_in(browser: &str, page: &Path, profile: &Path) -> (String, Vec<String>) {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

/// Chromium parses the page, reports no console message (the page has no script, so any
/// message is an error: a blocked resource, a parse problem), and every plot survives the
/// parse non-empty. A control page that logs an error shows the check can see one.
#[test]
fn report_opens_in_headless_chromium_without_console_errors() {
    let Some(browser) = chromium() else {
        // Only when no binary exists at all; .ci/run installs Debian's `chromium`.
        eprintln!("SKIPPED: no chromium binary on PATH (.ci/run installs it)");
        return;
    };
    let (dir, html) = write_report();
    let (dom, console) = open_in(browser, &html, &dir.path().join("profile"));
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(dom.contains("gpo report"), "no page in the DOM dump: {dom}");
    assert_every_plot_drawn(&dom);

    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><html><body><script>console.error('control')</script></body></html>",
    )
    .unwrap();
    let (_, console) = open_in(browser, &control, &dir.path().join("profile2"));
    assert!(
        console.iter().any(|l| l.contains("control")),
        "the console check saw nothing on a page that logs an error"
    );
}
