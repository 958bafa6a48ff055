//! The page: escaping, the sections, the tables.

use std::fmt::Write;

use gpo_game::SampleRecord;

use crate::svg::{heat_map, line_chart};
use crate::Report;

/// Longest text shown in a table cell, in characters.
const CELL_CHARS: usize = 600;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn cell(text: &str) -> String {
    let mut t: String = text.chars().take(CELL_CHARS).collect();
    if t.len() < text.len() {
        t.push('…');
    }
    escape(&t)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;\
color:#222}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}\
figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}\
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:4px 6px;\
vertical-align:top;text-align:left}td.text{white-space:pre-wrap;max-width:420px}\
td.num{text-align:right;font-variant-numeric:tabular-nums}pre{background:#f6f6f6;padding:1em;\
overflow:auto}";

fn samples_table(out: &mut String, id: &str, title: &str, samples: &[SampleRecord]) {
    let _ = write!(out, r#"<h3>{}</h3>"#, escape(title));
    if samples.is_empty() {
        out.push_str("<p>No samples.</p>");
        return;
    }
    let _ = write!(
        out,
        r#"<table class="samples" id="{id}"><thead><tr><th>step</th><th>seed</th><th>attacker prompt</th><th>defender response</th><th>P(unsafe)</th><th>attacker reward</th></tr></thead><tbody>"#
    );
    for s in samples {
        let _ = write!(
            out,
            r#"<tr><td class="num">{}</td><td class="text">{}</td><td class="text">{}</td><td class="text">{}</td><td class="num">{:.3}</td><td class="num">{:.3}</td></tr>"#,
            s.step,
            cell(&s.seed),
            cell(&s.prompt),
            cell(&s.response),
            s.p_unsafe,
            s.attacker_reward
        );
    }
    out.push_str("</tbody></table>");
}

impl Report {
    /// The self-contained HTML page: no script, no external resource.
    pub fn html(&self) -> String {
        let run = escape(&self.run.display().to_string());
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>gpo report: {run}</title><style>{STYLE}</style></head><body><h1>gpo report: {run}</h1><p>{} steps, {} evaluations{}.</p>"#,
            self.steps,
            self.evals.len(),
            if self.crossplay.is_some() {
                ", cross-play matrix"
            } else {
                ""
            }
        );
        out.push_str("<h2>Training</h2>");
        for plot in &self.plots {
            if plot.id == "eval-asr" {
                out.push_str("<h2>Evaluations on held-out seeds</h2>");
            }
            let _ = write!(
                out,
                r#"<figure class="plot" id="plot-{}"><figcaption>{}</figcaption>{}</figure>"#,
                escape(&plot.id),
                escape(&plot.title),
                line_chart(plot)
            );
        }
        if !self.evals.is_empty() {
            out.push_str(r#"<table id="evals"><thead><tr><th>step</th><th>seeds</th><th>defender P(unsafe)</th><th>defender ASR</th><th>attacker ASR</th><th>attacker ASR vs initial</th><th>diversity (self-BLEU)</th><th>diversity (embedding)</th></tr></thead><tbody>"#);
            for e in &self.evals {
                let _ = write!(
                    out,
                    r#"<tr><td class="num">{}</td><td class="num">{}</td><td class="num">{:.3}</td><td class="num">{:.3}</td><td class="num">{:.3}</td><td class="num">{:.3}</td><td class="num">{:.3}</td><td class="num">{:.3}</td></tr>"#,
                    e.step,
                    e.seeds,
                    e.defender_p_unsafe,
                    e.defender_asr,
                    e.attacker_asr,
                    e.attacker_asr_vs_initial,
                    e.diversity_self_bleu,
                    e.diversity_embedding
                );
            }
            out.push_str("</tbody></table>");
        }
        if let Some(cp) = &self.crossplay {
            let title = format!(
                "Attack success rate, attacker snapshot (row) vs defender snapshot (column), {} held-out seeds",
                cp.seeds
            );
            let _ = write!(
                out,
                r#"<h2>Cross-play</h2><figure class="plot" id="plot-crossplay"><figcaption>{}</figcaption>{}</figure>"#,
                escape(&title),
                heat_map(&cp.attackers, &cp.defenders, &cp.asr, &title)
            );
            let e = &cp.exploitability;
            out.push_str(r#"<table id="exploitability"><thead><tr><th>snapshot</th><th>worst case in the pool</th></tr></thead><tbody>"#);
            for (name, v) in cp.attackers.iter().zip(&e.attacker_worst) {
                let _ = write!(
                    out,
                    r#"<tr><td>attacker {}</td><td class="num">{v:.3} (lowest ASR)</td></tr>"#,
                    escape(name)
                );
            }
            for (name, v) in cp.defenders.iter().zip(&e.defender_worst) {
                let _ = write!(
                    out,
                    r#"<tr><td>defender {}</td><td class="num">{v:.3} (highest ASR)</td></tr>"#,
                    escape(name)
                );
            }
            let _ = write!(
                out,
                r#"<tr><td>averaged attacker</td><td class="num">{:.3}</td></tr><tr><td>averaged defender</td><td class="num">{:.3}</td></tr><tr><td>gap of the averaged pair</td><td class="num">{:.3}</td></tr></tbody></table>"#,
                e.averaged_attacker_worst, e.averaged_defender_worst, e.averaged_gap
            );
        }
        out.push_str("<h2>Sample exchanges</h2>");
        samples_table(
            &mut out,
            "most-unsafe",
            "Judged most unsafe",
            &self.most_unsafe,
        );
        samples_table(&mut out, "latest", "Latest", &self.latest);
        if let Some(cfg) = &self.config {
            let _ = write!(
                out,
                "<h2>Configuration</h2><details><summary>config.toml</summary><pre>{}</pre></details>",
                escape(cfg)
            );
        }
        out.push_str("</body></html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_the_five_specials() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn long_cells_are_cut_with_an_ellipsis() {
        let long = "a".repeat(CELL_CHARS + 5);
        let c = cell(&long);
        assert_eq!(c.chars().count(), CELL_CHARS + 1);
        assert!(c.ends_with('…'));
    }
}
