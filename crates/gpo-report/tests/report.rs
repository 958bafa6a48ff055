//! The report of the committed tiny run (`fixtures/run`, see its README).

use std::path::{Path, PathBuf};

use gpo_report::{plots_in, Report, PLOT_IDS};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run")
}

#[test]
fn every_plot_is_present_and_non_empty() {
    let html = Report::load(&fixture()).unwrap().html();
    let plots = plots_in(&html);
    let ids: Vec<&str> = plots.iter().map(|p| p.id.as_str()).collect();
    let mut want: Vec<&str> = PLOT_IDS.to_vec();
    want.push("crossplay");
    assert_eq!(ids, want);
    for p in &plots {
        assert!(!p.is_empty(), "{p:?}");
    }
    // 4 steps: attacker and defender rewards (4 each); KL only where a player learned
    // (steps alternate defender, attacker: 2 each); 3 evaluations x 3 lines; 2 x 2 cells.
    let by_id = |id: &str| plots.iter().find(|p| p.id == id).unwrap().clone();
    assert_eq!(by_id("reward").points, 8);
    assert_eq!(by_id("kl").points, 4);
    assert_eq!(by_id("eval-asr").points, 9);
    assert_eq!(by_id("crossplay").cells, 4);
}

#[test]
fn sample_texts_are_escaped() {
    let html = Report::load(&fixture()).unwrap().html();
    assert!(
        !html.contains("<script"),
        "no script at all, escaped or not"
    );
    assert!(!html.contains("<img") && !html.contains("<b>bold"));
    assert!(html.contains("&lt;script&gt;alert(&#39;seed&#39;)&lt;/script&gt;"));
    assert!(html.contains("A &amp; B &quot;quoted&quot; &lt;b&gt;bold&lt;/b&gt;"));
}

#[test]
fn the_page_loads_nothing_from_outside() {
    let html = Report::load(&fixture()).unwrap().html();
    let outside = html.replace("http://www.w3.org/2000/svg", "");
    assert!(!outside.contains("http://") && !outside.contains("https://"));
    for tag in ["<img", "<link", "<iframe", "<script", "<object", "url("] {
        assert!(!outside.contains(tag), "{tag}");
    }
}

#[test]
fn json_holds_the_plotted_numbers() {
    let report = Report::load(&fixture()).unwrap();
    let json = report.json();
    assert_eq!(json["steps"], 4);
    assert_eq!(json["plots"].as_array().unwrap().len(), PLOT_IDS.len());
    // metrics.jsonl step 1: defender reward 0.98626876 (f32, widened to f64).
    let first = &json["plots"][0]["series"][1]["points"][0];
    assert_eq!(first[0], 1.0);
    assert!((first[1].as_f64().unwrap() - 0.98626876).abs() < 1e-6);
    assert_eq!(json["crossplay"]["exploitability"]["averaged_gap"], 0.5);
    assert_eq!(
        json["most_unsafe"][0]["p_unsafe"].as_f64().unwrap() as f32,
        0.97
    );
}

#[test]
fn write_puts_both_files_and_no_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let (html, json) = (dir.path().join("r.html"), dir.path().join("r.json"));
    Report::load(&fixture())
        .unwrap()
        .write(&html, &json)
        .unwrap();
    let back: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(back["steps"], 4);
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .starts_with("<!DOCTYPE html>"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn missing_metrics_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = Report::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("metrics.jsonl"), "{e}");
}

#[test]
fn malformed_line_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture().join("metrics.jsonl")).unwrap();
    let first = good.lines().next().unwrap();
    std::fs::write(
        dir.path().join("metrics.jsonl"),
        format!("{first}\n{{\"step\":\n"),
    )
    .unwrap();
    let e = Report::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("metrics.jsonl:2:"), "{e}");
}

#[test]
fn a_run_without_evaluations_still_has_every_plot() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture().join("metrics.jsonl"),
        dir.path().join("metrics.jsonl"),
    )
    .unwrap();
    let html = Report::load(dir.path()).unwrap().html();
    let plots = plots_in(&html);
    assert_eq!(plots.len(), PLOT_IDS.len());
    let eval = plots.iter().find(|p| p.id == "eval-asr").unwrap();
    assert!(eval.is_empty() && html.contains("no data"));
}

#[test]
fn a_diverged_update_with_null_losses_still_loads() {
    // serde_json writes a NaN loss as null; the report reads it back as NaN.
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture().join("metrics.jsonl")).unwrap();
    assert!(good.contains("\"policy_loss\":"), "the fixture logs losses");
    let diverged = null_losses(&good);
    assert!(diverged.contains("\"policy_loss\":null"));
    std::fs::write(dir.path().join("metrics.jsonl"), diverged).unwrap();
    let html = Report::load(dir.path()).unwrap().html();
    assert_eq!(plots_in(&html).len(), PLOT_IDS.len());
}

/// Every `"policy_loss":<number>` replaced by `"policy_loss":null`.
fn null_losses(text: &str) -> String {
    let key = "\"policy_loss\":";
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(key) {
        out.push_str(&rest[..i + key.len()]);
        rest = &rest[i + key.len()..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        out.push_str("null");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
