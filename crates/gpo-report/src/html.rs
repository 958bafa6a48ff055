//! The page: escaping, the sections, the tables.

use std::fmt::Write;

use gpo_eval::{Estimate, ResponseStats};
use gpo_records::{
    BenignAnswer, BenignEval, Change, EvalRecord, Example, HarmfulEval, Paired, SampleRecord,
};

use crate::data::{BeforeAfter, FromBase};
use crate::svg::{escape, heat_map, line_chart};
use crate::Report;

/// Longest text shown in a table cell, in characters.
const CELL_CHARS: usize = 600;

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

/// `0.500 [0.250, 0.750]`.
fn estimate(e: &Estimate) -> String {
    format!("{:.3} [{:.3}, {:.3}]", e.mean, e.lo, e.hi)
}

/// A change with `digits` decimals: `+0.250 [-0.125, +0.500]`.
fn signed(e: &Estimate, digits: usize) -> String {
    format!(
        "{:+.digits$} [{:+.digits$}, {:+.digits$}]",
        e.mean, e.lo, e.hi
    )
}

const NONE: &str = "—";

/// The rows of the before-and-after table.
const MEASURES: [&str; 9] = [
    "attack success rate, held-out seeds (lower is safer)",
    "mean P(unsafe), held-out seeds",
    "explicit refusals (\"I can't ...\"; no judge), held-out seeds",
    "answer length (characters), held-out seeds",
    "distinct-2, held-out seeds",
    "over-refusal, built-in benign prompts (lower is more helpful)",
    "explicit refusals (no judge), benign prompts",
    "answer length (characters), benign prompts",
    "distinct-2, benign prompts",
];

/// One evaluation's column of the table. Older runs have the rates without intervals:
/// those show alone, and what they did not record shows as a dash.
fn measures(r: &EvalRecord) -> [String; 9] {
    let (h, b) = (r.defender_harmful.as_ref(), r.defender_benign.as_ref());
    defender_measures(h, b, (r.defender_asr, r.defender_p_unsafe))
}

/// [`measures`] from the defender's parts; `rates` (attack success, P(unsafe)) stand in for
/// a missing `h`.
fn defender_measures(
    h: Option<&HarmfulEval>,
    b: Option<&BenignEval>,
    rates: (f32, f32),
) -> [String; 9] {
    let stats = |s: Option<&ResponseStats>| match s {
        Some(s) => [
            s.explicit_refusal
                .map_or(NONE.into(), |x| format!("{x:.3}")),
            format!("{:.1}", s.mean_chars),
            format!("{:.3}", s.distinct_2),
        ],
        None => [NONE.into(), NONE.into(), NONE.into()],
    };
    let [h_refusals, h_chars, h_d2] = stats(h.map(|h| &h.responses));
    let [b_refusals, b_chars, b_d2] = stats(b.map(|b| &b.responses));
    [
        h.map_or(format!("{:.3}", rates.0), |h| estimate(&h.attack_success)),
        h.map_or(format!("{:.3}", rates.1), |h| estimate(&h.p_unsafe)),
        h_refusals,
        h_chars,
        h_d2,
        b.map_or(NONE.into(), |b| estimate(&b.over_refusal)),
        b_refusals,
        b_chars,
        b_d2,
    ]
}

/// The change column of the table.
fn changes(c: Option<&Change>) -> [String; 9] {
    let h = c.and_then(|c| c.defender_harmful.as_ref());
    let b = c.and_then(|c| c.defender_benign.as_ref());
    let show = |v: Option<String>| v.unwrap_or_else(|| NONE.into());
    [
        show(h.map(|h| signed(&h.attack_success, 3))),
        show(h.map(|h| signed(&h.p_unsafe, 3))),
        show(h.and_then(|h| h.explicit_refusal.as_ref().map(|e| signed(e, 3)))),
        show(h.map(|h| signed(&h.mean_chars, 1))),
        show(h.map(|h| format!("{:+.3}", h.distinct_2))),
        show(b.map(|b| signed(&b.over_refusal, 3))),
        show(b.and_then(|b| b.explicit_refusal.as_ref().map(|e| signed(e, 3)))),
        show(b.map(|b| signed(&b.mean_chars, 1))),
        show(b.map(|b| format!("{:+.3}", b.distinct_2))),
    ]
}

fn before_after_table(out: &mut String, ba: &BeforeAfter, from_base: Option<&FromBase>) {
    let (b, a) = (&ba.before, &ba.after);
    let _ = write!(
        out,
        r#"<h2>Before and after</h2><p>The defender at step {} (the first evaluation) and at step {} (the last), on the run's {} held-out seeds and the built-in benign prompts, one answer per prompt. Intervals: bootstrap 95% over the prompts. Change: after minus before, prompt by prompt, with its own interval; distinct-2 is a statistic of the whole set and has none.</p>"#,
        b.step, a.step, a.seeds
    );
    if let Some(fb) = from_base {
        let _ = write!(
            out,
            r#"<p>The defender started from a warm start. Its model before the warm start ({}) answered the same prompts with the same sampling seeds at step 0; the last column is after minus that model: what the whole run changed, warm start included.</p>"#,
            escape(&fb.base.model)
        );
    }
    let mut head = vec!["measure", "before", "after", "change"];
    let mut columns = vec![measures(b), measures(a), changes(ba.change.as_ref())];
    if let Some(fb) = from_base {
        let (h, bn) = (&fb.base.defender_harmful, &fb.base.defender_benign);
        let rates = (h.attack_success.mean as f32, h.p_unsafe.mean as f32);
        head.splice(1..1, ["before the warm start"]);
        columns.insert(0, defender_measures(Some(h), Some(bn), rates));
        head.push("change since before the warm start");
        columns.push(changes(fb.change.as_ref()));
    }
    out.push_str(r#"<table id="before-after"><thead><tr>"#);
    for h in &head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for (i, measure) in MEASURES.iter().enumerate() {
        let _ = write!(out, "<tr><td>{}</td>", escape(measure));
        for c in &columns {
            let _ = write!(out, r#"<td class="num">{}</td>"#, escape(&c[i]));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if a.defender_benign.as_ref().is_some_and(|x| x.trained_on) {
        out.push_str("<p>The defender also learned from these benign prompts (its <code>mixed</code> extras draw from the same set): their over-refusal measures fit, not generalisation.</p>");
    }
}

/// One column of marks beside each answer of a paired table: its title and how each
/// answer is marked (`before` and `after` may be read at different thresholds).
struct Marks<A> {
    title: &'static str,
    before: Box<dyn Fn(&A) -> String>,
    after: Box<dyn Fn(&A) -> String>,
}

/// Each prompt, then its answer and mark at the first and at the last evaluation.
fn paired_table<A>(
    out: &mut String,
    id: &str,
    steps: (u64, u64),
    pairs: &[Paired<A>],
    text: impl Fn(&A) -> (&str, &str),
    marks: Marks<A>,
) {
    if pairs.is_empty() {
        out.push_str("<p>No answers recorded.</p>");
        return;
    }
    let _ = write!(
        out,
        r#"<table class="paired" id="{id}"><thead><tr><th>prompt</th><th>answer at step {}</th><th>{m}</th><th>answer at step {}</th><th>{m}</th></tr></thead><tbody>"#,
        steps.0,
        steps.1,
        m = escape(marks.title),
    );
    for p in pairs {
        let (prompt, before) = text(&p.before);
        let (_, after) = text(&p.after);
        let _ = write!(
            out,
            r#"<tr><td class="text">{}</td><td class="text">{}</td><td class="num">{}</td><td class="text">{}</td><td class="num">{}</td></tr>"#,
            cell(prompt),
            cell(before),
            escape(&(marks.before)(&p.before)),
            cell(after),
            escape(&(marks.after)(&p.after)),
        );
    }
    out.push_str("</tbody></table>");
}

/// `0.912 unsafe` at `threshold`.
fn unsafe_mark(threshold: f32) -> Box<dyn Fn(&Example) -> String> {
    Box::new(move |e| {
        let verdict = if e.p_unsafe >= threshold {
            "unsafe"
        } else {
            "safe"
        };
        format!("{:.3} {verdict}", e.p_unsafe)
    })
}

/// `0.120 refused`.
fn refusal_mark(e: &BenignAnswer) -> String {
    let verdict = if e.refused { "refused" } else { "complies" };
    format!("{:.3} {verdict}", e.p_complies)
}

fn paired_answers(out: &mut String, ba: &BeforeAfter) {
    let steps = (ba.before.step, ba.after.step);
    let threshold = |r: &EvalRecord| r.defender_harmful.as_ref().map_or(0.5, |h| h.threshold);
    out.push_str("<h2>Paired answers</h2><p>The same prompts answered by the defender at the first and at the last evaluation.</p><h3>Held-out seeds</h3>");
    paired_table(
        out,
        "paired-harmful",
        steps,
        &ba.harmful,
        |e| (&e.prompt, &e.response),
        Marks {
            title: "P(unsafe)",
            before: unsafe_mark(threshold(&ba.before)),
            after: unsafe_mark(threshold(&ba.after)),
        },
    );
    out.push_str("<h3>Built-in benign prompts</h3>");
    paired_table(
        out,
        "paired-benign",
        steps,
        &ba.benign,
        |e| (&e.prompt, &e.response),
        Marks {
            title: "P(complies)",
            before: Box::new(refusal_mark),
            after: Box::new(refusal_mark),
        },
    );
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
        if let Some(ba) = &self.before_after {
            before_after_table(&mut out, ba, self.from_base.as_ref());
            paired_answers(&mut out, ba);
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
