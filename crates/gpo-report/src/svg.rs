//! Inline SVG charts by string building: a line chart and a heat map.

use std::fmt::Write;

use crate::Plot;

const W: f64 = 640.0;
const H: f64 = 300.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;

/// Line colours, in series order (Okabe-Ito, readable by colour-blind readers).
pub const COLOURS: [&str; 6] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
];

/// `[lo, hi]` of the finite values, widened so that a constant series still gets a visible
/// band (`(0, 1)` when there are none).
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let pad = if lo.abs() > 1e-12 {
            lo.abs() * 0.1
        } else {
            0.5
        };
        return (lo - pad, hi + pad);
    }
    (lo, hi)
}

/// An axis over `[lo, hi]`: widened to multiples of a round step (1, 2, 2.5 or 5 times a
/// power of ten, chosen for about five ticks) and the ticks at those multiples.
fn nice_axis(lo: f64, hi: f64) -> (f64, f64, f64, Vec<f64>) {
    let raw = (hi - lo) / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let a = (lo / step + 1e-9).floor() * step;
    let b = (hi / step - 1e-9).ceil() * step;
    let n = ((b - a) / step).round() as usize;
    let ticks = (0..=n).map(|i| a + i as f64 * step).collect();
    (a, b, step, ticks)
}

/// A tick label at `v` with as many decimals as `step` needs.
fn label(v: f64, step: f64) -> String {
    if v.abs() < step * 1e-6 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.2e}");
    }
    let decimals = (-step.log10() - 1e-9).ceil().max(0.0) as usize;
    let decimals = if (step * 10f64.powi(decimals as i32)).fract().abs() > 1e-6 {
        decimals + 1
    } else {
        decimals
    };
    format!("{v:.decimals$}")
}

/// A line chart of `plot` as an `<svg>` element: axes with five ticks each, one polyline
/// (`data-points` = its point count) with markers per series, and a legend. A plot with no
/// points draws its axes and says so.
pub fn line_chart(plot: &Plot) -> String {
    let pts = || plot.series.iter().flat_map(|s| s.points.iter());
    let (xl, xh) = range(pts().map(|p| p.0));
    let (yl, yh) = range(pts().map(|p| p.1));
    let (x0, x1, xstep, xticks) = nice_axis(xl, xh);
    let (y0, y1, ystep, yticks) = nice_axis(yl, yh);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP + (1.0 - (y - y0) / (y1 - y0)) * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        escape(&plot.title)
    );
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#999"/>"##
    );
    for &xv in &xticks {
        let px = sx(xv);
        let _ = write!(
            s,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#e4e4e4"/><text x="{px:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph + 15.0,
            label(xv, xstep)
        );
    }
    for &yv in &yticks {
        let py = sy(yv);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 5.0,
            py + 4.0,
            label(yv, ystep)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 6.0,
        escape(&plot.x_label)
    );
    let _ = write!(
        s,
        r#"<text x="14" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 14 {:.1})">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        escape(&plot.y_label)
    );
    if plot.points() == 0 {
        let _ = write!(
            s,
            r##"<text class="no-data" x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle" fill="#777">no data</text>"##,
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    for (k, series) in plot.series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let coords: Vec<String> = series
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if !coords.is_empty() {
            let _ = write!(
                s,
                r#"<polyline class="series" data-points="{}" points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                coords.len(),
                coords.join(" ")
            );
            for c in &coords {
                let (cx, cy) = c.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    s,
                    r#"<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>"#
                );
            }
        }
        let ly = TOP + 12.0 + 18.0 * k as f64;
        let lx = LEFT + pw + 12.0;
        let _ = write!(
            s,
            r#"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="3"/><text x="{:.1}" y="{ly:.1}" font-size="11">{} ({})</text>"#,
            ly - 4.0,
            lx + 16.0,
            ly - 4.0,
            lx + 21.0,
            escape(&series.name),
            coords.len()
        );
    }
    s.push_str("</svg>");
    s
}

/// White (0) to dark red (1), for attack success rates.
fn heat(v: f64) -> String {
    let t = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let c = |from: f64, to: f64| (from + t * (to - from)).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        c(255.0, 178.0),
        c(255.0, 24.0),
        c(255.0, 43.0)
    )
}

/// A heat map of `values[row][col]` in [0, 1] with row and column labels, one
/// `<rect class="cell">` per entry with its value written in it.
pub fn heat_map(rows: &[String], cols: &[String], values: &[Vec<f64>], title: &str) -> String {
    let (cell_w, cell_h, left, top) = (72.0, 28.0, 130.0, 64.0);
    let w = left + cell_w * cols.len() as f64 + 20.0;
    let h = top + cell_h * rows.len() as f64 + 20.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}">"#,
        escape(title)
    );
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="14" font-size="12" text-anchor="middle">defender snapshot (column)</text>"#,
        left + cell_w * cols.len() as f64 / 2.0
    );
    for (j, c) in cols.iter().enumerate() {
        let x = left + cell_w * (j as f64 + 0.5);
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
            top - 8.0,
            escape(c)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + cell_h * i as f64;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + cell_h / 2.0 + 4.0,
            escape(r)
        );
        for (j, v) in values
            .get(i)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .enumerate()
        {
            let x = left + cell_w * j as f64;
            let ink = if *v > 0.6 { "#fff" } else { "#000" };
            let _ = write!(
                s,
                r##"<rect class="cell" x="{x:.1}" y="{y:.1}" width="{cell_w}" height="{cell_h}" fill="{}" stroke="#fff"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="{ink}">{v:.3}</text>"##,
                heat(*v),
                x + cell_w / 2.0,
                y + cell_h / 2.0 + 4.0
            );
        }
    }
    s.push_str("</svg>");
    s
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Series;

    fn plot(points: Vec<(f64, f64)>) -> Plot {
        Plot {
            id: "t".into(),
            title: "a <b>".into(),
            x_label: "step".into(),
            y_label: "y".into(),
            series: vec![Series {
                name: "s&t".into(),
                points,
            }],
        }
    }

    #[test]
    fn line_chart_maps_the_extremes_to_the_plot_area() {
        // x in [0, 10] (ticks every 2.5) fills the 400-wide plot area from x = 60 to 460;
        // y in [0, 1] (ticks every 0.25) fills it from y = 16 + 240 = 256 up to 16.
        let svg = line_chart(&plot(vec![(0.0, 0.0), (10.0, 1.0)]));
        assert!(
            svg.contains(r#"data-points="2" points="60.0,256.0 460.0,16.0""#),
            "{svg}"
        );
        assert!(svg.contains("a &lt;b&gt;") && svg.contains("s&amp;t (2)"));
        assert!(!svg.contains("no-data"));
    }

    #[test]
    fn a_single_point_is_drawn_in_the_middle() {
        let svg = line_chart(&plot(vec![(3.0, 0.0)]));
        assert!(svg.contains(r#"points="260.0,136.0""#), "{svg}");
    }

    #[test]
    fn the_legend_counts_the_points_drawn() {
        // A NaN loss (a diverged step) is left out of the line and of the legend's count.
        let svg = line_chart(&plot(vec![(1.0, f64::NAN), (2.0, 0.5), (3.0, 0.7)]));
        assert!(
            svg.contains(r#"data-points="2""#) && svg.contains("s&amp;t (2)"),
            "{svg}"
        );
    }

    #[test]
    fn an_empty_plot_says_no_data() {
        let svg = line_chart(&plot(vec![]));
        assert!(svg.contains("no data") && !svg.contains("<polyline"));
    }

    #[test]
    fn heat_map_has_one_cell_per_entry() {
        let names = |p: &str| vec![format!("{p}1"), format!("{p}2")];
        let svg = heat_map(
            &names("a"),
            &names("d"),
            &[vec![0.0, 1.0], vec![0.5, 0.25]],
            "m",
        );
        assert_eq!(svg.matches(r#"class="cell""#).count(), 4);
        assert!(svg.contains(r##"fill="#ffffff""##) && svg.contains(r##"fill="#b2182b""##));
        assert!(svg.contains(">0.250<"));
    }

    #[test]
    fn axes_take_round_steps_and_labels_their_decimals() {
        // Worked by hand: steps 1..40 span 39, a quarter is 9.75, the next round step is 10.
        let (a, b, step, ticks) = nice_axis(1.0, 40.0);
        assert_eq!((a, b, step), (0.0, 40.0, 10.0));
        assert_eq!(ticks, [0.0, 10.0, 20.0, 30.0, 40.0]);
        // 0..0.394: a quarter is 0.0985, the step 0.1, the axis 0..0.4.
        let (a, b, step, ticks) = nice_axis(0.0, 0.394);
        assert!(
            (a, b) == (0.0, 0.4) && (step - 0.1).abs() < 1e-12,
            "{a} {b} {step}"
        );
        let labels: Vec<String> = ticks.iter().map(|&t| label(t, step)).collect();
        assert_eq!(labels, ["0", "0.1", "0.2", "0.3", "0.4"]);
        // A step of 2.5 keeps its decimal; a step of 25 needs none.
        assert_eq!(label(7.5, 2.5), "7.5");
        assert_eq!(label(75.0, 25.0), "75");
        assert_eq!(label(0.0, 1.0), "0");
        assert_eq!(label(0.00001, 1e-6), "1.00e-5");
    }
}
